"""Messages that worker threads post to screens.

Workers never touch widgets: they post these, and the UI thread alone
updates what is on screen. A job's outcome is a message of its own: a
`JobDone` subclass defined beside the job, whose fields are the result,
handled by the `on_<name>` method of the screen that started the job (an
outcome no screen handles bubbles up to the app, as the export's does).
`JobEnded` comes first, so the handler sees the job's slot free again.
Progress messages are throttled by the sender (see `jobs.ThrottledProgress`),
so a fast loop in the core cannot flood the terminal with redraws.
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
class JobEnded(Message):
    """The job `job` stopped running (posted just before its outcome or its `JobFailed`)."""

    job: str


class JobDone(Message):
    """A job finished: the base of every outcome (a dataclass subclass per kind of result)."""


@dataclass
class ReportDone(JobDone):
    """An outcome that is one report, a core result's `to_dict()` (subclassed per job)."""

    report: dict[str, Any]


@dataclass
class JobFailed(Message):
    """A long job failed or was cancelled; `error` is the core's one-line message."""

    job: str
    error: str
    cancelled: bool = False
