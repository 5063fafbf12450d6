"""Held-out evaluation: the prover's figures, bits per byte, next-proof-line exact match@k.

The prover's figures (`tactics_core.gpt.prover_replica`: the model asked exactly as the
Acorn prover asks it, whatever layout it was trained on):

* `proof_bpb`: bits per byte of the gold proof lines in the prover's stream,
  each line ended by its newline token (what the prover asks the model to write).
  Positions past the context are not scored (the prover can not reach them;
  `overflow_rate` counts those goals).
* `prover_exact_match_at_k`: for each line of each gold proof, k samples at
  temperature 0.8 from the prover's cache holding the gold lines before it
  (accepted in turn, as checked lines would be); a hit when one equals the
  line after whitespace normalisation. Seeded: a rerun gives the same figure.
* `first_line_marker_rate`: goals whose first sampled line is empty or a
  section marker (`@P`...): a wasted first attempt in the prover.
* `overflow_rate`: goals with a proof whose prompt (as truncated) plus gold
  lines do not fit the context: the prover can not write that proof at all.
* `crash_line_rate`: share of the lines sampled the prover's way on which acorn
  f47631b0 panics (only a `//` comment, or `}` first: `prover.crashes_acorn`);
  an export's crash guard (and `Completer.load`'s, for a checkpoint) makes it 0;
  `crash_goal_rate` is what that rate costs in the prover: the chance that a
  goal's 5 s of attempts (`attempts_per_5s`) meets at least one such line.
* `attempts_per_5s`: prover attempts (one token per call, one thread) that fit
  the prover's 5-second budget per goal, the prompt feeding charged once.

The figures of the model's own layout:

* **Bits per byte** is comparable across tokenizers (a denser tokenizer has
  fewer, harder tokens; per-byte cost cancels that out). Each validation file
  is scored as the trainer sees it: its text followed by the end-of-file
  token, after the previous file's end token, in windows of the context length.
* **Exact match@k** is what the prover cares about: for every held-out goal
  with a proof and every line i, the prompt is the goal context plus lines
  < i, and it is a hit when one of k candidates equals line i after whitespace
  normalisation.

The split is the trainer's: `holdout.is_validation_key(file.theorem_key(),
val_fraction)` with the checkpoint's (or export's) val_fraction, so no
theorem seen in training is scored.

Candidates are decoded deterministically by default (temperature 0: the k
best first tokens, each continued greedily), so a rerun gives the same figure.
"""

from __future__ import annotations

import heapq
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn, check, report
from tactics_core.common.workspace import DATA_DIR
from tactics_core.gpt.holdout import DEFAULT_VAL_FRACTION
from tactics_core.gpt.layouts import FILE

if TYPE_CHECKING:
    from tactics_core.gpt.decoding import Backend

EXTRA_TOKENS = 8  # a candidate this much longer than the target line can not equal it
TIMED_GOALS = 3  # goals whose prover attempts are timed for attempts_per_5s
# Goals scored when the validation split is bigger (a tenth of the whole acornlib is about 20,000
# goals, hours of sampling): a stable sample by file name, said in the output; --sample 0 scores all.
EVAL_SAMPLE = 1000


@dataclass
class EvalReport:
    model: str
    backend: str
    data_dir: str
    val_fraction: float
    k: int
    goals: int  # held-out goals scored (limit or sample applied)
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
    layout: str = FILE.name  # what the model was trained on (how bpb / exact_match_at_k prompt it)
    split: str = "validation"  # or "all" (--all: every file, for a corpus the model never saw)
    split_by: str = "theorem"  # what decided the validation split: whole theorems or whole modules (new theories)
    proof_bpb: float | None = None
    proof_tokens: int = 0
    proof_bytes: int = 0
    prover_exact_match_at_k: float | None = None
    prover_lines: int = 0
    prover_matched: int = 0
    first_line_marker_rate: float | None = None
    overflow_rate: float | None = None
    overflow_goals: int = 0
    attempts_per_5s: float | None = None
    attempt_ms: float | None = None
    prover_samples: int = 0
    crash_lines: int = 0
    crash_line_rate: float | None = None
    crash_goal_rate: float | None = None
    notes: list[str] = field(default_factory=list)
    split_goals: int | None = None  # goals in the split (None when --limit stopped the count early)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def val_fraction_of(completer: Any) -> float:
    """The validation share the model was trained with (checkpoint config or export config.json)."""
    info = completer.info or {}
    if "val_fraction" in info:  # export folder
        return float(info["val_fraction"])
    return float(_training_config(completer).get("val_fraction", DEFAULT_VAL_FRACTION))


