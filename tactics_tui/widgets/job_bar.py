"""One line that shows the running job: label, progress bar, how to cancel.

Hidden while nothing runs. The bar has no ETA and no indeterminate
animation, so it only redraws when progress actually changes.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar


class JobBar(Horizontal):
    DEFAULT_CSS = """
    JobBar { height: 1; display: none; }
    JobBar.-running { display: block; }
    JobBar #job-label { width: 1fr; }
    JobBar ProgressBar { width: 32; }
    """

    def compose(self) -> ComposeResult:
        yield Label("", markup=False, id="job-label")
        yield ProgressBar(total=1, show_eta=False, id="job-progress")

    def start(self, label: str) -> None:
        self.label = label
        self.add_class("-running")
        self.query_one("#job-label", Label).update(f"{label}…  (esc cancels)")
        bar = self.query_one(ProgressBar)
        bar.update(total=1, progress=0)
        bar.display = False

    def show(self, done: int, total: int | None, text: str) -> None:
        bar = self.query_one(ProgressBar)
        if total:
            bar.display = True
            bar.update(total=total, progress=min(done, total))
            count = ""
        else:
            bar.display = False
            count = f" {done:,}"
        message = f" {text}" if text else ""
        self.query_one("#job-label", Label).update(f"{self.label}{count}{message}  (esc cancels)")

    def stop(self) -> None:
        self.remove_class("-running")
