"""acorn eval (acorn 0.2.6, 91f29ff1) as runner, trace collector and judge.

The parser reads outputs recorded from the real binary (tests/fixtures/acorn_eval_91f29ff1/outputs,
README.txt there says how each was made and its exit code). Everything that runs a process runs a
FAKE acorn: a small Python script that prints a recorded output for the bucket and policy it is
asked for, writes a tiny trace and meta.json as acorn does (meta when the trace opens, the trace
finished only at a normal exit), and can be told to die or hang midway. One test runs the real
binary when TACTICS_ACORN_EVAL and TACTICS_ACORNLIB_EVAL are set.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tactics_core.acorn import eval_judge as acorn_eval
from tactics_core.acorn.generative_judge import AcornSetup
from tactics_core.acorn.eval_judge import (
    EvalRun, check_eval_binary, check_scorer_export, collect_traces, eval_error, format_buckets, judge,
    parse_buckets, parse_eval_output, report_text, resolve_eval_setup, run_eval,
)
from tactics_core.common.errors import Cancelled, TacticsError
from tactics_core.common.progress import CancelToken

OUTPUTS = Path(__file__).resolve().parents[2] / "fixtures" / "acorn_eval_91f29ff1" / "outputs"


def recorded(name: str) -> list[str]:
    return (OUTPUTS / name).read_text(encoding="utf-8").splitlines()


def _error(fn, *args, **kwargs) -> str:
    with pytest.raises(TacticsError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------ the fake acorn

FAKE = r'''#!{python}
"""A fake acorn 0.2.6 for tests: answers `eval` from recorded outputs, as the plan says."""
import json, os, signal, subprocess, sys, time
from pathlib import Path

plan = json.loads(Path({plan!r}).read_text())
argv = sys.argv[1:]
if plan.get("older"):
    print("error: unrecognized subcommand 'eval'\n\nUsage: acorn [OPTIONS] [COMMAND]\n\nFor more information, try '--help'.")
    sys.exit(2)
if argv[:2] == ["eval", "--help"]:
    sys.stdout.write(Path({help!r}).read_text())
    sys.exit(0)
lib = argv[argv.index("--lib") + 1]
rest = argv[argv.index("eval") + 1:]
opts = {{}}
i = 0
target = None
while i < len(rest):
    if rest[i].startswith("--"):
        opts[rest[i]] = rest[i + 1]
        i += 2
    else:
        target = rest[i]
        i += 1
trace = opts.get("--trace-out")
if trace:  # acorn writes the meta as soon as the trace opens
    base = trace[: -len(".jsonl.zst")] if trace.endswith(".jsonl.zst") else trace
    Path(trace).parent.mkdir(parents=True, exist_ok=True)
    Path(base + ".meta.json").write_text(Path({meta!r}).read_text())
    out = open(trace, "wb")
    out.write(b"\x28\xb5\x2f\xfd partial")
    out.flush()
if not os.path.isfile(os.path.join(lib, "acorn.toml")):
    print("Could not find acornlib.\nPlease run this from within the acornlib directory.")
    sys.exit(1)
if "calls" in plan:
    with open(plan["calls"], "a") as fh:
        fh.write(json.dumps({{"policy": opts.get("--policy"), "sample": opts.get("--eval-sample"), "target": target,
                              "model": opts.get("--model"), "trace": trace, "label": opts.get("--policy-label")}}) + "\n")
policy = opts.get("--policy")
sample = opts.get("--eval-sample")
name = plan["outputs"].get(f"{{policy}}:{{sample}}") or plan["outputs"].get(policy) or plan["outputs"]["*"]
lines = Path({outputs!r}, name).read_text().splitlines()
split = next((k for k, ln in enumerate(lines) if not ln.strip()), len(lines))
for ln in lines[:split]:
    print(ln, flush=True)
if sample is not None and sample == str(plan.get("die_on")):
    os.kill(os.getpid(), signal.SIGKILL)
if sample is not None and sample == str(plan.get("hang_on")):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    Path(plan["pids"]).write_text(f"{{os.getpid()}} {{child.pid}}")
    time.sleep(600)
for ln in lines[split:]:
    if ln.startswith(("real", "user", "sys")) and "\t" in ln:
        continue  # the shell's `time` lines of a recording
    print(ln, flush=True)
if trace:
    out.write(b" finished\n")
    out.close()
sys.exit(plan.get("exit", 0))
'''


def make_library(root: Path) -> Path:
    lib = root / "acornlib"
    (lib / "src" / "certs").mkdir(parents=True)
    (lib / "acorn.toml").write_text("project_format_version = 27\n")
    (lib / "src" / "add_monoid.ac").write_text("// a module\n")
    (lib / "src" / "certs" / "add_monoid.jsonl").write_text("{}\n")
    return lib


def make_fake(root: Path, plan: dict) -> Path:
    bin_dir = root / "bin"
    bin_dir.mkdir(exist_ok=True)
    plan_path = root / "plan.json"
    plan_path.write_text(json.dumps(plan))
    fake = bin_dir / "acorn"
    fake.write_text(FAKE.format(python=sys.executable, plan=str(plan_path), help=str(OUTPUTS / "eval-help.txt"),
                                meta=str(OUTPUTS / "add_monoid.meta.json"), outputs=str(OUTPUTS)))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return fake


def set_plan(root: Path, plan: dict) -> None:
    (root / "plan.json").write_text(json.dumps(plan))


def fake_setup(tmp_path: Path, plan: dict) -> AcornSetup:
    return AcornSetup(binary=make_fake(tmp_path, plan), acornlib=make_library(tmp_path))


def tiny_onnx(path: Path, width: int) -> Path:
    """A real one-file ONNX scorer of `width` inputs (a MatMul): what the judge's checks read."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((width, 1), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["output"])], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1])], [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10), str(path))
    return path


