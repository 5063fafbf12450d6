"""`tactics sweep SPACE.toml` and `tactics sweeps [show NAME]`: hyperparameter sweeps at an equal budget.

    tactics sweep SPACE.toml [--name N] [--budget-minutes M] [--trials N] [--resume] [--judge-top K]
    tactics sweeps [--json]              every sweep of the workspace: trials by state, best so far
    tactics sweeps show NAME [--json]    one sweep's ranking: trial, state, objective, params, run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tactics_core.common.workspace import CHECKPOINT_DIR, PRESETS_DIR, SWEEP_BEST_FILE, SWEEPS_DIR

if TYPE_CHECKING:
    from tactics_core.sweeps.record import SweepSummary


def register(subparsers: argparse._SubParsersAction) -> None:
    sweep = subparsers.add_parser(
        "sweep",
        help="search preset keys with Optuna, each trial a run at the same wall-clock budget",
        description="Run a hyperparameter sweep: the space file names a base preset and the preset keys "
        "to search (docs/sweeps.md). Each trial is a normal run (CHECKPOINT_DIR/runs/NAME-tNNN) whose "
        "max_steps are measured to fit --budget-minutes, pruned on its validation curve (Optuna's median "
        "pruner); the study is kept in SWEEPS_DIR/NAME/study.db, so --resume continues a killed sweep. "
        "At the end: the ranking, the best trial's preset (SWEEPS_DIR/NAME/best.toml) and how to keep it.",
    )
    sweep.add_argument("space", nargs="?", type=Path, metavar="SPACE.toml",
                       help="the space file (examples in presets/sweeps/); with --resume, optional")
    sweep.add_argument("--name", default=None, metavar="NAME", help="the sweep's name (default: the space file's stem)")
    sweep.add_argument("--budget-minutes", type=float, default=None, metavar="M",
                       help="wall clock of each trial's training, fractions allowed (default: 10; a resume keeps its own)")
    sweep.add_argument("--trials", type=int, default=None, metavar="N",
                       help="completed or pruned trials to reach (default: 10; with --resume: the sweep's, or N)")
    sweep.add_argument("--resume", action="store_true",
                       help="continue the sweep NAME: trials left running are failed and their parameters tried again")
    sweep.add_argument("--data-dir", type=Path, default=None,
                       help="proof files (default: data/proofs); a scorer's acorn eval traces (default: traces)")
    sweep.add_argument("--device", default=None, metavar="D", help="auto | cpu | cuda | cuda:N | mps (default: the preset's)")
    sweep.add_argument("--judge-top", type=int, default=0, metavar="K",
                       help="judge the best K trials with the real prover when acorn is configured (docs/sweeps.md)")
    sweep.add_argument("--judge-buckets", default=None, metavar="B",
                       help="a scorer's goal buckets for --judge-top (default: 91-92)")
    sweep.add_argument("--judge-module", dest="judge_modules", action="append", default=[], metavar="M",
                       help="a GPT's held-out split for --judge-top: acornlib modules (or globs) the data left out "
                            "(repeatable)")
    sweep.add_argument("--judge-seen", type=int, default=0, metavar="N",
                       help="a GPT's second split for --judge-top: N goal lines of new theorems of seen subjects "
                            "(validation theorems of the sweep's data, in modules it trained on; docs/prover.md)")
    sweep.add_argument("--judge-seed", type=int, default=0, metavar="S", help="the seed of the --judge-seen sample")
    sweep.add_argument("--judge-jobs", type=int, default=2, metavar="J",
                       help="a GPT judge's acorn processes at once (default 2: one per core)")
    sweep.add_argument("--save-preset", default=None, metavar="NAME",
                       help="copy the best trial's preset into PRESETS_DIR as NAME (refused when it exists, unless --force)")
    sweep.add_argument("--force", action="store_true", help="with --save-preset: overwrite an existing preset")
    _paths(sweep)
    sweep.add_argument("--json", action="store_true", help="print the sweep's summary as JSON at the end")
    sweep.set_defaults(func=cmd_sweep)

    sweeps = subparsers.add_parser(
        "sweeps",
        help="list sweeps; show one's ranking",
        description="The workspace's sweeps (SWEEPS_DIR/NAME): trials by state and the best so far; "
        "`tactics sweeps show NAME` prints one sweep's ranking (also while it runs).",
    )
    sweeps.add_argument("--sweeps-dir", type=Path, default=SWEEPS_DIR, help=f"the sweeps folder (default: {SWEEPS_DIR})")
    sweeps.add_argument("--json", action="store_true", help="print a JSON list")
    sweeps.set_defaults(func=cmd_list)
    sub = sweeps.add_subparsers(dest="sweeps_command", metavar="SUBCOMMAND")
    show = sub.add_parser("show", help="one sweep's ranking: trial, state, objective, params, run")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--sweeps-dir", type=Path, default=argparse.SUPPRESS, help="the sweeps folder")
    show.add_argument("--json", action="store_true", help="print the summary as JSON")
    show.set_defaults(func=cmd_show)


def _paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint-dir", type=Path, default=CHECKPOINT_DIR,
                        help=f"the workspace's checkpoint folder, where the trials' runs go (default: {CHECKPOINT_DIR})")
    parser.add_argument("--sweeps-dir", type=Path, default=SWEEPS_DIR, help=f"the sweeps folder (default: {SWEEPS_DIR})")
    parser.add_argument("--presets-dir", type=Path, default=PRESETS_DIR,
                        help=f"your presets, shadowing built-ins (default: {PRESETS_DIR})")


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_sweep(args: argparse.Namespace) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported (training/loop.py says why)
    from tactics_core.common.errors import TacticsError
    from tactics_core.common.progress import CancelToken
    from tactics_core.sweeps.study import SweepOptions, run_sweep, save_best_preset

    if args.judge_top < 0 or args.judge_seen < 0 or args.judge_jobs < 1:
        raise TacticsError("--judge-top and --judge-seen must be >= 0, --judge-jobs >= 1")
    if args.force and not args.save_preset:
        raise TacticsError("--force goes with --save-preset NAME")
    options = SweepOptions(
        space=args.space, name=args.name, budget_minutes=args.budget_minutes, trials=args.trials, resume=args.resume,
        data_dir=args.data_dir, device=args.device, checkpoint_dir=args.checkpoint_dir, sweeps_dir=args.sweeps_dir,
        presets_dir=args.presets_dir,
    )
    cancel = CancelToken()

    def on_stop(signum, frame):  # the first Ctrl-C (or SIGTERM, SIGHUP) ends the running trial gracefully
        _log("stopping: the running trial ends with a final checkpoint (Ctrl-C again to interrupt)")
        cancel.cancel()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts at once

    stop_signals = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, on_stop) for sig in stop_signals}
    try:
        result = run_sweep(options, log=_log, cancel=cancel)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary = result.summary
    verdicts = []
    if args.judge_top and not result.cancelled:
        from tactics_core.sweeps.judge import DEFAULT_BUCKETS, judge_trials

        from tactics_core.common.progress import ConsoleProgress

        progress = ConsoleProgress("judge", stream=sys.stderr)
        try:
            verdicts = judge_trials(summary, args.judge_top, args.checkpoint_dir, args.judge_buckets or DEFAULT_BUCKETS,
                                    args.judge_modules, log=_log, cancel=cancel, progress=progress,
                                    seen_goals=args.judge_seen, seed=args.judge_seed, jobs=args.judge_jobs)
        finally:
            progress.close()
    saved = None
    if args.save_preset and result.best_preset is not None:
        saved = save_best_preset(summary.folder, args.save_preset, args.presets_dir, force=args.force)
    if args.json:
        data = summary.to_dict()
        data["best_preset"] = str(result.best_preset) if result.best_preset else None
        data["saved_preset"] = str(saved) if saved else None
        data["judged"] = [v.__dict__ for v in verdicts]
        data["cancelled"] = result.cancelled
        print(json.dumps(data, indent=1))
    else:
        print(ranking_text(summary))
        if verdicts:
            from tactics_core.sweeps.record import read_judged

            summary.judged = read_judged(summary.folder)
            print(judged_text(summary), end="")
        _print_best(summary, result.best_preset, saved, args)
    if result.stopped_by_failures:
        print(f"error: the sweep stopped after failed trials in a row; the last: {result.stopped_by_failures}",
              file=sys.stderr)
        return 1
    if result.cancelled:
        print(f"sweep stopped; continue it with `tactics sweep --resume --name {summary.name}`", file=sys.stderr)
        return 130
    return 0


def _print_best(summary: SweepSummary, best_preset: Path | None, saved: Path | None, args: argparse.Namespace) -> None:
    best = summary.best
    if best is None or best_preset is None:
        print("no trial completed: no best preset yet")
        return
    print(f"best: trial {best.number} ({best.run}), {summary.objective} {best.objective:.4f}; its preset: {best_preset}")
    if saved is not None:
        print(f"saved as {saved}; train it with `tactics train --preset {Path(saved).stem}`")
    else:
        print(f"keep it: tactics presets cp {best_preset} {summary.name}-best   "
              f"(or `tactics sweep --resume --name {summary.name} --save-preset NAME`)")


def judged_text(summary: SweepSummary) -> str:
    """The real prover's ranking of the judged trials (judged.json), or nothing before a judge."""
    judged = summary.judged
    if not judged:
        return ""
    lines = [f"judged by the real prover ({judged.get('judged', '?')}): {judged.get('how', '')}"]
    for rank, v in enumerate(judged["verdicts"], 1):
        base = " (the base preset)" if v.get("base") else ""
        splits = v.get("splits") or {}
        if not splits:  # a scorer's verdict is one figure
            lines.append(f"{rank}  trial {v.get('number')} ({v.get('run')}){base}: {v.get('text')}")
            continue
        from tactics_core.acorn.generative_judge import figures_line

        lines.append(f"{rank}  trial {v.get('number')} ({v.get('run')}){base}")
        lines += [f"     {name}: {figures_line(figures)}" for name, figures in splits.items()]
    return "\n".join(lines) + "\n"


