"""`tactics demo`: write the built-in generated demo corpus, for a first run without Acorn data."""

from __future__ import annotations

import json

from tactics_core.common.workspace import DATA_DIR


def register(subparsers) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="write a generated demo corpus (ring and Nat identities) to data/proofs",
        description=(
            "Generate a deterministic corpus of proof files in the Acorn training format: polynomial "
            "identities in a commutative ring and in Nat, each proof line one rewrite step. Use it to "
            "try the whole loop (tokenizer, train, export, complete) without Acorn data."
        ),
    )
    demo.add_argument("--data-dir", default=str(DATA_DIR), help="folder to create (default: %(default)s)")
    demo.add_argument("--files", type=int, default=3000, help="number of proof files (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="random seed; same seed, same files (default: %(default)s)")
    demo.add_argument("--force", action="store_true", help="replace a non-empty data folder")
    demo.add_argument("--json", action="store_true", help="print one JSON object instead of a sentence")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from tactics_core.common.progress import ConsoleProgress
    from tactics_core.gpt.demo import write_demo_corpus

    progress = ConsoleProgress("demo")
    try:
        made = write_demo_corpus(args.data_dir, files=args.files, seed=args.seed, force=args.force, progress=progress)
    finally:
        progress.close()
    if args.json:
        print(json.dumps(made.to_dict()))
        return 0
    action = "replaced" if made.replaced else "made"
    print(
        f"{action} {made.data_dir}: {made.files:,} proof files from {made.theorems:,} theorems "
        f"({made.bytes / 1e6:.1f} MB, seed {made.seed}) in {made.seconds:.1f} s"
    )
    print(f"next: tactics corpus stats --data-dir {made.data_dir}   then: tactics tokenizer train --data-dir {made.data_dir}")
    return 0
