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
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from tactics_core.common.errors import TacticsError
from tactics_core.common.workspace import current_run_dir
from tactics_core.gpt import complete, corpus, data, evaluate, prover_figures, prover_replica
from tactics_core.gpt.data import DEFAULT_VAL_FRACTION  # used when no model is chosen yet
from tactics_core.gpt.layouts import Layout, layout_named
from tactics_core.runs import checkpoints

from ..messages import JobDone
from .base import WorkScreen
from .dialogs import PickDialog

EXAMPLE = "@G\n<paste a goal here, or press ctrl+l to pick one from the validation split>\n@P\n"
PROVER_MODE, FREE_MODE = MODES = ("prover", "free")  # Playground modes, not layouts
ATTEMPT_JOBS = ("prompt", "attempt")  # jobs that use the prover session in a worker


@dataclass
class Rollout:
    """The prover state of one goal: the core's ProverSession and what the user did with
    each attempt of the current rollout (verdicts: pending, accepted, rejected, failed).

    Only the UI thread changes it, and never while an attempt job uses the session.
    """

    session: Any
    key: tuple[str, str]  # (model, goal context) it was built for
    kept_text: str  # the prompt's kept tokens, decoded: what the model is given
    limit: int = prover_figures.ROLLOUT_ATTEMPTS  # attempts per rollout
    number: int = 1  # rollouts started on this goal
    history: list[list[Any]] = field(default_factory=list)  # [attempt, verdict]

    @property
    def attempts(self) -> int:
        return len(self.history)

    @property
    def over(self) -> bool:
        """All attempts used, or a line the real prover crashes on (it would not go on)."""
        return self.attempts >= self.limit or bool(self.history and self.history[-1][1] == "crash")

    @property
    def pending(self) -> Any | None:
        if self.history and self.history[-1][1] == "pending":
            return self.history[-1][0]
        return None

    def took(self, attempt: Any) -> None:
        """A new attempt came back; one still waiting is rejected (the prover drops its copy)."""
        if self.pending is not None:
            self.history[-1][1] = "rejected"
        crash = not attempt.failed and prover_replica.crashes_acorn(attempt.text)
        self.history.append([attempt, "failed" if attempt.failed else "crash" if crash else "pending"])

    def accept(self) -> Any:
        attempt = self.pending
        if attempt is None:
            raise TacticsError("no attempt waiting to be accepted: ctrl+g samples one")
        self.session.accept(attempt)
        self.history[-1][1] = "accepted"
        return attempt

    def reject(self) -> Any:
        attempt = self.pending
        if attempt is None:
            raise TacticsError("no attempt waiting to be rejected: ctrl+g samples one")
        self.history[-1][1] = "rejected"
        return attempt

    def new(self) -> None:
        """Back to the goal's base state: the prompt only, no attempts."""
        self.session.reset()
        self.history.clear()
        self.number += 1


