"""Training throughput: our training loop against the original recipe, side by side, same threads.

    python bench/train_throughput.py [--corpus DIR] [--preset default] [--steps 8]
                                     [--threads 1,2] [--kinds lines,seed] [--contention]
                                     [--no-baseline]

For each tokenizer kind and thread count this runs `tactics_core.training.loop.train`
(the loop users run: the prover layout, masking, AdamW, clipping) for a few
steps in a fresh subprocess; for each thread count it also runs the original
recipe (bench/original_recipe.py: one file per padded row, pad tokens trained
on, AdamW, their defaults, the `seed` tokenizer) in the same way, so every
"x the original" ratio divides two figures of this run at the same thread
count. Measured after 2 warm-up steps:

* useful tokens/s: scored, non-padding target tokens per second;
* text bytes/s: useful tokens/s x UTF-8 bytes per scored token of that
  tokenizer and layout on the corpus (the `lines` kind packs ~2.5x more text
  per token); the "proof chars/s" of earlier reports (the corpus is ASCII);
* MFU = 6 x parameters x useful tokens/s / fp32 matmul peak, the peak measured
  in the same process with the same thread count (best of 2048^3 matmuls).

`--contention` also measures 2 threads while a second busy process (a stand-in
for the TUI) spins on one core, with OMP_WAIT_POLICY=PASSIVE (what detached
runs use) and ACTIVE (spin-waiting workers).

History (issue 3, another machine and sitting, never used in a ratio): the
original scripts took 12.35 s per step of 32x256 tokens at 1 thread.
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

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
DEFAULT_CORPUS = REPO.parent / "shared" / "corpora" / "acornlib-2025-11" / "proofs"


def matmul_peak(threads: int, n: int = 2048, reps: int = 4) -> float:
    """Best fp32 matmul GFLOP/s with this thread count."""
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.mm(a, b)
    best = 0.0
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def _worker_ours(args: argparse.Namespace, threads: int) -> dict:
    from tactics_core.training.loop import train
    from tactics_core.training.presets import apply_overrides, load_preset

    preset = apply_overrides(
        load_preset(args.preset),
        [f"training.num_threads={threads}", "training.device=cpu", "training.eval_interval=1000000",
         "training.save_interval=1000000", *args.overrides],
    )
    steps = []

    def on_event(ev):
        if ev["event"] == "step":
            steps.append((time.perf_counter(), ev["tokens"]))

    result = train(preset, args.corpus, args.workdir, max_steps=args.steps + 2, metrics_interval=0,
                   on_event=on_event, handle_signals=False)
    (t0, tok0), (t1, tok1) = steps[1], steps[-1]
    from tactics_core.runs.checkpoints import load_checkpoint

    payload = load_checkpoint(Path(result.last_checkpoint))
    params = sum(v.numel() for v in payload["model"].values())
    return {"tokens_per_s": (tok1 - tok0) / (t1 - t0), "s_per_step": (t1 - t0) / (len(steps) - 2), "params": params}


def _worker_original(args: argparse.Namespace, threads: int) -> dict:
    sys.path.insert(0, str(BENCH))
    import torch

    from original_recipe import original_preset, train_original

    torch.set_num_threads(threads)
    steps = []

    def on_step(ev):
        steps.append((time.perf_counter(), ev["useful"], ev["tokens"]))

    out = train_original(args.corpus, args.workdir, original_preset(args.overrides), max_steps=args.steps + 2,
                         on_step=on_step, total_steps=100000)
    (t0, _, _), (t1, _, _) = steps[1], steps[-1]
    useful = sum(u for _, u, _ in steps[2:])
    every = sum(n for _, _, n in steps[2:])
    return {"tokens_per_s": useful / (t1 - t0), "all_tokens_per_s": every / (t1 - t0),
            "s_per_step": (t1 - t0) / (len(steps) - 2), "params": out["params"],
            "padding_fraction": out["padding_fraction"]}


def worker(args: argparse.Namespace) -> None:
    """One measurement, in its own process (OMP settings apply at torch import)."""
    import torch

    threads = args.threads_one
    peak_before = matmul_peak(threads, args.peak_n)
    r = (_worker_original if args.recipe == "original" else _worker_ours)(args, threads)
    r.update(threads=threads, peak_gflops=max(peak_before, matmul_peak(threads, args.peak_n)), load=os.getloadavg()[0],
             omp=os.environ.get("OMP_WAIT_POLICY", "(unset)"), torch_threads=torch.get_num_threads())
    print(json.dumps(r))


def spinner() -> subprocess.Popen:
    """A busy process on one core, like a TUI redrawing."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def bytes_per_token(corpus: Path, tok, cache_dir: Path, layout: str) -> float:
    """UTF-8 bytes per scored token of `layout` (each side's own data) on the corpus."""
    import numpy as np

    from tactics_core.gpt.data import load_token_cache

    cache, _ = load_token_cache(corpus, tok, cache_dir, layout=layout)
    tokens = np.concatenate([cache.file_tokens(i) for i in range(cache.n_files)])
    return float(cache.token_bytes[tokens].sum()) / len(tokens)


