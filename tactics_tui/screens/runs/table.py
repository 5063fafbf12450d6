"""The Runs screen's table: one row per run, its mark (selected, baseline, current) and best figures."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from tactics_core.runs.run_events import reason_words

from ...widgets.charts import BASELINE_COLOUR, run_colour
from .details import num
from .selection import RunSelection

COLUMNS = ("", "run", "status", "steps", "val", "proof", "tok/s")
# When some run is a scorer: its kind, and "used" (its best used-step rank) beside the GPT's "proof".
SCORER_COLUMNS = ("", "run", "kind", "status", "steps", "val", "proof|used", "per s")


class RunsTable(DataTable):
    """The runs, keyed by name, with the scorer's columns when some run is a scorer."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.columns_shown: tuple[str, ...] = COLUMNS

    def on_mount(self) -> None:
        self.add_columns(*COLUMNS)

    def fill(self, infos: list[Any], selection: RunSelection, keep: str | None = None) -> None:
        """One row per run; the cursor back on `keep`, else on the current run, else the last."""
        columns = SCORER_COLUMNS if any(i.kind == "scorer" for i in infos) else COLUMNS
        if columns != self.columns_shown:
            self.clear(columns=True)
            self.add_columns(*columns)
            self.columns_shown = columns
        self.clear()
        for info in infos:
            scorer = info.kind == "scorer"
            self.add_row(
                mark(info, selection),
                Text(info.name),
                *([info.kind] if columns == SCORER_COLUMNS else []),
                reason_words(info.status),
                f"{info.steps}" + (f"/{info.total_steps}" if info.total_steps else ""),
                num(info.best_val_loss, ".4f"),
                num(info.best_used_rank if scorer else info.best_proof_loss, ".4f"),
                num(info.tokens_per_s, ",.0f"),
                key=info.name,
            )
        rows = [row for row, info in enumerate(infos) if info.name == keep]
        if rows:
            self.move_cursor(row=rows[0])
        elif infos:
            current = [row for row, i in enumerate(infos) if i.current]
            self.move_cursor(row=current[0] if current else len(infos) - 1)

    def refresh_marks(self, infos: list[Any], selection: RunSelection) -> None:
        """Redraw the first column after a run was selected or pinned."""
        column = list(self.columns)[0]
        for info in infos:
            self.update_cell(info.name, column, mark(info, selection))

    def highlighted(self, infos: list[Any]) -> Any | None:
        """The run under the cursor (None: no runs)."""
        if not infos or self.cursor_row is None or self.cursor_row >= len(infos):
            return None
        return infos[self.cursor_row]


def mark(info: Any, selection: RunSelection) -> Text:
    """B for the baseline, a dot in the run's colour when selected; * for the current run."""
    text = Text()
    if info.name == selection.baseline:
        text.append("B", style=f"bold {BASELINE_COLOUR[1]}")
    elif info.name in selection.selected:
        text.append("●", style=f"bold {run_colour(info.name)[1]}")
    else:
        text.append(" ")
    text.append("*" if info.current else " ")
    return text
