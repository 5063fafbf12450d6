"""How fast, in how much memory and how faithfully `tactics import acornlib` makes a corpus.

For each shared fixture it imports the checkout in a fresh Python process
(so peak RSS, VmHWM or ru_maxrss off Linux, is the import's own; the line
also gives the RSS of a process that only imports the module) and compares
the result with the published corpus: the share of files that are
byte-identical (file names included) and of manifest rows that are equal.

    python bench/import_acornlib.py [--repeat 3] [--tree CHECKOUT]... [--acorn-training OUT --acorn-lib CHECKOUT]

The fixtures are read from ../shared (TACTICS_SHARED to point elsewhere). `--tree` adds a row
for a whole checkout (e.g. acornlib bd1e6027, 204,058 certificates): time, peak RSS, how the
goals were found, and `@G` sections that are a block (an `if` header) rather than a claim.
`--acorn-training` compares the files acorn f47631b0's own `acorn --lib CHECKOUT training OUT`
wrote with both import styles of the same checkout, goal by goal (matched by `@P` and by
sections, not by file number: the two number goals in different orders), and counts the
differing files by the sections that differ, with one example each.
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
mode, src, out, style = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
from tactics_core.acorn.library import import_acornlib
start = time.perf_counter()
made = None
if mode == "import":
    made = import_acornlib(src, out, force=True, style=style)
seconds = time.perf_counter() - start
rss = peak_rss_mb()
print(json.dumps({"seconds": seconds, "rss_mb": rss, "files": made.files if made else 0,
                  "methods": made.methods if made else {}}))
"""


def child(mode: str, src: Path, out: Path, style: str = "published") -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run([sys.executable, "-c", CHILD, mode, str(src), str(out), style], capture_output=True, text=True,
                         env=env, check=True)
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


def whole_tree(checkout: Path) -> dict:
    """One import of a whole checkout: seconds, peak RSS, goals by method, block-shaped @G."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "data" / "proofs"
        run = child("import", checkout, out)
        names = sorted(os.listdir(out))
        rows = [json.loads(line) for line in (out.parent / "manifest.jsonl").read_text().splitlines()]
        if_goals = 0
        for row in rows:
            if row["method"] in ("theorem", "unlocated"):
                continue
            goal = (out / row["file"]).read_text(errors="replace").split("@G\n", 1)[1].split("\n", 1)[0].strip()
            if goal.startswith("if ") and goal.endswith("{"):
                if_goals += 1
    return {"tree": str(checkout), "files": run["files"], "seconds": run["seconds"], "rss_mb": run["rss_mb"],
            "methods": run["methods"], "if_goals": if_goals, "first": names[0] if names else "", "last": names[-1] if names else ""}


SECTIONS = ("theorem", "goal", "hypothesis", "counterfactual")


def against_acorn(acorn_out: Path, checkout: Path) -> dict:
    """acorn's own training files against both import styles of the same checkout."""
    from tactics_core.gpt.corpus import parse_proof_text

    theirs = [(p.name, p.read_text()) for p in sorted(acorn_out.glob("proof_*.txt"))]
    out: dict = {"acorn_files": len(theirs), "styles": {}}
    for style in ("published", "acorn"):
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data" / "proofs"
            run = child("import", checkout, data, style)
            ours: dict = {}
            for p in sorted(data.glob("proof_*.txt")):
                text = p.read_text()
                parsed = parse_proof_text(text, p.name)
                ours.setdefault(parsed.proof, []).append((text, parsed))
        kinds: dict = {}
        examples: dict = {}
        for name, text in theirs:
            parsed = parse_proof_text(text, name)
            candidates = ours.get(parsed.proof, [])
            if any(text == c for c, _ in candidates):
                kind = "identical"
            elif not candidates:
                kind = "no file with the same proof"
            else:
                best = min(candidates, key=lambda c: sum(getattr(parsed, f) != getattr(c[1], f) for f in SECTIONS))
                kind = "+".join(f for f in SECTIONS if getattr(parsed, f) != getattr(best[1], f))
            kinds[kind] = kinds.get(kind, 0) + 1
            examples.setdefault(kind, name)
        out["styles"][style] = {"files": run["files"], "kinds": kinds, "examples": examples}
    return out


def main() -> int:
    sys.path.insert(0, str(REPO / "bench"))
    from machine import describe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="imports per fixture; the best time is shown")
    parser.add_argument("--tree", type=Path, action="append", default=[], help="also import this whole checkout once")
    parser.add_argument("--acorn-training", type=Path, help="a folder `acorn --lib CHECKOUT training` wrote")
    parser.add_argument("--acorn-lib", type=Path, help="the checkout that --acorn-training was written from")
    args = parser.parse_args()
    if bool(args.acorn_training) != bool(args.acorn_lib):
        parser.error("--acorn-training and --acorn-lib go together")
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
    for tree in args.tree:
        r = whole_tree(tree)
        n = max(1, r["files"])
        shares = "  ".join(f"{m} {k:,} ({k / n:.2%})" for m, k in r["methods"].items() if k)
        print(f"whole tree {r['tree']}: {r['files']:,} files ({r['first']} .. {r['last']}) in {r['seconds']:.1f} s, "
              f"peak RSS {r['rss_mb']:.1f} MB; {shares}; @G that is an `if` header: {r['if_goals']}")
    if args.acorn_training:
        r = against_acorn(args.acorn_training, args.acorn_lib)
        total = r["acorn_files"]
        print(f"acorn training output {args.acorn_training}: {total:,} files")
        for style, d in r["styles"].items():
            same = d["kinds"].get("identical", 0)
            print(f"  --style {style}: {d['files']:,} files; byte-identical to acorn's {same:,}/{total:,} = {same / total:.2%}")
            for kind, count in sorted(d["kinds"].items(), key=lambda kv: -kv[1]):
                if kind != "identical":
                    print(f"    {kind}: {count:,} ({count / total:.2%}), e.g. acorn's {d['examples'][kind]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
