"""One run's folder (= the checkpoint dir) as the one channel between a run and its watchers.

All runs of a workspace (their folders under checkpoints/runs/, `current`, listing) are
`workspace_runs.py`'s; this module knows one folder only.

A training run writes, and anyone (the TUI, `tactics stop`, a second
terminal after an SSH drop) reads:

* `metrics.jsonl`: one JSON object per line, appended and flushed per line
  (a resumed run appends to the same file). Events: start, step, eval,
  sample, checkpoint, end, written and read through `run_events` (the schema).
* `run.json`: the run state (pid, host, state, heartbeat, step, config,
  message), rewritten atomically about once a second by a heartbeat thread.
* `run.lock`: an fcntl lock held for the whole life of the training process.
  The OS drops it when the process dies (even on kill -9), so a stale pid in
  run.json never blocks a new run.
* `stop.request`: written by `request_stop`; the run notices it within a
  second, writes a final checkpoint and ends with reason "stopped".

Why files and not sockets: a detached run outlives the terminal and the TUI
that started it; attaching again is just reading the folder.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tactics_core.common.locks import lock_held, pid_alive
from typing import Any, Callable, Protocol, Sequence

from tactics_core.common.atomic import atomic_write_text
from tactics_core.common.errors import TacticsError
from tactics_core.common.workspace import RUN_STATE_FILE, current_run_dir
from tactics_core.runs.run_events import END_REASONS, MetricsWriter, RunEvent

LOCK_FILE = "run.lock"
STOP_FILE = "stop.request"
LOG_FILE = "train.log"
HEARTBEAT_INTERVAL_S = 1.0
# A run whose heartbeat is older than this is dead even if its pid exists.
HEARTBEAT_STALE_S = 30.0
# A run that spawn_detached just started counts as alive this long before it takes the lock.
STARTING_GRACE_S = 60.0

# Children started by spawn_detached in this process, reaped by read_run_state
# so that a finished child does not linger as a zombie that looks alive.
_children: list[subprocess.Popen] = []


# ----------------------------------------------------------------------------
# Liveness


def _lock_held(checkpoint_dir: Path) -> bool:
    """True when some process holds the run lock of this folder."""
    return lock_held(checkpoint_dir / LOCK_FILE)


def _reap_children() -> None:
    for child in list(_children):
        if child.poll() is not None:
            _children.remove(child)


@dataclass
class RunState:
    """What run.json says, plus whether the run is really alive."""

    pid: int
    state: str  # spawned | starting | running | stopping | finished | early_stop | stopped | failed
    alive: bool
    heartbeat: float  # unix time of the last heartbeat
    step: int
    total_steps: int | None
    config: dict[str, Any]
    message: str
    started: float
    host: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def read_run_state(checkpoint_dir: str | os.PathLike, resolve: bool = True) -> RunState | None:
    """The run state of a folder, or None when no run ever started there.

    `checkpoint_dir`: a run folder, or the workspace's checkpoint folder meaning its
    current run (`workspace.current_run_dir`; `resolve=False` reads the folder as given).
    `alive` = the pid exists (when on this host) AND the heartbeat is fresh
    AND the run lock is held (or spawn_detached started it moments ago and it
    has not taken the lock yet: state "spawned").
    """
    _reap_children()
    folder = Path(checkpoint_dir)
    if resolve:
        folder = current_run_dir(folder)
    path = folder / RUN_STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # written atomically, so this is a foreign or damaged file
    if not isinstance(data, dict):
        return None
    pid = int(data.get("pid") or 0)
    heartbeat = float(data.get("heartbeat") or 0.0)
    state = str(data.get("state") or "unknown")
    host = str(data.get("host") or "")
    same_host = not host or host == socket.gethostname()
    age = time.time() - heartbeat
    pid_ok = pid_alive(pid) if same_host else True
    if state in END_REASONS:
        alive = False
    elif state == "spawned" and not _lock_held(folder):
        alive = pid_ok and age < STARTING_GRACE_S
    else:
        alive = pid_ok and age < HEARTBEAT_STALE_S and _lock_held(folder)
    known = {"pid", "state", "heartbeat", "step", "total_steps", "config", "message", "started", "host"}
    return RunState(
        pid=pid,
        state=state,
        alive=alive,
        heartbeat=heartbeat,
        step=int(data.get("step") or 0),
        total_steps=data.get("total_steps"),
        config=data.get("config") or {},
        message=str(data.get("message") or ""),
        started=float(data.get("started") or 0.0),
        host=host,
        extra={k: v for k, v in data.items() if k not in known},
    )


# ----------------------------------------------------------------------------
# The writer side (used by the trainer)


class Recorder(Protocol):
    """What the trainer records a run through, on every rank alike: `RunRecorder` on rank 0
    (it owns the folder) and `RankRecorder` on the others (the same calls, nothing written),
    so the loop never asks which rank it is to record."""

    stop_event: threading.Event  # set when a stop is asked for (file, signal, cancel)
    stop_reason: str

    def open(self) -> Recorder: ...

    def __enter__(self) -> Recorder: ...

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...

    def close(self, state: str | None = None, message: str | None = None) -> None: ...

    def update(self, **fields: Any) -> None: ...

    def write_state(self) -> None: ...

    def set_state(self, state: str, message: str | None = None) -> None: ...

    def emit(self, event: RunEvent) -> RunEvent: ...

    def request_stop(self, reason: str) -> None: ...


class RunRecorder:
    """Owns a run folder for one training process: lock, run.json heartbeat, metrics.

    Use as a context manager; `close(state, message)` writes the final state
    and releases the lock. `stop_event` is set when a stop is requested
    (stop.request file, a signal, or `request_stop()` from the same process).
    """

    def __init__(
        self,
        checkpoint_dir: str | os.PathLike,
        config: dict[str, Any] | None = None,
        on_event: Callable[[RunEvent], None] | None = None,
        heartbeat_interval: float = HEARTBEAT_INTERVAL_S,
    ) -> None:
        self.folder = Path(checkpoint_dir)
        self.on_event = on_event
        self.heartbeat_interval = heartbeat_interval
        self.stop_event = threading.Event()
        self.stop_reason = ""
        self._state: dict[str, Any] = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "state": "starting",
            "started": time.time(),
            "heartbeat": time.time(),
            "step": 0,
            "total_steps": None,
            "config": config or {},
            "message": "",
        }
        self._lock_fd: int | None = None
        self._write_lock = threading.Lock()
        self._metrics = MetricsWriter(self.folder)
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    # -- lifecycle

    def open(self) -> "RunRecorder":
        import fcntl

        if self._lock_fd is not None:  # opened already (the trainer opens before `with`)
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(5):  # a reader may hold it for a microsecond
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if attempt == 4:
                    os.close(fd)
                    state = read_run_state(self.folder, resolve=False)
                    who = f" (pid {state.pid}, step {state.step})" if state else ""
                    raise TacticsError(
                        f"a run is already active in {self.folder}{who}; stop it with "
                        f"`tactics stop --checkpoint-dir {self.folder}` or use another --checkpoint-dir"
                    ) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        # A stop request older than this run is stale; one written after spawn_detached
        # spawned us (while we were still importing torch) is for us and stays.
        born = float(os.environ.get("TACTICS_SPAWNED_AT") or self._state["started"])
        try:
            stop_path = self.folder / STOP_FILE
            if stop_path.stat().st_mtime < born:
                stop_path.unlink()
        except FileNotFoundError:
            pass
        self._metrics.open()
        self.write_state()
        self._thread = threading.Thread(target=self._beat, name="run-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __enter__(self) -> "RunRecorder":
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._lock_fd is not None:
            if exc is not None and self._state["state"] not in END_REASONS:
                self.close("failed", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            else:
                self.close()

    def close(self, state: str | None = None, message: str | None = None) -> None:
        """Write the final run state, stop the heartbeat, release the lock."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if state is not None:
            self._state["state"] = state
        if message is not None:
            self._state["message"] = message
        self.write_state()
        self._metrics.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # -- state and events

    def update(self, **fields: Any) -> None:
        """Change run state fields (written with the next heartbeat)."""
        self._state.update(fields)

    def write_state(self) -> None:
        with self._write_lock:
            self._state["heartbeat"] = time.time()
            try:
                atomic_write_text(self.folder / RUN_STATE_FILE, json.dumps(self._state, default=str))
            except OSError:
                pass  # a full disk must not kill training; the next beat tries again

    def set_state(self, state: str, message: str | None = None) -> None:
        self._state["state"] = state
        if message is not None:
            self._state["message"] = message
        self.write_state()

    def emit(self, event: RunEvent) -> RunEvent:
        """Append one event to metrics.jsonl (flushed, time-stamped) and pass it to on_event."""
        self._metrics.write(event)
        if self.on_event is not None:
            self.on_event(event)
        return event

    def request_stop(self, reason: str) -> None:
        if not self.stop_event.is_set():
            self.stop_reason = reason
        self.stop_event.set()

    def _beat(self) -> None:
        stop_path = self.folder / STOP_FILE
        while not self._done.wait(self.heartbeat_interval):
            if stop_path.exists():
                self.request_stop("stop requested (`tactics stop`)")
            self.write_state()


