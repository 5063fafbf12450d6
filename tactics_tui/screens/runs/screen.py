"""Runs screen: every training run of the workspace, their curves overlaid, what differs.

The table comes from `workspace_runs.list_runs` (metrics.jsonl, run.json and checkpoint sidecars of
each run folder, read in a worker). Space selects runs whose loss curves the chart overlays,
each in its own colour (stable: chosen from the run's name); b pins the highlighted run as the
baseline, drawn in white whatever else is selected. d shows the settings that differ between
two runs (the two selected, or the highlighted one and the baseline) with their best figures.
Enter opens the highlighted run on the Training screen, c on Checkpoints, p in the Playground;
e exports its best model; r removes it (after a confirmation; never a live run).

A workspace with scorer runs (acorn's proof-step scorer) gets a kind column, and a
scorer's row holds its best used-step rank where a GPT's holds its best proof-line
loss and its rows/s where a GPT's holds tokens/s (the side box and the diff name
them: AUC, used rank).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Static

from tactics_core.common.formatting import human_size
from tactics_core.runs import workspace_runs
from tactics_core.runs.checkpoints import latest_checkpoint
from tactics_core.runs.run_events import EvalEvent, StepEvent, metrics_path, read_metrics

from ...messages import JobDone
from ...run_tail import file_identity
from ...widgets.charts import OverlayChart
from ..base import WorkScreen
from ..dialogs import ConfirmDialog
from .details import diff_text, run_details
from .selection import RunSelection
from .table import RunsTable

LIVE_REFRESH_S = 3.0


class RunsScreen(WorkScreen):
    BINDINGS = [
        Binding("space", "toggle_select", "Select", tooltip="Overlay this run's loss curve"),
        Binding("b", "baseline", "Baseline", tooltip="Pin this run as the baseline of the chart"),
        Binding("d", "diff", "Diff", tooltip="Settings that differ: the two selected runs, or this one and the baseline"),
        Binding("enter", "open('training')", "Open", show=False),
        Binding("c", "open('checkpoints')", "Ckpts", tooltip="Open this run on the Checkpoints screen"),
        Binding("p", "open('playground')", "Play", tooltip="Open this run's models in the Playground"),
        Binding("e", "export", "Export", tooltip="Export this run's best model"),
        Binding("v", "toggle_val", "Val", tooltip="Train loss / validation loss curves"),
        Binding("r", "remove", "Remove", show=False),
        Binding("g", "reload", "Reload", show=False),
    ]

    AUTO_FOCUS = "#runs-table"

    def __init__(self) -> None:
        super().__init__()
        self.infos: list[Any] = []
        self.exports: list[Any] = []
        self.selection = RunSelection()
        self.show_val = False
        self.diff_text: str | None = None
        self._curves: dict[str, tuple[tuple, list, list]] = {}  # name -> (file identity, train, val)
        self._timer = None

    @property
    def selected_names(self) -> list[str]:
        return self.selection.selected

    @property
    def baseline(self) -> str | None:
        return self.selection.baseline

    def compose_body(self) -> ComposeResult:
        yield RunsTable(id="runs-table")
        with Horizontal(id="runs-middle"):
            yield OverlayChart(id="runs-chart")
            yield Static("", markup=False, id="runs-side")

    def on_mount(self) -> None:
        self.action_reload()
        self._timer = self.set_interval(LIVE_REFRESH_S, self._live_refresh)

    def on_screen_resume(self) -> None:
        self.action_reload()

    def reread(self) -> None:
        self.action_reload()

    def _live_refresh(self) -> None:
        if self.is_current and any(i.live for i in self.infos):
            self.action_reload()

    # -- loading ------------------------------------------------------------------
    def action_reload(self) -> None:
        ck, export_dir = self.ws.checkpoint_dir, self.ws.export_dir

        def job(progress, cancel):
            return RunsListed(workspace_runs.list_runs(ck), workspace_runs.list_exports(export_dir))

        if not self.busy("list"):
            self.start_job("list", job, "Reading runs")

    def on_runs_listed(self, message: RunsListed) -> None:
        keep = self.highlighted()
        self.infos, self.exports = message.infos, message.exports
        self.selection.keep_only({i.name for i in self.infos})
        self.query_one(RunsTable).fill(self.infos, self.selection, keep.name if keep is not None else None)
        self._show_side()
        self._load_curves()

    def on_curves_read(self, message: CurvesRead) -> None:
        self._curves.update(message.curves)
        self._draw_chart()

    def _shown(self) -> list[Any]:
        """The runs the chart draws: the baseline first, then the selected ones."""
        return self.selection.shown(self.infos)

    def _load_curves(self) -> None:
        wanted = []
        for info in self._shown():
            ident = file_identity(metrics_path(info.path))
            cached = self._curves.get(info.name)
            if cached is None or cached[0] != ident:
                wanted.append((info.name, info.path, ident))
        if not wanted:
            self._draw_chart()
            return

        def job(progress, cancel):
            out = {}
            for name, path, ident in wanted:
                train, val = [], []
                for e in read_metrics(metrics_path(path)):
                    if isinstance(e, StepEvent) and _finite(e.loss):
                        train.append((int(e.step or 0), float(e.loss)))
                    elif isinstance(e, EvalEvent) and _finite(e.val_loss):
                        val.append((int(e.step or 0), float(e.val_loss)))
                out[name] = (ident, train, val)
            return CurvesRead(out)

        if not self.busy("curves"):
            self.start_job("curves", job, "Reading loss curves")

    def _draw_chart(self) -> None:
        curves = []
        for info in self._shown():
            cached = self._curves.get(info.name)
            points = (cached[2] if self.show_val else cached[1]) if cached else []
            curves.append((info.name, points, info.name == self.baseline))
        self.query_one(OverlayChart).show_runs(curves, "validation loss" if self.show_val else "train loss")

    # -- the side box ------------------------------------------------------------------
    def highlighted(self) -> Any | None:
        return self.query_one(RunsTable).highlighted(self.infos)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.diff_text = None
        self._show_side()

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        await self.action_open("training")

    def _show_side(self) -> None:
        box = self.query_one("#runs-side", Static)
        if self.diff_text is not None:
            box.update(self.diff_text)
            return
        info = self.highlighted()
        if info is None:
            box.update(f"No runs in {self.ws.checkpoint_dir} yet: train one (screen 3, s).")
            return
        box.update(run_details(info, self.exports))

    # -- actions ------------------------------------------------------------------------
    def _need(self) -> Any | None:
        info = self.highlighted()
        if info is None:
            self.notify("no run highlighted", severity="warning")
        return info

    def action_toggle_select(self) -> None:
        info = self._need()
        if info is None:
            return
        self.selection.toggle(info.name)
        self.query_one(RunsTable).refresh_marks(self.infos, self.selection)
        self._load_curves()

    def action_baseline(self) -> None:
        info = self._need()
        if info is None:
            return
        self.selection.pin(info.name)
        self.query_one(RunsTable).refresh_marks(self.infos, self.selection)
        self._load_curves()

    def action_toggle_val(self) -> None:
        self.show_val = not self.show_val
        self._draw_chart()

    def action_diff(self) -> None:
        pair = self.diff_pair()
        if pair is None:
            self.notify("select two runs (space), or pin a baseline (b) and highlight another", severity="warning")
            return
        self.diff_text = diff_text(workspace_runs.diff_runs(*pair))
        self._show_side()

    def diff_pair(self) -> tuple[Any, Any] | None:
        return self.selection.diff_pair(self.infos, self.highlighted())

    async def action_open(self, mode: str) -> None:
        info = self._need()
        if info is None:
            return
        if mode == "playground" and info.kind == "scorer":
            self.notify(f"run {info.name} trains a proof-step scorer: the Playground writes proof lines with a GPT", severity="warning")
            return
        await self.app.open_run(info.path, mode)

    def action_export(self) -> None:
        info = self._need()
        if info is None:
            return
        folder = Path(info.path)
        best = folder / "best_model.pt"
        if not best.is_file():
            latest = self.guard(lambda: latest_checkpoint(folder))
            if latest is None:
                self.app.show_error(f"run {info.name} has no checkpoint to export yet")
                return
            self.notify(f"run {info.name} has no best_model.pt yet: exporting {latest.name}")
            best = latest
        self.app.export_model(best)

    def action_remove(self) -> None:
        info = self._need()
        if info is None:
            return
        if info.live:
            self.app.show_error(f"run {info.name} is running; stop it first (Training screen, x)")
            return
        ck = self.ws.checkpoint_dir

        def answer(yes: bool | None) -> None:
            if yes:
                if self.guard(lambda: workspace_runs.remove_run(ck, info.name)) is not None:
                    self.notify(f"removed run {info.name}")
                    if self.app.selected_run is not None and Path(self.app.selected_run) == Path(info.path):
                        self.app.selected_run = None
                self.action_reload()

        size = human_size(info.size_bytes)
        self.app.push_screen(
            ConfirmDialog(f"Remove run {info.name} ({info.checkpoints} checkpoints, {size})?\nThis cannot be undone.", yes="Remove", no="Keep"),
            answer,
        )


@dataclass
class RunsListed(JobDone):
    """The workspace's runs and every export folder (for lineage)."""

    infos: list[workspace_runs.RunInfo]
    exports: list[workspace_runs.ExportInfo]


@dataclass
class CurvesRead(JobDone):
    """Loss curves read: run name -> (metrics file identity, train points, val points)."""

    curves: dict[str, tuple[tuple, list, list]]


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
