"""Held-out evaluation: split by theorem, bits per byte, exact match@k, both backends, CLI."""

from __future__ import annotations

import json
import math

import pytest

from helpers_models import tiny_export, tiny_workspace, write_family_files
from tactics_core.common.errors import TacticsError
from tactics_core.gpt.corpus import iter_corpus
from tactics_core.gpt.data import split_corpus
from tactics_core.gpt.evaluate import evaluate


@pytest.fixture(scope="module")
def trained_report():
    import torch

    torch.set_num_threads(1)
    ws = tiny_workspace()
    return evaluate(ws.checkpoint, ws.data_dir, k=8)


def test_trained_model_finds_held_out_lines_and_untrained_does_not(trained_report):
    ws = tiny_workspace()
    _, val = split_corpus(list(iter_corpus(ws.data_dir)), 0.1)
    report = trained_report
    assert report.backend == "torch" and report.val_fraction == 0.1 and report.k == 8
    assert report.goals == len(val)  # exactly the held-out theorems
    assert report.goals_with_proof == sum(1 for pf in val if pf.proof)
    assert report.lines == sum(len(pf.proof or ()) for pf in val)
    assert report.exact_match_at_k == report.matched / report.lines
    assert report.exact_match_at_k > 0.2  # the generated families are learnable
    assert 0 < report.bpb < 8 and report.bytes == sum(len(pf.text().encode()) for pf in val)
    untrained = evaluate(ws.untrained, ws.data_dir, k=8)
    assert untrained.matched == 0
    assert untrained.bpb > report.bpb + 1.0  # ~log2(vocab)/chars-per-token for random weights


def test_bpb_is_the_mean_token_loss_per_byte(trained_report):
    """bpb * bytes * ln 2 = summed NLL; with tokens scored this gives a per-token loss a trainer would show."""
    report = trained_report
    per_token = report.bpb * report.bytes * math.log(2) / report.tokens
    assert 0.05 < per_token < math.log(400)  # better than uniform over the 400-token vocabulary


