"""Messages that worker threads post to screens.

Workers never touch widgets: they post these, and the UI thread alone
updates what is on screen. Progress messages are throttled by the sender
(see `jobs.ThrottledProgress`), so a fast loop in the core cannot flood the
terminal with redraws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message


@dataclass
class JobProgress(Message):
    """Latest progress of a long job (already coalesced to a few per second)."""

    job: str
    done: int
    total: int | None
    text: str


@dataclass
class JobDone(Message):
    """A long job finished; `result` is whatever the core function returned."""

    job: str
    result: Any


@dataclass
class JobFailed(Message):
    """A long job failed or was cancelled; `error` is the core's one-line message."""

    job: str
    error: str
    cancelled: bool = False
