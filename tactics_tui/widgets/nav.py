"""The top line: every screen with its key, the current one highlighted.

It replaces Textual's Header: at 80 columns a footer cannot name seven
screens and the current screen's actions, so the footer shows "1-7" and
this line says which number is which (one space apart, to fit 80 columns).
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

SCREENS = (
    ("corpus", "Corpus", "1"),
    ("tokenizer", "Tokenizer", "2"),
    ("training", "Training", "3"),
    ("checkpoints", "Checkpoints", "4"),
    ("playground", "Playground", "5"),
    ("presets", "Presets", "6"),
    ("runs", "Runs", "7"),
)


class NavBar(Static):
    DEFAULT_CSS = """
    NavBar { height: 1; background: $panel; color: $text-muted; }
    """

    def __init__(self, current: str) -> None:
        super().__init__(nav_text(current))


def nav_text(current: str) -> Text:
    text = Text(" ")
    for mode, title, key in SCREENS:
        style = "bold reverse" if mode == current else ""
        text.append(f"{key} {title}", style=style)
        text.append(" ")
    return text
