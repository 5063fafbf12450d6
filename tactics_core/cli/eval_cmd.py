"""`tactics eval MODEL`: bits per byte and next-line exact match@k on the validation split."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tactics_core.common.workspace import DATA_DIR
from tactics_core.gpt.evaluate import EVAL_SAMPLE
from tactics_core.gpt.prover_figures import MAX_LINE_TOKENS, SEARCH_SECONDS, TEMPERATURE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score a model on held-out theorems the prover's way: proof bits/byte, exact match@k, ...",
        description="Evaluate a checkpoint or export folder on the validation split (by theorem, as in "
        "training): bits per byte of the held-out files, and next-proof-line exact match@k (for each "
        "line of each held-out proof, is it among k candidates given the lines before it?).",
    )
    parser.add_argument("model", metavar="MODEL", help="checkpoint .pt or export folder")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help=f"corpus folder (default: {DATA_DIR})")
    parser.add_argument("--k", type=int, default=8, help="candidates per line (default 8)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="score only the first N held-out goals")
    parser.add_argument(
        "--sample", type=int, default=EVAL_SAMPLE, metavar="N",
        help=f"a validation split of more goals is scored on a stable sample of N (by file name; 0 = every goal; "
        f"default {EVAL_SAMPLE})",
    )
    parser.add_argument(
        "--temperature", type=float, default=0.0,
        help="0 (default) = deterministic: the k best first tokens, each continued greedily",
    )
    parser.add_argument(
        "--max-tokens", type=int, default=MAX_LINE_TOKENS, help="tokens per candidate line at most (default %(default)s)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: library default)")
    parser.add_argument(
        "--all", action="store_true", dest="all_files",
        help="score every file of the corpus (no split): for a corpus the model never saw",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the prover-style samples (default 0)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from tactics_core.common.progress import ConsoleProgress
    from tactics_core.gpt.evaluate import evaluate

    progress = ConsoleProgress("eval", stream=sys.stderr)
    try:
        result = evaluate(
            args.model, args.data_dir, k=args.k, limit=args.limit, sample=args.sample, progress=progress,
            temperature=args.temperature, max_tokens=args.max_tokens, device=args.device, threads=args.threads,
            all_files=args.all_files, seed=args.seed,
        )
    finally:
        progress.close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
        return 0
    em = "n/a" if result.exact_match_at_k is None else f"{result.exact_match_at_k:.1%}"
    bpb = "n/a" if result.bpb is None else f"{result.bpb:.4f}"
    split = "every file" if result.split == "all" else f"validation split {result.val_fraction:g} by {result.split_by}"
    print(f"{result.model} ({result.backend}, {result.layout} layout) on {result.data_dir}, {split}")
    of = (f" of {result.split_goals:,} (a stable sample; --sample 0 for all)"
          if result.split_goals is not None and result.split_goals > result.goals else "")
    print(f"  goals        {result.goals:,}{of} ({result.goals_with_proof:,} with a proof)")
    print("  the prover's way (PROVER_PROTOCOL.md):")
    print(f"    proof bits/byte       {_f(result.proof_bpb, '.4f')}   ({result.proof_tokens:,} tokens, {result.proof_bytes:,} bytes)")
    print(f"    exact match@{result.k:<9} {_f(result.prover_exact_match_at_k, '.1%')}   "
          f"({result.prover_matched}/{result.prover_lines} lines, {result.k} samples at temperature {TEMPERATURE:g})")
    print(f"    first line a marker   {_f(result.first_line_marker_rate, '.1%')}   (empty or @P/@T/...: a wasted first attempt)")
    print(f"    overflow              {_f(result.overflow_rate, '.1%')}   ({result.overflow_goals} goals whose gold proof does not fit the context)")
    print(f"    attempts per {SEARCH_SECONDS:g} s      {_f(result.attempts_per_5s, '.0f')}   ({_f(result.attempt_ms, '.1f')} ms per attempt, 1 thread)")
    print(f"    lines acorn crashes on {_f(result.crash_line_rate, '.2%')}  ({result.crash_lines}/{result.prover_samples} sampled "
          f"lines are a // comment or start with }}; acorn f47631b0 panics on one: {_f(result.crash_goal_rate, '.0%')} of {SEARCH_SECONDS:g} s searches "
          "would meet one)")
    print(f"  the {result.layout} layout's own prompt:")
    print(f"    bits/byte             {bpb}   ({result.tokens:,} tokens, {result.bytes:,} bytes)")
    print(f"    exact@{result.k:<15} {em}   ({result.matched}/{result.lines} lines, temperature {result.temperature:g})")
    print(f"  time         {result.seconds:.1f}s")
    for note in result.notes:
        print(f"  note: {note}")
    return 0


def _f(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)
