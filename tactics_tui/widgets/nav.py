"""The top line: every screen with its key, the current one highlighted.

It replaces Textual's Header: at 80 columns a footer cannot name seven
screens and the current screen's actions, so the footer shows "1-7" and
this line says which number is which (one space apart, to fit 80 columns).
The screens are the app's (`registry.SCREENS`, handed in by the screen).
"""

from __future__ import annotations

from typing import Any, Iterable

from rich.text import Text
from textual.widgets import Static


class NavBar(Static):
    DEFAULT_CSS = """
    NavBar { height: 1; background: $panel; color: $text-muted; }
    """

    def __init__(self, entries: Iterable[Any], current: type) -> None:
        super().__init__(nav_text(entries, current))


def nav_text(entries: Iterable[Any], current: type) -> Text:
    """`entries`: the app's `registry.ScreenEntry` rows; `current`: the class of the screen shown."""
    text = Text(" ")
    for entry in entries:
        style = "bold reverse" if entry.screen is current else ""
        text.append(f"{entry.key} {entry.title}", style=style)
        text.append(" ")
    return text
