"""Shared fixtures: where the real corpora are, and small slices of them.

The real corpora live in ../shared/corpora (CI has them beside the clone; a
user's clone does not). Tests that need them skip with a clear reason when
they are missing. Set TACTICS_SHARED to point elsewhere.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent  # tests/: fixtures/, helpers; tests/core/<part>/ and tests/tui/ hold the tests
REPO = TESTS.parent
SHARED = Path(os.environ.get("TACTICS_SHARED", REPO.parent / "shared"))
CORPORA = SHARED / "corpora"

# Keep torch polite on 2 cores while tests run.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def shared_corpus(name: str) -> Path:
    """The proofs/ folder of a shared corpus, or skip the test with the reason."""
    path = CORPORA / name / "proofs"
    if not path.is_dir():
        pytest.skip(f"shared corpus {name!r} not found at {path} (only in CI / the dev workplace)")
    return path


@pytest.fixture
def corpus_2025() -> Path:
    return shared_corpus("acornlib-2025-11")


@pytest.fixture
def corpus_2026() -> Path:
    return shared_corpus("acornlib-2026-08")


def copy_slice(src: Path, dest: Path, n: int, start: int = 0) -> Path:
    """Copy n proof files (sorted by name, from `start`) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    files = sorted(src.glob("proof_*.txt"))[start : start + n]
    for f in files:
        shutil.copyfile(f, dest / f.name)
    return dest


def slice_with_tokenizer(root: Path, n: int = 40, start: int = 3000) -> tuple[Path, Path]:
    """n real files of acornlib-2025-11 in `root/proofs` and a small `lines` tokenizer trained
    on them: (data folder, tokenizer.json)."""
    from tactics_core.gpt.tokenizer import train_tokenizer

    data_dir = copy_slice(shared_corpus("acornlib-2025-11"), root / "proofs", n, start=start)
    train_tokenizer(data_dir, root / "tok", vocab_size=300, kind="lines")
    return data_dir, root / "tok" / "tokenizer.json"


@pytest.fixture
def slice_2025(tmp_path, corpus_2025) -> Path:
    """300 real proof files from acornlib-2025-11 in a temp data dir."""
    return copy_slice(corpus_2025, tmp_path / "data" / "proofs", 300)
