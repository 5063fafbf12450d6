"""Sweeps screen: the workspace's sweeps (`tactics sweeps`), one sweep's trials, its best so far
and its objective against trial number, followed while the sweep runs.

A `SweepTail` in a worker thread polls `sweeps/` (a sweep's study is read again only when its
`study.db` changed) and each sweep's process (`sweeps.launch.sweep_process`), and posts a
coalescing `SweepsArrived`; the screen takes the latest and redraws.

`s` asks for a space file, a name, the minutes per trial and the trials (`SweepDialog`) and
starts `tactics sweep` detached (`sweeps.launch.start_detached`: its output in
`sweeps/NAME/sweep.log`), so it outlives the app like a training run; `u` resumes the
highlighted sweep; `x` asks its process to stop (`sweeps.launch.request_stop`): the running
trial's run ends with a final checkpoint and `u` trains it again. Enter on a trial opens its
run on the Training screen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from tactics_core.common.workspace import SWEEP_LOG_FILE
from tactics_core.sweeps import launch

from ..messages import JobDone
from ..run_tail import SweepsArrived, SweepTail
from ..widgets.charts import SweepChart
from .base import WorkScreen
from .dialogs import SweepDialog

SWEEP_COLUMNS = ("sweep", "kind", "trials", "process", "best")
TRIAL_COLUMNS = ("#", "state", "objective", "s", "run", "params")
STATE_WORDS = {"COMPLETE": "complete", "PRUNED": "pruned", "RUNNING": "running", "WAITING": "waiting", "FAIL": "failed"}


class SweepsScreen(WorkScreen):
    BINDINGS = [
        Binding("s", "start", "Start", tooltip="Start a sweep: space file, name, minutes per trial, trials"),
        Binding("x", "stop", "Stop", tooltip="Stop the highlighted sweep (its running trial ends gracefully)"),
        Binding("u", "resume", "Resume", tooltip="Resume the highlighted sweep"),
        Binding("o", "open_trial", "Open run", tooltip="Open the highlighted trial's run on the Training screen"),
        Binding("g", "reload", "Reload", show=False),
    ]

    AUTO_FOCUS = "#sweeps-table"

    def __init__(self) -> None:
        super().__init__()
        self.tail = SweepTail(self, lambda: self.ws.sweeps_dir)
        self.names: list[str] = []
        self.summaries: dict[str, Any] = {}
        self.processes: dict[str, launch.SweepProcess] = {}
        self.errors: dict[str, str] = {}
        self.chosen: str | None = None  # the sweep whose trials are shown
        self.trials: list[Any] = []  # its trials, in table order
        self._sweep_rows: list[tuple] = []  # what the tables hold
        self._trial_rows: list[tuple] = []

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="sweeps-table", cursor_type="row", zebra_stripes=True)
        yield Static("", markup=False, id="sweeps-status")
        yield DataTable(id="sweeps-trials", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="sweeps-middle"):
            yield SweepChart(id="sweeps-chart")
            yield Static("", markup=False, id="sweeps-side")

    def on_mount(self) -> None:
        self.query_one("#sweeps-table", DataTable).add_columns(*SWEEP_COLUMNS)
        self.query_one("#sweeps-trials", DataTable).add_columns(*TRIAL_COLUMNS)
        self._draw()
        self._follow()

    # -- the tail ----------------------------------------------------------------
    @work(thread=True, exclusive=True, group="sweeps-tail")
    def _follow(self) -> None:
        worker = get_current_worker()
        self.tail.run(lambda: worker.is_cancelled)

    def action_reload(self) -> None:
        self.tail.poke()

    def on_sweeps_arrived(self, message: SweepsArrived) -> None:
        batch = self.tail.take()
        before = self.processes
        self.names, self.summaries, self.processes, self.errors = batch.names, batch.summaries, batch.processes, batch.errors
        for name, proc in self.processes.items():  # a sweep that ended while we watched: how
            was = before.get(name)
            if was is not None and was.alive and not proc.alive:
                if proc.message.startswith("error:"):
                    self.app.show_error(f"sweep {name}: {proc.message.removeprefix('error:').strip()}")
                else:
                    self.notify(f"sweep {name} ended" + (f": {proc.message}" if proc.message else ""), title="Sweeps")
        if self.chosen not in self.names:
            self.chosen = self.names[-1] if self.names else None
        self._draw()

    # -- drawing ----------------------------------------------------------------
    def _draw(self) -> None:
        self._fill_sweeps()
        self._fill_trials()
        self._draw_status()
        self._draw_side()
        self._draw_chart()

    def _fill_sweeps(self) -> None:
        table = self.query_one("#sweeps-table", DataTable)
        rows = []
        for name in self.names:
            s = self.summaries.get(name)
            proc = self.processes.get(name)
            done = s.counts()["COMPLETE"] + s.counts()["PRUNED"] if s else 0
            best = s.best if s else None
            rows.append((name, s.kind if s else "–", f"{done}/{s.trials_target or '?'}" if s else "–",
                         proc.words() if proc else "–", f"{s.objective} {_num(best.objective)}" if best else "–"))
        if rows != self._sweep_rows:  # rebuilt only on news, so the cursor stays put
            self._sweep_rows = rows
            table.clear()
            for name, *cells in rows:
                table.add_row(Text(name), *cells, key=name)
        if self.chosen in self.names:
            row = self.names.index(self.chosen)
            if table.cursor_row != row:
                table.move_cursor(row=row)

    def _fill_trials(self) -> None:
        table = self.query_one("#sweeps-trials", DataTable)
        keep = self.highlighted_trial()
        s = self.summaries.get(self.chosen) if self.chosen else None
        self.trials = list(s.trials) if s else []
        best = s.best if s else None
        rows = []
        for t in self.trials:
            mark = "★" if best is not None and t.number == best.number else " "
            rows.append((str(t.number), f"{mark}{t.number}", STATE_WORDS.get(t.state, t.state.lower()), _num(t.objective),
                         f"{t.seconds:.0f}" if isinstance(t.seconds, (int, float)) else "–", t.run or "–",
                         params_text(t.params)))
        if rows == self._trial_rows:
            return
        self._trial_rows = rows
        table.clear()
        for key, *cells in rows:
            table.add_row(*cells[:4], Text(cells[4]), Text(cells[5]), key=key)
        if keep is not None:
            rows = [i for i, t in enumerate(self.trials) if t.number == keep.number]
            if rows:
                table.move_cursor(row=rows[0])

    def _draw_status(self) -> None:
        box = self.query_one("#sweeps-status", Static)
        if self.chosen is None:
            box.update(f"No sweep in {self.ws.sweeps_dir.name}/ yet: press s to start one.")
            return
        s = self.summaries.get(self.chosen)
        proc = self.processes.get(self.chosen)
        marks = {"running": "●", "stopping": "●", "starting": "●"}
        head = f"{marks.get(proc.state, '■') if proc else '■'} {self.chosen}: {proc.words() if proc else 'not running'}"
        if s is None:
            box.update(head + (f" · {self.errors[self.chosen]}" if self.chosen in self.errors else " · no trial yet"))
            return
        counts = s.counts()
        states = ", ".join(f"{n} {STATE_WORDS[k]}" for k, n in counts.items() if n) or "no trial yet"
        budget = f"{s.budget_minutes:g} min/trial" if s.budget_minutes else "budget ?"
        box.update(f"{head} · {states} · {budget} · {s.direction[:3]} {s.objective}")

    def _draw_side(self) -> None:
        box = self.query_one("#sweeps-side", Static)
        box.update(side_text(self.summaries.get(self.chosen) if self.chosen else None, self.highlighted_trial(),
                             self.processes.get(self.chosen) if self.chosen else None))

    def _draw_chart(self) -> None:
        s = self.summaries.get(self.chosen) if self.chosen else None
        trials = [(t.number, t.state, t.objective) for t in (s.trials if s else [])]
        self.query_one(SweepChart).show_trials(trials, s.objective if s else "", bool(s and s.direction == "maximize"))

    # -- the tables ----------------------------------------------------------------
    def highlighted_trial(self) -> Any | None:
        table = self.query_one("#sweeps-trials", DataTable)
        if not self.trials or table.cursor_row is None or not 0 <= table.cursor_row < len(self.trials):
            return None
        return self.trials[table.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "sweeps-table":
            key = event.row_key.value if event.row_key is not None else None
            if key is not None and key != self.chosen and key in self.names:
                self.chosen = key
                self._fill_trials()
                self._draw_status()
                self._draw_chart()
        self._draw_side()

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "sweeps-trials":
            await self.action_open_trial()
        else:
            self.query_one("#sweeps-trials", DataTable).focus()

    # -- actions ------------------------------------------------------------------
    def action_start(self) -> None:
        self.app.push_screen(SweepDialog(), self._start_answer)

    def action_resume(self) -> None:
        if self.chosen is None:
            self.notify("no sweep to resume: start one with s", severity="warning")
            return
        s = self.summaries.get(self.chosen)
        target = str(s.trials_target) if s is not None and s.trials_target else ""
        self.app.push_screen(SweepDialog(name=self.chosen, trials=target, resume=True), self._start_answer)

    def _start_answer(self, answer: dict | None) -> None:
        if answer:
            self.start_sweep(answer)

    def start_sweep(self, answer: dict) -> None:
        """Start (or resume) the sweep the dialog asked for, detached, in a worker."""
        ws, data_dir = self.ws, self.app.data_dir
        root = Path(ws.root).resolve()
        name = answer["name"]

        def job(progress, cancel):
            space = _space_arg(answer.get("space"), root)
            data = None
            if space is not None and not answer["resume"]:  # a scorer reads traces/, a GPT the corpus
                data = ws.traces_dir if launch.space_kind(space, ws.presets_dir) == "scorer" else data_dir
            request = launch.SweepRequest(
                name=name, space=space, budget_minutes=answer.get("budget"), trials=answer.get("trials"),
                resume=bool(answer["resume"]), data_dir=Path(data).resolve() if data is not None else None,
                checkpoint_dir=ws.checkpoint_dir.resolve(), sweeps_dir=ws.sweeps_dir.resolve(),
                presets_dir=ws.presets_dir.resolve(),
            )
            started = launch.start_detached(request, cwd=root)
            return SweepStarted(name, started.pid)

        self.chosen = name
        self.start_job("sweep", job, f"Resuming sweep {name}" if answer["resume"] else f"Starting sweep {name}")

    def on_sweep_started(self, message: SweepStarted) -> None:
        self.chosen = message.name
        self.tail.poke()
        self.notify(f"sweep {message.name} started (pid {message.pid}); it keeps going if you quit this app; "
                    f"its output: {self.ws.sweeps_dir.name}/{message.name}/{SWEEP_LOG_FILE}")

    def action_stop(self) -> None:
        name = self.chosen
        proc = self.processes.get(name) if name else None
        if name is None or proc is None or not proc.alive:
            self.notify("no sweep is running here", severity="warning")
            return
        folder = self.ws.sweeps_dir / name
        if self.guard(lambda: launch.request_stop(folder)):
            self.notify(f"stop requested: sweep {name}'s running trial ends with a final checkpoint; resume with u")
        self.tail.poke()

    async def action_open_trial(self) -> None:
        trial = self.highlighted_trial()
        if trial is None or not trial.run:
            self.notify("no trial highlighted", severity="warning")
            return
        folder = self.ws.checkpoint_dir / "runs" / trial.run
        if not folder.is_dir():
            self.app.show_error(f"trial {trial.number}'s run {trial.run} is not in {self.ws.checkpoint_dir / 'runs'}")
            return
        await self.app.open_run(folder, "training")


@dataclass
class SweepStarted(JobDone):
    """A sweep started (or resumed) detached as process `pid`."""

    name: str
    pid: int


def _space_arg(space: str | None, root: Path) -> str | None:
    """The space file as the sweep process (run in the workspace) finds it: a file here or in the
    workspace, made absolute; else as typed (a built-in space's name)."""
    if not space:
        return None
    path = Path(space).expanduser()
    for candidate in ([path] if path.is_absolute() else [path, root / path]):
        if candidate.is_file():
            return str(candidate.resolve())
    return space


def params_text(params: dict[str, Any]) -> str:
    """`hidden_size=16 learning_rate=0.003`: each swept key by its last part."""
    return " ".join(f"{k.rsplit('.', 1)[-1]}={_value(v)}" for k, v in params.items())


def side_text(summary: Any | None, trial: Any | None, proc: launch.SweepProcess | None) -> str:
    """The best trial so far (its figure, values and run), the real prover's best when the sweep
    was judged, the highlighted trial's note, and an ended process's last line."""
    if summary is None:
        lines = ["No trial yet."]
    else:
        best = summary.best
        if best is None:
            lines = ["best so far: –", "(no trial completed yet)"]
        else:
            lines = [f"best so far: trial {best.number}", f"{summary.objective} {_num(best.objective)}",
                     f"run {best.run or '–'}"]
            lines += [f"  {k.rsplit('.', 1)[-1]} {_value(v)}" for k, v in best.params.items()]
        judged = summary.judged["verdicts"] if summary.judged else []
        if judged:  # the real prover's ranking (`tactics sweep --judge-top`) outranks the objective
            top = judged[0]
            lines += ["", f"prover's best: trial {top.get('number')}" + (" (base)" if top.get("base") else ""),
                      str(top.get("text", ""))[:150]]
        if trial is not None:
            steps = f" · step {trial.step if trial.step is not None else '–'}/{trial.max_steps or '–'}"
            lines += ["", f"trial {trial.number}: {STATE_WORDS.get(trial.state, trial.state.lower())}{steps}"]
            if trial.note:
                lines.append(trial.note[:150])
    if proc is not None and proc.state == "ended" and proc.message:
        lines += ["", f"last: {proc.message[:150]}"]
    return "\n".join(lines)


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and math.isfinite(value) else "–"


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
