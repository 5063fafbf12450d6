"""The import's `manifest.jsonl` read back: one row per proof file, beside the data folder.

`tactics import acornlib` (acorn/library/importer.py) writes it: each file's name, its source
module (or certificate), the goal's source line, method and text. Two readers need it, each for
a different promise: the GPT's module split (gpt/holdout.py: which module a file belongs to) and
the real prover's seen-subjects sample (acorn/goal_sample.py: where a validation goal starts in
acornlib). One row reader, so a damaged row reads the same wherever it is met.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tactics_core.common.errors import TacticsError
from tactics_core.common.workspace import MANIFEST_FILE


def manifest_path(data_dir: str | os.PathLike) -> Path:
    """Where the import put the manifest of `data_dir`: beside it."""
    return Path(data_dir).parent / MANIFEST_FILE


def read_manifest_rows(data_dir: str | os.PathLike, keys: tuple[str, ...], missing: str) -> dict[str, dict[str, Any]]:
    """{proof file name: its manifest row}, each row holding `keys`. `missing` is the one-line
    error when there is no manifest (formatted with `path`); a damaged row is one line naming
    the file, the row and the keys it lacks."""
    path = manifest_path(data_dir)
    if not path.is_file():
        raise TacticsError(missing.format(path=path))
    rows: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
                if not isinstance(row, dict) or any(k not in row for k in ("file", *keys)):
                    raise KeyError
            except (ValueError, KeyError):
                raise TacticsError(
                    f"{path}:{number}: no provenance (a row with {', '.join(repr(k) for k in ('file', *keys))}); "
                    "import the corpus again with `tactics import acornlib`"
                ) from None
            rows[str(row["file"])] = row
    return rows
