"""Every README figure from one command: run all benches and write bench/REPORT.md.

    python bench/report.py [--quick] [--out bench/REPORT.md] [--shared DIR]

Runs, in one sitting on this machine: corpus stats, tokenizer kinds, training
throughput with the original recipe measured beside ours, completion latency
(full recompute vs KV cache vs ONNX Runtime, token-by-token prompt vs
prefill), time to quality of the `cpu` preset with the original recipe
trained for the same wall clock, and `tactics import acornlib`. Each bench
module exposes `measure(...)` returning dicts; this script formats them. Every
ratio comes from `figures.ratio` (two numbers measured in this run, both kept),
so tests/test_bench_report.py can check that none divides by a constant.

`--quick` (about 5 minutes on 2 cores) is a smoke check on smaller settings
(each section says which); the full run takes much longer (the report of a
quick run estimates it from its own parts: 1.5-2.5 hours on 2 cores, most of it
10 minutes of training per side and the prover figures of both models on all
692 validation goals).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH)]

from figures import ratio_line  # noqa: E402

# Settings of each profile. "tiny" is the test's (seconds, not minutes); its figures mean nothing.
PROFILES = {
    "full": dict(stats_repeat=3, demo_files=3000, tok_slice=0, tok_heldout=True, tok_vocab=4096,
                 tp_slice=0, tp_steps=8, tp_threads=(1, 2), tp_kinds=("lines", "seed"), tp_contention=True,
                 tp_overrides=[], tp_peak_n=2048, lat_slice=0, lat_repeats=7, lat_n=8, lat_max_tokens=20, lat_prompt=200,
                 ttq_slice=0, ttq_minutes=10.0, ttq_overrides=[], ttq_base_overrides=[], ttq_eval_limit=None,
                 ttq_whole_batches=0, ttq_metrics_interval=5.0, import_repeat=3),
    "quick": dict(stats_repeat=1, demo_files=3000, tok_slice=0, tok_heldout=False, tok_vocab=4096,
                  tp_slice=0, tp_steps=3, tp_threads=(2,), tp_kinds=("seed",), tp_contention=False,
                  tp_overrides=[], tp_peak_n=2048, lat_slice=0, lat_repeats=3, lat_n=8, lat_max_tokens=20, lat_prompt=200,
                  ttq_slice=1500, ttq_minutes=0.6, ttq_overrides=["training.eval_interval=100000"],
                  ttq_base_overrides=[], ttq_eval_limit=5, ttq_whole_batches=4, ttq_metrics_interval=1.0,
                  import_repeat=1),
    "tiny": dict(stats_repeat=1, demo_files=100, tok_slice=150, tok_heldout=False, tok_vocab=400,
                 tp_slice=150, tp_steps=1, tp_threads=(1,), tp_kinds=("seed",), tp_contention=False,
                 tp_overrides=["model.d_model=32", "model.n_layers=1", "model.n_heads=2", "model.context_length=64",
                               "training.batch_size=4"], tp_peak_n=256,
                 lat_slice=150, lat_repeats=1, lat_n=2, lat_max_tokens=3, lat_prompt=40,
                 ttq_slice=150, ttq_minutes=0.1,
                 ttq_overrides=["training.max_steps=3", "model.d_model=32", "model.n_layers=1", "model.n_heads=2",
                                "model.context_length=64", "training.eval_interval=100000"],
                 ttq_base_overrides=["model.d_model=32", "model.n_layers=1", "model.n_heads=2",
                                     "model.context_length=64", "training.batch_size=4"],
                 ttq_eval_limit=2, ttq_whole_batches=1, ttq_metrics_interval=0.0, import_repeat=0),
}


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return sha + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"


def machine_line() -> str:
    from machine import describe

    return f"{describe('torch', 'onnxruntime')}, git {git_commit()}"


def make_slice(src: Path, dst: Path, n: int) -> Path:
    """The first `n` files (by name) of a corpus, copied: smaller runs on real text."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in sorted(os.listdir(src))[:n]:
        shutil.copyfile(src / name, dst / name)
    return dst


