"""`training.budget.fit_steps`: the steps of a preset that fit a budget, measured on real batches
through the kind's own loss, for both kinds; the bench's `fit_steps` is it and prints as before.

No assertion reads a measured time: only what follows from the formula whatever the machine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tactics_core.training.budget import TIMED_STEPS, fit_steps
from tactics_core.training.presets import apply_overrides, load_preset

REPO = Path(__file__).resolve().parents[3]
FIXTURE = REPO / "tests" / "fixtures" / "acorn_eval_91f29ff1"

pytestmark = pytest.mark.slow


def test_a_scorer_preset_fits_a_budget_with_a_measured_evaluation(tmp_path):
    traces = tmp_path / "traces"
    traces.mkdir()
    for name in ("add_monoid_sample.jsonl.zst", "add_monoid_sample.meta.json"):
        shutil.copyfile(FIXTURE / name, traces / name)
    preset = apply_overrides(load_preset("scorer"), [
        'data.train_buckets="0-80"', 'data.val_buckets="81-99"', "training.batch_size=64", "training.num_threads=1",
    ])
    run = tmp_path / "checkpoints" / "runs" / "r"
    run.mkdir(parents=True)
    fit = fit_steps(preset, traces, run, budget_s=600.0, overhead_s=None, measure_eval=True, timed_steps=5)
    assert fit.evals_measured and fit.step_s > 0 and fit.eval_s > 0 and fit.read_s > 0
    assert fit.overhead_s == pytest.approx(fit.read_s + 2.0)
    per_step = fit.step_s * (1 + fit.eval_s / fit.step_s / preset.training.eval_interval)
    assert fit.steps == max(1, int((600.0 - fit.overhead_s) / per_step))
    assert "max_steps" in fit.line() and "measured" in fit.line()
    tiny = fit_steps(preset, traces, run, budget_s=1.0, overhead_s=5.0, timed_steps=2)
    assert tiny.steps == 1  # a budget smaller than the overhead still trains one step


def test_the_bench_fit_steps_is_the_core_one_and_prints_as_before(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    import time_to_quality

    from helpers_models import write_family_files
    from tactics_core.gpt.tokenizer import train_tokenizer

    data = tmp_path / "proofs"
    write_family_files(data, 60)
    train_tokenizer(data, tmp_path, vocab_size=300, kind="lines")
    preset = apply_overrides(load_preset("tiny"), [
        "model.d_model=32", "model.n_layers=1", "model.n_heads=2", "model.context_length=64", "training.batch_size=4",
        "training.num_threads=1", "training.eval_interval=10", "training.eval_batches=3",
    ])
    steps = time_to_quality.fit_steps(preset, data, tmp_path, budget_s=60.0, overhead_s=10.0)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("fit-steps: ") and f"(mean of {TIMED_STEPS} real batches) -> max_steps {steps} for 60 s" in line
    assert steps >= 1 and (tmp_path / "cache").is_dir()  # the token cache where a run in `work` finds it