def ranking_text(summary: SweepSummary) -> str:
    """The ranking table: trial, state, objective, seconds, run, params."""
    rows = summary.ranking()
    keys = sorted({k for t in rows for k in t.params})
    head = ["#", "TRIAL", "STATE", summary.objective.upper() or "OBJECTIVE", "STEPS", "TIME", "RUN", *keys]
    table = [head]
    for rank, t in enumerate(rows, 1):
        value = f"{t.objective:.4f}" if t.objective is not None and math.isfinite(t.objective) else "-"
        steps = f"{t.step if t.step is not None else '-'}/{t.max_steps if t.max_steps else '-'}"
        table.append([
            str(rank), str(t.number), t.state.lower(), value, steps,
            f"{t.seconds:.0f}s" if t.seconds is not None else "-", t.run or "-",
            *[_cell(t.params.get(k)) for k in keys],
        ])
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    counts = summary.counts()
    states = ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n)
    budget = f"{summary.budget_minutes:g} min per trial" if summary.budget_minutes else "budget unknown"
    title = (f"sweep {summary.name} ({summary.kind}, base {summary.base}): {states or 'no trial yet'}; {budget}; "
             f"{summary.direction} {summary.objective}")
    notes = [f"  trial {t.number}: {t.note}" for t in rows if t.note]
    return "\n".join([title, *lines, *notes])


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def cmd_list(args: argparse.Namespace) -> int:
    from tactics_core.sweeps.record import list_sweeps

    sweeps = list_sweeps(sweeps_dir=args.sweeps_dir)
    if args.json:
        print(json.dumps([s.to_dict() for s in sweeps], indent=1))
        return 0
    if not sweeps:
        print(f"no sweep in {args.sweeps_dir}; start one with `tactics sweep SPACE.toml`")
        return 0
    table = [["NAME", "KIND", "TRIALS", "COMPLETE", "PRUNED", "FAILED", "RUNNING", "BEST", "BEST RUN"]]
    for s in sweeps:
        c, best = s.counts(), s.best
        table.append([s.name, s.kind, f"{len(s.trials)}/{s.trials_target or '?'}", str(c["COMPLETE"]), str(c["PRUNED"]),
                      str(c["FAIL"]), str(c["RUNNING"]),
                      f"{s.objective} {best.objective:.4f}" if best else "-", best.run if best else "-"])
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from tactics_core.sweeps.record import read_sweep, sweep_folder

    summary = read_sweep(sweep_folder(args.sweeps_dir, args.name))
    if args.json:
        print(json.dumps(summary.to_dict(), indent=1, default=str))
        return 0
    print(ranking_text(summary))
    print(judged_text(summary), end="")
    best_file = summary.folder / SWEEP_BEST_FILE
    if summary.best is not None and best_file.is_file():
        print(f"best preset: {best_file}  (keep it: tactics presets cp {best_file} {summary.name}-best)")
    return 0