def scorer_export(root: Path, features=("atom_count", "depth"), schema=acorn_eval.FEATURE_CONTRACT_SCHEMA) -> Path:
    folder = root / "scorer-h64"
    folder.mkdir(exist_ok=True)
    tiny_onnx(folder / "scorer.onnx", len(features))
    (folder / "scorer.features.json").write_text(json.dumps({"schema": schema, "input_features": list(features)}))
    return folder / "scorer.onnx"


def calls(root: Path) -> list[dict]:
    path = root / "calls.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.exists() else []


# ------------------------------------------------------------------ buckets


def test_parse_and_format_buckets():
    assert parse_buckets("0-9,90,92-93") == [*range(10), 90, 92, 93]
    assert parse_buckets(" 93, 90-91 ,90") == [90, 91, 93]
    assert parse_buckets("99") == [99]
    assert format_buckets([93, 0, 1, 2, 90, 92, 2]) == "0-2,90,92-93"
    assert format_buckets(parse_buckets("0-9,90,92-93")) == "0-9,90,92-93"
    for bad in ("", "x", "1-", "5-3", "100", "90-100", "1,,2", "-1"):
        msg = _error(parse_buckets, bad)
        assert "0-99" in msg or "0-9" in msg


# ------------------------------------------------------------------ acorn's words, parsed


def test_parse_failures_recorded():
    r = parse_eval_output(recorded("add_monoid-failures.txt"))
    assert (r.searches, r.succeeded) == (41, 35)
    assert r.success_rate == pytest.approx(35 / 41)
    assert r.avg_search_ms == pytest.approx(224.3)
    assert r.failures == {"timeout": 6}
    assert r.status == "failed searches"
    assert (r.modules, r.threads) == (1, 2)
    assert r.counts == {"eligible": 39, "empty": 8, "matched": 39}
    assert r.per_skip[0].searches == 31 and r.per_skip[0].succeeded == 29 and r.per_skip[0].avg_search_ms == 159.7
    assert r.per_skip[0].failures == {"timeout": 2}
    assert r.per_skip[1].ineligible == 29 and r.per_skip[1].failures == {"timeout": 4}
    assert len(r.failed) == 6
    first = r.failed[0]
    assert (first.file, first.line, first.goal, first.skip, first.reason, first.seconds) == (
        "add_monoid.ac", 117, "add_monoid_hom_add", 1, "timeout", 1.044)
    assert r.failed[2].goal.startswith("compose[A, B, C](f, g)(a + b) = ")
    assert r.summary[0] == "39 benchmark proofs with eligible cached proofs"
    assert r.summary[-1] == "Evaluation completed with failed searches."
    assert "35/41 benchmark searches succeeded" in r.summary and not any("real" in s for s in r.summary)
    assert eval_error(recorded("add_monoid-failures.txt"), 0, EvalRun(AcornSetup(Path("acorn"), Path("lib")))) is None