def split_of(completer: Any) -> str:
    """What decided the model's validation split: `theorem` or `module` (data.SPLITS)."""
    info = completer.info or {}
    if "split" in info:  # export folder
        return str(info["split"])
    return str(_training_config(completer).get("split", "theorem"))


def _training_config(completer: Any) -> dict:
    payload = (completer.info or {}).get("payload") or {}
    return (payload.get("config") or {}).get("training") or {}


def file_nll(backend: Backend, ids: list[int], sep: int, learn_sep: bool) -> tuple[float, int]:
    """Natural-log loss of one file's tokens (and its end token), in context-length windows."""
    import numpy as np

    from tactics_core.gpt.decoding import log_softmax

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


def _check_arguments(k: int, limit: int | None, sample: int) -> None:
    """Refuse a k, limit or sample no evaluation can mean, before the model loads."""
    if k < 1:
        raise TacticsError(f"--k must be at least 1, got {k}")
    if limit is not None and limit < 1:
        raise TacticsError(f"--limit must be at least 1, got {limit}")
    if sample < 0:
        raise TacticsError(f"--sample must be 0 (every goal) or positive, got {sample}")


@dataclass
class Selection:
    """The goals an evaluation scores, and what the choice of them says in the report."""

    files: list[Any]  # the ProofFiles scored, by file name (or in corpus order under a limit)
    in_split: int | None  # goals in the split (None when a limit stopped the count early)
    skipped: list[Any]  # the corpus's unreadable files (`corpus.Problem`s)
    val_fraction: float
    split_by: str  # `theorem` or `module`


def select_files(
    completer: Any,
    data_dir: str | os.PathLike,
    limit: int | None = None,
    sample: int = EVAL_SAMPLE,
    all_files: bool = False,
    cancel: CancelToken | None = None,
) -> Selection:
    """The model's own validation split of `data_dir` (every file with `all_files`), cut to the
    first `limit` files or to a stable sample of `sample` (by file name), so that no theorem seen
    in training is scored and a rerun scores the same goals."""
    from tactics_core.gpt.corpus import iter_corpus
    from tactics_core.gpt.holdout import file_modules, is_validation_key, module_key, stable_share

    val_fraction = val_fraction_of(completer)
    split_by = split_of(completer)
    modules = file_modules(data_dir) if split_by == "module" and not all_files else None
    skipped: list[Any] = []
    files = []
    kept: list[tuple[float, str, Any]] = []  # a heap of the `sample` files with the lowest share
    in_split = 0
    for pf in iter_corpus(data_dir, on_problem=skipped.append, cancel=cancel):
        if not all_files:
            if modules is not None and pf.name not in modules:
                raise TacticsError(f"{pf.name} of {data_dir} is not in the manifest beside it; import the corpus again")
            key = pf.theorem_key() if modules is None else module_key(modules[pf.name])
            if not is_validation_key(key, val_fraction):
                continue
        in_split += 1
        if limit is not None:
            files.append(pf)
            if len(files) >= limit:
                break
            continue
        share = stable_share(pf.name)
        if not sample or len(kept) < sample:
            heapq.heappush(kept, (-share, pf.name, pf))
        elif share < -kept[0][0]:
            heapq.heapreplace(kept, (-share, pf.name, pf))
    if limit is None:
        files = sorted((pf for _, _, pf in kept), key=lambda pf: pf.name)
    if not files:
        raise TacticsError(
            f"{data_dir}: no file falls in the validation split (split by {split_by}, val_fraction {val_fraction}); "
            "evaluate on a larger corpus"
        )
    return Selection(files, None if limit is not None else in_split, skipped, val_fraction, split_by)


class _Ticks:
    """One progress count over every stage, so the bar runs once from 0 to the whole work."""

    def __init__(self, progress: ProgressFn | None, total: int):
        self.progress = progress
        self.total = total
        self.done = 0

    def add(self, n: int, message: str) -> None:
        self.done += n
        report(self.progress, self.done, self.total, message)


@dataclass
class StreamFigures:
    """The prover's stream scored: all its targets (a prover-layout model's bpb) and its proof lines."""

    nll: float = 0.0
    tokens: float = 0.0
    bytes: float = 0.0
    proof_nll: float = 0.0
    proof_tokens: int = 0
    proof_bytes: int = 0

    @property
    def proof_bpb(self) -> float | None:
        return self.proof_nll / math.log(2) / self.proof_bytes if self.proof_bytes else None


