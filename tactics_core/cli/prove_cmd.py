"""`tactics prove MODEL`: the real Acorn prover judges a model on acornlib modules."""

from __future__ import annotations

import argparse
import json
import sys

from tactics_core.acorn.generative_judge import ENV_ACORNLIB, ENV_BINARY, ENV_ORT_LIB, GENERATIVE_COMMIT, GENERATIVE_SECONDS
from tactics_core.acorn.goal_sample import SEEN_GOALS
from tactics_core.common.workspace import DATA_DIR, SETTINGS_FILE
from tactics_core.acorn.eval_judge import DEFAULT_TIMEOUT, ENV_EVAL_ACORNLIB, ENV_EVAL_BINARY, EVAL_COMMIT, SETTINGS_TABLE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prove",
        help="run the real Acorn prover with a model on acornlib modules: goals proved, per module",
        description=(
            f"Run acorn {GENERATIVE_COMMIT}'s generative prover (`reprove --generative`) with MODEL on every goal "
            "of the chosen acornlib modules, one acorn process per goal, and report which goals it proved and how "
            "long each took. MODEL is an export folder or a checkpoint (exported into a temporary folder first). "
            f"acorn and acornlib come from the flags, else {ENV_BINARY} / {ENV_ACORNLIB} "
            f"({ENV_ORT_LIB}: ONNX Runtime 1.20's folder), else [acorn] in the workspace's {SETTINGS_FILE}. "
            "acorn runs on a scratch copy of the library's build cache; the checkout is never written. "
            f"A scorer export (a folder holding X.onnx and X.features.json, or the .onnx itself) is judged instead "
            f"by acorn {EVAL_COMMIT}'s `acorn eval --policy model` on the goal buckets of --buckets, one acorn "
            f"process per policy and bucket (with --baseline: acorn's embedded default scorer and depth-first "
            f"too); that acorn comes from the flags, else {ENV_EVAL_BINARY} / {ENV_EVAL_ACORNLIB}, else "
            f"[{SETTINGS_TABLE}] in {SETTINGS_FILE}."
        ),
    )
    parser.add_argument("model", nargs="?", metavar="MODEL", help="export folder or checkpoint .pt, or a scorer export")
    parser.add_argument("--acorn", metavar="BIN", help=f"the acorn binary (acorn {GENERATIVE_COMMIT}); default ${ENV_BINARY}")
    parser.add_argument("--acornlib", metavar="DIR", help=f"the acornlib checkout (c30e377); default ${ENV_ACORNLIB}")
    parser.add_argument("--ort-lib", metavar="DIR", help=f"folder with ONNX Runtime 1.20's libonnxruntime.so.1; default ${ENV_ORT_LIB}")
    parser.add_argument(
        "--module", action="append", default=[], metavar="M",
        help="module to prove, e.g. list.list_order, or a glob such as 'list.*' (repeatable; default: every module)",
    )
    parser.add_argument(
        "--timeout", type=float, default=None,
        help=f"search seconds per goal for the saturation prover (default {GENERATIVE_SECONDS:g}); acorn "
        f"{GENERATIVE_COMMIT}'s generative prover always searches {GENERATIVE_SECONDS:g} s. For a scorer: "
        f"acorn eval's --timeout (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--baseline", action="store_true",
        help="also run acorn's saturation prover alone on the same goals (a scorer: acorn's embedded default "
        "scorer and depth-first on the same buckets)",
    )
    parser.add_argument(
        "--jobs", type=int, default=None,
        help="acorn processes at once (default 1; at most one per core); for a scorer: acorn eval's threads "
        "(default: every core)",
    )
    parser.add_argument(
        "--buckets", metavar="B",
        help="scorer exports only: acorn's goal buckets to judge on, e.g. 90-99 (its validation buckets) or 0-9,91",
    )
    parser.add_argument(
        "--seen-subjects", type=int, metavar="N",
        help=f"judge N goal lines of the model's own validation theorems in modules it trained on (new theorems of "
        f"seen subjects; a seeded sample spread over the modules, never a training theorem's goal) instead of "
        f"--module; needs the data the model trained on (--data-dir) as `tactics import acornlib` wrote it, with "
        f"its manifest (the bench uses {SEEN_GOALS})",
    )
    parser.add_argument("--data-dir", metavar="D", help=f"with --seen-subjects: the model's data folder (default {DATA_DIR})")
    parser.add_argument("--seed", type=int, default=0, help="with --seen-subjects: the sample's seed (default 0)")
    parser.add_argument("--list-modules", action="store_true", help="list the library's modules with certificates and exit")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (per module and per goal)")
    parser.set_defaults(func=cmd_prove)