class PlaygroundScreen(WorkScreen):
    BINDINGS = [
        Binding("ctrl+g", "attempt", "Attempt", priority=True),
        Binding("ctrl+g", "ask", "Ask", priority=True),
        Binding("ctrl+y", "accept", "Accept", priority=True),
        Binding("ctrl+n", "reject", "Reject", priority=True),
        Binding("ctrl+r", "reset_proof", "Clear proof", priority=True),
        # These are named on screen (rollout line, status line, mode label), so that the
        # footer keeps room for 1-6, e and q at 80 columns.
        Binding("ctrl+r", "new_rollout", "New rollout", priority=True, show=False),
        Binding("ctrl+l", "pick_goal", "Pick goal", priority=True, show=False),
        Binding("ctrl+t", "toggle_mode", "Mode", priority=True, show=False),
    ]
    FREE_ONLY = frozenset({"ask", "reset_proof"})
    PROVER_ONLY = frozenset({"attempt", "accept", "reject", "new_rollout"})
    seed: int | None = None  # of each new prover session; None: fresh samples every time (tests fix it)

    def __init__(self) -> None:
        super().__init__()
        self._completers: dict[str, Any] = {}
        self.candidates: list[Any] = []
        self.last_result: Any = None
        self.reference: tuple[str, ...] | None = None  # the picked goal's corpus proof
        self._reference_context: str | None = None
        self._wanted_model: str | None = None
        self.mode = PROVER_MODE
        self._mode_chosen = False  # the user switched: a model's layout no longer picks the mode
        self.rollout: Rollout | None = None
        self._goal_edited = False
        self._layout_read: str | None = None  # the model whose layout was (being) read

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
        with Vertical(id="play-free"):
            yield Label("Candidates (enter accepts one and asks again)", classes="section-title")
            yield OptionList(markup=False, id="play-candidates")
        with Vertical(id="play-prover"):
            yield Static("", markup=False, id="play-prompt-info")
            with VerticalScroll(id="play-cache"):
                yield Static("", markup=False, id="play-cache-text")
            yield Static("", markup=False, id="play-attempt")
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
        wanted = self._wanted_model or current
        if wanted in paths:
            select.value = wanted
        elif paths:
            select.value = paths[0]

    def choose_model(self, path: str) -> None:
        self._wanted_model = path
        self.refresh_models()

    def _model(self) -> str | None:
        select = self.query_one("#play-model", Select)
        return None if select.is_blank() else str(select.value)

    def on_select_changed(self, event: Select.Changed) -> None:
        """A new model: its layout picks the mode (until the user picks one with ctrl+t)."""
        if event.select.id != "play-model" or not isinstance(event.value, str):
            return  # refreshing the list passes through no choice (Select.NULL) first
        if event.value == self._layout_read:  # the same model offered again (list refreshed)
            return
        self._show_prover()  # the rollout was the other model's
        self._read_layout()

    def _read_layout(self) -> None:
        path = self._model()
        if path is not None and not self._mode_chosen and not self.busy("layout"):
            self._layout_read = path
            self.start_job("layout", lambda progress, cancel: LayoutRead(path, model_layout(path)), "Reading the model's layout")

    # -- modes ----------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """ctrl+g and ctrl+r mean one thing per mode; accept / reject exist in prover mode only."""
        if action in self.FREE_ONLY:
            return self.mode == FREE_MODE
        if action in self.PROVER_ONLY:
            return self.mode == PROVER_MODE
        return True

    def set_mode(self, mode: str) -> None:
        """Show `mode`; switching to prover mode builds the goal's prompt if it is not shown yet."""
        if mode not in MODES:
            raise ValueError(mode)
        changed, self.mode = mode != self.mode, mode
        self._show_mode()
        if changed and mode == PROVER_MODE and self._model() and self.query_one("#play-text", TextArea).text != EXAMPLE:
            if self.rollout is None or self._goal_edited:
                self._prover_job(sample=False, quiet=True)

    def action_toggle_mode(self) -> None:
        self._mode_chosen = True
        self.set_mode(FREE_MODE if self.mode == PROVER_MODE else PROVER_MODE)

    def _show_mode(self) -> None:
        in_prover = self.mode == PROVER_MODE
        self.query_one("#play-mode", Label).update(f" {self.mode} mode (ctrl+t)")
        self.query_one("#play-free-settings").display = not in_prover
        self.query_one("#play-free").display = not in_prover
        self.query_one("#play-prover-settings").display = in_prover
        self.query_one("#play-prover").display = in_prover
        self.refresh_bindings()
        self._show_prover()

    # -- goals ----------------------------------------------------------------
    def action_pick_goal(self) -> None:
        """Goals of the validation split the chosen model was trained with (its val_fraction)."""
        data_dir = self.app.data_dir
        model = self._model()
        cached = self._completers.get(model) if model else None

        def job(progress, cancel):
            completer, val_fraction = cached, DEFAULT_VAL_FRACTION
            if model is not None:
                completer = completer or complete.Completer.load(model)
                val_fraction = evaluate.val_fraction_of(completer)
            files = [f for f in corpus.iter_corpus(data_dir, progress=progress, cancel=cancel) if f.proof]
            _, val = data.split_corpus(files, val_fraction=val_fraction)
            if not val:
                raise TacticsError(f"no validation goals with a proof in {data_dir}; choose another data folder (screen 1)")
            return GoalsRead(val[:500], model, completer)

        self.start_job("goals", job, "Reading the validation split")

    def _goal_picked(self, goals: list[Any], index: int | None) -> None:
        if index is None:
            return
        goal = goals[index]
        self.reference = tuple(goal.proof or ())
        self._reference_context = goal.context_text()
        self.query_one("#play-text", TextArea).text = goal.context_text() + "@P\n"
        self.candidates = []
        self.query_one("#play-candidates", OptionList).clear_options()
        self._status(f"goal {goal.name} ({len(self.reference)} proof lines in the corpus)")
        if self.mode == PROVER_MODE and self._model():
            self._prover_job(sample=False, quiet=True)  # show the prompt as the prover builds it

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.id == "play-text" and self.rollout is not None:
            self._goal_edited = True
            self._show_prover()

    def action_reset_proof(self) -> None:
        area = self.query_one("#play-text", TextArea)
        text = area.text
        if "\n@P\n" in "\n" + text:
            head = ("\n" + text).split("\n@P\n", 1)[0][1:]
            area.text = head + "\n@P\n" if head else "@P\n"

    # -- prover mode --------------------------------------------------------------
    def _prover_busy(self, quiet: bool = False) -> bool:
        if any(self.busy(job) for job in ATTEMPT_JOBS):
            if not quiet:
                self.notify("an attempt is being sampled: wait for it, or esc cancels it", severity="warning")
            return True
        return False

    def action_attempt(self) -> None:
        if self.rollout is not None and self.rollout.over and not self._goal_edited:
            crashed = self.rollout.history[-1][1] == "crash"
            why = "ended on a // line acorn crashes on" if crashed else f"used its {self.rollout.limit} attempts"
            self.notify(f"rollout {self.rollout.number} {why}; ctrl+r starts a new one", severity="warning")
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
        cached = self._completers.get(model)
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
        self._completers = {message.model: message.completer}  # keep one model in memory
        if message.fresh is not None:
            self.rollout = message.fresh
            self._goal_edited = False
        if message.attempt is not None and self.rollout is not None:
            self.rollout.took(message.attempt)
        self._show_prover()

    def action_accept(self) -> None:
        if self.rollout is None or self._prover_busy():
            if self.rollout is None:
                self.notify("no attempt yet: ctrl+g samples one", severity="warning")
            return
        attempt = self.guard(self.rollout.accept)
        if attempt is not None:
            self._show_prover()

    def action_reject(self) -> None:
        if self.rollout is None or self._prover_busy():
            if self.rollout is None:
                self.notify("no attempt yet: ctrl+g samples one", severity="warning")
            return
        if self.guard(self.rollout.reject) is not None:
            self._show_prover()

    def action_new_rollout(self) -> None:
        if self.rollout is None or self._prover_busy():
            return
        self.rollout.new()
        self._show_prover()

    def _show_prover(self) -> None:
        """The prover panel: prompt facts, the cache as text, the rollout and the last attempt."""
        r = self.rollout
        info = self.query_one("#play-prompt-info", Static)
        cache = self.query_one("#play-cache-text", Static)
        panel = self.query_one("#play-attempt", Static)
        if r is None or r.key[0] != self._model():
            info.update("The prover's prompt: ctrl+l picks a goal (or paste one above), ctrl+g samples an attempt.")
            cache.update("")
            panel.update("")
            return
        info.update(prompt_info(r.session.prompt) + (" · goal edited: ctrl+g rebuilds" if self._goal_edited else ""))
        cache.update(cache_text(r))
        self.query_one("#play-cache", VerticalScroll).scroll_end(animate=False)
        panel.update(attempt_text(r, self._gold_lines(r)))

    def _gold_lines(self, r: Rollout) -> tuple[str, ...] | None:
        """The picked goal's corpus proof, if the rollout is on that goal."""
        if self.reference is None or r.key[1] != self._reference_context:
            return None
        return self.reference

    # -- free mode ------------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        def number(id_: str, kind, lo, hi, name):
            text = self.query_one(id_, Input).value.strip()
            try:
                value = kind(text)
            except ValueError:
                raise TacticsError(f"{name} {text!r} is not a number") from None
            if not lo <= value <= hi:
                raise TacticsError(f"{name} must be between {lo} and {hi}, not {value}")
            return value

        return {
            "n": number("#play-n", int, 1, 64, "N"),
            "temperature": number("#play-temp", float, 0.0, 5.0, "temperature"),
            "top_p": number("#play-top-p", float, 0.01, 1.0, "top-p"),
        }

    def action_ask(self) -> None:
        model = self._model()
        if model is None:
            self.app.show_error("no model to ask: train one (screen 3) or export one (e)")
            return
        settings = self.app.guard(self._settings)
        if settings is None:
            return
        text = self.query_one("#play-text", TextArea).text
        cached = self._completers.get(model)

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

    def on_goals_read(self, message: GoalsRead) -> None:
        goals = message.goals
        if message.model is not None:
            self._completers = {message.model: message.completer}
        items = [_one_line(f"{g.name}  {(g.goal[0] if g.goal else '').strip()}") for g in goals]
        self.app.push_screen(PickDialog(f"{len(goals)} validation goals", items), lambda i: self._goal_picked(goals, i))

    def on_layout_read(self, message: LayoutRead) -> None:
        if message.path != self._model():  # the choice moved on meanwhile: read that one
            self._read_layout()
        elif not self._mode_chosen and message.layout is not None:
            self.set_mode(PROVER_MODE if message.layout.prover_stream else FREE_MODE)

    def on_candidates_ready(self, message: CandidatesReady) -> None:
        completion = message.completion
        self._completers = {message.model: message.completer}  # keep one model in memory
        self.candidates = list(completion.candidates)
        self.last_result = completion
        options = self.query_one("#play-candidates", OptionList)
        options.clear_options()
        options.add_options(
            [
                Option(_one_line(f"{c.logprob:8.3f}  {c.text}", max(20, options.size.width - 4)), id=str(i))
                for i, c in enumerate(self.candidates)
            ]
        )
        if self.candidates:
            options.highlighted = 0
            options.focus()
        notes = "; ".join(completion.notes)
        ref = ""
        if self.reference is not None and message.done_lines < len(self.reference):
            ref = f" · corpus line: {self.reference[message.done_lines].strip()[:60]}"
        self._status(
            f"{len(self.candidates)} candidates in {completion.seconds * 1000:.0f} ms ({completion.backend})"
            + (" · prompt truncated" if completion.truncated else "")
            + (f" · {notes}" if notes else "")
            + ref
        )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id != "play-candidates":
            return
        line = self.candidates[int(event.option.id)].text
        area = self.query_one("#play-text", TextArea)
        text = area.text if area.text.endswith("\n") else area.text + "\n"
        if "\n@P\n" not in "\n" + text:
            text += "@P\n"
        area.text = text + line.rstrip("\n") + "\n"
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


