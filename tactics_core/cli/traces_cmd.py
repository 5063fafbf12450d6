"""`tactics traces stats`: what acorn's activated-step traces hold, for the proof-step scorer."""

from __future__ import annotations

import json
import sys

from tactics_core.common.workspace import TRACE_STORE_DIR, TRACES_DIR


def register(subparsers) -> None:
    traces = subparsers.add_parser("traces", help="collect and inspect acorn's proof-step traces (acorn eval --trace-out)")
    sub = traces.add_subparsers(dest="traces_command", metavar="COMMAND")
    traces.set_defaults(func=lambda args: (traces.print_help(), 1)[1])

    stats = sub.add_parser(
        "stats",
        help="rows, searches, solved searches and used steps of acorn traces, per policy and goal bucket",
        description=(
            "Read acorn's *.jsonl.zst traces (each with its *.meta.json sidecar) and print counts. "
            "The numeric columns are cached in a store, so a second run reads no JSON; "
            "damaged files and rows are listed, not fatal."
        ),
    )
    stats.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help=f"trace files or folders of them (default: {TRACES_DIR})",
    )
    stats.add_argument(
        "--store",
        default=str(TRACE_STORE_DIR),
        metavar="DIR",
        help="where the column store lives (default: %(default)s)",
    )
    stats.add_argument("--no-store", action="store_true", help="stream the traces, write no store")
    stats.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    stats.set_defaults(func=cmd_stats)

    from tactics_core.cli.collect_cmd import add_collect_arguments, cmd_collect

    collect = sub.add_parser(
        "collect",
        help="run today's acorn (`acorn eval --trace-out`) on goal buckets: one trace per bucket, resumable",
        description=(
            "Run acorn 0.2.6 (91f29ff1) `acorn eval --trace-out` on each chosen goal bucket, one acorn process per "
            "bucket, into traces/LABEL-bNN.jsonl.zst (+ .meta.json, the run's log and summary). A bucket's files "
            "appear only when acorn finished it; run the same command again after a kill or Ctrl-C and only the "
            "missing buckets run."
        ),
    )
    add_collect_arguments(collect)
    collect.set_defaults(func=cmd_collect)


def cmd_stats(args) -> int:
    from tactics_core.common.progress import ConsoleProgress
    from tactics_core.scorer.stats import format_trace_stats, trace_stats

    from tactics_core.common.errors import TacticsError

    if not args.paths and not TRACES_DIR.is_dir():
        raise TacticsError(
            f"{TRACES_DIR}: no traces folder in this workspace; record traces with "
            f"`acorn eval --trace-out {TRACES_DIR}/NAME.jsonl.zst` or name trace files"
        )
    paths = args.paths or [str(TRACES_DIR)]
    store = None if args.no_store else args.store
    progress = ConsoleProgress("traces")
    try:
        stats = trace_stats(paths, store_root=store, progress=progress)
    finally:
        progress.close()
    d = stats.to_dict()
    if args.json:
        json.dump(d, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(format_trace_stats(d))
    return 0
