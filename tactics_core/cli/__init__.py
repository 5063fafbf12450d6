"""`tactics`: the headless command line.

Each command group lives in its own module under `tactics_core.cli` and
exposes `register(subparsers)`; each command function returns an exit code.
A `TacticsError` becomes one line `error: ...` on stderr and exit code 2.
Heavy imports happen inside the command functions, so `tactics --help`
stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tactics_core.common.errors import Cancelled, TacticsError

# Command-group modules, in the order they appear in `tactics --help`.
COMMAND_MODULES = (
    "quickstart_cmd",
    "import_cmd",
    "demo_cmd",
    "corpus_cmd",
    "traces_cmd",
    "tokenizer_cmd",
    "presets_cmd",
    "train_cmd",
    "runs_cmd",
    "sweep_cmd",
    "checkpoints_cmd",
    "export_cmd",
    "complete_cmd",
    "eval_cmd",
    "prove_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    from tactics_core import __version__

    parser = argparse.ArgumentParser(
        prog="tactics",
        description="Train, export and try small proof-step (tactics) models for the Acorn prover.",
    )
    parser.add_argument("--version", action="version", version=f"tactics {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except Cancelled:
        print("cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except TacticsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `tactics ... | head`: the reader went away; not an error worth a traceback.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
