"""Compare the tokenizer kinds side by side: seconds, vocabulary reached, chars/token.

Trains every kind in tactics_core.tokenizer.KINDS at the same vocabulary size on
one corpus (default: ../shared/corpora/acornlib-2025-11) through the real code
path (`train_tokenizer`, corpus reader included), then measures:

- chars/token over the whole training corpus (what `tactics tokenizer train` reports),
- chars/token on a held-out corpus (default acornlib-2026-08, if present): does
  the vocabulary carry over to proofs it never saw?
- the share of proof files whose whole text fits in 256 tokens (the original
  context length) and the mean tokens per proof line (one prover step).

    python bench/tokenizer_kinds.py [--corpus DIR] [--heldout DIR|none] [--vocab-size 4096]
    python bench/tokenizer_kinds.py --corpus ../shared/corpora/acornlib-2026-08/proofs --heldout ../shared/corpora/acornlib-2025-11/proofs
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("TACTICS_SHARED", REPO.parent / "shared"))


def machine() -> str:
    from machine import describe  # bench/machine.py

    return describe('tokenizers')


def read_texts(folder: Path) -> list:
    from tactics_core.corpus import iter_corpus

    return list(iter_corpus(folder))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=SHARED / "corpora/acornlib-2025-11/proofs")
    ap.add_argument("--heldout", default=str(SHARED / "corpora/acornlib-2026-08/proofs"),
                    help="a second corpus to measure on, or 'none'")
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--holdout-fraction", type=float, default=0.0,
                    help="theorems left out of BPE training (0 = every file, as the original scripts did, "
                    "which reproduces the issue's figures; `tactics tokenizer train` uses 0.1)")
    ap.add_argument("--context", type=int, default=256, help="context length for the 'fits' column")
    args = ap.parse_args()

    from tactics_core.tokenizer import KINDS, load_tokenizer, train_tokenizer

    if not args.corpus.is_dir():
        print(f"corpus not found: {args.corpus} (set TACTICS_SHARED or pass --corpus)", file=sys.stderr)
        return 2
    heldout = None if args.heldout == "none" else Path(args.heldout)
    if heldout is not None and not heldout.is_dir():
        print(f"note: held-out corpus {heldout} not found; skipping that column", file=sys.stderr)
        heldout = None

    print(f"machine: {machine()}")
    print(f"corpus:  {args.corpus}   vocab asked: {args.vocab_size}")
    files = read_texts(args.corpus)
    texts = [f.text() for f in files]
    proof_lines = [line + "\n" for f in files for line in (f.proof or ())]
    held_texts = [f.text() for f in read_texts(heldout)] if heldout else []
    print(f"         {len(texts):,} files, {sum(map(len, texts)):,} chars, {len(proof_lines):,} proof lines"
          + (f"; held-out {heldout}: {len(held_texts):,} files, {sum(map(len, held_texts)):,} chars" if heldout else ""))
    print()
    header = f"{'kind':<6} {'train s':>8} {'vocab':>6} {'chars/tok':>9} {'held-out c/t':>12} {'held-out enc s':>14} " \
             f"{'fits ' + str(args.context):>9} {'tok/line':>8}"
    print(header)
    print("-" * len(header))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in KINDS:
            rep = train_tokenizer(args.corpus, Path(tmp) / kind, args.vocab_size, kind,
                                  holdout_fraction=args.holdout_fraction)
            tok = load_tokenizer(rep.path)
            lengths = [len(x) for x in tok.encode_batch(texts)]
            fits = sum(n + 1 <= args.context for n in lengths) / len(lengths)  # + the <EOS> separator
            per_line = sum(len(x) for x in tok.encode_batch(proof_lines)) / max(1, len(proof_lines))
            held_cpt, held_s = float("nan"), float("nan")
            if held_texts:
                t = time.perf_counter()
                n = sum(len(x) for x in tok.encode_batch(held_texts))
                held_s = time.perf_counter() - t
                held_cpt = sum(map(len, held_texts)) / n
            results[kind] = rep
            print(f"{kind:<6} {rep.seconds:>8.1f} {rep.vocab_size:>6} {rep.compression:>9.2f} {held_cpt:>12.2f} "
                  f"{held_s:>14.1f} {fits:>9.1%} {per_line:>8.2f}")
    if "seed" in results and "lines" in results:
        s, l = results["seed"], results["lines"]
        print()
        print(f"lines / seed, same corpus, same run: {l.compression / s.compression:.2f}x chars per token, "
              f"{l.seconds / s.seconds:.2f}x training time")
    for kind, rep in results.items():
        for w in rep.warnings:
            print(f"warning ({kind}): {w}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
