"""Completion engine: both backends, ranking, truncation, prompts, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from helpers_models import tiny_export, tiny_workspace
from tactics_core.common.errors import TacticsError
from tactics_core.gpt.complete import Completer, build_prompt, decode_lines, greedy_next_line, normalize_line
from tactics_core.gpt.corpus import iter_corpus, parse_proof_text, read_proof_file
from tactics_core.gpt.data import split_corpus


@pytest.fixture(scope="module")
def ws():
    return tiny_workspace()


@pytest.fixture(scope="module")
def torch_completer(ws):
    import torch

    torch.set_num_threads(1)
    return Completer.load(ws.checkpoint)


@pytest.fixture(scope="module")
def onnx_completer():
    return Completer.load(tiny_export().path, threads=1)


@pytest.fixture(scope="module")
def held_out(ws):
    _, val = split_corpus(list(iter_corpus(ws.data_dir)), 0.1)
    return [pf for pf in val if pf.proof]


def test_greedy_gives_the_same_text_on_both_backends(torch_completer, onnx_completer, held_out):
    assert torch_completer.backend_name == "torch" and onnx_completer.backend_name == "onnx"
    tried = 0
    for pf in held_out[:6]:
        for so_far in (0, len(pf.proof) - 1):
            a = torch_completer.complete(pf, pf.proof[:so_far], n=4, temperature=0, max_tokens=24)
            b = onnx_completer.complete(pf, pf.proof[:so_far], n=4, temperature=0, max_tokens=24)
            assert a.prompt == b.prompt
            assert [c.text for c in a.candidates] == [c.text for c in b.candidates]
            for x, y in zip(a.candidates, b.candidates):
                assert math.isclose(x.logprob, y.logprob, abs_tol=1e-3)
            tried += 1
    assert tried >= 6


def test_trained_model_proposes_the_held_out_line(torch_completer, held_out):
    family = [pf for pf in held_out if pf.name.startswith("proof_fam_")]
    hits = 0
    for pf in family:
        result = torch_completer.complete(pf, n=8, temperature=0, max_tokens=24)
        hits += any(normalize_line(c.text) == normalize_line(pf.proof[0]) for c in result.candidates)
    assert hits >= len(family) // 2, f"only {hits}/{len(family)} first lines found"


def test_candidates_are_deduplicated_ranked_and_scored(torch_completer, held_out):
    import torch

    pf = held_out[0]
    result = torch_completer.complete(pf, n=16, temperature=1.2, top_p=1.0, max_tokens=20, seed=3)
    texts = [normalize_line(c.text) for c in result.candidates]
    assert len(texts) == len(set(texts)) and all(texts)
    scores = [c.logprob for c in result.candidates]
    assert scores == sorted(scores, reverse=True) and all(s < 0 for s in scores)
    # The score is the log-probability of the line plus its stop token under what is sampled (the
    # model's logits less the crash guard's penalty, as in an export), recomputed here.
    tok = torch_completer.tokenizer
    best = next(c for c in result.candidates if c.finished)
    line_ids = tok.encode(best.text + "\n")
    prompt_ids = tok.encode(result.prompt)
    model = torch_completer.backend.model
    with torch.no_grad():
        ids = torch.tensor([prompt_ids + line_ids])
        logits, _ = model(ids)
        logits = torch_completer.backend.guard(ids, logits)
    logp = torch.log_softmax(logits[0].double(), -1)
    expected = sum(float(logp[len(prompt_ids) - 1 + j, t]) for j, t in enumerate(line_ids))
    assert best.logprob == pytest.approx(expected, abs=1e-3)


def test_sampling_is_reproducible_with_a_seed(onnx_completer, held_out):
    pf = held_out[1]
    a = onnx_completer.complete(pf, n=8, temperature=1.0, seed=7, max_tokens=20)
    b = onnx_completer.complete(pf, n=8, temperature=1.0, seed=7, max_tokens=20)
    assert [(c.text, c.logprob) for c in a.candidates] == [(c.text, c.logprob) for c in b.candidates]


def test_too_long_real_file_keeps_goal_and_counterfactual(torch_completer, corpus_2026):
    big = read_proof_file(corpus_2026 / "proof_08389.txt")  # 787 KB, ~4000 proof lines
    assert len(big.proof) > 3000
    k = len(big.proof) - 1  # all but the last line so far; the last ones are short
    so_far = big.proof[:k]
    result = torch_completer.complete(big, so_far, n=2, temperature=0, max_tokens=4)
    assert result.truncated
    assert any("dropped the oldest" in note for note in result.notes)
    assert result.prompt_tokens <= torch_completer.context_length - 4
    prompt = result.prompt
    head = "".join(f"{line}\n" for line in ["@G", *big.goal, "@H", *big.hypothesis, "@C", *big.counterfactual, "@P"])
    assert prompt.startswith(head)  # goal, hypothesis and counterfactual kept whole
    kept = prompt[len(head):].splitlines()
    assert 1 <= len(kept) < k and kept == list(so_far[-len(kept):])  # the most recent lines


def test_goal_longer_than_the_context_keeps_the_tail(torch_completer):
    goal = "    " + " + ".join(f"x{i}" for i in range(400)) + " = 0"
    pf = parse_proof_text(f"@G\n{goal}\n@C\nnot_it\n@P\nfirst\n", "long.txt")
    result = torch_completer.complete(pf, ["first"], n=2, temperature=0, max_tokens=8)
    # Every droppable line goes first, then the goal loses its start.
    assert result.truncated and result.prompt.endswith(" + x399 = 0\n@C\nnot_it\n@P\n")
    assert any("kept only the last" in note for note in result.notes)
    assert result.prompt_tokens <= torch_completer.context_length


def test_generation_stops_at_the_context_limit(torch_completer):
    tok = torch_completer.tokenizer
    ctx = torch_completer.context_length
    ids = tok.encode("a + b = b + a a + b = b + a " * 40)[: ctx - 3]
    rows, notes = decode_lines(torch_completer.backend, ids, 2, set(), temperature=0, max_tokens=50)
    # The prefill predicts one token; each of the 3 free positions then takes one more.
    assert all(len(r.tokens) == 4 and not r.finished for r in rows)
    assert any("context length" in n for n in notes)


def test_prover_prompt_is_the_prover_stream(onnx_completer, held_out):
    """prover_prompt=True asks even a file-layout model the prover's way: no @P, the accepted
    lines after the counterfactual, then the newline token the prover feeds."""
    from tactics_core.gpt.prover_replica import cache_ids

    pf = held_out[0]
    tok = onnx_completer.tokenizer
    result = onnx_completer.complete(pf, pf.proof[:1], n=2, temperature=0, prover_prompt=True, max_tokens=10)
    assert result.prompt == pf.context_text() + pf.proof[0] + "\n"
    assert "@P" not in result.prompt
    prompt = onnx_completer.prompt(pf, pf.proof[:1], prover_prompt=True)
    assert prompt.ids == cache_ids(tok, pf, pf.proof[:1], onnx_completer.context_length) + [tok.encode("\n")[0]]
    long = next(p for p in held_out if len(tok.encode(p.context_text())) > onnx_completer.context_length - 100)
    cut = onnx_completer.complete(long, n=1, temperature=0, prover_prompt=True, max_tokens=5)
    assert cut.truncated and any("prover prompt" in n for n in cut.notes)


def test_prompt_text_with_proof_lines_continues_after_them(onnx_completer, held_out):
    pf = held_out[0]
    text = pf.context_text() + "@P\n" + pf.proof[0] + "\n"
    result = onnx_completer.complete(text, n=2, temperature=0, max_tokens=10)
    expected = build_prompt(onnx_completer.tokenizer, pf, pf.proof[:1], budget=10_000).text
    assert result.prompt == expected == text


def test_greedy_next_line_matches_the_engine_and_keeps_train_mode(ws, torch_completer, held_out):
    model = torch_completer.backend.model
    pf = held_out[2]
    model.train()
    try:
        line = greedy_next_line(model, torch_completer.tokenizer, pf.prompt(), max_tokens=24)
        assert model.training
    finally:
        model.eval()
    best = torch_completer.complete(pf, n=1, temperature=0, max_tokens=24)
    assert line.strip() == (best.candidates[0].text if best.candidates else "")


def test_bad_model_paths_are_one_line_errors(tmp_path):
    with pytest.raises(TacticsError, match="model not found"):
        Completer.load(tmp_path / "nope.pt")
    (tmp_path / "folder").mkdir()
    with pytest.raises(TacticsError, match="not an export folder") as info:
        Completer.load(tmp_path / "folder")
    assert "\n" not in str(info.value)


def test_cli_complete_json(ws, capsys):
    from tactics_core.cli import main

    goal = next(ws.data_dir.glob("proof_fam_*.txt"))
    code = main(["complete", str(tiny_export().path), "--goal-file", str(goal), "-n", "3",
                 "--temperature", "0", "--max-tokens", "20", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["backend"] == "onnx"
    assert {"candidates", "seconds", "backend", "prompt"} <= set(out)
    assert all({"text", "logprob"} <= set(c) for c in out["candidates"])
    assert out["expected"] == read_proof_file(goal).proof[0]
    code = main(["complete", str(ws.checkpoint), "--goal-file", str(goal), "--proof-lines", "9"])
    assert code == 2
    assert "out of range" in capsys.readouterr().err


def test_sampling_follows_temperature_top_p_and_top_k():
    from tactics_core.gpt.complete import sample_tokens

    rng = np.random.default_rng(0)
    logits = np.log(np.tile([0.5, 0.3, 0.15, 0.05], (20000, 1)))

    def share(**kw):
        return np.bincount(sample_tokens(logits, rng=rng, **kw), minlength=4) / len(logits)

    assert np.allclose(share(temperature=1.0, top_p=1.0, top_k=0), [0.5, 0.3, 0.15, 0.05], atol=0.015)
    assert np.allclose(share(temperature=1.0, top_p=0.7, top_k=0), [0.625, 0.375, 0, 0], atol=0.015)
    assert np.allclose(share(temperature=1.0, top_p=1.0, top_k=3), [0.526, 0.316, 0.158, 0], atol=0.015)
    assert share(temperature=1.0, top_p=0.4, top_k=0)[0] == 1.0  # the likeliest token is always kept
    hot = share(temperature=4.0, top_p=1.0, top_k=0)
    assert hot[3] > 0.12  # flatter
    assert (sample_tokens(logits[:5], 0.0, 1.0, 0, rng) == 0).all()  # temperature 0 = argmax
