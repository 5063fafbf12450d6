"""Training screen: start / stop / resume a run and watch it live.

The run is the core's detached process (`launch.start_detached`), so it
survives this app. A `RunTail` in a worker thread follows the run folder
(its first read is the whole `metrics.jsonl`: attaching) and posts
`EventsArrived`; the screen takes the gathered batch and redraws, at most
twice a second.

A scorer's run (acorn's proof-step scorer, `RunView.kind`) shows its own
figures where the GPT's differ: rows/s, AUC, used-step rank and top-10% share
beside the validation loss, their curves in the chart, and its data line (the
traces, searches and rows it trains on) where the GPT's sample is.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Input, Label, Select, Sparkline, Static
from textual.worker import get_current_worker

from tactics_core.common.formatting import format_duration
from tactics_core.common.workspace import is_run_folder
from tactics_core.runs import launch, run_folder
from tactics_core.runs.checkpoints import checkpoint_kind, latest_checkpoint
from tactics_core.runs.run_events import EndEvent, RunEvent, RunView, data_line
from tactics_core.training import presets

from ..jobs import log
from ..messages import JobDone
from ..run_tail import EventsArrived, RunTail
from ..widgets.charts import LossChart
from ..widgets.system_pane import SystemPane
from .base import WorkScreen


class TrainingScreen(WorkScreen):
    BINDINGS = [
        Binding("s", "start", "Start"),
        Binding("x", "stop", "Stop"),
        Binding("u", "resume", "Resume"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view = RunView()
        self.run_state: run_folder.RunState | None = None
        self.tail_error: str | None = None
        self.run_folder: Path | None = None  # the folder the tail reads
        self.tail = RunTail(self, lambda: self.app.run_folder())  # the run chosen on the Runs screen, else the current run
        self._opened_at = time.time()

    def compose_body(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label("Preset ", classes="field-label")
            yield Select([], allow_blank=True, prompt="preset", id="train-preset", compact=True)
            yield Label(" Steps ", classes="field-label")
            yield Input("", placeholder="preset's", id="train-steps", type="integer", compact=True)
            yield Label(" Set ", classes="field-label")
            yield Input("", placeholder="training.batch_size=8 …", id="train-set", compact=True)
        yield Static("", markup=False, id="train-status")
        yield SystemPane(id="train-system")
        with Horizontal(id="train-middle"):
            yield Static("", markup=False, id="train-figures")
            yield LossChart(id="train-chart")
        with Horizontal(classes="row"):
            yield Label("loss ", classes="field-label")
            yield Sparkline([], id="train-sparkline")
        yield Static("", markup=False, id="train-sample")

    def on_mount(self) -> None:
        self.refresh_presets()
        self._draw()
        self._tail()

    def on_screen_resume(self) -> None:
        self.refresh_presets()

    def refresh_presets(self) -> None:
        select = self.query_one("#train-preset", Select)
        try:
            infos = presets.list_presets(self.ws.presets_dir)
        except Exception as exc:
            log.info("presets: %s", exc)
            return
        names = [p.name for p in infos if p.active and not p.error]
        current = None if select.is_blank() else select.value
        select.set_options([(n, n) for n in names])
        first = "scorer" if "scorer" in names and self._scorer_workspace() else "tiny"
        wanted = self.app.preset_name or current or (first if first in names else (names[0] if names else None))
        if wanted in names:
            select.value = wanted

    def _scorer_workspace(self) -> bool:
        """Traces in traces/ and no proof corpus: the next run is most likely a scorer's."""
        try:
            return (self.ws.traces_dir.is_dir() and any(self.ws.traces_dir.glob("*.jsonl.zst"))
                    and not any(self.app.data_dir.glob("*.txt")))
        except OSError:
            return False

    # -- tail ----------------------------------------------------------------
    @work(thread=True, exclusive=True, group="tail")
    def _tail(self) -> None:
        """Follow the run folder until the screen goes (see `RunTail`)."""
        worker = get_current_worker()
        self.tail.run(lambda: worker.is_cancelled)

    def on_events_arrived(self, message: EventsArrived) -> None:
        batch = self.tail.take()
        self.run_folder = batch.folder
        self._apply(batch.events, batch.state, batch.error)

    def _apply(self, events: list[RunEvent | dict], state: run_folder.RunState | None, error: str | None) -> None:
        if error and error != self.tail_error:
            self.app.show_error(error)
        self.tail_error = error
        self.view.feed(events)
        self.run_state = state
        device = str((self.view.start or {}).get("device") or "")
        self.query_one(SystemPane).watch_process(
            state.pid if state else None, bool(state and state.alive), gpu=device.startswith("cuda"),
            pids=state.extra.get("rank_pids") if state else None,
        )
        for event in events:  # a run ending while we watch (not one read from history)
            if isinstance(event, EndEvent) and float(event.time or 0) >= self._opened_at:
                text = self.view.ending() or "ended"
                if event.reason == "failed":
                    self.app.show_error(f"training {text}")
                else:
                    self.notify(f"training {text}", title="Training")
        self._draw()

    # -- drawing ----------------------------------------------------------------
    def _draw(self) -> None:
        view, state = self.view, self.run_state
        name = run_label(self.run_folder)
        self.query_one("#train-status", Static).update(status_line(view, state) + (f" · {name}" if name else ""))
        self.query_one("#train-figures", Static).update(figures_text(view))
        sparkline = self.query_one("#train-sparkline", Sparkline)
        sparkline.data = view.recent_losses()
        sparkline.display = bool(view.train)
        if view.kind == "scorer":
            self.query_one(LossChart).show_losses(view.train, view.val, extra=[("AUC", view.auc), ("used rank", view.used_rank)])
            self.query_one("#train-sample", Static).update(f"data: {data_line(view.start)}" if view.start else "data: –")
        else:
            self.query_one(LossChart).show_losses(view.train, view.val, view.proof_val)
            self.query_one("#train-sample", Static).update(sample_text(view.last_sample))

    # -- actions ------------------------------------------------------------------
    def _alive(self) -> bool:
        return bool(self.run_state is not None and self.run_state.alive)

    def action_start(self) -> None:
        self.start_run()

    def start_run(self, resume: bool = False, checkpoint: str | None = None) -> None:
        """Start a detached run, or resume one (from `checkpoint`, else the latest)."""
        if self._alive():
            self.app.show_error(f"a run is already going in {self.app.run_folder()} (pid {self.run_state.pid}); stop it first (x)")
            return
        preset = self.query_one("#train-preset", Select).value
        if self.query_one("#train-preset", Select).is_blank():
            self.app.show_error("choose a preset first (Presets screen, 6)")
            return
        steps_text = self.query_one("#train-steps", Input).value.strip()
        overrides = self.query_one("#train-set", Input).value.split()
        max_steps = int(steps_text) if steps_text else None
        ws, data_dir = self.ws, self.app.data_dir
        run_folder = self.app.run_folder()
        if not resume:
            self.app.selected_run = None  # a new run: follow it (it becomes the current run)

        def job(progress, cancel):
            # A scorer reads the workspace's traces/, not the corpus (a resume: the folder it was trained on).
            if resume:  # the shown run's latest checkpoint unless one was chosen
                chosen = checkpoint or latest_checkpoint(run_folder)
                scorer = chosen is not None and checkpoint_kind(chosen) == "scorer"
                request = launch.LaunchRequest(
                    checkpoint_dir=run_folder, resume=True, checkpoint=chosen,
                    data_dir=None if scorer else data_dir, max_steps=max_steps, detach=True,
                )
            else:
                scorer = presets.load_preset(str(preset), ws.presets_dir).kind == "scorer"
                request = launch.LaunchRequest(
                    checkpoint_dir=ws.checkpoint_dir, preset=str(preset), overrides=tuple(overrides),
                    presets_dir=ws.presets_dir, data_dir=ws.traces_dir if scorer else data_dir, max_steps=max_steps,
                    detach=True,
                )
            return RunStarted(launch.start_detached(request).pid)

        self.start_job("start", job, "Resuming the run" if resume else f"Starting a {preset} run")

    def action_resume(self) -> None:
        self.start_run(resume=True)

    def action_stop(self) -> None:
        if not self._alive():
            self.notify("no run is going", severity="warning")
            return
        folder = self.app.run_folder()
        self.guard(lambda: run_folder.request_stop(folder))
        self.notify("stop requested: the run writes a checkpoint, then ends")

    def on_run_started(self, message: RunStarted) -> None:
        self.notify(f"run started (pid {message.pid}); it keeps going if you quit this app")


