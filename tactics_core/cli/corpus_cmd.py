"""`tactics corpus stats`: what is in a proof-file folder, and which files are unusable."""

from __future__ import annotations

import json
import sys

from tactics_core.common.workspace import DATA_DIR


def register(subparsers) -> None:
    corpus = subparsers.add_parser("corpus", help="inspect a corpus of proof files")
    sub = corpus.add_subparsers(dest="corpus_command", metavar="COMMAND")
    corpus.set_defaults(func=lambda args: (corpus.print_help(), 1)[1])

    stats = sub.add_parser(
        "stats",
        help="files, sizes, section shares, proof lines and skipped files of a corpus",
        description="Read every proof file once (streaming) and print counts; bad files are listed, not fatal.",
    )
    stats.add_argument("--data-dir", default=str(DATA_DIR), help="folder of proof files (default: %(default)s)")
    stats.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    stats.set_defaults(func=cmd_stats)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def format_stats(d: dict) -> str:
    """The human table for `corpus stats` (kept separate so the TUI can reuse it)."""
    size = d["size"]
    pl = d["proof_lines"]
    sec = d["sections"]
    rows = [
        ("data folder", d["data_dir"]),
        ("files", f"{d['files']:,}" + (f"  ({len(d['skipped'])} skipped)" if d["skipped"] else "")),
        ("bytes", f"{d['bytes']:,}"),
        ("characters", f"{d['chars']:,}"),
        ("theorems", f"{d['theorems']:,}  (groups of goal files by theorem key)"),
        (
            "file size",
            f"mean {size['mean']:,.1f}  median {size['median']:,}  p95 {size['p95']:,}  max {size['max']:,} bytes",
        ),
        ("sections", "  ".join(f"@{m} {_pct(sec[m])}" for m in sec) + f"  (non-empty @P {_pct(d['proof_nonempty'])})"),
        ("proof lines", f"mean {pl['mean']:.2f}  median {pl['median']}  max {pl['max']:,} per goal  ({pl['total']:,} total)"),
        ("seconds", f"{d['seconds']:.2f}"),
    ]
    width = max(len(k) for k, _ in rows)
    out = [f"{k.ljust(width)}  {v}" for k, v in rows]
    if d["skipped"]:
        out.append(f"skipped files ({len(d['skipped'])}):")
        name_width = min(40, max(len(p["file"]) for p in d["skipped"]))
        out.extend(f"  {p['file'].ljust(name_width)}  {p['problem']}" for p in d["skipped"])
    return "\n".join(out)


def cmd_stats(args) -> int:
    from tactics_core.common.progress import ConsoleProgress
    from tactics_core.gpt.corpus import corpus_stats

    progress = ConsoleProgress("corpus")
    try:
        stats = corpus_stats(args.data_dir, progress=progress)
    finally:
        progress.close()
    d = stats.to_dict()
    if args.json:
        json.dump(d, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(format_stats(d))
    return 0
