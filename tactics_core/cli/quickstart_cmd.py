"""`tactics quickstart`: the whole loop in one command, on what the workspace has.

corpus → tokenizer → train → export → one goal asked of the export the
prover's way (`tactics_core.gpt.prover_replica`: its prompt, one rollout of attempts).
Each step is skipped
when its result is already there (your own `data/proofs`, a trained
tokenizer, a `best_model.pt`), so running it again only does what is missing.
With no `data/proofs` it generates the built-in demo corpus first. It calls
the same commands a user would type, so the output is the same as theirs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tactics_core.common.errors import TacticsError
from tactics_core.common.workspace import Workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quickstart",
        help="run the whole loop (demo corpus if none, tokenizer, train, export, a completion)",
        description="Run corpus -> tokenizer -> training -> export -> a completion in the workspace, "
        "skipping each step whose result is already there. With no data/proofs it first generates "
        "the built-in demo corpus (`tactics demo`).",
    )
    parser.add_argument("--workspace", type=Path, default=Path("."), help="workspace folder (default: .)")
    parser.add_argument("--preset", default="tiny", help="training preset (default: tiny)")
    parser.add_argument("--max-steps", type=int, default=None, metavar="N",
                        help="training steps (default: the preset's)")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda | mps (default: the preset's)")
    parser.add_argument("--retrain", action="store_true",
                        help="train again even if checkpoints/best_model.pt exists")
    parser.set_defaults(func=cmd_quickstart)


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _run(argv: list[str]) -> None:
    from tactics_core.cli import main

    print("$ tactics " + " ".join(argv), flush=True)
    code = main(argv)
    if code != 0:
        raise TacticsError(f"`tactics {' '.join(argv)}` failed (exit {code}); see the message above")


def cmd_quickstart(args: argparse.Namespace) -> int:
    ws = Workspace.at(args.workspace)
    data, ckpt = str(ws.data_dir), str(ws.checkpoint_dir)

    _step("1/5 corpus")
    demo_corpus = not (ws.data_dir.is_dir() and any(ws.data_dir.glob("*.txt")))
    if not demo_corpus:
        print(f"using your corpus in {data}")
    else:
        _run(["demo", "--data-dir", data])
    _run(["corpus", "stats", "--data-dir", data])

    _step("2/5 tokenizer")
    if ws.tokenizer_path.is_file():
        print(f"using {ws.tokenizer_path} (delete it or run `tactics tokenizer train` to retrain)")
    else:
        # The default kind (`lines`) is measured best on acornlib; on the generated demo corpus
        # its phrase tokens do not carry over to held-out theorems, and `seed` is: the prover's
        # exact match@8 6.2% against 0.0% (docs/corpus.md, "The demo corpus").
        kind = ["--kind", "seed"] if demo_corpus else []
        _run(["tokenizer", "train", "--data-dir", data, "--output-dir", ckpt, *kind])

    _step("3/5 training")
    trained = not (ws.best_model_path.is_file() and not args.retrain)
    if not trained:
        print(f"using {ws.best_model_path} (pass --retrain to train again)")
    else:
        from tactics_core.runs.launch import LaunchRequest

        request = LaunchRequest(
            checkpoint_dir=ws.checkpoint_dir, preset=args.preset, presets_dir=ws.presets_dir, data_dir=ws.data_dir,
            max_steps=args.max_steps or None, device=args.device or None,
        )
        _run(request.argv())  # the command a user would type for it
    from tactics_core.common.workspace import current_run_dir

    run = current_run_dir(ws.checkpoint_dir)  # the run just trained (its own folder under runs/)
    model = run / ws.best_model_path.name if trained else ws.best_model_path
    if not model.is_file():
        # A run shorter than training.eval_interval never evaluated, so it has no best model yet.
        from tactics_core.runs.checkpoints import latest_checkpoint

        model = latest_checkpoint(run)
        if model is None:
            raise TacticsError(f"training wrote no checkpoint in {run}; see the run's messages above")
        print(f"no {ws.best_model_path.name} yet (the run ended before its first evaluation); using {model}")

    _step("4/5 export")
    from tactics_core.gpt.export import default_output_dir

    export = default_output_dir(ws.export_dir)
    _run(["export", str(model), str(export)])

    _step("5/5 the prover asks the export for proof lines")
    goal = _validation_goal(ws)
    if goal is None:
        print("no validation goal with a proof to try; try `tactics complete` on a goal file")
    else:
        print(f"goal file: {goal}")
        _prover_rollout(export, goal)
        print(f"ranked candidates instead: tactics complete {export} --goal-file {goal}")
    print(
        "\nnext: `tactics-tui` to watch and steer it all, `tactics eval checkpoints/best_model.pt`, "
        "or `tactics train --preset cpu` for a better model",
        file=sys.stderr,
    )
    return 0


def _prover_rollout(export: Path, goal: Path) -> None:
    """One rollout on `goal` exactly as the Acorn prover runs the export: ONNX Runtime on one
    thread, the prompt fed token by token, a rollout of `protocol.ROLLOUT_ATTEMPTS` attempts, each
    line ended by a newline token. Acorn's checker is not here: a line counts as checked when it is the
    file's next proof line (the checker would accept any line that checks)."""
    import time

    from tactics_core.gpt.complete import Completer
    from tactics_core.gpt.corpus import normalize_line, parse_proof_text
    from tactics_core.gpt.prover_figures import ROLLOUT_ATTEMPTS, SEARCH_SECONDS
    from tactics_core.gpt.prover_replica import ProverSession

    pf = parse_proof_text(goal.read_text(encoding="utf-8"), str(goal))
    gold = list(pf.proof or ())
    completer = Completer.load(export, threads=1)
    session = ProverSession(completer.backend, completer.tokenizer, pf, seed=0, strict=True)
    p = session.prompt
    print(
        f"prompt: {len(p.ids)} tokens, the goal's context without @P"
        + (f" (the first {p.cut_tokens} of {p.full_tokens} cut: the prover keeps the last {len(p.ids)})" if p.truncated else "")
    )

    def checker(line: str) -> str:
        i = len(session.accepted)
        if i < len(gold) and normalize_line(line) == normalize_line(gold[i]):
            return "proof" if i + 1 == len(gold) else "accept"
        return "reject"

    words = {"accept": "= file", "proof": "= file", "reject": "≠ file", "failed": "failed", "crash": "crash"}
    start = time.perf_counter()
    results = session.rollout(checker)
    seconds = time.perf_counter() - start
    for n, (attempt, verdict) in enumerate(results, 1):
        text = attempt.text if attempt.text.strip() else f"({attempt.status})"
        print(f"attempt {n:2d}/{ROLLOUT_ATTEMPTS}  {words[verdict]:<6}  {text[:100]}")
    found = results and results[-1][1] == "proof"
    print(
        f"{len(session.accepted)} of {len(gold)} proof line(s) written in {len(results)} attempt(s), "
        f"{seconds:.2f} s (the prover's budget: {SEARCH_SECONDS:g} s){'; proof found' if found else ''}"
    )
    print(f"the file's proof: {' | '.join(line.strip() for line in gold)}")


def _validation_goal(ws: Workspace) -> Path | None:
    """A proof file from the validation split (by theorem) that has proof lines."""
    from tactics_core.gpt.corpus import iter_corpus
    from tactics_core.gpt.holdout import DEFAULT_VAL_FRACTION, is_validation_key

    for proof in iter_corpus(ws.data_dir, on_problem=lambda problem: None):
        if proof.proof and is_validation_key(proof.theorem_key(), DEFAULT_VAL_FRACTION):
            return ws.data_dir / proof.name
    return None
