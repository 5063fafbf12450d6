"""The training loop: schedule, evaluation, early stopping, NaN stop, checkpoints, exact resume.

Choices, and why:

* AdamW with weight decay on matrices and embeddings (every parameter with
  2+ dimensions, as nanoGPT) and none on the RMSNorm gains (decaying a gain
  towards 0 only fights the normalisation).
* Learning rate: linear warmup to `learning_rate`, then cosine decay to
  `min_lr` over the TRUE number of optimizer steps (`max_steps`, or epochs x
  micro-batches per epoch / grad_accum_steps), so short runs still anneal.
* Gradient accumulation sums token NLL over all micro-batches of a step and
  divides by the step's total scored tokens: the same loss as one big batch,
  whatever the padding of each micro-batch.
* Exact resume: a periodic or final checkpoint holds the model, optimizer,
  step, RNG states (torch CPU/CUDA, python, numpy), the data position
  (epoch, micro-batch) and the early-stopping counters. The data order is a
  pure function of (seed, epoch), so on CPU N straight steps and N/2 +
  resume + N/2 give bitwise the same loss at every step.
* A run ends for one of four reasons: finished, early_stop, stopped (stop
  request, SIGINT/SIGTERM/SIGHUP, cancel) or failed. Every end except a
  non-finite loss writes a final checkpoint first; after a NaN/inf the
  weights are suspect, so the last good checkpoint is kept as the one to use.
* CPU threads: torch's OpenMP workers spin-wait by default, which makes
  training 30-40x slower when another busy process (the TUI) shares 2 cores.
  A detached run gets OMP_WAIT_POLICY=PASSIVE before torch is imported, and
  `training.num_threads` (0 = all cores) sets torch's thread count.

Why one module of about a thousand lines: it is the loop, read top to bottom as nanoGPT's
train.py is (set-up, `_loop`, `_after_step`, `_evaluate`, the checkpoints, `_finish`), every
step a module-level function over one `_Run` and the `LoopState`. What is not the loop lives
beside it: the kinds (`model_kind`, `kinds`), the budget (`budget`), the process group
(`distributed`), Muon (`muon`), the presets (`presets`).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tactics_core.training import distributed
from tactics_core.runs.checkpoints import BEST_SCORE_KEY, FORMAT, checkpoint_step_path
from tactics_core.common.device import resolve_device, resolve_precision
from tactics_core.training.distributed import DistHandle
from tactics_core.common.errors import TacticsError
from tactics_core.gpt.layouts import FILE
from tactics_core.training.kinds import training_kind
from tactics_core.training.model_kind import KindData, TrainingKind
from tactics_core.common.progress import CancelToken, ProgressFn, report
from tactics_core.runs.run_events import (
    DEFAULT_METRICS_INTERVAL, CheckpointEvent, EndEvent, EvalEvent, RunEvent, SampleEvent, StartEvent, StepEvent,
)
from tactics_core.runs.run_folder import RankRecorder, Recorder, RunRecorder, install_stop_signals
from tactics_core.common.workspace import BEST_MODEL_FILE
from tactics_core.runs.workspace_runs import check_fresh, mark_current, publish_best, run_name

if TYPE_CHECKING:  # types only: torch and the model load inside the functions that run them
    import numpy as np
    import torch
    from torch.nn.parallel import DistributedDataParallel

    from tactics_core.gpt.data import Split
    from tactics_core.training.presets import Preset, TrainingSection


@dataclass
class TrainResult:
    """How a run ended."""

    reason: str  # one of run_events.END_REASONS
    message: str
    step: int
    total_steps: int
    best_score: float | None  # the best `select_by` figure of the run (None before an evaluation)
    last_checkpoint: str | None
    select_by: str = "val_loss"  # which figure that is (`training.select_by`)


def configure_threads(num_threads: int = 0) -> int:
    """Set torch's CPU thread count (0 = every core) and return it.

    OMP_WAIT_POLICY must be set before torch is first imported to matter; the
    CLI and run_folder.spawn_detached set it to PASSIVE.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    n = int(num_threads) if num_threads and num_threads > 0 else (os.cpu_count() or 1)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def lr_at(step: int, total_steps: int, warmup_steps: int, lr: float, min_lr: float) -> float:
    """Learning rate for the optimizer step with 0-based index `step`."""
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    frac = min(1.0, max(0.0, (step - warmup_steps) / span))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * frac)) * (lr - min_lr)


def make_optimizer(model: torch.nn.Module, training: TrainingSection, device: str) -> torch.optim.Optimizer:
    """AdamW (or Muon for the block matrices, `training.optimizer = "muon"`); decay on
    tensors with 2+ dims (matrices, embeddings), none on norm gains."""
    import torch

    if training.optimizer == "muon":
        from tactics_core.training.muon import MuonAdamW, muon_groups

        return MuonAdamW(muon_groups(model, training))

    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": float(training.weight_decay)},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    kwargs: dict[str, Any] = {"lr": float(training.learning_rate), "betas": tuple(training.betas)}
    if device.startswith("cuda"):
        kwargs["fused"] = True
    return torch.optim.AdamW(groups, **kwargs)


# ----------------------------------------------------------------------------
# RNG state as plain tensors / lists (checkpoints load with weights_only=True)


