"""Checkpoints screen: the run folder's checkpoints and what to do with them.

The run is the one opened on the Runs screen, else the workspace's current run.
The table comes from `checkpoints.list_checkpoints` (small sidecar files,
no tensors loaded), with the proof-line validation loss from the same
sidecars; the "exp" column counts the exports made from each checkpoint
(lineage: their config.json names it), listed in the details. Actions: resume
from one, export one, delete one (after a confirmation), open one in the
Playground, a quick eval (`v`): the core's `evaluate` on 50 goals, shown as
the prover's figures, and "prove in Acorn" (`a`): the real prover
(`generative_judge.prove`) on chosen acornlib modules, with progress; its per-module table
opens in a dialog (`dialogs.prove_result_dialog`) whose rows open the module's goals
(outcome, seconds, accepted lines), and `o` opens the checkpoint's last result again.

A scorer's checkpoints (acorn 0.2.6's proof-step scorer, `CheckpointInfo.kind`)
show their kind, validation loss and used-step rank; quick eval (the GPT
prover's figures) is refused for them in one line, and `a` judges one with
`acorn eval` instead (`acorn_eval.judge` on goal buckets, exported first; its table of
policies opens each policy's buckets, `dialogs.judge_result_dialog`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from tactics_core.acorn import eval_judge as acorn_eval
from tactics_core.acorn import generative_judge
from tactics_core.common import workspace
from tactics_core.common.errors import TacticsError
from tactics_core.common.formatting import human_size
from tactics_core.gpt import evaluate
from tactics_core.runs import checkpoints, workspace_runs
from tactics_core.training import kinds

from ..messages import JobDone
from .base import WorkScreen
from .dialogs import ConfirmDialog, ProveDialog, judge_result_dialog, prove_result_dialog

COLUMNS = ("", "name", "step", "val loss", "proof loss", "time", "size", "exp")
# A folder holding a scorer's checkpoints: their kind, and the used-step rank where the GPT has proof loss.
SCORER_COLUMNS = ("", "name", "kind", "step", "val loss", "used rank", "time", "size", "exp")


class CheckpointsScreen(WorkScreen):
    BINDINGS = [
        Binding("r", "resume", "Resume"),
        Binding("e", "export", "Export"),
        Binding("d", "delete", "Delete"),
        Binding("p", "play", "Play", tooltip="Open in the Playground"),
        Binding("v", "evaluate", "Eval", tooltip="The prover's figures on 50 validation goals: proof bits/byte, exact match@8, first-line markers, overflow, attempts per 5 s"),
        Binding("a", "prove", "Prove", tooltip="The real Acorn prover (acorn f47631b0) on acornlib modules: goals proved per module (a scorer: acorn eval 0.2.6 on goal buckets)"),
        # Not in the footer (80 columns hold the others and the screen keys); g still reloads.
        Binding("g", "reload", "Reload", show=False),
        Binding("o", "results", "Results", show=False,
                tooltip="Open the last prover result of the checkpoint again (enter on a row: its goals or buckets)"),
    ]

    AUTO_FOCUS = "#ckpt-table"

    def __init__(self) -> None:
        super().__init__()
        self.infos: list[Any] = []
        self.metas: dict[str, dict[str, Any]] = {}  # path -> sidecar facts the table shows
        self._details: dict[str, str] = {}
        self._evals: dict[str, str] = {}  # path -> one line of eval results, shown first
        self._results: dict[str, Any] = {}  # path -> the last prover result's dialog maker (`o` opens it again)
        self.exports: list[Any] = []  # workspace_runs.ExportInfo of every export folder (lineage)
        self.folder: Path | None = None
        self.prove_modules = ""  # what the last "prove in Acorn" asked for, offered again
        self.judge_buckets = ProveDialog.DEFAULT_BUCKETS  # what the last scorer judge asked for
        self.columns: tuple[str, ...] = COLUMNS

    def compose_body(self) -> ComposeResult:
        yield Static("", markup=False, id="ckpt-run")
        yield DataTable(id="ckpt-table", cursor_type="row", zebra_stripes=True)
        yield Static("", markup=False, id="ckpt-details")

    def on_mount(self) -> None:
        table = self.query_one("#ckpt-table", DataTable)
        table.add_columns(*COLUMNS)
        self.action_reload()

    def on_screen_resume(self) -> None:
        self.action_reload()

    def reread(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        folder = self.app.run_folder()
        export_dir = self.ws.export_dir
        self._details.clear()

        def job(progress, cancel):
            infos = checkpoints.list_checkpoints(folder)
            metas = {}
            for info in infos:  # the sidecars list_checkpoints just read: small JSON files
                if info.error is None:
                    try:
                        metas[info.path] = checkpoints.read_meta(info.path)
                    except (TacticsError, OSError):
                        pass
            return CheckpointsListed(folder, infos, metas, workspace_runs.list_exports(export_dir))

        if not self.busy("list"):
            self.start_job("list", job, f"Reading {folder}")

    def on_checkpoints_listed(self, message: CheckpointsListed) -> None:
        self.folder, self.metas, self.exports = message.folder, message.metas, message.exports
        self.show(message.infos)

    def on_checkpoint_evaluated(self, message: CheckpointEvaluated) -> None:
        self._evals[message.path] = eval_line(message.report)
        self._show_details()

    def on_checkpoint_proved(self, message: CheckpointProved) -> None:
        totals = "  ·  ".join(
            f"{name} proved {p['proved']}/{p['attempted']}" for name, p in message.report["provers"].items()
        )
        self._evals[message.path] = f"Acorn: {totals} (o: the table)\n"
        self._results[message.path] = lambda: prove_result_dialog(message.text, message.report)
        self._show_details()
        self.action_results(message.path)

    def on_checkpoint_judged(self, message: CheckpointJudged) -> None:
        self._evals[message.path] = judge_line(message.report) + " (o: the table)\n"
        self._results[message.path] = lambda: judge_result_dialog(message.text, message.report)
        self._show_details()
        self.action_results(message.path)

    def action_results(self, path: str | None = None) -> None:
        """The last prover result of a checkpoint as a table; enter on a row opens its goals (a
        GPT's modules) or buckets (a scorer's policies)."""
        if path is None:
            info = self.selected()
            path = info.path if info is not None else None
        make = self._results.get(path) if path is not None else None
        if make is None:
            self.notify("no prover result for this checkpoint yet: a proves it in Acorn", severity="warning")
            return
        self.app.push_screen(make())

    def on_checkpoint_described(self, message: CheckpointDescribed) -> None:
        self._details[message.path] = message.text
        self._show_details()

    def show(self, infos: list[Any]) -> None:
        table = self.query_one("#ckpt-table", DataTable)
        selected = self.selected()
        self.infos = list(reversed(infos))  # newest first
        columns = SCORER_COLUMNS if any(info.kind == "scorer" for info in self.infos) else COLUMNS
        if columns != self.columns:
            table.clear(columns=True)
            table.add_columns(*columns)
            self.columns = columns
        table.clear()
        for info in self.infos:
            meta = self.metas.get(info.path, {})
            if columns == SCORER_COLUMNS:
                cells = [info.kind, str(info.step) if info.step >= 0 else "?"]
                figure = _num((meta.get("figures") or {}).get("used_rank"), ".4f")
            else:
                cells = [str(info.step) if info.step >= 0 else "?"]
                figure = _num(meta.get("val_proof_loss"), ".4f")
            table.add_row(
                "★" if info.best else ("!" if info.error else ""),
                Text(info.name),
                *cells,
                f"{info.val_loss:.4f}" if isinstance(info.val_loss, (int, float)) else "–",
                figure,
                time.strftime("%m-%d %H:%M", time.localtime(info.created)),
                human_size(info.size),
                str(len(self.exports_from(info.path)) or ""),
                key=info.path,
            )
        folder = self.folder or self.app.run_folder()
        if workspace.is_run_folder(folder):
            where = f"run {folder.name} · {folder}"
        elif workspace.has_legacy_run(folder):
            where = f"run legacy (the old layout, straight in {folder})"
        else:
            where = f"no run yet in {folder}"
        self.query_one("#ckpt-run", Static).update(where)
        if not self.infos:
            self.query_one("#ckpt-details", Static).update(
                f"No checkpoints in {folder} yet: train a model (screen 3)."
            )
        elif selected is not None:
            for row, info in enumerate(self.infos):
                if info.path == selected.path:
                    table.move_cursor(row=row)

    def exports_from(self, path: str) -> list[Any]:
        return workspace_runs.exports_of(self.exports, path)

    def selected(self) -> Any | None:
        table = self.query_one("#ckpt-table", DataTable)
        if not self.infos or table.cursor_row is None or table.cursor_row >= len(self.infos):
            return None
        return self.infos[table.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_details()

    def _show_details(self) -> None:
        """Details of the highlighted checkpoint; its config is read once, in a worker."""
        info = self.selected()
        if info is None:
            return
        box = self.query_one("#ckpt-details", Static)
        if info.error:
            box.update(f"{info.name}: {info.error}")
            return
        path = info.path
        if path in self._details:
            box.update(self._evals.get(path, "") + self._details[path] + lineage_text(self.exports_from(path)))
            return
        box.update(f"{info.name}: reading…")
        if self.busy("details"):
            return  # the running one re-checks the highlighted row when it ends

        def job(progress, cancel):
            meta = checkpoints.read_meta(path)
            payload = checkpoints.load_checkpoint(path)
            config = payload.get("config")  # the full preset it was trained with
            return CheckpointDescribed(path, describe(meta, path, config, payload.get("features")))

        self.start_job("details", job, "Reading details")

    # -- actions ------------------------------------------------------------
    def _need(self) -> Any | None:
        info = self.selected()
        if info is None:
            self.notify("no checkpoint selected", severity="warning")
        return info

    async def action_resume(self) -> None:
        info = self._need()
        if info is not None:
            await self.app.resume_run(info.path)

    def action_export(self) -> None:
        info = self._need()
        if info is not None:
            self.app.export_model(info.path)

    async def action_play(self) -> None:
        info = self._need()
        if info is None:
            return
        if info.kind == "scorer":
            self.notify(f"{info.name} is a proof-step scorer: the Playground writes proof lines with a GPT", severity="warning")
            return
        await self.app.open_in_playground(info.path)

    def action_evaluate(self) -> None:
        info = self._need()
        if info is None:
            return
        if info.kind == "scorer":
            self.notify(f"quick eval is a GPT's prover figures; {info.name} is a scorer: its AUC and used rank are in "
                        "the details, and a judges it with acorn eval", severity="warning")
            return
        path, data_dir = info.path, self.app.data_dir

        def job(progress, cancel):
            report = evaluate.evaluate(
                path, data_dir, k=EVAL_K, limit=EVAL_LIMIT, progress=progress, cancel=cancel, layout_exact_match=False
            )
            return CheckpointEvaluated(path, report.to_dict())

        self.start_job("eval", job, f"Evaluating {info.name} on {EVAL_LIMIT} validation goals")

    def action_prove(self) -> None:
        info = self._need()
        if info is None:
            return
        if info.kind == "scorer":
            self._ask_judge(info)
            return
        root = self.ws.root
        try:
            settings = generative_judge.read_settings(root)
        except TacticsError as exc:
            self.notify(str(exc), severity="error")
            settings = {}
        binary = os.environ.get(generative_judge.ENV_BINARY) or settings.get("binary", "")
        library = os.environ.get(generative_judge.ENV_ACORNLIB) or settings.get("acornlib", "")

        def answer(choice: dict | None) -> None:
            if choice:
                self.prove_modules = " ".join(choice["modules"])
                self._start_prove(info, choice)

        self.app.push_screen(ProveDialog(info.name, binary, library, self.prove_modules), answer)

    def _start_prove(self, info: Any, choice: dict) -> None:
        path, root = info.path, self.ws.root

        def job(progress, cancel):
            setup = generative_judge.resolve_setup(choice["acorn"], choice["acornlib"], workspace=root)
            if choice["remember"]:
                generative_judge.save_settings(root, str(setup.binary), str(setup.acornlib),
                                    str(setup.ort_lib) if setup.ort_lib else None)
            report = generative_judge.prove(path, setup, choice["modules"], baseline=choice["baseline"],
                                 progress=progress, cancel=cancel)
            return CheckpointProved(path, generative_judge.report_text(report), report.to_dict())

        self.start_job("prove", job, f"Proving in Acorn with {info.name}: {' '.join(choice['modules'])}")

    def _ask_judge(self, info: Any) -> None:
        """A scorer is judged by acorn 0.2.6's `acorn eval` on goal buckets, beside acorn's own policies."""
        try:
            settings = acorn_eval.read_eval_settings(self.ws.root)
        except TacticsError as exc:
            self.notify(str(exc), severity="error")
            settings = {}
        binary = os.environ.get(acorn_eval.ENV_EVAL_BINARY) or settings.get("binary", "")
        library = os.environ.get(acorn_eval.ENV_EVAL_ACORNLIB) or settings.get("acornlib", "")

        def answer(choice: dict | None) -> None:
            if choice:
                self.judge_buckets = choice["buckets"]
                self._start_judge(info, choice)

        self.app.push_screen(ProveDialog(info.name, binary, library, self.judge_buckets, kind="scorer"), answer)

    def _start_judge(self, info: Any, choice: dict) -> None:
        path, root = info.path, self.ws.root
        baselines = acorn_eval.BASELINES if choice["baseline"] else ()

        def job(progress, cancel):
            setup = acorn_eval.resolve_eval_setup(choice["acorn"], choice["acornlib"], workspace=root)
            buckets = acorn_eval.parse_buckets(choice["buckets"])
            temp = Path(tempfile.mkdtemp(prefix="tactics-judge-"))
            try:  # exported into a temporary folder, named for the checkpoint (the report's label)
                label = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem) or "scorer"
                exported = kinds.export_checkpoint(path, temp / label, progress=progress, cancel=cancel)
                report = acorn_eval.judge(setup, buckets, model=exported.path, baselines=baselines,
                                          progress=progress, cancel=cancel)
            finally:
                shutil.rmtree(temp, ignore_errors=True)
            return CheckpointJudged(path, acorn_eval.report_text(report), report.to_dict())

        self.start_job("prove", job, f"Judging {info.name} with acorn eval on buckets {choice['buckets']}")

    def action_delete(self) -> None:
        info = self._need()
        if info is None:
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.guard(lambda: delete_checkpoint(Path(info.path)))
                self.notify(f"deleted {info.name}")
                self.action_reload()

        self.app.push_screen(ConfirmDialog(f"Delete {info.name} ({human_size(info.size)})?\nThis cannot be undone.", yes="Delete", no="Keep"), answer)


@dataclass
class CheckpointsListed(JobDone):
    """A run folder's checkpoints, their sidecars (path -> facts) and every export (lineage)."""

    folder: Path
    infos: list[checkpoints.CheckpointInfo]
    metas: dict[str, dict[str, Any]]
    exports: list[workspace_runs.ExportInfo]