def cmd_prove(args: argparse.Namespace) -> int:
    from tactics_core.acorn.generative_judge import library_modules, prove, report_text, resolve_setup
    from tactics_core.acorn.eval_judge import is_scorer_export
    from tactics_core.common.errors import TacticsError
    from tactics_core.common.progress import ConsoleProgress

    if args.model and is_scorer_export(args.model):
        if args.seen_subjects is not None or args.data_dir is not None:
            raise TacticsError("--seen-subjects and --data-dir go with a GPT export or checkpoint; a scorer is judged on --buckets")
        return cmd_judge(args)
    if args.buckets is not None:
        raise TacticsError(
            f"--buckets goes with a scorer export (X.onnx with X.features.json beside it); {args.model or 'MODEL'} "
            f"is judged per module (--module)"
        )
    if args.timeout is None:
        args.timeout = GENERATIVE_SECONDS
    if args.jobs is None:
        args.jobs = 1
    setup = resolve_setup(args.acorn, args.acornlib, args.ort_lib)
    if args.list_modules:
        for name in library_modules(setup.acornlib):
            print(name)
        return 0
    if not args.model:
        raise TacticsError("give MODEL: an export folder or a checkpoint (`tactics prove --list-modules` lists modules)")
    if args.jobs < 1:
        raise TacticsError("--jobs must be at least 1")
    if args.timeout <= 0:
        raise TacticsError("--timeout must be a positive number of seconds")
    if args.data_dir is not None and args.seen_subjects is None:
        raise TacticsError("--data-dir goes with --seen-subjects N (the data the model trained on)")
    if args.seen_subjects is not None and args.module:
        raise TacticsError("give --module (every goal of those modules) or --seen-subjects N (a sample of goal lines), not both")
    progress = ConsoleProgress("prove", stream=sys.stderr)
    try:
        sample = None
        if args.seen_subjects is not None:
            from tactics_core.acorn.goal_sample import model_split, seen_subject_goals

            val_fraction, split = model_split(args.model)
            sample = seen_subject_goals(args.data_dir or DATA_DIR, args.seen_subjects, seed=args.seed,
                                        val_fraction=val_fraction, split=split, progress=progress)
        report = prove(args.model, setup, args.module, timeout=args.timeout, baseline=args.baseline, jobs=args.jobs,
                       progress=progress, sample=sample)
    finally:
        progress.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
        return 0
    print(report_text(report))
    return 0


def cmd_judge(args: argparse.Namespace) -> int:
    """`tactics prove SCORER --buckets B`: acorn eval judges a scorer export (and, with --baseline, acorn's own)."""
    from tactics_core.acorn.eval_judge import BASELINES, judge, parse_buckets, report_text, resolve_eval_setup, scorer_onnx
    from tactics_core.common.errors import TacticsError
    from tactics_core.common.progress import ConsoleProgress

    if args.list_modules:
        raise TacticsError("--list-modules lists the modules of acorn f47631b0's library; a scorer is judged on --buckets")
    if args.buckets is None:
        raise TacticsError(f"give --buckets for the scorer export {args.model}, e.g. --buckets 90-99 (acorn's validation buckets)")
    buckets = parse_buckets(args.buckets)
    if args.jobs is not None and args.jobs < 1:
        raise TacticsError("--jobs must be at least 1")
    timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    if timeout <= 0:
        raise TacticsError("--timeout must be a positive number of seconds")
    if len(args.module) > 1:
        raise TacticsError("a scorer is judged on one acorn eval target at most: give one --module (or none: the whole library)")
    onnx = scorer_onnx(args.model)
    setup = resolve_eval_setup(args.acorn, args.acornlib, args.ort_lib)
    progress = ConsoleProgress("judge", stream=sys.stderr)
    try:
        report = judge(setup, buckets, onnx, baselines=BASELINES if args.baseline else (), timeout=timeout,
                       jobs=args.jobs, progress=progress, target=args.module[0] if args.module else None)
    finally:
        progress.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
        return 0
    print(report_text(report))
    return 0