def loss_plot(series: dict, width: int = 90, height: int = 22) -> str:
    """Training loss against wall-clock seconds, one line per run, as plain text (plotext)."""
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    for (label, points), marker in zip(series.items(), "*+ox"):
        if points:
            plt.plot([p[0] for p in points], [p[2] for p in points], label=label, marker=marker)
    plt.xlabel("wall-clock seconds")
    text = plt.build()
    plt.clear_figure()
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def run_all(profile: str, shared: Path, work: Path, log=print) -> dict:
    """Every bench under `profile`; returns {"machine", "sections": {...}, "seconds": {...}, "ratios": [...]}."""
    p = PROFILES[profile]
    corpus = shared / "corpora" / "acornlib-2025-11" / "proofs"
    if not corpus.is_dir():
        raise SystemExit(f"corpus not found: {corpus} (pass --shared, the folder holding corpora/)")

    def sliced(n: int) -> Path:
        return make_slice(corpus, work / f"slice-{n}", n) if n else corpus

    out: dict = {"profile": profile, "machine": machine_line(), "load_start": os.getloadavg(), "sections": {},
                 "seconds": {}, "settings": p}
    os.environ.setdefault("TACTICS_SHARED", str(shared))

    def part(name, fn):
        log(f"== {name}")
        t = time.monotonic()
        out["sections"][name] = fn()
        out["seconds"][name] = time.monotonic() - t
        log(f"   {out['seconds'][name]:.0f} s")

    import corpus_stats
    import import_acornlib
    import time_to_quality
    import tokenizer_kinds
    import train_throughput
    import completion_latency

    corpora = sorted((shared / "corpora").glob("*/proofs")) if profile != "tiny" else [sliced(p["tok_slice"])]
    part("corpus_stats", lambda: corpus_stats.measure(corpora, p["stats_repeat"], p["demo_files"]))
    held = shared / "corpora" / "acornlib-2026-08" / "proofs"
    part("tokenizer_kinds", lambda: tokenizer_kinds.measure(
        sliced(p["tok_slice"]), held if p["tok_heldout"] and held.is_dir() else None, p["tok_vocab"], log=log))
    part("train_throughput", lambda: train_throughput.measure(
        sliced(p["tp_slice"]), "default", p["tp_steps"], p["tp_threads"], p["tp_kinds"], p["tp_contention"], True,
        p["tp_overrides"], log=log, peak_n=p["tp_peak_n"]))
    part("completion_latency", lambda: completion_latency.measure(
        sliced(p["lat_slice"]), p["lat_n"], p["lat_max_tokens"], p["lat_prompt"], p["lat_repeats"], 1, log=log))
    part("time_to_quality", lambda: time_to_quality.measure(
        sliced(p["ttq_slice"]), "cpu", p["ttq_minutes"], overrides=p["ttq_overrides"], eval_limit=p["ttq_eval_limit"],
        baseline=True, baseline_overrides=p["ttq_base_overrides"], whole_batches=p["ttq_whole_batches"],
        metrics_interval=p["ttq_metrics_interval"], log=log))
    ttq = out["sections"]["time_to_quality"]
    ttq["corpus_label"] = (f"the first {p['ttq_slice']:,} files of acornlib-2025-11" if p["ttq_slice"]
                           else "acornlib-2025-11")
    if p["import_repeat"]:
        os.environ["TACTICS_SHARED"] = str(shared)
        part("import_acornlib", lambda: import_acornlib.measure(p["import_repeat"]))
    out["load_end"] = os.getloadavg()
    out["ratios"] = [r for s in out["sections"].values() for r in s.get("ratios", [])]
    return out


