"""`tactics traces collect`: acorn eval writes its activation traces, one bucket at a time, resumably.

Exposes `add_collect_arguments(parser)` and `cmd_collect(args)`; the `traces` command group
that holds `collect` registers them.
"""

from __future__ import annotations

import argparse
import json
import sys

from tactics_core.acorn.generative_judge import ENV_ORT_LIB, SETTINGS_FILE
from tactics_core.acorn.eval_judge import (
    DEFAULT_POLICY, DEFAULT_TIMEOUT, ENV_EVAL_ACORNLIB, ENV_EVAL_BINARY, EVAL_ACORNLIB_COMMIT, EVAL_COMMIT,
    POLICIES, SETTINGS_TABLE, TRACES_DIR,
)

DESCRIPTION = (
    f"Run acorn {EVAL_COMMIT}'s `acorn eval --trace-out` once per goal bucket and keep each bucket's trace "
    "(LABEL-bNN.jsonl.zst), its .meta.json, acorn's output (.log) and the parsed summary (.summary.json) in the "
    "output folder. A bucket's files appear only once acorn finished it, so a stopped collection keeps the "
    "buckets it finished and the next one with the same options redoes only the rest. "
    f"acorn and acornlib come from the flags, else {ENV_EVAL_BINARY} / {ENV_EVAL_ACORNLIB} ({ENV_ORT_LIB}: "
    f"ONNX Runtime 1.20's folder), else [{SETTINGS_TABLE}] in the workspace's {SETTINGS_FILE}."
)


def add_collect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--buckets", required=True, metavar="B",
                        help="acorn's goal buckets (0-99), e.g. 0-9 or 0-4,90; 90-99 are its validation buckets")
    parser.add_argument("--policy", default=None, choices=POLICIES, metavar="P",
                        help=f"acorn's activation policy (default {DEFAULT_POLICY}; `model` with --model); "
                        f"one of: {', '.join(POLICIES)}")
    parser.add_argument("--model", metavar="X.onnx", help="a scorer export (its .onnx or folder) for a model policy")
    parser.add_argument("--label", metavar="L", help="name of the files and acorn's --policy-label (default: from the policy or export)")
    parser.add_argument("--out", metavar="DIR", default=str(TRACES_DIR),
                        help=f"folder for the traces (default: the workspace's {TRACES_DIR}/)")
    parser.add_argument("--target", metavar="MODULE", help="one module (or file, MODULE:LINE) instead of the whole library")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"acorn's search seconds per goal (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--jobs", type=int, default=None, help="acorn's threads (default: every core)")
    parser.add_argument("--acorn", metavar="BIN", help=f"the acorn binary (acorn {EVAL_COMMIT}); default ${ENV_EVAL_BINARY}")
    parser.add_argument("--acornlib", metavar="DIR", help=f"the acornlib checkout ({EVAL_ACORNLIB_COMMIT}); default ${ENV_EVAL_ACORNLIB}")
    parser.add_argument("--ort-lib", metavar="DIR", help=f"folder with ONNX Runtime 1.20's libonnxruntime.so.1; default ${ENV_ORT_LIB}")
    parser.add_argument("--json", action="store_true", help="print the collected buckets as JSON")
    parser.set_defaults(func=cmd_collect)


def cmd_collect(args: argparse.Namespace) -> int:
    from tactics_core.acorn.eval_judge import collect_traces, parse_buckets, resolve_eval_setup
    from tactics_core.common.errors import TacticsError
    from tactics_core.common.progress import ConsoleProgress

    buckets = parse_buckets(args.buckets)
    if args.jobs is not None and args.jobs < 1:
        raise TacticsError("--jobs must be at least 1")
    if args.timeout <= 0:
        raise TacticsError("--timeout must be a positive number of seconds")
    policy = args.policy or ("model" if args.model else DEFAULT_POLICY)
    setup = resolve_eval_setup(args.acorn, args.acornlib, args.ort_lib)
    progress = ConsoleProgress("collect", stream=sys.stderr)
    try:
        collected = collect_traces(setup, buckets, args.out, policy=policy, model=args.model, timeout=args.timeout,
                                   jobs=args.jobs, progress=progress, label=args.label, target=args.target)
    finally:
        progress.close()
    if args.json:
        print(json.dumps([c.to_dict() for c in collected], indent=1))
        return 0
    for c in collected:
        state = "kept" if c.resumed else "collected"
        print(f"bucket {c.bucket:2d} {state:9s} {c.summary.get('succeeded', 0)}/{c.summary.get('searches', 0)} "
              f"searches succeeded  {c.trace}")
    return 0