def capture_rng() -> dict[str, Any]:
    import numpy as np
    import torch

    version, state, gauss = random.getstate()
    np_state = np.random.get_state()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": {"version": int(version), "state": torch.tensor(state, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "key": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_rng(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(state["torch"].cpu())
    py = state["python"]
    random.setstate((int(py["version"]), tuple(int(x) for x in py["state"].tolist()), py["gauss"]))
    npst = state["numpy"]
    np.random.set_state(
        ("MT19937", npst["key"].numpy().astype(np.uint32), int(npst["pos"]), int(npst["has_gauss"]), float(npst["cached_gaussian"]))
    )
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------
# Loading what a run needs


def preset_for_checkpoint(payload: dict[str, Any], presets_dir: str | os.PathLike = "presets") -> Preset:
    """The preset a checkpoint was trained with (ours), or the default preset shaped like its model (original)."""
    from tactics_core.training.presets import apply_overrides, load_preset, preset_from_dict

    from tactics_core.runs.checkpoints import training_layout

    config = payload.get("config")
    if isinstance(config, dict) and config.get("kind", "gpt") != "gpt":  # another kind records its whole preset
        return preset_from_dict(config, name=str(payload.get("preset") or "checkpoint"))
    if isinstance(config, dict) and "model" in config:
        # Runs from before the prover layout trained on whole files and selected by val_loss.
        training = {"select_by": "val_loss", **(config.get("training") or {}), "layout": training_layout(payload)}
        return preset_from_dict({**config, "training": training}, name=str(payload.get("preset") or "checkpoint"))
    preset = load_preset("default", presets_dir)
    cfg = payload.get("model_config") or {}
    from tactics_core.gpt.model import GPTConfig

    shape = GPTConfig.from_dict(cfg)
    return apply_overrides(
        preset,
        [
            f"model.d_model={shape.d_model}",
            f"model.n_layers={shape.n_layers}",
            f"model.n_heads={shape.n_heads}",
            f"model.context_length={shape.context_length}",
            f"model.dropout={shape.dropout}",
            f"training.layout={FILE.name}",
            "training.select_by=val_loss",
        ],
    )


def _load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> bool:
    try:
        optimizer.load_state_dict(state)
        return True
    except (ValueError, KeyError, RuntimeError):
        return False


def _oom_message(kind: TrainingKind, preset: Preset, device: str) -> str:
    return f"out of memory on {device} {kind.oom_hint(preset)}"


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, MemoryError):
        return True
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


# ----------------------------------------------------------------------------
# The loop state


@dataclass
class LoopState:
    """What the loop carries from step to step: with the model and optimizer weights, all a
    checkpoint needs to continue the run exactly. Saved whole as the checkpoint's
    `train_state` (`to_dict`) and read back whole (`from_dict`)."""

    step: int = 0  # optimizer steps done
    total_steps: int = 0  # the schedule's length
    data_epoch: int = 0  # the data position after the last completed step
    data_batch: int = 0
    best_score: float = math.inf  # the best `select_by` figure so far (lower is better)
    select_by: str = "val_loss"
    bad_evals: int = 0  # evaluations without improvement (early stopping)
    tokens_seen: int = 0
    elapsed_s: float = 0.0  # training time of the earlier sessions; `elapsed()` adds this one's
    train_rows: int | None = None  # the training rows it counted: another corpus restarts the data order
    data_seed: int = 0
    world_size: int = 1
    rng: dict[str, Any] | None = None  # capture_rng() of the process (rank 0 under DDP)
    rng_ranks: list[dict[str, Any]] | None = None  # every rank's, when a full process group saved
    session_start: float = field(default_factory=time.monotonic, repr=False, compare=False)

    def elapsed(self, now: float | None = None) -> float:
        """Training time so far, summed over resumes."""
        return self.elapsed_s + ((time.monotonic() if now is None else now) - self.session_start)

    @property
    def best(self) -> float | None:
        """The best score, None before the first evaluation."""
        return None if math.isinf(self.best_score) else self.best_score

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's `train_state`: the keys the trainer always wrote, plus `step`."""
        return {
            "step": self.step,
            "data_epoch": self.data_epoch,
            "data_batch": self.data_batch,
            "world_size": self.world_size,
            "rng_ranks": self.rng_ranks,
            "data_seed": self.data_seed,
            "train_rows": self.train_rows,
            "total_steps": self.total_steps,
            "best_score": self.best_score,
            "select_by": self.select_by,
            "bad_evals": self.bad_evals,
            "tokens_seen": self.tokens_seen,
            "elapsed_s": self.elapsed(),
            "rng": self.rng,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], step: int = 0) -> "LoopState":
        """Read a `train_state`. Checkpoints from before LoopState hold no `step` (pass their
        `global_step`); a missing counter reads as a fresh one. The best score was saved as
        `best_val_loss` before it was named for what it holds."""
        train_rows = data.get("train_rows")
        return cls(
            step=int(data.get("step", step) or 0),
            total_steps=int(data.get("total_steps") or 0),
            data_epoch=int(data["data_epoch"]),
            data_batch=int(data["data_batch"]),
            best_score=float(data.get("best_score", data.get("best_val_loss", math.inf))),
            select_by=str(data.get("select_by", "val_loss")),
            bad_evals=int(data.get("bad_evals", 0)),
            tokens_seen=int(data.get("tokens_seen", 0)),
            elapsed_s=float(data.get("elapsed_s", 0.0)),
            train_rows=None if train_rows is None else int(train_rows),
            data_seed=int(data.get("data_seed", 0)),
            world_size=int(data.get("world_size") or 1),
            rng=data.get("rng"),
            rng_ranks=data.get("rng_ranks"),
        )