def stream_figures(completer: Any, files: list[Any], ticks: _Ticks | None = None,
                   cancel: CancelToken | None = None) -> StreamFigures:
    """Proof bits per byte in the prover's stream (what the prover asks the model to write),
    one pass per goal; the same pass is a prover-layout model's own bits per byte."""
    figures = StreamFigures()
    for pf in files:
        check(cancel)
        t, b, pn, pt, pb = stream_nll_of(completer, pf)
        figures.nll += t
        figures.tokens += b[0]
        figures.bytes += b[1]
        figures.proof_nll += pn
        figures.proof_tokens += pt
        figures.proof_bytes += pb
        if ticks:
            ticks.add(1, f"proof bits per byte: {pf.name}")
    return figures


def layout_nll(completer: Any, files: list[Any], stream: StreamFigures, ticks: _Ticks | None = None,
               cancel: CancelToken | None = None) -> tuple[float, int, int]:
    """(NLL, tokens, bytes) of the files as the model was trained on them: for a prover-stream
    layout the stream's figures, otherwise each file's text and end token in context windows."""
    if completer.trained_on.prover_stream:
        if ticks:
            ticks.done += len(files)
        return stream.nll, int(stream.tokens), int(stream.bytes)
    tokenizer = completer.tokenizer
    learn_sep = tokenizer.eos_id is not None
    sep = tokenizer.eos_id if learn_sep else tokenizer.pad_id
    nll = 0.0
    n_tokens = n_bytes = 0
    texts = [pf.text() for pf in files]
    for pf, text, ids in zip(files, texts, tokenizer.encode_batch(texts)):
        check(cancel)
        loss, count = file_nll(completer.backend, ids, sep, learn_sep)
        nll += loss
        n_tokens += count
        n_bytes += len(text.encode("utf-8"))
        if ticks:
            ticks.add(1, f"bits per byte: {pf.name}")
    return nll, n_tokens, n_bytes


@dataclass
class ProverMatch:
    """The prover's way, summed over goals (`prover_replica.score_goal`'s figures)."""

    lines: int = 0
    matched: int = 0
    markers: int = 0  # goals whose first sampled line is empty or a section marker
    overflow: int = 0  # goals with a proof that does not fit the context
    with_proof: int = 0
    samples: int = 0
    crash_lines: int = 0


def prover_match(completer: Any, files: list[Any], k: int, seed: int = 0, ticks: _Ticks | None = None,
                 cancel: CancelToken | None = None) -> ProverMatch:
    """Exact match@k the prover's way (gold lines accepted in turn), first-line markers, overflow
    and lines acorn crashes on: what the prover would meet, whatever layout the model knows."""
    from tactics_core.gpt.prover_replica import ProverSession, score_goal

    total = ProverMatch()
    for g, pf in enumerate(files):
        check(cancel)
        session = ProverSession(completer.backend, completer.tokenizer, pf, seed=seed + g)
        figures = score_goal(session, list(pf.proof or ()), k, cancel)
        total.lines += figures.lines
        total.matched += figures.matched
        total.markers += int(figures.first_line_marker)
        total.samples += figures.samples
        total.crash_lines += figures.crash_lines
        if pf.proof:
            total.with_proof += 1
            total.overflow += int(figures.overflow)
        if ticks:
            ticks.add(1 + figures.lines, f"prover exact match@{k}: {total.matched}/{total.lines}")
    return total


@dataclass
class LineMatch:
    """Next-line exact match@k in the model's own layout."""

    lines: int = 0
    matched: int = 0
    truncated: int = 0  # prompts longer than the context, cut
    goals_with_proof: int = 0
    no_room: int = 0  # lines with no room left in the context (misses)


def line_match(completer: Any, files: list[Any], k: int, temperature: float = 0.0, max_tokens: int = 100,
               seed: int = 0, ticks: _Ticks | None = None, cancel: CancelToken | None = None,
               score: bool = True) -> LineMatch:
    """Next-line exact match@k with the model's own prompt (goal + gold lines before it);
    with `score` False only the goals with a proof are counted."""
    from tactics_core.gpt.complete import normalize_line

    total = LineMatch()
    for pf in files:
        proof = list(pf.proof or ())
        if proof:
            total.goals_with_proof += 1
        if not score:
            continue
        for i, target in enumerate(proof):
            check(cancel)
            want = normalize_line(target)
            if want:
                total.lines += 1
                hit, truncated = _line_hit(completer, pf, proof[:i], target, want, k, temperature, max_tokens,
                                           seed + total.lines - 1, cancel)
                total.no_room += int(hit is None)
                total.truncated += int(truncated)
                total.matched += int(bool(hit))
            if ticks:
                ticks.add(1, f"exact match@{k}: {total.matched}/{total.lines}")
    return total