def test_parse_success_and_other_failure_kinds():
    ok = parse_eval_output(recorded("add_monoid-b91-92-success.txt"))
    assert (ok.searches, ok.succeeded, ok.status, ok.failed) == (1, 1, "succeeded", [])
    assert ok.counts["sampled_out"] == 38 and ok.per_skip[1].searches == 0
    cap = parse_eval_output(recorded("add_monoid-b90-99-activation-cap.txt"))
    assert cap.failures == {"shallow explosion": 3} and cap.success_rate == 0.0
    assert [f.reason for f in cap.failed] == ["shallow explosion"] * 3 and cap.failed[0].seconds is None
    skip0 = parse_eval_output(recorded("add_monoid-b90-99-skip0.txt"))
    assert skip0.per_skip == {} and skip0.counts["uncertified"] == 1 and (skip0.succeeded, skip0.searches) == (3, 3)
    old = parse_eval_output(recorded("acornlib-2025-layout.txt"))
    assert old.searches == 0 and old.success_rate is None and old.avg_search_ms is None and old.status == "succeeded"


def test_errors_recorded_become_one_line_in_acorns_words():
    setup = AcornSetup(Path("/opt/acorn"), Path("/lib/acornlib"))
    model = EvalRun(setup, policy="model", model=Path("/x/unk.onnx"))
    plain = EvalRun(setup)

    def err(name, code, request=plain):
        message = eval_error(recorded(name), code, request)
        assert message is not None and "\n" not in message
        return message

    msg = err("error-unknown-feature.txt", 1, model)
    assert msg == "acorn refused the scorer export /x/unk.onnx: unknown feature name 'not_a_feature' in unk.features.json"
    assert "protobuf parsing failed" in err("error-model-corrupt.txt", 1, model)
    assert "No such file or directory" in err("error-features-json-missing.txt", 1, model)  # check_scorer_export says more
    assert "unsupported feature contract schema 'other'" in err("error-feature-schema.txt", 1, model)
    assert "requires --model PATH" in err("error-policy-model-without-model.txt", 1)
    assert "unknown policy 'bogus'" in err("error-policy-unknown.txt", 1)
    assert "invalid bucket 'garbage'" in err("error-eval-sample-garbage.txt", 2)
    assert "/lib/acornlib is not an acornlib" in err("error-not-acornlib.txt", 1)
    assert "no_such_module" in err("error-no-such-module.txt", 1)
    assert "could not create trace file" in err("error-trace-out.txt", 1)
    older = err("older-acorn-no-eval.txt", 2)
    assert "has no `acorn eval --model` (it is an older acorn" in older and "91f29ff1" in older
    assert "TACTICS_ACORN_ORT_LIB" in err("error-no-onnx-runtime.txt", 127)
    assert "killed by signal 9" in err("add_monoid-failures.txt", -9)
    assert "without its summary" in eval_error(["verifying 1 module with 2 threads..."], 0, plain)


# ------------------------------------------------------------------ finding acorn