def model_layout(path: str) -> Layout | None:
    """The data layout a model was trained on (export config.json or checkpoint sidecar), if known."""
    p = Path(path)
    if p.is_dir():
        return complete.export_layout(complete.read_export_config(p))
    name = checkpoints.read_meta(p).get("layout")
    return None if name is None else layout_named(name)


def prompt_info(prompt: Any) -> str:
    """One line: the prompt's size as the prover keeps it, and what its front truncation cut."""
    kept = f"prompt {len(prompt.ids)} tokens (context only, no @P)"
    if not prompt.cut_tokens:
        return kept + " · nothing cut"
    return f"{kept} · cut {prompt.cut_tokens} of {prompt.full_tokens} from the front: «{preview(prompt.cut_text)}»"


def preview(text: str, width: int = 28) -> str:
    """A short one-line look at a text: its start and end, newlines as ⏎."""
    text = text.replace("\n", "⏎")
    if len(text) <= width:
        return text
    head = width * 2 // 3
    return text[:head] + "…" + text[-(width - head - 1):]


def cache_text(r: Rollout) -> Text:
    """What the prover's cache holds: the kept prompt, then ⏎ (the newline token it feeds)
    and each accepted line, then the attempt waiting for a verdict."""
    text = Text(r.kept_text, style="dim")
    for attempt, verdict in r.history:
        if verdict == "accepted":
            text.append("⏎ ", style="dim")
            text.append(attempt.text + "\n", style="bold green")
    pending = r.pending
    if pending is not None:
        text.append("⏎ ", style="dim")
        text.append(pending.text, style="reverse")
        text.append("  ← accept (ctrl+y) or reject (ctrl+n)", style="italic")
    return text


