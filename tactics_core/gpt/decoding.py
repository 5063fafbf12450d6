"""The one decoding loop: sampling, the stop rule, the token cap and the position limit.

Completion (`complete.py`), the prover's attempts and its batched samples
(`prover.ProverSession`) all decode here, so a rule is written, and fixed,
once. The rules are the Acorn prover's (../shared/PROVER_PROTOCOL.md):

* Rows start from one state: a batch-1 cache of `length` tokens and the
  logits after its last token. They are decoded together, one token per step,
  feeding each row only its newest token; a row that ends leaves the batch.
* A sampled token in `stop_ids` ends its row and is **not** fed.
* A token that would sit at position `context_length` or beyond cannot be
  fed: the row ends at the position limit.
* At most `max_tokens` tokens are sampled per row.

What a caller adds: the prompt and the token fed first (completion prefills
the prompt; the prover feeds a newline), the stop set, and what it reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Protocol, Sequence, TypeAlias

import numpy as np

from tactics_core.common.progress import CancelToken, check

# A key/value cache as a backend keeps it (torch tensors, or numpy arrays for ONNX Runtime):
# opaque to everyone else, who only hands it back to the backend that made it.
Cache: TypeAlias = Any


class Backend(Protocol):
    """A model the decoding loop runs, step by step over its own KV cache: `complete.TorchBackend`
    (a checkpoint in PyTorch) or `complete.OnnxBackend` (an export in ONNX Runtime, the prover's
    contract). Declared here, the lowest module that drives one, so the decoder, the prover's
    session, completion and scoring all name the same seam. Logits come back as numpy arrays."""

    name: str  # "torch" | "onnx"
    context_length: int

    def empty_cache(self, batch: int = 1) -> Cache: ...

    def prefill(self, ids: Sequence[int]) -> tuple[np.ndarray, Cache]:
        """Run a prompt (batch 1) from nothing: the logits after its last token, its cache."""
        ...

    def all_logits(self, ids: Sequence[int]) -> np.ndarray:
        """The model's own logits at every position of one sequence (what scoring reads)."""
        ...

    def extend(self, ids: Sequence[int], cache: Cache) -> tuple[np.ndarray, Cache]:
        """Feed several tokens (batch 1) after `cache`: the logits after the last one."""
        ...

    def expand(self, cache: Cache, n: int) -> Cache: ...

    def select(self, cache: Cache, rows: list[int]) -> Cache: ...

    def step(self, tokens: Sequence[int], cache: Cache) -> tuple[np.ndarray, Cache]:
        """Feed one token per row: the logits [rows, vocab] after it."""
        ...


LINE = "line"  # a stop token ended the row
MAX_TOKENS = "max_tokens"  # the token cap ended it
CONTEXT_LIMIT = "context_limit"  # the position limit ended it


