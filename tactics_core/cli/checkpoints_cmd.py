"""`tactics checkpoints`: list a run's checkpoints from their metadata sidecars."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tactics_core.common.formatting import human_size
from tactics_core.common.workspace import CHECKPOINT_DIR, current_run_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "checkpoints",
        help="list checkpoints: step, validation loss, time, size, best mark",
        description="List the checkpoints in a folder, oldest first (newest last), read from "
        "their small .meta.json sidecars without loading the tensors.",
    )
    parser.add_argument(
        "--checkpoint-dir", type=Path, default=CHECKPOINT_DIR,
        help=f"checkpoint folder (its current run) or a run folder (default: {CHECKPOINT_DIR})",
    )
    parser.add_argument("--run-name", default=None, metavar="NAME", help="the run to list (default: the current run; see `tactics runs`)")
    parser.add_argument("--json", action="store_true", help="print a JSON list (newest last)")
    parser.set_defaults(func=cmd_checkpoints)


def cmd_checkpoints(args: argparse.Namespace) -> int:
    from tactics_core.common.errors import TacticsError
    from tactics_core.runs.checkpoints import list_checkpoints

    from tactics_core.runs import workspace_runs

    folder = Path(args.checkpoint_dir)
    if args.run_name:
        folder = Path(workspace_runs.find_run(folder, args.run_name).path)
    folder = current_run_dir(folder)
    if not folder.is_dir():
        raise TacticsError(
            f"checkpoint folder not found: {folder}; train first (`tactics train`) or pass --checkpoint-dir"
        )
    infos = list_checkpoints(folder)
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=1))
        return 0
    if not infos:
        print(f"no checkpoints in {folder} yet")
        return 0
    rows = [("", "NAME", "STEP", "VAL LOSS", "SAVED", "SIZE", "")]
    for i in infos:
        if i.error:
            rows.append(("", i.name, "?", "-", _when(i.created), human_size(i.size), "damaged"))
            continue
        val = f"{i.val_loss:.4f}" if i.val_loss is not None else "-"
        note = "resumable" if i.resumable else ("original format" if i.format == "original" else "")
        rows.append(("*" if i.best else "", i.name, str(i.step), val, _when(i.created), human_size(i.size), note))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    right = {2, 3, 5}
    for r in rows:
        cells = [r[c].rjust(widths[c]) if c in right else r[c].ljust(widths[c]) for c in range(len(r))]
        print("  ".join(cells).rstrip())
    damaged = [i for i in infos if i.error]
    for i in damaged:
        print(f"warning: {i.error}", file=sys.stderr)
    print("* = best validation loss (best_model.pt)")
    return 0


def _when(created: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))
