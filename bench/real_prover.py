"""The headline, judged by the real Acorn prover on two splits: a held-out subject, and new
theorems of seen subjects.

    python bench/real_prover.py [--acorn BIN] [--acornlib DIR] [--minutes 10] [--quick]
                                [--jobs 2] [--eval-limit N] [--seen-goals 120] [--seed 0]
                                [--keep DIR] [--json FILE]

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
* **Judged on two splits**, each best checkpoint exported, one acorn process
  per goal line, `--jobs` at once, then acorn's saturation prover alone on the
  same goals, the reference (every library goal has a certificate the
  saturation prover once found, so it is a ceiling, not a rival):
  - **held-out subject**: every goal of the proved modules (PROVED_MODULES, or
    QUICK_MODULES with `--quick`) of `src/list/`, never trained on;
  - **new theorems of seen subjects**: `--seen-goals` goal lines (default
    SEEN_GOALS, QUICK_SEEN_GOALS with `--quick`; 0 skips it) of the model's
    own validation theorems in modules it trained on, a sample seeded by
    `--seed` and spread over the modules (tactics_core/acorn/goal_sample.py);
    never the goal of a training file.
* **Proxies** on the same held-out goals: `tactics eval --all`'s proof
  bits/byte and exact match@8, plus each model's figures on its own
  validation theorems (new theorems of seen subjects) for contrast.

Prints per model and split: goals proved / attempted, proved by the model's own
lines, closed with no line (acorn's checker alone), acorn crashes, median time
to proof, and the goals proved by the model but not by the saturation prover
beside saturation's own count; per-module counts; and the replica's attempts
per second (acorn prints no attempt count; ours is measured with ONNX Runtime
on 1 thread, as acorn runs).
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
SEEN_GOALS = 120  # goal lines of new theorems of seen subjects (goal_sample.SEEN_GOALS)
QUICK_SEEN_GOALS = 40
SPLITS = {"heldout": "held-out subject (src/list/)", "seen": "new theorems of seen subjects"}


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


def judge(setup, export: Path | None, modules: list[str], jobs: int, label: str, choose=None, per_module: bool = True):
    """One prover's run on the goals of `modules` (those `choose` keeps): its ProverResult, logged."""
    from tactics_core.acorn.generative_judge import prove_modules

    t0 = time.monotonic()
    results = prove_modules(setup, modules, export, jobs=jobs, choose=choose)
    r = results[0]
    log(f"  {label}: {r.proved}/{r.attempted} goals proved ({r.empty_proofs} with no line: acorn's checker "
        f"alone), {r.crashed} acorn crashes, median time to proof {r.median_proof_seconds()} s, "
        f"{time.monotonic() - t0:.0f} s")
    if per_module:
        for m in r.modules:
            log(f"    {m.module:24s} {m.proved:3d}/{m.attempted:<3d} (no line {m.empty_proofs}, crashed {m.crashed})")
    return r


def split_table(results: dict, labels: dict) -> dict:
    """Per split and recipe, the figures from the per-goal results (`generative_judge.split_figures`):
    `results` is {split: {"saturation": ProverResult, recipe: ProverResult, ...}}."""
    from tactics_core.acorn.generative_judge import split_figures

    return {split: {name: split_figures(r, runs.get("saturation")) for name, r in runs.items()
                    if name != "saturation" and name in labels}
            for split, runs in results.items()}


def print_splits(table: dict, labels: dict, describe: dict) -> None:
    """The headline lines: per split, one line per recipe and saturation's own count."""
    from tactics_core.acorn.generative_judge import figures_line

    for split, figures in table.items():
        log(f"  {SPLITS[split]}: {describe.get(split, '')}")
        for name, f in figures.items():
            log(f"    {labels[name]:16s} {figures_line(f)}")


