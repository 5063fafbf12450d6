"""The trainer, in process with tiny models: exact resume, early stop, NaN stop,
tokenizer checks, original-format resume, metrics schema, schedule."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken
from tactics_core.gpt import data as D
from tactics_core.gpt.tokenizer import train_tokenizer
from tactics_core.runs import run_events, run_folder
from tactics_core.runs.checkpoints import load_checkpoint
from tactics_core.gpt.kind import batch_loss_sum
from tactics_core.training.loop import LoopState, lr_at, train
from tactics_core.training.presets import apply_overrides, load_preset

from conftest import copy_slice, shared_corpus

TINY = [
    "model.d_model=32",
    "model.n_layers=1",
    "model.n_heads=2",
    "model.context_length=48",
    "model.dropout=0.1",
    "training.batch_size=4",
    "training.learning_rate=0.003",
    "training.min_lr=0.0003",
    "training.warmup_steps=2",
    "training.eval_interval=3",
    "training.eval_batches=2",
    "training.save_interval=4",
    "training.keep_checkpoints=2",
    "training.num_threads=1",
    "training.device=cpu",
]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A real 60-file slice and a small tokenizer, built once."""
    root = tmp_path_factory.mktemp("train")
    data_dir = copy_slice(shared_corpus("acornlib-2025-11"), root / "proofs", 60, start=1200)
    train_tokenizer(data_dir, root / "tok", vocab_size=400, kind="lines")
    return data_dir, root / "tok" / "tokenizer.json"


def run_dir(tmp_path: Path, tokenizer: Path, name: str = "ck") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    shutil.copyfile(tokenizer, folder / "tokenizer.json")
    return folder


def preset(*extra: str):
    return apply_overrides(load_preset("tiny"), TINY + list(extra))


def events(folder: Path, kind: str | None = None) -> list[dict]:
    evs = run_events.read_metrics(folder / "metrics.jsonl")
    return [e for e in evs if kind is None or e["event"] == kind]


