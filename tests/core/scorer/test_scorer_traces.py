"""The trace reader: the sidecar, finding traces, streamed rows, and hostile input as one problem."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import zstandard
from trace_helpers import real_trace  # noqa: F401  (a fixture)
from trace_helpers import (
    NAMES,
    decompressed_rows,
    encode_lines,
    make_row,
    search_rows,
    standard_rows,
    write_meta,
    write_trace,
)

from tactics_core.common.errors import Cancelled, TacticsError
from tactics_core.common.progress import CancelToken
from tactics_core.scorer.traces import (
    TRACE_SCHEMA,
    Problem,
    SearchAccumulator,
    TraceFileError,
    find_traces,
    iter_row_chunks,
    iter_rows,
    meta_path,
    read_meta,
)


def read(trace, **kw):
    problems: list[Problem] = []
    rows = list(iter_rows(trace, on_problem=problems.append, **kw))
    return rows, problems


def assert_one_line(message: str, *names: str) -> None:
    assert "\n" not in message
    for name in names:
        assert name in message


# ----------------------------------------------------------------------------------------------
# sidecar and files


def test_meta_path_is_acorns():
    assert meta_path("/x/depth-first.jsonl.zst").name == "depth-first.meta.json"
    assert meta_path("/x/t-000003.jsonl.zst").name == "t-000003.meta.json"


def test_read_meta(tmp_path):
    trace = write_trace(tmp_path / "t.jsonl.zst", standard_rows())
    meta = read_meta(trace)
    assert meta.schema == TRACE_SCHEMA
    assert meta.feature_names == NAMES
    assert meta.path == tmp_path / "t.meta.json"


@pytest.mark.parametrize(
    "sidecar, words",
    [
        (None, "missing"),
        ("{not json", "not JSON"),
        ('["a"]', "not a JSON object"),
        (json.dumps({"schema": "acorn-activated-step-trace-v1", "feature_vector": ["a"]}), "trace-v1"),
        (json.dumps({"schema": TRACE_SCHEMA, "feature_vector": []}), "feature names"),
    ],
)
def test_read_meta_refuses_a_bad_sidecar_in_one_line(tmp_path, sidecar, words):
    trace = write_trace(tmp_path / "t.jsonl.zst", standard_rows(), meta=False)
    if sidecar is not None:
        meta_path(trace).write_text(sidecar)
    with pytest.raises(TraceFileError) as info:
        read_meta(trace)
    assert_one_line(str(info.value), "t.meta.json", words)
    assert info.value.file.endswith("t.meta.json")


def test_find_traces_expands_folders_sorted_and_skips_temp_files(tmp_path):
    for name in ("b.jsonl.zst", "a-000001.jsonl.zst", "a-000000.jsonl.zst", "sub/c.jsonl.zst"):
        write_trace(tmp_path / name, standard_rows())
    (tmp_path / ".a.jsonl.zst.x1.partial").write_bytes(b"")
    (tmp_path / "d.jsonl.zst.partial").write_bytes(b"")
    (tmp_path / ".store").mkdir()
    (tmp_path / ".store" / "e.jsonl.zst").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    found = find_traces([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a-000000.jsonl.zst",
        "a-000001.jsonl.zst",
        "b.jsonl.zst",
        "sub/c.jsonl.zst",
    ]
    # a file as given, once even when named twice
    assert find_traces([tmp_path / "b.jsonl.zst", tmp_path / "b.jsonl.zst"]) == [tmp_path / "b.jsonl.zst"]


def test_find_traces_names_what_is_missing(tmp_path):
    with pytest.raises(TacticsError) as info:
        find_traces([tmp_path / "nope"])
    assert_one_line(str(info.value), "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TacticsError) as info:
        find_traces([tmp_path / "empty"])
    assert_one_line(str(info.value), "empty", ".jsonl.zst")


# ----------------------------------------------------------------------------------------------
# rows


def test_iter_rows_reads_every_field(tmp_path):
    trace = write_trace(tmp_path / "t.jsonl.zst", standard_rows())
    rows, problems = read(trace)
    assert problems == []
    assert len(rows) == 13
    first = rows[0]
    assert (first.module, first.goal, first.goal_bucket, first.skip, first.policy) == ("nat", "add_comm", 3, 0, "depth-first")
    assert first.outcome == "Success" and first.success
    assert first.features.dtype == np.float32 and first.features.shape == (len(NAMES),)
    assert [r.used for r in rows[:6]] == [False, True, False, False, True, False]
    assert [r.activation_index for r in rows[:6]] == list(range(6))
    assert not rows[6].success  # Timeout
    assert rows[10].success and rows[10].skip is None  # Inconsistent counts as solved


def test_iter_rows_reads_several_zstd_frames(tmp_path):
    trace = write_trace(tmp_path / "t.jsonl.zst", standard_rows(), frames=4)
    rows, problems = read(trace)
    assert problems == [] and len(rows) == 13


def test_iter_rows_reports_compressed_bytes_and_can_be_cancelled(tmp_path):
    rows = [make_row(goal=f"g{i // 50}", activation=i % 50) for i in range(3000)]
    trace = write_trace(tmp_path / "t.jsonl.zst", rows)
    size = trace.stat().st_size
    seen = []
    read(trace, progress=lambda done, total, msg: seen.append((done, total)))
    assert seen[-1] == (size, size)
    assert all(t == size for _, t in seen)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        read(trace, cancel=token)


def test_search_accumulator_splits_runs(tmp_path):
    rows = (
        search_rows("m", "g", 3)
        + search_rows("m", "g", 2)  # the same goal again: activation_index restarts
        + search_rows("m", "g", 2, skip=1)
        + search_rows("m", "h", 1, outcome="Timeout")
    )
    trace = write_trace(tmp_path / "t.jsonl.zst", rows)
    acc = SearchAccumulator()
    ids = np.concatenate([acc.add(c) for c in iter_row_chunks(trace, chunk_rows=3)])
    assert [(s.goal, s.skip, s.rows, s.first_row) for s in acc.searches] == [
        ("g", 0, 3, 0),
        ("g", 0, 2, 3),
        ("g", 1, 2, 5),
        ("h", 0, 1, 7),
    ]
    assert ids.tolist() == [0, 0, 0, 1, 1, 2, 2, 3]


def test_reader_on_the_real_trace_matches_a_plain_count(real_trace):
    plain = decompressed_rows(real_trace)
    names = json.loads(meta_path(real_trace).read_text())["feature_vector"]
    rows, problems = read(real_trace)
    assert problems == []
    assert len(rows) == len(plain) > 0
    assert sum(r.used for r in rows) == sum(p["used_in_final_proof"] for p in plain)
    keys = [(p["module"], p["goal"], p["skip"], p["policy"]) for p in plain]
    plain_searches = sum(1 for i, k in enumerate(keys) if i == 0 or k != keys[i - 1] or plain[i]["activation_index"] == 0)
    acc = SearchAccumulator()
    for chunk in iter_row_chunks(real_trace, chunk_rows=100):
        acc.add(chunk)
    assert len(acc.searches) == plain_searches
    assert read_meta(real_trace).feature_names == tuple(names)
    assert all(r.features.shape == (len(names),) for r in rows)
    np.testing.assert_array_equal(rows[-1].features, np.array(plain[-1]["feature_vector"], dtype=np.float32))
    assert Counter(r.outcome for r in rows) == Counter(p["outcome"] for p in plain)
    # the sample holds solved searches with used steps and failed ones
    assert any(r.used for r in rows) and any(not r.success for r in rows)


# ----------------------------------------------------------------------------------------------
# hostile input: one problem line naming the file, the rest used


def one_problem(problems, trace, line=None):
    assert len(problems) == 1, problems
    (p,) = problems
    assert p.file == str(trace)
    assert p.line == line
    assert_one_line(str(p), trace.name)
    return p


def cut_compressed(data: bytes) -> bytes:
    """Cut inside the last zstd block: the blocks before it still decode."""
    return data[: len(data) - len(data) // 10]


def test_truncated_real_trace_uses_the_rows_before_the_cut(tmp_path, real_trace):
    plain = decompressed_rows(real_trace)
    trace = tmp_path / "cut.jsonl.zst"
    trace.write_bytes(cut_compressed(real_trace.read_bytes()))
    meta_path(trace).write_text(meta_path(real_trace).read_text())
    rows, problems = read(trace)
    p = one_problem(problems, trace)
    assert "truncated" in p.reason
    assert 0 < len(rows) < len(plain)
    assert [(r.goal, r.activation_index) for r in rows] == [(q["goal"], q["activation_index"]) for q in plain[: len(rows)]]


def test_truncated_on_a_line_boundary_is_still_truncated(tmp_path):
    # what a killed acorn leaves: whole blocks written, the frame never closed
    cobj = zstandard.ZstdCompressor(level=3).compressobj()
    blob = b""
    for r in standard_rows():
        blob += cobj.compress(encode_lines([r]))
        blob += cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    trace = tmp_path / "killed.jsonl.zst"
    trace.write_bytes(blob)
    write_meta(trace)
    rows, problems = read(trace)
    assert "truncated" in one_problem(problems, trace).reason
    assert len(rows) == 13


def test_a_row_with_another_feature_count(tmp_path):
    rows = standard_rows()
    rows[4]["feature_vector"] = [1.0, 2.0]
    trace = write_trace(tmp_path / "t.jsonl.zst", rows)
    got, problems = read(trace)
    p = one_problem(problems, trace, line=5)
    assert "2 values" in p.reason and f"{len(NAMES)}" in p.reason
    assert len(got) == 12


def test_nan_inf_and_null_features_are_one_problem(tmp_path):
    rows = standard_rows()
    rows[2]["feature_vector"][1] = float("nan")  # json.dumps writes NaN
    rows[7]["feature_vector"][0] = float("inf")
    rows[9]["feature_vector"][3] = None  # serde_json writes a NaN f32 as null
    trace = write_trace(tmp_path / "t.jsonl.zst", rows)
    got, problems = read(trace)
    p = one_problem(problems, trace, line=3)
    assert "'depth'" in p.reason and "2 more lines" in p.reason
    assert len(got) == 10
    assert all(np.isfinite(r.features).all() for r in got)


def test_rows_that_are_not_json_or_of_another_schema(tmp_path):
    rows = standard_rows()
    rows[3] = '{"schema": "acorn-activated-step-trace-v2", "module": '
    trace = write_trace(tmp_path / "a.jsonl.zst", rows)
    got, problems = read(trace)
    assert "not JSON" in one_problem(problems, trace, line=4).reason
    assert len(got) == 12

    rows = standard_rows()
    rows[0]["schema"] = "acorn-activated-step-trace-v1"
    trace = write_trace(tmp_path / "b.jsonl.zst", rows)
    got, problems = read(trace)
    assert "trace-v1" in one_problem(problems, trace, line=1).reason
    assert len(got) == 12


def test_a_row_missing_a_field_or_with_a_string_feature(tmp_path):
    rows = standard_rows()
    del rows[5]["goal"]
    rows[6]["feature_vector"][0] = "x"
    trace = write_trace(tmp_path / "t.jsonl.zst", rows)
    got, problems = read(trace)
    assert len(problems) == 2  # two kinds: a missing field, a non-number
    assert {p.line for p in problems} == {6, 7}
    assert len(got) == 11


def test_an_empty_file(tmp_path):
    trace = tmp_path / "t.jsonl.zst"
    trace.write_bytes(b"")
    write_meta(trace)
    got, problems = read(trace)
    assert got == []
    assert "empty" in one_problem(problems, trace).reason


def test_a_finished_trace_with_no_rows(tmp_path):
    trace = write_trace(tmp_path / "t.jsonl.zst", [])
    got, problems = read(trace)
    assert got == [] and "no rows" in one_problem(problems, trace).reason


def test_a_file_that_is_not_zstd(tmp_path):
    trace = tmp_path / "t.jsonl.zst"
    trace.write_bytes(encode_lines(standard_rows()))
    write_meta(trace)
    got, problems = read(trace)
    assert got == [] and "not zstd" in one_problem(problems, trace).reason
    # zstd data that is damaged from the start
    trace.write_bytes(zstandard.ZstdCompressor().compress(encode_lines(standard_rows()))[:4] + b"\xff" * 64)
    got, problems = read(trace)
    assert got == [] and "damaged" in one_problem(problems, trace).reason


def test_damage_inside_the_stream(tmp_path, real_trace):
    data = bytearray(real_trace.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0xFF
    trace = tmp_path / "bad.jsonl.zst"
    trace.write_bytes(bytes(data))
    meta_path(trace).write_text(meta_path(real_trace).read_text())
    got, problems = read(trace)
    # without a checksum (acorn writes none) damage may also decode to garbage lines
    assert problems and all(p.file == str(trace) and "\n" not in str(p) for p in problems)
    assert len(got) < len(decompressed_rows(real_trace))


def test_missing_sidecar_is_a_one_line_error(tmp_path):
    trace = write_trace(tmp_path / "t.jsonl.zst", standard_rows(), meta=False)
    with pytest.raises(TraceFileError) as info:
        list(iter_rows(trace))
    assert_one_line(str(info.value), "t.meta.json", "missing")
