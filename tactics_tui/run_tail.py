"""The tail of a run folder: a thread polls it, a coalescing message tells the screen.

`RunTail.run` loops in a thread worker of the Training screen. It follows the folder that
`folder_of()` names (the run opened on the Runs screen, else the current run), reads what
`metrics.jsonl` gained (`run_events.MetricsReader`: the whole file on the first poll, which is
how attaching works) and the run state (`run_folder.read_run_state`), and when anything changed it keeps the batch and posts
`EventsArrived`. As in Toolong, the messages coalesce: a queued `EventsArrived` gives way to
the next one, and the handler `take()`s all that was gathered meanwhile, so a fast run cannot
flood the terminal with redraws. The thread never touches widgets.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from textual.message import Message

from tactics_core.runs import run_folder
from tactics_core.runs.run_events import RESET, MetricsReader, RunEvent, metrics_path

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
