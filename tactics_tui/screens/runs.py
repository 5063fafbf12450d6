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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Static

from tactics_core.common.formatting import format_duration, human_size
from tactics_core.runs import workspace_runs
from tactics_core.runs.checkpoints import latest_checkpoint
from tactics_core.runs.run_events import EvalEvent, StepEvent, metrics_path, read_metrics, reason_words

from ..messages import JobDone
from ..widgets.charts import BASELINE_COLOUR, OverlayChart, run_colour
from .base import WorkScreen
from .dialogs import ConfirmDialog

LIVE_REFRESH_S = 3.0
COLUMNS = ("", "run", "status", "steps", "val", "proof", "tok/s")
# When some run is a scorer: its kind, and "used" (its best used-step rank) beside the GPT's "proof".
SCORER_COLUMNS = ("", "run", "kind", "status", "steps", "val", "proof|used", "per s")
DIFF_LINES = 5  # settings shown in the side box; `tactics runs diff` prints them all


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
        self.selected_names: list[str] = []  # in the order chosen
        self.baseline: str | None = None
        self.show_val = False
        self.diff_text: str | None = None
        self._curves: dict[str, tuple[tuple, list, list]] = {}  # name -> (file identity, train, val)
        self._timer = None
        self.columns: tuple[str, ...] = COLUMNS

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="runs-middle"):
            yield OverlayChart(id="runs-chart")
            yield Static("", markup=False, id="runs-side")

    def on_mount(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        table.add_columns(*COLUMNS)
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
        names = {i.name for i in self.infos}
        self.selected_names = [n for n in self.selected_names if n in names]
        if self.baseline not in names:
            self.baseline = None
        self._fill_table(keep.name if keep is not None else None)
        self._load_curves()

    def on_curves_read(self, message: CurvesRead) -> None:
        self._curves.update(message.curves)
        self._draw_chart()

    def _fill_table(self, keep: str | None = None) -> None:
        table = self.query_one("#runs-table", DataTable)
        columns = SCORER_COLUMNS if any(i.kind == "scorer" for i in self.infos) else COLUMNS
        if columns != self.columns:
            table.clear(columns=True)
            table.add_columns(*columns)
            self.columns = columns
        table.clear()
        for info in self.infos:
            scorer = info.kind == "scorer"
            table.add_row(
                self._mark(info),
                Text(info.name),
                *([info.kind] if columns == SCORER_COLUMNS else []),
                reason_words(info.status),
                f"{info.steps}" + (f"/{info.total_steps}" if info.total_steps else ""),
                _num(info.best_val_loss, ".4f"),
                _num(info.best_used_rank if scorer else info.best_proof_loss, ".4f"),
                _num(info.tokens_per_s, ",.0f"),
                key=info.name,
            )
        rows = [row for row, info in enumerate(self.infos) if info.name == keep]
        if rows:
            table.move_cursor(row=rows[0])
        elif self.infos:
            current = [row for row, i in enumerate(self.infos) if i.current]
            table.move_cursor(row=current[0] if current else len(self.infos) - 1)
        self._show_side()

    def _mark(self, info: Any) -> Text:
        text = Text()
        if info.name == self.baseline:
            text.append("B", style=f"bold {BASELINE_COLOUR[1]}")
        elif info.name in self.selected_names:
            text.append("●", style=f"bold {run_colour(info.name)[1]}")
        else:
            text.append(" ")
        text.append("*" if info.current else " ")
        return text

    def _shown(self) -> list[Any]:
        """The runs the chart draws: the baseline first, then the selected ones."""
        by_name = {i.name: i for i in self.infos}
        names = ([self.baseline] if self.baseline else []) + [n for n in self.selected_names if n != self.baseline]
        return [by_name[n] for n in names if n in by_name]

    def _load_curves(self) -> None:
        wanted = []
        for info in self._shown():
            ident = _identity(metrics_path(info.path))
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
        table = self.query_one("#runs-table", DataTable)
        if not self.infos or table.cursor_row is None or table.cursor_row >= len(self.infos):
            return None
        return self.infos[table.cursor_row]

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
        if info.name in self.selected_names:
            self.selected_names.remove(info.name)
        else:
            self.selected_names.append(info.name)
        self._refresh_marks()
        self._load_curves()

    def action_baseline(self) -> None:
        info = self._need()
        if info is None:
            return
        self.baseline = None if self.baseline == info.name else info.name
        self._refresh_marks()
        self._load_curves()

    def _refresh_marks(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        column = list(table.columns)[0]
        for info in self.infos:
            table.update_cell(info.name, column, self._mark(info))

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
        by_name = {i.name: i for i in self.infos}
        chosen = [by_name[n] for n in self.selected_names if n in by_name]
        if len(chosen) >= 2:
            return chosen[-2], chosen[-1]
        info = self.highlighted()
        if self.baseline and info is not None and info.name != self.baseline and self.baseline in by_name:
            return by_name[self.baseline], info
        return None

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


def run_details(info: Any, exports: list[Any]) -> str:
    """The highlighted run in a few lines: status, figures, where, which exports came from it."""
    status = reason_words(info.status)
    started = time.strftime("%m-%d %H:%M", time.localtime(info.started)) if info.started else "–"
    lines = [
        info.name + (" (current)" if info.current else ""),
        f"{status} · {info.preset or '?'} · {started}",
        f"steps {info.steps}" + (f"/{info.total_steps}" if info.total_steps else "") + f" · {format_duration(info.duration_s)}",
    ]
    if info.kind == "scorer":
        lines += [
            f"best val   {_num(info.best_val_loss, '.4f')} (scorer)",
            f"best AUC   {_num(info.best_auc, '.4f')} · used rank {_num(info.best_used_rank, '.4f')}",
            f"rows/s     {_num(info.tokens_per_s, ',.0f')}",
        ]
    else:
        lines += [
            f"best val   {_num(info.best_val_loss, '.4f')} ({_num(info.best_val_bpb, '.3f')} bpb)",
            f"best proof {_num(info.best_proof_loss, '.4f')} ({_num(info.best_proof_bpb, '.3f')} bpb)",
            f"tokens/s   {_num(info.tokens_per_s, ',.0f')}",
        ]
    if info.message and info.status in ("failed", "vanished", "stopped"):
        lines.append(info.message[:160])
    mine = [e for e in exports if e.run == info.name and e.checkpoint and Path(e.checkpoint).parent == Path(info.path).resolve()]
    if not mine:
        mine = [e for e in exports if e.run == info.name]
    for e in mine[-3:]:
        lines.append(f"export {Path(e.path).name} ← {Path(e.checkpoint or '?').name} @ {e.step}")
    lines.append(str(info.path))
    return "\n".join(lines)


def diff_text(diff: Any) -> str:
    """What `tactics runs diff` prints, narrow enough for the side box."""
    lines = [f"{diff.a} vs", f"{diff.b}"]
    if diff.settings:
        for key, va, vb in diff.settings[:DIFF_LINES]:
            lines.append(f"{key}: {_value(va)} → {_value(vb)}")
        if len(diff.settings) > DIFF_LINES:  # the box holds 14 lines at 80x24
            lines.append(f"… {len(diff.settings) - DIFF_LINES} more: tactics runs diff")
    else:
        lines.append("same settings")
    lines.append("")
    scorer = any(key == "best_auc" for key, _, _ in diff.figures)  # a scorer in the pair: leave out figures neither has
    for key, va, vb in diff.figures:
        if scorer and va is None and vb is None:
            continue
        if key in ("best_val_loss", "best_proof_loss", "best_proof_bpb", "best_auc", "best_used_rank", "steps", "tokens_per_s"):
            spec = ".3f" if key.endswith("bpb") else (",.0f" if key in ("steps", "tokens_per_s") else ".4f")
            lines.append(f"{key.removeprefix('best_')}: {_num(va, spec)} | {_num(vb, spec)}")
    return "\n".join(lines)


def _identity(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return ()
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _num(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) and math.isfinite(value) else "–"


def _value(value: Any) -> str:
    return "–" if value is None else str(value)