def seen_sample(train_dir: Path, exports: dict, size: int, seed: int):
    """The seen-subjects sample of the training corpus, split as the models were (all recipes alike)."""
    from tactics_core.acorn.goal_sample import model_split, seen_subject_goals
    from tactics_core.common.errors import TacticsError

    splits = {name: model_split(folder) for name, folder in exports.items()}
    if len(set(splits.values())) > 1:
        raise SystemExit(f"the recipes were split differently ({splits}); the seen-subjects sample needs one split")
    val_fraction, split = next(iter(splits.values()))
    try:
        return seen_subject_goals(train_dir, size, seed=seed, val_fraction=val_fraction, split=split)
    except TacticsError as exc:
        raise SystemExit(f"error: {exc} (--seen-goals 0 judges the held-out split alone)") from None


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
    ap.add_argument("--seen-goals", type=int, default=None, metavar="N",
                    help=f"goal lines of new theorems of seen subjects to judge (default {SEEN_GOALS}, "
                         f"{QUICK_SEEN_GOALS} with --quick; 0: the held-out split only)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the seen-subjects sample (default 0)")
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
    seen_goals = (QUICK_SEEN_GOALS if args.quick else SEEN_GOALS) if args.seen_goals is None else args.seen_goals
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-real-prover-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log(f"machine: {describe('torch', 'onnxruntime')}")
    log(f"acorn: {setup.binary}; acornlib: {setup.acornlib}; held out: {HELD_OUT_GLOB}; proved: {', '.join(proved)}; "
        f"exports {'without' if args.no_crash_guard else 'with'} the crash guard")
    out: dict = {"held_out": HELD_OUT_GLOB, "proved_modules": proved, "minutes": args.minutes, "jobs": args.jobs,
                 "seen_goals": seen_goals, "seed": args.seed,
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

        # Drawn before any acorn run, so a data folder without provenance fails in seconds.
        sample = seen_sample(train_dir, exports, seen_goals, args.seed) if seen_goals > 0 else None
        if sample is not None:
            log(f"{SPLITS['seen']}: {sample.summary()}")

        log(f"\nproxies on the held-out goals ({held_dir}):")
        for name, folder in exports.items():
            p = proxies(folder, held_dir, None)
            out[name]["heldout_proxies"] = p
            log(f"  {name:8s} proof bits/byte {p['proof_bpb']:.4f}  exact match@8 {p['prover_exact_match_at_k']:.2%} "
                f"({p['prover_matched']}/{p['prover_lines']})  first line a marker {p['first_line_marker_rate']:.1%}  "
                f"attempts/s {p['attempts_per_5s'] / 5:.0f} (replica, ONNX Runtime, 1 thread)  "
                f"lines acorn crashes on {p['crash_line_rate']:.2%}")

        results: dict = {"heldout": {}}
        describe = {"heldout": f"{', '.join(proved)}"}
        log(f"\nthe real prover (acorn {setup.binary.name}) on {', '.join(proved)}, {args.jobs} processes at once:")
        for name, folder in exports.items():
            results["heldout"][name] = judge(setup, folder, proved, args.jobs, f"{name} model")
            out[name]["acorn"] = results["heldout"][name].to_dict()
        results["heldout"]["saturation"] = judge(setup, None, proved, args.jobs, "saturation prover alone (the reference)")
        out["saturation"] = results["heldout"]["saturation"].to_dict()

        if sample is not None:
            describe["seen"] = f"{len(sample.lines)} goal lines of {len(sample.modules)} modules (seed {args.seed})"
            out["seen_sample"] = sample.to_dict()
            results["seen"] = {}
            log(f"\nthe real prover on {SPLITS['seen']}: {sample.summary()}")
            for name, folder in exports.items():
                results["seen"][name] = judge(setup, folder, sample.modules, args.jobs, f"{name} model",
                                              choose=sample.choose, per_module=False)
                out[name]["acorn_seen"] = results["seen"][name].to_dict()
            results["seen"]["saturation"] = judge(setup, None, sample.modules, args.jobs,
                                                  "saturation prover alone (the reference)", choose=sample.choose,
                                                  per_module=False)
            out["saturation_seen"] = results["seen"]["saturation"].to_dict()
            out["seen_sample"]["unlisted"] = sample.unlisted
            if sample.unlisted:
                log(f"  {len(sample.unlisted)} sampled goal lines left out by acorn's listing: {sample.unlisted[:3]}")

        labels = {"ours": "cpu preset", "original": "original recipe"}
        labels = {name: labels[name] for name in recipes}
        table = split_table(results, labels)
        out["figures"] = table
        log(f"\nheadline: goals proved by acorn's generative prover in its 5 s, after {args.minutes:g} minutes of "
            f"training on this machine, per split (saturation alone: the reference)")
        print_splits(table, labels, describe)
        log(f"bench time {time.monotonic() - started:.0f} s")
        out["seconds"] = time.monotonic() - started
        if args.json:
            args.json.write_text(json.dumps(out, indent=1, default=str) + "\n", encoding="utf-8")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
