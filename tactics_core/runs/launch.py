"""Starting a training run: one request, checked whole before anything is written.

`tactics train` and `tactics resume` (attached, `--detach`, `--nproc N`), `tactics quickstart`
and the TUI's Training screen all start runs here, so resume resolution, the live-run and name
checks and the training process's command line exist once.

* `plan(request)` resolves and checks a `LaunchRequest` and writes nothing: a damaged
  checkpoint, a bad preset or a live run leave the workspace byte for byte as it was.
* `prepare(plan)` then makes the new run's folder (and makes it the current run).
* The run starts in this process (`settle`, then `LaunchPlan.train_here`), as torchrun ranks in
  place of this process (`exec_ranks`) or detached (`start_detached`). A training process
  started so is given the resolved run folder and checkpoint (`LaunchPlan.argv`) and plans
  its request again, so the checks hold at the moment it starts.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

from tactics_core.common.errors import TacticsError
from tactics_core.common.workspace import CHECKPOINT_DIR, DATA_DIR, PRESETS_DIR, TOKENIZER_FILE, TRACES_DIR, current_run_dir, is_run_folder, workspace_root
from tactics_core.runs import run_folder, workspace_runs
from tactics_core.runs.checkpoints import latest_checkpoint, load_checkpoint
from tactics_core.runs.run_events import DEFAULT_METRICS_INTERVAL, metrics_path
from tactics_core.training.distributed import DistHandle, env_world, shares, torchrun_command
from tactics_core.training.loop import TrainResult, preset_for_checkpoint, train
from tactics_core.training.presets import Preset, apply_overrides, load_preset


@dataclass(frozen=True)
class LaunchRequest:
    """A run to start, as asked for (the CLI's options, the TUI's form); checked on creation."""

    checkpoint_dir: Path = CHECKPOINT_DIR  # the workspace's checkpoint folder (its current run) or a run folder
    resume: bool = False  # continue a run; else train a new one
    checkpoint: Path | None = None  # resume from this file (None: the run's latest resumable checkpoint)
    run_name: str | None = None  # a new run's folder name; for a resume, the run to continue
    preset: str = "default"  # a new run's preset: a name or a .toml file
    overrides: tuple[str, ...] = ()  # a new run's `--set SECTION.KEY=VALUE`
    presets_dir: Path = PRESETS_DIR
    data_dir: Path | None = None  # None: data/proofs (a scorer: traces/); for a resume, the folder its checkpoint was trained on
    device: str | None = None  # None: the preset's
    max_steps: int | None = None  # total optimizer steps to reach; None: the preset's
    metrics_interval: float = DEFAULT_METRICS_INTERVAL
    nproc: int = 1  # data-parallel processes (torchrun ranks)
    detach: bool = False  # in its own session, outliving the terminal

    def __post_init__(self) -> None:
        for name in ("checkpoint_dir", "checkpoint", "presets_dir", "data_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        object.__setattr__(self, "overrides", tuple(str(item) for item in self.overrides))
        if self.max_steps is not None and self.max_steps <= 0:
            raise TacticsError(f"--max-steps must be > 0, got {self.max_steps}")
        if self.metrics_interval < 0:
            raise TacticsError(f"--metrics-interval must be >= 0, got {self.metrics_interval}")
        if self.nproc < 1:
            raise TacticsError(f"--nproc must be >= 1, got {self.nproc}")
        if self.nproc > 1 and env_world() > 1:
            raise TacticsError("--nproc inside a torchrun rank: drop --nproc (torchrun already started the ranks)")
        if self.resume and self.overrides:
            raise TacticsError("--set applies to a new run; a resumed run keeps its checkpoint's settings")
        if self.checkpoint is not None and not self.resume:
            raise TacticsError("a checkpoint to start from is a resume (`tactics resume CHECKPOINT`)")

    def argv(self) -> list[str]:
        """The `tactics` arguments that ask for this request; options at their defaults are left out."""
        if self.resume:
            out = ["resume", *([str(self.checkpoint)] if self.checkpoint is not None else [])]
            out += ["--checkpoint-dir", str(self.checkpoint_dir)]
        else:
            out = ["train", "--preset", self.preset, "--checkpoint-dir", str(self.checkpoint_dir),
                   "--presets-dir", str(self.presets_dir)]
            for item in self.overrides:
                out += ["--set", item]
        if self.run_name:
            out += ["--run-name", self.run_name]
        if self.data_dir is not None:
            out += ["--data-dir", str(self.data_dir)]
        if self.max_steps is not None:
            out += ["--max-steps", str(int(self.max_steps))]
        if self.device:
            out += ["--device", self.device]
        if self.metrics_interval != DEFAULT_METRICS_INTERVAL:
            out += ["--metrics-interval", str(float(self.metrics_interval))]
        if self.nproc > 1:
            out += ["--nproc", str(int(self.nproc))]
        if self.detach:
            out.append("--detach")
        return out


@dataclass(frozen=True)
class LaunchPlan:
    """A request resolved and checked against the workspace: where the run writes, from what."""

    request: LaunchRequest
    folder: Path  # the run folder
    checkpoint: Path | None  # what a resume continues from
    data_dir: Path
    preset: Preset  # a new run's, with its overrides; a resume's, its checkpoint's
    new_folder: bool  # `prepare` makes the folder (a new run, or a checkpoint from outside any run)

    def argv(self) -> list[str]:
        """The training process's `tactics` arguments: the run folder, checkpoint and data folder as
        resolved here (every process of the run means the same), one process each (torchrun makes the ranks)."""
        resolved = replace(self.request, checkpoint_dir=self.folder, checkpoint=self.checkpoint,
                           data_dir=self.data_dir, run_name=None, nproc=1, detach=False)
        return resolved.argv()

    def command(self) -> list[str]:
        """The training process's whole command line (under torchrun with `nproc` > 1)."""
        n = self.request.nproc
        python = torchrun_command(n) if n > 1 else [sys.executable, "-m", "tactics_core"]
        return python + self.argv()

    def train_here(self, **kwargs: Any) -> TrainResult:
        """Train this (prepared) plan in this process; `kwargs` go to `train.train` (progress, on_event, ...)."""
        r = self.request
        return train(
            None if r.resume else self.preset, self.data_dir, self.folder, max_steps=r.max_steps, device=r.device,
            resume=self.checkpoint, metrics_interval=r.metrics_interval, **kwargs,
        )


