"""How fast, and in how much memory, `tactics corpus stats` reads a corpus.

Each measurement runs in a fresh Python process so its peak RSS
(VmHWM, or ru_maxrss off Linux) is its own. For each corpus it prints:
seconds and MB/s of `corpus_stats`, the time of a bare read of the same
bytes (the I/O floor) and the ratio between them, and peak RSS against a
process that only imports the module. Flat memory shows as nearly the same
RSS for a 5.5 MB and a 40 MB corpus.

    python bench/corpus_stats.py [--repeat 3] [CORPUS_PROOFS_DIR ...]

Defaults to the shared corpora (../shared/corpora/*/proofs). The last line
times `tactics demo` (generate and write 3,000 files into a temp folder).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from machine import PEAK_RSS_SOURCE  # bench/machine.py (bench/ is on sys.path: run as a script, or by report.py)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TACTICS_SHARED", REPO.parent / "shared"))

CHILD = PEAK_RSS_SOURCE + r"""
import json, os, sys, time
mode, path = sys.argv[1], sys.argv[2]
from tactics_core.gpt.corpus import corpus_stats
result = {}
if mode == "stats":
    t = time.perf_counter()
    d = corpus_stats(path).to_dict()
    result = {"seconds": time.perf_counter() - t, "files": d["files"], "bytes": d["bytes"], "skipped": len(d["skipped"])}
elif mode == "demo":
    import tempfile
    from tactics_core.gpt.demo import generate, write_demo_corpus
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        made = write_demo_corpus(os.path.join(tmp, "proofs"), files=int(path))
        total = time.perf_counter() - t
        t = time.perf_counter()
        texts = generate(int(path))  # the same files again (generation cost alone)
        gen = time.perf_counter() - t
        os.mkdir(os.path.join(tmp, "raw"))
        t = time.perf_counter()
        for name, text in texts:  # the file-system floor: write the same files plainly
            with open(os.path.join(tmp, "raw", name), "wb") as fh:
                fh.write(text.encode())
        raw = time.perf_counter() - t
        result = {"seconds": total, "generate": gen, "raw_write": raw, "files": made.files, "bytes": made.bytes}
elif mode == "read":
    t = time.perf_counter()
    n = 0
    for name in sorted(os.listdir(path)):
        with open(os.path.join(path, name), "rb") as fh:
            n += len(fh.read())
    result = {"seconds": time.perf_counter() - t, "bytes": n}
result["maxrss_mb"] = peak_rss_mb()
print(json.dumps(result))
"""


def machine() -> str:
    from machine import describe  # bench/machine.py

    return describe()


def run(mode: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path)], capture_output=True, text=True, check=True, cwd=REPO
    )
    return json.loads(out.stdout)


def measure(corpora: list[Path], repeat: int = 3, demo_files: int = 3000) -> dict:
    """Per corpus: best seconds of `corpus_stats` and of a bare read (and their ratio), peak RSS; `tactics demo`."""
    from figures import ratio

    base = run("none", corpora[0])["maxrss_mb"]
    rows, ratios = [], []
    for path in corpora:
        stats_runs = [run("stats", path) for _ in range(repeat)]
        read_runs = [run("read", path) for _ in range(repeat)]
        best = min(stats_runs, key=lambda r: r["seconds"])
        name = path.parent.name if path.name == "proofs" else path.name
        row = {"corpus": name, "files": best["files"], "bytes": best["bytes"], "stats_s": best["seconds"],
               "read_s": min(r["seconds"] for r in read_runs), "rss_mb": max(r["maxrss_mb"] for r in stats_runs)}
        row["mb_per_s"] = row["bytes"] / 1e6 / row["stats_s"]
        rows.append(row)
        ratios.append(ratio(f"corpus stats vs a bare read of the same bytes, {name}", "corpus_stats", row["stats_s"],
                            "bare read", row["read_s"], "s", 3))
    out = {"base_rss_mb": base, "rows": rows, "ratios": ratios}
    if demo_files:
        d = min((run("demo", Path(str(demo_files))) for _ in range(repeat)), key=lambda r: r["seconds"])
        out["demo"] = dict(d, files_asked=demo_files)
        ratios.append(ratio(f"tactics demo ({demo_files:,} files) vs a plain write of the same files", "tactics demo",
                            d["seconds"], "plain write", d["raw_write"], "s", 2))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=3, help="runs per corpus; the best time is shown")
    args = parser.parse_args()
    corpora = args.corpora or sorted((SHARED / "corpora").glob("*/proofs"))
    if not corpora:
        print(f"no corpora given and none found under {SHARED / 'corpora'}", file=sys.stderr)
        return 2
    print(f"machine: {machine()}")
    r = measure(corpora, args.repeat)
    base = r["base_rss_mb"]
    print(f"baseline process (imports only): peak RSS {base:.1f} MB")
    header = f"{'corpus':<28} {'files':>7} {'MB':>6} {'stats s':>8} {'MB/s':>6} {'read s':>7} {'stats/read':>10} {'peak RSS MB':>12} {'over base':>9}"
    print(header)
    for row in r["rows"]:
        print(
            f"{row['corpus']:<28} {row['files']:>7,} {row['bytes'] / 1e6:>6.1f} {row['stats_s']:>8.2f} {row['mb_per_s']:>6.1f} "
            f"{row['read_s']:>7.2f} {row['stats_s'] / row['read_s']:>9.1f}x {row['rss_mb']:>12.1f} {row['rss_mb'] - base:>+9.1f}"
        )
    demo = r["demo"]
    print(
        f"tactics demo (3,000 files, {demo['bytes'] / 1e6:.1f} MB): {demo['seconds']:.2f} s in all = "
        f"generate {demo['generate']:.2f} s + write; plain write of the same files {demo['raw_write']:.2f} s; "
        f"peak RSS {demo['maxrss_mb']:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
