"""`tactics traces stats`: what acorn's activated-step traces hold, for the proof-step scorer."""

from __future__ import annotations

import json
import sys

from tactics_core.common.workspace import TRACE_STORE_DIR, TRACES_DIR

# buckets shown together in the table (acorn's trainer validates on 90-99)
BUCKET_GROUP = 10


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


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _figure_rows(label: str, items: list[tuple[str, dict]]) -> list[str]:
    head = (label, "rows", "searches", "solved", "rate", "used", "used/rows")
    body = [
        (
            name,
            f"{f['rows']:,}",
            f"{f['searches']:,}",
            f"{f['successful']:,}",
            _pct(f["success_rate"]),
            f"{f['used']:,}",
            _pct(f["used_share"]),
        )
        for name, f in items
    ]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return [fmt(head), *(fmt(r) for r in body)]


def _bucket_groups(per_bucket: dict) -> list[tuple[str, dict]]:
    groups: dict[int, dict] = {}
    for key, f in per_bucket.items():
        g = groups.setdefault(int(key) // BUCKET_GROUP, {"rows": 0, "searches": 0, "successful": 0, "used": 0})
        for k in g:
            g[k] += f[k]
    out = []
    for g, f in sorted(groups.items()):
        f["success_rate"] = f["successful"] / f["searches"] if f["searches"] else 0.0
        f["used_share"] = f["used"] / f["rows"] if f["rows"] else 0.0
        out.append((f"{g * BUCKET_GROUP}-{g * BUCKET_GROUP + BUCKET_GROUP - 1}", f))
    return out


def format_stats(d: dict) -> str:
    """The human table for `traces stats` (kept separate so the TUI can reuse it)."""
    from tactics_core.common.formatting import human_size

    names = d["feature_names"]
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    rows = [
        ("traces", f"{d['files']:,} file{'' if d['files'] == 1 else 's'}, {human_size(d['bytes'])} compressed"),
        ("rows", f"{d['rows']:,} activated steps"),
        ("searches", f"{d['searches']:,}  (solved {d['successful']:,}, {_pct(d['success_rate'])})"),
        ("used steps", f"{d['used']:,}  ({_pct(d['used_share'])} of rows; used_in_final_proof)"),
        ("outcomes", "  ".join(f"{k} {v:,}" for k, v in d["outcomes"].items()) or "-"),
        ("features", f"{len(names)}  ({shown})" if names else "-"),
        ("store", d["store"] or "none (streamed)"),
        ("seconds", f"{d['seconds']:.2f}"),
    ]
    width = max(len(k) for k, _ in rows)
    out = [f"{k.ljust(width)}  {v}" for k, v in rows]
    if d["per_policy"]:
        out.append("")
        out.extend(_figure_rows("policy", list(d["per_policy"].items())))
    if d["per_bucket"]:
        out.append("")
        out.extend(_figure_rows("goal_bucket", _bucket_groups(d["per_bucket"])))
    if d["problems"]:
        out.append("")
        out.append(f"problems ({len(d['problems'])}, skipped):")
        for p in d["problems"]:
            where = f"{p['file']}:{p['line']}" if p["line"] is not None else p["file"]
            out.append(f"  {where}: {p['reason']}")
    return "\n".join(out)


def cmd_stats(args) -> int:
    from tactics_core.common.progress import ConsoleProgress
    from tactics_core.scorer.stats import trace_stats

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
        print(format_stats(d))
    return 0