class RankRecorder:
    """The recorder of a data-parallel rank other than 0: same interface, writes nothing.

    Only rank 0 owns the run folder (lock, run.json, metrics.jsonl); the other ranks still
    need a `stop_event` for their signals, which the trainer shares with every rank.
    """

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.stop_reason = ""

    def open(self) -> "RankRecorder":
        return self

    def __enter__(self) -> "RankRecorder":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        pass

    def close(self, state: str | None = None, message: str | None = None) -> None:
        pass

    def update(self, **fields: Any) -> None:
        pass

    def write_state(self) -> None:
        pass

    def set_state(self, state: str, message: str | None = None) -> None:
        pass

    def emit(self, event: RunEvent) -> RunEvent:
        return event

    def request_stop(self, reason: str) -> None:
        if not self.stop_event.is_set():
            self.stop_reason = reason
        self.stop_event.set()


# ----------------------------------------------------------------------------
# Steering from another process


def request_stop(checkpoint_dir: str | os.PathLike) -> bool:
    """Ask the live run in this folder to stop gracefully (checkpoint, then end "stopped").

    Returns False when no live run is there. The run notices within about a
    second, after the step (or evaluation batch) in progress.
    """
    folder = current_run_dir(checkpoint_dir)
    state = read_run_state(folder, resolve=False)
    if state is None or not state.alive:
        return False
    atomic_write_text(folder / STOP_FILE, f"{time.time()}\n")
    return True


