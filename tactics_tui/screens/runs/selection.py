"""Which runs the Runs screen compares, without Textual: the selected runs, in the order chosen, and the baseline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunSelection:
    """The runs chosen for the chart (space) and the baseline (b), by name.

    The runs themselves are the screen's list (`RunInfo`s); a name whose run is gone is
    dropped when the list is read again (`keep_only`)."""

    selected: list[str] = field(default_factory=list)  # in the order chosen
    baseline: str | None = None

    def toggle(self, name: str) -> None:
        """Select `name`, or unselect it."""
        if name in self.selected:
            self.selected.remove(name)
        else:
            self.selected.append(name)

    def pin(self, name: str) -> None:
        """Pin `name` as the baseline, or unpin it if it is the baseline."""
        self.baseline = None if self.baseline == name else name

    def keep_only(self, names: set[str]) -> None:
        """Forget the runs no longer listed."""
        self.selected = [n for n in self.selected if n in names]
        if self.baseline not in names:
            self.baseline = None

    def shown(self, infos: list[Any]) -> list[Any]:
        """The runs the chart draws: the baseline first, then the selected ones."""
        by_name = {i.name: i for i in infos}
        names = ([self.baseline] if self.baseline else []) + [n for n in self.selected if n != self.baseline]
        return [by_name[n] for n in names if n in by_name]

    def diff_pair(self, infos: list[Any], highlighted: Any | None) -> tuple[Any, Any] | None:
        """The two runs a diff compares: the last two selected, else the baseline and the highlighted run."""
        by_name = {i.name: i for i in infos}
        chosen = [by_name[n] for n in self.selected if n in by_name]
        if len(chosen) >= 2:
            return chosen[-2], chosen[-1]
        if self.baseline and highlighted is not None and highlighted.name != self.baseline and self.baseline in by_name:
            return by_name[self.baseline], highlighted
        return None