@dataclass(frozen=True)
class Started:
    """A detached run: its process and its run folder."""

    pid: int
    folder: Path


def plan(request: LaunchRequest) -> LaunchPlan:
    """Resolve and check a request; writes nothing.

    Raises TacticsError for everything that can be seen before the run: an unknown preset or
    bad --set, a missing data folder or tokenizer, a run name in use or not usable, a live run
    in the workspace, a checkpoint missing, damaged or of another run, a checkpoint preset that
    does not validate, a batch that does not divide among --nproc processes.
    """
    if request.resume:
        checkpoint, folder, new_folder = _resume_source(request)
        payload = load_checkpoint(checkpoint)
        preset = preset_for_checkpoint(payload)
        if not new_folder:  # check_new_run checked a new folder's workspace
            workspace_runs.refuse_if_live(folder)
            if (preset.kind == "gpt" and not (folder / TOKENIZER_FILE).is_file()
                    and not (workspace_root(folder) / TOKENIZER_FILE).is_file()):
                raise TacticsError(
                    f"tokenizer file not found: {folder / TOKENIZER_FILE}; run `tactics tokenizer train` first"
                )
        data_dir = request.data_dir or _trained_on(payload)
    else:
        preset = _new_preset(request)
        data_dir = request.data_dir or default_data_dir(preset)
        checkpoint, new_folder = None, True
    if not data_dir.exists():
        if preset.kind == "scorer":
            raise TacticsError(f"traces folder {data_dir} not found; record traces with `tactics traces collect` "
                               "or pass --data-dir with a folder of acorn eval traces")
        raise TacticsError(f"data folder {data_dir} not found; run `tactics demo` or pass --data-dir DIR")
    if request.nproc > 1:
        shares(int(preset.training.batch_size), max(1, int(preset.training.grad_accum_steps)), request.nproc)
    if not request.resume:
        folder = workspace_runs.check_new_run(request.checkpoint_dir, request.preset, request.run_name,
                                              needs_tokenizer=preset.kind == "gpt")
    return LaunchPlan(request, folder, checkpoint, data_dir, preset, new_folder)


