"""Running core functions off the UI thread.

Every long core call (stats, tokenizer training, export, completion...) runs
in a Textual thread worker through `run_job`, which turns the core's
`progress(done, total, message)` callbacks into at most a few `JobProgress`
messages a second and its outcome into `JobDone` / `JobFailed`. Errors become
the core's one-line message; unexpected ones are logged with their traceback
to `tactics-tui.log` and shown as one line, never as a traceback on screen.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from tactics_core.errors import Cancelled, TacticsError
from tactics_core.progress import CancelToken, ProgressFn

from .messages import JobDone, JobFailed, JobProgress

log = logging.getLogger("tactics_tui")

# How often a job may redraw its progress (seconds): a few times a second at
# most, which stays smooth over SSH.
PROGRESS_INTERVAL = 0.25


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ThrottledProgress:
    """A core progress callback that posts coalesced `JobProgress` messages.

    Called from the worker thread; keeps only the latest value and posts it
    when `interval` seconds have passed (always posts the final one).
    """

    def __init__(self, target: Any, job: str, interval: float = PROGRESS_INTERVAL) -> None:
        self.target = target
        self.job = job
        self.interval = interval
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int | None, message: str = "") -> None:
        now = time.monotonic()
        final = total is not None and done >= total
        with self._lock:
            if not final and now - self._last < self.interval:
                return
            self._last = now
        self.target.post_message(JobProgress(self.job, int(done), total, str(message)))


def run_job(
    target: Any,
    job: str,
    fn: Callable[[ProgressFn, CancelToken], Any],
    cancel: CancelToken,
) -> None:
    """Run `fn(progress, cancel)` here (a worker thread) and post its outcome to `target`."""
    progress = ThrottledProgress(target, job)
    try:
        result = fn(progress, cancel)
    except Cancelled:
        target.post_message(JobFailed(job, "cancelled", cancelled=True))
    except TacticsError as exc:
        log.info("%s: %s", job, exc)
        target.post_message(JobFailed(job, one_line(exc)))
    except Exception as exc:  # a bug, not the user's fault: keep the details in the log
        log.exception("%s failed unexpectedly", job)
        target.post_message(
            JobFailed(job, f"{job} failed: {type(exc).__name__}: {one_line(exc)} (details in tactics-tui.log)")
        )
    else:
        target.post_message(JobDone(job, result))
