"""Completion latency: 8 candidate lines for a ~200-token prompt, both backends, 1 thread.

    python bench/completion_latency.py [--corpus DIR] [--n 8] [--max-tokens 20]
                                       [--prompt-tokens 200] [--repeats 7] [--threads 1]

Model: the `default` preset's shape (d_model 256, 6 layers, 8 heads, context
256) with random weights and a 4096-token `lines` tokenizer trained on the
corpus. Random weights almost never emit a newline, so every candidate runs
the full line length: --max-tokens (default 20), and the corpus's median
proof line in tokens. A trained model stops most rows earlier.

It measures, side by side in one process (medians of --repeats runs):

1. `Completer.complete` end to end (prompt build, one prefill, batched
   KV-cache decoding of n rows, ranking) for the PyTorch checkpoint and the
   ONNX export folder;
2. per-token decode cost: KV-cache step vs full recompute of the whole
   ~200-token sequence (how the original scripts sampled), batch 1;
3. the prover's token-by-token prompt feeding (200 one-token ONNX Runtime
   calls) vs one prefill call.

Every ratio divides two figures of this run (bench/figures.py). History,
never used in a ratio: another sitting measured full recompute at 78 ms per
token, ONNX Runtime with a KV cache at 2.6 ms and the token-by-token prompt
at 440 ms. Target: <= 150 ms for 8 candidates.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpora" / "acornlib-2025-11" / "proofs"


def machine() -> str:
    from machine import describe  # bench/machine.py

    return describe('torch', 'onnxruntime')


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def pick_goal(corpus: Path, tokenizer, want: int):
    """A real goal whose training prompt (context + @P) is closest to `want` tokens."""
    from tactics_core.gpt.corpus import iter_corpus

    best = None
    for pf in iter_corpus(corpus):
        n = len(tokenizer.encode(pf.prompt()))
        if best is None or abs(n - want) < abs(best[0] - want):
            best = (n, pf)
        if n == want:
            break
    return best


def measure(corpus: Path = DEFAULT_CORPUS, n: int = 8, max_tokens: int = 20, prompt_tokens: int = 200,
            repeats: int = 7, threads: int = 1, log=print) -> dict:
    """End-to-end and per-token latencies of both backends, and the side-by-side ratios (ms, medians)."""
    import numpy as np
    import torch

    from figures import ratio

    torch.set_num_threads(threads)
    from tactics_core.gpt.complete import Completer
    from tactics_core.gpt.corpus import iter_corpus
    from tactics_core.gpt.export import export_model
    from tactics_core.gpt.model import GPT, GPTConfig
    from tactics_core.gpt.tokenizer import load_tokenizer, train_tokenizer
    from tactics_core.runs.checkpoints import save_checkpoint

    out: dict = {"threads": threads, "n": n, "repeats": repeats}
    root = Path(tempfile.mkdtemp(prefix="tactics-bench-"))
    try:
        ckpt_dir = root / "checkpoints"
        train_tokenizer(corpus, ckpt_dir, vocab_size=4096, kind="lines")
        tokenizer = load_tokenizer(ckpt_dir / "tokenizer.json")
        torch.manual_seed(0)
        config = GPTConfig(vocab_size=tokenizer.vocab_size, context_length=256, d_model=256, n_layers=6, n_heads=8, dropout=0.0)
        model = GPT(config).eval()
        save_checkpoint(ckpt_dir / "best_model.pt", {
            "model": model.state_dict(), "model_config": config.to_dict(), "global_step": 0,
            "tokenizer_path": str(ckpt_dir), "tokenizer_sha256": tokenizer.sha256,
            "tokenizer_vocab_size": tokenizer.vocab_size, "tokenizer_kind": tokenizer.kind,
        })
        start = time.perf_counter()
        report = export_model(ckpt_dir / "best_model.pt", root / "export")
        out.update(params=model.num_parameters(), vocab=tokenizer.vocab_size, export_s=time.perf_counter() - start,
                   max_abs_diff=report.max_abs_diff)
        log(f"model: default shape, {model.num_parameters():,} parameters, vocab {tokenizer.vocab_size}; "
            f"export {out['export_s']:.1f}s, max|ORT-PyTorch| {report.max_abs_diff:.1e}")

        n_prompt, goal = pick_goal(corpus, tokenizer, prompt_tokens)
        out.update(prompt=goal.name, prompt_tokens=n_prompt)
        log(f"prompt: {goal.name}, {n_prompt} tokens; n={n}, {max_tokens} tokens per line, "
            f"temperature 0.8, top-p 0.95; median of {repeats}")

        # Typical line length: the median proof line of the corpus, in tokens of this tokenizer.
        lines = [line for pf in iter_corpus(corpus) for line in (pf.proof or ())]
        line_tokens = sorted(len(t) + 1 for t in tokenizer.encode_batch(lines))  # + the newline
        median_line = line_tokens[len(line_tokens) // 2]
        out.update(median_line_tokens=median_line, p90_line_tokens=line_tokens[int(len(line_tokens) * 0.9)])
        log(f"corpus proof lines: median {median_line} tokens (newline included), "
            f"90th percentile {out['p90_line_tokens']}")

        # 1. end to end
        completers = {
            "torch": Completer.load(ckpt_dir / "best_model.pt", threads=threads),
            "onnx": Completer.load(root / "export", threads=threads),
        }
        end_to_end = []
        for name, completer in completers.items():
            for m in sorted({max_tokens, median_line}):
                def run(c=completer, m=m):
                    return c.complete(goal, n=n, temperature=0.8, top_p=0.95, max_tokens=m, seed=0)

                result = run()
                generated = sum(c.tokens for c in result.candidates) / max(1, len(result.candidates))
                ms = median_ms(run, repeats)
                end_to_end.append({"backend": name, "max_tokens": m, "ms": ms, "generated": generated})
                log(f"{name:6s} {ms:7.1f} ms for {n} candidates of {m:2d} tokens "
                    f"(generated ~{generated:.0f} each; {'meets' if ms <= 150 else 'misses'} the 150 ms target)")
        out["end_to_end"] = end_to_end

        # 2. per-token decode: KV cache vs full recompute (batch 1, ~200 tokens of context)
        ids = tokenizer.encode(goal.prompt())[:prompt_tokens]
        with torch.no_grad():
            _, cache = model(torch.tensor([ids]), past_key_values=None)
            nxt = torch.tensor([[ids[-1]]])
            kv_torch = median_ms(lambda: model(nxt, past_key_values=cache), repeats * 3)
            full = torch.tensor([ids])
            recompute = median_ms(lambda: model(full), repeats)
        onnx_backend = completers["onnx"].backend
        _, ocache = onnx_backend.prefill(ids[:-1])
        kv_onnx = median_ms(lambda: onnx_backend.step([ids[-1]], ocache), repeats * 3)
        c8 = onnx_backend.expand(ocache, n)
        kv_onnx_batch = median_ms(lambda: onnx_backend.step([ids[-1]] * n, c8), repeats * 3)

        # 3. the prover's prompt feeding: one token per call vs one prefill
        def token_by_token():
            c = onnx_backend.empty_cache(1)
            for t in ids:
                _, c = onnx_backend._run(np.asarray([[t]], dtype=np.int64), c)

        feed = median_ms(token_by_token, max(3, repeats // 2))
        prefill = median_ms(lambda: onnx_backend.prefill(ids), repeats)
        ctx = len(ids)
        out.update(context_tokens=ctx, recompute_ms=recompute, kv_torch_ms=kv_torch, kv_onnx_ms=kv_onnx,
                   kv_onnx_batch_ms=kv_onnx_batch, prompt_token_by_token_ms=feed, prompt_prefill_ms=prefill)
        log(f"per token at {ctx} tokens of context, batch 1: full recompute {recompute:.2f} ms, KV step torch "
            f"{kv_torch:.2f} ms, onnx runtime {kv_onnx:.2f} ms; onnx batch {n} step {kv_onnx_batch:.2f} ms")
        log(f"prompt of {ctx} tokens into onnx runtime: token by token {feed:.1f} ms, one prefill {prefill:.1f} ms")
        out["ratios"] = [
            ratio(f"decode per token at {ctx} tokens of context, torch KV cache", "full recompute", recompute,
                  "KV-cache step", kv_torch, "ms", 2),
            ratio(f"decode per token at {ctx} tokens of context, ONNX Runtime KV cache", "full recompute (torch)",
                  recompute, "KV-cache step (ONNX Runtime)", kv_onnx, "ms", 2),
            ratio(f"{ctx}-token prompt into ONNX Runtime", "token by token (the prover's way)", feed,
                  "one prefill call", prefill, "ms", 1),
        ]
        for m in sorted({max_tokens, median_line}):
            t_ms = next(e["ms"] for e in end_to_end if e["backend"] == "torch" and e["max_tokens"] == m)
            o_ms = next(e["ms"] for e in end_to_end if e["backend"] == "onnx" and e["max_tokens"] == m)
            out["ratios"].append(ratio(f"{n} candidates x {m} tokens end to end", "PyTorch", t_ms, "ONNX Runtime",
                                       o_ms, "ms", 1))
        out["load_end"] = os.getloadavg()[0]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=20)
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if not args.corpus.is_dir():
        print(f"corpus not found: {args.corpus} (pass --corpus)", file=sys.stderr)
        return 2
    from figures import print_ratios

    print(f"machine: {machine()}, threads {args.threads}")
    r = measure(args.corpus, args.n, args.max_tokens, args.prompt_tokens, args.repeats, args.threads)
    print_ratios(r["ratios"])
    print(f"machine at end: load average {r['load_end']:.2f} (a shared machine makes these noisy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