def test_resolve_eval_setup_flags_env_then_settings(tmp_path, monkeypatch):
    fake = make_fake(tmp_path, {"outputs": {"*": "add_monoid-b91-92-success.txt"}})
    lib = make_library(tmp_path)
    for name in (acorn_eval.ENV_EVAL_BINARY, acorn_eval.ENV_EVAL_ACORNLIB, "TACTICS_ACORN_ORT_LIB"):
        monkeypatch.delenv(name, raising=False)
    # [acorn] (acorn f47631b0, for the GPT) is another table: it does not count here
    (tmp_path / "tactics.toml").write_text(f'[acorn]\nbinary = "/nope"\nacornlib = "/nope"\n')
    assert "TACTICS_ACORN_EVAL" in _error(resolve_eval_setup, workspace=tmp_path)
    (tmp_path / "tactics.toml").write_text(
        f'[acorn]\nbinary = "/nope"\n[acorn_eval]\nbinary = "{fake}"\nacornlib = "{lib}"\nort_lib = "/ort"\n')
    setup = resolve_eval_setup(workspace=tmp_path)
    assert setup.binary == fake.resolve() and setup.acornlib == lib.resolve() and setup.ort_lib == Path("/ort")
    monkeypatch.setenv(acorn_eval.ENV_EVAL_ACORNLIB, str(tmp_path / "elsewhere"))
    assert "elsewhere not found" in _error(resolve_eval_setup, workspace=tmp_path)
    assert resolve_eval_setup(acornlib=lib, workspace=tmp_path).acornlib == lib.resolve()  # the flag first


def test_errors_of_the_setup_one_line_each(tmp_path):
    lib = make_library(tmp_path)
    assert "not found or not executable" in _error(resolve_eval_setup, tmp_path / "no-acorn", lib)
    older = make_fake(tmp_path, {"older": True})
    msg = _error(check_eval_binary, AcornSetup(older, lib))
    assert msg.startswith(f"{older} has no `acorn eval --model` (it is an older acorn")
    assert "unrecognized subcommand 'eval'" in msg and "91f29ff1" in msg
    not_lib = tmp_path / "plain"
    not_lib.mkdir()
    assert "not an acornlib checkout" in _error(resolve_eval_setup, older, not_lib)
    old_layout = tmp_path / "acornlib-2025"
    (old_layout / "src").mkdir(parents=True)
    (old_layout / "build").mkdir()
    (old_layout / "acorn.toml").write_text("")
    (old_layout / "build" / "nat.jsonl").write_text("{}\n")
    msg = _error(resolve_eval_setup, older, old_layout)
    assert "2025 layout" in msg and "7df4882d" in msg


# ------------------------------------------------------------------ scorer exports


def test_check_scorer_export(tmp_path):
    meta = OUTPUTS / "add_monoid.meta.json"
    onnx = scorer_export(tmp_path)
    assert check_scorer_export(onnx, meta) == ["atom_count", "depth"]
    assert check_scorer_export(onnx) == ["atom_count", "depth"]
    contract = onnx.with_name("scorer.features.json")

    msg = _error(check_scorer_export, tmp_path / "missing.onnx")
    assert "missing.onnx not found" in msg
    scorer_export(tmp_path, features=("atom_count", "not_a_feature"))
    msg = _error(check_scorer_export, onnx, meta)
    assert str(contract) in msg and "'not_a_feature'" in msg and str(meta) in msg
    assert "'not_a_feature'" in _error(check_scorer_export, onnx, ["atom_count"])
    scorer_export(tmp_path, schema="other")
    msg = _error(check_scorer_export, onnx)
    assert str(contract) in msg and "'other'" in msg
    scorer_export(tmp_path, features=("depth", "depth"))
    assert "listed twice" in _error(check_scorer_export, onnx)
    scorer_export(tmp_path, features=())
    assert "non-empty list" in _error(check_scorer_export, onnx)
    contract.write_text("not json")
    assert str(contract) in _error(check_scorer_export, onnx)
    contract.unlink()
    msg = _error(check_scorer_export, onnx)
    assert msg.startswith(f"{contract} not found")
    bad_meta = tmp_path / "bad.meta.json"
    bad_meta.write_text('{"schema": "x"}')
    scorer_export(tmp_path)
    assert str(bad_meta) in _error(check_scorer_export, onnx, bad_meta)


def test_scorer_export_is_found_in_a_folder(tmp_path):
    onnx = scorer_export(tmp_path)
    assert acorn_eval.find_scorer_onnx(onnx.parent) == onnx
    assert acorn_eval.is_scorer_export(onnx) and acorn_eval.is_scorer_export(onnx.parent)
    gpt = tmp_path / "gpt-export"
    gpt.mkdir()
    (gpt / "model.onnx").write_bytes(b"x")  # a GPT export has model.onnx but no features.json
    assert not acorn_eval.is_scorer_export(gpt)
    assert "holds no scorer export" in _error(acorn_eval.scorer_onnx, gpt)
    assert acorn_eval.scorer_label(onnx) == "scorer-h64"  # a generic stem: the folder names it