@dataclass
class _Session:
    """What this session has done that a checkpoint does not carry: where it started, its
    latest checkpoint and evaluation, and whether the weights can still be trusted."""

    start_step: int = 0
    last_good: str | None = None  # the last checkpoint written (or resumed from)
    saved_at: int = -1  # the step of the last periodic checkpoint of this session
    last_eval: dict[str, float] = field(default_factory=dict)  # val_loss, val_bpb, proof_loss, proof_bpb
    suspect: bool = False  # NaN/inf, or an optimizer step that broke: no final checkpoint


@dataclass
class _Run:
    """One training session as one object, which every step takes: what it was set up with
    (read only once the loop starts), the model and optimizer it trains, and `session`, what it
    has done so far. The loop's own state, what a checkpoint carries, is the `LoopState`."""

    recorder: Recorder
    preset: Preset
    config: dict[str, Any]  # the preset as a dict: what checkpoints and the start event record
    data_dir: Path
    checkpoint_dir: Path
    dist: DistHandle
    device: str
    threads: int
    kind: TrainingKind  # what differs per model kind: data, model, loss, figures, sample, checkpoint fields
    dataset: KindData
    cancel: CancelToken | None
    progress: ProgressFn | None
    micro_per_epoch: int
    accum: int
    share_mode: str  # how a step's micro-batches are dealt to ranks (distributed.shares)
    precision: str = "fp32"  # "bf16" or "fp32": device.resolve_precision of training.precision
    # Made by the set-up steps, before the first step reads them:
    model: torch.nn.Module = field(init=False)  # _build_model
    model_config: Any = field(init=False)  # _build_model (its to_dict() goes into checkpoints)
    optimizer: torch.optim.Optimizer = field(init=False)  # _build_optimizer
    ddp: DistributedDataParallel | None = None  # _wrap_ddp, with several ranks only
    session: _Session = field(default_factory=_Session)

    @property
    def tr(self) -> TrainingSection:
        return self.preset.training

    @property
    def net(self) -> torch.nn.Module:
        """What the forward pass runs through: the DDP wrapper, else the model."""
        return self.ddp if self.ddp is not None else self.model

    def stop_requested(self) -> bool:
        if self.cancel is not None and self.cancel.cancelled:
            self.recorder.request_stop("cancelled")
        return self.recorder.stop_event.is_set()


# ----------------------------------------------------------------------------
# The run


@dataclass(frozen=True)
class TrainRequest:
    """Everything one training session is asked to do, as one value (what `train()` takes as
    arguments; the CLI, the TUI's worker, the sweeps and the benches build one).

    `preset`: a presets.Preset (for resume, None = the checkpoint's own).
    `max_steps`: total optimizer steps to reach (overrides the preset).
    `resume`: a checkpoint path to continue from.
    `on_event`: called with every metrics event (a run_events.RunEvent; the CLI prints them).
    `metrics_interval`: at most one step event per this many seconds (0 = every step).
    `handle_signals`: SIGINT/SIGTERM/SIGHUP ask the run to stop (off where the caller owns them).
    """

    preset: Preset | None
    data_dir: Path
    checkpoint_dir: Path
    max_steps: int | None = None
    device: str | None = None
    resume: Path | None = None
    progress: ProgressFn | None = None
    cancel: CancelToken | None = None
    on_event: Callable[[RunEvent], None] | None = None
    metrics_interval: float = DEFAULT_METRICS_INTERVAL
    heartbeat_interval: float = 1.0
    handle_signals: bool = True


def train(
    preset: Preset | None,
    data_dir: str | os.PathLike,
    checkpoint_dir: str | os.PathLike,
    *,
    max_steps: int | None = None,
    device: str | None = None,
    resume: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    on_event: Callable[[RunEvent], None] | None = None,
    metrics_interval: float = DEFAULT_METRICS_INTERVAL,
    heartbeat_interval: float = 1.0,
    handle_signals: bool = True,
) -> TrainResult:
    """Train (or resume) into `checkpoint_dir`; returns how the run ended. The arguments are
    those of `TrainRequest`; `run_training` takes one."""
    return run_training(TrainRequest(
        preset=preset, data_dir=Path(data_dir), checkpoint_dir=Path(checkpoint_dir), max_steps=max_steps,
        device=device, resume=Path(resume) if resume else None, progress=progress, cancel=cancel,
        on_event=on_event, metrics_interval=metrics_interval, heartbeat_interval=heartbeat_interval,
        handle_signals=handle_signals,
    ))


