"""The scorer judged where it counts: what today's acorn proves with it, against acorn's own.

    python bench/scorer.py [--acorn BIN] [--acornlib DIR] [--acorn-python DIR] [--work DIR]
                           [--traces DIR] [--train-buckets 0-3] [--val-buckets 90]
                           [--judge-buckets 91-92] [--epochs 10] [--baselines default,depth-first] [--quick] [--keep]
                           [--judge-trainers console,acorn] [--json FILE]

Needs acorn 91f29ff1 (release 0.2.6) built with ONNX Runtime 1.20 and its acornlib 7df4882d
(docs/scorer.md); `--acorn`/`--acornlib` or TACTICS_ACORN_EVAL / TACTICS_ACORNLIB_EVAL
(TACTICS_ACORN_ORT_LIB for ONNX Runtime's folder). `--acorn-python` is acorn's own `python/src`
folder at 91f29ff1 (default: `python/src` beside the acorn binary's checkout), run beside the
project with this interpreter, never copied into it.

* **Traces**: `acorn eval --trace-out` with acorn's embedded default policy on the training
  buckets and the validation buckets (`tactics traces collect`, one acorn process per bucket,
  kept in WORK/traces and reused: `--keep`), or the traces of `--traces DIR`.
* **Two trainers, same traces, same epochs**: the console's `scorer` preset through
  `tactics_core.training.loop` (selected by `used_rank` on the validation buckets), and acorn's
  `acorn-train-scorer` (hidden 128, 3 layers, as its embedded default; it holds out the same
  buckets 90-99 by itself). Both exported; wall clock of each printed.
* **Offline figures** of both exports, scored the same way (ONNX Runtime, `scorer.metrics`) on
  the validation rows: BCE, AUC, where the used steps rank in their search, top-10% hits.
* **Judged** by `acorn eval` on `--judge-buckets` (held out of training AND of model selection),
  in one sitting, one acorn process per (policy, bucket), policies interleaved per bucket so a
  change of machine load hits all alike: the console's scorer, acorn's trainer's scorer, the
  embedded default `model-20260705-consistent-h128-l3`, and `depth-first` (`--baselines`).
  Searches stop at a 1 s wall-clock timeout, so run it on a quiet machine. Each (policy, bucket)
  is about 10 minutes on 2 cores: `--judge-trainers console` leaves acorn's trainer out of the
  sitting when the hour is short (its offline figures are still printed).

Prints the machine line, every figure, the per-bucket spread, ratios and a chart of success by
policy. `--quick`: one training bucket, one judged bucket, 2 epochs (a first look).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import machine  # noqa: E402
from figures import print_ratios, ratio  # noqa: E402

DEFAULT_POLICY = "model-20260705-consistent-h128-l3"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--acorn")
    p.add_argument("--acornlib")
    p.add_argument("--ort-lib")
    p.add_argument("--acorn-python", type=Path, default=None, help="acorn's python/src folder (acorn_training)")
    p.add_argument("--work", type=Path, default=ROOT / "bench-work" / "scorer")
    p.add_argument("--traces", type=Path, default=None, help="use these traces instead of collecting")
    p.add_argument("--train-buckets", default="0-3")
    p.add_argument("--val-buckets", default="90")
    p.add_argument("--judge-buckets", default="91-92")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--preset", default="scorer")
    p.add_argument("--set", action="append", default=[], help="overrides for the console's preset")
    p.add_argument("--baselines", default="default,depth-first",
                   help="acorn's own policies judged beside the two trainers, comma-separated (default = the embedded scorer)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--keep", action="store_true", help="reuse WORK's traces and trained models")
    p.add_argument("--skip-judge", action="store_true", help="stop after the offline figures")
    p.add_argument("--judge-trainers", default="console,acorn",
                   help="whose scorers acorn eval judges: console, acorn (acorn's trainer), or both")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    args.judge_trainers = [t.strip() for t in args.judge_trainers.split(",") if t.strip()]
    if not args.judge_trainers or set(args.judge_trainers) - {"console", "acorn"}:
        p.error("--judge-trainers: console, acorn or console,acorn")
    if args.quick:
        args.train_buckets, args.judge_buckets, args.epochs = args.train_buckets.split(",")[0].split("-")[0], "91", 2
    return args


def collect(setup, buckets: list[int], out: Path) -> None:
    from tactics_core.acorn.eval_judge import collect_traces
    from tactics_core.common.progress import ConsoleProgress

    progress = ConsoleProgress("traces", stream=sys.stderr)
    try:
        done = collect_traces(setup, buckets, out, progress=progress)
    finally:
        progress.close()
    for b in done:
        print(f"  traces bucket {b.bucket}: {b}" if not hasattr(b, "summary") else f"  traces bucket {b.bucket}: {b.summary}")


def train_console(traces: Path, work: Path, args) -> tuple[Path, float, dict]:
    from tactics_core.training.presets import apply_overrides, load_preset
    from tactics_core.training.loop import train

    preset = apply_overrides(load_preset(args.preset), [
        f'data.train_buckets="{args.train_buckets}"', f'data.val_buckets="{args.val_buckets}"',
        f"training.epochs={args.epochs}", "training.max_steps=0", *args.set,
    ])
    ck = work / "console" / "checkpoints" / "runs" / "scorer"
    best = ck / "best_model.pt"
    if args.keep and best.is_file():
        return best, float("nan"), {}
    start = time.perf_counter()
    result = train(preset, traces, ck, handle_signals=False)
    seconds = time.perf_counter() - start
    print(f"  console scorer: {result.reason} at step {result.step}/{result.total_steps}, best used_rank "
          f"{result.best_score:.4f}, {seconds:.0f} s")
    return best, seconds, {"reason": result.reason, "step": result.step, "best_score": result.best_score}


def export_console(best: Path, work: Path, keep: bool) -> Path:
    from tactics_core.training.kinds import export_checkpoint

    out = work / "console" / "export" / "tactics-scorer"
    if keep and out.is_dir():
        return out / "tactics-scorer.onnx"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    report = export_checkpoint(best, out)
    print(f"  console export: {out} ({report.size_bytes / 1e3:.0f} KB, max|ORT - torch| {report.max_abs_diff:.1e})")
    return out / "tactics-scorer.onnx"


def train_acorn(traces: Path, work: Path, args, acorn_python: Path) -> tuple[Path, float, str]:
    out = work / "acorn-trainer" / "acorn-trainer-h128-l3.onnx"
    if args.keep and out.is_file():
        return out, float("nan"), ""
    out.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(str(p) for p in traces.glob("*.jsonl.zst") if not p.name.startswith("."))
    cmd = [sys.executable, "-m", "acorn_training.cli", *files, "--out", str(out), "--hidden-size", "128",
           "--hidden-layers", "3", "--epochs", str(args.epochs), "--device", "cpu", "--seed", "42"]
    env = dict(os.environ, PYTHONPATH=str(acorn_python))
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    (out.parent / "train.log").write_text(log)
    if proc.returncode != 0:
        raise SystemExit(f"acorn-train-scorer failed ({proc.returncode}):\n{log[-2000:]}")
    print(f"  acorn's trainer: {seconds:.0f} s; {[ln for ln in log.splitlines() if 'exported best' in ln]}")
    return out, seconds, log


def one_file(onnx_path: Path) -> Path:
    """acorn's trainer under torch >= 2.9 writes its weights to X.onnx.data beside X.onnx, which acorn
    0.2.6 resolves against its working folder (it refuses the file when run from the acornlib, as the
    judge runs it) and which `include_bytes!` cannot embed. The same graph and weights, saved as one
    file, with its features.json copied: what the judge runs."""
    import shutil

    import onnx

    if not onnx_path.with_name(onnx_path.name + ".data").exists():
        return onnx_path
    out = onnx_path.with_name(onnx_path.stem + "-onefile.onnx")
    if not out.exists():
        model = onnx.load(str(onnx_path))  # reads X.onnx.data
        onnx.save(model, str(out), save_as_external_data=False)
        shutil.copyfile(onnx_path.with_name(onnx_path.stem + ".features.json"), out.with_name(out.stem + ".features.json"))
    print(f"  acorn's trainer wrote {onnx_path.name} + {onnx_path.name}.data (acorn refuses it outside its folder); "
          f"judged as one file {out.name}, same weights")
    return out


def offline(onnx: Path, traces: Path, val_buckets: str) -> dict:
    """Both exports scored alike on the validation rows (ONNX Runtime, scorer.metrics)."""
    import json as _json

    import numpy as np
    import onnxruntime as ort

    from tactics_core.scorer.buckets import parse_buckets
    from tactics_core.scorer.data import RowSource, trace_store_root
    from tactics_core.scorer.metrics import figures
    from tactics_core.scorer.trace_store import load_traces

    names = _json.loads(onnx.with_name(onnx.name[:-5] + ".features.json").read_text())["input_features"]
    cols = load_traces([traces], trace_store_root(traces))
    index = {n: i for i, n in enumerate(cols[0].feature_names)}
    source = RowSource(cols, np.array([index[n] for n in names]))
    val = np.flatnonzero(np.isin(source.search_bucket, parse_buckets(val_buckets)))
    rows = source.rows_of(val)
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    probs, used, groups = [], [], []
    for start in range(0, len(rows), 65536):
        b = source.gather(rows[start : start + 65536])
        probs.append(session.run(["output"], {"input": b.x})[0][:, 0])
        used.append(b.y)
        groups.append(b.group)
    return figures(np.concatenate(probs), np.concatenate(used), np.concatenate(groups)).to_dict()


def chart(report: dict) -> None:
    try:
        import plotext as plt
    except ImportError:
        return
    labels = [p["label"] for p in report["policies"]]
    rates = [100 * (p["success_rate"] or 0) for p in report["policies"]]
    plt.clear_figure()
    plt.bar(labels, rates, orientation="horizontal", width=0.3)
    plt.title("acorn eval success rate (%) on the judged buckets")
    plt.plotsize(90, 3 + 2 * len(labels))
    plt.show()


def main(argv=None) -> int:
    args = parse_args(argv)
    from tactics_core.acorn.eval_judge import judge, parse_buckets, report_text, resolve_eval_setup

    print(f"machine: {machine.describe('torch', 'onnxruntime')}")
    setup = resolve_eval_setup(args.acorn, args.acornlib, args.ort_lib)
    acorn_python = args.acorn_python or (setup.binary.resolve().parents[2] / "python" / "src")
    if not (acorn_python / "acorn_training").is_dir():
        raise SystemExit(f"{acorn_python}: no acorn_training package (pass --acorn-python acorn/python/src at 91f29ff1)")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    traces = args.traces or work / "traces"
    out: dict = {"machine": machine.describe("torch", "onnxruntime"), "train_buckets": args.train_buckets,
                 "val_buckets": args.val_buckets, "judge_buckets": args.judge_buckets, "epochs": args.epochs}
    if args.traces is None:
        print(f"traces: acorn eval --trace-out, buckets {args.train_buckets} + {args.val_buckets}, in {traces}")
        collect(setup, parse_buckets(args.train_buckets) + parse_buckets(args.val_buckets), traces)
    print("training, same traces, same epochs:")
    best, console_s, console_run = train_console(traces, work, args)
    ours = export_console(best, work, args.keep)
    theirs, acorn_s, _ = train_acorn(traces, work, args, acorn_python)
    out["train_seconds"] = {"console": console_s, "acorn-trainer": acorn_s}
    out["console_run"] = console_run
    print(f"offline figures on the validation buckets {args.val_buckets} (ONNX Runtime, the same rows):")
    out["offline"] = {}
    for label, path in (("console", ours), ("acorn-trainer", theirs)):
        f = offline(path, traces, args.val_buckets)
        out["offline"][label] = f
        print(f"  {label:14s} val BCE {f['val_loss']:.4f}  AUC {f['auc']:.4f}  used steps rank {f['used_rank']:.4f}  "
              f"top-10% {f['top10_hit']:.1%}  ({f['rows']:,} rows, {f['searches_ranked']} solved searches)")
    theirs = one_file(theirs)
    if args.skip_judge:
        _write(args, out)
        return 0
    print(f"judged by acorn eval on buckets {args.judge_buckets} (never trained on, never used to select):")
    from tactics_core.common.progress import ConsoleProgress

    # One judge per bucket, each printed and saved as it ends (a long sitting keeps what it measured).
    per_bucket: dict[int, dict] = {}
    baselines = tuple(DEFAULT_POLICY if b.strip() == "default" else b.strip() for b in args.baselines.split(",") if b.strip())
    for bucket in parse_buckets(args.judge_buckets):
        progress = ConsoleProgress(f"judge b{bucket}", stream=sys.stderr)
        try:
            models = [m for name, m in (("console", ours), ("acorn", theirs)) if name in args.judge_trainers]
            report = judge(setup, [bucket], models, baselines=baselines, progress=progress)
        finally:
            progress.close()
        print(report_text(report), flush=True)
        per_bucket[bucket] = report.to_dict()
        out["judge_per_bucket"] = per_bucket
        _write(args, out)
    totals: dict[str, dict] = {}
    for bucket, d in per_bucket.items():
        for p in d["policies"]:
            t = totals.setdefault(p["label"], {"label": p["label"], "searches": 0, "succeeded": 0, "rates": {}})
            t["searches"] += p["searches"]
            t["succeeded"] += p["succeeded"]
            t["rates"][bucket] = p["success_rate"]
    print(f"\nover buckets {args.judge_buckets}, same sitting:")
    labels = list(totals)
    n_models = len(args.judge_trainers)  # the trainers' scorers come first, then acorn's own policies
    ref = totals.get(labels[n_models]) if len(labels) > n_models else None
    for label, t in totals.items():
        t["success_rate"] = t["succeeded"] / t["searches"] if t["searches"] else None
        diffs = [t["rates"][b] - ref["rates"][b] for b in t["rates"] if ref and b in ref["rates"]]
        spread = f"  vs {labels[n_models]} per bucket {min(diffs):+.1%} .. {max(diffs):+.1%}" if ref and t is not ref and diffs else ""
        print(f"  {label:36s} {t['succeeded']:5d}/{t['searches']:<5d} = {t['success_rate']:.2%}"
              f"  per bucket {', '.join(f'{b}: {r:.1%}' for b, r in t['rates'].items())}{spread}")
    out["judge"] = {"policies": list(totals.values())}
    chart(out["judge"])
    ratios = []
    for a in labels[:n_models]:
        for b in labels[n_models:]:
            ra, rb = totals[a]["success_rate"], totals[b]["success_rate"]
            if ra and rb:
                ratios.append(ratio(f"success {a} vs {b}", a, 100 * ra, b, 100 * rb, "%", 2))
    print_ratios(ratios, "in this sitting")
    _write(args, out)
    return 0


def _write(args, out: dict) -> None:
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