def test_schedule_warms_up_then_decays_to_min_lr():
    lrs = [lr_at(s, 100, 10, 1e-3, 1e-4) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[-1] == pytest.approx(1e-4, rel=0.01)


@pytest.mark.parametrize(
    "optimizer,precision,renamed,sampled",
    [("adamw", "fp32", 0, False), ("muon", "fp32", 0, True), ("muon", "bf16", 0, False), ("adamw", "fp32", 2, False)],
)
def test_resume_gives_bitwise_the_same_loss_at_every_step(base, tmp_path, optimizer, precision, renamed, sampled):
    data_dir, tok = base
    p = preset("training.grad_accum_steps=2", "training.max_steps=10", f"training.optimizer={optimizer}",
               f"training.precision={precision}", f"training.rename_variants={renamed}",
               "training.context_weight=0.5", f"training.context_sampling={str(sampled).lower()}")
    straight = run_dir(tmp_path, tok, "straight")
    result = train(p, data_dir, straight, metrics_interval=0, handle_signals=False)
    assert result.reason == "finished" and result.step == 10
    want = {e["step"]: e["loss"] for e in events(straight, "step")}
    assert sorted(want) == list(range(1, 11))

    split = run_dir(tmp_path, tok, "split")
    cancel = CancelToken()

    def stop_at_5(ev):
        if ev["event"] == "step" and ev["step"] == 5:
            cancel.cancel()

    first = train(p, data_dir, split, cancel=cancel, on_event=stop_at_5, metrics_interval=0, handle_signals=False)
    assert first.reason == "stopped" and first.step == 5
    assert (split / "checkpoint_step_5.pt").is_file()  # the final checkpoint of a stopped run
    second = train(None, data_dir, split, resume=split / "checkpoint_step_5.pt", metrics_interval=0, handle_signals=False)
    assert second.reason == "finished" and second.step == 10
    got = {e["step"]: e["loss"] for e in events(split, "step")}
    assert got == want  # exact float equality, dropout on, accumulation on
    want_eval = [(e["step"], e["val_loss"]) for e in events(straight, "eval")]
    got_eval = [(e["step"], e["val_loss"]) for e in events(split, "eval")]
    assert got_eval == want_eval
    starts = events(split, "start")
    assert starts[1]["resumed_from"].endswith("checkpoint_step_5.pt") and starts[1]["note"] == ""
    assert [s["precision"] for s in starts] == [precision, precision]  # the resume keeps the run's precision


def test_bf16_autocast_runs_the_steps_in_bf16_and_keeps_the_weights_fp32(base, tmp_path):
    data_dir, tok = base
    losses = {}
    for precision in ("fp32", "bf16"):
        folder = run_dir(tmp_path, tok, precision)
        result = train(preset("training.max_steps=4", f"training.precision={precision}"), data_dir, folder,
                       metrics_interval=0, handle_signals=False)
        assert result.reason == "finished"
        assert events(folder, "start")[0]["precision"] == precision
        losses[precision] = [e["loss"] for e in events(folder, "step")]
        weights = load_checkpoint(folder / "best_model.pt")["model"]
        assert {t.dtype for t in weights.values()} == {torch.float32}
    assert all(math.isfinite(x) for x in losses["bf16"])
    assert losses["bf16"][0] == pytest.approx(losses["fp32"][0], rel=0.02)  # same start, rounded matmuls
    assert losses["bf16"] != losses["fp32"]  # the autocast is really on


def test_precision_rule(monkeypatch):
    from tactics_core.common import device as dev

    assert dev.resolve_precision("fp32", "cuda") == "fp32"
    assert dev.resolve_precision("bf16", "cpu") == "bf16"  # forced on a CPU: allowed
    assert dev.resolve_precision("auto", "cpu") == "fp32"  # no gain on CPUs (docs/training.md)
    assert dev.resolve_precision("auto", "mps") == "fp32"
    with pytest.raises(TacticsError, match="no bf16 autocast"):
        dev.resolve_precision("bf16", "mps")
    with pytest.raises(TacticsError, match="unknown precision"):
        dev.resolve_precision("fp16", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for native, want in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: native)
        assert dev.resolve_precision("auto", "cuda:0") == want


def test_a_checkpoint_from_before_loop_state_still_resumes_exactly(base, tmp_path):
    """Checkpoints written before LoopState hold their train_state key by key without `step`
    (the step was only `global_step`): they resume bitwise as before."""
    data_dir, tok = base
    p = preset("training.max_steps=8")
    straight = run_dir(tmp_path, tok, "straight")
    train(p, data_dir, straight, metrics_interval=0, handle_signals=False)
    want = {e["step"]: e["loss"] for e in events(straight, "step")}

    split = run_dir(tmp_path, tok, "split")
    cancel = CancelToken()

    def stop_at_3(ev):
        if ev["event"] == "step" and ev["step"] == 3:
            cancel.cancel()

    train(p, data_dir, split, cancel=cancel, on_event=stop_at_3, metrics_interval=0, handle_signals=False)
    path = split / "checkpoint_step_3.pt"
    payload = load_checkpoint(path)
    assert payload["train_state"].pop("step") == 3  # the old layout: everything else is as it was
    torch.save(payload, path)
    second = train(None, data_dir, split, resume=path, metrics_interval=0, handle_signals=False)
    assert second.reason == "finished" and second.step == 8
    assert {e["step"]: e["loss"] for e in events(split, "step")} == want
    assert events(split, "start")[-1]["note"] == ""


def test_loop_state_round_trips_through_its_dict():
    state = LoopState(step=7, total_steps=20, data_epoch=1, data_batch=3, best_score=2.5, select_by="proof_loss",
                      bad_evals=2, tokens_seen=900, elapsed_s=12.0, train_rows=40, data_seed=5, world_size=2,
                      rng={"torch": 1}, rng_ranks=[{"torch": 1}, {"torch": 2}])
    back = LoopState.from_dict(state.to_dict())
    assert back.elapsed_s >= 12.0
    back.elapsed_s = 12.0
    assert back == state
    fresh = LoopState.from_dict({"data_epoch": 0, "data_batch": 2}, step=3)  # the fewest keys a resume reads
    assert (fresh.step, fresh.best_score, fresh.bad_evals, fresh.train_rows, fresh.world_size) == (3, math.inf, 0, None, 1)
    # A train_state saved before the best score was named for what it holds.
    old = {k: v for k, v in state.to_dict().items() if k != "best_score"} | {"best_val_loss": 2.5}
    assert LoopState.from_dict(old).best_score == 2.5


def test_metrics_schema_and_checkpoints(base, tmp_path):
    data_dir, tok = base
    folder = run_dir(tmp_path, tok)
    result = train(preset("training.max_steps=9"), data_dir, folder, metrics_interval=0, handle_signals=False)
    assert result.reason == "finished"
    evs = events(folder)
    assert evs[0]["event"] == "start" and evs[-1]["event"] == "end"
    start = evs[0]
    for key in ("step", "total_steps", "resumed_from", "params", "config", "device", "data", "tokenizer"):
        assert key in start
    assert start["total_steps"] == 9 and start["config"]["model"]["d_model"] == 32
    for e in events(folder, "step"):
        assert {"step", "epoch", "loss", "lr", "tokens_per_s", "elapsed_s"} <= e.keys()
        assert e["tokens_per_s"] > 0 and math.isfinite(e["loss"])
    evals = events(folder, "eval")
    assert [e["step"] for e in evals] == [3, 6, 9]
    for e in evals:
        assert {"step", "val_loss", "val_bpb", "select_by", "best_score", "bad_evals", "patience"} <= e.keys()
        # bits/byte = nats/token / ln 2 * tokens/byte
        assert e["val_bpb"] == pytest.approx(e["val_loss"] / math.log(2) * e["val_tokens"] / e["val_bytes"])
    cps = events(folder, "checkpoint")
    assert any(c["best"] for c in cps) and any(not c["best"] for c in cps)
    assert evs[-1]["reason"] == "finished"
    # The best score and the figure it is, in the end event and the result alike.
    assert evs[-1]["best_score"] == result.best_score == evals[-1]["best_score"]
    assert evs[-1]["select_by"] == result.select_by == evals[-1]["select_by"]
    # Retention: the last 2 periodic checkpoints + best_model.pt.
    names = sorted(p.name for p in folder.glob("*.pt"))
    assert names == ["best_model.pt", "checkpoint_step_8.pt", "checkpoint_step_9.pt"]
    payload = load_checkpoint(folder / "checkpoint_step_9.pt")
    assert payload["global_step"] == 9 and "optimizer" in payload and "rng" in payload["train_state"]
    # Checkpoints keep the original scripts' key for it (checkpoints.BEST_SCORE_KEY).
    assert payload["best_val_loss"] == payload["train_state"]["best_score"] == result.best_score
    state = run_folder.read_run_state(folder)
    assert state.state == "finished" and not state.alive and state.step == 9
    from tactics_core.runs.checkpoints import load_model

    best = load_model(folder / "best_model.pt")  # model-only, still loads for export/completion
    assert best.config.d_model == 32


@pytest.mark.parametrize("patience, reason, steps", [(2, "early_stop", 3), (0, "finished", 5)])
def test_early_stop_when_validation_cannot_improve(base, tmp_path, patience, reason, steps):
    """patience 2: the first eval sets the best, two more without improvement end the run;
    patience 0: no number of evaluations without a better figure ends it."""
    data_dir, tok = base
    folder = run_dir(tmp_path, tok)
    p = preset(
        "training.learning_rate=1e-12", "training.muon_lr=1e-12", "training.min_lr=0", "training.weight_decay=0",
        "training.eval_interval=1", f"training.patience={patience}", "training.max_steps=5",
    )
    result = train(p, data_dir, folder, metrics_interval=0, handle_signals=False)
    assert result.reason == reason and result.step == steps
    assert [e["bad_evals"] for e in events(folder, "eval")] == list(range(steps))
    end = events(folder, "end")[-1]
    assert end["reason"] == reason and (folder / f"checkpoint_step_{steps}.pt").is_file()
    assert (folder / "best_model.pt").is_file()


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(base, tmp_path, monkeypatch):
    data_dir, tok = base
    folder = run_dir(tmp_path, tok)
    real = D.masked_nll_sum
    calls = {"n": 0}

    def poisoned(logits, targets, weights=None):
        out = real(logits, targets, weights)
        if logits.requires_grad:
            calls["n"] += 1
            if calls["n"] == 6:
                return out * float("nan")
        return out

    monkeypatch.setattr(D, "masked_nll_sum", poisoned)
    result = train(preset("training.max_steps=20"), data_dir, folder, metrics_interval=0, handle_signals=False)
    assert result.reason == "failed" and result.step == 5
    assert "nan" in result.message and "checkpoint_step_4.pt" in result.message
    assert not (folder / "checkpoint_step_5.pt").exists()
    end = events(folder, "end")[-1]
    assert end["reason"] == "failed" and "diverged" in end["message"]
    assert run_folder.read_run_state(folder).state == "failed"


def test_resume_refuses_another_tokenizer(base, tmp_path):
    data_dir, tok = base
    folder = run_dir(tmp_path, tok)
    train(preset("training.max_steps=2"), data_dir, folder, metrics_interval=0, handle_signals=False)
    other = tmp_path / "other"
    train_tokenizer(data_dir, other, vocab_size=300, kind="lines")
    shutil.copyfile(other / "tokenizer.json", folder / "tokenizer.json")
    with pytest.raises(TacticsError) as err:
        train(None, data_dir, folder, resume=folder / "checkpoint_step_2.pt", max_steps=4, handle_signals=False)
    msg = str(err.value)
    assert "vocab 400" in msg and "vocab 300" in msg and "\n" not in msg


def test_missing_tokenizer_says_what_to_run(base, tmp_path):
    data_dir, _ = base
    with pytest.raises(TacticsError, match="tactics tokenizer train"):
        train(preset("training.max_steps=2"), data_dir, tmp_path / "empty", handle_signals=False)
    assert not (tmp_path / "empty").exists()  # refused before touching the folder


def test_second_run_into_a_live_folder_is_refused(base, tmp_path):
    data_dir, tok = base
    folder = run_dir(tmp_path, tok)
    with run_folder.RunRecorder(folder):  # another run holds the folder
        assert run_folder.read_run_state(folder).alive
        with pytest.raises(TacticsError, match="already active"):
            train(preset("training.max_steps=2"), data_dir, folder, handle_signals=False)
    assert not run_folder.read_run_state(folder).alive


def test_original_format_checkpoint_resumes_approximately(base, tmp_path):
    from tactics_core.gpt.model import GPT

    data_dir, tok = base
    folder = run_dir(tmp_path, tok)
    from tactics_core.gpt.tokenizer import load_tokenizer

    vocab = load_tokenizer(folder / "tokenizer.json").vocab_size
    p = preset()
    config = p.model.gpt_config(vocab)
    model = GPT(config)
    state = model.state_dict()
    ctx = config.context_length
    for i in range(config.n_layers):  # the original scripts kept a causal-mask buffer per block
        state[f"blocks.{i}.attn.mask"] = torch.tril(torch.ones(ctx, ctx)).view(1, 1, ctx, ctx)
    original = {
        "model": state,
        "optimizer": torch.optim.AdamW(model.parameters(), lr=1e-3).state_dict(),
        "model_config": {"vocab_size": vocab, "context_length": ctx, "d_model": 32, "n_layers": 1, "n_heads": 2, "dropout": 0.1},
        "epoch": 1,
        "global_step": 3,
        "best_val_loss": 9.0,
        "tokenizer_path": str(folder),
    }
    torch.save(original, folder / "checkpoint_step_3.pt")
    result = train(None, data_dir, folder, resume=folder / "checkpoint_step_3.pt", max_steps=6, metrics_interval=0, handle_signals=False)
    assert result.reason == "finished" and result.step == 6
    start = events(folder, "start")[-1]
    assert start["step"] == 3 and "approximately" in start["note"]
    # Their default preset shaped like the model: 1 layer of width 32.
    assert start["config"]["model"]["d_model"] == 32 and start["config"]["model"]["n_layers"] == 1
    assert [e["step"] for e in events(folder, "step")] == [4, 5, 6]


# ---------------------------------------------------------------- the prover layout's objective


def test_context_weight_weighs_prompt_targets_and_proof_figures_are_reported(base, tmp_path):
    data_dir, tok = base
    losses = {}
    for w in (1.0, 0.0):
        folder = run_dir(tmp_path, tok, f"w{w}")
        # Context 160: the prover keeps 60 prompt tokens (at 48 it would keep 1).
        result = train(preset("training.max_steps=6", f"training.context_weight={w}", "model.context_length=160"), data_dir, folder,
                       metrics_interval=0, handle_signals=False)
        assert result.reason == "finished"
        losses[w] = [e["loss"] for e in events(folder, "step")]
        for e in events(folder, "eval"):
            assert e["select_by"] == "proof_loss" and math.isfinite(e["proof_loss"])
            assert e["proof_bpb"] == pytest.approx(e["proof_loss"] / math.log(2) * e["proof_tokens"] / e["proof_bytes"])
            assert 0 < e["proof_tokens"] < e["val_tokens"]
        assert events(folder, "eval")[-1]["step"] == 6  # the final weights are evaluated too
    assert losses[0.0] != losses[1.0]


def _batch_and_model(base, tmp_path):
    from tactics_core.gpt.model import GPT, GPTConfig
    from tactics_core.gpt.tokenizer import load_tokenizer

    data_dir, tok_path = base
    tok = load_tokenizer(tok_path)
    ds = D.load_dataset(data_dir, tok, tmp_path / "cache", 160, val_fraction=0.2, seed=0, batch_size=4)
    batch = next(ds.train.iter_epoch(0, 4))
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, context_length=160, d_model=32, n_layers=1, n_heads=2)).eval()
    return batch, model