def full_estimate_s(r: dict) -> float:
    """Rough seconds of the full run, scaled from a quick run's parts (repeats, steps, rows, budgets)."""
    s, sec, q, f = r["sections"], r["seconds"], PROFILES["quick"], PROFILES["full"]
    est = sec.get("corpus_stats", 0) * f["stats_repeat"] / q["stats_repeat"]
    est += sec.get("tokenizer_kinds", 0) * 1.5  # + encoding the 40 MB held-out corpus
    tp = s.get("train_throughput")
    if tp:
        per_row = sec["train_throughput"] / max(1, len(tp["rows"]) + len(tp["baseline"]))
        n_rows = len(f["tp_kinds"]) * (len(f["tp_threads"]) + 2) + len(f["tp_threads"])
        one_thread = 1.6  # 1-thread rows step about 1.6x slower than 2-thread rows
        est += per_row * n_rows * (f["tp_steps"] + 2) / (q["tp_steps"] + 2) * (1 + one_thread) / 2
    est += sec.get("completion_latency", 0) * f["lat_repeats"] / q["lat_repeats"]
    ttq = s.get("time_to_quality")
    if ttq:
        est += 2 * f["ttq_minutes"] * 60
        val_goals = 692  # validation goals of acornlib-2025-11
        for side in ("ours", "baseline"):
            pr = ttq.get(side, {}).get("prover") or {}
            if pr.get("goals"):
                est += pr["eval_s"] / pr["goals"] * val_goals
        est += 120  # whole-split and whole-file evaluations
    est += sec.get("import_acornlib", 0) * f["import_repeat"] / q["import_repeat"]
    return est


def num_or_dash(v: float) -> str:
    return "-" if v is None or v != v else f"{v:.2f}"


def fmt_pct(v) -> str:
    return "n/a" if v is None else f"{v:.2%}"


