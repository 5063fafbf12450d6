"""The headline, judged by the real Acorn prover: goals proved on modules no model ever saw.

    python bench/real_prover.py [--acorn BIN] [--acornlib DIR] [--minutes 10] [--quick]
                                [--jobs 2] [--eval-limit N] [--keep DIR] [--json FILE]

Needs acorn f47631b0 built with ONNX Runtime 1.20 and acornlib c30e377
(docs/prover.md); `--acorn`/`--acornlib` or TACTICS_ACORN / TACTICS_ACORNLIB
(TACTICS_ACORN_ORT_LIB for ONNX Runtime's folder).

* **Data**: `tactics import acornlib` of the checkout with every module of the
  subject folder `src/list/` held out (HELD_OUT_GLOB): it is not in the
  tokenizer's text nor in the training data. The training corpus is the rest of
  the library.
* **Training**, in this sitting, each for the same `--minutes` of wall clock on
  this machine: (a) the shipped `cpu` preset with the real trainer, (b) the
  original recipe (bench/original_recipe.py), same tokenizer (`lines`, 4096).
* **Judged**: each best checkpoint is exported and acorn's generative prover
  runs on every goal of the proved modules (PROVED_MODULES, or QUICK_MODULES
  with `--quick`), one acorn process per goal line, `--jobs` at once; then
  acorn's saturation prover alone on the same goals, the reference (every
  library goal has a certificate the saturation prover once found, so it is
  a ceiling, not a rival).
* **Proxies** on the same held-out goals: `tactics eval --all`'s proof
  bits/byte and exact match@8, plus each model's figures on its own
  validation theorems (new theorems of seen subjects) for contrast.

Prints per model: goals proved / attempted, per-module counts, acorn crashes,
median time to proof, and the replica's attempts per second (acorn prints no
attempt count; ours is measured with ONNX Runtime on 1 thread, as acorn runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

HELD_OUT_GLOB = "src/list/*"  # every module of the subject folder list/: never trained on
PROVED_MODULES = ["list.list_order", "list.list_functional"]  # 112 goals at acornlib c30e377
QUICK_MODULES = ["list.list_order"]  # 35 goals


def log(message: str) -> None:
    print(message, flush=True)


def prepare_data(acornlib: Path, work: Path, proved: list[str], style: str = "published") -> tuple[Path, Path]:
    """The training corpus (the library less list/) and the held-out corpus (the proved modules)."""
    from tactics_core.acorn.library import import_acornlib

    train_dir, held_dir = work / "train" / "proofs", work / "heldout" / "proofs"
    if not train_dir.is_dir():
        r = import_acornlib(acornlib, train_dir, exclude=[HELD_OUT_GLOB], style=style)
        log(f"training corpus: {r.files:,} files from {r.modules} modules ({r.bytes / 1e6:.1f} MB), "
            f"{HELD_OUT_GLOB} left out, {r.seconds:.0f} s")
    if not held_dir.is_dir():
        sources = [f"src/{m.replace('.', '/')}.ac" for m in proved]
        r = import_acornlib(acornlib, held_dir, include=sources, style=style)
        log(f"held-out corpus: {r.files:,} files from {', '.join(proved)}")
    return train_dir, held_dir


def proxies(model: Path, held_dir: Path, eval_limit: int | None) -> dict:
    """`tactics eval --all` on the held-out modules: the replica's figures on the goals acorn is given."""
    from tactics_core.gpt.evaluate import evaluate

    t0 = time.monotonic()
    e = evaluate(model, held_dir, k=8, limit=eval_limit, all_files=True, layout_exact_match=False)
    out = {k: getattr(e, k) for k in ("goals", "prover_lines", "prover_matched", "proof_bpb", "prover_exact_match_at_k",
                                      "first_line_marker_rate", "overflow_rate", "attempts_per_5s", "attempt_ms")}
    out["crash_line_rate"] = getattr(e, "crash_line_rate", None)
    out["eval_s"] = time.monotonic() - t0
    return out


def finished(work: Path) -> bool:
    """A training of an earlier run of this bench (--keep) that ended: its best model is reused."""
    if not (work / "best_model.pt").is_file():
        return False
    metrics = work / "metrics.jsonl"  # ours: the trainer's events; the original recipe writes none
    return not metrics.is_file() or '"event": "end"' in metrics.read_text(encoding="utf-8")