STATUS_WORDS = {
    "line": "a line",
    "max_tokens": f"no newline within {prover_figures.MAX_LINE_TOKENS} tokens",
    "empty": "empty: a failed attempt",
    "context_limit": "no room left: a failed attempt",
}


def attempt_text(r: Rollout, gold: tuple[str, ...] | None) -> str:
    """Three lines: where the rollout is, the last attempt and its fate, the corpus's next line."""
    session = r.session
    accepted = sum(1 for _, v in r.history if v == "accepted")
    lines = [
        f"rollout {r.number} (ctrl+r: new) · attempt {r.attempts}/{r.limit}"
        + (" (over)" if r.over and r.pending is None else "")
        + f" · {accepted} accepted · room {session.room} of {session.context_length}"
    ]
    if r.history:
        attempt, verdict = r.history[-1]
        what = STATUS_WORDS.get(attempt.status, attempt.status)
        fate = {"pending": "", "accepted": " · accepted", "rejected": " · rejected", "failed": "",
                "crash": " · acorn f47631b0 crashes on a // line"}[verdict]
        shown = _one_line(attempt.text, 50) if attempt.text.strip() else "(nothing)"
        lines.append(f"attempt {r.attempts}: {shown}  [{what}, {len(attempt.tokens)} tokens{fate}]")
    else:
        lines.append("ctrl+g samples an attempt (one line, the prover's way)")
    if gold is not None:
        i = len(session.accepted)
        if i < len(gold):
            pending = r.pending
            same = pending is not None and corpus.normalize_line(pending.text) == corpus.normalize_line(gold[i])
            lines.append(f"corpus line {i + 1} of {len(gold)}: {gold[i].strip()}" + ("  (= the attempt)" if same else ""))
        else:
            lines.append(f"the corpus proof has {len(gold)} line(s); all accepted lines are past it")
    return "\n".join(lines)


