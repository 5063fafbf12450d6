"""The hold-out: which files are validation, split by theorem or by module, stably.

Goal files of one theorem share its header, so splitting by file would leak validation text
into training. Each theorem key is hashed (sha256) to a number in [0, 1); keys below
`val_fraction` are validation. Adding files never moves old ones between splits.
`training.split = "module"` hashes each file's acornlib module instead (from the
`manifest.jsonl` that `tactics import acornlib` writes beside the data folder): validation is
then whole modules, the new theories the prover meets. The trainer, the tokenizer's hold-out,
the evaluator and the Playground's goals all ask here.
"""

from __future__ import annotations

import hashlib
import os
from typing import Iterable, TypeVar

from tactics_core.common.errors import TacticsError
from tactics_core.common.manifest import manifest_path, read_manifest_rows

T = TypeVar("T")

# The share of theorems held out for validation unless a preset says otherwise
# (`training.val_fraction`); the tokenizer's hold-out and the evaluator's split
# default to it too, so all three agree on which theorems are unseen.
DEFAULT_VAL_FRACTION = 0.1


def is_validation_key(key: str, val_fraction: float) -> bool:
    """True when the theorem `key` belongs to the validation split.

    A pure function of the key: the split of a theorem never depends on which
    other files are in the corpus.
    """
    return stable_share(key) < val_fraction


def stable_share(text: str) -> float:
    """A number in [0, 1) that depends on `text` only (sha256): the split's buckets, and the
    stable samples of the tokenizer and the evaluator, which keep their members as files are added."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) / 2**32


SPLITS = ("theorem", "module")
def file_modules(data_dir: str | os.PathLike) -> dict[str, str]:
    """{proof file name: its source module}, from the manifest beside `data_dir`."""
    rows = read_manifest_rows(data_dir, ("module",), (
        'training.split = "module" needs {path} (written by `tactics import acornlib` beside the data '
        'folder) to know each file\'s module; import the corpus with it, or use split = "theorem"'))
    modules = {name: row["module"] or row.get("cert") for name, row in rows.items()}
    unknown = next((name for name, module in modules.items() if not module), None)
    if unknown is not None:
        raise TacticsError(f"{data_dir}: the manifest row of {unknown} names no module; import the corpus again")
    return {name: str(module) for name, module in modules.items()}


def split_keys(data_dir: str | os.PathLike, names: list[str], theorem_keys: list[str], split: str) -> list[str]:
    """The key that decides each file's split: its theorem, or (`module`) its module."""
    if split not in SPLITS:
        raise TacticsError(f"training.split must be one of {', '.join(SPLITS)} (got {split!r})")
    if split == "theorem":
        return list(theorem_keys)
    modules = file_modules(data_dir)
    missing = [n for n in names if n not in modules]
    if missing:
        raise TacticsError(
            f"{len(missing):,} files of {data_dir} are not in {manifest_path(data_dir)} "
            f"(first: {missing[0]}); the manifest is of another import: import again, or use split = \"theorem\""
        )
    return [module_key(modules[n]) for n in names]


def module_key(module: str) -> str:
    """The split key of a module (never equal to a theorem's key)."""
    return "module\0" + module


def split_corpus(files: Iterable[T], val_fraction: float = DEFAULT_VAL_FRACTION) -> tuple[list[T], list[T]]:
    """Split ProofFiles into (train, validation) by `theorem_key()`, keeping order."""
    train: list[T] = []
    val: list[T] = []
    for f in files:
        (val if is_validation_key(f.theorem_key(), val_fraction) else train).append(f)
    return train, val