@dataclass
class RunStarted(JobDone):
    """A detached run (or its resumption) started as process `pid`."""

    pid: int


def run_label(folder: Any) -> str:
    """The run's name for the status line ("" for an old workspace's run in checkpoints/)."""
    if folder is None:
        return ""
    return f"run {folder.name}" if is_run_folder(folder) else ""


def status_line(view: RunView, state: run_folder.RunState | None) -> str:
    """One line: is a run going, where it is, and how it ended."""
    if state is None and view.events == 0:
        return "No run in this workspace yet: choose a preset and press s."
    step = view.step
    total = view.total_steps or (state.total_steps if state is not None else None)
    where = f"step {step if step is not None else 0}" + (f"/{total}" if total else "")
    if view.last_step and view.last_step.get("epoch") is not None:
        where += f" · epoch {view.last_step['epoch']}"
    world = int((view.start or {}).get("world_size") or 1)
    if world > 1:  # a data-parallel run (`tactics train --nproc N` / torchrun)
        where += f" · {world} processes"
    alive = bool(state is not None and state.alive)
    if alive:
        return f"● running (pid {state.pid}) · {where} · ETA {format_duration(view.eta_seconds())}"
    ending = view.ending()
    if ending:
        return f"■ {where} · {ending}"
    if state is not None and state.state in ("running", "starting"):
        return f"✖ {where} · the run process (pid {state.pid}) is gone without an end record; resume with u"
    message = state.message if state is not None else None
    return f"■ {where}" + (f" · {message}" if message else "")