@dataclass
class CheckpointEvaluated(JobDone):
    """The quick eval of checkpoint `path`: `EvalReport.to_dict()`."""

    path: str
    report: dict[str, Any]


@dataclass
class CheckpointProved(JobDone):
    """What the real Acorn prover proved with checkpoint `path`: the table, and `ProveReport.to_dict()`."""

    path: str
    text: str
    report: dict[str, Any]


@dataclass
class CheckpointJudged(JobDone):
    """How a scorer checkpoint did in acorn eval: `acorn_eval.report_text` and `JudgeReport.to_dict()`."""

    path: str
    text: str
    report: dict[str, Any]


@dataclass
class CheckpointDescribed(JobDone):
    """The details box of checkpoint `path`."""

    path: str
    text: str


EVAL_K = 8
EVAL_LIMIT = 50  # goals: a quick look; `tactics eval` scores the whole split


def eval_line(report: dict[str, Any]) -> str:
    """Two lines of the prover's figures (the model asked as the Acorn prover asks it)."""
    return (
        f"eval {report.get('goals', 0)} goals: proof {_num(report.get('proof_bpb'), '.3f')} bits/byte · "
        f"prover exact match@{report.get('k')} {_pct(report.get('prover_exact_match_at_k'), 1)} "
        f"({report.get('prover_matched', 0)}/{report.get('prover_lines', 0)})\n"
        f"first line marker {_pct(report.get('first_line_marker_rate'))} · overflow {_pct(report.get('overflow_rate'))} · "
        f"{_num(report.get('attempts_per_5s'), ',.0f')} attempts/5 s · stream bpb {_num(report.get('bpb'), '.3f')}\n"
    )


