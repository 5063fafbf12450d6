"""Playground: ask a model for proof lines, the prover's way or freely.

The model is a checkpoint (PyTorch) or an export folder (ONNX Runtime),
loaded once by the core's `Completer` in a worker. The text area holds a
goal context (paste one, or pick a goal of the validation split). Two modes
(ctrl+t switches):

* **prover** (the default for models of the `prover` layout): the core's
  `ProverSession` runs the goal exactly as the Acorn prover does
  (`tactics_core.gpt.prover_replica`). The prompt is shown as the prover keeps it (and
  what its front truncation cut); ctrl+g samples one attempt (the protocol's
  temperature, stop rule and token cap, `tactics_core.gpt.prover_figures`), which the
  user accepts (ctrl+y: kept in the cache, as a line the checker accepted) or
  rejects (ctrl+n). A rollout is `prover_figures.ROLLOUT_ATTEMPTS` attempts, failed
  ones included; ctrl+r goes back
  to the goal's base state for a new one. This is what the prover gets from
  the model, step by step.
* **free**: N candidates with temperature / top-p, ranked by log-probability;
  enter on one appends it to the proof after `@P` and asks again.

The screen runs the jobs and handles their outcomes; what it remembers is a
`PlaygroundState` (state.py), drawn by the `ProverPane` and the `CandidatesPane`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Input, Label, Select, Static, TextArea

from tactics_core.common.errors import TacticsError
from tactics_core.gpt import complete, corpus, evaluate, holdout, prover_figures, prover_replica
from tactics_core.gpt.holdout import DEFAULT_VAL_FRACTION  # used when no model is chosen yet
from tactics_core.gpt.layouts import Layout

from ...messages import JobDone
from ..base import WorkScreen
from ..dialogs import PickDialog
from .candidates_pane import CandidatesPane
from .models import model_layout, model_options
from .prover_pane import ProverPane, one_line
from .state import FREE_MODE, PROVER_MODE, PlaygroundState, Rollout, parse_settings, with_line, without_proof

EXAMPLE = "@G\n<paste a goal here, or press ctrl+l to pick one from the validation split>\n@P\n"
ATTEMPT_JOBS = ("prompt", "attempt")  # jobs that use the prover session in a worker


class PlaygroundScreen(WorkScreen):
    # Each pane's keys, then the screen's own; ctrl+g and ctrl+r mean one thing per mode
    # (`PlaygroundState.allows`). Named on screen (mode label, status line), not in the footer.
    BINDINGS = [
        *ProverPane.KEYS,
        *CandidatesPane.KEYS,
        Binding("ctrl+l", "pick_goal", "Pick goal", priority=True, show=False),
        Binding("ctrl+t", "toggle_mode", "Mode", priority=True, show=False),
    ]
    seed: int | None = None  # of each new prover session; None: fresh samples every time (tests fix it)

    def __init__(self) -> None:
        super().__init__()
        self.state = PlaygroundState()

    # What tests and the app read of the state.
    @property
    def mode(self) -> str:
        return self.state.mode

    @property
    def rollout(self) -> Rollout | None:
        return self.state.rollout

    @property
    def candidates(self) -> list[Any]:
        return self.state.candidates

    @property
    def reference(self) -> tuple[str, ...] | None:
        return self.state.reference

    @property
    def last_result(self) -> Any:
        return self.state.last_result

    def compose_body(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label("Model ", classes="field-label")
            yield Select([], allow_blank=True, prompt="no model yet", id="play-model", compact=True)
            yield Label("", id="play-mode")
        with Horizontal(classes="row", id="play-free-settings"):
            yield Label("N ", classes="field-label")
            yield Input("8", id="play-n", type="integer", compact=True, classes="small-input")
            yield Label(" temp ", classes="field-label")
            yield Input(f"{prover_figures.TEMPERATURE:g}", id="play-temp", type="number", compact=True, classes="small-input")
            yield Label(" top-p ", classes="field-label")
            yield Input("0.95", id="play-top-p", type="number", compact=True, classes="small-input")
        yield Static(
            f"temperature {prover_figures.TEMPERATURE:g} · stops at a newline token · ≤ {prover_figures.MAX_LINE_TOKENS} tokens"
            f" · rollouts of {prover_figures.ROLLOUT_ATTEMPTS}",
            markup=False,
            id="play-prover-settings",
            classes="row",
        )
        yield TextArea(EXAMPLE, id="play-text", soft_wrap=True, show_line_numbers=False)
        yield CandidatesPane(id="play-free")
        yield ProverPane(id="play-prover")
        yield Static("", markup=False, id="play-status")

    def on_mount(self) -> None:
        self.refresh_models()
        self._show_mode()
        self._status()

    def on_screen_resume(self) -> None:
        self.refresh_models()

    def reread(self) -> None:
        self.refresh_models()

    # -- models -------------------------------------------------------------
    def refresh_models(self) -> None:
        select = self.query_one("#play-model", Select)
        options = model_options(self.ws, self.app.run_folder())
        current = None if select.is_blank() else select.value
        select.set_options([(label, path) for label, path in options])
        paths = [p for _, p in options]
        wanted = self.state.wanted_model or current
        if wanted in paths:
            select.value = wanted
        elif paths:
            select.value = paths[0]

    def choose_model(self, path: str) -> None:
        self.state.wanted_model = path
        self.refresh_models()

    def _model(self) -> str | None:
        select = self.query_one("#play-model", Select)
        return None if select.is_blank() else str(select.value)

    def on_select_changed(self, event: Select.Changed) -> None:
        """A new model: its layout picks the mode (until the user picks one with ctrl+t)."""
        if event.select.id != "play-model" or not isinstance(event.value, str):
            return  # refreshing the list passes through no choice (Select.NULL) first
        if event.value == self.state.layout_read:  # the same model offered again (list refreshed)
            return
        self._show_prover()  # the rollout was the other model's
        self._read_layout()

    def _read_layout(self) -> None:
        path = self._model()
        if path is not None and not self.state.mode_chosen and not self.busy("layout"):
            self.state.layout_read = path
            self.start_job("layout", lambda progress, cancel: LayoutRead(path, model_layout(path)), "Reading the model's layout")

    def on_layout_read(self, message: LayoutRead) -> None:
        if message.path != self._model():  # the choice moved on meanwhile: read that one
            self._read_layout()
        elif not self.state.mode_chosen and message.layout is not None:
            self.set_mode(PROVER_MODE if message.layout.prover_stream else FREE_MODE)

    # -- modes ----------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.state.allows(action)

    def set_mode(self, mode: str) -> None:
        """Show `mode`; switching to prover mode builds the goal's prompt if it is not shown yet."""
        changed = self.state.set_mode(mode)
        self._show_mode()
        if changed and mode == PROVER_MODE and self._model() and self.query_one("#play-text", TextArea).text != EXAMPLE:
            if self.state.needs_prompt():
                self._prover_job(sample=False, quiet=True)

    def action_toggle_mode(self) -> None:
        self.set_mode(self.state.toggled())

    def _show_mode(self) -> None:
        in_prover = self.mode == PROVER_MODE
        self.query_one("#play-mode", Label).update(f" {self.mode} mode (ctrl+t)")
        self.query_one("#play-free-settings").display = not in_prover
        self.query_one(CandidatesPane).display = not in_prover
        self.query_one("#play-prover-settings").display = in_prover
        self.query_one(ProverPane).display = in_prover
        self.refresh_bindings()
        self._show_prover()

    # -- goals ----------------------------------------------------------------
    def action_pick_goal(self) -> None:
        """Goals of the validation split the chosen model was trained with (its val_fraction)."""
        data_dir = self.app.data_dir
        model = self._model()
        cached = self.state.completers.get(model) if model else None

        def job(progress, cancel):
            completer, val_fraction = cached, DEFAULT_VAL_FRACTION
            if model is not None:
                completer = completer or complete.Completer.load(model)
                val_fraction = evaluate.val_fraction_of(completer)
            files = [f for f in corpus.iter_corpus(data_dir, progress=progress, cancel=cancel) if f.proof]
            _, val = holdout.split_corpus(files, val_fraction=val_fraction)
            if not val:
                raise TacticsError(f"no validation goals with a proof in {data_dir}; choose another data folder (screen 1)")
            return GoalsRead(val[:500], model, completer)

        self.start_job("goals", job, "Reading the validation split")

    def on_goals_read(self, message: GoalsRead) -> None:
        goals = message.goals
        if message.model is not None:
            self.state.keep(message.model, message.completer)
        items = [one_line(f"{g.name}  {(g.goal[0] if g.goal else '').strip()}") for g in goals]
        self.app.push_screen(PickDialog(f"{len(goals)} validation goals", items), lambda i: self._goal_picked(goals, i))

    def _goal_picked(self, goals: list[Any], index: int | None) -> None:
        if index is None:
            return
        goal = goals[index]
        self.query_one("#play-text", TextArea).text = self.state.pick_goal(goal)
        self.query_one(CandidatesPane).clear()
        self._status(f"goal {goal.name} ({len(self.reference)} proof lines in the corpus)")
        if self.mode == PROVER_MODE and self._model():
            self._prover_job(sample=False, quiet=True)  # show the prompt as the prover builds it

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.id == "play-text" and self.state.edited():
            self._show_prover()

    def action_reset_proof(self) -> None:
        area = self.query_one("#play-text", TextArea)
        cleared = without_proof(area.text)
        if cleared is not None:
            area.text = cleared

    # -- prover mode --------------------------------------------------------------
    def _prover_busy(self, quiet: bool = False) -> bool:
        if any(self.busy(job) for job in ATTEMPT_JOBS):
            if not quiet:
                self.notify("an attempt is being sampled: wait for it, or esc cancels it", severity="warning")
            return True
        return False

    def action_attempt(self) -> None:
        why = self.rollout.why_over() if self.rollout is not None and not self.state.goal_edited else None
        if why is not None:
            self.notify(why, severity="warning")
            return
        self._prover_job(sample=True)

    def _prover_job(self, sample: bool, quiet: bool = False) -> None:
        """Build the goal's prover session if the goal or model changed; then sample one attempt.

        `quiet`: started by the screen itself (a goal picked), so a running job is no news."""
        model = self._model()
        if model is None:
            self.app.show_error("no model to ask: train one (screen 3) or export one (e)")
            return
        if self._prover_busy(quiet):
            return
        text = self.query_one("#play-text", TextArea).text
        cached = self.state.completers.get(model)
        rollout = self.rollout
        seed = self.seed

        def job(progress, cancel):
            goal = corpus.parse_proof_text(text if text.endswith("\n") else text + "\n", "playground")
            key = (model, goal.context_text())
            completer = cached
            if completer is None:
                progress(0, None, f"loading {Path(model).name}")
                completer = complete.Completer.load(model)
            fresh = None
            if rollout is None or rollout.key != key:
                session = prover_replica.ProverSession(completer.backend, completer.tokenizer, goal, seed=seed)
                kept = completer.tokenizer.decode(session.prompt.ids)
                fresh = Rollout(session, key, kept)
            session = (fresh or rollout).session
            attempt = session.attempt(cancel) if sample else None
            return ProverStep(model, completer, fresh, attempt)

        label = f"Sampling an attempt from {Path(model).name}" if sample else "Building the prover's prompt"
        self.start_job("attempt" if sample else "prompt", job, label)

    def on_prover_step(self, message: ProverStep) -> None:
        self.state.keep(message.model, message.completer)
        self.state.took_step(message.fresh, message.attempt)
        self._show_prover()

    def _verdict_allowed(self) -> bool:
        """An accept or reject may act now: a rollout exists and no attempt job uses it."""
        if self.rollout is None or self._prover_busy():
            if self.rollout is None:
                self.notify("no attempt yet: ctrl+g samples one", severity="warning")
            return False
        return True

    def action_accept(self) -> None:
        if self._verdict_allowed() and self.guard(self.rollout.accept) is not None:
            self._show_prover()

    def action_reject(self) -> None:
        if self._verdict_allowed() and self.guard(self.rollout.reject) is not None:
            self._show_prover()

    def action_new_rollout(self) -> None:
        if self.rollout is None or self._prover_busy():
            return
        self.rollout.new()
        self._show_prover()

    def _show_prover(self) -> None:
        r = self.state.shown_rollout(self._model())
        self.query_one(ProverPane).show(r, self.state.goal_edited, None if r is None else self.state.gold_lines(r))

    # -- free mode ------------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        return parse_settings(*(self.query_one(id_, Input).value for id_ in ("#play-n", "#play-temp", "#play-top-p")))

    def action_ask(self) -> None:
        model = self._model()
        if model is None:
            self.app.show_error("no model to ask: train one (screen 3) or export one (e)")
            return
        settings = self.app.guard(self._settings)
        if settings is None:
            return
        text = self.query_one("#play-text", TextArea).text
        cached = self.state.completers.get(model)

        def job(progress, cancel):
            goal = corpus.parse_proof_text(text if text.endswith("\n") else text + "\n", "playground")
            completer = cached
            if completer is None:
                progress(0, None, f"loading {Path(model).name}")
                completer = complete.Completer.load(model)
            result = completer.complete(
                goal.context_text(),
                proof_so_far=tuple(goal.proof or ()),
                n=settings["n"],
                temperature=settings["temperature"],
                top_p=settings["top_p"],
                cancel=cancel,
            )
            return CandidatesReady(model, completer, result, len(goal.proof or ()))

        self.start_job("complete", job, f"Asking {Path(model).name} for {settings['n']} candidates")

    def on_candidates_ready(self, message: CandidatesReady) -> None:
        completion = message.completion
        self.state.keep(message.model, message.completer)
        self.state.took_candidates(completion)
        self.query_one(CandidatesPane).show(self.candidates)
        notes = "; ".join(completion.notes)
        line = self.state.reference_line(message.done_lines)
        ref = f" · corpus line: {line.strip()[:60]}" if line is not None else ""
        self._status(
            f"{len(self.candidates)} candidates in {completion.seconds * 1000:.0f} ms ({completion.backend})"
            + (" · prompt truncated" if completion.truncated else "")
            + (f" · {notes}" if notes else "")
            + ref
        )

    def on_candidates_pane_chosen(self, message: CandidatesPane.Chosen) -> None:
        area = self.query_one("#play-text", TextArea)
        area.text = with_line(area.text, message.candidate.text)
        self.action_ask()

    def _status(self, text: str = "") -> None:
        export = self.app.last_export
        parts = [text] if text else []
        if export:
            parts.append(f"last export: {export.get('path')} (verified, max abs diff {export.get('max_abs_diff', 0):.1e})")
        if not parts:
            parts.append("ctrl+l picks a validation goal · ctrl+t switches prover / free mode · e exports the best model")
        self.query_one("#play-status", Static).update("\n".join(parts))

    def on_show(self) -> None:
        self._status()


@dataclass
class GoalsRead(JobDone):
    """Validation goals to pick from, and the model loaded to find its split (if any)."""

    goals: list[corpus.ProofFile]
    model: str | None
    completer: complete.Completer | None


@dataclass
class LayoutRead(JobDone):
    """The data layout model `path` was trained on (None: not recorded)."""

    path: str
    layout: Layout | None


@dataclass
class ProverStep(JobDone):
    """A prover job's result: `fresh`, a new rollout when the goal or model changed, and
    `attempt`, the attempt sampled (None when the job only built the prompt)."""

    model: str
    completer: complete.Completer
    fresh: Rollout | None
    attempt: prover_replica.Attempt | None


@dataclass
class CandidatesReady(JobDone):
    """Free mode's ranked candidates; `done_lines`: proof lines the goal already had."""

    model: str
    completer: complete.Completer
    completion: complete.CompletionResult
    done_lines: int