def test_feature_catalog_from_the_binary(tmp_path):
    setup = fake_setup(tmp_path, {"outputs": {"*": "add_monoid-b91-92-success.txt"}})
    catalog = acorn_eval.feature_catalog(setup)
    assert catalog is not None and "atom_count" in catalog and "goal_symbols_known" in catalog


# ------------------------------------------------------------------ running acorn eval


def test_run_eval_streams_and_parses(tmp_path):
    setup = fake_setup(tmp_path, {"outputs": {"*": "add_monoid-failures.txt"}, "calls": str(tmp_path / "calls.jsonl")})
    seen: list[tuple] = []
    result = run_eval(EvalRun(setup, buckets=[90, 91, 92, 95], target="add_monoid", timeout=2, jobs=1),
                      progress=lambda d, t, m: seen.append((d, t, m)))
    assert (result.searches, result.succeeded, len(result.failed)) == (41, 35, 6)
    assert result.exit_code == 0 and result.seconds > 0
    assert result.command[-8:] == ["--timeout", "2", "--policy", acorn_eval.DEFAULT_POLICY, "--eval-sample",
                                   "90-92,95", "--jobs", "1"]
    assert calls(tmp_path) == [{"policy": acorn_eval.DEFAULT_POLICY, "sample": "90-92,95", "target": "add_monoid",
                                "model": None, "trace": None, "label": None}]
    assert seen and all(t is None for _, t, _ in seen)  # acorn prints no total


def test_run_eval_refused_export_and_older_acorn(tmp_path):
    setup = fake_setup(tmp_path, {"outputs": {"*": "error-unknown-feature.txt"}, "exit": 1})
    onnx = scorer_export(tmp_path)
    msg = _error(run_eval, EvalRun(setup, policy="model", model=onnx))
    assert msg.startswith(f"acorn refused the scorer export {onnx}: ") and "not_a_feature" in msg
    set_plan(tmp_path, {"older": True})
    msg = _error(run_eval, EvalRun(AcornSetup(setup.binary, setup.acornlib)))
    assert "older acorn" in msg


def test_run_eval_cancel_kills_the_process_group(tmp_path):
    pids = tmp_path / "pids"
    setup = fake_setup(tmp_path, {"outputs": {"*": "add_monoid-failures.txt"}, "hang_on": "91", "pids": str(pids)})
    cancel = CancelToken()
    seen: list[int] = []
    began = time.monotonic()

    def progress(done, total, message):
        seen.append(done)
        # Cancel once acorn printed its lines and hangs (elapsed-time reports keep coming while it
        # hangs), whatever the machine's load: no race with the lines still being read.
        if done >= 6 and pids.exists() and pids.read_text().strip():
            cancel.cancel()
        elif time.monotonic() - began > 60:  # never hang the suite: the assertion below says what went wrong
            cancel.cancel()

    with pytest.raises(Cancelled):
        run_eval(EvalRun(setup, buckets=[91]), progress=progress, cancel=cancel)
    assert max(seen) == 6  # the failure lines acorn printed before it hung
    for pid in map(int, pids.read_text().split()):
        for _ in range(50):  # the child is reaped by init once its parent is gone
            if not _alive(pid):
                break
            time.sleep(0.1)
        assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# ------------------------------------------------------------------ collecting traces


