"""Held-out evaluation: bits per byte and next-proof-line exact match@k.

Why these two numbers:

* **Bits per byte** is comparable across tokenizers (a denser tokenizer has
  fewer, harder tokens; per-byte cost cancels that out). Each validation file
  is scored as the trainer sees it: its text followed by the end-of-file
  token, after the previous file's end token, in windows of the context length.
* **Exact match@k** is what the prover cares about: for every held-out goal
  with a proof and every line i, the prompt is the goal context plus lines
  < i, and it is a hit when one of k candidates equals line i after whitespace
  normalisation.

The split is the trainer's: `data.is_validation_key(file.theorem_key(),
val_fraction)` with the checkpoint's (or export's) val_fraction, so no
theorem seen in training is scored.

Candidates are decoded deterministically by default (temperature 0: the k
best first tokens, each continued greedily), so a rerun gives the same figure.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import TacticsError
from .progress import CancelToken, ProgressFn, check, report
from .workspace import DATA_DIR

DEFAULT_VAL_FRACTION = 0.1
EXTRA_TOKENS = 8  # a candidate this much longer than the target line can not equal it


@dataclass
class EvalReport:
    model: str
    backend: str
    data_dir: str
    val_fraction: float
    k: int
    goals: int  # held-out goals scored (limit applied)
    goals_with_proof: int  # of those, goals with at least one proof line
    lines: int  # proof lines tried for exact match
    matched: int
    exact_match_at_k: float | None
    bpb: float | None
    tokens: int  # tokens scored for bpb
    bytes: int
    seconds: float
    temperature: float
    truncated_prompts: int = 0
    skipped_files: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def val_fraction_of(completer: Any) -> float:
    """The split the model was trained with (checkpoint config or export config.json)."""
    info = completer.info or {}
    if "val_fraction" in info:  # export folder
        return float(info["val_fraction"])
    payload = info.get("payload") or {}
    training = (payload.get("config") or {}).get("training") or {}
    return float(training.get("val_fraction", DEFAULT_VAL_FRACTION))


def file_nll(backend: Any, ids: list[int], sep: int, learn_sep: bool) -> tuple[float, int]:
    """Natural-log loss of one file's tokens (and its end token), in context-length windows."""
    import numpy as np

    from .complete import log_softmax

    seq = [sep] + list(ids) + [sep]
    last_target = len(seq) - 1 if learn_sep else len(seq) - 2  # index of the last token scored
    ctx = backend.context_length
    total = 0.0
    count = 0
    start = 0
    while start < last_target:
        window = seq[start : min(start + ctx + 1, last_target + 1)]
        logp = log_softmax(backend.all_logits(window[:-1]), dtype=np.float64)
        targets = np.asarray(window[1:], dtype=np.int64)
        total -= float(logp[np.arange(len(targets)), targets].sum())
        count += len(targets)
        start += ctx
    return total, count


def evaluate(
    model_path: str | os.PathLike,
    data_dir: str | os.PathLike = DATA_DIR,
    k: int = 8,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    temperature: float = 0.0,
    max_tokens: int = 100,
    device: str = "cpu",
    threads: int | None = None,
    seed: int = 0,
    completer: Any = None,
) -> EvalReport:
    """Score a checkpoint or export folder on the validation split of `data_dir`."""
    from .complete import Completer, normalize_line
    from .corpus import iter_corpus
    from .data import is_validation_key

    if k < 1:
        raise TacticsError(f"--k must be at least 1, got {k}")
    if limit is not None and limit < 1:
        raise TacticsError(f"--limit must be at least 1, got {limit}")
    start = time.perf_counter()
    completer = completer or Completer.load(model_path, device=device, threads=threads)
    tokenizer = completer.tokenizer
    val_fraction = val_fraction_of(completer)

    skipped: list[Any] = []
    files = []
    for pf in iter_corpus(data_dir, on_problem=skipped.append, cancel=cancel):
        if is_validation_key(pf.theorem_key(), val_fraction):
            files.append(pf)
            if limit is not None and len(files) >= limit:
                break
    if not files:
        raise TacticsError(
            f"{data_dir}: no file falls in the validation split (val_fraction {val_fraction}); "
            "evaluate on a larger corpus"
        )
    total_lines = sum(len(pf.proof or ()) for pf in files)
    total_work = len(files) + total_lines
    done = 0

    # Bits per byte.
    learn_sep = tokenizer.eos_id is not None
    sep = tokenizer.eos_id if learn_sep else tokenizer.pad_id
    nll = 0.0
    n_tokens = 0
    n_bytes = 0
    texts = [pf.text() for pf in files]
    for pf, text, ids in zip(files, texts, tokenizer.encode_batch(texts)):
        check(cancel)
        loss, count = file_nll(completer.backend, ids, sep, learn_sep)
        nll += loss
        n_tokens += count
        n_bytes += len(text.encode("utf-8"))
        done += 1
        report(progress, done, total_work, f"bits per byte: {pf.name}")
    bpb = nll / math.log(2) / n_bytes if n_bytes else None

    # Next-line exact match@k.
    lines = matched = truncated = goals_with_proof = 0
    for pf in files:
        proof = list(pf.proof or ())
        if proof:
            goals_with_proof += 1
        for i, target in enumerate(proof):
            check(cancel)
            want = normalize_line(target)
            if want:
                budget = len(tokenizer.encode(target)) + EXTRA_TOKENS
                result = completer.complete(
                    pf,
                    proof_so_far=proof[:i],
                    n=k,
                    temperature=temperature,
                    max_tokens=min(max_tokens, budget),
                    seed=seed + lines,
                    cancel=cancel,
                )
                lines += 1
                truncated += int(result.truncated)
                if any(normalize_line(c.text) == want for c in result.candidates[:k]):
                    matched += 1
            done += 1
            report(progress, done, total_work, f"exact match@{k}: {matched}/{lines}")
    notes = []
    if truncated:
        notes.append(f"{truncated} of {lines} prompt(s) were longer than the context and were cut")
    if skipped:
        notes.append(f"skipped {len(skipped)} unreadable file(s), e.g. {skipped[0]}")
    return EvalReport(
        model=str(model_path),
        backend=completer.backend_name,
        data_dir=str(data_dir),
        val_fraction=val_fraction,
        k=k,
        goals=len(files),
        goals_with_proof=goals_with_proof,
        lines=lines,
        matched=matched,
        exact_match_at_k=(matched / lines) if lines else None,
        bpb=bpb,
        tokens=n_tokens,
        bytes=n_bytes,
        seconds=round(time.perf_counter() - start, 3),
        temperature=temperature,
        truncated_prompts=truncated,
        skipped_files=len(skipped),
        notes=notes,
    )
