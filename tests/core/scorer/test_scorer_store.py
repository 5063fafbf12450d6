"""The column store: built once per trace content, reused memory-mapped without reading JSON,
rebuilt for a changed trace, never left half-built."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from trace_helpers import NAMES, make_row, search_rows, standard_rows, write_meta, write_trace

from tactics_core.common.errors import TacticsError
from tactics_core.scorer import trace_store, traces
from tactics_core.scorer.trace_store import KEEP_PER_TRACE, SEEN_DIR, load_columns, load_traces
from tactics_core.scorer.traces import Problem, TraceFileError, iter_rows


def store_folders(root):
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != SEEN_DIR)


@pytest.fixture
def no_reading(monkeypatch):
    """Make any read of a trace's rows fail: what runs after it must come from the store."""

    def refuse(*args, **kwargs):
        raise AssertionError("the trace's rows were read again")

    def arm():
        monkeypatch.setattr(traces, "iter_row_chunks", refuse)

    return arm


def test_columns_match_the_rows(tmp_path):
    trace = write_trace(tmp_path / "t.jsonl.zst", standard_rows())
    cols = load_columns(trace, tmp_path / "store")
    rows = list(iter_rows(trace))
    assert cols.rows == len(rows) == 13
    assert cols.feature_names == NAMES
    np.testing.assert_array_equal(cols.features, np.stack([r.features for r in rows]))
    assert cols.used.tolist() == [int(r.used) for r in rows]
    assert cols.activation.tolist() == [r.activation_index for r in rows]
    s = cols.searches
    assert len(s) == 3
    assert s.goal == ["add_comm", "mul_comm", "rev_rev"]
    assert s.module == ["nat", "nat", "list"]
    assert s.policy == ["depth-first", "depth-first", "model"]
    assert s.outcome == ["Success", "Timeout", "Inconsistent"]
    assert s.success.tolist() == [True, False, True]
    assert s.skip.tolist() == [0, 0, -1]
    assert s.bucket.tolist() == [3, 95, 95]
    assert s.first_row.tolist() == [0, 6, 10]
    assert s.rows.tolist() == [6, 4, 3]
    assert s.used_rows.tolist() == [2, 0, 1]
    assert cols.search.tolist() == [0] * 6 + [1] * 4 + [2] * 3
    assert s.info(2).skip is None and s.info(2).last_activation == 2
    assert cols.sha256 and cols.bytes == trace.stat().st_size and cols.source == trace


def test_reuse_reads_no_row_and_maps_read_only(tmp_path, no_reading, monkeypatch):
    trace = write_trace(tmp_path / "t.jsonl.zst", standard_rows())
    first = load_columns(trace, tmp_path / "store")
    no_reading()
    # an unchanged file is not even hashed again
    monkeypatch.setattr(trace_store, "file_sha256", lambda *a, **k: pytest.fail("hashed again"))
    again = load_columns(trace, tmp_path / "store")
    assert again.folder == first.folder
    assert isinstance(again.features, np.memmap) and not again.features.flags.writeable
    np.testing.assert_array_equal(again.features, first.features)
    assert again.searches.goal == first.searches.goal


def test_a_copied_or_touched_trace_is_hashed_and_reused(tmp_path, no_reading):
    trace = write_trace(tmp_path / "t.jsonl.zst", standard_rows())
    first = load_columns(trace, tmp_path / "store")
    copy = write_trace(tmp_path / "other" / "copy.jsonl.zst", standard_rows())
    later = time.time() + 5
    os.utime(trace, (later, later))
    no_reading()
    assert load_columns(trace, tmp_path / "store").folder == first.folder
    copied = load_columns(copy, tmp_path / "store")
    assert copied.folder == first.folder and copied.source == copy
    assert store_folders(tmp_path / "store") == [first.folder.name]


def test_reuse_reports_the_builds_problems_again(tmp_path, no_reading):
    rows = standard_rows()
    rows[2] = "not json"
    trace = write_trace(tmp_path / "t.jsonl.zst", rows)
    built: list[Problem] = []
    cols = load_columns(trace, tmp_path / "store", on_problem=built.append)
    assert len(built) == 1 and built[0].line == 3 and cols.rows == 12
    no_reading()
    reused: list[Problem] = []
    cols = load_columns(trace, tmp_path / "store", on_problem=reused.append)
    assert reused == built and cols.problems == tuple(built)


