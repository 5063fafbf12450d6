"""What every screen shares: a job bar, cancellable workers, error notices.

A screen starts long work with `start_job(job, fn, label)`: `job` names the
slot (one job of a name at a time), `fn(progress, cancel)` runs in a thread
worker and returns its outcome, a `JobDone` message the screen handles in
`on_<name>`; progress arrives throttled, and a failure becomes one notice.
Escape cancels the running job through its `CancelToken`.
"""

from __future__ import annotations

from typing import Any, Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, TextArea

from tactics_core.common.progress import CancelToken

from ..jobs import run_job
from ..messages import JobDone, JobEnded, JobFailed, JobProgress
from ..widgets.job_bar import JobBar
from ..widgets.nav import NavBar


class WorkScreen(Screen):
    """A screen with a header, footer, job bar and cancellable background jobs."""

    BINDINGS = [Binding("escape", "cancel_job", "Cancel", show=False)]
    # Start with no text field focused, so the single-key bindings (1-8, e,
    # the screen's actions) work and show in the footer at once.
    AUTO_FOCUS = None

    def __init__(self) -> None:
        super().__init__()
        self._tokens: dict[str, CancelToken] = {}

    def compose(self) -> ComposeResult:
        yield NavBar(self.app.screen_entries, type(self))
        yield from self.compose_body()
        yield JobBar()
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:  # pragma: no cover - overridden
        yield from ()

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None, markup: bool = False) -> None:
        """Notices carry file names and core messages: never parsed as markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def reread(self) -> None:
        """The run shown changed or an export appeared: reread what this screen lists.

        Default: nothing to reread (the Training screen's tail follows the run by itself).
        """

    @property
    def ws(self):
        return self.app.ws

    # -- jobs ------------------------------------------------------------
    def busy(self, job: str) -> bool:
        return job in self._tokens

    def start_job(self, job: str, fn: Callable[[Any, CancelToken], JobDone], label: str) -> bool:
        """Run `fn(progress, cancel)` in a worker; False if job `job` already runs."""
        if job in self._tokens:
            self.notify(f"{label} is already running", severity="warning")
            return False
        token = CancelToken()
        self._tokens[job] = token
        self.query_one(JobBar).start(label)
        self._worker(job, fn, token)
        return True

    @work(thread=True, group="jobs")
    def _worker(self, job: str, fn: Callable[[Any, CancelToken], JobDone], token: CancelToken) -> None:
        run_job(self, job, fn, token)

    def action_cancel_job(self) -> None:
        """Escape: cancel running jobs, else leave the text field being typed in."""
        if self._tokens:
            for token in self._tokens.values():
                token.cancel()
        elif isinstance(self.focused, (Input, TextArea)):
            self.set_focus(None)

    def on_job_progress(self, message: JobProgress) -> None:
        if message.job in self._tokens:
            self.query_one(JobBar).show(message.done, message.total, message.text)

    def on_job_ended(self, message: JobEnded) -> None:
        self._tokens.pop(message.job, None)
        if not self._tokens:
            self.query_one(JobBar).stop()

    def on_job_failed(self, message: JobFailed) -> None:
        if message.cancelled:
            self.notify(f"{message.job}: cancelled", severity="warning")
        else:
            self.app.show_error(message.error)

    def guard(self, fn: Callable[[], Any]) -> Any:
        """Run a quick core call on the UI thread, turning errors into notices."""
        return self.app.guard(fn)
