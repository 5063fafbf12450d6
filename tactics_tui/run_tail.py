"""The tail of a run folder: a thread polls it, a coalescing message tells the screen.

`RunTail.run` loops in a thread worker of the Training screen. It follows the folder that
`folder_of()` names (the run opened on the Runs screen, else the current run), reads what
`metrics.jsonl` gained (`run_events.MetricsReader`: the whole file on the first poll, which is
how attaching works) and the run state (`run_folder.read_run_state`), and when anything changed it keeps the batch and posts
`EventsArrived`. As in Toolong, the messages coalesce: a queued `EventsArrived` gives way to
the next one, and the handler `take()`s all that was gathered meanwhile, so a fast run cannot
flood the terminal with redraws. The thread never touches widgets.

`SweepTail` does the same for the Sweeps screen: it polls the workspace's sweeps folder, reads a
sweep's study again only when its `study.db` changed, looks at each sweep's process
(`sweeps.launch.sweep_process`) and posts a coalescing `SweepsArrived` on news.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from textual.message import Message

from tactics_core.common.workspace import SWEEP_FILE, SWEEP_PROCESS_FILE, SWEEP_STUDY_FILE
from tactics_core.runs import run_folder
from tactics_core.runs.run_events import RESET, MetricsReader, RunEvent, metrics_path
from tactics_core.sweeps import launch, record

from .jobs import one_line

POLL_SECONDS = 0.5


class EventsArrived(Message, bubble=False):
    """The tail gathered new events, a new run state or a new error: `RunTail.take()` them."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EventsArrived)  # one take() collects both


@dataclass
class TailBatch:
    """What the tail gathered since the last `take()`: events in order, the latest state."""

    events: list[RunEvent | dict[str, Any]] = field(default_factory=list)  # {"event": RESET}: another history follows
    state: run_folder.RunState | None = None
    error: str | None = None  # the tail's one-line error, None once it reads again
    folder: Path | None = None  # the folder read


class RunTail:
    """Polls a run folder every `poll_seconds`; posts `EventsArrived` to `target` on news."""

    def __init__(self, target: Any, folder_of: Callable[[], Path], poll_seconds: float = POLL_SECONDS) -> None:
        self.target = target
        self.folder_of = folder_of
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._batch = TailBatch()

    def take(self) -> TailBatch:
        """Everything gathered so far (UI thread); the events are handed over once."""
        with self._lock:
            batch = self._batch
            self._batch = TailBatch(state=batch.state, error=batch.error, folder=batch.folder)
        return batch

    def run(self, cancelled: Callable[[], bool]) -> None:
        """Poll until `cancelled()` (in a worker thread)."""
        reader = None
        folder = None
        last: tuple = (None, None)  # (state key, error) last handed on
        while not cancelled():
            events: list[RunEvent | dict[str, Any]] = []
            state = None
            error = None
            try:
                now = self.folder_of()
                if reader is None or now != folder:
                    if reader is not None:
                        events = [{"event": RESET}]  # another run's folder: its own history
                    folder = now
                    reader = MetricsReader(metrics_path(folder))
                events += reader.poll()
                if reader.restarted:
                    events = [{"event": RESET}] + events
                state = run_folder.read_run_state(folder, resolve=False)
            except Exception as exc:
                error = one_line(exc)
            news = (_state_key(state), error)
            if events or news != last:
                last = news
                with self._lock:
                    self._batch.events += events
                    self._batch.state, self._batch.error, self._batch.folder = state, error, folder
                self.target.post_message(EventsArrived())
            deadline = time.monotonic() + self.poll_seconds
            while time.monotonic() < deadline:
                if cancelled():
                    return
                time.sleep(0.05)


def _state_key(state: run_folder.RunState | None) -> tuple | None:
    """What of a run state is news to the screen."""
    if state is None:
        return None
    return (state.pid, state.state, state.alive, state.step)


# ----------------------------------------------------------------------------
# The workspace's sweeps (the Sweeps screen)

SWEEP_POLL_SECONDS = 1.0


class SweepsArrived(Message, bubble=False):
    """The sweeps' tail saw a change (a sweep, a trial, a process): `SweepTail.take()` it."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SweepsArrived)  # one take() gets the latest


@dataclass
class SweepsBatch:
    """The workspace's sweeps as last read: their names in order, each one's summary (None until
    its study exists), process and one-line read error."""

    names: list[str] = field(default_factory=list)
    summaries: dict[str, Any] = field(default_factory=dict)  # name -> record.SweepSummary | None
    processes: dict[str, launch.SweepProcess] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class SweepTail:
    """Polls the sweeps folder every `poll_seconds` (or at once after `poke()`); a sweep's study is
    read again (`record.read_sweep`, short SQLite transactions) only when its file changed."""

    def __init__(self, target: Any, sweeps_dir_of: Callable[[], Path], poll_seconds: float = SWEEP_POLL_SECONDS) -> None:
        self.target = target
        self.sweeps_dir_of = sweeps_dir_of
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._batch = SweepsBatch()
        self._poke = threading.Event()

    def take(self) -> SweepsBatch:
        with self._lock:
            return self._batch

    def poke(self) -> None:
        """Read again now (a sweep was started or stopped from the screen)."""
        self._poke.set()

    def run(self, cancelled: Callable[[], bool]) -> None:
        """Poll until `cancelled()` (in a worker thread)."""
        cache: dict[str, tuple[tuple, Any, str]] = {}  # name -> (file identity, summary, error)
        last: tuple | None = None
        while not cancelled():
            self._poke.clear()
            batch = SweepsBatch()
            try:
                folders = _sweep_folders(self.sweeps_dir_of())
            except OSError as exc:
                folders = []
                batch.errors[""] = one_line(exc)
            for folder in folders:
                name = folder.name
                batch.names.append(name)
                ident = (file_identity(folder / SWEEP_STUDY_FILE), file_identity(folder / SWEEP_FILE))
                cached = cache.get(name)
                if cached is None or cached[0] != ident:
                    summary, error = None, ""
                    if ident[0]:
                        try:
                            summary = record.read_sweep(folder)
                        except Exception as exc:  # a study being created, or a damaged file: say so, keep polling
                            error = one_line(exc)
                    cached = cache[name] = (ident, summary, error)
                batch.summaries[name] = cached[1]
                if cached[2]:
                    batch.errors[name] = cached[2]
                batch.processes[name] = launch.sweep_process(folder)
            key = (tuple(batch.names), tuple(cache[n][0] for n in batch.names if n in cache),
                   tuple(batch.processes.values()), tuple(batch.errors.items()))
            if key != last:
                last = key
                with self._lock:
                    self._batch = batch
                self.target.post_message(SweepsArrived())
            deadline = time.monotonic() + self.poll_seconds
            while time.monotonic() < deadline and not self._poke.is_set():
                if cancelled():
                    return
                time.sleep(0.05)


def _sweep_folders(root: Path) -> list[Path]:
    """Folders of `root` that hold a sweep's study, or a sweep process started moments ago."""
    if not root.is_dir():
        return []
    return [p for p in sorted(root.iterdir())
            if p.is_dir() and ((p / SWEEP_STUDY_FILE).is_file() or (p / SWEEP_PROCESS_FILE).is_file())]


def file_identity(path: Path) -> tuple:
    """(inode, size, mtime) of a file, () when it is gone: what tells a re-read is needed."""
    try:
        st = path.stat()
    except OSError:
        return ()
    return (st.st_ino, st.st_size, st.st_mtime_ns)