def reuse(work: Path, train_dir: Path, eval_limit: int | None) -> dict:
    """The figures of a kept training: its steps, and the prover's figures on its validation theorems."""
    from time_to_quality import prover_figures
    from tactics_core.runs.checkpoints import read_meta

    meta = read_meta(work / "best_model.pt")
    steps = meta.get("step")
    metrics = work / "metrics.jsonl"
    if metrics.is_file():
        ends = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if '"event": "end"' in line]
        steps = ends[-1].get("step", steps) if ends else steps
    log(f"  reusing the training in {work}: {steps} steps, best model at step {meta.get('step')}")
    return {"reused": str(work), "steps": steps, "best_step": meta.get("step"),
            "prover": prover_figures(work / "best_model.pt", train_dir, eval_limit, log)}


def judge(setup, export: Path | None, modules: list[str], jobs: int, label: str) -> dict:
    from tactics_core.acorn.generative_judge import prove_modules

    t0 = time.monotonic()
    results = prove_modules(setup, modules, export, jobs=jobs)
    r = results[0]
    log(f"  {label}: {r.proved}/{r.attempted} goals proved ({r.empty_proofs} with no line: acorn's checker "
        f"alone), {r.crashed} acorn crashes, median time to proof {r.median_proof_seconds()} s, "
        f"{time.monotonic() - t0:.0f} s")
    for m in r.modules:
        log(f"    {m.module:24s} {m.proved:3d}/{m.attempted:<3d} (no line {m.empty_proofs}, crashed {m.crashed})")
    return r.to_dict()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--acorn", help="acorn f47631b0 binary (default: $TACTICS_ACORN)")
    ap.add_argument("--acornlib", help="acornlib c30e377 checkout (default: $TACTICS_ACORNLIB)")
    ap.add_argument("--ort-lib", help="folder with ONNX Runtime 1.20 (default: $TACTICS_ACORN_ORT_LIB)")
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget of each recipe (default 10)")
    ap.add_argument("--quick", action="store_true", help=f"prove only {', '.join(QUICK_MODULES)} (a first look)")
    ap.add_argument("--jobs", type=int, default=2, help="acorn processes at once (default 2: one per core)")
    ap.add_argument("--eval-limit", type=int, default=100, metavar="N",
                    help="validation goals for each model's in-distribution figures (default 100)")
    ap.add_argument("--keep", type=Path, help="work folder to keep (and reuse: corpora and tokenizer are not redone)")
    ap.add_argument("--json", type=Path, help="also write every figure here")
    ap.add_argument("--style", choices=("published", "acorn"), default="published",
                    help="how the imports write the files (docs/corpus.md); `acorn` is what acorn's prover feeds")
    ap.add_argument("--skip-original", action="store_true", help="train and judge the cpu preset only")
    ap.add_argument("--no-crash-guard", action="store_true",
                    help="export without the crash guard (acorn f47631b0 then crashes on any `//` line a model writes)")
    args = ap.parse_args()

    from machine import describe  # bench/machine.py
    from tactics_core.acorn.generative_judge import resolve_setup
    from tactics_core.common.errors import TacticsError

    if not (args.acorn or os.environ.get("TACTICS_ACORN")) or not (args.acornlib or os.environ.get("TACTICS_ACORNLIB")):
        print("bench/real_prover.py needs the real prover: pass --acorn BIN and --acornlib DIR (or set TACTICS_ACORN "
              "and TACTICS_ACORNLIB); docs/prover.md says how to build acorn f47631b0", file=sys.stderr)
        sys.exit(2)
    try:
        setup = resolve_setup(args.acorn, args.acornlib, args.ort_lib)
    except TacticsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)

    from original_recipe import original_preset  # noqa: F401  (fails early if the bench folder is broken)
    from time_to_quality import run_baseline, run_ours
    from tactics_core.gpt.export import export_model
    from tactics_core.gpt.tokenizer import train_tokenizer
    from tactics_core.training.presets import load_preset

    proved = QUICK_MODULES if args.quick else PROVED_MODULES
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-real-prover-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log(f"machine: {describe('torch', 'onnxruntime')}")
    log(f"acorn: {setup.binary}; acornlib: {setup.acornlib}; held out: {HELD_OUT_GLOB}; proved: {', '.join(proved)}; "
        f"exports {'without' if args.no_crash_guard else 'with'} the crash guard")
    out: dict = {"held_out": HELD_OUT_GLOB, "proved_modules": proved, "minutes": args.minutes, "jobs": args.jobs,
                 "style": args.style,
                 "crash_guard": not args.no_crash_guard}
    try:
        train_dir, held_dir = prepare_data(setup.acornlib, work, proved, args.style)
        preset = load_preset("cpu")
        ours_work, base_work = work / "ours", work / "original"
        for w in (ours_work, base_work):
            w.mkdir(exist_ok=True)
        if not (ours_work / "tokenizer.json").is_file():
            train_tokenizer(train_dir, ours_work, vocab_size=4096, kind="lines",
                            holdout_fraction=preset.training.val_fraction)
            log("tokenizer: lines, vocab 4096, on the training corpus's training split")
        shutil.copy(ours_work / "tokenizer.json", base_work / "tokenizer.json")

        log(f"\n(a) the shipped cpu preset, {args.minutes:g} minutes")
        out["ours"] = (reuse(ours_work, train_dir, args.eval_limit) if finished(ours_work) else
                       run_ours(train_dir, ours_work, preset, args.minutes, args.eval_limit, 0, 5.0, log))
        recipes = ["ours"] if args.skip_original else ["ours", "original"]
        if not args.skip_original:
            log(f"\n(b) the original recipe, {args.minutes:g} minutes")
            out["original"] = (reuse(base_work, train_dir, args.eval_limit) if finished(base_work) else
                               run_baseline(train_dir, base_work, args.minutes, args.eval_limit, 0, [], log))
        for name in recipes:
            out[name].pop("curve", None)

        checkpoints = {"ours": ours_work / "best_model.pt", "original": base_work / "best_model.pt"}
        checkpoints = {name: checkpoints[name] for name in recipes}
        if not checkpoints["ours"].is_file():  # no evaluation ran (a short budget): the final checkpoint
            checkpoints["ours"] = max(ours_work.glob("checkpoint_step_*.pt"), key=lambda p: p.stat().st_mtime)
        exports = {}
        for name, ckpt in checkpoints.items():
            target = work / "export" / name
            if target.exists():
                shutil.rmtree(target)
            exports[name] = Path(export_model(ckpt, target, crash_guard=not args.no_crash_guard).path)
            log(f"exported {name}: {ckpt} -> {exports[name]}")

        log(f"\nproxies on the held-out goals ({held_dir}):")
        for name, folder in exports.items():
            p = proxies(folder, held_dir, None)
            out[name]["heldout_proxies"] = p
            log(f"  {name:8s} proof bits/byte {p['proof_bpb']:.4f}  exact match@8 {p['prover_exact_match_at_k']:.2%} "
                f"({p['prover_matched']}/{p['prover_lines']})  first line a marker {p['first_line_marker_rate']:.1%}  "
                f"attempts/s {p['attempts_per_5s'] / 5:.0f} (replica, ONNX Runtime, 1 thread)  "
                f"lines acorn crashes on {p['crash_line_rate']:.2%}")

        log(f"\nthe real prover (acorn {setup.binary.name}) on {', '.join(proved)}, {args.jobs} processes at once:")
        for name, folder in exports.items():
            out[name]["acorn"] = judge(setup, folder, proved, args.jobs, f"{name} model")
        out["saturation"] = judge(setup, None, proved, args.jobs, "saturation prover alone (the reference)")

        log(f"\nheadline: goals of held-out modules proved by acorn's generative prover in its 5 s, after "
            f"{args.minutes:g} minutes of training on this machine")
        labels = {"ours": "cpu preset", "original": "original recipe"}
        for label, r in ((labels[name], out[name]["acorn"]) for name in recipes):
            log(f"  {label:18s} {r['proved']}/{r['attempted']}  ({r['proved'] - r['empty_proofs']} with lines the model "
                f"wrote, {r['empty_proofs']} closed by acorn's checker before any line; {r['crashed']} acorn crashes)")
        s = out["saturation"]
        log(f"  saturation alone   {s['proved']}/{s['attempted']}  (reference)")
        log(f"bench time {time.monotonic() - started:.0f} s")
        out["seconds"] = time.monotonic() - started
        if args.json:
            args.json.write_text(json.dumps(out, indent=1, default=str) + "\n", encoding="utf-8")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