SELECT_NAMES = {"val_loss": "val", "proof_loss": "proof", "used_rank": "used"}


def figures_text(view: RunView) -> str:
    """The latest figures; `*` marks the validation loss that selects the best model."""
    step = view.last_step or {}
    ev = view.last_eval or {}
    loss = step.get("loss")
    by = view.select_by
    mark = {k: (" *" if by == k else "") for k in SELECT_NAMES}
    if view.kind == "scorer":
        return "\n".join([
            f"loss       {_fmt(loss, '.4f')}",
            f"lr         {_fmt(step.get('lr'), '.2e')}",
            f"{view.unit + '/s':<11}{_fmt(step.get('tokens_per_s'), ',.0f')}",
            f"val loss   {_fmt(ev.get('val_loss'), '.4f')}{mark['val_loss']}",
            f"AUC        {_fmt(ev.get('auc'), '.4f')}",
            f"used rank  {_fmt(ev.get('used_rank'), '.4f')}{mark['used_rank']}",
            f"top 10%    {_fmt(ev.get('top10_hit'), '.1%')}",
            f"best {SELECT_NAMES.get(by, by):<6}{_fmt(ev.get('best_score'), '.4f')}",
            f"early stop {_patience_text(ev)}",
            f"elapsed    {format_duration(step.get('elapsed_s'))}",
            "* picks best_model.pt",
        ])
    lines = [
        f"loss       {_fmt(loss, '.4f')}",
        f"lr         {_fmt(step.get('lr'), '.2e')}",
        f"tokens/s   {_fmt(step.get('tokens_per_s'), ',.0f')}",
        f"val loss   {_fmt(ev.get('val_loss'), '.4f')}{mark['val_loss']}",
        f"val bpb    {_fmt(ev.get('val_bpb'), '.3f')}",
        f"proof loss {_fmt(ev.get('proof_loss'), '.4f')}{mark['proof_loss']}",
        f"proof bpb  {_fmt(ev.get('proof_bpb'), '.3f')}",
        f"best {SELECT_NAMES.get(by, by):<6}{_fmt(ev.get('best_score'), '.4f')}",
        f"early stop {_patience_text(ev)}",
        f"elapsed    {format_duration(step.get('elapsed_s'))}",
        "* picks best_model.pt",
    ]
    return "\n".join(lines)


def sample_text(sample: dict[str, Any] | None) -> str:
    """The latest sample: what the model wrote next, and what the corpus has there."""
    if not sample:
        return "sample: –"
    text = str(sample.get("text") or "").strip() or "(an empty line)"
    lines = [f"sample @ step {sample.get('step', '?')}: {text[:300]}"]
    expected = str(sample.get("expected") or "").strip()
    if expected:
        lines.append(f"corpus has:       {expected[:300]}")
    return "\n".join(lines)


def _patience_text(ev: dict) -> str:
    """'3/6' evaluations without a better figure, or 'off' for a run that trains its whole schedule."""
    if ev.get("patience") == 0:
        return "off"
    return f"{ev.get('bad_evals', '–')}/{ev.get('patience', '–')}"


def _fmt(value: Any, spec: str) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return format(number, spec) if math.isfinite(number) else "–"
