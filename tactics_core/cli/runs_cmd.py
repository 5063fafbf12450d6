"""`tactics runs`: the workspace's training runs, one folder each; compare two, remove one.

    tactics runs [--json]          every run: status, preset, steps, best figures, tokens/s, duration
    tactics runs diff A B [--json] the settings that differ (only those) and the best figures side by side
    tactics runs rm NAME [--yes]   remove a run's folder (asks first; refuses a live run)
    tactics runs export NAME --tensorboard DIR [--force]   (or --all) a run's metrics, evaluations and
                                   settings as TensorBoard event files in DIR/NAME
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from tactics_core.common.errors import TacticsError
from tactics_core.common.formatting import format_duration, human_size
from tactics_core.common.workspace import CHECKPOINT_DIR
from tactics_core.runs.run_events import reason_words

_TB_HINT = "pip install 'tactics-tui[tensorboard]'"

def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "runs",
        help="list training runs (one folder each); diff two; remove one; export to TensorBoard",
        description="List the workspace's training runs, oldest first: every run keeps its own folder "
        "CHECKPOINT_DIR/runs/NAME (an old workspace's run straight in CHECKPOINT_DIR is `legacy`). "
        "`tactics runs diff A B` shows the settings that differ and the best figures side by side; "
        "`tactics runs rm NAME` removes a run; `tactics runs export NAME --tensorboard DIR` writes it for TensorBoard.",
    )
    parser.add_argument("--checkpoint-dir", type=Path, default=CHECKPOINT_DIR,
                        help=f"the workspace's checkpoint folder (default: {CHECKPOINT_DIR})")
    parser.add_argument("--json", action="store_true", help="print a JSON list (oldest first)")
    parser.set_defaults(func=cmd_runs)
    sub = parser.add_subparsers(dest="runs_command", metavar="SUBCOMMAND")

    diff = sub.add_parser("diff", help="settings that differ between two runs, and their best figures",
                          description="The settings (preset and every preset key) that differ between "
                          "runs A and B, only those, then the best validation figures side by side.")
    diff.add_argument("a", metavar="A")
    diff.add_argument("b", metavar="B")
    diff.add_argument("--checkpoint-dir", type=Path, default=argparse.SUPPRESS, help="the workspace's checkpoint folder")
    diff.add_argument("--json", action="store_true", help="print {settings: {key: [a, b]}, figures: {...}}")
    diff.set_defaults(func=cmd_diff)

    rm = sub.add_parser("rm", help="remove a run's folder (asks first)",
                        description="Remove the folder of run NAME with its checkpoints and metrics. "
                        "Asks first unless --yes; a live run is refused (stop it first).")
    rm.add_argument("name", metavar="NAME")
    rm.add_argument("--checkpoint-dir", type=Path, default=argparse.SUPPRESS, help="the workspace's checkpoint folder")
    rm.add_argument("--yes", "-y", action="store_true", help="do not ask")
    rm.set_defaults(func=cmd_rm)

    export = sub.add_parser(
        "export", help="write runs as TensorBoard event files (DIR/NAME per run)",
        description="Write run NAME (or --all runs) in TensorBoard's format into DIR/NAME: every figure of "
        "its step events as train/KEY and of its evaluations as eval/KEY at their steps, the settings "
        "(its preset) and how it started and ended as text, and the settings with the evaluation figures "
        "as hparams. Then `tensorboard --logdir DIR` shows them beside your other runs. An existing "
        f"DIR/NAME is refused unless --force. Needs the tensorboard package: {_TB_HINT}.",
    )
    export.add_argument("names", nargs="*", metavar="NAME", help="the runs to export (see `tactics runs`)")
    export.add_argument("--all", action="store_true", help="export every run of the workspace")
    export.add_argument("--tensorboard", type=Path, required=True, metavar="DIR",
                        help="the TensorBoard log folder to write into (each run in DIR/NAME)")
    export.add_argument("--force", action="store_true", help="replace an existing DIR/NAME whole")
    export.add_argument("--checkpoint-dir", type=Path, default=argparse.SUPPRESS, help="the workspace's checkpoint folder")
    export.add_argument("--json", action="store_true", help="print what was written as a JSON list")
    export.set_defaults(func=cmd_export)


def cmd_runs(args: argparse.Namespace) -> int:
    from tactics_core.runs.workspace_runs import list_runs

    infos = list_runs(args.checkpoint_dir)
    if args.json:
        print(json.dumps([i.to_dict(config=False) for i in infos], indent=1))
        return 0
    if not infos:
        print(f"no runs in {args.checkpoint_dir} yet; start one with `tactics train`")
        return 0
    rows = [("", "NAME", "STATUS", "PRESET", "STEPS", "VAL LOSS", "PROOF LOSS", "PROOF BPB", "TOK/S", "TIME", "STARTED")]
    for i in infos:
        steps = f"{i.steps}" + (f"/{i.total_steps}" if i.total_steps else "")
        rows.append((
            "*" if i.current else "",
            i.name,
            reason_words(i.status),
            str(i.preset or "-"),
            steps,
            _num(i.best_val_loss, ".4f"),
            _num(i.best_proof_loss, ".4f"),
            _num(i.best_proof_bpb, ".3f"),
            _num(i.tokens_per_s, ",.0f"),
            format_duration(i.duration_s, missing="-"),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(i.started)) if i.started else "-",
        ))
    _table(rows, right={4, 5, 6, 7, 8, 9})
    print("* = current run (CHECKPOINT_DIR/current); best figures over every evaluation")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from tactics_core.runs.workspace_runs import diff_runs, find_run

    a, b = find_run(args.checkpoint_dir, args.a), find_run(args.checkpoint_dir, args.b)
    diff = diff_runs(a, b)
    if args.json:
        print(json.dumps(diff.to_dict(), indent=1, default=str))
        return 0
    if diff.settings:
        rows = [("SETTING", a.name, b.name)] + [(k, _value(va), _value(vb)) for k, va, vb in diff.settings]
        _table(rows)
    else:
        print(f"the settings of {a.name} and {b.name} are the same")
    print()
    rows = [("BEST", a.name, b.name)]
    for key, va, vb in diff.figures:
        rows.append((key, _figure(key, va), _figure(key, vb)))
    _table(rows, right={1, 2})
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    from tactics_core.runs.workspace_runs import find_run, remove_run

    info = find_run(args.checkpoint_dir, args.name)
    if info.live:
        raise TacticsError(f"run {info.name} is running (pid {info.pid}); stop it first with `tactics stop --run-name {info.name}`")
    what = f"run {info.name} ({info.path}: {info.checkpoints} checkpoints, {human_size(info.size_bytes)}, {info.steps} steps)"
    if not args.yes:
        if not sys.stdin.isatty():
            raise TacticsError(f"removing {what} needs a yes: pass --yes (stdin is not a terminal)")
        answer = input(f"remove {what}? This cannot be undone. [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("kept")
            return 1
    remove_run(args.checkpoint_dir, info.name)
    print(f"removed {what}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tactics_core.runs.tensorboard_export import export_runs

    if args.all and args.names:
        raise TacticsError("give run names or --all, not both")
    if not args.all and not args.names:
        raise TacticsError("name the run to export (`tactics runs` lists them), or pass --all")
    done = export_runs(args.checkpoint_dir, args.tensorboard, None if args.all else list(args.names), force=args.force)
    if args.json:
        print(json.dumps([d.to_dict() for d in done], indent=1))
        return 0
    for d in done:
        tags = sorted(d.scalars)
        print(f"{'replaced' if d.replaced else 'wrote'} {d.path}: {len(tags)} scalars ({d.points:,} points: "
              f"{', '.join(tags[:6])}{', ...' if len(tags) > 6 else ''}), text {', '.join(d.texts) or '-'}")
    print(f"view with: tensorboard --logdir {args.tensorboard}")
    return 0


def _table(rows: list[tuple[str, ...]], right: set[int] = frozenset()) -> None:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        cells = [r[c].rjust(widths[c]) if c in right else r[c].ljust(widths[c]) for c in range(len(r))]
        print("  ".join(cells).rstrip())


def _num(value: Any, spec: str) -> str:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return format(value, spec)
    return "-"


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _figure(key: str, value: Any) -> str:
    if key == "duration_s":
        return format_duration(value, missing="-")
    if key == "status":
        return reason_words(str(value))
    if key in ("steps", "best_step"):
        return "-" if value is None else str(value)
    if key == "tokens_per_s":
        return _num(value, ",.0f")
    return _num(value, ".3f" if key.endswith("bpb") else ".4f")
