"""Training throughput: tokens/s, proof characters/s and MFU of the real training loop.

    python bench/train_throughput.py [--corpus DIR] [--preset default] [--steps 8]
                                     [--threads 1,2] [--kinds lines,seed] [--contention]

For each tokenizer kind and thread count this runs `tactics_core.train.train`
(the loop users run: packing, masking, AdamW, clipping) for a few steps in a
fresh subprocess and measures, after 2 warm-up steps:

* useful tokens/s: scored (non-padding) target tokens per second;
* proof characters/s: useful tokens/s x characters per token of that
  tokenizer on the corpus (the `lines` kind packs ~2.5x more text per token);
* MFU = 6 x parameters x useful tokens/s / fp32 matmul peak, the peak measured
  in the same process with the same thread count (best of 2048^3 matmuls).

`--contention` also measures 2 threads while a second busy process (a stand-in
for the TUI) spins on one core, with OMP_WAIT_POLICY=PASSIVE (what detached
runs use) and ACTIVE (spin-waiting workers).

Reference (issue 3): the original scripts, same corpus and default
configuration: 12.35 s per step of 32x256 tokens, 605 useful tokens/s
(~1,550 chars/s), MFU 31% (1 thread).
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
DEFAULT_CORPUS = REPO.parent / "shared" / "corpora" / "acornlib-2025-11" / "proofs"
ORIGINAL = {"tokens_per_s": 605.0, "chars_per_s": 1550.0, "mfu": 0.31, "s_per_step": 12.35}


def machine() -> str:
    from machine import describe  # bench/machine.py

    return describe('torch')


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


def worker(args: argparse.Namespace) -> None:
    """One measurement, in its own process (OMP settings apply at torch import)."""
    import torch

    from tactics_core.presets import apply_overrides, load_preset
    from tactics_core.train import train

    threads = args.threads_one
    peak_before = matmul_peak(threads)
    preset = apply_overrides(
        load_preset(args.preset),
        [
            f"training.num_threads={threads}",
            "training.device=cpu",
            "training.eval_interval=1000000",
            "training.save_interval=1000000",
        ],
    )
    steps = []

    def on_event(ev):
        if ev["event"] == "step":
            steps.append((time.perf_counter(), ev["tokens"], ev["step"]))

    result = train(preset, args.corpus, args.workdir, max_steps=args.steps + 2, metrics_interval=0, on_event=on_event, handle_signals=False)
    peak_after = matmul_peak(threads)
    (t0, tok0, _), (t1, tok1, _) = steps[1], steps[-1]
    tokens_per_s = (tok1 - tok0) / (t1 - t0)
    s_per_step = (t1 - t0) / (len(steps) - 2)
    from tactics_core.checkpoints import load_checkpoint

    payload = load_checkpoint(Path(result.last_checkpoint))
    params = sum(v.numel() for k, v in payload["model"].items())
    print(json.dumps({
        "threads": threads,
        "tokens_per_s": tokens_per_s,
        "s_per_step": s_per_step,
        "params": params,
        "peak_gflops": max(peak_before, peak_after),
        "omp": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        "torch_threads": torch.get_num_threads(),
    }))


def spinner() -> subprocess.Popen:
    """A busy process on one core, like a TUI redrawing."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--steps", type=int, default=8, help="measured steps (after 2 warm-up steps)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--kinds", default="lines,seed", help="tokenizer kinds to compare")
    ap.add_argument("--contention", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads-one", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    sys.path.insert(0, str(REPO))
    from tactics_core.data import load_token_cache
    from tactics_core.tokenizer import load_tokenizer, train_tokenizer

    print(f"machine: {machine()}")
    print(f"corpus: {args.corpus}, preset {args.preset}, {args.steps} measured steps per row")
    tmp = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    rows = []
    try:
        for kind in args.kinds.split(","):
            work = tmp / kind
            train_tokenizer(args.corpus, work, vocab_size=4096, kind=kind)
            tok = load_tokenizer(work / "tokenizer.json")
            cache, files = load_token_cache(args.corpus, tok, work / "cache")
            chars = sum(len(f.text()) for f in files)
            # Characters per scored token: the separator (<EOS>) is scored but holds no text.
            chars_per_token = chars / len(cache.tokens)
            plans = [(int(t), "PASSIVE", False) for t in args.threads.split(",")]
            if args.contention:
                plans += [(2, "PASSIVE", True), (2, "ACTIVE", True)]
            for threads, omp, busy in plans:
                env = dict(os.environ, OMP_WAIT_POLICY=omp, PYTHONPATH=str(REPO))
                spin = spinner() if busy else None
                try:
                    out = subprocess.run(
                        [sys.executable, __file__, "--worker", "--corpus", str(args.corpus), "--preset", args.preset,
                         "--steps", str(args.steps), "--threads-one", str(threads), "--workdir", str(work)],
                        env=env, capture_output=True, text=True,
                    )
                    if out.returncode != 0:
                        raise SystemExit(f"worker failed:\n{out.stderr[-3000:]}")
                    out = out.stdout
                finally:
                    if spin is not None:
                        spin.kill()
                        spin.wait()
                r = json.loads(out.strip().splitlines()[-1])
                r.update(kind=kind, chars_per_token=chars_per_token, busy=busy, omp=omp)
                r["chars_per_s"] = r["tokens_per_s"] * chars_per_token
                r["mfu"] = 6 * r["params"] * r["tokens_per_s"] / (r["peak_gflops"] * 1e9)
                rows.append(r)
                for p in work.glob("*.pt"):
                    p.unlink()
                for p in ("metrics.jsonl", "run.json"):
                    (work / p).unlink(missing_ok=True)
                print(
                    f"  {kind:5s} threads {threads} {'+busy neighbour ' + omp if busy else '':24s} "
                    f"{r['s_per_step']:6.2f} s/step  {r['tokens_per_s']:7.0f} tok/s  {r['chars_per_s']:7.0f} chars/s  "
                    f"MFU {r['mfu']:5.1%} (peak {r['peak_gflops']:.0f} GFLOP/s, {r['params'] / 1e6:.2f}M params)",
                    flush=True,
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\nratios vs the original scripts (605 tok/s, 1,550 chars/s, MFU 31%, 1 thread):")
    for r in rows:
        tag = f"{r['kind']}, {r['threads']} thread(s)" + (f", busy neighbour, {r['omp']}" if r["busy"] else "")
        print(
            f"  {tag:40s} tokens/s x{r['tokens_per_s'] / ORIGINAL['tokens_per_s']:.2f}  "
            f"chars/s x{r['chars_per_s'] / ORIGINAL['chars_per_s']:.2f}  MFU {r['mfu']:.0%}"
        )


if __name__ == "__main__":
    main()
