"""All runs of a workspace: one folder per training run, the current run, listing, diff, removal.

What happens inside one run's folder (lock, run.json, recorder, stop) is `run_folder.py`'s.

Layout (under the workspace's checkpoint folder, `checkpoints/` by default):

    checkpoints/
      tokenizer.json          the tokenizer new runs start with (each run keeps its own copy)
      cache/                  token caches, shared by every run (keyed by corpus + tokenizer)
      runs/<name>/            one folder per run: checkpoint_step_N.pt, best_model.pt, *.meta.json,
                              metrics.jsonl, run.json, run.lock, train.log, tokenizer.json
      current -> runs/<name>  the run started last (what `tactics resume`, `tactics stop`,
                              `tactics checkpoints` and the TUI's Training screen mean by default)
      best_model.pt -> runs/<name>/best_model.pt
                              the best model of the latest run that has one (for the original
                              scripts' users); never replaces a real file there

A run's name is `YYYYMMDD-HHMMSS-<preset>` unless given (`tactics train --run-name NAME`).
Starting a run never writes into another run's folder; resuming continues in the run's own
folder. An old workspace (one run written straight into `checkpoints/`) keeps working: its
files stay where they are and it is listed as the run `legacy`.

Every function that takes a `checkpoint_dir` accepts the workspace's checkpoint folder (meaning
its current run) or a run folder itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tactics_core.common.atomic import atomic_path, remove_stale_partials
from tactics_core.common.errors import TacticsError
from tactics_core.common.workspace import (
    BEST_MODEL_FILE,
    CURRENT_LINK,
    RUN_STATE_FILE,
    RUNS_SUBDIR,
    TOKENIZER_FILE,
    current_run_dir,
    has_legacy_run,
    holds_run,
    is_run_folder,
    read_current,
    workspace_root,
)
from tactics_core.runs.checkpoints import finite_or_none, list_checkpoints
from tactics_core.runs.run_events import END_REASONS, EndEvent, EvalEvent, StartEvent, StepEvent, metrics_path, read_metrics
from tactics_core.runs.run_folder import read_run_state

LEGACY_NAME = "legacy"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
STATUSES = ("running", *END_REASONS, "vanished", "unknown")
FIGURES = ("best_val_loss", "best_val_bpb", "best_proof_loss", "best_proof_bpb")
SCORER_FIGURES = ("best_auc", "best_used_rank")  # a scorer run's, compared when either run is one


# ----------------------------------------------------------------------------
# Where things are


def run_path(checkpoint_dir: str | os.PathLike, name: str) -> Path:
    """The folder of the run called `name` (`legacy` = the old workspace's own files)."""
    root = workspace_root(checkpoint_dir)
    if name == LEGACY_NAME and has_legacy_run(root):
        return root
    check_name(name)
    return root / RUNS_SUBDIR / name


def run_name(folder: str | os.PathLike) -> str:
    folder = Path(folder)
    return folder.name if is_run_folder(folder) else LEGACY_NAME


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise TacticsError(
            f"run name {name!r} is not usable: use letters, digits, '.', '_', '-' or '+' "
            "(at most 100, starting with a letter or digit)"
        )
    if name in (LEGACY_NAME, CURRENT_LINK):
        raise TacticsError(f"run name {name!r} is reserved; choose another --run-name")
    return name


def auto_name(preset: str, root: Path, now: float | None = None) -> str:
    """`YYYYMMDD-HHMMSS-<preset>`, with -2, -3... when two runs start in the same second."""
    stem = Path(str(preset or "run")).name
    stem = stem[:-5] if stem.endswith(".toml") else stem
    stem = re.sub(r"[^A-Za-z0-9._+-]+", "-", stem).strip("-.") or "run"
    base = time.strftime("%Y%m%d-%H%M%S", time.localtime(now if now is not None else time.time())) + "-" + stem[:40]
    name, n = base, 1
    while (root / RUNS_SUBDIR / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


# ----------------------------------------------------------------------------
# Links (symlinks replaced atomically: a reader sees the old target or the new one)


def _replace_link(link: Path, target: str) -> None:
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.symlink(target, tmp)
    except (OSError, NotImplementedError):
        if link.name == CURRENT_LINK:  # no symlinks here: remember the name in a file
            with atomic_path(link) as t:
                t.write_text(Path(target).name + "\n", encoding="utf-8")
        return
    os.replace(tmp, link)


def set_current(root: str | os.PathLike, name: str) -> None:
    root = Path(root)
    link = root / CURRENT_LINK
    if link.exists() and not link.is_symlink() and link.is_dir():
        raise TacticsError(f"{link} is a folder, not the current-run link; move it away")
    _replace_link(link, f"{RUNS_SUBDIR}/{name}")


def mark_current(run_folder: str | os.PathLike) -> None:
    """A run folder that (re)starts training becomes the workspace's current run."""
    folder = Path(run_folder)
    if is_run_folder(folder):
        with contextlib.suppress(OSError, TacticsError):
            set_current(workspace_root(folder), folder.name)


def publish_best(run_folder: str | os.PathLike) -> None:
    """Point `<root>/best_model.pt` at this run's best model, unless a real file is there."""
    folder = Path(run_folder)
    if not is_run_folder(folder) or not (folder / BEST_MODEL_FILE).is_file():
        return
    link = workspace_root(folder) / BEST_MODEL_FILE
    if link.exists() and not link.is_symlink():
        return  # an old workspace's own best model: never replaced
    with contextlib.suppress(OSError):
        _replace_link(link, f"{RUNS_SUBDIR}/{folder.name}/{BEST_MODEL_FILE}")


def best_model(checkpoint_dir: str | os.PathLike) -> Path:
    """The model `tactics export` and the TUI's export mean by default: the current run's
    best_model.pt, else `<root>/best_model.pt` (which may not exist)."""
    run = current_run_dir(checkpoint_dir)
    if (run / BEST_MODEL_FILE).is_file():
        return run / BEST_MODEL_FILE
    return workspace_root(checkpoint_dir) / BEST_MODEL_FILE


# ----------------------------------------------------------------------------
# Starting a run


def live_runs(checkpoint_dir: str | os.PathLike) -> list[tuple[Path, Any]]:
    """(folder, RunState) of every live run of the workspace."""
    root = workspace_root(checkpoint_dir)
    folders = [root] if has_legacy_run(root) or (root / RUN_STATE_FILE).exists() else []
    with contextlib.suppress(OSError):
        folders += sorted(p for p in (root / RUNS_SUBDIR).iterdir() if p.is_dir() and not p.name.startswith("."))
    out = []
    for folder in folders:
        state = read_run_state(folder, resolve=False)
        # A detached child sees its own reservation ("spawned" with its pid): not another run.
        # Under torchrun the reservation's pid is the launcher's, the rank's parent.
        mine = state is not None and state.state == "spawned" and state.pid in (os.getpid(), os.getppid())
        if state is not None and state.alive and not mine:
            out.append((folder, state))
    return out


def refuse_if_live(checkpoint_dir: str | os.PathLike) -> None:
    live = live_runs(checkpoint_dir)
    if live:
        folder, state = live[0]
        raise TacticsError(
            f"a run is already active in {folder} (pid {state.pid}, step {state.step}); "
            f"stop it with `tactics stop --checkpoint-dir {folder}` or use another --checkpoint-dir"
        )


def check_new_run(checkpoint_dir: str | os.PathLike, preset: str, name: str | None = None,
                  needs_tokenizer: bool = True) -> Path:
    """The folder `new_run` would make, after every check it makes (tokenizer, live run, name);
    writes nothing, so a launch can check everything before it changes the workspace.
    A run folder given as `checkpoint_dir` (and no `name`) keeps its own name. A scorer's run
    (`needs_tokenizer=False`) has no tokenizer."""
    root = workspace_root(checkpoint_dir)
    if is_run_folder(checkpoint_dir) and name is None:
        name = Path(checkpoint_dir).name
    tokenizer = root / TOKENIZER_FILE
    if needs_tokenizer and not tokenizer.is_file():
        raise TacticsError(f"tokenizer file not found: {tokenizer}; run `tactics tokenizer train` first")
    refuse_if_live(root)
    name = check_name(name) if name else auto_name(preset, root)
    folder = root / RUNS_SUBDIR / name
    if holds_run(folder):
        raise TacticsError(
            f"run name {name!r} is in use ({folder}); choose another --run-name, or continue that run "
            f"with `tactics resume --run-name {name}`"
        )
    return folder


def new_run(checkpoint_dir: str | os.PathLike, preset: str, name: str | None = None, needs_tokenizer: bool = True) -> Path:
    """Make the folder of a new run (`<root>/runs/<name>`), copy the tokenizer into it and make it
    the current run. Refuses what `check_new_run` refuses (checked again at the moment it is made)."""
    folder = check_new_run(checkpoint_dir, preset, name, needs_tokenizer)
    folder.mkdir(parents=True, exist_ok=True)
    if needs_tokenizer:
        with atomic_path(folder / TOKENIZER_FILE) as tmp:
            shutil.copyfile(workspace_root(folder) / TOKENIZER_FILE, tmp)
    set_current(workspace_root(folder), folder.name)
    return folder


def prepare_run_folder(folder: str | os.PathLike) -> None:
    """A run folder made by hand (or by an older version) gets the workspace's tokenizer."""
    folder = Path(folder)
    if is_run_folder(folder) and not (folder / TOKENIZER_FILE).exists():
        source = workspace_root(folder) / TOKENIZER_FILE
        if source.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(folder / TOKENIZER_FILE) as tmp:
                shutil.copyfile(source, tmp)


def check_fresh(folder: str | os.PathLike) -> None:
    """A fresh (not resumed) run must not write into a folder another run already wrote."""
    folder = Path(folder)
    if holds_run(folder):
        raise TacticsError(
            f"{folder} already holds a run (metrics.jsonl or checkpoints); a new run gets its own "
            "folder: `tactics train` (under runs/), or continue this one with `tactics resume`"
        )


# ----------------------------------------------------------------------------
# Listing


@dataclass
class RunInfo:
    """One row of `tactics runs` (read from metrics.jsonl, run.json and checkpoint sidecars)."""

    name: str
    path: str
    status: str  # running | finished | early_stop | stopped | failed | vanished | unknown
    preset: str | None = None
    steps: int = 0
    total_steps: int | None = None
    best_val_loss: float | None = None  # the lowest val_loss of any evaluation (whatever select_by is)
    best_val_bpb: float | None = None
    best_proof_loss: float | None = None
    best_proof_bpb: float | None = None
    best_auc: float | None = None  # a scorer's: the highest ROC AUC of any evaluation
    best_used_rank: float | None = None  # a scorer's: the lowest used-step rank of any evaluation
    kind: str = "gpt"  # the model kind the run trains (its start event's `kind`)
    select_by: str | None = None
    best_step: int | None = None
    tokens_per_s: float | None = None
    duration_s: float | None = None
    started: float | None = None
    pid: int | None = None
    message: str = ""
    current: bool = False
    legacy: bool = False
    checkpoints: int = 0
    size_bytes: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.status == "running"

    def to_dict(self, config: bool = True) -> dict[str, Any]:
        d = asdict(self)
        if not config:
            d.pop("config")
        return d




def read_run(folder: str | os.PathLike, current: Path | None = None) -> RunInfo:
    """Everything `tactics runs` shows about one run folder."""
    folder = Path(folder)
    events = read_metrics(metrics_path(folder))
    state = read_run_state(folder, resolve=False)
    info = RunInfo(name=run_name(folder), path=str(folder), status="unknown", legacy=not is_run_folder(folder))
    info.current = current is not None and folder.resolve() == current.resolve()
    starts = [e for e in events if isinstance(e, StartEvent)]
    steps = [e for e in events if isinstance(e, StepEvent)]
    evals = [e for e in events if isinstance(e, EvalEvent)]
    ends = [e for e in events if isinstance(e, EndEvent)]
    if starts:
        first = starts[0]
        info.started = finite_or_none(first.time)
        info.preset = first.preset
        info.config = first.config or {}
        info.kind = str(first.kind or "gpt")
        info.total_steps = starts[-1].total_steps
        info.pid = starts[-1].pid
    if state is not None:
        info.started = info.started or state.started or None
        info.preset = info.preset or state.extra.get("preset")
        info.config = info.config or state.config
        info.pid = state.pid or info.pid
        info.message = state.message
        info.total_steps = info.total_steps or state.total_steps
    if steps:
        info.steps = int(steps[-1].step or 0)
        info.duration_s = finite_or_none(steps[-1].elapsed_s)
        rates = [r for r in (finite_or_none(e.tokens_per_s) for e in steps[1:] or steps) if r]
        info.tokens_per_s = round(statistics.median(rates), 1) if rates else None
    elif state is not None:
        info.steps = state.step
    # Status: alive beats everything; then the end record of the last start; then run.json.
    last_start_time = float(starts[-1].time or 0) if starts else 0.0
    end = next((e for e in reversed(ends) if float(e.time or 0) >= last_start_time), None)
    if state is not None and state.alive:
        info.status = "running"
    elif end is not None:
        info.status = str(end.reason or "unknown")
        info.message = str(end.message or info.message)
        info.duration_s = finite_or_none(end.elapsed_s) or info.duration_s
        info.steps = int(end.step or info.steps)
    elif state is not None and state.state in END_REASONS:
        info.status = state.state
    elif starts or state is not None:
        info.status = "vanished"  # the process is gone without an end record (killed, machine lost)
    # Best figures over every evaluation.
    def best(key: str, pick=min) -> float | None:
        values = [v for v in (finite_or_none(getattr(e, key)) for e in evals) if v is not None]
        return pick(values) if values else None

    info.best_val_loss = best("val_loss")
    info.best_val_bpb = best("val_bpb")
    info.best_proof_loss = best("proof_loss")
    info.best_proof_bpb = best("proof_bpb")
    info.best_auc = best("auc", max)
    info.best_used_rank = best("used_rank")
    if evals:
        info.select_by = evals[-1].select_by or "val_loss"
        bests = {"proof_loss": info.best_proof_loss, "used_rank": info.best_used_rank}
        key = info.select_by if bests.get(info.select_by) is not None else "val_loss"
        scored = [(finite_or_none(getattr(e, key)), int(e.step or 0)) for e in evals]
        scored = [s for s in scored if s[0] is not None]
        if scored:
            info.best_step = min(scored)[1]
    cks = [c for c in list_checkpoints(folder) if c.error is None]
    info.checkpoints = len(cks)
    info.size_bytes = sum(c.size for c in cks)
    if not evals and cks:  # the original scripts' runs: only what the checkpoints say
        # Their best score is their best validation loss (they selected by nothing else).
        losses = [v for v in (c.best_score if c.best_score is not None else c.val_loss for c in cks) if v is not None]
        info.best_val_loss = min(losses) if losses else None
        info.steps = info.steps or max(c.step for c in cks)
    if info.started is None:
        with contextlib.suppress(OSError):
            info.started = min(p.stat().st_mtime for p in folder.iterdir())
    return info


def list_runs(checkpoint_dir: str | os.PathLike) -> list[RunInfo]:
    """Every run of the workspace, oldest first (an old workspace's own run included as `legacy`)."""
    root = workspace_root(checkpoint_dir)
    current = read_current(root)
    folders: list[Path] = []
    if has_legacy_run(root):
        folders.append(root)
        if current is None:
            current = root
    with contextlib.suppress(OSError):
        folders += [p for p in (root / RUNS_SUBDIR).iterdir() if p.is_dir() and not p.name.startswith(".")]
    infos = [read_run(f, current) for f in folders]
    infos.sort(key=lambda i: (i.started or 0.0, i.name))
    return infos


def find_run(checkpoint_dir: str | os.PathLike, name: str) -> RunInfo:
    for info in list_runs(checkpoint_dir):
        if info.name == name:
            return info
    root = workspace_root(checkpoint_dir)
    raise TacticsError(f"no run named {name!r} in {root / RUNS_SUBDIR}; list them with `tactics runs`")


# ----------------------------------------------------------------------------
# Comparing


def flat_settings(info: RunInfo) -> dict[str, Any]:
    """The settings of a run as `section.key` -> value (the preset's name as `preset`)."""
    out: dict[str, Any] = {"preset": info.preset}
    for section, values in sorted((info.config or {}).items()):
        if isinstance(values, dict):
            for key, value in sorted(values.items()):
                out[f"{section}.{key}"] = value
        elif section not in ("name", "description"):  # words about a preset, not settings
            out[section] = values
    return out


@dataclass
class RunDiff:
    a: str
    b: str
    settings: list[tuple[str, Any, Any]]  # only those that differ
    figures: list[tuple[str, Any, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "settings": {k: [va, vb] for k, va, vb in self.settings},
            "figures": {k: [va, vb] for k, va, vb in self.figures},
        }


def diff_runs(a: RunInfo, b: RunInfo) -> RunDiff:
    sa, sb = flat_settings(a), flat_settings(b)
    missing = object()
    settings = []
    for key in sorted(set(sa) | set(sb)):
        va, vb = sa.get(key, missing), sb.get(key, missing)
        if json.dumps(va, default=str, sort_keys=True) != json.dumps(vb, default=str, sort_keys=True):
            settings.append((key, None if va is missing else va, None if vb is missing else vb))
    scorer = SCORER_FIGURES if "scorer" in (a.kind, b.kind) else ()
    keys = (*FIGURES, *scorer, "best_step", "steps", "status", "tokens_per_s", "duration_s")
    figures = [(k, getattr(a, k), getattr(b, k)) for k in keys]
    return RunDiff(a.name, b.name, settings, figures)


# ----------------------------------------------------------------------------
# Removing


def remove_run(checkpoint_dir: str | os.PathLike, name: str) -> Path:
    """Delete a run's folder (refused while it runs, and for an old workspace's own files).

    The folder is first renamed to a hidden name (so no half-removed run is ever listed), then
    deleted; the current-run and best-model links move to the newest remaining run.
    """
    root = workspace_root(checkpoint_dir)
    info = find_run(root, name)
    folder = Path(info.path)
    if info.legacy:
        raise TacticsError(
            f"the legacy run is the checkpoint folder {folder} itself (shared with the tokenizer); "
            "remove its checkpoint files by hand if you mean to"
        )
    state = read_run_state(folder, resolve=False)
    if state is not None and state.alive:
        raise TacticsError(f"run {name} is running (pid {state.pid}); stop it first with `tactics stop --run-name {name}`")
    trash = folder.with_name(f".{folder.name}.removing-{os.getpid()}")
    os.rename(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)
    rest = [i for i in list_runs(root) if not i.legacy]
    current = root / CURRENT_LINK
    if current.is_symlink() or current.is_file():
        if read_current(root) is None:
            if rest:
                set_current(root, rest[-1].name)
            else:
                current.unlink()
    best = root / BEST_MODEL_FILE
    if best.is_symlink() and not best.exists():
        best.unlink()
        for other in reversed(rest):
            if (Path(other.path) / BEST_MODEL_FILE).is_file():
                publish_best(other.path)
                break
    return folder


# ----------------------------------------------------------------------------
# Lineage: which exports came from which checkpoint


@dataclass
class ExportInfo:
    path: str
    run: str | None
    checkpoint: str | None
    step: int | None
    created: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_exports(export_root: str | os.PathLike) -> list[ExportInfo]:
    """Every export folder under `export_root` with the run and checkpoint its config.json names.

    Temp folders of exports killed mid-write are removed on the way (`atomic.remove_stale_partials`).
    """
    root = Path(export_root)
    remove_stale_partials(root)
    out: list[ExportInfo] = []
    with contextlib.suppress(OSError):
        for folder in sorted(root.iterdir()):
            cfg = folder / "config.json"
            if folder.name.startswith(".") or not cfg.is_file():
                continue
            try:
                data = json.loads(cfg.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            source = data.get("source") if isinstance(data.get("source"), dict) else {}
            out.append(
                ExportInfo(
                    path=str(folder),
                    run=source.get("run"),
                    checkpoint=source.get("checkpoint_path"),
                    step=data.get("training_step"),
                    created=cfg.stat().st_mtime,
                )
            )
    return out


def exports_of(exports: list[ExportInfo], checkpoint: str | os.PathLike) -> list[ExportInfo]:
    """The exports made from this checkpoint file (compared by real path)."""
    try:
        want = str(Path(checkpoint).resolve())
    except OSError:
        want = str(checkpoint)
    found = []
    for e in exports:
        if not e.checkpoint:
            continue
        try:
            got = str(Path(e.checkpoint).resolve())
        except OSError:
            got = e.checkpoint
        if got == want:
            found.append(e)
    return found
