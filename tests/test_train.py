"""The trainer, in process with tiny models: exact resume, early stop, NaN stop,
tokenizer checks, original-format resume, metrics schema, schedule."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

from tactics_core import data as D
from tactics_core import run_events, runs
from tactics_core.checkpoints import load_checkpoint
from tactics_core.errors import TacticsError
from tactics_core.presets import apply_overrides, load_preset
from tactics_core.progress import CancelToken
from tactics_core.tokenizer import train_tokenizer
from tactics_core.train import LoopState, lr_at, train

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
    "optimizer,precision,renamed", [("adamw", "fp32", 0), ("muon", "fp32", 0), ("muon", "bf16", 0), ("adamw", "fp32", 2)]
)
def test_resume_gives_bitwise_the_same_loss_at_every_step(base, tmp_path, optimizer, precision, renamed):
    data_dir, tok = base
    p = preset("training.grad_accum_steps=2", "training.max_steps=10", f"training.optimizer={optimizer}",
               f"training.precision={precision}", f"training.rename_variants={renamed}")
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
    from tactics_core import device as dev

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
