"""The Playground's candidates pane: free mode's ranked candidates; enter takes one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from .prover_pane import one_line


class CandidatesPane(Vertical):
    """The candidates of the last completion, best first; enter on one posts `Chosen`.

    `KEYS` are the keys of free mode, bound by the screen (they act while the goal's text area
    has the focus; see `ProverPane`).
    """

    KEYS = [
        Binding("ctrl+g", "ask", "Ask", priority=True),
        Binding("ctrl+r", "reset_proof", "Clear proof", priority=True),
    ]

    @dataclass
    class Chosen(Message):
        """The user took a candidate: the screen appends it to the proof and asks again."""

        candidate: Any

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._candidates: list[Any] = []

    def compose(self) -> ComposeResult:
        yield Label("Candidates (enter accepts one and asks again)", classes="section-title")
        yield OptionList(markup=False, id="play-candidates")

    def show(self, candidates: list[Any]) -> None:
        """List `candidates` (log-probability and text); the first is highlighted and focused."""
        self._candidates = candidates
        options = self.query_one("#play-candidates", OptionList)
        options.clear_options()
        options.add_options(
            [
                Option(one_line(f"{c.logprob:8.3f}  {c.text}", max(20, options.size.width - 4)), id=str(i))
                for i, c in enumerate(candidates)
            ]
        )
        if candidates:
            options.highlighted = 0
            options.focus()

    def clear(self) -> None:
        self._candidates = []
        self.query_one("#play-candidates", OptionList).clear_options()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.Chosen(self._candidates[int(event.option.id)]))
