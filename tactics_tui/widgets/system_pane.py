"""The system pane: what the training process costs (CPU %, RSS, threads; GPU on CUDA).

A thread worker samples the process (`tactics_core.common.system.ProcessSampler`, psutil) at most
twice a second and hands the UI thread one line, only when it changed. The Training screen
tells it which process to watch (`watch_process`), from the run state it already polls.
"""

from __future__ import annotations

import threading
import time

from rich.text import Text
from textual import work
from textual.widget import Widget
from textual.worker import get_current_worker

from tactics_core.common.system import ProcessSampler, RanksSampler, stats_line

SAMPLE_SECONDS = 0.5  # at most 2 updates per second


class SystemPane(Widget):
    """One line, fixed height: a new sample repaints the line only (no layout pass of the screen)."""

    DEFAULT_CSS = """
    SystemPane { height: 1; margin: 0 1; color: $text-muted; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._alive = False
        self._gpu = False
        self._pids: tuple[int, ...] = ()  # every rank of a data-parallel run, else ()
        self.line = "system: no training process"

    def on_mount(self) -> None:
        self._sample()

    def watch_process(self, pid: int | None, alive: bool, gpu: bool = False, pids: list[int] | None = None) -> None:
        """Watch `pid` (the run's process; `pids`: every rank of a data-parallel run, summed);
        `alive` False once the run state says it ended."""
        with self._lock:
            self._pid, self._alive, self._gpu = (int(pid) if pid else None), bool(alive), bool(gpu)
            self._pids = tuple(int(p) for p in pids) if pids and len(pids) > 1 else ()

    def render(self) -> Text:
        return Text(self.line, no_wrap=True, overflow="ellipsis")  # never markup

    def _show(self, line: str) -> None:
        self.line = line
        self.refresh()

    @work(thread=True, exclusive=True, group="system")
    def _sample(self) -> None:
        worker = get_current_worker()
        sampler = None
        watched = None  # (pid, gpu, pids) the sampler was made for
        last = None
        while not worker.is_cancelled:
            with self._lock:
                pid, alive, gpu, pids = self._pid, self._alive, self._gpu, self._pids
            if pid is None:
                line = "system: no training process"
                sampler = None
            elif not alive:
                line = f"system: the training process (pid {pid}) is gone"
                sampler = None
            else:
                if sampler is None or watched != (pid, gpu, pids):
                    watched = (pid, gpu, pids)
                    sampler = RanksSampler(list(pids), gpu=gpu) if pids else ProcessSampler(pid, gpu=gpu)
                try:
                    line = stats_line(sampler.sample())
                except Exception as exc:  # a sample must never take the screen down
                    line = f"system: {type(exc).__name__}: {exc}"[:200]
            if line != last:
                last = line
                try:
                    self.app.call_from_thread(self._show, line)
                except RuntimeError:  # the app is shutting down
                    return
            deadline = time.monotonic() + SAMPLE_SECONDS
            while time.monotonic() < deadline:
                if worker.is_cancelled:
                    return
                time.sleep(0.05)
