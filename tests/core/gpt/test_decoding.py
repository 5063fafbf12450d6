"""The one decoding loop (tactics_core.gpt.decoding): its rules, and that completion and the
prover's attempts are the same loop (same state and seed, same rows).

A bigram backend makes the check exact: its logits depend only on the last token fed, so a
prefill of `prompt + nl` and a prefill of `prompt` then a step of `nl` give equal logits, and
its cache is the list of tokens fed, so what was fed can be read back.
"""

from __future__ import annotations

import numpy as np

from tactics_core.gpt import decoding
from tactics_core.gpt.complete import decode_lines
from tactics_core.gpt.decoding import CONTEXT_LIMIT, LINE, MAX_TOKENS, decode
from tactics_core.gpt.prover_replica import ProverSession

VOCAB = 12
NL = 3  # the newline token (its text holds "\n")
STOP = frozenset({NL})


class BigramBackend:
    """logits = table[last token fed]; the cache is each row's list of tokens."""

    def __init__(self, context_length: int, seed: int = 0) -> None:
        self.context_length = context_length
        self.table = np.random.default_rng(seed).normal(0, 2, (VOCAB, VOCAB)).astype(np.float32)
        self.table[:, NL] += 1.0  # lines end now and then

    def empty_cache(self, batch: int = 1):
        return [[] for _ in range(batch)]

    def prefill(self, ids):
        return self.table[ids[-1]].copy(), [list(ids)]

    def extend(self, ids, cache):
        return self.table[ids[-1]].copy(), [cache[0] + list(ids)]

    def step(self, tokens, cache):
        assert all(len(row) < self.context_length for row in cache), "fed past the position limit"
        return self.table[list(tokens)].copy(), [row + [int(t)] for row, t in zip(cache, tokens)]

    def expand(self, cache, n):
        return [list(cache[0]) for _ in range(n)]

    def select(self, cache, rows):
        return [cache[r] for r in rows]


class Tokenizer:
    """Token i is the letter chr(97 + i), NL a newline."""

    vocab_size = VOCAB
    newline_ids = STOP
    eos_id = None
    path = "<test>"

    def encode(self, text):
        return [NL if c == "\n" else (ord(c) - 97) % VOCAB for c in text]

    def encode_batch(self, texts):
        return [self.encode(t) for t in texts]

    def decode(self, ids):
        return "".join("\n" if i == NL else chr(97 + i) for i in ids)


GOAL = "@G\nab\n@C\nba\n"


def test_rules_stop_unfed_limit_unfed_and_the_cap():
    backend = BigramBackend(context_length=8)
    logits, cache = backend.prefill([0, 1, 2])
    rows, _ = decode(backend, cache, logits, 3, 16, stop_ids=STOP, temperature=1.0, max_tokens=3,
                     rng=np.random.default_rng(1), score=True)
    assert {r.status for r in rows} == {LINE, MAX_TOKENS}  # with 5 free positions, no row reaches the limit
    for r in rows:
        assert len(r.tokens) <= 3 and r.logprob < 0
        assert r.finished == (r.status == LINE) and r.finished == (r.tokens[-1] == NL)
        assert r.kept == (r.tokens[:-1] if r.finished else r.tokens) and NL not in r.kept
    # Two free positions: a third token can not be fed, so the row ends there, the token kept apart.
    logits, cache = backend.prefill([0, 1, 2, 4, 5, 6])
    rows, _ = decode(backend, cache, logits, 6, 64, stop_ids=frozenset(), temperature=1.0, max_tokens=50,
                     rng=np.random.default_rng(2))
    assert all(r.status == CONTEXT_LIMIT and len(r.tokens) == 3 and r.kept == r.tokens[:2] for r in rows)
    # keep_cache: the cache holds the line (the stop token not fed; at the cap, the last token fed).
    for seed in range(20):
        (row,), kept = decode(backend, cache=[[0, 1]], logits=backend.table[1], length=2, n=1, stop_ids=STOP,
                              temperature=1.0, max_tokens=4, rng=np.random.default_rng(seed), keep_cache=True)
        if row.status != CONTEXT_LIMIT:
            assert kept == [[0, 1] + row.kept]


def test_greedy_rows_start_with_the_likeliest_tokens_in_order():
    backend = BigramBackend(context_length=64)
    logits, cache = backend.prefill([5])
    rows, _ = decode(backend, cache, logits, 1, 4, stop_ids=STOP, temperature=0, max_tokens=5,
                     rng=np.random.default_rng(), spread_first=True)
    assert [r.tokens[0] for r in rows] == list(np.argsort(-backend.table[5], kind="stable")[:4])


def test_completion_and_the_prover_are_one_loop():
    """From the same state and seed, prover attempts, batched prover samples and completion
    decode the same rows, at a stop token, the token cap and the position limit alike."""
    tok = Tokenizer()
    backend = BigramBackend(context_length=110)  # the prompt keeps its last 10 tokens
    seen = set()
    for room in (100, 4):  # a fresh goal, and one whose accepted line leaves 4 positions
        for seed in range(8):
            sessions = [ProverSession(backend, tok, GOAL, seed=seed, max_line_tokens=6) for _ in range(2)]
            for s in sessions:
                if room < s.room:
                    s.accept_text("abcab" * 19)  # the newline and 95 tokens
            assert sessions[0].room == room
            ids = sessions[0].cache[0] + [NL]  # the prover's cache, then the newline it feeds
            batch = sessions[0].sample_lines(5)
            rows, _ = decode_lines(backend, ids, 5, STOP, temperature=0.8, top_p=1.0, max_tokens=6,
                                   rng=np.random.default_rng(seed))
            assert [a.tokens for a in batch] == [r.kept for r in rows]
            assert [a.status for a in batch] == ["empty" if r.status == LINE and not r.kept else r.status for r in rows]
            one = sessions[1].attempt()
            first, _ = decode_lines(backend, ids, 1, STOP, temperature=0.8, top_p=1.0, max_tokens=6,
                                    rng=np.random.default_rng(seed))
            assert one.tokens == first[0].kept
            seen |= {r.status for r in rows}
    assert seen == {LINE, MAX_TOKENS, CONTEXT_LIMIT}
    assert decoding.stop_ids(tok) == STOP
