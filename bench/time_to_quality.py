"""Time to quality: validation bits/byte reached in a fixed wall-clock budget.

    python bench/time_to_quality.py [--corpus DIR] [--preset cpu] [--minutes 10]
                                    [--kind seed] [--vocab 4096] [--set section.key=value]...
                                    [--fit-steps | --fit-minutes M] [--eval-limit N]
                                    [--baseline] [--keep DIR]

Trains the preset with the real trainer (`tactics_core.training.loop.train`) on the
corpus for at most `--minutes` of wall clock, counted from the call (corpus
reading and tokenizing included; the tokenizer itself is trained before the
clock starts, as a user does once with `tactics tokenizer train`; by
default on the training split only, so no validation text shapes its merges).
Prints
validation bits/byte (whole stream and proof lines) at each evaluation with
the elapsed time, then, on the WHOLE validation split: the loss and bits/byte
of the final and the best model, and the best model's figures the prover's
way (`tactics_core.gpt.evaluate`: proof_bpb, prover exact match@8,
first_line_marker_rate, overflow_rate, attempts per 5 s).

Issue 9 aims with the shipped `cpu` preset: first-line marker rate 0%, proof
bits/byte <= 0.60, prover exact match@8 >= 3%, overflow <= 5%.

`--baseline` then trains the original recipe (bench/original_recipe.py: one
file per padded row, pad tokens trained on, AdamW, the original defaults) for
the same wall-clock budget in the same sitting, with the same tokenizer, and
reports the same figures for it; every ratio divides two of these figures
(bench/figures.py). Whole-file bits/byte (the `file` layout's validation rows)
is measured for both sides, whatever layout each trained on.

Goal (issue 3): <= 1.0 bits/byte within 10 minutes on 2 CPU cores on
acornlib-2025-11. History, never used in a ratio: another sitting measured
the original defaults at 3.84 bits/byte there after 10 minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_CORPUS = REPO.parent / "shared" / "corpora" / "acornlib-2025-11" / "proofs"


def fit_steps(preset, corpus: Path, work: Path, budget_s: float, overhead_s: float = 12.0) -> int:
    """Optimizer steps that fit `budget_s`: `tactics_core.training.budget.fit_steps`, which times real
    training steps of the preset on real batches (`work` holds the tokenizer and the token cache)."""
    from tactics_core.training.budget import TIMED_STEPS, fit_steps as fit

    found = fit(preset, corpus, work, budget_s, overhead_s=overhead_s, device="cpu")
    print(f"fit-steps: {found.step_s * 1000:.0f} ms per step (mean of {TIMED_STEPS} real batches) -> max_steps {found.steps} "
          f"for {budget_s:.0f} s", flush=True)
    return found.steps


def whole_file_bpb(model, corpus: Path, work: Path, context_length: int, val_fraction: float, seed: int,
                   max_batches: int = 0) -> dict:
    """Bits/byte of whole validation files (text + end token, the `file` layout), the same rows for any model."""
    from tactics_core.gpt.data import load_dataset
    from tactics_core.gpt.tokenizer import load_tokenizer
    from tactics_core.gpt.kind import evaluate_split

    tok = load_tokenizer(work / "tokenizer.json")
    ds = load_dataset(corpus, tok, work / "cache", context_length, val_fraction=val_fraction, seed=seed, layout="file")
    r = evaluate_split(model, ds.val, 32, max_batches, "cpu")
    return {"whole_file_bpb": r["val_bpb"], "whole_file_bytes": r["bytes"], "whole_file_rows": ds.val.n_rows}


def prover_figures(best: Path, corpus: Path, eval_limit: int | None, log) -> dict:
    """`tactics_core.gpt.evaluate.evaluate` of a checkpoint: the prover-protocol figures."""
    from tactics_core.gpt.evaluate import evaluate

    t0 = time.monotonic()
    e = evaluate(best, corpus, k=8, limit=eval_limit, layout_exact_match=False)
    out = {k: getattr(e, k) for k in ("goals", "prover_lines", "prover_matched", "proof_bpb", "prover_exact_match_at_k",
                                      "first_line_marker_rate", "overflow_rate", "overflow_goals", "attempts_per_5s",
                                      "attempt_ms", "bpb")}
    out["eval_s"] = time.monotonic() - t0
    log(f"  {best.name}, the prover's way ({e.goals} validation goals, {e.prover_lines} lines, {out['eval_s']:.0f} s):")
    log(f"    proof_bpb                {e.proof_bpb:.4f}   (aim <= 0.60)")
    log(f"    prover_exact_match_at_k  {e.prover_exact_match_at_k:.2%}   (k = 8, {e.prover_matched}/{e.prover_lines}; aim >= 3%)")
    log(f"    first_line_marker_rate   {e.first_line_marker_rate:.2%}   (aim 0%)")
    log(f"    overflow_rate            {e.overflow_rate:.2%}   ({e.overflow_goals} goals; aim <= 5%)")
    log(f"    attempts_per_5s          {e.attempts_per_5s:.0f}   ({e.attempt_ms:.1f} ms per attempt, 1 thread)")
    return out


def run_ours(corpus: Path, work: Path, preset, minutes: float, eval_limit: int | None, whole_batches: int,
             metrics_interval: float, log) -> dict:
    """Train `preset` with the real trainer for at most `minutes`, then score it (the bench's main side)."""
    from tactics_core.common.progress import CancelToken
    from tactics_core.gpt.data import load_dataset
    from tactics_core.gpt.tokenizer import load_tokenizer
    from tactics_core.runs.checkpoints import load_model
    from tactics_core.gpt.kind import evaluate_split
    from tactics_core.training.loop import train

    cancel = CancelToken()
    budget = minutes * 60
    start = time.monotonic()
    timer = threading.Timer(budget, cancel.cancel)
    timer.daemon = True
    timer.start()
    last_step: dict = {}
    curve: list = []
    evals: list = []

    def on_event(ev):
        t = time.monotonic() - start
        if ev["event"] == "step":
            last_step.update(ev)
            curve.append((t, ev["step"], ev["loss"]))
        if ev["event"] == "start":
            log(f"  {t:6.1f}s start: {ev['params'] / 1e6:.2f}M params, {ev['threads']} threads, {ev.get('precision') or 'fp32'}, "
                f"{ev['total_steps']} steps planned, data {ev['data']}")
        elif ev["event"] == "eval":
            evals.append({"s": t, "step": ev["step"], "val_bpb": ev["val_bpb"], "proof_bpb": ev.get("proof_bpb")})
            log(f"  {t:6.1f}s step {ev['step']:5d}  val loss {ev['val_loss']:.4f}  val {ev['val_bpb']:.4f} bits/byte"
                f"  proof lines {ev.get('proof_loss', float('nan')):.4f} / {ev.get('proof_bpb', float('nan')):.4f} bits/byte")
        elif ev["event"] == "end":
            log(f"  {t:6.1f}s end: {ev['reason']} at step {ev['step']} ({ev['message']}); last training "
                f"loss {last_step.get('loss', float('nan')):.4f} at epoch {last_step.get('epoch', 0):.2f}, "
                f"{last_step.get('tokens_per_s', 0):,.0f} tokens/s")

    result = train(preset, corpus, work, on_event=on_event, cancel=cancel, metrics_interval=metrics_interval,
                   handle_signals=False)
    timer.cancel()
    trained_s = time.monotonic() - start
    out = {"recipe": "ours", "steps": result.step, "reason": result.reason, "trained_s": trained_s, "curve": curve,
           "evals": evals, "layout": preset.training.layout, "params": None}
    tok = load_tokenizer(work / "tokenizer.json")
    ds = load_dataset(corpus, tok, work / "cache", preset.model.context_length,
                      val_fraction=preset.training.val_fraction, seed=preset.training.seed,
                      layout=preset.training.layout, batch_size=32)
    log(f"\nafter {trained_s:.0f} s of wall clock ({result.step} steps, {result.reason}), whole validation split "
        f"({ds.val.n_rows} rows, {len(ds.val_files)} files, {preset.training.layout} layout):")
    for name, path in (("final", result.last_checkpoint), ("best", work / "best_model.pt")):
        if path and Path(path).is_file():
            m = load_model(path)
            r = evaluate_split(m.model, ds.val, 32, 0, "cpu")
            out[name] = {"step": m.payload.get("global_step"), "val_loss": r["val_loss"], "val_bpb": r["val_bpb"],
                         "proof_loss": r["proof_loss"], "proof_bpb": r["proof_bpb"]}
            out["params"] = m.model.num_parameters()
            log(f"  {name:5s} model (step {m.payload.get('global_step')}): val loss {r['val_loss']:.4f}, "
                f"{r['val_bpb']:.4f} bits/byte over {r['bytes']:,} bytes; proof lines {r['proof_loss']:.4f}, "
                f"{r['proof_bpb']:.4f} bits/byte over {r['proof_bytes']:,} bytes")
    best = work / "best_model.pt"
    if not best.is_file() and result.last_checkpoint:  # no evaluation ran (a short budget): score the final model
        best = Path(result.last_checkpoint)
    out["scored"] = "best" if best.name == "best_model.pt" else "final"
    if best.is_file():
        m = load_model(best)
        out.update(whole_file_bpb(m.model, corpus, work, preset.model.context_length, preset.training.val_fraction,
                                  preset.training.seed, whole_batches))
        log(f"  {out['scored']} model, whole files: {out['whole_file_bpb']:.4f} bits/byte over {out['whole_file_bytes']:,} bytes")
        out["prover"] = prover_figures(best, corpus, eval_limit, log)
    return out


def run_baseline(corpus: Path, work: Path, minutes: float, eval_limit: int | None, whole_batches: int,
                 overrides: list[str], log) -> dict:
    """The original recipe for the same wall clock (its tokenizer already in `work`), scored the same way."""
    sys.path.insert(0, str(REPO / "bench"))
    from original_recipe import load_original, original_preset, train_original
    from tactics_core.runs.checkpoints import load_model
    from tactics_core.training.loop import configure_threads

    preset = original_preset(overrides)
    threads = configure_threads(int(preset.training.num_threads))
    start = time.monotonic()
    rows, *_ = load_original(corpus, work, preset)  # tokenizing counts in the budget, as for ours
    t = preset.training
    total = t.max_steps or max(1, len(rows.files) // t.batch_size) * int(t.epochs)
    curve: list = []

    def on_step(ev):
        curve.append((time.monotonic() - start, ev["step"], ev["useful_loss"]))

    log(f"  baseline: original recipe, {threads} threads, {total} steps planned (warmup {t.warmup_steps}), "
        f"{rows.padding_fraction:.0%} of targets padding")
    r = train_original(corpus, work, preset, max_steps=total, deadline=start + minutes * 60, on_step=on_step,
                       total_steps=total, rows=rows)
    trained_s = time.monotonic() - start
    log(f"  baseline: {r['steps']} steps in {trained_s:.0f} s; last training loss (non-pad targets) "
        f"{curve[-1][2] if curve else float('nan'):.4f}")
    out = {"recipe": "original", "steps": r["steps"], "trained_s": trained_s, "curve": curve, "layout": "file",
           "params": r["params"], "padding_fraction": r["padding_fraction"]}
    m = load_model(r["checkpoint"])
    out.update(whole_file_bpb(m.model, corpus, work, preset.model.context_length, t.val_fraction, t.seed, whole_batches))
    log(f"  baseline, whole files: {out['whole_file_bpb']:.4f} bits/byte over {out['whole_file_bytes']:,} bytes")
    out["prover"] = prover_figures(Path(r["checkpoint"]), corpus, eval_limit, log)
    return out


def comparison_ratios(ours: dict, base: dict) -> list:
    """Side-by-side ratios of the two runs (original / ours for bits: > 1 means ours needs fewer)."""
    from figures import ratio

    minutes = f"{ours['trained_s']:.0f} s vs {base['trained_s']:.0f} s of wall clock"
    out = [ratio(f"optimizer steps in the same budget ({minutes})", "ours", ours["steps"], "original", base["steps"],
                 "steps", 0)]
    pairs = [("whole-file bits/byte", ours.get("whole_file_bpb"), base.get("whole_file_bpb")),
             ("proof_bpb (the prover's stream)", ours.get("prover", {}).get("proof_bpb"),
              base.get("prover", {}).get("proof_bpb"))]
    for name, a, b in pairs:
        if a and b:
            out.append(ratio(f"{name}, original / ours ({minutes})", "original", b, "ours", a, "bits/byte", 4))
    a = ours.get("prover", {}).get("prover_exact_match_at_k")
    b = base.get("prover", {}).get("prover_exact_match_at_k")
    if a and b:  # a ratio needs both sides above zero; the figures themselves are reported either way
        out.append(ratio(f"prover exact match@8 ({minutes})", "ours", a, "original", b, "(share of lines)", 4))
    return out


def measure(corpus: Path = DEFAULT_CORPUS, preset_name: str = "cpu", minutes: float = 10.0, kind: str = "lines",
            vocab: int = 4096, tokenizer_on: str = "train", overrides: list[str] | None = None,
            fit_steps_: bool = False, fit_minutes: float | None = None, eval_limit: int | None = None,
            baseline: bool = False, baseline_overrides: list[str] | None = None, keep: Path | None = None,
            whole_batches: int = 0, metrics_interval: float = 5.0, log=print) -> dict:
    """Both runs (ours, then the original with `baseline`) and their ratios, as dicts."""
    from tactics_core.gpt.tokenizer import train_tokenizer
    from tactics_core.training.presets import apply_overrides, load_preset

    overrides = list(overrides or [])
    work = keep or Path(tempfile.mkdtemp(prefix="bench-ttq-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        preset = apply_overrides(load_preset(preset_name), overrides)
        if not (work / "tokenizer.json").is_file():
            # "train": leave the validation theorems out of BPE training (what
            # `tactics tokenizer train` does); "all": the leaky way, for comparison.
            holdout = preset.training.val_fraction if tokenizer_on == "train" else 0.0
            train_tokenizer(corpus, work, vocab_size=vocab, kind=kind, holdout_fraction=holdout)
            log(f"tokenizer: {kind}, vocab {vocab}, trained on {tokenizer_on} files")
        if fit_steps_ or fit_minutes:
            steps = fit_steps(preset, corpus, work, (fit_minutes or minutes) * 60)
            preset = apply_overrides(preset, [f"training.max_steps={steps}"])
        log(f"preset {preset_name} {' '.join(overrides)}: model {preset.model}, training {preset.training}")
        result = {"preset": preset_name, "overrides": overrides, "minutes": minutes, "corpus": str(corpus),
                  "tokenizer": f"{kind} {vocab} ({tokenizer_on} files)"}
        result["ours"] = run_ours(corpus, work, preset, minutes, eval_limit, whole_batches, metrics_interval, log)
        result["ratios"] = []
        if baseline:  # in work/baseline, with the same tokenizer file
            base_work = work / "baseline"
            base_work.mkdir(exist_ok=True)
            shutil.copy(work / "tokenizer.json", base_work / "tokenizer.json")
            log(f"\nbaseline: the original recipe for the same {minutes:g} minutes, same tokenizer")
            result["baseline"] = run_baseline(corpus, base_work, minutes, eval_limit, whole_batches,
                                              list(baseline_overrides or []), log)
            result["ratios"] = comparison_ratios(result["ours"], result["baseline"])
        return result
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--kind", default="lines", help="tokenizer kind (lines | seed | names; default lines, the CLI's default)")
    ap.add_argument("--vocab", type=int, default=4096, help="tokenizer vocabulary size asked for (default 4096)")
    ap.add_argument("--tokenizer-on", choices=("train", "all"), default="train",
                    help="train the tokenizer on the training split only (default, as `tactics tokenizer "
                         "train` does: no validation text leaks into its merges) or on the whole corpus "
                         "(the leaky way, for comparison)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--keep", type=Path, help="keep the run folder here instead of a temp folder")
    ap.add_argument("--eval-limit", type=int, default=None, metavar="N",
                    help="score the prover's figures on the first N validation goals only (default: all)")
    ap.add_argument("--fit-steps", action="store_true",
                    help="before the clock starts, time a few training steps of this model shape and set "
                         "training.max_steps so the run (schedule included) fills the budget; for comparing "
                         "recipes at equal wall clock (the preset's own max_steps is what users get)")
    ap.add_argument("--fit-minutes", type=float, default=None, metavar="M",
                    help="like --fit-steps, but fill M minutes (measured on real batches before the clock) while "
                         "--minutes stays the hard cap: for comparisons on a machine that other work may slow")
    ap.add_argument("--baseline", action="store_true",
                    help="also train the original recipe (original defaults) for the same --minutes in this "
                         "sitting, with the same tokenizer, and print the same figures and the ratios")
    args = ap.parse_args()

    sys.path.insert(0, str(REPO / "bench"))
    from figures import print_ratios
    from machine import describe  # bench/machine.py

    print(f"machine: {describe('torch')}", flush=True)
    r = measure(args.corpus, args.preset, args.minutes, args.kind, args.vocab, args.tokenizer_on, args.overrides,
                args.fit_steps, args.fit_minutes, args.eval_limit, args.baseline, keep=args.keep,
                log=lambda m: print(m, flush=True))
    print_ratios(r["ratios"], "in this sitting")


if __name__ == "__main__":
    main()
