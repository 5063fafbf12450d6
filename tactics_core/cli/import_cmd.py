"""`tactics import acornlib PATH`: make a corpus from an acornlib checkout's sources and certificates."""

from __future__ import annotations

import json

from tactics_core.acorn.library import group_problems
from tactics_core.common.workspace import DATA_DIR


# An import this large is a whole library: the `library` preset (split by module) fits it.
LIBRARY_FILES = 50_000


def register(subparsers) -> None:
    imp = subparsers.add_parser("import", help="make a corpus from real data (an acornlib checkout)")
    sub = imp.add_subparsers(dest="import_command", metavar="SOURCE")
    imp.set_defaults(func=lambda args: (imp.print_help(), 1)[1])

    lib = sub.add_parser(
        "acornlib",
        help="one proof file per certificate of an acornlib checkout",
        description=(
            "Pair every certificate file of an acornlib checkout (2025: build/<module>.jsonl; "
            "2026: <dir>/certs/<stem>.jsonl) with its .ac source, find each goal in the source and "
            "write one proof file per certificate, plus manifest.jsonl beside the data folder. "
            "Bad lines and files are reported, not fatal."
        ),
    )
    lib.add_argument("path", metavar="PATH", help="the acornlib checkout (a plain working tree; no git needed)")
    lib.add_argument("--data-dir", default=str(DATA_DIR), help="folder to create (default: %(default)s)")
    lib.add_argument(
        "--include", action="append", default=[], metavar="GLOB",
        help="only modules whose source path matches, e.g. 'src/real/*' (repeatable)",
    )
    lib.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="skip modules whose source path matches (repeatable)"
    )
    lib.add_argument(
        "--max-bytes", type=int, default=0, metavar="N",
        help="stop adding files once the corpus would pass N bytes (0: no cap; default: %(default)s)",
    )
    lib.add_argument(
        "--style", choices=("published", "acorn"), default="published",
        help="write the files as the published corpora do (default) or as acorn f47631b0's `training` writes them "
        "and its prover asks: @T from the innermost open block, a theorem's `} by {` line in @G, no theorem @H "
        "(docs/corpus.md)",
    )
    lib.add_argument("--force", action="store_true", help="replace a non-empty data folder")
    lib.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    lib.set_defaults(func=cmd_acornlib)


def format_summary(d: dict, examples: int = 3) -> str:
    """The human summary of an import: counts, then the problems grouped by kind with a few
    examples each (--json has every entry)."""
    methods = "  ".join(f"{m} {n:,}" for m, n in d["methods"].items() if n)
    action = "replaced" if d["replaced"] else "made"
    groups = group_problems(d["problems"], examples)
    kinds = f"  in {len(groups)} kind{'s' if len(groups) != 1 else ''}" if groups else ""
    rows = [
        ("corpus", f"{action} {d['data_dir']}  (manifest {d['manifest']})"),
        ("source", f"{d['source']}  ({d['layout']} layout)"),
        ("modules", f"{d['modules']:,}"),
        ("certificates", f"{d['certificates']:,}" + (f"  ({d['skipped_certificates']:,} skipped)" if d["skipped_certificates"] else "")),
        ("files", f"{d['files']:,}" + (f"  ({d['capped_certificates']:,} over --max-bytes)" if d["capped_certificates"] else "")),
        ("bytes", f"{d['bytes']:,}"),
        ("goals by method", methods or "-"),
        ("problems", f"{len(d['problems']):,}{kinds}"),
        ("seconds", f"{d['seconds']:.2f}"),
    ]
    width = max(len(k) for k, _ in rows)
    out = [f"{k.ljust(width)}  {v}" for k, v in rows]
    for group in groups:
        out.append(f"  {group['title']}: {group['count']:,}")
        out.extend(f"    {line}" for line in group["examples"])
        if group["count"] > len(group["examples"]):
            out.append(f"    ... and {group['count'] - len(group['examples']):,} more (see --json)")
    return "\n".join(out)


def cmd_acornlib(args) -> int:
    from tactics_core.acorn.library import import_acornlib
    from tactics_core.common.progress import ConsoleProgress

    progress = ConsoleProgress("import")
    try:
        made = import_acornlib(
            args.path, args.data_dir, include=args.include, exclude=args.exclude,
            max_bytes=args.max_bytes, force=args.force, progress=progress, style=args.style,
        )
    finally:
        progress.close()
    d = made.to_dict()
    if args.json:
        print(json.dumps(d))
        return 0
    print(format_summary(d))
    print(f"next: tactics corpus stats --data-dir {made.data_dir}   then: tactics tokenizer train --data-dir {made.data_dir}")
    if made.files >= LIBRARY_FILES:
        print(f"then: tactics train --preset library --data-dir {made.data_dir}   "
              "(validated on whole held-out modules; docs/presets.md)")
    return 0