def run_training(request: TrainRequest) -> TrainResult:
    """Run one training session as asked. Raises TacticsError for problems found before the
    first step (tokenizer missing or different, bad data, device); problems during training
    end the run with reason "failed" instead."""
    preset, checkpoint_dir = request.preset, request.checkpoint_dir
    # Under torchrun (WORLD_SIZE > 1) every rank runs this; only rank 0 touches the run folder.
    dist = distributed.init(request.device or (preset.training.device if preset is not None else "auto"))
    if not dist.is_main:
        request = replace(request, progress=None)  # one console: rank 0's
    payload = None
    if request.resume is not None:
        from tactics_core.runs.checkpoints import load_checkpoint

        payload = load_checkpoint(request.resume)
        if preset is None:
            preset = preset_for_checkpoint(payload)
    if preset is None:
        raise TacticsError("no preset given and no checkpoint to take one from")
    kind = training_kind(preset.kind)
    # A run folder gets what its kind needs (the GPT: the workspace's tokenizer), which the other ranks then read.
    dist.on_main(kind.prepare_folder, checkpoint_dir)
    kind.check_folder(checkpoint_dir)
    from tactics_core.training.presets import preset_to_dict

    config = preset_to_dict(preset)
    recorder: Recorder = (
        RunRecorder(checkpoint_dir, config=config, on_event=request.on_event, heartbeat_interval=request.heartbeat_interval)
        if dist.is_main else RankRecorder()
    )
    dist.on_main(_claim_folder, recorder, checkpoint_dir, preset.name, dist.world, fresh=request.resume is None)
    with recorder:
        restore_signals = install_stop_signals(recorder) if request.handle_signals else (lambda: None)
        try:
            return _run(request, recorder, preset, kind, config, payload, dist)
        except Exception as exc:  # before the first step: nothing to checkpoint yet
            error: TacticsError | None
            if isinstance(exc, TacticsError):
                error = exc
            elif _is_oom(exc):
                error = TacticsError(_oom_message(kind, preset, request.device or preset.training.device))
            else:
                error = None
            message = str(error) if error is not None else f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            recorder.emit(EndEvent(reason="failed", message=message, step=0))
            recorder.set_state("failed", message)
            if error is not None and error is not exc:
                raise error from exc
            raise
        finally:
            restore_signals()


def _claim_folder(recorder: Recorder, checkpoint_dir: Path, preset_name: str, world: int, fresh: bool) -> None:
    """Rank 0 takes the run folder: a fresh run never writes over another run's files; the
    folder becomes the workspace's current run; its lock is taken and run.json written."""
    if fresh:
        check_fresh(checkpoint_dir)
    mark_current(checkpoint_dir)
    recorder.update(preset=preset_name, world_size=world)
    recorder.open()


def _run(
    request: TrainRequest,
    recorder: Recorder,
    preset: Preset,
    kind: TrainingKind,
    config: dict[str, Any],
    payload: dict[str, Any] | None,
    dist: DistHandle | None = None,
) -> TrainResult:
    """One training session: set up, resume if asked, loop, then the final checkpoint and end event."""
    dist = dist if dist is not None else distributed.SINGLE
    data_dir, checkpoint_dir, resume_path = request.data_dir, request.checkpoint_dir, request.resume
    cancel, progress = request.cancel, request.progress
    session_start = time.monotonic()
    device, threads = _pick_device(preset, request.device, dist)
    kind.open(checkpoint_dir, payload, resume_path)
    recorder.update(state="starting", message=kind.reading_message)
    dataset = kind.read_data(preset, data_dir, checkpoint_dir, progress, cancel, dist)
    tr = preset.training
    accum = max(1, int(tr.grad_accum_steps))
    # The preset's batch is the global one: a step is `accum` micro-batches of `batch_size`
    # rows in the one-process order, dealt to the ranks (distributed.shares).
    share_mode, _ = distributed.shares(int(tr.batch_size), accum, dist.world)
    run = _Run(
        recorder, preset, config, data_dir, checkpoint_dir, dist, device, threads, kind, dataset, cancel,
        progress, micro_per_epoch=dataset.train.n_batches(tr.batch_size), accum=accum, share_mode=share_mode,
        precision=resolve_precision(tr.precision, device),
    )
    _build_model(run)
    state, saved, note = _start_state(run, payload, resume_path, request.max_steps)
    state.session_start = session_start
    note = _join(note, _build_optimizer(run, payload))
    note = _join(note, _restore_rng_state(saved, dist, int(tr.seed), state.step))
    _wrap_ddp(run)
    run.session.start_step = state.step
    resumed_from = str(resume_path) if payload is not None else None
    if resumed_from is not None:
        run.session.last_good, run.session.saved_at = resumed_from, state.step
    _announce(run, state, note, resumed_from)
    try:
        reason, message = _loop(run, state, request.metrics_interval)
    except KeyboardInterrupt:
        reason, message = "stopped", "interrupted (second Ctrl-C)"
        dist.broken = dist.enabled  # ranks may be anywhere in a step: rank 0 saves alone
    except distributed.PeerLost as exc:
        reason, message = "failed", f"rank {dist.rank}: {exc}"
    except Exception as exc:
        reason, message = "failed", _failure_message(run, exc)
    return _finish(run, state, reason, message)


def _pick_device(preset: Preset, device_name: str | None, dist: DistHandle) -> tuple[str, int]:
    """The device of this process and its CPU thread count (cores / local ranks under DDP)."""
    num_threads = int(preset.training.num_threads or 0)
    if num_threads <= 0 and dist.enabled:
        num_threads = distributed.default_threads(dist)  # cores / local ranks (torchrun would say 1)
    threads = configure_threads(num_threads)
    import torch

    device = distributed.rank_device(resolve_device(device_name or preset.training.device), dist)
    if dist.enabled and device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    return device, threads


def _build_model(run: _Run) -> None:
    """The model from the preset, seeded: the same initial weights on every rank, each rank
    its own dropout masks."""
    import torch

    seed = int(run.tr.seed)
    seed_everything(seed)
    run.model, run.model_config = run.kind.build_model(run.preset, run.dataset)
    if run.dist.rank > 0:
        torch.manual_seed(seed + 7919 * run.dist.rank)


def _total_steps(max_steps: int | None, tr: TrainingSection, micro_per_epoch: int, accum: int) -> int:
    """--max-steps, else the preset's max_steps, else its epochs in optimizer steps."""
    if max_steps:
        return int(max_steps)
    if tr.max_steps:
        return int(tr.max_steps)
    return max(1, math.ceil(tr.epochs * micro_per_epoch / accum))


