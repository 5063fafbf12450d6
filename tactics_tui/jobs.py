"""Running core functions off the UI thread, and the one line an error becomes.

Every long core call (stats, tokenizer training, export, completion...) runs
in a Textual thread worker through `run_job`, which turns the core's
`progress(done, total, message)` callbacks into at most a few `JobProgress`
messages a second, and posts `JobEnded` then the job's outcome: the
`JobDone` message the job function returned, or `JobFailed`. `error_line` is
the one place an exception becomes what the user reads, for jobs and for the
UI thread alike: a `TacticsError` is the core's one-line message; anything
else is a bug, logged with its traceback to `tactics-tui.log` and shown as
one line, never as a traceback on screen.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from tactics_core.common.errors import Cancelled, TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn
from tactics_core.common.workspace import TUI_LOG_FILE as LOG_FILE  # in the workspace

from .messages import JobDone, JobEnded, JobFailed, JobProgress

log = logging.getLogger("tactics_tui")

# How often a job may redraw its progress (seconds): a few times a second at
# most, which stays smooth over SSH.
PROGRESS_INTERVAL = 0.25


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def error_line(exc: BaseException, job: str | None = None) -> str:
    """What the user reads for `exc`, raised in job `job` (None: on the UI thread); logged."""
    where = job or "the UI"
    if isinstance(exc, TacticsError):
        log.info("%s: %s", where, exc)
        return one_line(exc)
    log.error("%s failed unexpectedly", where, exc_info=exc)  # a bug, not the user's fault
    failed = f"{job} failed: " if job else ""
    return f"{failed}{type(exc).__name__}: {one_line(exc)} (details in {LOG_FILE})"


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
    fn: Callable[[ProgressFn, CancelToken], JobDone],
    cancel: CancelToken,
) -> None:
    """Run `fn(progress, cancel)` here (a worker thread); post `JobEnded`, then its outcome to `target`."""
    progress = ThrottledProgress(target, job)
    outcome: JobDone | JobFailed
    try:
        outcome = fn(progress, cancel)
        if not isinstance(outcome, JobDone):
            raise TypeError(f"the job returned {type(outcome).__name__}, not a JobDone message")
    except Cancelled:
        outcome = JobFailed(job, "cancelled", cancelled=True)
    except Exception as exc:
        outcome = JobFailed(job, error_line(exc, job))
    target.post_message(JobEnded(job))
    target.post_message(outcome)