def test_collect_is_atomic_and_resumable(tmp_path):
    plan = {"outputs": {"*": "add_monoid-b91-92-success.txt", f"{acorn_eval.DEFAULT_POLICY}:3":
                        "add_monoid-failures.txt"}, "calls": str(tmp_path / "calls.jsonl"), "die_on": "3"}
    setup = fake_setup(tmp_path, plan)
    out = tmp_path / "traces"
    seen: list[tuple] = []
    msg = _error(collect_traces, setup, [1, 2, 3, 4], out, progress=lambda d, t, m: seen.append((d, t, m)))
    assert "killed by signal 9" in msg
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"default-b{b:02d}{s}" for b in (1, 2)
                           for s in (".jsonl.zst", ".meta.json", ".log", ".summary.json"))  # nothing of bucket 3
    assert (out / "default-b01.jsonl.zst").read_bytes().endswith(b" finished\n")
    assert all(t == 4 for _, t, _ in seen)
    assert any("bucket 3 (3/4)" in m and "6 failed" in m for _, _, m in seen)  # failures streamed before the kill
    summary = json.loads((out / "default-b02.summary.json").read_text())
    assert summary["bucket"] == 2 and summary["searches"] == 1 and summary["request"]["timeout"] == 1.0
    assert "1/1 benchmark searches succeeded" in (out / "default-b02.log").read_text()

    plan.pop("die_on")
    set_plan(tmp_path, plan)
    collected = collect_traces(setup, [1, 2, 3, 4], out)
    assert [(c.bucket, c.resumed) for c in collected] == [(1, True), (2, True), (3, False), (4, False)]
    assert [c["sample"] for c in calls(tmp_path)] == ["1", "2", "3", "3", "4"]  # only bucket 3 again, then 4
    assert collected[2].summary["failed"][0]["goal"] == "add_monoid_hom_add"
    assert collected[2].trace.read_bytes().endswith(b" finished\n")
    assert [c["label"] for c in calls(tmp_path)] == ["default"] * 5
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp folder left
    # a bucket whose files are all there is never run again; another timeout is refused in one line
    assert all(c.resumed for c in collect_traces(setup, [1, 2, 3, 4], out))
    assert len(calls(tmp_path)) == 5
    assert "collected with timeout 1.0, not 2.0" in _error(collect_traces, setup, [1], out, timeout=2.0)


def test_collect_cancelled_keeps_finished_buckets(tmp_path):
    pids = tmp_path / "pids"
    setup = fake_setup(tmp_path, {"outputs": {"*": "add_monoid-b91-92-success.txt"}, "hang_on": "5",
                                  "pids": str(pids)})
    cancel = CancelToken()

    def progress(done, total, message):
        if pids.exists() and pids.read_text().strip():
            cancel.cancel()

    out = tmp_path / "traces"
    with pytest.raises(Cancelled):
        collect_traces(setup, [4, 5, 6], out, progress=progress, cancel=cancel)
    assert sorted(p.name for p in out.iterdir()) == [
        "default-b04.jsonl.zst", "default-b04.log", "default-b04.meta.json", "default-b04.summary.json"]


def test_collect_with_a_scorer_export(tmp_path):
    setup = fake_setup(tmp_path, {"outputs": {"*": "add_monoid-b90-99-model.txt"}, "calls": str(tmp_path / "calls.jsonl")})
    onnx = scorer_export(tmp_path)
    collected = collect_traces(setup, [91], tmp_path / "out", model=onnx.parent)
    assert collected[0].trace.name == "scorer-h64-b91.jsonl.zst"
    call = calls(tmp_path)[0]
    assert call["policy"] == "model" and call["model"] == str(onnx.resolve()) and call["label"] == "scorer-h64"
    assert "needs a scorer export" in _error(collect_traces, setup, [91], tmp_path / "out", policy="model")
    assert "unknown policy" in _error(collect_traces, setup, [91], tmp_path / "out", policy="bogus")


# ------------------------------------------------------------------ the judge