def _start_state(
    run: _Run, payload: dict[str, Any] | None, resume_path: Path | None, max_steps: int | None,
) -> tuple[LoopState, LoopState | None, str]:
    """The loop state this session starts from, the one the checkpoint saved (None when it has
    none), and a note when the resume is not exact. A resume loads the checkpoint's weights."""
    tr = run.tr
    state = LoopState(
        total_steps=_total_steps(max_steps, tr, run.micro_per_epoch, run.accum), select_by=tr.select_by,
        train_rows=run.dataset.train.n_rows, data_seed=int(tr.seed), world_size=run.dist.world,
    )
    if payload is None:
        return state, None, ""
    import torch

    run.kind.load_weights(run.model, payload["model"], str(resume_path))
    state.step = int(payload.get("global_step") or 0)
    saved, note = None, ""
    if payload.get("train_state") is not None:
        saved = LoopState.from_dict(payload["train_state"], step=state.step)
        if max_steps is None:
            state.total_steps = int(saved.total_steps or state.total_steps)
        state.data_epoch, state.data_batch = saved.data_epoch, saved.data_batch
        # A run that changed what it selects by starts its best figure over.
        state.best_score = saved.best_score if saved.select_by == state.select_by else math.inf
        state.bad_evals = 0 if state.best_score == math.inf else saved.bad_evals
        state.tokens_seen, state.elapsed_s = saved.tokens_seen, saved.elapsed_s
        if saved.train_rows is not None and saved.train_rows != state.train_rows:
            note = "the corpus changed since this checkpoint: data order restarts at a new epoch (approximate resume)"
            state.data_epoch, state.data_batch = saved.data_epoch + 1, 0
    else:
        kind = "a model-only checkpoint" if payload.get("format") == FORMAT else "original scripts' format"
        note = (
            f"{resume_path.name} has no RNG state or data position ({kind}): "
            "resuming approximately (fresh data order from its epoch, optimizer state if compatible)"
        )
        state.data_epoch = int(payload.get("epoch") or 0)
        best = payload.get(BEST_SCORE_KEY)
        state.best_score = float(best) if best is not None else math.inf
        torch.manual_seed(int(tr.seed) + state.step)
    if state.step >= state.total_steps:
        raise TacticsError(
            f"{resume_path} is already at step {state.step} of {state.total_steps}; "
            f"pass --max-steps N (N > {state.step}) to train further"
        )
    return state, saved, note


def _build_optimizer(run: _Run, payload: dict[str, Any] | None) -> str:
    """Move the model to its device and make its optimizer (with the checkpoint's state when it
    fits); returns a note when it did not."""
    run.model.to(run.device)
    run.optimizer = make_optimizer(run.model, run.tr, run.device)
    if payload is not None and "optimizer" in payload and not _load_optimizer_state(run.optimizer, payload["optimizer"]):
        return "optimizer state did not fit: starting it fresh"
    return ""


def _restore_rng_state(saved: LoopState | None, dist: DistHandle, seed: int, step: int) -> str:
    """Every rank's random state as saved (exact at the same world size); else rank 0's and
    fresh streams for the others, with a note saying the resume is close, not bitwise."""
    if saved is None:
        return ""
    if saved.world_size == dist.world and (dist.world == 1 or saved.rng_ranks):
        restore_rng(saved.rng_ranks[dist.rank] if saved.rng_ranks else saved.rng)  # exact
        return ""
    if dist.rank == 0:
        restore_rng(saved.rng)
    else:
        seed_everything(seed + 7919 * dist.rank + step)
    if saved.world_size != dist.world:
        return (
            f"checkpoint of {saved.world_size} process(es) resumed on {dist.world}: the same global data "
            "position and optimizer state, new per-rank random streams (close, not bitwise)"
        )
    return "the other ranks' random state was not saved (a rank was lost): resuming approximately"


def _wrap_ddp(run: _Run) -> None:
    """Under DDP: the model in DistributedDataParallel, and every rank's pid in run.json (so a
    watcher, the TUI's system pane, sums them)."""
    if not run.dist.enabled:
        return
    import torch
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(run.device).index] if run.device.startswith("cuda") else None
    run.ddp = DistributedDataParallel(run.model, device_ids=ids)  # broadcasts rank 0's weights (and buffers) once
    run.recorder.update(rank_pids=[int(p) for p in run.dist.gather_objects(os.getpid())])


def _announce(run: _Run, state: LoopState, note: str, resumed_from: str | None) -> None:
    """run.json says running; the start event says what runs, where and on what."""
    tr = run.tr
    run.recorder.update(state="running", step=state.step, total_steps=state.total_steps, message=note)
    run.recorder.write_state()
    run.recorder.emit(StartEvent(
        step=state.step,
        total_steps=state.total_steps,
        resumed_from=resumed_from,
        params=run.model.num_parameters(),
        config=run.config,
        preset=run.preset.name,
        device=run.device,
        precision=run.precision,
        threads=run.threads,
        world_size=run.dist.world,
        global_batch=int(tr.batch_size) * run.accum,
        backend=run.dist.backend or None,
        steps_per_epoch=max(1, math.ceil(run.micro_per_epoch / run.accum)),
        data=run.dataset.summary(),
        note=note,
        pid=os.getpid(),
        **run.kind.start_fields(),
    ))


def _join(note: str, extra: str) -> str:
    return (note + "; " if note and extra else note) + extra


# ----------------------------------------------------------------------------
# The loop and its steps