def test_a_changed_trace_rebuilds_and_old_stores_go(tmp_path):
    store = tmp_path / "store"
    trace = tmp_path / "t.jsonl.zst"
    other = write_trace(tmp_path / "u.jsonl.zst", standard_rows()[:4])
    other_folder = load_columns(other, store).folder.name
    folders = []
    for n in range(1, KEEP_PER_TRACE + 3):
        write_trace(trace, search_rows("m", "g", n))
        cols = load_columns(trace, store)
        assert cols.rows == n
        folders.append(cols.folder.name)
    assert len(set(folders)) == len(folders)
    # the newest KEEP_PER_TRACE of this trace, and the other trace's store
    assert store_folders(store) == sorted(folders[-KEEP_PER_TRACE:] + [other_folder])


def test_a_killed_build_leaves_no_store_and_the_next_build_works(tmp_path, monkeypatch):
    rows = [make_row(goal=f"g{i // 10}", activation=i % 10) for i in range(100)]
    trace = write_trace(tmp_path / "t.jsonl.zst", rows)
    store = tmp_path / "store"
    real = traces.iter_row_chunks

    def dies_midway(*args, **kwargs):
        kwargs["chunk_rows"] = 10
        for i, chunk in enumerate(real(*args, **kwargs)):
            if i == 3:
                raise RuntimeError("killed")
            yield chunk

    monkeypatch.setattr(traces, "iter_row_chunks", dies_midway)
    with pytest.raises(RuntimeError):
        load_columns(trace, store)
    assert store_folders(store) == []
    assert not [p for p in store.iterdir() if p.name.endswith(".partial")]
    # a kill -9 leaves its temp folder behind: the next build removes it
    stale = store / ".t-0123456789abcdef.x.partial"
    stale.mkdir()
    (stale / "features.f32").write_bytes(b"\0" * 40)
    old = time.time() - 3600
    os.utime(stale, (old, old))
    monkeypatch.setattr(traces, "iter_row_chunks", real)
    cols = load_columns(trace, store)
    assert cols.rows == 100 and len(cols.searches) == 10
    assert not stale.exists()
    assert store_folders(store) == [cols.folder.name]


def test_a_trace_changed_while_read_is_refused(tmp_path, monkeypatch):
    trace = write_trace(tmp_path / "t.jsonl.zst", standard_rows())
    monkeypatch.setattr(trace_store, "file_sha256", lambda *a, **k: "0" * 64)
    with pytest.raises(TraceFileError) as info:
        load_columns(trace, tmp_path / "store")
    assert "changed while it was read" in str(info.value) and "\n" not in str(info.value)
    assert store_folders(tmp_path / "store") == []


def test_a_store_of_no_rows(tmp_path):
    trace = write_trace(tmp_path / "t.jsonl.zst", [])
    problems = []
    cols = load_columns(trace, tmp_path / "store", on_problem=problems.append)
    assert cols.rows == 0 and cols.features.shape == (0, len(NAMES)) and len(cols.searches) == 0
    assert len(problems) == 1
    assert load_columns(trace, tmp_path / "store").rows == 0


def test_build_progress_ends_at_the_file_size(tmp_path):
    trace = write_trace(tmp_path / "t.jsonl.zst", standard_rows())
    seen = []
    load_columns(trace, tmp_path / "store", progress=lambda d, t, m: seen.append((d, t)))
    size = trace.stat().st_size
    assert seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_load_traces(tmp_path):
    a = write_trace(tmp_path / "traces" / "a.jsonl.zst", standard_rows())
    write_trace(tmp_path / "traces" / "b.jsonl.zst", standard_rows()[:5])
    cols = load_traces([tmp_path / "traces"], tmp_path / "store")
    assert [c.rows for c in cols] == [13, 5]
    assert cols[0].source == a


def test_load_traces_skips_a_bad_sidecar_as_one_problem(tmp_path):
    write_trace(tmp_path / "traces" / "a.jsonl.zst", standard_rows())
    write_trace(tmp_path / "traces" / "b.jsonl.zst", standard_rows(), schema="acorn-activated-step-trace-v1")
    problems = []
    cols = load_traces([tmp_path / "traces"], tmp_path / "store", on_problem=problems.append)
    assert [c.rows for c in cols] == [13]
    assert len(problems) == 1 and problems[0].file.endswith("b.meta.json") and "trace-v1" in problems[0].reason
    with pytest.raises(TraceFileError):
        load_traces([tmp_path / "traces"], tmp_path / "store")


def test_load_traces_requires_one_feature_list(tmp_path):
    write_trace(tmp_path / "traces" / "a.jsonl.zst", standard_rows())
    b = write_trace(tmp_path / "traces" / "b.jsonl.zst", standard_rows())
    write_meta(b, names=NAMES[:-1] + ("renamed",))
    with pytest.raises(TacticsError) as info:
        load_traces([tmp_path / "traces"], tmp_path / "store")
    message = str(info.value)
    assert "a.meta.json" in message and "b.meta.json" in message and "renamed" in message
    assert "\n" not in message