def spawn_detached(command: Sequence[str], folder: str | os.PathLike) -> int:
    """Start `command` (a training process that writes run folder `folder`) in its own session; its pid.

    The child has stdin from /dev/null and stdout/stderr appended to FOLDER/train.log, and no
    controlling terminal, so closing the terminal or dropping SSH does not stop it. Until it
    takes the run lock, run.json says "spawned" with its pid, so a watcher sees the run at once
    (`read_run_state` gives it STARTING_GRACE_S). What to start, and every check before it, is
    `launch`'s.
    """
    folder = Path(folder)
    cmd = [str(part) for part in command]
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see train.configure_threads
    env["PYTHONUNBUFFERED"] = "1"
    env["TACTICS_DETACHED"] = "1"
    env["TACTICS_SPAWNED_AT"] = repr(time.time() - 0.5)  # mtime granularity slack
    log = open(folder / LOG_FILE, "ab")
    try:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        child = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
    finally:
        log.close()
    _children.append(child)
    now = time.time()
    atomic_write_text(
        folder / RUN_STATE_FILE,
        json.dumps(
            {
                "pid": child.pid,
                "host": socket.gethostname(),
                "state": "spawned",
                "started": now,
                "heartbeat": now,
                "step": 0,
                "total_steps": None,
                "config": {},
                "message": "starting: " + " ".join(cmd[cmd.index("tactics_core") :]),
            }
        ),
    )
    return child.pid


# ----------------------------------------------------------------------------
# Signals


def install_stop_signals(recorder: Recorder) -> Callable[[], None]:
    """SIGINT / SIGTERM / SIGHUP end the run gracefully; a second SIGINT interrupts at once.

    Returns a function that restores the previous handlers. Does nothing off
    the main thread (signals can only be handled there).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGINT and recorder.stop_event.is_set():
            raise KeyboardInterrupt
        recorder.request_stop(f"stopped by {name}")

    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is None:
            continue
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):
            pass

    def restore() -> None:
        for sig, old in previous.items():
            try:
                signal.signal(sig, old)
            except (ValueError, OSError):
                pass

    return restore