def _loop(run: _Run, state: LoopState, metrics_interval: float) -> tuple[str, str]:
    """Optimizer steps until the schedule ends, patience runs out, a stop is asked for or the
    loss is no longer finite; returns (reason, message)."""
    dist, recorder, tr = run.dist, run.recorder, run.tr
    cursor = _DataCursor(run.dataset.train, int(tr.batch_size), run.micro_per_epoch, state.data_epoch, state.data_batch)
    meter = _Throughput(metrics_interval, time.monotonic())
    run.model.train()
    while state.step < state.total_steps:
        if not dist.enabled and run.stop_requested():
            return "stopped", recorder.stop_reason
        lr = lr_at(state.step, state.total_steps, int(tr.warmup_steps), float(tr.learning_rate), float(tr.min_lr))
        for group in run.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        batches = _step_batches(run, cursor)
        weight_total, n_tokens, stops = _step_totals(run, batches)
        if stops:
            return "stopped", recorder.stop_reason or "stopped (a rank was asked to stop)"
        loss = _forward_backward(run, batches, weight_total, state.step) / max(weight_total, 1e-9)
        grad_norm = _clip_gradients(run, loss)
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            run.session.suspect = True
            return "failed", _diverged_message(run, state.step, lr, loss, grad_norm)
        run.session.suspect = True  # until the step completes
        run.optimizer.step()
        run.session.suspect = False
        state.step += 1
        state.data_epoch, state.data_batch = cursor.epoch, cursor.batch
        state.tokens_seen += n_tokens
        now = time.monotonic()
        if meter.add(n_tokens, now, force=state.step in (state.total_steps, run.session.start_step + 1)):
            recorder.emit(StepEvent(
                step=state.step,
                epoch=round(cursor.epoch + cursor.batch / max(1, run.micro_per_epoch), 4),
                loss=loss,
                lr=lr,
                tokens_per_s=meter.rate(now),
                elapsed_s=round(state.elapsed(now), 3),
                grad_norm=grad_norm,
                tokens=state.tokens_seen,
                total_steps=state.total_steps,
            ))
            meter.restart(now)
        recorder.update(step=state.step)
        report(run.progress, state.step, state.total_steps, f"loss {loss:.4f}")
        if _after_step(run, state):
            what = {"proof_loss": "proof-line validation loss", "val_loss": "validation loss"}.get(state.select_by, state.select_by)
            return "early_stop", f"no better {what} in {tr.patience} evaluations (best {state.best_score:.4f})"
        meter.pause(now)  # eval/checkpoint time does not count in tokens/s
    return "finished", f"reached step {state.step} of {state.total_steps}"


def _after_step(run: _Run, state: LoopState) -> bool:
    """The evaluation, sample and checkpoint due at this step; True when patience ran out.
    The last step of the schedule is evaluated too (its weights compete for best_model.pt),
    as an ordinary evaluation without the sample of the periodic ones (the run then ends
    "finished", whatever its patience)."""
    tr, step = run.tr, state.step
    eval_interval = max(0, int(tr.eval_interval))
    sample_interval = int(tr.sample_interval or 0)
    save_interval = max(0, int(tr.save_interval))
    periodic = bool(eval_interval) and step % eval_interval == 0
    early = False
    if periodic or (eval_interval and step == state.total_steps):
        early = _evaluate(run, state)
    if periodic and sample_interval == 0:
        _sample(run, state)
    if sample_interval and step % sample_interval == 0:
        _sample(run, state)
    if save_interval and step % save_interval == 0:
        _save_resumable(run, state)
        run.session.saved_at = step
    return early and periodic


class _DataCursor:
    """Where the loop reads training rows: (epoch, micro-batch) in the one-process order,
    which is a pure function of (seed, epoch), so a resume continues it exactly."""

    def __init__(self, split: Split, batch_size: int, micro_per_epoch: int, epoch: int, batch: int) -> None:
        self.split, self.batch_size, self.micro_per_epoch = split, batch_size, micro_per_epoch
        self.epoch, self.batch = epoch, batch
        self.order = split.epoch_order(epoch, batch_size)

    def next_rows(self) -> np.ndarray:
        """Row ids of the next global micro-batch: the one-process order at every world size."""
        if self.batch >= self.micro_per_epoch:
            self.epoch += 1
            self.batch = 0
            self.order = self.split.epoch_order(self.epoch, self.batch_size)
        ids = self.order[self.batch * self.batch_size : (self.batch + 1) * self.batch_size]
        self.batch += 1
        return ids


class _Throughput:
    """Tokens per second over the window since the last step event, and when the next is due."""

    def __init__(self, interval: float, now: float) -> None:
        self.interval, self.tokens, self.start, self.last_emit = interval, 0, now, 0.0

    def add(self, tokens: int, now: float, force: bool = False) -> bool:
        """Count a step's tokens; True when a step event is due."""
        self.tokens += tokens
        return force or now - self.last_emit >= self.interval

    def rate(self, now: float) -> float:
        return self.tokens / max(1e-9, now - self.start)

    def restart(self, now: float) -> None:
        self.tokens, self.start, self.last_emit = 0, now, now

    def pause(self, since: float) -> None:
        """Leave the time since `since` (evaluation, checkpoints) out of the window."""
        self.start += time.monotonic() - since


def _step_batches(run: _Run, cursor: _DataCursor) -> list[Any]:
    """This rank's micro-batches of the next step (None = an empty share)."""
    rows = [cursor.next_rows() for _ in range(run.accum)]
    dist = run.dist
    if dist.world > 1:
        if run.share_mode == "whole":
            rows = rows[dist.rank :: dist.world]
        else:
            rows = [ids[dist.rank :: dist.world] for ids in rows]
    return [run.dataset.train.batch(ids) if len(ids) else None for ids in rows]


