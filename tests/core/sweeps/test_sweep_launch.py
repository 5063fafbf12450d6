"""A sweep as a process (sweeps/launch.py): the command line a request makes, the checks before
anything starts, the lock one sweep process holds, the stop file that cancels it, and what a
watcher reads of it. No training here: the lock and the stop file are exercised directly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sweep_helpers import scorer_workspace

from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken
from tactics_core.common.workspace import SWEEP_LOG_FILE, SWEEP_PROCESS_FILE, SWEEP_STOP_FILE, SWEEP_STUDY_FILE
from tactics_core.sweeps import launch
from tactics_core.sweeps.launch import SweepRequest, hold_sweep, request_stop, sweep_process


def _wait(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_the_command_line_of_a_new_sweep_and_of_a_resume():
    new = SweepRequest(name="s1", space="/w/space.toml", budget_minutes=0.5, trials=4, data_dir=Path("/w/traces"),
                       checkpoint_dir=Path("/w/checkpoints"), sweeps_dir=Path("/w/sweeps"), presets_dir=Path("/w/presets"))
    assert new.argv() == ["sweep", "/w/space.toml", "--name", "s1", "--budget-minutes", "0.5", "--trials", "4",
                          "--data-dir", "/w/traces", "--checkpoint-dir", "/w/checkpoints", "--sweeps-dir", "/w/sweeps",
                          "--presets-dir", "/w/presets"]
    assert new.command()[:3] == [sys.executable, "-m", "tactics_core"]
    # a resume keeps its own space, budget and data: only the name, the target and the folders
    again = SweepRequest(name="s1", space="/w/space.toml", budget_minutes=0.5, trials=6, resume=True)
    assert again.argv()[:6] == ["sweep", "--name", "s1", "--trials", "6", "--resume"]
    assert "--budget-minutes" not in again.argv() and "/w/space.toml" not in again.argv()


def test_the_checks_before_a_sweep_starts_write_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ws = scorer_workspace(tmp_path)
    base = dict(checkpoint_dir=ws / "checkpoints", sweeps_dir=ws / "sweeps", presets_dir=ws / "presets")
    with pytest.raises(TacticsError, match="space file"):
        launch.check(SweepRequest(name="a", **base))
    with pytest.raises(TacticsError, match="not found"):
        launch.check(SweepRequest(name="a", space=str(ws / "nope.toml"), **base))
    with pytest.raises(TacticsError, match="budget must be > 0"):
        launch.check(SweepRequest(name="a", space=str(ws / "space.toml"), budget_minutes=0, **base))
    with pytest.raises(TacticsError, match="trials must be >= 1"):
        launch.check(SweepRequest(name="a", space=str(ws / "space.toml"), trials=0, **base))
    with pytest.raises(TacticsError, match="no sweep 'a' to resume"):
        launch.check(SweepRequest(name="a", resume=True, **base))
    with pytest.raises(TacticsError):
        launch.check(SweepRequest(name="../up", space=str(ws / "space.toml"), **base))
    assert launch.check(SweepRequest(name="a", space=str(ws / "space.toml"), **base)) == ws / "sweeps" / "a"
    assert launch.space_kind(str(ws / "space.toml"), ws / "presets") == "scorer"
    assert not (ws / "sweeps").exists()
    (ws / "sweeps" / "a").mkdir(parents=True)
    (ws / "sweeps" / "a" / SWEEP_STUDY_FILE).write_bytes(b"")
    with pytest.raises(TacticsError, match="already exists.*resume"):
        launch.check(SweepRequest(name="a", space=str(ws / "space.toml"), **base))
    assert launch.check(SweepRequest(name="a", resume=True, **base)) == ws / "sweeps" / "a"


def test_one_process_holds_a_sweep_and_its_stop_file_cancels_it(tmp_path):
    folder = tmp_path / "sweeps" / "s"
    folder.mkdir(parents=True)
    assert sweep_process(folder).state == "none" and not request_stop(folder)
    (folder / SWEEP_STOP_FILE).write_text("an old request\n")
    os.utime(folder / SWEEP_STOP_FILE, (time.time() - 60, time.time() - 60))
    lines: list[str] = []
    with hold_sweep(folder, log=lines.append) as token:
        assert not (folder / SWEEP_STOP_FILE).exists()  # older than the process: stale, dropped
        state = sweep_process(folder)
        assert state.state == "running" and state.alive and state.pid == os.getpid()
        # a second process of the same sweep is refused, naming the first
        probe = subprocess.run(
            [sys.executable, "-c", "import sys; from tactics_core.sweeps.launch import hold_sweep\n"
             "try:\n with hold_sweep(sys.argv[1]): pass\nexcept Exception as e: print(e)", str(folder)],
            capture_output=True, text=True, timeout=60,
        )
        assert f"already running (pid {os.getpid()})" in probe.stdout
        assert not token.cancelled
        assert request_stop(folder)
        assert sweep_process(folder).state == "stopping"
        _wait(lambda: token.cancelled, what="the stop file to cancel the sweep")
        assert any("stop requested" in line for line in lines)
    assert not (folder / SWEEP_STOP_FILE).exists()  # handled
    assert sweep_process(folder).state == "none"  # the lock is free again, and no process.json


def test_a_detached_sweep_that_fails_at_once_is_ended_with_its_error_line(tmp_path, monkeypatch):
    """The process starts (a resume of a sweep whose sweep.json is gone: refused in the process,
    after the launcher's checks passed), is seen, and ends with the CLI's error line in its log."""
    monkeypatch.chdir(tmp_path)
    ws = scorer_workspace(tmp_path)
    folder = ws / "sweeps" / "s"
    folder.mkdir(parents=True)
    (folder / SWEEP_STUDY_FILE).write_bytes(b"")
    request = SweepRequest(name="s", resume=True, checkpoint_dir=ws / "checkpoints", sweeps_dir=ws / "sweeps",
                           presets_dir=ws / "presets")
    started = launch.start_detached(request, cwd=ws)
    info = json.loads((folder / SWEEP_PROCESS_FILE).read_text())
    assert info["pid"] == started.pid and info["command"][:2] == ["tactics_core", "sweep"]
    assert sweep_process(folder).state in ("starting", "ended")
    _wait(lambda: sweep_process(folder).state == "ended", timeout=120, what="the process to end")
    ended = sweep_process(folder)
    assert ended.message.startswith("error:") and "sweep.json" in ended.message
    assert (folder / SWEEP_LOG_FILE).read_text().startswith("\n=== ")


@pytest.mark.slow
def test_a_stop_before_the_trial_trains_queues_its_parameters_again(tmp_path, monkeypatch):
    """A stop that arrives while a trial's budget is measured (before its run trains): the run's
    data read is cancelled, and the trial is interrupted like one stopped midway, its parameters
    queued again, not a failure `--resume` would skip."""
    from tactics_core.sweeps import study as study_mod
    from tactics_core.sweeps.study import SweepOptions, run_sweep

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(study_mod, "OVERRUN_GRACE_S", 3600.0)
    scorer_workspace(tmp_path)
    folder = tmp_path / "sweeps" / "space"

    cancel = CancelToken()

    def log(line: str) -> None:
        if line.startswith("  budget"):  # fitted, not trained yet: the TUI's x
            assert request_stop(folder)
            _wait(lambda: cancel.cancelled, what="the stop file to cancel the sweep")

    result = run_sweep(SweepOptions(space=Path("space.toml"), budget_minutes=0.05, trials=1, data_dir=Path("traces")),
                       log=log, cancel=cancel)
    assert result.cancelled
    states = [(t.number, t.state) for t in result.summary.trials]
    assert states == [(0, "FAIL"), (1, "WAITING")]
    assert "interrupted" in result.summary.trials[0].note and "retries trial 0" in result.summary.trials[1].note
    assert not (folder / SWEEP_STOP_FILE).exists()


@pytest.mark.slow
def test_sigterm_ends_a_sweep_like_the_first_ctrl_c(tmp_path):
    """`kill PID` (a service manager, a closed SSH session's SIGHUP alike): the running trial ends
    gracefully, is recorded as failed with its parameters queued again, and the sweep exits 130."""
    import signal

    from tactics_core.sweeps.record import read_sweep

    scorer_workspace(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tactics_core", "sweep", "space.toml", "--budget-minutes", "0.3", "--trials", "2",
         "--data-dir", "traces"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    lines = []
    try:
        for line in proc.stdout:  # the first evaluation of trial 0: it is training
            lines.append(line)
            if "trial 0 step " in line:
                proc.send_signal(signal.SIGTERM)
                break
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines) + rest
    assert proc.returncode == 130, out
    assert "stopping: the running trial ends with a final checkpoint" in out
    assert "continue it with `tactics sweep --resume --name space`" in out
    states = sorted((t.number, t.state) for t in read_sweep(tmp_path / "sweeps" / "space").trials)
    assert states == [(0, "FAIL"), (1, "WAITING")]