def log_softmax(logits: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Normalised log-probabilities (float32 while decoding: it runs once per token)."""
    x = logits.astype(dtype, copy=False)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def sample_tokens(
    logits: np.ndarray, temperature: float, top_p: float, top_k: int, rng: np.random.Generator
) -> np.ndarray:
    """One token per row of `logits` [rows, vocab] (argmax when temperature is 0).

    float32 and a sort of the probabilities (not an argsort) keep this cheap
    next to a decoding step: it runs once per generated token.
    """
    if temperature <= 0:
        return logits.argmax(axis=-1)
    x = logits.astype(np.float32) / np.float32(temperature)
    rows, vocab = x.shape
    if top_k and 0 < top_k < vocab:
        kth = np.partition(x, vocab - top_k, axis=-1)[:, vocab - top_k : vocab - top_k + 1]
        x = np.where(x < kth, -np.inf, x)
    probs = np.exp(x - x.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    if 0 < top_p < 1:
        # Nucleus: the smallest set of likeliest tokens whose mass reaches top_p (at least one).
        sorted_p = -np.sort(-probs, axis=-1)
        before = np.cumsum(sorted_p, axis=-1) - sorted_p
        n_keep = np.maximum(1, (before < top_p).sum(axis=-1))
        threshold = sorted_p[np.arange(rows), n_keep - 1][:, None]
        probs = np.where(probs >= threshold, probs, 0.0)
    cum = np.cumsum(probs, axis=-1, dtype=np.float64)
    u = rng.random((rows, 1)) * cum[:, -1:]
    return np.minimum((cum < u).sum(axis=-1), vocab - 1)


@dataclass
class Decoded:
    """One decoded row."""

    tokens: list[int]  # every token sampled, in order; the one that ended the row (if any) last
    status: str = MAX_TOKENS  # LINE | MAX_TOKENS | CONTEXT_LIMIT
    logprob: float = 0.0  # of every sampled token (with `score`)

    @property
    def finished(self) -> bool:
        """A stop token ended the row (not the cap or the limit)."""
        return self.status == LINE

    @property
    def kept(self) -> list[int]:
        """The line's own tokens: all but a stop token or one that could not be fed."""
        return self.tokens if self.status == MAX_TOKENS else self.tokens[:-1]


def stop_ids(tokenizer: Any, eos: bool = False) -> frozenset[int]:
    """The tokens that end a line: those whose text holds a newline (the prover's rule:
    `decode([t])` contains `\n`; a special token decodes to nothing there and is fed).
    `eos`: also the end-of-text token, which completion has always stopped at."""
    ids = {int(i) for i in tokenizer.newline_ids}
    if eos and tokenizer.eos_id is not None:
        ids.add(int(tokenizer.eos_id))
    return frozenset(ids)


def decode(
    backend: Backend,
    cache: Cache,
    logits: np.ndarray,
    length: int,
    n: int,
    *,
    stop_ids: Collection[int],
    temperature: float,
    max_tokens: int,
    rng: np.random.Generator,
    top_p: float = 1.0,
    top_k: int = 0,
    spread_first: bool = False,
    score: bool = False,
    keep_cache: bool = False,
    cancel: CancelToken | None = None,
) -> tuple[list[Decoded], Cache]:
    """Decode `n` rows from one state: `cache` (batch 1, `length` tokens) and the `logits` after it.

    `spread_first` at temperature 0: row i starts with the i-th likeliest token
    (so n greedy rows differ); `score`: sum each row's log-probabilities;
    `keep_cache` (n = 1): also feed a row's last token at the cap, and return
    the cache holding the row (else the cache returned is of no use).
    """
    ctx = int(backend.context_length)
    logits = np.asarray(logits).reshape(1, -1)
    spread = spread_first and temperature <= 0
    if spread:
        n = min(max(1, n), logits.shape[-1])
    rows = [Decoded([]) for _ in range(n)]
    first = logits  # the first step's log-probabilities come from this one row
    if n > 1:
        logits = np.repeat(logits, n, axis=0)
        cache = backend.expand(cache, n)
    active = list(range(n))  # the rows still in the batch, in batch order
    for i in range(max_tokens):
        check(cancel)
        logp = None
        if score or (spread and i == 0):
            logp = log_softmax(first) if i == 0 else log_softmax(logits)
        if spread and i == 0:
            chosen = np.argsort(-logp[0], kind="stable")[:n]
        else:
            chosen = sample_tokens(logits, temperature, top_p, top_k, rng)
        fed = []
        for j, r in enumerate(active):
            t, row = int(chosen[j]), rows[r]
            row.tokens.append(t)
            if score:
                row.logprob += float(logp[0 if i == 0 else j, t])
            if t in stop_ids:
                row.status = LINE
            elif length >= ctx:
                row.status = CONTEXT_LIMIT
            else:
                fed.append(j)
        if not fed or (i + 1 == max_tokens and not keep_cache):
            break
        if len(fed) != len(active):
            cache = backend.select(cache, fed)
            active = [active[j] for j in fed]
        logits, cache = backend.step([rows[r].tokens[-1] for r in active], cache)
        length += 1
    return rows, cache
