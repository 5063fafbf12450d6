"""Compare the tokenizer kinds side by side: seconds, vocabulary reached, chars/token.

Trains every kind in tactics_core.gpt.tokenizer.KINDS at the same vocabulary size on
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
    from tactics_core.gpt.corpus import iter_corpus

    return list(iter_corpus(folder))


def measure(corpus: Path, heldout: Path | None = None, vocab_size: int = 4096, holdout_fraction: float = 0.0,
            context: int = 256, log=print) -> dict:
    """Every kind trained at `vocab_size` on `corpus`: seconds, vocabulary reached, chars/token, fits, tokens/line."""
    from figures import ratio
    from tactics_core.gpt.tokenizer import KINDS, load_tokenizer, train_tokenizer

    files = read_texts(corpus)
    texts = [f.text() for f in files]
    proof_lines = [line + "\n" for f in files for line in (f.proof or ())]
    held_texts = [f.text() for f in read_texts(heldout)] if heldout else []
    out = {"corpus": str(corpus), "heldout": str(heldout) if heldout else None, "vocab_asked": vocab_size,
           "files": len(texts), "chars": sum(map(len, texts)), "proof_lines": len(proof_lines),
           "heldout_files": len(held_texts), "context": context, "kinds": {}, "ratios": [], "warnings": []}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in KINDS:
            rep = train_tokenizer(corpus, Path(tmp) / kind, vocab_size, kind, holdout_fraction=holdout_fraction)
            tok = load_tokenizer(rep.path)
            lengths = [len(x) for x in tok.encode_batch(texts)]
            fits = sum(n + 1 <= context for n in lengths) / len(lengths)  # + the <EOS> separator
            per_line = sum(len(x) for x in tok.encode_batch(proof_lines)) / max(1, len(proof_lines))
            held_cpt, held_s = float("nan"), float("nan")
            if held_texts:
                t = time.perf_counter()
                n = sum(len(x) for x in tok.encode_batch(held_texts))
                held_s = time.perf_counter() - t
                held_cpt = sum(map(len, held_texts)) / n
            out["kinds"][kind] = {"train_s": rep.seconds, "vocab": rep.vocab_size, "chars_per_token": rep.compression,
                                  "heldout_chars_per_token": held_cpt, "heldout_encode_s": held_s, "fits": fits,
                                  "tokens_per_line": per_line}
            out["warnings"] += [f"{kind}: {w}" for w in rep.warnings]
            log(f"  tokenizer {kind}: {rep.seconds:.1f} s, vocab {rep.vocab_size}, {rep.compression:.2f} chars/token")
    k = out["kinds"]
    if "seed" in k and "lines" in k:
        out["ratios"] = [
            ratio("chars per token, lines vs seed (same corpus, same run)", "lines", k["lines"]["chars_per_token"],
                  "seed", k["seed"]["chars_per_token"], "chars/token", 2),
            ratio("tokenizer training time, lines vs seed (same run)", "lines", k["lines"]["train_s"], "seed",
                  k["seed"]["train_s"], "s", 1),
        ]
    return out


def main() -> int:
    from tactics_core.gpt.data import DEFAULT_VAL_FRACTION

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=SHARED / "corpora/acornlib-2025-11/proofs")
    ap.add_argument("--heldout", default=str(SHARED / "corpora/acornlib-2026-08/proofs"),
                    help="a second corpus to measure on, or 'none'")
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--holdout-fraction", type=float, default=0.0,
                    help="theorems left out of BPE training (0 = every file, as the original scripts did, "
                    f"which reproduces the issue's figures; `tactics tokenizer train` uses {DEFAULT_VAL_FRACTION:g})")
    ap.add_argument("--context", type=int, default=256, help="context length for the 'fits' column")
    args = ap.parse_args()

    if not args.corpus.is_dir():
        print(f"corpus not found: {args.corpus} (set TACTICS_SHARED or pass --corpus)", file=sys.stderr)
        return 2
    heldout = None if args.heldout == "none" else Path(args.heldout)
    if heldout is not None and not heldout.is_dir():
        print(f"note: held-out corpus {heldout} not found; skipping that column", file=sys.stderr)
        heldout = None

    sys.path.insert(0, str(REPO / "bench"))
    from figures import ratio_line

    print(f"machine: {machine()}")
    print(f"corpus:  {args.corpus}   vocab asked: {args.vocab_size}")
    r = measure(args.corpus, heldout, args.vocab_size, args.holdout_fraction, args.context, log=lambda m: None)
    print(f"         {r['files']:,} files, {r['chars']:,} chars, {r['proof_lines']:,} proof lines"
          + (f"; held-out {heldout}: {r['heldout_files']:,} files" if heldout else ""))
    print()
    header = f"{'kind':<6} {'train s':>8} {'vocab':>6} {'chars/tok':>9} {'held-out c/t':>12} {'held-out enc s':>14} " \
             f"{'fits ' + str(args.context):>9} {'tok/line':>8}"
    print(header)
    print("-" * len(header))
    for kind, k in r["kinds"].items():
        print(f"{kind:<6} {k['train_s']:>8.1f} {k['vocab']:>6} {k['chars_per_token']:>9.2f} "
              f"{k['heldout_chars_per_token']:>12.2f} {k['heldout_encode_s']:>14.1f} {k['fits']:>9.1%} "
              f"{k['tokens_per_line']:>8.2f}")
    for x in r["ratios"]:
        print(ratio_line(x))
    for w in r["warnings"]:
        print(f"warning ({w})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
