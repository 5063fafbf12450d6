"""A sweep as a process: started detached (the TUI's Sweeps screen), found, and stopped.

* `start_detached(request)` checks a `SweepRequest` (name, not running already, a new sweep's
  space file, a resume's study, the workspace's live run and tokenizer) before anything is
  written, then starts `python -m tactics_core sweep ...` in its own session with its output
  appended to `sweeps/NAME/sweep.log` and writes `sweeps/NAME/process.json` (pid, command), so
  the sweep outlives the app that started it, as a detached training run does.
* `hold_sweep(folder, cancel, log)` is what the sweep process itself does (`study.run_sweep`
  enters it): it holds `sweeps/NAME/sweep.lock` (an fcntl lock, dropped by the OS even on
  kill -9) for the whole sweep, so one process runs a sweep at a time and a watcher knows it
  is alive; and it watches `sweeps/NAME/stop.request`, which cancels the sweep's token: the
  running trial's run ends gracefully (final checkpoint), the trial is recorded FAIL with its
  parameters enqueued again, and `--resume` trains them again (what the first Ctrl-C does).
* `sweep_process(folder)` says whether a sweep's process is running (`SweepProcess`);
  `request_stop(folder)` writes the stop file.

This module imports no other module of `sweeps` but `space` (study.py imports it).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tactics_core.common.locks import lock_held, pid_alive

from tactics_core.common.atomic import atomic_write_text
from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken
from tactics_core.common.workspace import (
    CHECKPOINT_DIR, PRESETS_DIR, SWEEP_LOCK_FILE, SWEEP_LOG_FILE, SWEEP_PROCESS_FILE, SWEEP_STOP_FILE,
    SWEEP_STUDY_FILE, SWEEP_TRIAL_SUFFIX, SWEEPS_DIR,
)

STOP_POLL_S = 0.5  # how often the running sweep looks for its stop file
STARTING_GRACE_S = 60.0  # a sweep just started counts as alive this long before it takes its lock
SPAWNED_AT_ENV = "TACTICS_SWEEP_SPAWNED_AT"  # a stop file older than this is stale

# Children started here, reaped by `sweep_process` so a finished one is not a zombie that looks alive.
_children: list[subprocess.Popen] = []


# ----------------------------------------------------------------------------
# The request


@dataclass(frozen=True)
class SweepRequest:
    """A sweep to start or resume, as the TUI's dialog asks for it."""

    name: str
    space: str | None = None  # a space file or a built-in space's name; None for a resume (the sweep's own)
    budget_minutes: float | None = None  # None: the CLI's default (a resume keeps its own)
    trials: int | None = None  # None: the CLI's default (a resume: the sweep's own)
    resume: bool = False
    data_dir: Path | None = None  # None: data/proofs, a scorer's traces/ (a resume: the sweep's own)
    checkpoint_dir: Path = CHECKPOINT_DIR
    sweeps_dir: Path = SWEEPS_DIR
    presets_dir: Path = PRESETS_DIR

    @property
    def folder(self) -> Path:
        return Path(self.sweeps_dir) / self.name

    def argv(self) -> list[str]:
        """The `tactics` arguments that run this request (paths as given: resolve them first)."""
        out = ["sweep"] + ([str(self.space)] if self.space is not None and not self.resume else [])
        out += ["--name", self.name]
        if self.budget_minutes is not None and not self.resume:
            out += ["--budget-minutes", f"{float(self.budget_minutes):g}"]
        if self.trials is not None:
            out += ["--trials", str(int(self.trials))]
        if self.resume:
            out.append("--resume")
        if self.data_dir is not None and not self.resume:
            out += ["--data-dir", str(self.data_dir)]
        out += ["--checkpoint-dir", str(self.checkpoint_dir), "--sweeps-dir", str(self.sweeps_dir),
                "--presets-dir", str(self.presets_dir)]
        return out

    def command(self) -> list[str]:
        return [sys.executable, "-m", "tactics_core", *self.argv()]


