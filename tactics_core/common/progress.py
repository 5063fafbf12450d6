"""Progress reporting and cancellation shared by every long operation.

Each long function takes `progress: ProgressFn | None` and
`cancel: CancelToken | None`, so the CLI (a console bar) and the TUI (a
progress widget fed from a worker) show the same progress and can stop the
same work.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable

from tactics_core.common.errors import Cancelled

# progress(done, total, message): total is None when unknown.
ProgressFn = Callable[[int, int | None, str], None]


class CancelToken:
    """A thread-safe flag; long work calls `check()` at safe points."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()


def report(progress: ProgressFn | None, done: int, total: int | None, message: str = "") -> None:
    """Call `progress` if one was given."""
    if progress is not None:
        progress(done, total, message)


def check(cancel: CancelToken | None) -> None:
    """Raise `Cancelled` if `cancel` was set."""
    if cancel is not None:
        cancel.check()


PLAIN_INTERVAL = 5.0  # seconds between the plain progress lines written where stderr is no terminal


class ConsoleProgress:
    """The CLI's progress on stderr: a bar redrawn at most ~10 times a second on a terminal;
    elsewhere (logs, pipes, CI) one plain line every PLAIN_INTERVAL seconds, so long work is
    never silent and short work prints nothing.
    """

    def __init__(self, label: str, stream=None, min_interval: float = 0.1) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.min_interval = min_interval
        self.plain_interval = PLAIN_INTERVAL
        self._last = 0.0
        self._start = time.monotonic()
        self._last_plain = self._start
        self._drawn = False

    def __call__(self, done: int, total: int | None, message: str = "") -> None:
        now = time.monotonic()
        elapsed = now - self._start
        if not self.enabled:
            if now - self._last_plain >= self.plain_interval:
                self._last_plain = now
                amount = f"{done}/{total} ({min(1.0, done / total):.0%})" if total else f"{done}"
                self.stream.write(f"{self.label} {amount} {elapsed:.0f}s {message}".rstrip() + "\n")
                self.stream.flush()
            return
        final = total is not None and done >= total
        if not final and now - self._last < self.min_interval:
            return
        self._last = now
        if total:
            frac = min(1.0, done / total)
            width = 24
            bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
            eta = (elapsed / frac - elapsed) if frac > 0 else 0.0
            line = f"{self.label} [{bar}] {done}/{total} {frac:5.1%} eta {eta:5.0f}s {message}"
        else:
            line = f"{self.label} {done} {elapsed:5.1f}s {message}"
        self.stream.write("\r" + line[:120].ljust(120))
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()


class KeepAlive:
    """A progress function that re-sends its last report every `interval` seconds, for work
    that cannot report (BPE's merge phase runs in Rust): the CLI's plain lines and the TUI's
    elapsed time keep going, so a long silent phase never looks hung. Use as a context manager.
    """

    def __init__(self, progress: ProgressFn | None, interval: float = 1.0) -> None:
        self.progress = progress
        self.interval = interval
        self._last: tuple[int, int | None, str] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, done: int, total: int | None, message: str = "") -> None:
        with self._lock:
            self._last = (done, total, message)
        report(self.progress, done, total, message)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                last = self._last
            if last is not None:
                report(self.progress, *last)

    def __enter__(self) -> "KeepAlive":
        if self.progress is not None:
            self._thread = threading.Thread(target=self._run, name="progress-keepalive", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

