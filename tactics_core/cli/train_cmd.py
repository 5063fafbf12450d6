"""`tactics train`, `tactics resume`, `tactics stop`: run, continue and end training runs.

Attached, the run prints progress (step, loss, lr, tokens/s, ETA) and eval
lines; `--detach` starts the same run in its own process session (it survives
closing the terminal) and returns at once. Ctrl-C, SIGTERM and SIGHUP end a
run gracefully with a final checkpoint.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tactics_core.common.formatting import format_duration
from tactics_core.common.workspace import CHECKPOINT_DIR, DATA_DIR, PRESETS_DIR, current_run_dir
from tactics_core.runs.run_events import (
    DEFAULT_METRICS_INTERVAL, CheckpointEvent, EndEvent, EvalEvent, RunEvent, RunView, SampleEvent, StartEvent,
    StepEvent, data_line,
)

if TYPE_CHECKING:
    from tactics_core.runs.launch import LaunchRequest
    from tactics_core.training.distributed import DistHandle


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a model from a preset",
        description="Train a tactics model on the corpus with a preset's settings. Needs "
        "CHECKPOINT_DIR/tokenizer.json (`tactics tokenizer train`). Every run gets its own folder, "
        "CHECKPOINT_DIR/runs/NAME (checkpoints, metrics.jsonl, run.json), and becomes the current "
        "run (CHECKPOINT_DIR/current); earlier runs are never touched. See `tactics runs`.",
    )
    train.add_argument("--preset", default="default", metavar="NAME|FILE",
                       help="preset name or .toml file (default: default; see `tactics presets ls`)")
    train.add_argument("--data-dir", type=Path, default=None,
                       help=f"proof files (default: {DATA_DIR}); a scorer preset's acorn eval traces (default: traces)")
    train.add_argument("--checkpoint-dir", type=Path, default=CHECKPOINT_DIR,
                       help=f"the workspace's checkpoint folder: tokenizer, runs/ (default: {CHECKPOINT_DIR})")
    train.add_argument("--run-name", default=None, metavar="NAME",
                       help="name of the run's folder (default: YYYYMMDD-HHMMSS-PRESET); a name in use is refused")
    train.add_argument("--presets-dir", type=Path, default=PRESETS_DIR,
                       help=f"your presets, shadowing built-ins (default: {PRESETS_DIR})")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a preset value, e.g. --set training.batch_size=8 (repeatable)")
    _common(train)
    train.set_defaults(func=cmd_run)

    resume = subparsers.add_parser(
        "resume",
        help="continue a run from a checkpoint",
        description="Continue training from a checkpoint with its own settings, exactly where it "
        "stopped (same data order, RNG and schedule), in that run's own folder. Default: the latest "
        "checkpoint of the current run (or of --run-name NAME).",
    )
    resume.add_argument("checkpoint", nargs="?", type=Path, metavar="CHECKPOINT",
                        help="checkpoint file (default: the latest resumable one in --checkpoint-dir)")
    resume.add_argument("--checkpoint-dir", type=Path, default=CHECKPOINT_DIR,
                        help=f"checkpoint folder (its current run) or a run folder (default: {CHECKPOINT_DIR})")
    resume.add_argument("--run-name", default=None, metavar="NAME",
                        help="the run to continue (default: the current run); with a CHECKPOINT from "
                        "outside any run, the name of the new run")
    resume.add_argument("--data-dir", type=Path, default=None,
                        help="proof files (default: the folder the checkpoint was trained on, else data/proofs)")
    _common(resume)
    resume.set_defaults(func=cmd_run)

    stop = subparsers.add_parser(
        "stop",
        help="stop a running training run gracefully",
        description="Ask the live run in the folder to stop: it finishes the current step, writes a "
        "final checkpoint and ends with reason 'stopped'.",
    )
    stop.add_argument("--checkpoint-dir", type=Path, default=CHECKPOINT_DIR,
                      help=f"checkpoint folder (its current run) or a run folder (default: {CHECKPOINT_DIR})")
    stop.add_argument("--run-name", default=None, metavar="NAME", help="the run to stop (default: the current run)")
    stop.add_argument("--no-wait", action="store_true", help="return at once instead of waiting for the run to end")
    stop.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the run to end (default: 300)")
    stop.set_defaults(func=cmd_stop)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-steps", type=int, default=None, metavar="N",
                        help="total optimizer steps to reach (default: the preset's max_steps or epochs)")
    parser.add_argument("--device", default=None, metavar="D",
                        help="auto | cpu | cuda | cuda:N | mps (default: the preset's, usually auto)")
    parser.add_argument("--metrics-interval", type=float, default=DEFAULT_METRICS_INTERVAL, metavar="S",
                        help=f"at most one step event in metrics.jsonl per S seconds (default {DEFAULT_METRICS_INTERVAL}; "
                        "0 = every step)")
    parser.add_argument("--nproc", type=int, default=None, metavar="N",
                        help="data-parallel over N processes on this machine (starts the run through "
                        "torch.distributed.run; gloo on CPU, NCCL on CUDA); the preset's batch stays the global batch")
    parser.add_argument("--detach", action="store_true",
                        help="run in the background, detached from this terminal; follow with the TUI "
                        "or `tail -f CHECKPOINT_DIR/train.log`, end with `tactics stop`")


def _prepare_env() -> None:
    # Must happen before torch is imported (see tactics_core.training.loop, CPU threads).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def launch_request(args: argparse.Namespace) -> LaunchRequest:
    """The run `tactics train` or `tactics resume` asks for (checked: `LaunchRequest`)."""
    from tactics_core.runs.launch import LaunchRequest

    common: dict[str, Any] = dict(
        checkpoint_dir=args.checkpoint_dir, run_name=args.run_name, data_dir=args.data_dir, device=args.device,
        max_steps=args.max_steps, metrics_interval=args.metrics_interval,
        nproc=1 if args.nproc is None else int(args.nproc), detach=args.detach,
    )
    if args.command == "resume":
        return LaunchRequest(resume=True, checkpoint=args.checkpoint, **common)
    return LaunchRequest(preset=args.preset, overrides=tuple(args.overrides), presets_dir=args.presets_dir, **common)


def cmd_run(args: argparse.Namespace) -> int:
    """`tactics train` and `tactics resume`: detached, as torchrun ranks in place of this
    process, or here (one process, or a torchrun rank)."""
    _prepare_env()
    from tactics_core.runs import launch, workspace_runs

    request = launch_request(args)
    if request.detach:
        started = launch.start_detached(request)
        _print_detached(started.pid, started.folder)
        return 0
    if request.nproc > 1:
        plan = launch.plan(request)
        launch.prepare(plan)
        if request.resume:
            print(f"resuming from {plan.checkpoint} (run folder {plan.folder}) on {request.nproc} processes",
                  file=sys.stderr)
        else:
            print(f"run {workspace_runs.run_name(plan.folder)}: {plan.folder} ({request.nproc} processes)", file=sys.stderr)
        launch.exec_ranks(plan)
    from tactics_core.training import distributed

    dist = distributed.init(launch.group_device(request))
    plan = launch.settle(request, dist)
    if dist.is_main:
        if request.resume:
            print(f"resuming from {plan.checkpoint} (run folder {plan.folder})", file=sys.stderr)
        else:
            print(f"run {workspace_runs.run_name(plan.folder)}: {plan.folder}" + (f" ({dist.world} processes)" if dist.enabled else ""),
                  file=sys.stderr)
    try:
        return _run_attached(lambda progress, on_event: plan.train_here(progress=progress, on_event=on_event), dist)
    finally:
        distributed.shutdown()


def _run_folder(args: argparse.Namespace) -> Path:
    """The run a command means: --run-name NAME, else the current run of --checkpoint-dir."""
    from tactics_core.runs import workspace_runs

    name = getattr(args, "run_name", None)
    if name:
        return Path(workspace_runs.find_run(args.checkpoint_dir, name).path)
    return current_run_dir(args.checkpoint_dir)


def cmd_stop(args: argparse.Namespace) -> int:
    from tactics_core.runs.run_folder import read_run_state, request_stop

    folder = _run_folder(args)
    state = read_run_state(folder, resolve=False)
    if not request_stop(folder):
        last = f" (last run: {state.state} at step {state.step})" if state else ""
        print(f"no live run in {folder}{last}", file=sys.stderr)
        return 1
    print(f"asked the run in {folder} (pid {state.pid}, step {state.step}) to stop", file=sys.stderr)
    if args.no_wait:
        return 0
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        now = read_run_state(folder, resolve=False)
        if now is None or not now.alive:
            msg = f": {now.message}" if now and now.message else ""
            print(f"run ended ({now.state if now else 'unknown'} at step {now.step if now else '?'}){msg}", file=sys.stderr)
            return 0
        time.sleep(0.5)
    print(f"the run is still stopping after {args.timeout:.0f}s; check {folder}/train.log", file=sys.stderr)
    return 1


def _print_detached(pid: int, folder: Path) -> None:
    print(
        f"started training in the background (pid {pid}); it keeps running if you close this terminal.\n"
        f"  follow:  tactics-tui, or tail -f {folder}/train.log\n"
        f"  stop:    tactics stop --checkpoint-dir {folder}"
    )


# ----------------------------------------------------------------------------
# Console output of an attached run


def _patience_text(bad_evals: int, patience: int) -> str:
    """How far the run is from stopping early; a patience of 0 never stops it."""
    return "early stop off" if patience == 0 else f"{bad_evals}/{patience} without improvement"


class _Printer:
    """Turns metrics events into console lines: a redrawn status line on a terminal,
    plain lines (every ~10 s, plus every eval) in a log file."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.status_shown = False
        self.last_plain = 0.0
        self.view = RunView()  # the run so far: total steps, this session's pace (the ETA)
        self.unit = "tok"  # what the step line's rate counts ("rows" for a scorer run)

    def _line(self, text: str) -> None:
        if self.status_shown:
            self.stream.write("\r" + " " * 110 + "\r")
            self.status_shown = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def progress(self, done: int, total: int | None, message: str) -> None:
        # Corpus reading / tokenizing before the first step.
        if self.view.start is not None or not self.tty:
            return
        frac = f" {done}/{total}" if total else ""
        self.stream.write(f"\r{message}{frac}".ljust(110)[:110])
        self.stream.flush()
        self.status_shown = True

    def __call__(self, ev: RunEvent) -> None:
        self.view.feed([ev])
        if isinstance(ev, StartEvent):
            what = "resuming" if ev.resumed_from else "training"
            optimizer = (ev.config.get("training") or {}).get("optimizer", "adamw")
            world = int(ev.world_size or 1)
            per_rank = f" per process x {world} processes, global batch {ev.global_batch}" if world > 1 else ""
            self._line(
                f"{what} {ev.params / 1e6:.2f}M parameters on {ev.device}"
                f"{' in bf16' if ev.precision == 'bf16' else ''} "
                f"({ev.threads} threads{per_rank}, {'Muon + AdamW' if optimizer == 'muon' else 'AdamW'}): "
                f"step {ev.step} -> {ev.total_steps} "
                f"({ev.steps_per_epoch} steps per epoch)"
            )
            if ev.kind == "scorer":
                self.unit = "rows"
            self._line(f"data: {data_line(ev)}")
            if ev.note:
                self._line(f"note: {ev.note}")
        elif isinstance(ev, StepEvent):
            total = self.view.total_steps
            text = (
                f"step {ev.step}/{total}  loss {ev.loss:.4f}  lr {ev.lr:.2e}  "
                f"{ev.tokens_per_s:,.0f} {self.unit}/s  epoch {ev.epoch:.2f}  eta {format_duration(self.view.eta_seconds())}"
            )
            if self.tty:
                self.stream.write("\r" + text.ljust(110)[:110])
                self.stream.flush()
                self.status_shown = True
            elif time.monotonic() - self.last_plain >= 10 or ev.step == total:
                self.last_plain = time.monotonic()
                self._line(text)
        elif isinstance(ev, EvalEvent) and ev.used_rank is not None:
            self._line(
                f"eval at step {ev.step}: val loss {ev.val_loss:.4f}, AUC {ev.auc:.4f}, used steps rank "
                f"{ev.used_rank:.4f} of their search, {ev.top10_hit:.1%} in its top 10% "
                f"(best {ev.select_by} {ev.best_score:.4f}; {_patience_text(ev.bad_evals, ev.patience)})"
            )
        elif isinstance(ev, EvalEvent):
            proof = ev.proof_loss
            proof_text = (
                f"; proof lines {proof:.4f}, {ev.proof_bpb:.3f} bits/byte"
                if isinstance(proof, (int, float)) and math.isfinite(proof) else ""
            )
            select = "proof-line loss" if ev.select_by == "proof_loss" else "val loss"
            self._line(
                f"eval at step {ev.step}: val loss {ev.val_loss:.4f}, {ev.val_bpb:.3f} bits/byte{proof_text} "
                f"(best {select} {ev.best_score:.4f}; {_patience_text(ev.bad_evals, ev.patience)})"
            )
        elif isinstance(ev, SampleEvent):
            self._line(f"sample at step {ev.step}: {ev.text!r} (expected {ev.expected!r})")
        elif isinstance(ev, CheckpointEvent):
            self._line(f"saved {ev.path}" + (" (best so far)" if ev.best else ""))
        elif isinstance(ev, EndEvent):
            self._line(f"run ended: {ev.reason} at step {ev.step}" + (f": {ev.message}" if ev.message else ""))


def _run_attached(run, dist: DistHandle | None = None) -> int:
    printer = _Printer()
    main = dist is None or dist.is_main
    result = run(printer.progress, printer)
    if result.reason == "failed":
        print(f"error: {result.message}", file=sys.stderr)
        return 1
    if not main:
        return 0
    if result.last_checkpoint:
        print(f"last checkpoint: {result.last_checkpoint}", file=sys.stderr)
    return 0