def _loss(model, batch, w, sample_seed=None):
    return float(batch_loss_sum(model, batch, w, "cpu", sample_seed=sample_seed))


def test_weighted_loss_is_proof_nll_plus_weighted_context_nll(base, tmp_path):
    batch, model = _batch_and_model(base, tmp_path)
    x, y = batch.to_torch("cpu")
    with torch.no_grad():
        full, _ = model(x)
        total, proof = D.masked_nll_split(full, y, torch.from_numpy(batch.proof))
        for w in (0.0, 0.3, 1.0):
            # The output layer runs on the positions the loss reads only, and gives the same sum.
            assert _loss(model, batch, w) == pytest.approx(float(proof) + w * float(total - proof), rel=1e-5)
        flat, _, _ = batch.loss_targets(1.0)
        picked, _ = model(x, select=torch.from_numpy(flat))
        assert picked.shape == (len(flat), model.config.vocab_size)
        assert torch.allclose(picked, full.reshape(-1, full.shape[-1])[flat], atol=1e-5)
    assert len(flat) == batch.n_tokens and len(batch.loss_targets(0.0)[0]) == batch.n_proof_tokens
    assert batch.weight_sum(0.3) == pytest.approx(batch.n_proof_tokens + 0.3 * (batch.n_tokens - batch.n_proof_tokens))
    assert 0 < batch.n_proof_tokens < batch.n_tokens