@dataclass(frozen=True)
class StartedSweep:
    pid: int
    folder: Path
    log: Path


def check(request: SweepRequest) -> Path:
    """Everything that can be seen before the sweep process starts; writes nothing. Returns its folder."""
    from tactics_core.runs.workspace_runs import check_name, check_new_run

    check_name(request.name)
    folder = request.folder
    state = sweep_process(folder)
    if state.alive:
        raise TacticsError(f"sweep {request.name!r} is already running (pid {state.pid}); stop it first")
    exists = (folder / SWEEP_STUDY_FILE).is_file()
    if request.trials is not None and int(request.trials) < 1:
        raise TacticsError(f"trials must be >= 1, got {request.trials}")
    if request.resume:
        if not exists:
            raise TacticsError(f"no sweep {request.name!r} to resume ({folder / SWEEP_STUDY_FILE} missing); start it new")
        return folder
    if exists:
        raise TacticsError(f"sweep {request.name!r} already exists ({folder}); resume it, or start a new one with another name")
    if not request.space:
        raise TacticsError("give a space file (examples in presets/sweeps/)")
    budget = request.budget_minutes
    if budget is not None and not (float(budget) > 0 and float(budget) < float("inf")):
        raise TacticsError(f"the budget must be > 0 minutes, got {budget}")
    from tactics_core.sweeps.space import read_space

    space = read_space(request.space, request.presets_dir)
    # What the sweep checks first (study._open): no live run, the first trial's run name is free, a GPT's tokenizer.
    check_new_run(request.checkpoint_dir, space.base.name, request.name + SWEEP_TRIAL_SUFFIX.format(number=0),
                  needs_tokenizer=space.kind == "gpt")
    return folder


def space_kind(space: str, presets_dir: Path = PRESETS_DIR) -> str:
    """The model kind a space file's base preset trains (`gpt` or `scorer`)."""
    from tactics_core.sweeps.space import read_space

    return read_space(space, presets_dir).kind


def start_detached(request: SweepRequest, cwd: str | os.PathLike | None = None) -> StartedSweep:
    """Check, then start the sweep in its own session (stdin /dev/null, output appended to
    `sweeps/NAME/sweep.log`); returns at once. Paths of the request should be absolute, or
    relative to `cwd` (the workspace), which the process runs in."""
    folder = check(request)
    folder.mkdir(parents=True, exist_ok=True)
    cmd = request.command()
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see training.loop.configure_threads
    env["PYTHONUNBUFFERED"] = "1"
    env["TACTICS_DETACHED"] = "1"
    env[SPAWNED_AT_ENV] = repr(time.time() - 0.5)  # mtime granularity slack
    log_path = folder / SWEEP_LOG_FILE
    log = open(log_path, "ab")
    try:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, close_fds=True, env=env, cwd=cwd)
    finally:
        log.close()
    _children.append(child)
    info = {"pid": child.pid, "host": socket.gethostname(), "started": time.time(),
            "command": cmd[cmd.index("tactics_core"):]}
    atomic_write_text(folder / SWEEP_PROCESS_FILE, json.dumps(info) + "\n")
    return StartedSweep(child.pid, folder, log_path)


# ----------------------------------------------------------------------------
# The process's side