def test_judge_interleaves_policies_per_bucket_and_aggregates(tmp_path):
    d = acorn_eval.DEFAULT_POLICY
    plan = {"outputs": {"model": "add_monoid-b90-99-model.txt",           # 3/3 per bucket
                        f"{d}:91": "add_monoid-failures.txt",             # 35/41
                        f"{d}:92": "add_monoid-b91-92-success.txt",       # 1/1
                        "depth-first": "add_monoid-b90-99-activation-cap.txt"},  # 0/3
            "calls": str(tmp_path / "calls.jsonl")}
    setup = fake_setup(tmp_path, plan)
    onnx = scorer_export(tmp_path)
    seen: list[tuple] = []
    report = judge(setup, [92, 91], onnx.parent, progress=lambda dn, t, m: seen.append((dn, t, m)))
    assert [(c["sample"], c["policy"]) for c in calls(tmp_path)] == [
        ("91", "model"), ("91", d), ("91", "depth-first"), ("92", "model"), ("92", d), ("92", "depth-first")]
    assert {c["model"] for c in calls(tmp_path) if c["policy"] == "model"} == {str(onnx.resolve())}
    assert [p.label for p in report.policies] == ["scorer-h64", "default", "depth-first"]
    model, default, df = report.policies
    assert (model.searches, model.succeeded) == (6, 6)
    assert (default.searches, default.succeeded) == (42, 36)
    assert default.avg_search_ms == pytest.approx((224.3 * 41 + 28.1) / 42)
    assert default.rate_spread() == pytest.approx((35 / 41, 1.0))
    assert model.diff_to_baseline == pytest.approx({91: 1 - 35 / 41, 92: 0.0})
    assert df.failures == {"shallow explosion": 6} and df.success_rate == 0.0
    assert report.baseline == "default" and default.diff_to_baseline == {}
    assert seen[-1][:2] == (6, 6) and all(t == 6 for _, t, _ in seen)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["buckets"] == "91-92" and data["policies"][0]["buckets"]["91"]["succeeded"] == 3
    assert data["policies"][1]["summary"]["91"][-1] == "Evaluation completed with failed searches."
    text = report_text(report)
    assert "scorer-h64" in text and "85.7%" in text and "success rate per bucket" in text


def test_judge_baselines_alone_and_in_one_process(tmp_path):
    setup = fake_setup(tmp_path, {"outputs": {"*": "add_monoid-b90-99-depth-first.txt"},
                                  "calls": str(tmp_path / "calls.jsonl")})
    report = judge(setup, [90, 91, 92], None, per_bucket=False)
    assert [(c["sample"], c["policy"]) for c in calls(tmp_path)] == [
        ("90-92", acorn_eval.DEFAULT_POLICY), ("90-92", "depth-first")]
    assert report.policies[0].total.succeeded == 3 and report.policies[0].rate_spread() is None
    assert "nothing to judge" in _error(judge, setup, [90], None, baselines=())
    assert "holds no scorer export" in _error(judge, setup, [90], tmp_path)


# ------------------------------------------------------------------ the CLI