def _run_worker(recipe: str, corpus: Path, preset: str, steps: int, threads: int, work: Path, omp: str,
                busy: bool, overrides: list[str], peak_n: int = 2048) -> dict:
    env = dict(os.environ, OMP_WAIT_POLICY=omp, PYTHONPATH=str(REPO))
    cmd = [sys.executable, __file__, "--worker", "--recipe", recipe, "--corpus", str(corpus), "--preset", preset,
           "--steps", str(steps), "--threads-one", str(threads), "--workdir", str(work), "--peak-n", str(peak_n)]
    for o in overrides:
        cmd += ["--set", o]
    spin = spinner() if busy else None
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    finally:
        if spin is not None:
            spin.kill()
            spin.wait()
    if out.returncode != 0:
        raise RuntimeError(f"throughput worker ({recipe}) failed:\n{out.stderr[-3000:]}")
    for p in list(work.glob("*.pt")) + [work / "metrics.jsonl", work / "run.json"]:
        p.unlink(missing_ok=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(corpus: Path = DEFAULT_CORPUS, preset: str = "default", steps: int = 8, threads=(1, 2),
            kinds=("lines", "seed"), contention: bool = False, baseline: bool = True,
            overrides: list[str] | None = None, log=print, peak_n: int = 2048, rounds: int = 1) -> dict:
    """Rows of our loop (per kind, threads) and the original recipe (per threads), plus ratios at equal threads.

    With `rounds` > 1 each row is the best of that many runs, ours and the original alternating.

    `overrides` (preset `section.key=value`) apply to both sides and a small `peak_n` (the matmul
    that measures the MFU peak) saves seconds: for tiny test runs only.
    """
    from figures import ratio
    from tactics_core.gpt.tokenizer import load_tokenizer, train_tokenizer

    overrides = list(overrides or [])
    tmp = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    rows, base_rows, ratios = [], [], []

    def finish(r: dict, recipe: str, kind: str, bpt: float, busy: bool, omp: str) -> dict:
        r.update(recipe=recipe, kind=kind, bytes_per_token=bpt, busy=busy, omp=omp)
        r["bytes_per_s"] = r["tokens_per_s"] * bpt
        r["mfu"] = 6 * r["params"] * r["tokens_per_s"] / (r["peak_gflops"] * 1e9)
        return r

    def best(runs: list) -> dict:
        b = max(runs, key=lambda r: r["tokens_per_s"])
        return dict(b, rounds=len(runs), all_tokens_per_s_runs=[r["tokens_per_s"] for r in runs])

    try:
        base_work = tmp / "original"
        base_bpt = 0.0
        if baseline:
            train_tokenizer(corpus, base_work, vocab_size=4096, kind="seed")
            base_bpt = bytes_per_token(corpus, load_tokenizer(base_work / "tokenizer.json"), base_work / "cache", "file")
        base_runs: dict = {int(t): [] for t in threads}
        for kind in kinds:
            work = tmp / kind
            train_tokenizer(corpus, work, vocab_size=4096, kind=kind)
            tok = load_tokenizer(work / "tokenizer.json")
            bpt = bytes_per_token(corpus, tok, work / "cache", "prover")
            for t in threads:
                # Ours and the original alternate (`rounds` times), so a load that comes and goes
                # on a shared machine falls on both sides; the best run of each side is kept.
                runs = []
                for _ in range(max(1, rounds)):
                    runs.append(finish(_run_worker("ours", corpus, preset, steps, int(t), work, "PASSIVE", False,
                                                   overrides, peak_n), "ours", kind, bpt, False, "PASSIVE"))
                    log(row_line(runs[-1]))
                    if baseline and len(base_runs[int(t)]) < max(1, rounds) * len(kinds):
                        base_runs[int(t)].append(finish(_run_worker("original", corpus, preset, steps, int(t), base_work,
                                                                    "PASSIVE", False, overrides, peak_n),
                                                        "original", "seed", base_bpt, False, "PASSIVE"))
                        log(row_line(base_runs[int(t)][-1]))
                rows.append(best(runs))
            if contention:
                for omp in ("PASSIVE", "ACTIVE"):
                    rows.append(finish(_run_worker("ours", corpus, preset, steps, 2, work, omp, True, overrides, peak_n),
                                       "ours", kind, bpt, True, omp))
                    log(row_line(rows[-1]))
        if baseline:
            base_rows = [best(base_runs[int(t)]) for t in threads]
            for r in rows:
                if r["busy"]:
                    continue
                b = next(b for b in base_rows if b["threads"] == r["threads"])
                tag = f"{r['kind']} tokenizer vs the original recipe, {r['threads']} thread(s)"
                ratios.append(ratio(f"useful tokens/s, {tag}", "ours", r["tokens_per_s"], "original",
                                    b["tokens_per_s"], "tokens/s", digits=0))
                ratios.append(ratio(f"text bytes/s, {tag}", "ours", r["bytes_per_s"], "original",
                                    b["bytes_per_s"], "bytes/s", digits=0))
                # MFU divides by the matmul peak each process measured, so it also evens out a load
                # that differed between the two runs.
                ratios.append(ratio(f"MFU, {tag}", "ours", r["mfu"], "original", b["mfu"], "of the matmul peak", digits=3))
        for kind in kinds:  # spin-waiting vs passive workers next to a busy process, same run
            p = [r for r in rows if r["kind"] == kind and r["busy"]]
            if len(p) == 2:
                ratios.append(ratio(f"tokens/s with a busy neighbour, {kind}, 2 threads", "PASSIVE", p[0]["tokens_per_s"],
                                    "ACTIVE", p[1]["tokens_per_s"], "tokens/s", digits=0))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"corpus": str(corpus), "preset": preset, "steps": steps, "rows": rows, "baseline": base_rows,
            "ratios": ratios}