def render(r: dict, elapsed: float) -> str:
    """REPORT.md text: machine, each figure, each ratio with both sides, the loss curves."""
    s = r["sections"]
    q = r["profile"]
    cmd = "python bench/report.py" + (" --quick" if q == "quick" else "" if q == "full" else f" (profile {q})")
    L = ["# Benchmark report", "",
         f"Generated by `{cmd}` in {elapsed / 60:.1f} minutes, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "",
         f"**Machine:** {r['machine']}; load average {r['load_end'][0]:.1f} at the end.", "",
         "Other work shared this machine during the run (the benches ran under `nice -n 10`): absolute times are "
         "noisy and differ by 2x or more between machines and sittings. Every ratio below divides two figures "
         "measured in this run, with the same threads; none divides by a figure from elsewhere.", ""]
    if q == "quick":
        L += ["This is the **quick** profile, a smoke check: a few steps per throughput row (2 threads, `seed` only), "
              f"3 repeats per latency, and time to quality on the first {PROFILES['quick']['ttq_slice']:,} files of "
              f"the corpus for {PROFILES['quick']['ttq_minutes'] * 60:.0f} s per side with the prover figures on "
              f"{PROFILES['quick']['ttq_eval_limit']} validation goals: those figures only show the bench runs "
              "end to end, not the quality of the recipes. "
              f"The full run (`python bench/report.py`) is estimated at **{full_estimate_s(r) / 60:.0f} minutes** "
              "from this run's parts (10 minutes of training per side and the prover figures on all 692 validation "
              "goals are most of it).", ""]
    L += ["Time per part: " + ", ".join(f"{k} {v:.0f} s" for k, v in r["seconds"].items()), ""]

    L += ["## Ratios (both sides measured in this run)", ""]
    L += [f"- {ratio_line(x)}" for x in r["ratios"]]
    L.append("")

    cs = s.get("corpus_stats")
    if cs:
        L += ["## Corpus stats (`python bench/corpus_stats.py`)", "",
              f"Bare process (imports only): peak RSS {cs['base_rss_mb']:.1f} MB; best of {r['settings']['stats_repeat']}.", "",
              "| corpus | files | MB | stats s | MB/s | bare read s | peak RSS MB |", "|---|---|---|---|---|---|---|"]
        L += [f"| {x['corpus']} | {x['files']:,} | {x['bytes'] / 1e6:.1f} | {x['stats_s']:.2f} | {x['mb_per_s']:.1f} | "
              f"{x['read_s']:.2f} | {x['rss_mb']:.1f} |" for x in cs["rows"]]
        if cs.get("demo"):
            d = cs["demo"]
            L += ["", f"`tactics demo` ({d['files_asked']:,} files, {d['bytes'] / 1e6:.1f} MB): {d['seconds']:.2f} s "
                      f"(generate {d['generate']:.2f} s), plain write {d['raw_write']:.2f} s, peak RSS {d['maxrss_mb']:.1f} MB."]
        L.append("")
    tk = s.get("tokenizer_kinds")
    if tk:
        L += ["## Tokenizer kinds (`python bench/tokenizer_kinds.py`)", "",
              f"{tk['files']:,} files, {tk['chars']:,} chars; vocabulary asked {tk['vocab_asked']}; trained on every file.", "",
              f"| kind | train s | vocab reached | chars/token | held-out chars/token | fits {tk['context']} | tokens/line |",
              "|---|---|---|---|---|---|---|"]
        L += [f"| {k} | {v['train_s']:.1f} | {v['vocab']:,} | {v['chars_per_token']:.2f} | "
              f"{num_or_dash(v['heldout_chars_per_token'])} | {v['fits']:.1%} | {v['tokens_per_line']:.2f} |"
              for k, v in tk["kinds"].items()]
        L.append("")
    tp = s.get("train_throughput")
    if tp:
        L += ["## Training throughput (`python bench/train_throughput.py`)", "",
              f"Preset `{tp['preset']}`, {tp['steps']} measured steps per row after 2 warm-up steps; the original recipe "
              "(bench/original_recipe.py: one file per padded row, pad tokens trained on, AdamW, original defaults, "
              "attention dropout on) measured in the same run at the same threads, alternating with ours; load = "
              "1-minute load average when the row ended. MFU = 6 x params x useful tokens/s "
              "/ fp32 matmul peak measured in the same process.", "",
              "| recipe | tokenizer | threads | s/step | useful tokens/s | text bytes/s | MFU (peak GFLOP/s) | load |",
              "|---|---|---|---|---|---|---|---|"]
        for x in tp["baseline"] + tp["rows"]:
            busy = f" + busy neighbour ({x['omp']})" if x["busy"] else ""
            pad = f", {x['padding_fraction']:.0%} padding" if x.get("padding_fraction") is not None else ""
            L.append(f"| {'original' + pad if x['recipe'] == 'original' else 'ours'} | {x['kind']} | {x['threads']}{busy} | "
                     f"{x['s_per_step']:.2f} | {x['tokens_per_s']:,.0f} | {x['bytes_per_s']:,.0f} | "
                     f"{x['mfu']:.1%} ({x['peak_gflops']:.0f}) | {x.get('load', float('nan')):.1f} |")
        L.append("")
    cl = s.get("completion_latency")
    if cl:
        L += ["## Completion latency (`python bench/completion_latency.py`)", "",
              f"`default` shape, random weights, {cl['params']:,} parameters, {cl['threads']} thread, prompt "
              f"{cl['prompt_tokens']} tokens, median of {cl['repeats']}; export parity max abs diff {cl['max_abs_diff']:.1e}.", "",
              f"| {cl['n']} candidates, end to end | tokens per line | ms |", "|---|---|---|"]
        L += [f"| {e['backend']} | {e['max_tokens']} | {e['ms']:.1f} |" for e in cl["end_to_end"]]
        L += ["", f"Per token at {cl['context_tokens']} tokens of context: full recompute {cl['recompute_ms']:.2f} ms, "
                  f"KV-cache step PyTorch {cl['kv_torch_ms']:.2f} ms, ONNX Runtime {cl['kv_onnx_ms']:.2f} ms, "
                  f"ONNX Runtime batch {cl['n']} {cl['kv_onnx_batch_ms']:.2f} ms; prompt token by token "
                  f"{cl['prompt_token_by_token_ms']:.1f} ms vs one prefill {cl['prompt_prefill_ms']:.1f} ms.", ""]
    tq = s.get("time_to_quality")
    if tq:
        L += ["## Time to quality (`python bench/time_to_quality.py --baseline`)", "",
              f"Preset `{tq['preset']}` {' '.join(tq['overrides'])} against the original recipe, each for at most "
              f"{tq['minutes'] * 60:.0f} s of wall clock (tokenizing included) in this sitting, same tokenizer "
              f"({tq['tokenizer']}), corpus {tq.get('corpus_label', tq['corpus'])}.", "",
              "| figure | ours | original |", "|---|---|---|"]
        o, b = tq["ours"], tq.get("baseline") or {}
        po, pb = o.get("prover") or {}, b.get("prover") or {}

        def row(name, a, c, f):
            L.append(f"| {name} | {f(a) if a is not None else 'n/a'} | {f(c) if c is not None else 'n/a'} |")

        row("wall clock s", o.get("trained_s"), b.get("trained_s"), lambda v: f"{v:.0f}")
        row("optimizer steps", o.get("steps"), b.get("steps"), lambda v: f"{v:,}")
        row("parameters", o.get("params"), b.get("params"), lambda v: f"{v / 1e6:.2f}M")
        row("whole-file bits/byte", o.get("whole_file_bpb"), b.get("whole_file_bpb"), lambda v: f"{v:.4f}")
        for key, f in (("proof_bpb", lambda v: f"{v:.4f}"), ("prover_exact_match_at_k", fmt_pct),
                       ("first_line_marker_rate", fmt_pct), ("overflow_rate", fmt_pct),
                       ("attempts_per_5s", lambda v: f"{v:.0f}")):
            row(key, po.get(key), pb.get(key), f)
        row("validation goals scored", po.get("goals"), pb.get("goals"), lambda v: f"{v:,}")
        L += ["", "Training loss (nats/token over non-pad targets; the original also trains on the pads) against wall-clock seconds:", "", "```",
              loss_plot({"ours": o.get("curve"), "original": b.get("curve")}), "```", ""]
    ia = s.get("import_acornlib")
    if ia:
        L += ["## `tactics import acornlib` (`python bench/import_acornlib.py`)", "",
              "| fixture | files | s (best) | peak RSS MB (bare) | identical files | manifest rows |", "|---|---|---|---|---|---|"]
        for x in ia["rows"]:
            if "skipped" in x:
                L.append(f"| {x['fixture']} | skipped: {x['skipped']} | | | | |")
                continue
            L.append(f"| {x['fixture']} | {x['files']:,} | {x['seconds']:.2f} | {x['rss_mb']:.1f} ({x['bare_rss_mb']:.1f}) | "
                     f"{x['identical']:,}/{x['expected']:,} ({x['identical'] / x['expected']:.2%}) | "
                     f"{x['manifest_equal']:,}/{x['manifest_rows']:,} |")
        L.append("")
    return "\n".join(L)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the ~5-minute smoke profile")
    ap.add_argument("--profile", choices=sorted(PROFILES), help=argparse.SUPPRESS)
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("TACTICS_SHARED", REPO.parent / "shared")))
    ap.add_argument("--out", type=Path, default=BENCH / "REPORT.md")
    args = ap.parse_args()
    profile = args.profile or ("quick" if args.quick else "full")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        r = run_all(profile, args.shared, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = render(r, time.monotonic() - start)
    args.out.write_text(text + "\n")
    print(f"\nwrote {args.out} ({time.monotonic() - start:.0f} s)")
    for x in r["ratios"]:
        print(f"  {ratio_line(x)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