def test_cli_prove_judges_a_scorer_export(tmp_path, monkeypatch, capsys):
    from tactics_core.cli import main as cli_main

    setup = fake_setup(tmp_path, {"outputs": {"*": "add_monoid-b90-99-model.txt"}, "calls": str(tmp_path / "calls.jsonl")})
    monkeypatch.setenv(acorn_eval.ENV_EVAL_BINARY, str(setup.binary))
    monkeypatch.setenv(acorn_eval.ENV_EVAL_ACORNLIB, str(setup.acornlib))
    onnx = scorer_export(tmp_path)
    assert cli_main(["prove", str(onnx.parent), "--buckets", "91-92", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["label"] for p in data["policies"]] == ["scorer-h64"] and data["policies"][0]["searches"] == 6
    assert cli_main(["prove", str(onnx), "--buckets", "91", "--baseline", "--module", "add_monoid"]) == 0
    assert "depth-first" in capsys.readouterr().out
    assert [c["target"] for c in calls(tmp_path)][-1] == "add_monoid"
    assert cli_main(["prove", str(onnx), "--buckets", "x"]) == 2
    assert cli_main(["prove", str(onnx)]) == 2
    err = capsys.readouterr().err
    assert "error: buckets 'x'" in err and "give --buckets" in err
    gpt = tmp_path / "gpt-export"
    gpt.mkdir()
    assert cli_main(["prove", str(gpt), "--buckets", "91"]) == 2
    assert "--buckets goes with a scorer export" in capsys.readouterr().err


def test_cli_collect(tmp_path, monkeypatch, capsys):
    import argparse

    from tactics_core.cli.collect_cmd import add_collect_arguments, cmd_collect

    setup = fake_setup(tmp_path, {"outputs": {"*": "add_monoid-b91-92-success.txt"}})
    parser = argparse.ArgumentParser()
    add_collect_arguments(parser)
    args = parser.parse_args(["--buckets", "91-92", "--out", str(tmp_path / "t"), "--acorn", str(setup.binary),
                              "--acornlib", str(setup.acornlib), "--policy", "depth-first"])
    assert args.func is cmd_collect and cmd_collect(args) == 0
    assert "bucket 92 collected" in capsys.readouterr().out
    assert (tmp_path / "t" / "depth-first-b92.jsonl.zst").is_file()
    assert cmd_collect(args) == 0 and "bucket 91 kept" in capsys.readouterr().out


# ------------------------------------------------------------------ the real acorn


def test_real_acorn_eval_add_monoid(tmp_path):
    binary = os.environ.get(acorn_eval.ENV_EVAL_BINARY)
    lib = os.environ.get(acorn_eval.ENV_EVAL_ACORNLIB)
    if not binary or not lib:
        pytest.skip(f"set {acorn_eval.ENV_EVAL_BINARY} and {acorn_eval.ENV_EVAL_ACORNLIB} (and TACTICS_ACORN_ORT_LIB) "
                    f"to run the real acorn {acorn_eval.EVAL_COMMIT}")
    setup = resolve_eval_setup(binary, lib)
    trace = tmp_path / "t" / "b.jsonl.zst"
    result = run_eval(EvalRun(setup, buckets=parse_buckets("90-99"), target="add_monoid", trace_out=trace, label="t"))
    assert result.exit_code == 0 and result.searches >= 1 and result.status in ("succeeded", "failed searches")
    assert result.summary[-1].startswith("Evaluation ")
    assert trace.is_file() and acorn_eval.read_feature_catalog(tmp_path / "t" / "b.meta.json")
    catalog = acorn_eval.feature_catalog(setup)
    assert catalog and "atom_count" in catalog


def test_a_scorer_export_with_its_weights_beside_it_is_refused_in_one_line(tmp_path):
    """What acorn's own trainer writes under torch >= 2.9 (X.onnx + X.onnx.data): acorn 0.2.6
    resolves the .data file against its working folder and refuses the model from the acornlib."""
    import onnx

    model = onnx.load(str(tiny_onnx(tmp_path / "one.onnx", 2)))
    path = tmp_path / "x.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="x.onnx.data",
              size_threshold=0)
    (tmp_path / "x.features.json").write_text(json.dumps({"schema": acorn_eval.FEATURE_CONTRACT_SCHEMA, "input_features": ["a", "b"]}))
    with pytest.raises(TacticsError) as err:
        acorn_eval.check_scorer_export(path)
    assert "x.onnx.data" in str(err.value) and "one file" in str(err.value) and "\n" not in str(err.value)
    one = tmp_path / "y.onnx"
    onnx.save(onnx.load(str(path)), str(one), save_as_external_data=False)
    (tmp_path / "y.features.json").write_text((tmp_path / "x.features.json").read_text())
    assert acorn_eval.check_scorer_export(one) == ["a", "b"]


def test_report_text_gives_the_spread_in_tenths_of_a_point():
    """The gaps between policies are tenths of a point: the table must not round them away."""
    from tactics_core.acorn import eval_judge as ej

    model = ej.PolicyFigures("scorer-a", "model", "/x/scorer-a.onnx", {
        91: ej.BucketFigures(848, 684, 472.4, {"timeout": 164}, 400.0, [], []),
        92: ej.BucketFigures(894, 780, 400.0, {"timeout": 114}, 360.0, [], []),
    }, diff_to_baseline={91: 3 / 848, 92: -5 / 894})
    default = ej.PolicyFigures("default", "default", None, {
        91: ej.BucketFigures(848, 681, 487.7, {"timeout": 167}, 410.0, [], []),
        92: ej.BucketFigures(894, 785, 410.0, {"timeout": 109}, 370.0, [], []),
    })
    report = ej.JudgeReport("/bin/acorn", "/lib", [91, 92], 1.0, None, None, True, [model, default], "default", 60.0)
    row = next(line for line in report_text(report).splitlines() if line.startswith("scorer-a "))
    assert "80.7-87.2%" in row and row.endswith("-0.1 [-0.6,+0.4]")
    assert all(len(line) <= 80 for line in report_text(report).splitlines()[1:])