def _line_hit(completer: Any, pf: Any, before: list[str], target: str, want: str, k: int, temperature: float,
              max_tokens: int, seed: int, cancel: CancelToken | None) -> tuple[bool | None, bool]:
    """(whether one of k candidates is the line, whether the prompt was cut); None: no room left
    in the context, a miss as in the prover. A candidate this much longer than the line can not
    equal it, so decoding stops there."""
    from tactics_core.gpt.complete import normalize_line

    budget = len(completer.tokenizer.encode(target)) + EXTRA_TOKENS
    try:
        result = completer.complete(pf, proof_so_far=before, n=k, temperature=temperature,
                                    max_tokens=min(max_tokens, budget), seed=seed, cancel=cancel)
    except TacticsError:
        return None, False
    return any(normalize_line(c.text) == want for c in result.candidates[:k]), bool(result.truncated)


def evaluate(
    model_path: str | os.PathLike,
    data_dir: str | os.PathLike = DATA_DIR,
    k: int = 8,
    limit: int | None = None,
    sample: int = EVAL_SAMPLE,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    temperature: float = 0.0,
    max_tokens: int = 100,
    device: str = "cpu",
    threads: int | None = None,
    seed: int = 0,
    completer: Any = None,
    all_files: bool = False,
    time_attempts: bool = True,
    layout_exact_match: bool = True,
) -> EvalReport:
    """Score a checkpoint or export folder on the validation split of `data_dir`
    (every file with `all_files`, for a corpus the model never saw).

    The stages, each usable alone: `select_files`, then one function per figure
    (`stream_figures`, `layout_nll`, `prover_match`, `measure_attempts`, `line_match`),
    combined by `_combine` into one report."""
    from tactics_core.gpt.complete import Completer

    _check_arguments(k, limit, sample)
    start = time.perf_counter()
    completer = completer or Completer.load(model_path, device=device, threads=threads)
    chosen = select_files(completer, data_dir, limit, sample, all_files, cancel)
    files = chosen.files
    ticks = _Ticks(progress, len(files) * 2 + sum(len(pf.proof or ()) for pf in files) * 2)
    stream = stream_figures(completer, files, ticks, cancel)
    own_bpb = layout_nll(completer, files, stream, ticks, cancel)
    prover = prover_match(completer, files, k, seed, ticks, cancel)
    attempts = measure_attempts(completer, files[:TIMED_GOALS], seed) if time_attempts else None
    line = line_match(completer, files, k, temperature, max_tokens, seed, ticks, cancel, score=layout_exact_match)
    report(progress, ticks.total, ticks.total, "done")
    return _combine(
        model_path, data_dir, completer, chosen, k, temperature, all_files,
        stream, own_bpb, prover, attempts, line, seconds=round(time.perf_counter() - start, 3),
    )


def _combine(model_path: str | os.PathLike, data_dir: str | os.PathLike, completer: Any, chosen: Selection, k: int,
             temperature: float, all_files: bool, stream: StreamFigures, own_bpb: tuple[float, int, int],
             prover: ProverMatch, attempts: dict[str, float] | None, line: LineMatch, seconds: float) -> EvalReport:
    """The stages' figures as one report: rates from their counts, and the notes a reader needs
    to trust them (misses for lack of room, cut prompts, unreadable files)."""
    nll, n_tokens, n_bytes = own_bpb
    files = chosen.files
    crash_rate = (prover.crash_lines / prover.samples) if prover.samples else None
    return EvalReport(
        model=str(model_path),
        backend=completer.backend_name,
        data_dir=str(data_dir),
        val_fraction=chosen.val_fraction,
        k=k,
        goals=len(files),
        split_goals=chosen.in_split,
        goals_with_proof=line.goals_with_proof,
        lines=line.lines,
        matched=line.matched,
        exact_match_at_k=(line.matched / line.lines) if line.lines else None,
        bpb=nll / math.log(2) / n_bytes if n_bytes else None,
        tokens=n_tokens,
        bytes=n_bytes,
        seconds=seconds,
        temperature=temperature,
        truncated_prompts=line.truncated,
        skipped_files=len(chosen.skipped),
        layout=completer.layout,
        split="all" if all_files else "validation",
        split_by=chosen.split_by,
        proof_bpb=stream.proof_bpb,
        proof_tokens=stream.proof_tokens,
        proof_bytes=stream.proof_bytes,
        prover_exact_match_at_k=(prover.matched / prover.lines) if prover.lines else None,
        prover_lines=prover.lines,
        prover_matched=prover.matched,
        first_line_marker_rate=prover.markers / len(files),
        overflow_rate=(prover.overflow / prover.with_proof) if prover.with_proof else None,
        overflow_goals=prover.overflow,
        attempts_per_5s=None if attempts is None else round(attempts["attempts"], 1),
        attempt_ms=None if attempts is None else round(attempts["attempt_s"] * 1000, 2),
        prover_samples=prover.samples,
        crash_lines=prover.crash_lines,
        crash_line_rate=crash_rate,
        crash_goal_rate=crash_goal_rate(crash_rate, None if attempts is None else attempts["attempts"]),
        notes=_notes(line, chosen.skipped),
    )


