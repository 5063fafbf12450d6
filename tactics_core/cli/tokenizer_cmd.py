"""`tactics tokenizer train|show`: make the BPE tokenizer and look inside one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tactics_core.common.errors import TacticsError
from tactics_core.common.workspace import CHECKPOINT_DIR, DATA_DIR, TOKENIZER_FILE
from tactics_core.gpt.holdout import DEFAULT_VAL_FRACTION
from tactics_core.gpt.tokenizer import DEFAULT_SAMPLE_BYTES

# Kept here (not imported from ..tokenizer) only to stay importable without work at --help time;
# tests check they agree with tactics_core.gpt.tokenizer.
_KINDS = ("lines", "seed", "names")
_DEFAULT_KIND = "lines"


def register(subparsers) -> None:
    p = subparsers.add_parser("tokenizer", help="train or inspect the BPE tokenizer")
    sub = p.add_subparsers(dest="tokenizer_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])

    t = sub.add_parser(
        "train",
        help="train tokenizer.json on the proof files",
        description="Train a byte-level BPE tokenizer on every usable proof file and save it atomically "
        "as OUTPUT_DIR/tokenizer.json; prints the vocabulary reached and the compression "
        "(characters per token over the whole corpus).",
    )
    t.add_argument("--data-dir", type=Path, default=DATA_DIR, help=f"proof files folder (default {DATA_DIR})")
    t.add_argument("--vocab-size", type=int, default=4096, help="vocabulary size to aim for (default 4096; 260..65536)")
    t.add_argument(
        "--output-dir", type=Path, default=CHECKPOINT_DIR, help=f"where tokenizer.json goes (default {CHECKPOINT_DIR})"
    )
    t.add_argument(
        "--kind",
        choices=_KINDS,
        default=_DEFAULT_KIND,
        help="lines: newline is its own token, merges cross spaces (~2.5x denser: proof lines take "
        "fewer tokens, so more of them fit the prover's context and are sampled whole); seed: the "
        "original scripts' word-regex recipe, all 256 bytes seeded (lower bits/byte, but longer "
        "lines in tokens); names: merges inside a name or a run of symbols, never across (the lowest proof "
        f"bits/byte; a line is twice the tokens of lines, so use context 768) (default {_DEFAULT_KIND})",
    )
    t.add_argument(
        "--holdout-fraction", type=float, default=DEFAULT_VAL_FRACTION, metavar="F",
        help="share of theorems left out of BPE training: the validation split the trainer will use "
        f"(keep it equal to the preset's training.val_fraction; 0 = learn from every file; default {DEFAULT_VAL_FRACTION:g})",
    )
    t.add_argument(
        "--sample-mb", type=float, default=DEFAULT_SAMPLE_BYTES / 2**20, metavar="MB",
        help="BPE learns from at most this many MB of training files, a stable sample by file name, so memory "
        f"stays bounded on the whole acornlib (0 = every file; default {DEFAULT_SAMPLE_BYTES / 2**20:g})",
    )
    t.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser(
        "show",
        help="show a tokenizer's kind, size and specials, and how it cuts a file",
        description="Show a tokenizer's kind, vocabulary size and special tokens; with FILE, print the "
        "file cut into tokens (| between tokens, ↵ at line breaks; colours on a terminal).",
    )
    s.add_argument(
        "--tokenizer",
        type=Path,
        default=CHECKPOINT_DIR / TOKENIZER_FILE,
        help=f"tokenizer.json or a folder holding one (default {CHECKPOINT_DIR / TOKENIZER_FILE})",
    )
    s.add_argument("file", nargs="?", type=Path, metavar="FILE", help="a proof file (or any text file) to cut into tokens")
    s.add_argument("--sep", default="|", help="separator drawn between tokens without colours (default |)")
    s.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="alternate colours per token")
    s.add_argument("--json", action="store_true", help="print one JSON object (with FILE: its pieces)")
    s.set_defaults(func=cmd_show)


class _PhaseProgress:
    """One console progress line per phase (reading, counting, merging, measuring), so each ETA is its own."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.phase: str | None = None
        self.line = None

    def __call__(self, done: int, total: int | None, message: str = "") -> None:
        from tactics_core.common.progress import ConsoleProgress

        if message != self.phase:
            self.close()
            self.phase, self.line = message, ConsoleProgress(self.label)
        self.line(done, total, message)

    def close(self) -> None:
        if self.line is not None:
            self.line.close()


