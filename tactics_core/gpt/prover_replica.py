"""The Acorn prover's token protocol: how it asks a tactics model for proof lines.

`../shared/PROVER_PROTOCOL.md` (acorn `src/generative/*` at f47631b0) is the
contract; this module is it in code, so that training (`data.py`, the
`prover` layout), evaluation (`evaluate.py`), completion (`complete.py`) and
the Playground all serve the same token stream:

* **Prompt**: `@T` (if any) / `@G` / `@H` (if any) / `@C` sections, each line
  ending in `\\n`, **no `@P`**; `encode(text)` without special tokens, and only
  the **last** `context_length - 100` tokens kept (the start of `@T` goes first).
  The tokens are fed one at a time into an empty cache: the goal's base state.
* **One attempt** (one proof line): from a copy of the cache, feed the newline
  token `encode("\\n")[0]`, then up to 100 times sample from
  `softmax(logits / 0.8)` (no top-k, no top-p); a token whose text contains a
  newline stops the line and is **not** fed. An empty or whitespace-only line
  is a failed attempt. An accepted line's cache becomes the current cache, so
  after lines L1, L2 the model has seen `prompt, nl, L1, nl, L2` and the next
  attempt feeds `nl` again. The sampling loop is `decoding.decode`, the one
  completion uses too; the figures (0.8, 100, 10, 5 s) are `prover_figures.py`'s.
* **Position limit**: nothing checks it in the prover; a token that would sit
  at position `context_length` or beyond cannot be fed, and the attempt fails.
* **Rollouts**: at most 10 attempts (failed ones count), ended early when the
  checker finds the contradiction; then back to the base state, for 5 s.

Two ways to feed tokens give the same cache: one token per call (exactly as
the prover; `strict=True`, what timings use) or a multi-token pass (what
evaluation uses, much faster). A test checks they agree on both backends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken
from tactics_core.gpt.corpus import SECTION_MARKERS, as_proof_file, normalize_line
from tactics_core.gpt.decoding import CONTEXT_LIMIT, LINE, MAX_TOKENS, Backend, Cache, Decoded, decode, stop_ids
from tactics_core.gpt.prover_figures import MAX_LINE_TOKENS, PROMPT_RESERVE, ROLLOUT_ATTEMPTS, SEARCH_SECONDS, TEMPERATURE

# Roles of a token in a training stream (what the loss weights and what proof figures count).
ROLE_CONTEXT = 0  # prompt tokens
ROLE_PROOF = 1  # proof-line tokens and the newline that ends each line (the model must predict them)
ROLE_FED = 2  # the newline the prover feeds before the first line: never sampled, so never a target


def newline_token(tokenizer: Any) -> int:
    """The token the prover feeds before every line: `encode("\\n")[0]`."""
    ids = tokenizer.encode("\n")
    if not ids:
        raise TacticsError(f"{tokenizer.path}: encodes a newline as no token; retrain it with `tactics tokenizer train`")
    return int(ids[0])


def prompt_budget(context_length: int) -> int:
    """How many prompt tokens the prover keeps (at least 1)."""
    return max(1, int(context_length) - PROMPT_RESERVE)


def is_failed_line(text: str) -> bool:
    """An empty or whitespace-only line: the prover counts it as a failed attempt."""
    return not text.strip()


def crashes_acorn(text: str) -> bool:
    """A line that makes acorn f47631b0 panic instead of rejecting it.

    acorn checks a line with `Statement::parse_str_with_options(line, in_block=true)`,
    which panics ("expected statement, got EOF") when the line holds no
    statement: when it is only a `//` comment (its tokenizer turns the comment
    into a newline) or starts with `}` (in a block, a closing brace ends the
    block). Its tokenizer skips only spaces and tabs before them. And its
    kernel panics on the claim `false` itself ("PDT key mismatch", `pdt.rs:656`:
    the literal's key is empty), which acornlib's 2026 certificates write as a
    proof's last line (5,516 files of a whole import of `bd1e6027`), so a model
    trained on them writes it. The whole prover process dies, not just the
    attempt. Found with the real binary (docs/prover.md); no proof line needs any
    of them (the prover stops by itself when its checker finds the contradiction).
    """
    stripped = text.lstrip(" \t")
    return ((stripped.startswith("//") and not stripped.startswith("///")) or stripped.startswith("}")
            or stripped.rstrip() == FALSE_LINE)


FALSE_LINE = "false"  # the claim acorn f47631b0's kernel panics on

GUARD_PENALTY = 100.0  # subtracted from a guarded token's logit: at temperature 0.8, e^-125 of its odds


@dataclass(frozen=True)
class CrashRule:
    """Which tokens could make a model write a line acorn f47631b0 dies on (`crashes_acorn`).

    Such a line holds `//` or starts (after spaces and tabs) with `}`. `//` can
    only appear as a token that holds it, or as a token ending in `/` followed
    by one starting with `/`; a line starts after a token whose text ends in a
    newline (then spaces or tabs), like the newline the prover feeds before each
    line. So, from the token fed alone (what an ONNX graph sees), the guard
    lowers by GUARD_PENALTY: tokens holding `//` always; tokens starting with
    `/` after one ending with `/`; and at a line start, tokens of only spaces or
    tabs and tokens starting with `}`. No proof line needs any of them
    (certificates hold claims, one a line, unindented). A special token decodes
    to nothing in acorn (`skip_special_tokens`), so the guard looks through it:
    after one, a line may be starting and a `/` may precede.
    """

    banned: np.ndarray  # [vocab] bool: the token's text holds `//`
    ends_slash: np.ndarray  # [vocab] bool: the token's text ends with `/`
    starts_slash: np.ndarray  # [vocab] bool: the token's text starts with `/`
    line_start: np.ndarray  # [vocab] bool: after this token a new line starts (newline, then spaces/tabs)
    bad_first: np.ndarray  # [vocab] bool: no line may start with this token (blank, `}` first, or the line `false`)

    @classmethod
    def of(cls, tokenizer: Any) -> "CrashRule":
        vocab = int(tokenizer.vocab_size)
        texts = []
        for i in range(vocab):
            piece = tokenizer.token_bytes(i)
            texts.append(piece if piece is not None else tokenizer.decode([i]).encode("utf-8"))

        def line_start(t: bytes) -> bool:
            return b"\n" in t and not t.rsplit(b"\n", 1)[1].strip(b" \t")

        def bad_first(t: bytes) -> bool:
            if not t:  # a special token
                return False
            line = t.split(b"\n", 1)[0].lstrip(b" \t")
            if line.rstrip(b" \t") == FALSE_LINE.encode():
                return True
            if b"\n" in t:  # a token that ends the line (the prover stops there)
                return False
            return not line or line.startswith(b"}")

        return cls(
            banned=np.array([b"//" in t for t in texts], dtype=bool),
            ends_slash=np.array([t.endswith(b"/") or not t for t in texts], dtype=bool),
            starts_slash=np.array([t.startswith(b"/") for t in texts], dtype=bool),
            line_start=np.array([line_start(t) or not t for t in texts], dtype=bool),
            bad_first=np.array([bad_first(t) for t in texts], dtype=bool),
        )

    def mask(self, fed: int) -> np.ndarray:
        """[vocab] bool: the tokens kept from following the token `fed`."""
        return (self.banned | (self.starts_slash & bool(self.ends_slash[fed]))
                | (self.bad_first & bool(self.line_start[fed])))


def is_marker_or_empty(text: str) -> bool:
    """A first line the prover can never use: empty, or a section marker such as `@P`."""
    key = normalize_line(text)
    return not key or key in SECTION_MARKERS


@dataclass
class ProverPrompt:
    """The prompt as the prover builds it, and what its front truncation cut."""

    text: str  # the whole prompt text (before truncation)
    ids: list[int]  # the tokens kept: the last prompt_budget(ctx) of encode(text)
    full_tokens: int
    cut_tokens: int  # tokens dropped from the front
    cut_text: str  # their text (what the model never sees)

    @property
    def truncated(self) -> bool:
        return self.cut_tokens > 0


def build_prompt(tokenizer: Any, context: Any, context_length: int) -> ProverPrompt:
    """The prover's prompt for a ProofFile (or proof-file text): context only, front-truncated."""
    pf = as_proof_file(context)
    text = pf.context_text()
    ids = tokenizer.encode(text)
    keep = prompt_budget(context_length)
    cut = max(0, len(ids) - keep)
    return ProverPrompt(text, ids[cut:], len(ids), cut, tokenizer.decode(ids[:cut]) if cut else "")


@dataclass
class Stream:
    """A goal's full token stream as the prover would build it, before any truncation.

    `ids` = encode(prompt) + for each proof line: [nl] + encode(line) + ... and a
    final [nl] that ends the last line (the token the model must predict to stop
    it). `roles[j]` says what predicting token j is: ROLE_CONTEXT for prompt
    tokens, ROLE_FED for the first nl (the prover feeds it and never samples
    it, so it is not a target: trained on, a model learns "a newline follows
    the @C line" and repeats it as an empty first line), ROLE_PROOF for line
    tokens and every nl after a line.
    """

    ids: list[int]
    roles: list[int]
    prompt_len: int
    lines: int

    def truncated(self, context_length: int) -> "Stream":
        """Front-truncate the prompt part as the prover does (the proof part is untouched)."""
        cut = max(0, self.prompt_len - prompt_budget(context_length))
        if not cut:
            return self
        return Stream(self.ids[cut:], self.roles[cut:], self.prompt_len - cut, self.lines)


def encode_stream(tokenizer: Any, pf: Any, lines: Sequence[str] | None = None, nl: int | None = None) -> Stream:
    """The untruncated prover stream of a ProofFile (its own proof, or `lines`).

    Encoding each piece on its own is what the prover does: the prompt once,
    each line from its own sampled tokens; the canonical encoding of a line
    stands for the tokens a model would sample for it.
    """
    nl = newline_token(tokenizer) if nl is None else nl
    proof = list(pf.proof or ()) if lines is None else list(lines)
    prompt = tokenizer.encode(pf.context_text())
    ids = list(prompt)
    roles = [ROLE_CONTEXT] * len(prompt)
    if proof:
        encoded = tokenizer.encode_batch(proof)
        ids.append(nl)
        roles.append(ROLE_FED)
        for line_ids in encoded:
            ids.extend(line_ids)
            ids.append(nl)
            roles.extend([ROLE_PROOF] * (len(line_ids) + 1))
    return Stream(ids, roles, len(prompt), len(proof))


def cache_ids(tokenizer: Any, pf: Any, accepted: Sequence[str], context_length: int) -> list[int]:
    """What the prover's cache holds after accepting `accepted`: prompt, nl, L1, nl, L2 ... (no final nl)."""
    stream = encode_stream(tokenizer, pf, accepted).truncated(context_length)
    return stream.ids[:-1] if accepted else stream.ids


def overflows(stream: Stream, context_length: int) -> bool:
    """True when the prover cannot write the whole gold proof: the last line's final token
    would sit at position context_length or beyond (the final nl is sampled, never fed)."""
    s = stream.truncated(context_length)
    return len(s.ids) - (1 if s.lines else 0) > int(context_length)


# ---------------------------------------------------------------- one goal, as the prover runs it


@dataclass
class Attempt:
    """One sampled proof line."""

    text: str
    tokens: list[int]  # kept tokens (the stop token is not among them)
    status: str  # "line" | "empty" | "max_tokens" | "context_limit"
    seconds: float = 0.0
    cache: Cache = None  # the cache with nl + the line's tokens: becomes current if accepted
    length: int = 0  # tokens in that cache

    @property
    def failed(self) -> bool:
        """Failed before the checker: empty line or no room left."""
        return self.status in ("empty", "context_limit")


class ProverSession:
    """The prover's state for one goal over a completion backend (TorchBackend / OnnxBackend).

    `strict=True` feeds every token in its own call (the prover's way, for
    timings); otherwise multi-token passes build the same cache faster.
    """

    def __init__(
        self,
        backend: Backend,
        tokenizer: Any,
        context: Any,
        *,
        seed: int | None = 0,
        strict: bool = False,
        temperature: float = TEMPERATURE,
        max_line_tokens: int = MAX_LINE_TOKENS,
    ) -> None:
        self.backend = backend
        self.tokenizer = tokenizer
        self.proof_file = as_proof_file(context)
        self.context_length = int(backend.context_length)
        self.strict = strict
        self.temperature = float(temperature)
        self.max_line_tokens = int(max_line_tokens)
        self.rng = np.random.default_rng(seed)
        self.nl = newline_token(tokenizer)
        self.stop_ids = stop_ids(tokenizer)
        self.prompt = build_prompt(tokenizer, self.proof_file, self.context_length)
        t0 = time.perf_counter()
        self.base_cache, self.base_logits = self._feed(backend.empty_cache(1), self.prompt.ids)
        self.prompt_seconds = time.perf_counter() - t0
        self.base_length = len(self.prompt.ids)
        self.reset()

    # -- state
    def reset(self) -> None:
        """Back to the goal's base state (a new rollout)."""
        self.cache, self.length = self.base_cache, self.base_length
        self.accepted: list[str] = []

    @property
    def room(self) -> int:
        """Positions left in the context (the next attempt's nl takes one)."""
        return self.context_length - self.length

    def _feed(self, cache: Cache, ids: Sequence[int]):
        """Feed tokens into `cache` (batch 1); returns (cache, logits after the last token)."""
        logits = None
        if self.strict:
            for t in ids:
                out, cache = self.backend.step([int(t)], cache)
                logits = out[0]
        elif ids:
            out, cache = self.backend.extend(list(ids), cache)
            logits = out
        return cache, logits

    def accept(self, attempt: Attempt) -> None:
        """The checker accepted the line: its cache (nl + line tokens) becomes the current one."""
        if attempt.cache is None:
            raise TacticsError("this attempt has no cache to keep (it failed before the checker)")
        self.cache, self.length = attempt.cache, attempt.length
        self.accepted.append(attempt.text)

    def accept_text(self, line: str) -> None:
        """Put a given line (a gold line, a user's line) in the cache as if it had been sampled."""
        ids = [self.nl] + self.tokenizer.encode(line)
        if self.length + len(ids) > self.context_length:
            raise TacticsError(
                f"no room for this line: {self.length} of {self.context_length} positions are used"
            )
        self.cache, _ = self._feed(self.cache, ids)
        self.length += len(ids)
        self.accepted.append(line)

    # -- sampling
    def _decode(self, k: int, keep_cache: bool, cancel: CancelToken | None) -> tuple[list[Decoded], Cache]:
        """Feed the newline the prover feeds first, then decode k lines from the current cache."""
        logits, cache = self.backend.step([self.nl], self.cache)
        return decode(
            self.backend, cache, logits, self.length + 1, k,
            stop_ids=self.stop_ids, temperature=self.temperature, max_tokens=self.max_line_tokens,
            rng=self.rng, keep_cache=keep_cache, cancel=cancel,
        )

    def _attempt(self, row: Decoded, seconds: float) -> Attempt:
        text = self.tokenizer.decode(row.kept)
        status = "empty" if row.status == LINE and is_failed_line(text) else row.status
        return Attempt(text, row.kept, status, seconds)

    def attempt(self, cancel: CancelToken | None = None) -> Attempt:
        """One attempt exactly as the prover makes it, one token per call."""
        t0 = time.perf_counter()
        if self.length >= self.context_length:  # the nl itself does not fit
            return Attempt("", [], CONTEXT_LIMIT, time.perf_counter() - t0)
        (row,), cache = self._decode(1, True, cancel)
        out = self._attempt(row, time.perf_counter() - t0)
        out.length = self.length + 1 + len(row.kept)
        if out.status in (LINE, MAX_TOKENS):
            out.cache = cache
        return out

    def sample_lines(self, k: int, cancel: CancelToken | None = None) -> list[Attempt]:
        """k independent attempts from the current cache, decoded together in one batch.

        The same distribution as k calls of `attempt()` (each row is its own
        sample from the same cache); the rows' caches are not kept.
        """
        t0 = time.perf_counter()
        if self.length >= self.context_length:
            return [Attempt("", [], CONTEXT_LIMIT) for _ in range(k)]
        rows, _ = self._decode(k, False, cancel)
        seconds = time.perf_counter() - t0
        return [self._attempt(row, seconds / k) for row in rows]

    def rollout(
        self,
        checker: Callable[[str], str],
        attempts: int = ROLLOUT_ATTEMPTS,
        cancel: CancelToken | None = None,
    ) -> list[tuple[Attempt, str]]:
        """One rollout from the base state: up to `attempts` attempts, each judged by `checker`.

        `checker(line)` returns "reject", "accept" or "proof" (accepted and the
        contradiction found: the rollout ends). Failed attempts count and never
        reach the checker. A line acorn f47631b0 panics on (`crashes_acorn`) is
        the verdict "crash" and ends the rollout: the real prover dies there.
        """
        self.reset()
        out: list[tuple[Attempt, str]] = []
        for _ in range(attempts):
            a = self.attempt(cancel)
            verdict = "failed" if a.failed else "crash" if crashes_acorn(a.text) else checker(a.text)
            out.append((a, verdict))
            if verdict in ("accept", "proof"):
                self.accept(a)
            if verdict in ("proof", "crash"):
                break
        return out


def attempts_per_budget(session: ProverSession, attempts: int = ROLLOUT_ATTEMPTS, seconds: float = SEARCH_SECONDS) -> dict[str, float]:
    """How many prover attempts fit the prover's search budget for this goal.

    Times `attempts` strict attempts from the base state (the prompt was fed
    once, token by token, in `session`'s constructor when `strict`); the
    prompt feeding is charged once against the budget, as in the prover.
    """
    session.reset()
    times = [session.attempt().seconds for _ in range(max(1, attempts))]
    per_attempt = sum(times) / len(times)
    left = max(0.0, seconds - session.prompt_seconds)
    return {
        "prompt_s": session.prompt_seconds,
        "attempt_s": per_attempt,
        "attempts": left / per_attempt if per_attempt > 0 else float("inf"),
    }


@dataclass
class GoalFigures:
    """One goal scored the prover's way against its gold proof."""

    lines: int = 0
    matched: int = 0
    first_line: str = ""
    first_line_marker: bool = False
    overflow: bool = False
    samples: int = 0  # lines sampled the prover's way
    crash_lines: int = 0  # of those, lines acorn f47631b0 would crash on (`crashes_acorn`)
    attempts: list[list[str]] = field(default_factory=list)


def score_goal(session: ProverSession, gold: Sequence[str], k: int, cancel: CancelToken | None = None) -> GoalFigures:
    """Next-line exact match@k with gold lines accepted in turn, the first sampled line, overflow."""
    figures = GoalFigures(lines=0)
    stream = encode_stream(session.tokenizer, session.proof_file, list(gold), nl=session.nl)
    figures.overflow = bool(gold) and overflows(stream, session.context_length)
    if not gold:
        first = session.sample_lines(1, cancel)[0]
        figures.first_line, figures.first_line_marker = first.text, is_marker_or_empty(first.text)
        figures.samples, figures.crash_lines = 1, int(first.status == "line" and crashes_acorn(first.text))
        return figures
    for i, line in enumerate(gold):
        want = normalize_line(line)
        samples = session.sample_lines(k, cancel)
        figures.samples += len(samples)
        figures.crash_lines += sum(a.status == "line" and crashes_acorn(a.text) for a in samples)
        if i == 0:
            figures.first_line = samples[0].text
            figures.first_line_marker = is_marker_or_empty(samples[0].text)
        figures.lines += 1
        if want and any(a.status == "line" and normalize_line(a.text) == want for a in samples):
            figures.matched += 1
        if i + 1 < len(gold):
            try:
                session.accept_text(line)
            except TacticsError:  # past the context: the prover can not write the rest
                figures.lines += len(gold) - i - 1
                break
    return figures
