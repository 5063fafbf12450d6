"""The prover's token protocol (tactics_core.gpt.prover_replica), against PROVER_PROTOCOL.md token by token."""

from __future__ import annotations

import numpy as np
import pytest

from helpers_models import tiny_export, tiny_workspace
from tactics_core.gpt import prover_replica as PV
from tactics_core.gpt.corpus import parse_proof_text
from tactics_core.gpt.corpus import iter_corpus
from tactics_core.gpt.data import load_token_cache, ProverSplit, split_corpus

GOAL_TEXT = (
    "@T\n"
    "theorem add_zero_twice(a: Nat) {\n"
    "    a + 0 + 0 = a\n"
    "}\n"
    "@G\n"
    "a + 0 + 0 = a\n"
    "@C\n"
    "a + 0 + 0 != a\n"
    "@P\n"
    "a + 0 = a\n"
    "a = a\n"
)


class ScriptedBackend:
    """A backend that records every token fed and makes the sampler pick scripted tokens.

    Each `step`/`extend` call appends its tokens to `fed` (per row) and returns
    logits with one huge entry: the next token of `script`, so sampling at any
    temperature returns exactly it.
    """

    def __init__(self, vocab_size: int, context_length: int, script: list[int]) -> None:
        self.vocab_size = vocab_size
        self.context_length = context_length
        self.script = list(script)
        self.fed: list[int] = []
        self.calls: list[int] = []  # tokens per call

    def _logits(self, rows: int) -> np.ndarray:
        out = np.zeros((rows, self.vocab_size), dtype=np.float32)
        if self.script:
            out[:, self.script.pop(0)] = 1e4
        return out

    def empty_cache(self, batch: int = 1):
        return 0  # the cache is just its length here

    def step(self, tokens, cache):
        self.fed += [int(t) for t in tokens]
        self.calls.append(len(tokens))
        return self._logits(len(tokens)), cache + 1

    def extend(self, ids, cache):
        self.fed += [int(t) for t in ids]
        self.calls.append(len(ids))
        return self._logits(1)[0], cache + len(ids)

    def expand(self, cache, n):
        return cache

    def select(self, cache, rows):
        return cache


@pytest.fixture(scope="module")
def tok():
    from tactics_core.gpt.tokenizer import load_tokenizer

    return load_tokenizer(tiny_workspace("prover").tokenizer)


def test_the_stream_is_built_token_by_token_as_the_protocol_says(tok):
    pf = parse_proof_text(GOAL_TEXT, "goal.txt")
    ctx = 120  # prompt budget 20 tokens: the start of @T is cut
    # By hand, from PROVER_PROTOCOL.md: marker lines and their lines, no @P, then the last ctx-100 tokens.
    prompt_text = "@T\ntheorem add_zero_twice(a: Nat) {\n    a + 0 + 0 = a\n}\n@G\na + 0 + 0 = a\n@C\na + 0 + 0 != a\n"
    full = tok.encode(prompt_text)
    assert len(full) > ctx - 100, "the test needs a prompt that gets truncated"
    prompt = full[-(ctx - 100):]
    nl = tok.encode("\n")[0]
    line1, line2 = tok.encode("a + 0 = a"), tok.encode("a = a")
    stop = nl  # a newline token ends a line and is not fed
    script = [line1[0]] + line1[1:] + [stop]  # after the prompt's last token: (nothing sampled) ...

    backend = ScriptedBackend(tok.vocab_size, ctx, [])
    session = PV.ProverSession(backend, tok, pf, seed=0, strict=True)
    assert backend.fed == prompt and backend.calls == [1] * len(prompt)  # one token per call, empty cache first
    assert session.prompt.cut_tokens == len(full) - len(prompt)
    assert tok.decode(full[: session.prompt.cut_tokens]) == session.prompt.cut_text

    # Attempt 1: feed nl, then the sampled tokens; the newline token that ends the line is not fed.
    backend.script = list(script)
    a1 = session.attempt()
    assert (a1.status, a1.text, a1.tokens) == ("line", "a + 0 = a", line1)
    assert backend.fed == prompt + [nl] + line1
    session.accept(a1)

    # Attempt 2 (after acceptance): again nl first, on top of the accepted line.
    backend.script = list(line2) + [stop]
    a2 = session.attempt()
    assert a2.text == "a = a"
    assert backend.fed == prompt + [nl] + line1 + [nl] + line2
    session.accept(a2)
    assert session.length == len(prompt) + 1 + len(line1) + 1 + len(line2)

    # The whole cache is what the training layout holds for this file (minus the final nl).
    assert PV.cache_ids(tok, pf, ["a + 0 = a", "a = a"], ctx) == backend.fed
    stream = PV.encode_stream(tok, pf).truncated(ctx)
    assert stream.ids == backend.fed + [nl]
    # Roles: the prompt is context, the first nl is fed (never a target), every line token and
    # line-ending nl is proof.
    assert stream.roles == [PV.ROLE_CONTEXT] * len(prompt) + [PV.ROLE_FED] + [PV.ROLE_PROOF] * (len(line1) + 1 + len(line2) + 1)