def cmd_train(args: argparse.Namespace) -> int:
    from tactics_core.gpt.tokenizer import train_tokenizer

    progress = None if args.json else _PhaseProgress("tokenizer")
    try:
        rep = train_tokenizer(args.data_dir, args.output_dir, args.vocab_size, args.kind, progress=progress,
                              holdout_fraction=args.holdout_fraction, sample_bytes=int(args.sample_mb * 2**20))
    finally:
        if progress is not None:
            progress.close()
    for w in rep.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(rep.to_dict(), indent=2))
        return 0
    print(f"tokenizer:   {rep.path} (kind {rep.kind}, sha256 {rep.sha256[:12]})")
    below = "" if rep.vocab_size >= rep.vocab_requested else "  (below the size asked, see warning)"
    print(f"vocabulary:  {rep.vocab_size:,} tokens of {rep.vocab_requested:,} asked{below}")
    heldout = (f"; {rep.heldout_compression:.2f} on the held-out theorems"
               if rep.heldout_compression is not None else "")
    print(f"compression: {rep.compression:.2f} chars/token over the whole corpus{heldout}")
    print(f"corpus:      {rep.files:,} files, {rep.chars:,} chars -> {rep.tokens:,} tokens"
          + (f" ({len(rep.skipped)} bad files skipped)" if rep.skipped else ""))
    print(f"learned from {rep.train_files:,} files (validation theorems held out)")
    print(f"time:        {rep.seconds:.1f} s")
    return 0


def _read_text(path: Path) -> str:
    """The file as the model sees it: the proof file's training text, or the raw text if it is not one."""
    if not path.is_file():
        raise TacticsError(f"file not found: {path}; pass a proof file, e.g. data/proofs/proof_00000.txt")
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TacticsError(f"{path} is not UTF-8 text (byte {exc.start}); pass a proof file") from None
    except OSError as exc:
        raise TacticsError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        from tactics_core.gpt.corpus import parse_proof_text
    except ImportError:
        return raw.replace("\r\n", "\n")
    try:
        return parse_proof_text(raw, path.name).text()
    except TacticsError:
        return raw.replace("\r\n", "\n")  # not a proof file: show it as plain text


def cmd_show(args: argparse.Namespace) -> int:
    from tactics_core.gpt.tokenizer import KINDS, format_boundaries, load_tokenizer

    tok = load_tokenizer(args.tokenizer)
    info = {
        "path": str(tok.path),
        "kind": tok.kind,
        "vocab_size": tok.vocab_size,
        "special_tokens": tok.special_tokens,
        "eos_id": tok.eos_id,
        "pad_id": tok.pad_id,
        "unk_id": tok.unk_id,
        "newline_tokens": len(tok.newline_ids),
        "full_byte_alphabet": tok.full_byte_alphabet,
        "sha256": tok.sha256,
    }
    pieces = None
    if args.file is not None:
        text = _read_text(args.file)
        pieces = tok.render_boundaries(text)
        n_tokens = len(tok.encode(text))
        info["file"] = {"path": str(args.file), "chars": len(text), "tokens": n_tokens,
                        "compression": round(len(text) / max(1, n_tokens), 4)}
    if args.json:
        if pieces is not None:
            info["file"]["pieces"] = pieces
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0

    print(f"tokenizer:   {tok.path}")
    print(f"kind:        {tok.kind}" + (f" ({KINDS[tok.kind]})" if tok.kind in KINDS else ""))
    print(f"vocabulary:  {tok.vocab_size:,} tokens, {len(tok.newline_ids)} of them hold a line break")
    print("specials:    " + ", ".join(f"{k}={v}" for k, v in tok.special_tokens.items()))
    if tok.eos_id is None:
        print("note:        no <EOS> (made by the original scripts): files are packed with <PAD> between them")
    if not tok.full_byte_alphabet:
        print("note:        not all 256 bytes are in the vocabulary: unseen characters become <UNK>; retrain to fix")
    print(f"sha256:      {tok.sha256}")
    if pieces is None:
        return 0
    f = info["file"]
    print(f"file:        {f['path']}: {f['chars']:,} chars -> {f['tokens']:,} tokens ({f['compression']:.2f} chars/token)")
    print()
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    if color:
        out = []
        for n, piece in enumerate(pieces):
            style = "\x1b[30;46m" if n % 2 == 0 else "\x1b[30;43m"
            for part in piece.replace("\n", "↵\n").splitlines(keepends=True):
                body, nl = (part[:-1], "\n") if part.endswith("\n") else (part, "")
                out.append(f"{style}{body}\x1b[0m{nl}")
        sys.stdout.write("".join(out))
    else:
        sys.stdout.write(format_boundaries(pieces, args.sep))
    if pieces and not pieces[-1].endswith("\n"):
        sys.stdout.write("\n")
    return 0
