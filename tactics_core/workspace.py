"""The workspace layout, kept as the original scripts had it.

    data/proofs/            the corpus (proof_NNNNN.txt)
    checkpoints/            tokenizer.json, cache/, runs/NAME/ (one folder per run: checkpoints,
                            metrics.jsonl, run.json), current, best_model.pt (runstore.py)
    export/tactics-YYYY-MM-DD-HH-MM-SS/
    presets/                the user's presets (shadow the built-in ones)

Every command takes these paths as options; defaults are relative to the
current directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path("data/proofs")
CHECKPOINT_DIR = Path("checkpoints")
EXPORT_DIR = Path("export")
PRESETS_DIR = Path("presets")
TOKENIZER_FILE = "tokenizer.json"
BEST_MODEL_FILE = "best_model.pt"
METRICS_FILE = "metrics.jsonl"
RUN_STATE_FILE = "run.json"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def at(cls, root: str | Path = ".") -> "Workspace":
        return cls(Path(root))

    @property
    def data_dir(self) -> Path:
        return self.root / DATA_DIR

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / CHECKPOINT_DIR

    @property
    def export_dir(self) -> Path:
        return self.root / EXPORT_DIR

    @property
    def presets_dir(self) -> Path:
        return self.root / PRESETS_DIR

    @property
    def tokenizer_path(self) -> Path:
        return self.checkpoint_dir / TOKENIZER_FILE

    @property
    def best_model_path(self) -> Path:
        return self.checkpoint_dir / BEST_MODEL_FILE
