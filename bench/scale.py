"""Every stage of the pipeline at three corpus sizes: time and peak RSS, side by side.

    python bench/scale.py [--whole DIR] [--steps 300] [--shared DIR] [--set KEY=VALUE]... [--work DIR] [--json OUT]

Sizes: `acornlib-2025-11` and `acornlib-2026-08` from `../shared/corpora`, and a whole-library
import given by path (`--whole`, the data folder of `tactics import acornlib` of a whole
acornlib checkout; left out when not given). For each size, each stage runs as its own
`tactics` process (or, for the token cache, a short Python process) and is measured from
outside: wall seconds and the peak resident memory the kernel reports for that process
(`os.wait4`). Stages: corpus stats; tokenizer training (the default `--sample-mb`); the token
cache built from nothing; the cache again after one file changed (what a re-import of one
changed module costs); `--steps` steps of the `cpu` preset (time to the first step, tokens/s
over the steps after the first tenth, peak RSS of the whole run); `tactics eval` on a stable
sample of 50 validation goals (`--sample`: eval's cost is per goal); `tactics export`. Prints a table per stage, ratios of the
largest size to the smallest (both sides measured here), and a chart of peak RSS per stage.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH)]

from figures import print_ratios, ratio  # noqa: E402
from machine import describe  # noqa: E402

EVAL_GOALS = 50  # eval scores a fixed-size sample at every size: its cost is per goal, not per corpus
STAGES = ("stats", "tokenizer", "cache", "cache, 1 file changed", "train", "eval", "export")

CACHE_SNIPPET = """
import sys
from tactics_core.gpt.data import load_token_cache
from tactics_core.gpt.tokenizer import load_tokenizer
cache, _ = load_token_cache(sys.argv[1], load_tokenizer(sys.argv[2]), sys.argv[3], layout="prover")
print(cache.n_files, cache.n_tokens, cache.encoded)
"""


# The peak RSS of a process survives exec (Linux keeps the high-water mark), so a stage forked
# straight from this process, which has torch loaded, would report at least this process's size:
# a small fresh interpreter forks the stage and reports the stage's own peak.
WRAPPER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
with open(os.environ["SCALE_PEAK_FILE"], "w") as fh:
    fh.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measure(argv: list[str], log: Path) -> dict:
    """Run argv to completion: wall seconds and the peak RSS (MB) of that process."""
    peak_file = log.with_suffix(".peak")
    env = dict(os.environ, SCALE_PEAK_FILE=str(peak_file))
    t0 = time.perf_counter()
    with open(log, "wb") as out:
        code = subprocess.call([sys.executable, "-c", WRAPPER, *argv], stdout=out, stderr=subprocess.STDOUT,
                               cwd=REPO, env=env)
    seconds = time.perf_counter() - t0
    if code != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"{' '.join(argv[:4])}... failed ({code}):\n{tail}")
    return {"seconds": round(seconds, 2), "peak_mb": round(int(peak_file.read_text()) / 1024, 1)}


def tactics(*args: str) -> list[str]:
    return [sys.executable, "-m", "tactics_core", *args]


def corpus_size(data_dir: Path) -> tuple[int, int]:
    files = [p for p in data_dir.iterdir() if p.suffix == ".txt"]
    return len(files), sum(p.stat().st_size for p in files)


def run_size(name: str, data_dir: Path, work: Path, steps: int, overrides: list[str]) -> dict:
    """Every stage on one corpus, in a fresh workspace under `work`."""
    from tactics_core.runs.run_events import read_metrics

    work.mkdir(parents=True, exist_ok=True)
    # A private copy: the "one file changed" stage edits a file; the manifest (module split) goes along.
    data = work / "data" / "proofs"
    shutil.copytree(data_dir, data)
    if (data_dir.parent / "manifest.jsonl").is_file():
        shutil.copyfile(data_dir.parent / "manifest.jsonl", data.parent / "manifest.jsonl")
    ckpt = work / "checkpoints"
    n_files, n_bytes = corpus_size(data)
    out: dict = {"name": name, "files": n_files, "mb": round(n_bytes / 1e6, 1), "stages": {}}
    st = out["stages"]
    log = work / "log.txt"
    print(f"\n{name}: {n_files:,} files, {n_bytes / 1e6:,.1f} MB", flush=True)

    st["stats"] = measure(tactics("corpus", "stats", "--data-dir", str(data), "--json"), log)
    st["tokenizer"] = measure(tactics("tokenizer", "train", "--data-dir", str(data), "--output-dir", str(ckpt),
                                      "--json"), log)
    tok = ckpt / "tokenizer.json"
    cache_dir = ckpt / "cache"
    st["cache"] = measure([sys.executable, "-c", CACHE_SNIPPET, str(data), str(tok), str(cache_dir)], log)
    st["cache"]["tokens"] = int(log.read_text().split()[1])
    victim = sorted(data.glob("*.txt"))[len(list(data.glob("*.txt"))) // 2]
    victim.write_text(victim.read_text() + "x = x\n")
    st["cache, 1 file changed"] = measure([sys.executable, "-c", CACHE_SNIPPET, str(data), str(tok), str(cache_dir)], log)
    st["cache, 1 file changed"]["tokenized"] = int(log.read_text().split()[2])
    split = "module" if (data.parent / "manifest.jsonl").is_file() else "theorem"
    launched = time.time()
    st["train"] = measure(tactics(
        "train", "--preset", "cpu", "--data-dir", str(data), "--checkpoint-dir", str(ckpt), "--run-name", "scale",
        "--set", f"training.max_steps={steps}", *[a for o in overrides for a in ("--set", o)], "--set", "training.eval_interval=100000",
        "--set", "training.save_interval=100000", "--set", f"training.split={split}",
    ), log)
    run = ckpt / "runs" / "scale"
    events = read_metrics(run / "metrics.jsonl")
    step_events = [e for e in events if e.get("event") == "step"]
    first = step_events[0]
    st["train"]["to_first_step_s"] = round(float(first["time"]) - launched, 1)  # corpus read and cache included
    later = [e for e in step_events if e["step"] > steps // 10 and e.get("tokens_per_s")]
    st["train"]["tokens_per_s"] = round(sum(e["tokens_per_s"] for e in later) / max(1, len(later)), 0)
    st["train"]["split"] = split
    checkpoint = sorted(run.glob("checkpoint_step_*.pt"))[-1]
    st["eval"] = measure(tactics("eval", str(checkpoint), "--data-dir", str(data), "--sample", str(EVAL_GOALS), "--json"), log)
    report = json.loads(log.read_text()[log.read_text().index("{"):])
    st["eval"]["goals"] = report.get("goals")
    st["export"] = measure(tactics("export", str(checkpoint), str(work / "export"), "--json"), log)
    for stage in STAGES:
        s = st[stage]
        more = {k: v for k, v in s.items() if k not in ("seconds", "peak_mb")}
        print(f"  {stage:<22} {s['seconds']:>8.1f} s  {s['peak_mb']:>8.0f} MB  {more if more else ''}", flush=True)
    return out


def chart(results: list[dict]) -> str:
    """Peak RSS per stage, one bar per size (plotext, text)."""
    import plotext as plt

    plt.clear_figure()
    plt.multiple_bar(list(STAGES), [[r["stages"][s]["peak_mb"] for s in STAGES] for r in results],
                     labels=[r["name"] for r in results])
    plt.title("peak RSS (MB) per stage")
    plt.plotsize(100, 25)
    return plt.uncolorize(plt.build())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--whole", type=Path, help="data folder of a whole-acornlib import (third size)")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the shared folder (corpora)")
    ap.add_argument("--steps", type=int, default=300, help="training steps per size (default 300)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="preset override for the training stage (repeatable; e.g. a tiny model for a smoke run)")
    ap.add_argument("--work", type=Path, help="where the workspaces go (default: a temp folder, removed)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="measure only this size (repeatable; e.g. \"whole acornlib\"), the others from --reuse")
    ap.add_argument("--reuse", type=Path, help="a JSON of an earlier run: sizes not measured now are taken from it")
    args = ap.parse_args()
    sizes = [(n, args.shared / "corpora" / n / "proofs") for n in ("acornlib-2025-11", "acornlib-2026-08")]
    if args.whole:
        sizes.append(("whole acornlib", args.whole))
    for name, path in sizes:
        if not path.is_dir():
            raise SystemExit(f"{path} not found: pass --shared DIR (for {name}) or a --whole data folder")
    print(f"machine: {describe('torch', 'tokenizers')}")
    work = args.work or Path(tempfile.mkdtemp(prefix="tactics-scale-"))
    earlier = {r["name"]: r for r in json.loads(args.reuse.read_text())["sizes"]} if args.reuse else {}
    results = []
    try:
        for name, path in sizes:
            if args.only and name not in args.only:
                if name not in earlier:
                    raise SystemExit(f"{name} is not measured now (--only) and not in --reuse")
                results.append(dict(earlier[name], reused=True))
                print(f"\n{name}: taken from {args.reuse}")
                continue
            results.append(run_size(name, path, work / name.replace(" ", "-"), args.steps, args.set))
            if args.json:  # after each size: a later failure keeps what was measured
                args.json.write_text(json.dumps({"machine": describe("torch", "tokenizers"), "steps": args.steps,
                                                 "sizes": results}, indent=1))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print("\n| stage | " + " | ".join(f"{r['name']} ({r['files']:,} files, {r['mb']} MB)" for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for stage in STAGES:
        cells = [f"{r['stages'][stage]['seconds']:,.1f} s, {r['stages'][stage]['peak_mb']:,.0f} MB" for r in results]
        print(f"| {stage} | " + " | ".join(cells) + " |")
    print("| train: first step after | " + " | ".join(f"{r['stages']['train']['to_first_step_s']} s" for r in results) + " |")
    print("| train: tokens/s | " + " | ".join(f"{r['stages']['train']['tokens_per_s']:,.0f}" for r in results) + " |")
    big, small = results[-1], results[0]
    ratios = [
        ratio("corpus size", big["name"], big["mb"], small["name"], small["mb"], "MB"),
        ratio("training throughput", big["name"], big["stages"]["train"]["tokens_per_s"], small["name"],
              small["stages"]["train"]["tokens_per_s"], "tokens/s", 0),
        ratio("peak RSS of training", big["name"], big["stages"]["train"]["peak_mb"], small["name"],
              small["stages"]["train"]["peak_mb"], "MB", 0),
    ]
    reused = [r["name"] for r in results if r.get("reused")]
    print_ratios(ratios, where="in this run" if not reused else f"(sizes {', '.join(reused)} from {args.reuse})")
    print()
    print(chart(results))
    if args.json:
        args.json.write_text(json.dumps({"machine": describe("torch", "tokenizers"), "steps": args.steps,
                                         "sizes": results}, indent=1))


if __name__ == "__main__":
    main()