def judge_line(report: dict[str, Any]) -> str:
    """One line of a scorer's acorn eval: searches proved per policy (the scorer first)."""
    parts = [f"{p.get('label')} {p.get('succeeded', 0)}/{p.get('searches', 0)} ({_pct(p.get('success_rate'), 1)})"
             for p in report.get("policies", [])]
    return f"acorn eval on buckets {report.get('buckets', '?')}: " + "  ·  ".join(parts)


def _pct(value: Any, digits: int = 0) -> str:
    return f"{value:.{digits}%}" if isinstance(value, (int, float)) else "–"


def lineage_text(exports: list[Any]) -> str:
    """Which exports came from this checkpoint (their config.json names it)."""
    if not exports:
        return ""
    names = ", ".join(f"{Path(e.path).name} (step {e.step})" for e in exports[-3:])
    more = f" and {len(exports) - 3} more" if len(exports) > 3 else ""
    return f"\nexports from it: {names}{more}"


def delete_checkpoint(path: Path) -> None:
    """Remove a checkpoint and its metadata sidecar."""
    path.unlink(missing_ok=True)
    checkpoints.meta_path(path).unlink(missing_ok=True)


def describe(meta: dict[str, Any], path: str, config: Any = None, features: Any = None) -> str:
    """A checkpoint's facts and model shape, a few lines (a scorer's: its figures and features)."""
    cfg = meta.get("model_config") or {}
    shape = " ".join(f"{k}={v}" for k, v in cfg.items())
    scorer = meta.get("kind") == "scorer"
    lines = [
        f"{path}",
        f"step {meta.get('step')} · epoch {_num(meta.get('epoch'), '.2f')} · val loss {_num(meta.get('val_loss'), '.4f')} · "
        f"best {_num(meta.get('best_score'), '.4f')} · {'resumable' if meta.get('resumable') else 'weights only'} · "
        f"format {meta.get('format', '?')}",
    ]
    if scorer:
        figures = meta.get("figures") or {}
        lines.append(
            f"kind scorer · selects by {meta.get('select_by', 'val_loss')} · AUC {_num(figures.get('auc'), '.4f')} · "
            f"used rank {_num(figures.get('used_rank'), '.4f')} · top 10% {_pct(figures.get('top10_hit'), 1)}"
        )
        if isinstance(features, list) and features:
            shown = ", ".join(str(f) for f in features[:4]) + (", …" if len(features) > 4 else "")
            shape += f" · {len(features)} features ({shown})"
    else:
        lines.append(
            f"layout {meta.get('layout', '?')} · selects by {meta.get('select_by', 'val_loss')} · val bpb {_num(meta.get('val_bpb'), '.3f')} · "
            f"proof loss {_num(meta.get('val_proof_loss'), '.4f')} · proof bpb {_num(meta.get('val_proof_bpb'), '.3f')}"
        )
    lines.append(f"model  {shape}")
    if isinstance(config, dict):
        for section in ("data", "training") if scorer else ("training",):
            values = config.get(section)
            if isinstance(values, dict):
                lines.append(f"{section} " + " ".join(f"{k}={v}" for k, v in values.items()))
    return "\n".join(lines)


def _num(value: Any, spec: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return "–"
    return format(value, spec)