def row_line(r: dict) -> str:
    name = "original recipe" if r["recipe"] == "original" else f"ours, {r['kind']}"
    extra = f" +busy neighbour {r['omp']}" if r["busy"] else ""
    pad = f", {r['padding_fraction']:.0%} of targets padding" if r.get("padding_fraction") is not None else ""
    pad += f", load {r['load']:.1f}" if "load" in r else ""
    return (f"  {name:16s} threads {r['threads']}{extra:24s} {r['s_per_step']:6.2f} s/step  "
            f"{r['tokens_per_s']:7.0f} useful tok/s  {r['bytes_per_s']:7.0f} bytes/s  MFU {r['mfu']:5.1%} "
            f"(peak {r['peak_gflops']:.0f} GFLOP/s, {r['params'] / 1e6:.2f}M params{pad})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--steps", type=int, default=8, help="measured steps (after 2 warm-up steps)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--kinds", default="lines,seed", help="tokenizer kinds to compare")
    ap.add_argument("--contention", action="store_true")
    ap.add_argument("--no-baseline", action="store_true", help="skip the original recipe (no ratios)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="runs per row, ours and the original alternating; the best of each is kept (default 1)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help=argparse.SUPPRESS)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--recipe", default="ours", help=argparse.SUPPRESS)
    ap.add_argument("--threads-one", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--peak-n", type=int, default=2048, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    sys.path.insert(0, str(REPO))
    from figures import print_ratios
    from machine import describe

    print(f"machine: {describe('torch')}")
    print(f"corpus: {args.corpus}, preset {args.preset}, {args.steps} measured steps per row")
    r = measure(args.corpus, args.preset, args.steps, [int(t) for t in args.threads.split(",")],
                args.kinds.split(","), args.contention, not args.no_baseline, args.overrides, rounds=args.rounds)
    print_ratios(r["ratios"])


if __name__ == "__main__":
    main()