@contextmanager
def hold_sweep(folder: str | os.PathLike, cancel: CancelToken | None = None,
               log: Callable[[str], None] | None = None) -> Iterator[CancelToken]:
    """Run a sweep in `folder` as its one process: its lock held, its stop file watched.

    Yields the token to run it with (`cancel`, or a new one), which a stop file cancels.
    Raises TacticsError when another process holds the sweep."""
    import fcntl

    folder = Path(folder)
    token = cancel if cancel is not None else CancelToken()
    fd = os.open(folder / SWEEP_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        pid = _lock_pid(folder)
        raise TacticsError(f"sweep {folder.name!r} is already running" + (f" (pid {pid})" if pid else "")
                           + "; stop it first (the TUI's Sweeps screen, x), or wait for it") from None
    stop = folder / SWEEP_STOP_FILE
    done = threading.Event()
    thread = None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        born = float(os.environ.get(SPAWNED_AT_ENV) or time.time())
        try:
            if stop.stat().st_mtime < born:  # an earlier sweep's request; one written since we were spawned is ours
                stop.unlink()
        except FileNotFoundError:
            pass

        def watch() -> None:
            while not done.wait(STOP_POLL_S):
                if stop.exists():
                    if log is not None:
                        log("stopping (stop requested): the running trial ends with a final checkpoint; "
                            "`tactics sweep --resume` trains it again")
                    token.cancel()
                    return

        thread = threading.Thread(target=watch, name="sweep-stop-file", daemon=True)
        thread.start()
        yield token
    finally:
        done.set()
        if thread is not None:
            thread.join(timeout=5)
        try:
            stop.unlink()  # handled (or never written)
        except FileNotFoundError:
            pass
        os.close(fd)  # releases the lock


# ----------------------------------------------------------------------------
# The watcher's side


@dataclass(frozen=True)
class SweepProcess:
    """Whether a sweep's process runs: `state` is running | stopping | starting | ended | none."""

    state: str
    pid: int | None = None
    message: str = ""  # an ended process's last line of output (its error, or how it ended)

    @property
    def alive(self) -> bool:
        return self.state in ("running", "stopping", "starting")

    def words(self) -> str:
        if self.state in ("running", "stopping", "starting"):
            return f"{self.state} (pid {self.pid})"
        return "not running" if self.state == "none" else "ended"


def sweep_process(folder: str | os.PathLike) -> SweepProcess:
    """The sweep process of `folder`, whoever started it (the lock says; a process that
    `start_detached` started moments ago and that has not taken the lock yet is `starting`)."""
    _reap()
    folder = Path(folder)
    if _lock_held(folder):
        stopping = (folder / SWEEP_STOP_FILE).exists()
        return SweepProcess("stopping" if stopping else "running", _lock_pid(folder))
    info = _read_process(folder)
    if not info:
        return SweepProcess("none")
    pid = int(info.get("pid") or 0)
    same_host = str(info.get("host") or "") in ("", socket.gethostname())
    fresh = time.time() - float(info.get("started") or 0) < STARTING_GRACE_S
    if same_host and fresh and _lock_pid(folder) != pid and pid_alive(pid):
        return SweepProcess("starting", pid)
    return SweepProcess("ended", pid, _last_line(folder / SWEEP_LOG_FILE))


def request_stop(folder: str | os.PathLike) -> bool:
    """Ask the running sweep of `folder` to stop; False when none runs. It notices within a
    second; its running trial then ends with a final checkpoint (seconds to a minute)."""
    folder = Path(folder)
    if not sweep_process(folder).alive:
        return False
    atomic_write_text(folder / SWEEP_STOP_FILE, f"{time.time()}\n")
    return True


def _read_process(folder: Path) -> dict:
    try:
        data = json.loads((folder / SWEEP_PROCESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _lock_held(folder: Path) -> bool:
    return lock_held(folder / SWEEP_LOCK_FILE)


def _lock_pid(folder: Path) -> int | None:
    try:
        text = (folder / SWEEP_LOCK_FILE).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _last_line(path: Path, tail: int = 4096) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - tail))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    starts = [i for i, line in enumerate(lines) if line.startswith("=== ")]
    lines = lines[starts[-1] + 1:] if starts else lines  # the last start's output only
    errors = [line for line in lines if line.startswith("error:")]
    for line in reversed(errors or lines):
        if line.strip():
            return line.strip()[:300]
    return ""


def _reap() -> None:
    for child in list(_children):
        if child.poll() is not None:
            _children.remove(child)