def test_onnx_backend_gives_the_same_figures_and_the_cli_prints_json(capsys):
    from tactics_core.cli import main

    ws = tiny_workspace()
    folder = tiny_export().path
    torch_report = evaluate(ws.checkpoint, ws.data_dir, k=4, limit=6)
    code = main(["eval", str(folder), "--data-dir", str(ws.data_dir), "--k", "4", "--limit", "6", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"bpb", "exact_match_at_k", "k", "goals", "lines", "seconds"} <= set(out)
    assert out["backend"] == "onnx" and out["goals"] == 6 and out["k"] == 4
    assert out["lines"] == torch_report.lines and out["matched"] == torch_report.matched
    assert out["bpb"] == pytest.approx(torch_report.bpb, rel=1e-5)


def test_no_held_out_goal_is_a_clear_error(tmp_path):
    ws = tiny_workspace()
    data = tmp_path / "proofs"
    write_family_files(data, 40)
    _, val = split_corpus(list(iter_corpus(data)), 0.1)
    for pf in val:
        (data / pf.name).unlink()
    with pytest.raises(TacticsError, match="validation split"):
        evaluate(ws.checkpoint, data, k=2)
    with pytest.raises(TacticsError, match="--k"):
        evaluate(ws.checkpoint, ws.data_dir, k=0)


def test_split_uses_the_checkpoints_val_fraction(tmp_path):
    from helpers_models import save_ours
    from tactics_core.gpt.tokenizer import load_tokenizer
    from tactics_core.runs.checkpoints import load_model

    ws = tiny_workspace()
    loaded = load_model(ws.untrained)
    ckpt = save_ours(ws.root / "checkpoints" / "val30.pt", loaded.model, load_tokenizer(ws.tokenizer), 0, None,
                     val_fraction=0.3)
    data = tmp_path / "proofs"
    write_family_files(data, 30)
    _, val30 = split_corpus(list(iter_corpus(data)), 0.3)
    _, val10 = split_corpus(list(iter_corpus(data)), 0.1)
    assert len(val30) > len(val10)
    report = evaluate(ckpt, data, k=1, max_tokens=4)
    assert report.val_fraction == 0.3 and report.goals == len(val30)


def test_a_module_split_model_is_scored_on_whole_held_out_modules(tmp_path, capsys):
    import shutil

    from conftest import copy_slice, shared_corpus
    from helpers_models import save_ours
    from tactics_core.cli import main
    from tactics_core.gpt.data import is_validation_key, module_key
    from tactics_core.gpt.tokenizer import load_tokenizer
    from tactics_core.runs.checkpoints import load_model

    ws = tiny_workspace()
    loaded = load_model(ws.untrained)
    ckpt = save_ours(ws.root / "checkpoints" / "bymodule.pt", loaded.model, load_tokenizer(ws.tokenizer), 0, None,
                     val_fraction=0.3, split="module")
    src = shared_corpus("acornlib-2025-11")
    data = copy_slice(src, tmp_path / "proofs", 300)
    shutil.copyfile(src.parent / "manifest.jsonl", tmp_path / "manifest.jsonl")
    module_of = {r["file"]: r["module"] for r in map(json.loads, (tmp_path / "manifest.jsonl").read_text().splitlines())}
    held = sorted(pf.name for pf in iter_corpus(data) if is_validation_key(module_key(module_of[pf.name]), 0.3))
    assert 0 < len(held) < 300
    report = evaluate(ckpt, data, k=1, max_tokens=4, limit=20)
    assert report.split_by == "module" and report.goals == min(20, len(held))
    assert main(["eval", str(ckpt), "--data-dir", str(data), "--k", "1", "--limit", "3"]) == 0
    assert "validation split 0.3 by module" in capsys.readouterr().out


def test_cancel_stops_evaluation():
    from tactics_core.common.errors import Cancelled
    from tactics_core.common.progress import CancelToken

    ws = tiny_workspace()
    token = CancelToken()
    calls = []

    def progress(done, total, message):
        calls.append((done, total))
        if done == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        evaluate(ws.checkpoint, ws.data_dir, k=2, progress=progress, cancel=token)
    assert calls[-1][0] == 3 and calls[-1][1] > 3


# ---------------------------------------------------------------- the prover's figures


@pytest.fixture(scope="module")
def prover_reports(tmp_path_factory):
    """The prover-layout tiny model and an untrained one of the same shape, scored the prover's way."""
    import torch

    from helpers_models import save_ours
    from tactics_core.gpt.model import GPT
    from tactics_core.gpt.tokenizer import load_tokenizer
    from tactics_core.runs.checkpoints import load_model

    torch.set_num_threads(1)
    ws = tiny_workspace("prover")
    trained = evaluate(ws.checkpoint, ws.data_dir, k=8, seed=3)
    torch.manual_seed(0)
    shape = load_model(ws.checkpoint).config
    # Outside the shared workspace: other tests list its checkpoints.
    blank = save_ours(tmp_path_factory.mktemp("blank") / "blank.pt", GPT(shape).eval(), load_tokenizer(ws.tokenizer), 0, None)
    untrained = evaluate(blank, ws.data_dir, k=8, seed=3, time_attempts=False)
    return trained, untrained


def test_prover_figures_of_a_trained_model(prover_reports):
    trained, untrained = prover_reports
    ws = tiny_workspace("prover")
    _, val = split_corpus(list(iter_corpus(ws.data_dir)), 0.1)
    assert trained.layout == "prover" and untrained.layout == "file"  # save_ours records no layout
    assert trained.prover_lines == sum(len(pf.proof or ()) for pf in val)
    assert trained.prover_exact_match_at_k == trained.prover_matched / trained.prover_lines
    assert trained.prover_exact_match_at_k > 0.2 > untrained.prover_exact_match_at_k
    assert 0 < trained.proof_bpb < untrained.proof_bpb
    assert trained.first_line_marker_rate < 0.2  # it learned to write a proof line after the prover's nl
    assert 0.0 <= trained.overflow_rate <= 1.0 and trained.overflow_goals == round(trained.overflow_rate * sum(1 for pf in val if pf.proof))
    assert trained.attempts_per_5s > 1 and trained.attempt_ms > 0
    # Proof bytes: every gold line plus its newline, for goals whose stream fits the context.
    assert trained.proof_bytes <= sum(len(line.encode()) + 1 for pf in val for line in (pf.proof or ()))


def test_prover_figures_are_seeded_and_agree_on_both_backends(prover_reports):
    trained, _ = prover_reports
    ws = tiny_workspace("prover")
    again = evaluate(ws.checkpoint, ws.data_dir, k=8, seed=3, time_attempts=False, layout_exact_match=False)
    assert (again.prover_matched, again.first_line_marker_rate) == (trained.prover_matched, trained.first_line_marker_rate)
    onnx = evaluate(tiny_export("prover").path, ws.data_dir, k=8, seed=3, threads=1, time_attempts=False)
    assert onnx.backend == "onnx" and onnx.layout == "prover"
    assert onnx.proof_bpb == pytest.approx(trained.proof_bpb, rel=1e-4)
    assert abs(onnx.prover_matched - trained.prover_matched) <= 1  # samples agree but for float ties


def test_all_scores_every_file_and_cli_json_has_the_keys(capsys):
    from tactics_core.cli import main

    ws = tiny_workspace("prover")
    files = list(iter_corpus(ws.data_dir))
    report = evaluate(ws.checkpoint, ws.data_dir, k=1, limit=5, all_files=True, time_attempts=False)
    assert report.split == "all" and report.goals == 5
    assert [pf.name for pf in files[:5]] == sorted(pf.name for pf in files)[:5]
    assert main(["eval", str(ws.checkpoint), "--data-dir", str(ws.data_dir), "--k", "2", "--limit", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("bpb", "exact_match_at_k", "proof_bpb", "prover_exact_match_at_k", "first_line_marker_rate",
                "overflow_rate", "attempts_per_5s"):
        assert key in out, key
    assert out["layout"] == "prover" and out["goals"] == 3


def test_crash_goal_rate_is_the_chance_a_search_meets_a_crashing_line():
    from tactics_core.gpt.evaluate import crash_goal_rate

    assert crash_goal_rate(0.0, 500) == 0.0
    assert crash_goal_rate(0.01, 100) == pytest.approx(1 - 0.99**100)  # 0.634: one in a hundred lines is enough
    assert crash_goal_rate(None, 500) is None and crash_goal_rate(0.01, None) is None


def test_a_large_split_is_scored_on_a_stable_bounded_sample(tmp_path, capsys):
    from tactics_core.cli import main

    ws = tiny_workspace()
    data = tmp_path / "proofs"
    write_family_files(data, 60)
    whole = evaluate(ws.untrained, data, k=1, max_tokens=2, sample=0, all_files=True)
    first = evaluate(ws.untrained, data, k=1, max_tokens=2, sample=7, all_files=True)
    again = evaluate(ws.untrained, data, k=1, max_tokens=2, sample=7, all_files=True)
    assert whole.goals == whole.split_goals == first.split_goals == 60
    same = ("goals", "lines", "matched", "proof_bpb", "prover_matched", "prover_lines", "tokens")
    assert first.goals == 7 and [getattr(first, k) for k in same] == [getattr(again, k) for k in same]
    assert first.lines != whole.lines
    assert main(["eval", str(ws.untrained), "--data-dir", str(data), "--all", "--k", "1", "--sample", "7"]) == 0
    assert "7 of 60 (a stable sample; --sample 0 for all)" in capsys.readouterr().out
    with pytest.raises(TacticsError, match="--sample must be 0"):
        evaluate(ws.untrained, data, sample=-1)


def test_a_stage_runs_alone(trained_report):
    """The stages of `evaluate` are functions of their own: the goals chosen, then one figure."""
    from tactics_core.gpt.complete import Completer
    from tactics_core.gpt.evaluate import select_files, stream_figures

    ws = tiny_workspace()
    completer = Completer.load(ws.checkpoint, device="cpu")
    chosen = select_files(completer, ws.data_dir)
    _, val = split_corpus(list(iter_corpus(ws.data_dir)), 0.1)
    assert [pf.name for pf in chosen.files] == sorted(pf.name for pf in val)
    assert chosen.in_split == trained_report.split_goals and chosen.split_by == "theorem"
    figures = stream_figures(completer, chosen.files)
    assert figures.proof_bytes == trained_report.proof_bytes
    assert figures.proof_bpb == pytest.approx(trained_report.proof_bpb, rel=1e-9)
    assert [pf.name for pf in select_files(completer, ws.data_dir, limit=2).files] == [pf.name for pf in chosen.files[:2]]