def test_sampled_context_loss_keeps_every_proof_target_and_is_the_weighted_loss_in_expectation(base, tmp_path):
    batch, model = _batch_and_model(base, tmp_path)
    w = 0.3
    with torch.no_grad():
        weighted = _loss(model, batch, w)
        draws = [_loss(model, batch, w, (1337, step)) for step in range(300)]
    proof_flat = set(batch.loss_targets(0.0)[0].tolist())
    kept = []
    for step in range(300):
        flat, targets, weights = batch.loss_targets(w, (1337, step))
        assert weights is None and proof_flat <= set(flat.tolist())
        kept.append(len(flat) - len(proof_flat))
    n_context = batch.n_tokens - batch.n_proof_tokens
    assert np.mean(kept) / n_context == pytest.approx(w, abs=0.02)
    assert np.mean(draws) == pytest.approx(weighted, rel=0.02)
    assert np.std(draws) > 0  # a real draw, not the weighted sum under another name
    # A pure function of (seed, step, row): the same again, another step another draw.
    again = batch.loss_targets(w, (1337, 7))[0]
    assert np.array_equal(again, batch.loss_targets(w, (1337, 7))[0])
    assert not np.array_equal(again, batch.loss_targets(w, (1337, 8))[0])


def test_select_by_decides_what_best_model_and_early_stop_follow(base, tmp_path):
    data_dir, tok = base
    folder = run_dir(tmp_path, tok)
    train(preset("training.max_steps=6", "training.select_by=val_loss"), data_dir, folder, metrics_interval=0, handle_signals=False)
    evs = events(folder, "eval")
    assert [e["select_by"] for e in evs] == ["val_loss"] * len(evs)
    assert evs[-1]["best_score"] == pytest.approx(min(e["val_loss"] for e in evs))
    best = load_checkpoint(folder / "best_model.pt")
    assert best["select_by"] == "val_loss" and best["layout"] == "prover"
    assert best["val_loss"] == pytest.approx(min(e["val_loss"] for e in evs))


def test_file_layout_still_trains_and_is_recorded(base, tmp_path):
    data_dir, tok = base
    folder = run_dir(tmp_path, tok)
    result = train(preset("training.max_steps=4", "training.layout=file"), data_dir, folder, metrics_interval=0, handle_signals=False)
    assert result.reason == "finished"
    assert events(folder, "start")[0]["data"]["layout"] == "file"
    assert load_checkpoint(folder / "checkpoint_step_4.pt")["layout"] == "file"


def test_an_out_of_memory_message_is_one_line_per_kind():
    from tactics_core.training.kinds import training_kind
    from tactics_core.training.loop import _oom_message

    gpt = _oom_message(training_kind("gpt"), load_preset("cpu"), "cuda:0")
    assert gpt == (
        "out of memory on cuda:0 at batch_size 8, context_length 384: lower training.batch_size or "
        "model.context_length (or raise training.grad_accum_steps to keep the effective batch)"
    )
    scorer = _oom_message(training_kind("scorer"), load_preset("scorer"), "cuda:0")
    assert scorer == "out of memory on cuda:0 at batch_size 4096 rows: lower training.batch_size"