def prepare(launch: LaunchPlan) -> Path:
    """Make a new run's folder (with the workspace's tokenizer) and make it the current run,
    checking its name and the workspace again; a run that continues in its folder needs nothing."""
    if launch.new_folder:
        workspace_runs.new_run(launch.folder, launch.request.preset, needs_tokenizer=launch.preset.kind == "gpt")
    return launch.folder


def group_device(request: LaunchRequest) -> str:
    """The device the process group is made for, before the plan (which rank 0 alone makes)."""
    if request.device:
        return request.device
    return "auto" if request.resume else _new_preset(request).training.device


def settle(request: LaunchRequest, dist: DistHandle) -> LaunchPlan:
    """The prepared plan of the run this process trains: rank 0 plans and prepares it (a new
    run's folder is made once), and every torchrun rank gets rank 0's plan or its error."""
    return dist.broadcast_object(dist.on_main(_plan_and_prepare, request))


def _plan_and_prepare(request: LaunchRequest) -> LaunchPlan:
    found = plan(request)
    prepare(found)
    return found


def exec_ranks(launch: LaunchPlan) -> NoReturn:
    """Become `torch.distributed.run` with the plan's ranks (`--nproc N`, attached; `prepare` first)."""
    cmd = launch.command()
    sys.stderr.flush()
    sys.stdout.flush()
    os.execv(sys.executable, cmd)
    raise AssertionError("os.execv returned")  # not reached


def start_detached(request: LaunchRequest) -> Started:
    """Plan, prepare and start the run in its own session (`run_folder.spawn_detached`); returns at once."""
    launch = plan(request)
    prepare(launch)
    return Started(run_folder.spawn_detached(launch.command(), launch.folder), launch.folder)


def _new_preset(request: LaunchRequest) -> Preset:
    return apply_overrides(load_preset(request.preset, request.presets_dir), list(request.overrides))


def _resume_source(request: LaunchRequest) -> tuple[Path, Path, bool]:
    """(checkpoint, run folder, whether the folder is new): a run's checkpoint continues in its own
    folder; a checkpoint from outside any run (the original scripts') starts a new run from it."""
    path = request.checkpoint
    if path is not None:
        if not path.is_file():
            raise TacticsError(f"checkpoint not found: {path} (list them with `tactics checkpoints`)")
        home = path.parent
        if is_run_folder(home) or metrics_path(home).exists():
            if request.run_name and request.run_name != workspace_runs.run_name(home):
                raise TacticsError(
                    f"{path} belongs to run {workspace_runs.run_name(home)}, not {request.run_name}; "
                    "a resumed run continues in its own folder (drop --run-name)"
                )
            return path, home, False
        return path, workspace_runs.check_new_run(request.checkpoint_dir, path.stem, request.run_name), True
    if request.run_name:
        folder = Path(workspace_runs.find_run(request.checkpoint_dir, request.run_name).path)
    else:
        folder = current_run_dir(request.checkpoint_dir)
    latest = latest_checkpoint(folder)
    if latest is None:
        raise TacticsError(f"no checkpoint to resume in {folder}; start a run with `tactics train`")
    return latest, folder, False


def default_data_dir(preset: Preset) -> Path:
    """What a run reads when --data-dir is not given: the corpus (data/proofs), or a scorer's traces/."""
    return TRACES_DIR if preset.kind == "scorer" else DATA_DIR


def _trained_on(payload: dict[str, Any]) -> Path:
    """The data folder a checkpoint was trained on, when it is still there; else the default."""
    recorded = payload.get("data_dir")
    if recorded and Path(recorded).exists():
        return Path(recorded)
    return TRACES_DIR if payload.get("kind") == "scorer" else DATA_DIR
