"""The workspace layout, kept as the original scripts had it.

    data/proofs/            the corpus (proof_NNNNN.txt)
    data/manifest.jsonl     which module each proof file came from (`tactics import acornlib`)
    checkpoints/            tokenizer.json, cache/, runs/NAME/ (one folder per run: checkpoints,
                            metrics.jsonl, run.json), current, best_model.pt (runs/workspace_runs.py)
    export/tactics-YYYY-MM-DD-HH-MM-SS/
    presets/                the user's presets (shadow the built-in ones)
    traces/                 acorn's activated-step traces (*.jsonl.zst + *.meta.json) for the
                            proof-step scorer; traces/.store/ their column store (scorer/trace_store.py)
    sweeps/NAME/            a hyperparameter sweep (`tactics sweep`): study.db (Optuna's SQLite
                            storage), space.toml (the space file, copied), sweep.json, best.toml
    tactics.toml            the workspace's settings ([acorn]: binary, acornlib, ort_lib)
    tactics-tui.log         the TUI's log (tracebacks of what is a bug)

Every command takes these paths as options; defaults are relative to the
current directory. Every file and folder name of the workspace is defined here, once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path("data/proofs")
CHECKPOINT_DIR = Path("checkpoints")
EXPORT_DIR = Path("export")
PRESETS_DIR = Path("presets")
TRACES_DIR = Path("traces")
TRACE_STORE_DIR = TRACES_DIR / ".store"
TOKENIZER_FILE = "tokenizer.json"
BEST_MODEL_FILE = "best_model.pt"
METRICS_FILE = "metrics.jsonl"
RUN_STATE_FILE = "run.json"
RUNS_SUBDIR = "runs"
CURRENT_LINK = "current"
CACHE_SUBDIR = "cache"  # of the checkpoint folder: the token cache (the training loop's)
MANIFEST_FILE = "manifest.jsonl"  # beside the data folder, written by `tactics import acornlib`
SETTINGS_FILE = "tactics.toml"  # workspace settings: [acorn] binary, acornlib, ort_lib
TUI_LOG_FILE = "tactics-tui.log"  # the TUI's log, in the workspace
SWEEPS_DIR = Path("sweeps")  # one folder per sweep (`tactics sweep`, sweeps/study.py)
SWEEP_STUDY_FILE = "study.db"  # of a sweep folder: Optuna's SQLite storage
SWEEP_SPACE_FILE = "space.toml"  # of a sweep folder: the space file as it was given
SWEEP_FILE = "sweep.json"  # of a sweep folder: how it was started (budget, trials, data, base preset)
SWEEP_BEST_FILE = "best.toml"  # of a sweep folder: the best trial's preset
SWEEP_JUDGED_FILE = "judged.json"  # of a sweep folder: the real prover's verdicts on the judged trials (sweeps/judge.py)
SWEEP_TRIAL_SUFFIX = "-t{number:03d}"  # a trial's run name: the sweep's name and this
SWEEP_LOCK_FILE = "sweep.lock"  # of a sweep folder: held by the one process running the sweep (sweeps/launch.py)
SWEEP_STOP_FILE = "stop.request"  # of a sweep folder: asks the running sweep to stop (its trial ends gracefully)
SWEEP_LOG_FILE = "sweep.log"  # of a sweep folder: the output of a sweep started detached (the TUI)
SWEEP_PROCESS_FILE = "process.json"  # of a sweep folder: the pid and command of a sweep started detached


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
    def traces_dir(self) -> Path:
        return self.root / TRACES_DIR

    @property
    def trace_store_dir(self) -> Path:
        return self.root / TRACE_STORE_DIR

    @property
    def sweeps_dir(self) -> Path:
        return self.root / SWEEPS_DIR

    @property
    def tokenizer_path(self) -> Path:
        return self.checkpoint_dir / TOKENIZER_FILE

    @property
    def best_model_path(self) -> Path:
        return self.checkpoint_dir / BEST_MODEL_FILE


# ----------------------------------------------------------------------------
# Which run a checkpoint-folder argument means (runs/workspace_runs.py and runs/run_folder.py both ask)


def workspace_root(checkpoint_dir: str | os.PathLike) -> Path:
    """The folder holding tokenizer.json, cache/ and runs/ (two up from a run folder)."""
    path = Path(checkpoint_dir)
    if path.parent.name == RUNS_SUBDIR:
        return path.parent.parent
    return path


def is_run_folder(path: str | os.PathLike) -> bool:
    """True for `<root>/runs/<name>`."""
    return Path(path).parent.name == RUNS_SUBDIR


def _real_files(folder: Path) -> list[Path]:
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    return [p for p in entries if not p.is_symlink() and p.is_file()]


def holds_run(folder: str | os.PathLike) -> bool:
    """True when a run already wrote here: a non-empty metrics.jsonl or a checkpoint (*.pt)."""
    folder = Path(folder)
    for p in _real_files(folder):
        if p.name == METRICS_FILE and p.stat().st_size > 0:
            return True
        if p.suffix == ".pt" and not p.name.startswith("."):
            return True
    return False


def has_legacy_run(root: str | os.PathLike) -> bool:
    """True when a run lives straight in the checkpoint folder (the layout before runs/)."""
    root = Path(root)
    return not is_run_folder(root) and holds_run(root)


def read_current(root: Path) -> Path | None:
    link = root / CURRENT_LINK
    try:
        if link.is_symlink():
            target = Path(os.readlink(link))
            target = target if target.is_absolute() else root / target
        elif link.is_file():  # where symlinks are not allowed: the name in a text file
            target = root / RUNS_SUBDIR / link.read_text(encoding="utf-8").strip()
        else:
            return None
    except OSError:
        return None
    return target if target.is_dir() else None


def current_run_dir(checkpoint_dir: str | os.PathLike) -> Path:
    """The run a checkpoint-folder argument means: the folder itself when it is a run folder,
    else its current run, else the folder itself (an old workspace's run, or none yet)."""
    path = Path(checkpoint_dir)
    if is_run_folder(path):
        return path
    current = read_current(path)
    return current if current is not None else path
