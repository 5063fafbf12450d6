"""The top line: every screen with its key, the current one highlighted.

It replaces Textual's Header: at 80 columns a footer cannot name eight
screens and the current screen's actions, so the footer shows "1-8" and
this line says which number is which (one space apart). When the titles do
not fit the width (80 columns), the screens other than the current one go by
their short titles (`ScreenEntry.short`: "Ckpts", "Play").
The screens are the app's (`registry.SCREENS`, handed in by the screen).
"""

from __future__ import annotations

from typing import Any, Iterable

from rich.text import Text
from textual.widget import Widget


class NavBar(Widget):
    DEFAULT_CSS = """
    NavBar { height: 1; background: $panel; color: $text-muted; }
    """

    def __init__(self, entries: Iterable[Any], current: type) -> None:
        super().__init__()
        self.entries = list(entries)
        self.current = current

    def render(self) -> Text:
        return nav_text(self.entries, self.current, self.size.width or None)


def nav_text(entries: Iterable[Any], current: type, width: int | None = None) -> Text:
    """`entries`: the app's `registry.ScreenEntry` rows; `current`: the class of the screen shown;
    `width`: the columns to fit (None: full titles)."""
    entries = list(entries)

    def build(short: bool) -> Text:
        text = Text(" ")
        for entry in entries:
            mine = entry.screen is current
            title = entry.title if mine or not short else (getattr(entry, "short", "") or entry.title)
            text.append(f"{entry.key} {title}", style="bold reverse" if mine else "")
            text.append(" ")
        return text

    full = build(False)
    if width is None or full.cell_len <= width:
        return full
    return build(True)