def _notes(line: LineMatch, skipped: list[Any]) -> list[str]:
    """What the figures leave out or approximate, in words."""
    notes = []
    if line.no_room:
        notes.append(f"{line.no_room} of {line.lines} line(s) had no room left in the context (counted as misses)")
    if line.truncated:
        notes.append(f"{line.truncated} of {line.lines} prompt(s) were longer than the context and were cut")
    if skipped:
        notes.append(f"skipped {len(skipped)} unreadable file(s), e.g. {skipped[0]}")
    return notes


def crash_goal_rate(line_rate: float | None, attempts: float | None) -> float | None:
    """The chance that `attempts` independent prover attempts meet a line acorn crashes on."""
    if line_rate is None or attempts is None or not math.isfinite(attempts):
        return None
    return 1.0 - (1.0 - line_rate) ** attempts


def stream_nll_of(completer: Any, pf: Any) -> tuple[float, tuple[int, int], float, int, int]:
    """One goal's prover stream scored in one pass: (all NLL, (tokens, bytes), proof NLL,
    proof tokens, proof bytes). Only positions inside the context are scored."""
    import numpy as np

    from tactics_core.gpt.decoding import log_softmax
    from tactics_core.gpt.prover_replica import ROLE_FED, ROLE_PROOF, encode_stream

    tokenizer = completer.tokenizer
    ctx = completer.context_length
    stream = encode_stream(tokenizer, pf).truncated(ctx)
    ids, roles = stream.ids[: ctx + 1], stream.roles[: ctx + 1]
    if len(ids) < 2:
        return 0.0, (0, 0), 0.0, 0, 0
    logp = log_softmax(completer.backend.all_logits(ids[:-1]), dtype=np.float64)
    scored = np.asarray(roles[1:]) != ROLE_FED  # as in training: the fed newline is no target
    targets = np.asarray(ids[1:], dtype=np.int64)
    nll = -logp[np.arange(len(targets)), targets][scored]
    nbytes = np.asarray([len(tokenizer.token_bytes(int(t)) or b"") for t in targets])[scored]
    proof = (np.asarray(roles[1:]) == ROLE_PROOF)[scored]
    targets = targets[scored]
    return (
        float(nll.sum()), (len(targets), int(nbytes.sum())),
        float(nll[proof].sum()), int(proof.sum()), int(nbytes[proof].sum()),
    )


def measure_attempts(completer: Any, files: list[Any], seed: int = 0) -> dict[str, float] | None:
    """Prover attempts per 5 s on one thread, as the prover runs the model (one token per call).

    An export runs in its own 1-thread ONNX Runtime session (the prover's
    settings); a checkpoint in PyTorch with 1 thread for the measurement.
    """
    from tactics_core.gpt.complete import OnnxBackend
    from tactics_core.gpt.prover_replica import ProverSession, attempts_per_budget

    if not files:
        return None
    backend = completer.backend
    restore = None
    if isinstance(backend, OnnxBackend):
        backend = OnnxBackend(completer.source, completer.info, threads=1)
    else:
        import torch

        restore = torch.get_num_threads()
        torch.set_num_threads(1)
    try:
        rates = []
        for i, pf in enumerate(files):
            session = ProverSession(backend, completer.tokenizer, pf, seed=seed + i, strict=True)
            rates.append(attempts_per_budget(session))
    finally:
        if restore is not None:
            import torch

            torch.set_num_threads(restore)
    return {
        "attempts": sum(r["attempts"] for r in rates) / len(rates),
        "attempt_s": sum(r["attempt_s"] for r in rates) / len(rates),
        "prompt_s": sum(r["prompt_s"] for r in rates) / len(rates),
    }
