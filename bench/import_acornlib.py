"""How fast, in how much memory and how faithfully `tactics import acornlib` makes a corpus.

For each shared fixture it imports the checkout in a fresh Python process
(so peak RSS, VmHWM or ru_maxrss off Linux, is the import's own; the line
also gives the RSS of a process that only imports the module) and compares
the result with the published corpus: the share of files that are
byte-identical (file names included) and of manifest rows that are equal.

    python bench/import_acornlib.py [--repeat 3]

The fixtures are read from ../shared (TACTICS_SHARED to point elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import PEAK_RSS_SOURCE  # bench/machine.py (bench/ is on sys.path: run as a script, or by report.py)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TACTICS_SHARED", REPO.parent / "shared"))
FIXTURES = {
    "acornlib-2025-11": (SHARED / "acornlib-fixtures" / "acornlib-2025-11", SHARED / "corpora" / "acornlib-2025-11"),
    "acornlib-2026-08-algebra-subset": (
        SHARED / "acornlib-fixtures" / "acornlib-2026-08-algebra-subset",
        SHARED / "acornlib-fixtures" / "acornlib-2026-08-algebra-subset.expected",
    ),
}

CHILD = PEAK_RSS_SOURCE + r"""
import json, sys, time
mode, src, out = sys.argv[1], sys.argv[2], sys.argv[3]
from tactics_core.acornlib import import_acornlib
start = time.perf_counter()
made = None
if mode == "import":
    made = import_acornlib(src, out, force=True)
seconds = time.perf_counter() - start
rss = peak_rss_mb()
print(json.dumps({"seconds": seconds, "rss_mb": rss, "files": made.files if made else 0,
                  "methods": made.methods if made else {}}))
"""


def child(mode: str, src: Path, out: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run([sys.executable, "-c", CHILD, mode, str(src), str(out)], capture_output=True, text=True, env=env, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def compare(expected: Path, actual: Path) -> tuple[int, int, int, int]:
    """(identical files, expected files, equal manifest rows, expected rows)."""
    names = sorted(os.listdir(expected / "proofs"))
    same = sum(
        1 for n in names if (actual / n).is_file() and (actual / n).read_bytes() == (expected / "proofs" / n).read_bytes()
    )
    theirs = {r["file"]: r for r in map(json.loads, (expected / "manifest.jsonl").read_text().splitlines())}
    ours = {r["file"]: r for r in map(json.loads, (actual.parent / "manifest.jsonl").read_text().splitlines())}
    rows = sum(1 for n, r in theirs.items() if ours.get(n) == r)
    return same, len(names), rows, len(theirs)


def measure(repeat: int = 3) -> dict:
    """Per fixture: best import seconds, peak RSS (and a bare import's), identical files and manifest rows."""
    baseline = None
    rows = []
    for name, (src, expected) in FIXTURES.items():
        if not src.is_dir() or not (expected / "proofs").is_dir():
            rows.append({"fixture": name, "skipped": f"fixture not found under {SHARED}"})
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "data" / "proofs"
            if baseline is None:
                baseline = child("bare", src, out)
            runs = [child("import", src, out) for _ in range(max(1, repeat))]
            same, total, mrows, row_total = compare(expected, out)
        rows.append({"fixture": name, "files": runs[0]["files"], "seconds": min(r["seconds"] for r in runs),
                     "repeats": len(runs), "rss_mb": max(r["rss_mb"] for r in runs), "bare_rss_mb": baseline["rss_mb"],
                     "identical": same, "expected": total, "manifest_equal": mrows, "manifest_rows": row_total,
                     "methods": runs[0]["methods"]})
    return {"rows": rows, "ratios": []}


def main() -> int:
    sys.path.insert(0, str(REPO / "bench"))
    from machine import describe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="imports per fixture; the best time is shown")
    args = parser.parse_args()
    print(f"machine: {describe()}")
    for r in measure(args.repeat)["rows"]:
        if "skipped" in r:
            print(f"{r['fixture']}: skipped, {r['skipped']}")
            continue
        methods = "  ".join(f"{m} {n}" for m, n in r["methods"].items() if n)
        print(
            f"{r['fixture']}: {r['files']:,} files in {r['seconds']:.2f} s (best of {r['repeats']}), peak RSS {r['rss_mb']:.1f} MB "
            f"(bare import {r['bare_rss_mb']:.1f} MB); identical files {r['identical']:,}/{r['expected']:,} = "
            f"{r['identical'] / r['expected']:.2%}, manifest rows {r['manifest_equal']:,}/{r['manifest_rows']:,} = "
            f"{r['manifest_equal'] / r['manifest_rows']:.2%}; {methods}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