def _step_totals(run: _Run, batches: list[Any]) -> tuple[float, int, bool]:
    """(loss weight, scored tokens, stop) of the global step. The step's loss is the weighted
    mean over every scored target of its micro-batches (context targets weigh
    training.context_weight, proof targets 1). Under DDP one small all-reduce gives the global
    figures and any rank's stop request (signals, `tactics stop` seen by rank 0), so all stop
    together."""
    live = [b for b in batches if b is not None]
    n_tokens = sum(run.kind.batch_size_of(b) for b in live)
    weight_total = sum(run.kind.batch_weight(b, run.tr) for b in live)
    if not run.dist.enabled:
        return weight_total, n_tokens, False
    total, scored, stops = run.dist.all_reduce_sum(
        [weight_total, n_tokens, 1.0 if run.stop_requested() else 0.0], run.device
    )
    return total, int(round(scored)), stops > 0


def _forward_backward(run: _Run, batches: list[Any], weight_total: float, step: int) -> float:
    """Fresh gradients of the step's loss (the kind's `loss_sum`: the GPT's weighted token NLL,
    the scorer's BCE and ranking terms), accumulated over this rank's micro-batches; returns
    the summed loss of the whole step (all ranks)."""
    dist, ddp, device = run.dist, run.ddp, run.device
    run.optimizer.zero_grad(set_to_none=True)
    loss_sum = 0.0
    for i, batch in enumerate(batches):
        # DDP all-reduces the accumulated gradient in the backward of a rank's last
        # micro-batch only; every rank has the same number of them.
        sync = ddp.no_sync() if ddp is not None and i < len(batches) - 1 else contextlib.nullcontext()
        with sync:
            if batch is None or run.kind.batch_size_of(batch) == 0:
                if ddp is not None:
                    run.kind.empty_backward(run.net, run.dataset, device, run.precision)
                continue
            nll = run.kind.loss_sum(run.net, batch, run.tr, device, run.precision, step)
            scaled = nll / max(weight_total, 1e-9)
            if dist.enabled:
                scaled = scaled * dist.world  # DDP averages over ranks; the step's loss is their sum
            scaled.backward()
            loss_sum += float(nll.detach())
    if dist.enabled:
        loss_sum = dist.all_reduce_sum([loss_sum], device)[0]
    return loss_sum


def _clip_gradients(run: _Run, loss: float) -> float:
    """Clip to training.grad_clip (0 = no clipping); the norm before clipping (the loss itself
    when that is not finite: there is nothing to clip then)."""
    import torch

    if not math.isfinite(loss):
        return loss
    clip = float(run.tr.grad_clip) if run.tr.grad_clip and run.tr.grad_clip > 0 else float("inf")
    return float(torch.nn.utils.clip_grad_norm_(run.model.parameters(), clip))


def _diverged_message(run: _Run, step: int, lr: float, loss: float, grad_norm: float) -> str:
    what = f"loss became {loss}" if not math.isfinite(loss) else f"gradient norm became {grad_norm}"
    where = f"; the last good checkpoint is {run.session.last_good}" if run.session.last_good else "; no checkpoint was written yet"
    return (
        f"{what} at step {step + 1} (learning rate {lr:.3g}): training diverged, so no final "
        f"checkpoint was written{where}; lower training.learning_rate"
        f"{' (and training.muon_lr)' if run.tr.optimizer == 'muon' else ''}"
        " or raise training.warmup_steps"
    )


def _failure_message(run: _Run, exc: Exception) -> str:
    """One line for an error during training. Under DDP the other ranks may be anywhere in
    their step: no more collectives; rank 0 writes the final checkpoint alone (its weights are
    those of the last step)."""
    dist = run.dist
    if dist.enabled:
        dist.broken = True
    lost = distributed.peer_lost(exc) if dist.enabled else None
    if lost is not None:
        return f"rank {dist.rank}: {lost}"
    if isinstance(exc, TacticsError):
        return str(exc)
    if _is_oom(exc):
        return _oom_message(run.kind, run.preset, run.device)
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def _evaluate(run: _Run, state: LoopState) -> bool:
    """Evaluate, track the best figure and patience (saving best_model.pt on a new best);
    True when patience is exhausted."""
    tr = run.tr
    run.recorder.update(message=f"evaluating at step {state.step}")
    result = run.kind.evaluate(run.model, run.dataset, tr, run.device, run.precision, run.stop_requested, run.dist)
    run.recorder.update(message="")
    if result.empty or not result.complete:
        return False  # cut short by a stop request: a partial figure would mislead
    val_loss = result.figures["val_loss"]
    metric = result.figures.get(state.select_by, math.nan)
    if not math.isfinite(metric):  # e.g. no proof tokens in this split: select by the whole stream
        metric = val_loss
    run.session.last_eval = dict(result.figures)
    improved = metric < state.best_score
    if improved:
        state.best_score = metric
        state.bad_evals = 0
    else:
        state.bad_evals += 1
    run.recorder.emit(EvalEvent(
        step=state.step,
        select_by=state.select_by,
        best_score=state.best_score,
        bad_evals=state.bad_evals,
        patience=int(tr.patience),
        improved=improved,
        **result.event,
    ))
    if improved and math.isfinite(metric):
        _save_best(run, state)
    return int(tr.patience) > 0 and state.bad_evals >= int(tr.patience)


