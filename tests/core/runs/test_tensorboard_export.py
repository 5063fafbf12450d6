"""`tactics runs export NAME --tensorboard DIR`: a real small run of each model kind written in
TensorBoard's format and read back with TensorBoard's own reader (EventAccumulator), whose
scalars must be the run's events, step for step; the refusals (an unknown run, an existing
export folder, tensorboard missing) are one line each and write nothing."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed (pip install 'tactics-tui[tensorboard]')")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from tactics_core.cli import main  # noqa: E402
from tactics_core.common.errors import TacticsError  # noqa: E402
from tactics_core.runs import tensorboard_export  # noqa: E402
from tactics_core.runs.run_events import EvalEvent, StepEvent, read_metrics  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scorer"))
from trace_helpers import search_rows, write_trace  # noqa: E402

TINY = [
    "model.d_model=32", "model.n_layers=1", "model.n_heads=2", "model.context_length=48",
    "training.batch_size=4", "training.eval_interval=3", "training.eval_batches=2",
    "training.warmup_steps=1", "training.num_threads=1",
]


def _sets(items):
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """One workspace with a tiny GPT run (the demo corpus; `tactics train`) and a tiny scorer run
    (traces in acorn's format; the same trainer), both real."""
    from tactics_core.runs import workspace_runs
    from tactics_core.training.loop import train
    from tactics_core.training.presets import apply_overrides, load_preset

    root = tmp_path_factory.mktemp("tbws")
    data, ck = root / "data" / "proofs", root / "checkpoints"
    assert main(["demo", "--data-dir", str(data), "--files", "60"]) == 0
    assert main(["tokenizer", "train", "--data-dir", str(data), "--output-dir", str(ck), "--vocab-size", "300"]) == 0
    assert main(["train", "--preset", "tiny", "--data-dir", str(data), "--checkpoint-dir", str(ck), "--max-steps", "7",
                 "--run-name", "gpt", "--metrics-interval", "0", *_sets(TINY)]) == 0

    traces = root / "traces"
    train_rows, val_rows = [], []
    for g in range(12):
        train_rows += search_rows("nat", f"train_{g}", 8, used=(1, 3), bucket=0)
        val_rows += search_rows("nat", f"val_{g}", 8, used=(2,), bucket=90, outcome="Success" if g % 2 else "Timeout")
    write_trace(traces / "depth-first-b00.jsonl.zst", train_rows)
    write_trace(traces / "depth-first-b90.jsonl.zst", val_rows)
    preset = apply_overrides(load_preset("scorer"), [
        "training.max_steps=6", "training.eval_interval=3", "training.batch_size=64", "training.device=cpu"])
    folder = workspace_runs.new_run(ck, "scorer", name="scorer", needs_tokenizer=False)
    result = train(preset, traces, folder, handle_signals=False, metrics_interval=0)
    assert result.reason == "finished", result.message
    return ck


def _read(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def _expected(run_folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every number of the run's step and eval events, by tag, read straight from metrics.jsonl."""
    want: dict[str, list[tuple[int, float]]] = {}
    for event in read_metrics(run_folder / "metrics.jsonl"):
        prefix = {StepEvent: "train", EvalEvent: "eval"}.get(type(event))
        if prefix is None:
            continue
        for key, value in json.loads(json.dumps(event.to_record())).items():
            if key in ("event", "step", "total_steps", "patience", "time") or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                want.setdefault(f"{prefix}/{key}", []).append((int(event.step), float(value)))
    return want


def _assert_same(acc: EventAccumulator, want: dict[str, list[tuple[int, float]]]) -> None:
    assert sorted(acc.Tags()["scalars"]) == sorted(want)
    for tag, points in want.items():
        got = [(s.step, s.value) for s in acc.Scalars(tag)]
        assert [s for s, _ in got] == [s for s, _ in points], tag
        for (_, g), (_, w) in zip(got, points):
            assert (math.isnan(g) and math.isnan(w)) or g == pytest.approx(w, rel=1e-6, abs=1e-9), (tag, got, points)


def _text(acc: EventAccumulator, tag: str) -> str:
    return acc.Tensors(f"{tag}/text_summary")[0].tensor_proto.string_val[0].decode("utf-8")


def test_a_gpt_run_reads_back_with_tensorboards_reader(workspace, tmp_path, capsys):
    out = tmp_path / "tb"
    assert main(["runs", "export", "gpt", "--tensorboard", str(out), "--checkpoint-dir", str(workspace)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / 'gpt'}" in printed and "tensorboard --logdir" in printed
    assert [p.name for p in out.iterdir()] == ["gpt"]  # the run's name is the sub-folder; no temp folder left
    acc = _read(out / "gpt")
    want = _expected(workspace / "runs" / "gpt")
    for tag in ("train/loss", "train/lr", "train/tokens_per_s", "train/grad_norm", "eval/val_loss", "eval/proof_loss", "eval/proof_bpb"):
        assert tag in want, tag
    assert [s for s, _ in want["train/loss"]] == list(range(1, 8)) and [s for s, _ in want["eval/val_loss"]] == [3, 6, 7]
    _assert_same(acc, want)
    preset = _text(acc, "settings/preset")
    assert "[model]" in preset and "d_model = 32" in preset and "[training]" in preset
    assert "preset: tiny" in _text(acc, "run/start") and "finished" in _text(acc, "run/end")
    assert "_hparams_/experiment" in acc.PluginTagToContent("hparams")


def test_a_scorer_run_exports_its_own_figures(workspace, tmp_path):
    done = tensorboard_export.export_runs(workspace, tmp_path / "tb", ["scorer"])
    assert [d.run for d in done] == ["scorer"]
    acc = _read(tmp_path / "tb" / "scorer")
    want = _expected(workspace / "runs" / "scorer")
    for tag in ("eval/val_loss", "eval/auc", "eval/used_rank", "eval/top10_hit", "train/loss", "train/lr"):
        assert tag in want, tag
    assert [s for s, _ in want["eval/auc"]] == [3, 6]
    _assert_same(acc, want)
    assert "kind: scorer" in _text(acc, "run/start") and "train_buckets" in _text(acc, "settings/preset")


def test_all_runs_existing_folders_and_unknown_runs(workspace, tmp_path, capsys):
    out = tmp_path / "tb"
    assert main(["runs", "export", "--all", "--tensorboard", str(out), "--checkpoint-dir", str(workspace)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["gpt", "scorer"]
    capsys.readouterr()
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    # An existing export folder: refused in one line, nothing touched; --force replaces it whole.
    assert main(["runs", "export", "gpt", "--tensorboard", str(out), "--checkpoint-dir", str(workspace)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists already" in err and "--force" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main(["runs", "export", "gpt", "--tensorboard", str(out), "--checkpoint-dir", str(workspace), "--force"]) == 0
    assert "replaced" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["gpt", "scorer"]
    _assert_same(_read(out / "gpt"), _expected(workspace / "runs" / "gpt"))

    # An unknown run among known ones: one line, and nothing written for the others.
    fresh = tmp_path / "fresh"
    assert main(["runs", "export", "gpt", "nope", "--tensorboard", str(fresh), "--checkpoint-dir", str(workspace)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run named 'nope'" in err
    assert not fresh.exists()
    assert main(["runs", "export", "--tensorboard", str(fresh), "--checkpoint-dir", str(workspace)]) == 2
    assert "name the run" in capsys.readouterr().err


def test_without_tensorboard_the_export_says_what_to_install(workspace, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if the package were missing
    with pytest.raises(TacticsError) as err:
        tensorboard_export.export_runs(workspace, tmp_path / "tb", ["gpt"])
    assert "pip install 'tactics-tui[tensorboard]'" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "tb").exists()


def test_a_resumed_run_keeps_the_later_value_of_a_step():
    from tactics_core.runs.run_events import StartEvent

    events = [
        StartEvent(step=0), StepEvent(step=1, loss=3.0), StepEvent(step=2, loss=2.5), StepEvent(step=3, loss=2.4),
        StartEvent(step=2, resumed_from="checkpoint_step_2.pt"), StepEvent(step=3, loss=2.2), EvalEvent(step=3, val_loss=2.0, auc=0.7),
    ]
    scalars = tensorboard_export.run_scalars(events)
    assert {s: p.value for s, p in scalars["train/loss"].items()} == {1: 3.0, 2: 2.5, 3: 2.2}
    assert scalars["eval/auc"][3].value == 0.7 and "eval/patience" not in scalars and "eval/improved" not in scalars
    fresh = tensorboard_export.run_scalars([*events, StartEvent(step=0), StepEvent(step=1, loss=9.0)])
    assert {s: p.value for s, p in fresh["train/loss"].items()} == {1: 9.0}  # a new run in the folder starts over
