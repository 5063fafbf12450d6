"""`tactics complete MODEL`: candidate next proof lines for a goal."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tactics_core.gpt.prover_figures import MAX_LINE_TOKENS, TEMPERATURE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "complete",
        help="propose the next proof line for a goal (checkpoint or export folder)",
        description="Propose N candidate next proof lines, deduplicated and ranked by log-probability. "
        "MODEL is a checkpoint (.pt, runs in PyTorch) or an export folder (runs in ONNX Runtime, "
        "as the prover does).",
    )
    parser.add_argument("model", metavar="MODEL", help="checkpoint .pt or export folder")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--prompt-file", type=Path, metavar="F",
        help="goal context (@T/@G/@H/@C) and optionally @P with the proof lines so far",
    )
    src.add_argument(
        "--goal-file", type=Path, metavar="PROOF_FILE",
        help="a proof file; completes its first proof line (see --proof-lines)",
    )
    parser.add_argument(
        "--proof-lines", type=int, default=0, metavar="K",
        help="with --goal-file: give the file's first K proof lines as the proof so far (default 0)",
    )
    parser.add_argument("-n", type=int, default=8, help="candidates to sample (default 8)")
    parser.add_argument(
        "--temperature", type=float, default=TEMPERATURE,
        help="sampling temperature; 0 = deterministic (k best first tokens, then greedy) (default %(default)s)",
    )
    parser.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (default 0.95)")
    parser.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest tokens; 0 = off (default)")
    parser.add_argument("--max-tokens", type=int, default=MAX_LINE_TOKENS, help="tokens per line at most (default %(default)s)")
    parser.add_argument(
        "--prover-prompt", action="store_true",
        help="ask a file-layout model the prover's way (prompt without @P, front-truncated, a newline "
        "token before each line); prover-layout models (the default) are always asked that way",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed for reproducible sampling")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: library default)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=cmd_complete)


def _read(path: Path) -> str:
    from tactics_core.common.errors import TacticsError

    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TacticsError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TacticsError(f"cannot read {path}: {exc}; give a UTF-8 proof file") from None


def cmd_complete(args: argparse.Namespace) -> int:
    from tactics_core.common.errors import TacticsError
    from tactics_core.gpt.complete import Completer
    from tactics_core.gpt.corpus import normalize_line, parse_proof_text

    proof_so_far: list[str] = []
    expected = None
    if args.goal_file is not None:
        pf = parse_proof_text(_read(args.goal_file), str(args.goal_file))
        proof = list(pf.proof or ())
        if args.proof_lines < 0 or args.proof_lines > len(proof):
            raise TacticsError(
                f"--proof-lines {args.proof_lines} is out of range: {args.goal_file} has {len(proof)} proof line(s)"
            )
        proof_so_far = proof[: args.proof_lines]
        expected = proof[args.proof_lines] if args.proof_lines < len(proof) else None
        context = pf
    else:
        if args.proof_lines:
            raise TacticsError("--proof-lines goes with --goal-file; put the lines after @P in the prompt file")
        # Parsed here so errors name the file; its @P lines are the proof so far.
        context = parse_proof_text(_read(args.prompt_file), str(args.prompt_file))
        proof_so_far = list(context.proof or ())
    completer = Completer.load(args.model, device=args.device, threads=args.threads)
    result = completer.complete(
        context,
        proof_so_far=proof_so_far,
        n=args.n,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        max_tokens=args.max_tokens,
        prover_prompt=args.prover_prompt,
        seed=args.seed,
    )
    if args.json:
        out = result.to_dict()
        if expected is not None:
            out["expected"] = expected
        print(json.dumps(out, indent=1))
        return 0
    asked = completer.asked_in(args.prover_prompt).asked
    print(f"{len(result.candidates)} candidate(s) from {completer.backend_name} in {result.seconds * 1000:.0f} ms "
          f"(prompt {result.prompt_tokens} tokens, asked {asked})")
    for i, cand in enumerate(result.candidates, 1):
        mark = "" if cand.finished else "  [cut]"
        hit = "  <= the file's line" if expected is not None and normalize_line(cand.text) == normalize_line(expected) else ""
        print(f"{i:3d}. {cand.logprob:8.3f}  {cand.text}{mark}{hit}")
    if expected is not None:
        print(f"expected: {expected}")
    for note in result.notes:
        print(f"note: {note}")
    return 0