def _sample(run: _Run, state: LoopState) -> None:
    """The kind's live sample (the GPT: the greedy next proof line for a fixed validation goal;
    rank 0; never ends a run)."""
    if not run.dist.is_main:
        return
    try:
        fields = run.kind.sample(run.model, run.dataset)
    except Exception as exc:  # a sample must never end a run
        run.recorder.update(message=f"sample failed: {type(exc).__name__}: {exc}"[:200])
        return
    if fields is not None:
        run.recorder.emit(SampleEvent(step=state.step, **fields))


# ----------------------------------------------------------------------------
# Checkpoints


def _payload(run: _Run, state: LoopState) -> dict[str, Any]:
    """What every checkpoint of the run holds: weights, shape, figures, tokenizer, lineage."""
    last = run.session.last_eval
    payload = {
        "model": {k: v.detach().cpu() for k, v in run.model.state_dict().items()},
        "model_config": run.model_config.to_dict(),
        "global_step": state.step,
        "epoch": state.data_epoch + state.data_batch / max(1, run.micro_per_epoch),
        BEST_SCORE_KEY: state.best,  # the best `select_by` figure (checkpoints.BEST_SCORE_KEY says why that key)
        "val_loss": last.get("val_loss"),
        "val_bpb": last.get("val_bpb"),
        "val_proof_loss": last.get("proof_loss"),
        "val_proof_bpb": last.get("proof_bpb"),
        "select_by": state.select_by,
        **run.kind.payload_fields(run.dataset),
        # A scorer's figures of its last evaluation (auc, used_rank, ...): its checkpoint sidecar's `figures`.
        **({"figures": dict(last)} if run.kind.name != "gpt" else {}),
        "config": run.config,
        "preset": run.preset.name,
        "data_dir": str(run.data_dir),
        "run": run_name(run.checkpoint_dir),  # lineage: the run folder this checkpoint belongs to
    }
    return payload


def _save_resumable(run: _Run, state: LoopState) -> str:
    """Every rank calls this at the same step; rank 0 writes, the others wait for it and fail
    with it if it failed (`on_main`).

    Each rank's RNG state is gathered (`rng_ranks`), so a resume at the same world size
    is exact. With a lost peer (broken group) rank 0 saves alone, with its own state.
    """
    dist = run.dist
    path = checkpoint_step_path(run.checkpoint_dir, state.step)
    rng_ranks = dist.gather_objects(capture_rng()) if dist.enabled and not dist.broken else None
    dist.on_main(_write_resumable, run, state, path, rng_ranks)
    run.session.last_good = str(path)
    run.recorder.emit(CheckpointEvent(step=state.step, path=str(path), best=False, val_loss=run.session.last_eval.get("val_loss")))
    return str(path)


def _write_resumable(run: _Run, state: LoopState, path: Path, rng_ranks: list[dict[str, Any]] | None) -> None:
    """Rank 0's part of `_save_resumable`: the checkpoint with optimizer and loop state, then
    the retention of older ones."""
    from tactics_core.runs.checkpoints import prune_checkpoints, save_checkpoint

    data = _payload(run, state)
    data["optimizer"] = run.optimizer.state_dict()
    state.rng, state.rng_ranks = capture_rng(), rng_ranks
    data["train_state"] = state.to_dict()
    save_checkpoint(path, data)
    prune_checkpoints(run.checkpoint_dir, int(run.tr.keep_checkpoints))


def _save_best(run: _Run, state: LoopState) -> None:
    """best_model.pt (model and figures, no optimizer), written by rank 0 while the others wait;
    <root>/best_model.pt follows the latest run's best model."""
    run.dist.on_main(_write_best, run, state)


def _write_best(run: _Run, state: LoopState) -> None:
    from tactics_core.runs.checkpoints import save_checkpoint

    data = _payload(run, state)
    data["is_best"] = True
    path = run.checkpoint_dir / BEST_MODEL_FILE
    save_checkpoint(path, data)
    publish_best(run.checkpoint_dir)
    run.recorder.emit(CheckpointEvent(step=state.step, path=str(path), best=True, val_loss=run.session.last_eval.get("val_loss")))


def _finish(run: _Run, state: LoopState, reason: str, message: str) -> TrainResult:
    """The final checkpoint (unless the weights are suspect or just saved), the end event and
    the final run state."""
    dist, recorder, session = run.dist, run.recorder, run.session
    final_path: str | None = session.last_good
    fresh_steps = state.step > session.start_step and state.step != session.saved_at
    if not session.suspect and fresh_steps and (dist.is_main or not dist.broken):
        recorder.set_state("stopping", "writing the final checkpoint")
        try:
            final_path = _save_resumable(run, state)
        except Exception as exc:  # disk full etc.: say so, keep the older checkpoints
            reason = "failed"
            if "cannot write checkpoint" in message:  # a full disk: say it once, not twice
                message = f"{message} (the final checkpoint could not be written either)"
            else:
                message = f"{message}; the final checkpoint could not be written: {exc}".strip("; ")
    if reason == "stopped" and not message:
        message = "stopped"
    recorder.emit(EndEvent(
        reason=reason,
        message=message,
        step=state.step,
        total_steps=state.total_steps,
        best_score=state.best,
        select_by=state.select_by,
        checkpoint=final_path,
        elapsed_s=round(state.elapsed(), 3),
    ))
    recorder.set_state(reason, message)
    return TrainResult(reason, message, state.step, state.total_steps, state.best, final_path, state.select_by)
