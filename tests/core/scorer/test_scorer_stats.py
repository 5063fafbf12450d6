"""`trace_stats` and `tactics traces stats`: figures from the store or streamed, alike."""

from __future__ import annotations

import json

import pytest
from trace_helpers import real_trace  # noqa: F401  (a fixture)
from trace_helpers import decompressed_rows, search_rows, standard_rows, write_trace

from tactics_core.cli import main
from tactics_core.scorer import traces
from tactics_core.scorer.stats import trace_stats
from tactics_core.scorer.traces import is_success


def figures(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in ("seconds", "store")}


def test_stats_of_written_traces(tmp_path):
    write_trace(tmp_path / "traces" / "a.jsonl.zst", standard_rows())
    d = trace_stats([tmp_path / "traces"]).to_dict()
    assert d["files"] == 1
    assert d["bytes"] == (tmp_path / "traces" / "a.jsonl.zst").stat().st_size
    assert (d["rows"], d["searches"], d["successful"], d["used"]) == (13, 3, 2, 3)
    assert d["success_rate"] == pytest.approx(2 / 3)
    assert d["used_share"] == pytest.approx(3 / 13)
    assert d["outcomes"] == {"Inconsistent": 1, "Success": 1, "Timeout": 1}
    assert d["per_policy"]["depth-first"] == {
        "rows": 10, "searches": 2, "successful": 1, "success_rate": 0.5, "used": 2, "used_share": 0.2,
    }
    assert d["per_policy"]["model"]["searches"] == 1
    assert d["per_bucket"]["95"]["rows"] == 7 and d["per_bucket"]["3"]["used"] == 2
    assert d["feature_names"][0] == "age"
    assert d["problems"] == []


def test_store_and_stream_agree_and_the_second_run_reads_no_row(tmp_path, monkeypatch):
    rows = standard_rows()
    rows[1] = "not json"
    write_trace(tmp_path / "traces" / "a.jsonl.zst", rows)
    write_trace(tmp_path / "traces" / "b.jsonl.zst", search_rows("set", "union_comm", 5, used=(2,), policy="model"))
    streamed = trace_stats([tmp_path / "traces"]).to_dict()
    built = trace_stats([tmp_path / "traces"], store_root=tmp_path / "store").to_dict()
    monkeypatch.setattr(traces, "iter_row_chunks", lambda *a, **k: pytest.fail("rows read again"))
    reused = trace_stats([tmp_path / "traces"], store_root=tmp_path / "store").to_dict()
    assert figures(streamed) == figures(built) == figures(reused)
    assert len(reused["problems"]) == 1 and reused["problems"][0]["line"] == 2
    assert reused["rows"] == 17


def test_a_search_cut_across_shards_counts_once(tmp_path):
    rows = search_rows("nat", "add_comm", 5, used=(1,)) + search_rows("nat", "mul_comm", 4, outcome="Timeout")
    write_trace(tmp_path / "t" / "run-000000.jsonl.zst", rows[:3])
    write_trace(tmp_path / "t" / "run-000001.jsonl.zst", rows[3:])
    d = trace_stats([tmp_path / "t"]).to_dict()
    assert (d["rows"], d["searches"], d["successful"]) == (9, 2, 1)
    # the same search in two unrelated traces is two searches
    write_trace(tmp_path / "u" / "a.jsonl.zst", rows[:5])
    write_trace(tmp_path / "u" / "b.jsonl.zst", rows[:5])
    assert trace_stats([tmp_path / "u"]).to_dict()["searches"] == 2


def test_bad_files_are_problems_not_failures(tmp_path):
    write_trace(tmp_path / "traces" / "a.jsonl.zst", standard_rows())
    write_trace(tmp_path / "traces" / "b.jsonl.zst", standard_rows(), meta=False)
    write_trace(tmp_path / "traces" / "c.jsonl.zst", standard_rows(), schema="acorn-activated-step-trace-v1")
    d = trace_stats([tmp_path / "traces"], store_root=tmp_path / "store").to_dict()
    assert d["files"] == 1 and d["rows"] == 13
    assert sorted(p["file"].rsplit("/", 1)[1] for p in d["problems"]) == ["b.meta.json", "c.meta.json"]


def test_stats_of_the_real_trace(tmp_path, real_trace):
    plain = decompressed_rows(real_trace)
    d = trace_stats([real_trace], store_root=tmp_path / "store").to_dict()
    assert d["rows"] == len(plain)
    assert (d["rows"], d["searches"], d["successful"], d["used"]) == (419, 7, 4, 30)  # README.md
    assert d["used"] == sum(p["used_in_final_proof"] for p in plain)
    starts = [
        p
        for i, p in enumerate(plain)
        if i == 0
        or p["activation_index"] == 0
        or (p["module"], p["goal"], p["skip"], p["policy"])
        != (plain[i - 1]["module"], plain[i - 1]["goal"], plain[i - 1]["skip"], plain[i - 1]["policy"])
    ]
    assert d["searches"] == len(starts)
    assert d["successful"] == sum(is_success(p["outcome"]) for p in starts)
    assert 0 < d["successful"] < d["searches"]
    assert sum(f["rows"] for f in d["per_bucket"].values()) == d["rows"]
    assert len(d["feature_names"]) == len(plain[0]["feature_vector"])
    assert d["problems"] == []


def test_cli_traces_stats_json(tmp_path, capsys):
    write_trace(tmp_path / "traces" / "a.jsonl.zst", standard_rows())
    args = ["traces", "stats", str(tmp_path / "traces"), "--store", str(tmp_path / "store"), "--json"]
    assert main(args) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["files"], d["rows"], d["searches"], d["successful"], d["used"]) == (1, 13, 3, 2, 3)
    assert d["store"] == str(tmp_path / "store")
    assert any(p.name != "seen" for p in (tmp_path / "store").iterdir())


def test_cli_traces_stats_table_and_defaults(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["traces", "stats"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: traces") and err.count("\n") == 1
    write_trace(tmp_path / "traces" / "a.jsonl.zst", standard_rows())
    assert main(["traces", "stats"]) == 0
    out = capsys.readouterr().out
    assert "searches" in out and "depth-first" in out and "90-99" in out
    assert (tmp_path / "traces" / ".store").is_dir()  # the workspace's store, skipped as a trace folder
    assert main(["traces", "stats", "--no-store", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["store"] is None
    assert main(["traces", "stats", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


def test_the_table_fits_80_columns_with_acorns_long_policy_names():
    """acorn's default policy is `model-20260705-consistent-h128-l3`: cut in the middle in the table."""
    from tactics_core.scorer.stats import format_trace_stats

    f = {"rows": 1_078_648, "searches": 11_234, "successful": 9_876, "success_rate": 0.879, "used": 123_456,
         "used_share": 0.114}
    d = {"files": 6, "bytes": 40_000_000, "rows": 1_078_648, "searches": 11_234, "successful": 9_876,
         "success_rate": 0.879, "used": 123_456, "used_share": 0.114, "outcomes": {"Success": 9_876},
         "feature_names": ["age", "depth"], "store": "traces/.store", "seconds": 1.0, "problems": [],
         "per_policy": {"model-20260705-consistent-h128-l3": f, "depth-first": f}, "per_bucket": {"3": f}}
    text = format_trace_stats(d)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "model-20260…tent-h128-l3" in text and "depth-first " in text
