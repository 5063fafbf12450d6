"""Run folders with real processes: detach, stop, signals, refusal of a second run,
run state liveness, and the metrics tail reader."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tactics_core.cli import main
from tactics_core.common.errors import TacticsError
from tactics_core.gpt.tokenizer import train_tokenizer
from tactics_core.runs import launch, run_events, run_folder, workspace_runs
from tactics_core.runs.launch import LaunchRequest

from conftest import copy_slice, shared_corpus

PRESET = """
description = "test: a 1-layer model that runs until stopped"
[model]
d_model = 32
n_layers = 1
n_heads = 2
context_length = 32
dropout = 0.1
[training]
batch_size = 4
learning_rate = 0.002
min_lr = 0.0002
warmup_steps = 5
max_steps = 100000
eval_interval = 100000
save_interval = 100000
num_threads = 1
device = "cpu"
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    data_dir = copy_slice(shared_corpus("acornlib-2025-11"), root / "proofs", 40, start=2000)
    ck = root / "ck"
    train_tokenizer(data_dir, ck, vocab_size=300, kind="lines")
    preset = root / "endless.toml"
    preset.write_text(PRESET)
    return data_dir, ck, preset


def wait_for(cond, timeout: float = 90.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def steps_after(ck: Path, n_events: int) -> int:
    evs = run_events.read_metrics(workspace_runs.current_run_dir(ck) / "metrics.jsonl")[n_events:]
    return sum(1 for e in evs if e["event"] == "step")


def ended(ck: Path) -> bool:
    state = run_folder.read_run_state(ck)
    return state is not None and not state.alive and state.state in run_events.END_REASONS


def test_detached_run_stops_gracefully_and_resumes_through_signals(workspace):
    data_dir, ck, preset = workspace
    new_run = LaunchRequest(ck, preset=str(preset), data_dir=data_dir, presets_dir=ck.parent, detach=True)
    pid = launch.start_detached(new_run).pid
    assert run_folder.read_run_state(ck).alive  # visible at once, before the child took the lock
    run = workspace_runs.current_run_dir(ck)  # the run's own folder, ck/runs/<time>-endless
    assert run.parent == ck / "runs" and run.name.endswith("-endless")
    # The child runs in its own session: closing our terminal cannot reach it.
    assert os.getsid(pid) == pid != os.getsid(0)
    wait_for(lambda: steps_after(ck, 0) >= 2, what="two step events")
    state = run_folder.read_run_state(ck)
    assert state.alive and state.pid == pid and state.state == "running"
    assert state.config["model"]["d_model"] == 32
    # A second run into the same folder is refused, detached or not.
    with pytest.raises(TacticsError, match="already active"):
        launch.start_detached(new_run)
    assert main(["train", "--preset", str(preset), "--data-dir", str(data_dir), "--checkpoint-dir", str(ck)]) == 2

    assert main(["stop", "--checkpoint-dir", str(ck), "--timeout", "60"]) == 0
    assert ended(ck)
    end = run_events.read_metrics(run / "metrics.jsonl")[-1]
    assert end["event"] == "end" and end["reason"] == "stopped" and "tactics stop" in end["message"]
    assert (run / f"checkpoint_step_{end['step']}.pt").is_file()  # final checkpoint first
    assert run_folder.read_run_state(ck).state == "stopped"
    assert not run_folder.request_stop(ck)  # nothing left to stop

    # Resume detached (latest checkpoint), then end it with SIGTERM, then with SIGHUP.
    last_step = end["step"]
    for sig in (signal.SIGTERM, signal.SIGHUP):
        seen = len(run_events.read_metrics(run / "metrics.jsonl"))
        pid = launch.start_detached(LaunchRequest(ck, resume=True, data_dir=data_dir, detach=True)).pid
        wait_for(lambda: steps_after(ck, seen) >= 1, what=f"steps before {sig.name}")
        os.kill(pid, sig)
        wait_for(lambda: ended(ck), what=f"the run to end after {sig.name}")
        assert workspace_runs.current_run_dir(ck) == run  # a resume continues in the run's own folder
        new = run_events.read_metrics(run / "metrics.jsonl")[seen:]
        start, end = new[0], new[-1]
        assert start["event"] == "start" and start["step"] == last_step and start["note"] == ""
        assert end["reason"] == "stopped" and sig.name in end["message"]
        assert end["step"] > last_step and (run / f"checkpoint_step_{end['step']}.pt").is_file()
        last_step = end["step"]
    log = (run / "train.log").read_text()
    assert "run ended: stopped" in log


def test_stale_run_state_is_not_alive(tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state = {"pid": dead.pid, "host": socket.gethostname(), "state": "running", "heartbeat": time.time(),
             "step": 7, "total_steps": 10, "config": {}, "message": "", "started": time.time()}
    (ck / "run.json").write_text(json.dumps(state))
    got = run_folder.read_run_state(ck)
    assert got.state == "running" and got.step == 7 and not got.alive
    # Even our own live pid is not a run without the lock.
    state["pid"] = os.getpid()
    (ck / "run.json").write_text(json.dumps(state))
    assert not run_folder.read_run_state(ck).alive
    assert not run_folder.request_stop(ck) and not (ck / run_folder.STOP_FILE).exists()
    assert run_folder.read_run_state(tmp_path / "nothing") is None


def test_metrics_reader_tails_partial_lines_and_restarts_on_replacement(tmp_path):
    path = tmp_path / "metrics.jsonl"
    reader = run_events.MetricsReader(path)
    assert reader.poll() == []
    with open(path, "w") as fh:
        fh.write('{"event": "start", "step": 0}\n{"event": "step", "st')
    assert [e["event"] for e in reader.poll()] == ["start"]
    with open(path, "a") as fh:
        fh.write('ep": 1}\nnot json\n{"event": "step", "step": 2}\n')
    assert [e.get("step") for e in reader.poll()] == [1, 2]
    assert reader.poll() == []
    # A new run into a cleaned folder: the file is replaced by a shorter one.
    path.unlink()
    path.write_text('{"event": "start", "step": 0}\n')
    assert [e["event"] for e in reader.poll()] == ["start"] and reader.restarted
    # read_metrics leaves out an incomplete last line.
    with open(path, "a") as fh:
        fh.write('{"event": "end", "rea')
    assert [e["event"] for e in run_events.read_metrics(path)] == ["start"]
