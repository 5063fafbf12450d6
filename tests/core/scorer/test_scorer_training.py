"""The scorer through the one training loop: data split by goal bucket, loss, figures, exact
resume, checkpoints, export that acorn 0.2.6's contract reads — on traces the test writes in
acorn's format (the reader itself is tested on a real trace in test_scorer_traces.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from trace_helpers import write_learnable_traces

from tactics_core.common.errors import TacticsError
from tactics_core.training.presets import PresetError, apply_overrides, load_preset
from tactics_core.runs.run_events import EvalEvent, StartEvent, StepEvent, read_metrics
from tactics_core.scorer import metrics
from tactics_core.scorer.data import build_data, trace_store_root
from tactics_core.scorer.trace_store import load_traces

@pytest.fixture
def traces(tmp_path):
    return write_learnable_traces(tmp_path / "traces")


def _preset(*extra):
    return apply_overrides(load_preset("scorer"), [
        'data.train_buckets="0-3"', 'data.val_buckets="90"', "training.batch_size=64", "training.max_steps=12",
        "training.eval_interval=4", "training.save_interval=4", "training.warmup_steps=2", "training.device=cpu",
        *extra,
    ])


def _train(preset, traces, folder, **kw):
    from tactics_core.training.loop import train

    return train(preset, traces, folder, metrics_interval=0, handle_signals=False, **kw)


def test_the_split_is_by_goal_bucket_and_batches_hold_whole_searches(traces):
    cols = load_traces([traces], trace_store_root(traces))
    data = build_data(cols, [], "0-3", "90", 2.0, 0, 1337, batches="searches")
    src = data.source
    assert set(src.search_bucket[data.train.searches]) <= {0, 1, 2, 3}
    assert set(src.search_bucket[data.val.searches]) == {90}
    order = data.train.epoch_order(0, 64)
    assert len(order) == data.train.n_rows == data.train.positives + data.train.keep_negatives
    assert data.train.keep_negatives == min(data.train.negatives, 2 * data.train.positives)
    batch = data.train.batch(order)
    assert batch.y.sum() == data.train.positives  # every used step is kept
    searches = src.search_first.searchsorted(order, side="right") - 1
    assert set(src.search_bucket[searches]) <= {0, 1, 2, 3}  # no validation row trains
    runs = np.count_nonzero(np.diff(searches)) + 1
    assert runs == len(np.unique(searches))  # each search's rows together
    assert np.array_equal(order, data.train.epoch_order(0, 64))  # a pure function of (seed, epoch)
    assert not np.array_equal(order, data.train.epoch_order(1, 64))


def test_row_batches_shuffle_the_kept_rows_per_epoch(traces):
    cols = load_traces([traces], trace_store_root(traces))
    data = build_data(cols, [], "0-3", "90", 2.0, 0, 1337)  # batches = "rows", the default
    src = data.source
    order = data.train.epoch_order(0, 64)
    assert len(order) == data.train.n_rows and len(np.unique(order)) == len(order)
    assert data.train.batch(order).y.sum() == data.train.positives  # every used step still kept
    searches = src.search_first.searchsorted(order, side="right") - 1
    assert set(src.search_bucket[searches]) <= {0, 1, 2, 3}
    assert np.count_nonzero(np.diff(searches)) + 1 > 2 * len(np.unique(searches))  # searches interleaved
    assert np.array_equal(order, data.train.epoch_order(0, 64))
    assert not np.array_equal(np.sort(order), np.sort(data.train.epoch_order(1, 64)))  # negatives drawn anew


def test_a_row_budget_takes_whole_searches_and_bounds_the_rows(traces):
    cols = load_traces([traces], trace_store_root(traces))
    full = build_data(cols, [], "0-3", "90", 0.0, 0, 1)
    budget = full.train.n_rows // 3
    small = build_data(cols, [], "0-3", "90", 0.0, 0, 1, max_train_rows=budget)
    assert 0 < small.train.n_rows <= budget and set(small.train.searches) < set(full.train.searches)
    src = small.source
    assert small.train.n_rows == int(src.search_rows[small.train.searches].sum())  # whole searches only
    again = build_data(cols, [], "0-3", "90", 0.0, 0, 1, max_train_rows=budget)
    assert np.array_equal(again.train.searches, small.train.searches)  # a stable sample


def test_a_preset_feature_subset_is_read_in_its_order_and_an_unknown_one_is_one_line(traces):
    cols = load_traces([traces], trace_store_root(traces))
    data = build_data(cols, ["goal_overlap", "depth"], "0-3", "90", 0.0, 0, 1)
    assert data.feature_names == ("goal_overlap", "depth")
    batch = data.val.chunks().__next__()
    assert batch.x.shape[1] == 2
    with pytest.raises(TacticsError) as err:
        build_data(cols, ["no_such_feature"], "0-3", "90", 0.0, 0, 1)
    assert "no_such_feature" in str(err.value) and "meta.json" in str(err.value) and "\n" not in str(err.value)


def test_missing_validation_buckets_say_which_buckets_the_traces_hold(traces):
    cols = load_traces([traces], trace_store_root(traces))
    with pytest.raises(TacticsError, match="no search in the validation buckets 95.*hold buckets 0-3,90"):
        build_data(cols, [], "0-3", "95", 0.0, 0, 1)


def test_scorer_presets_refuse_overlapping_buckets_and_gpt_keys():
    with pytest.raises(PresetError, match="must not overlap"):
        apply_overrides(load_preset("scorer"), ['data.train_buckets="0-95"'])
    with pytest.raises(PresetError, match="training.layout is a key of the GPT"):
        apply_overrides(load_preset("scorer"), ['training.layout="file"'])
    with pytest.raises(PresetError, match="data.loss must be one of"):
        apply_overrides(load_preset("scorer"), ['data.loss="hinge"'])
    with pytest.raises(PresetError, match='data.batches must be "searches" with loss = bce\\+rank'):
        apply_overrides(load_preset("scorer"), ['data.loss="bce+rank"'])
    assert apply_overrides(load_preset("scorer"), ['data.loss="bce+rank"', 'data.batches="searches"']).data.batches == "searches"


def test_the_figures_match_their_definitions():
    score = np.array([0.9, 0.1, 0.8, 0.3, 0.7, 0.2])
    used = np.array([1, 0, 0, 1, 0, 0])
    search = np.array([0, 0, 0, 1, 1, 1])
    pairs = [(score[i] > score[j]) + 0.5 * (score[i] == score[j]) for i in np.flatnonzero(used) for j in np.flatnonzero(used == 0)]
    assert metrics.auc(score, used) == pytest.approx(np.mean(pairs))
    tied = np.array([0.5, 0.5, 0.2, 0.5, 0.9, 0.2])  # ties count half
    pairs = [(tied[i] > tied[j]) + 0.5 * (tied[i] == tied[j]) for i in np.flatnonzero(used) for j in np.flatnonzero(used == 0)]
    assert metrics.auc(tied, used) == pytest.approx(np.mean(pairs))
    rank, hit, n = metrics.search_ranks(score, used, search)
    # search 0: the used step is first (share 0); search 1: second of three (share 0.5)
    assert (rank, n) == (pytest.approx(0.25), 2)
    assert hit == pytest.approx(0.5)


def test_the_ranking_term_is_the_softmax_cross_entropy_within_each_search():
    import torch

    from tactics_core.scorer.kind import rank_loss_sum

    logits = torch.tensor([2.0, 0.0, -1.0, 0.5, 0.5])
    used = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0])
    group = torch.tensor([7, 7, 7, 9, 9])  # search 9 has no used step: no term
    ls = torch.log_softmax(logits[:3], 0)
    want = 3 * -(ls[0] + ls[2]) / 2
    assert float(rank_loss_sum(logits, used, group)) == pytest.approx(float(want), rel=1e-6)


def test_a_scorer_trains_through_the_loop_and_records_its_figures(traces, tmp_path):
    folder = tmp_path / "checkpoints" / "runs" / "s"
    result = _train(_preset(), traces, folder)
    assert result.reason == "finished" and result.step == 12 and result.select_by == "used_rank"
    events = read_metrics(folder / "metrics.jsonl")
    start = next(e for e in events if isinstance(e, StartEvent))
    assert start.kind == "scorer" and start.unit == "rows" and start.data["val_searches"] == 12
    evals = [e for e in events if isinstance(e, EvalEvent)]
    assert [e.step for e in evals] == [4, 8, 12]
    assert all(0.5 < e.auc <= 1.0 and 0 <= e.used_rank <= 1 and e.val_bpb is None for e in evals)
    record = evals[0].to_record()
    assert "auc" in record and "proof_loss" in record  # a GPT field stays (null); GPT lines never gain scorer keys
    gpt_record = EvalEvent(step=1, val_loss=1.0).to_record()
    assert "auc" not in gpt_record and "used_rank" not in gpt_record
    from tactics_core.runs.checkpoints import checkpoint_kind, list_checkpoints

    assert checkpoint_kind(folder / "best_model.pt") == "scorer"
    assert {i.kind for i in list_checkpoints(folder)} == {"scorer"}
    assert not (folder / "tokenizer.json").exists()  # a scorer's run needs no tokenizer


@pytest.mark.parametrize("batches", ["rows", "searches"])
def test_a_killed_scorer_run_resumes_exactly(traces, tmp_path, batches):
    from tactics_core.common.progress import CancelToken

    preset = _preset("model.dropout=0.1", "data.negatives_per_positive=2.0", f'data.batches="{batches}"')  # dropout and sampling: RNG and data order
    straight = tmp_path / "checkpoints" / "runs" / "straight"
    _train(preset, traces, straight)
    want = {e.step: e.loss for e in read_metrics(straight / "metrics.jsonl") if isinstance(e, StepEvent)}
    halves = tmp_path / "checkpoints" / "runs" / "halves"
    cancel = CancelToken()

    def stop_at_6(ev):
        if isinstance(ev, StepEvent) and ev.step == 6:
            cancel.cancel()

    first = _train(preset, traces, halves, cancel=cancel, on_event=stop_at_6)
    assert first.reason == "stopped" and first.step == 6
    second = _train(None, traces, halves, resume=halves / "checkpoint_step_6.pt")
    assert second.reason == "finished" and second.step == 12
    got = {e.step: e.loss for e in read_metrics(halves / "metrics.jsonl") if isinstance(e, StepEvent)}
    assert got == want  # bitwise: the data order, the negatives drawn and the RNG continue exactly
    evals = lambda f: [(e.step, e.val_loss, e.used_rank) for e in read_metrics(f / "metrics.jsonl") if isinstance(e, EvalEvent)]
    assert evals(halves) == evals(straight)


def test_the_export_is_what_acorn_0_2_6_reads(traces, tmp_path):
    import onnx
    import onnxruntime as ort

    from tactics_core.training.kinds import export_checkpoint

    folder = tmp_path / "checkpoints" / "runs" / "s"
    _train(_preset("model.features=[\"goal_overlap\", \"depth\", \"age\"]"), traces, folder)
    out = tmp_path / "export" / "my-scorer"
    report = export_checkpoint(folder / "best_model.pt", out)
    assert report.ok and sorted(p.name for p in out.iterdir()) == ["config.json", "my-scorer.features.json", "my-scorer.onnx"]
    contract = json.loads((out / "my-scorer.features.json").read_text())
    assert contract == {"schema": "acorn-scorer-feature-contract-v1", "input_features": ["goal_overlap", "depth", "age"]}
    proto = onnx.load(str(out / "my-scorer.onnx"))
    opset = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    assert proto.ir_version <= 10 and opset <= 21
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    session = ort.InferenceSession(str(out / "my-scorer.onnx"), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.shape[1], outp.name, outp.shape[1]) == ("input", 3, "output", 1)
    probs = session.run(["output"], {"input": np.zeros((5, 3), np.float32)})[0]
    assert probs.shape == (5, 1) and np.all((probs > 0) & (probs < 1))
    assert any("real rows" in c.detail for c in report.checks)  # verified on rows of the run's own traces
    with pytest.raises(TacticsError, match="already exists"):
        export_checkpoint(folder / "best_model.pt", out)
    assert math.isfinite(report.max_abs_diff) and report.max_abs_diff <= 1e-5