def _one_line(text: str, width: int = 74) -> str:
    """One row of a list: newlines shown as spaces, cut to `width` with an ellipsis."""
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def model_options(ws, run_folder=None) -> list[tuple[str, str]]:
    """Export folders (newest first) then the run's checkpoints (best first) as (label, path).

    `run_folder`: the run whose checkpoints to offer (default: the workspace's current run)."""
    options: list[tuple[str, str]] = []
    if ws.export_dir.is_dir():
        exports = sorted((p for p in ws.export_dir.iterdir() if (p / "model.onnx").is_file()), reverse=True)
        options += [(f"export  {p.name}", str(p)) for p in exports]
    folder = Path(run_folder) if run_folder is not None else current_run_dir(ws.checkpoint_dir)
    if folder.is_dir():
        pts = sorted(folder.glob("*.pt"), key=lambda p: (p.name != "best_model.pt", -p.stat().st_mtime))
        options += [(f"checkpoint  {p.name}", str(p)) for p in pts if not _scorer_checkpoint(p)]
    return options


def _scorer_checkpoint(path: Path) -> bool:
    """A proof-step scorer's checkpoint (its sidecar says so): nothing the Playground can run."""
    try:
        return json.loads(checkpoints.meta_path(path).read_text(encoding="utf-8")).get("kind") == "scorer"
    except (OSError, ValueError, AttributeError):
        return False