def test_attempts_fail_on_empty_lines_at_the_position_limit_and_after_100_tokens(tok):
    pf = parse_proof_text(GOAL_TEXT, "goal.txt")
    nl = tok.encode("\n")[0]
    word = tok.encode("a")[0]
    backend = ScriptedBackend(tok.vocab_size, 200, [])
    session = PV.ProverSession(backend, tok, pf, seed=0)
    backend.script = [nl]  # a newline straight away: an empty line
    assert session.attempt().status == "empty"
    backend.script = [word] * 150
    long = session.attempt()
    assert long.status == "max_tokens" and len(long.tokens) == PV.MAX_LINE_TOKENS
    # Context 110: the prompt keeps its last 10 tokens; an accepted 96-token line leaves 3
    # positions: the nl and 2 tokens fit, the third can not be fed.
    small = ScriptedBackend(tok.vocab_size, 110, [])
    tight = PV.ProverSession(small, tok, pf, seed=0)
    assert len(tight.prompt.ids) == 10 and tight.room == 100
    small.script = [word] * 96 + [nl]
    tight.accept(tight.attempt())
    assert tight.room == 3
    small.script = [word] * 10
    cut = tight.attempt()
    assert cut.status == "context_limit" and len(cut.tokens) == 2 and cut.failed
    # The rollout counts failed attempts and stops at the checker's proof.
    backend.script = [nl] + [word, nl] * 3
    verdicts = iter(["accept", "proof"])
    rollout = session.rollout(lambda line: next(verdicts))
    assert [v for _, v in rollout] == ["failed", "accept", "proof"]
    # A comment-only line never reaches the checker: acorn f47631b0 panics on it, so the rollout ends.
    backend.script = [word, nl] + tok.encode("// note") + [nl] + [word, nl] * 3
    checked: list[str] = []
    rollout = session.rollout(lambda line: checked.append(line) or "accept")
    assert [v for _, v in rollout] == ["accept", "crash"] and len(checked) == 1
    assert PV.crashes_acorn(rollout[-1][0].text)


def test_overflow_is_the_prover_failing_to_fit_the_gold_proof(tok):
    lines = ["a + 0 = a"] * 30
    pf = parse_proof_text("@G\na + 0 = a\n@C\na + 0 != a\n@P\n" + "".join(x + "\n" for x in lines), "long.txt")
    stream = PV.encode_stream(tok, pf)
    fed = len(stream.ids) - 1  # every token but the final nl is fed
    assert stream.prompt_len < fed - 100  # the prompt is not truncated at these sizes
    assert not PV.overflows(stream, fed)  # the last line's last token sits at position fed - 1
    assert PV.overflows(stream, fed - 1)
    assert len(PV.cache_ids(tok, pf, lines, fed)) == fed


def test_training_layout_is_the_protocol_stream(tmp_path, tok):
    ws = tiny_workspace("prover")
    cache, files = load_token_cache(ws.data_dir, tok, tmp_path / "cache", layout="prover")
    ctx = 128
    split = ProverSplit(cache, range(cache.n_files), ctx, seed=0, batch_size=1, shuffle=False)
    names = {cache.names[int(f)]: i for i, f in enumerate(split.file_indices)}
    checked = 0
    for pf in files:
        if not pf.proof or pf.name not in names:
            continue
        want = PV.cache_ids(tok, pf, list(pf.proof), ctx) + [tok.encode("\n")[0]]
        batch = split.batch([names[pf.name]])
        row = list(batch.inputs[0]) + [int(batch.targets[0, -1])]
        assert row == want[: ctx + 1], pf.name
        # Proof targets are exactly the line tokens and the line-ending newlines.
        n_proof = sum(len(tok.encode(line)) + 1 for line in pf.proof)
        if len(want) <= ctx + 1:
            assert batch.n_proof_tokens == n_proof
        checked += 1
        if checked >= 20:
            break
    assert checked >= 10


def test_both_backends_agree_on_the_protocol():
    import torch

    from tactics_core.gpt.complete import Completer

    ws = tiny_workspace("prover")
    torch.set_num_threads(1)
    a = Completer.load(ws.checkpoint)
    b = Completer.load(tiny_export("prover").path, threads=1)
    assert a.layout == b.layout == "prover"
    _, val = split_corpus(list(iter_corpus(ws.data_dir)), 0.1)
    for pf in [p for p in val if p.proof][:5]:
        sa = PV.ProverSession(a.backend, a.tokenizer, pf, seed=7, strict=True)
        sb = PV.ProverSession(b.backend, b.tokenizer, pf, seed=7, strict=True)
        fast = PV.ProverSession(b.backend, b.tokenizer, pf, seed=7)  # multi-token prefill
        assert np.allclose(sa.base_logits, sb.base_logits, atol=1e-3)
        assert np.allclose(fast.base_logits, sb.base_logits, atol=1e-4)
        assert [x.text for x in (sa.attempt(), sa.attempt())] == [x.text for x in (sb.attempt(), sb.attempt())]
        assert [x.text for x in sa.sample_lines(4)] == [x.text for x in sb.sample_lines(4)]
        sa.accept_text(pf.proof[0])
        sb.accept_text(pf.proof[0])
        assert sa.length == sb.length == len(PV.cache_ids(a.tokenizer, pf, [pf.proof[0]], a.context_length))
