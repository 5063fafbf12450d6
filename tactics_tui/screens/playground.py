"""Playground: ask a model for the next proof line, accept one, ask again.

The model is a checkpoint (PyTorch) or an export folder (ONNX Runtime),
loaded once by the core's `Completer` in a worker. The text area holds a
goal context (paste one, or pick a goal of the validation split) and the
proof so far; ctrl+g asks for N candidates with their log-probabilities,
enter on a candidate appends it to the proof and asks again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Checkbox, Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from tactics_core.errors import TacticsError

from ..jobs import core
from .base import WorkScreen
from .dialogs import PickDialog

DEFAULT_VAL_FRACTION = 0.1  # the presets' default, used when no model is chosen yet
EXAMPLE = "@G\n<paste a goal here, or press ctrl+l to pick one from the validation split>\n@P\n"


class PlaygroundScreen(WorkScreen):
    MODE = "playground"
    BINDINGS = [
        Binding("ctrl+g", "ask", "Ask", priority=True),
        Binding("ctrl+l", "pick_goal", "Pick goal", priority=True),
        Binding("ctrl+r", "reset_proof", "Clear proof", priority=True),
        Binding("ctrl+t", "toggle_prover", "Prover prompt", priority=True, show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._completers: dict[str, Any] = {}
        self.candidates: list[Any] = []
        self.last_result: Any = None
        self.reference: tuple[str, ...] | None = None
        self._wanted_model: str | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label("Model ", classes="field-label")
            yield Select([], allow_blank=True, prompt="no model yet", id="play-model", compact=True)
        with Horizontal(classes="row"):
            yield Label("N ", classes="field-label")
            yield Input("8", id="play-n", type="integer", compact=True, classes="small-input")
            yield Label(" temp ", classes="field-label")
            yield Input("0.8", id="play-temp", type="number", compact=True, classes="small-input")
            yield Label(" top-p ", classes="field-label")
            yield Input("0.95", id="play-top-p", type="number", compact=True, classes="small-input")
            yield Label(" ", classes="field-label")
            yield Checkbox("prover's prompt", False, id="play-prover", compact=True)
        yield TextArea(EXAMPLE, id="play-text", soft_wrap=True, show_line_numbers=False)
        yield Label("Candidates (enter accepts one and asks again)", classes="section-title")
        yield OptionList(markup=False, id="play-candidates")
        yield Static("", markup=False, id="play-status")

    def on_mount(self) -> None:
        self.refresh_models()
        self._status()

    def on_screen_resume(self) -> None:
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

    # -- goals ----------------------------------------------------------------
    def action_pick_goal(self) -> None:
        """Goals of the validation split the chosen model was trained with (its val_fraction)."""
        data_dir = self.app.data_dir
        select = self.query_one("#play-model", Select)
        model = None if select.is_blank() else str(select.value)
        cached = self._completers.get(model) if model else None

        def job(progress, cancel):
            corpus = core("corpus")
            data = core("data")
            completer, val_fraction = cached, DEFAULT_VAL_FRACTION
            if model is not None:
                completer = completer or core("complete").Completer.load(model)
                val_fraction = core("evaluate").val_fraction_of(completer)
            files = [f for f in corpus.iter_corpus(data_dir, progress=progress, cancel=cancel) if f.proof]
            _, val = data.split_corpus(files, val_fraction=val_fraction)
            if not val:
                raise TacticsError(f"no validation goals with a proof in {data_dir}; choose another data folder (screen 1)")
            return val[:500], model, completer

        self.start_job("goals", job, "Reading the validation split")

    def _goal_picked(self, goals: list[Any], index: int | None) -> None:
        if index is None:
            return
        goal = goals[index]
        self.reference = tuple(goal.proof or ())
        self.query_one("#play-text", TextArea).text = goal.context_text() + "@P\n"
        self.candidates = []
        self.query_one("#play-candidates", OptionList).clear_options()
        self._status(f"goal {goal.name} ({len(self.reference)} proof lines in the corpus)")

    def action_toggle_prover(self) -> None:
        box = self.query_one("#play-prover", Checkbox)
        box.value = not box.value

    def action_reset_proof(self) -> None:
        area = self.query_one("#play-text", TextArea)
        text = area.text
        if "\n@P\n" in "\n" + text:
            head = ("\n" + text).split("\n@P\n", 1)[0][1:]
            area.text = head + "\n@P\n" if head else "@P\n"

    # -- asking -----------------------------------------------------------------
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
            "prover_prompt": self.query_one("#play-prover", Checkbox).value,
        }

    def action_ask(self) -> None:
        model = self.query_one("#play-model", Select).value
        if self.query_one("#play-model", Select).is_blank():
            self.app.show_error("no model to ask: train one (screen 3) or export one (e)")
            return
        settings = self.app.guard(self._settings)
        if settings is None:
            return
        text = self.query_one("#play-text", TextArea).text
        model = str(model)
        cached = self._completers.get(model)

        def job(progress, cancel):
            corpus = core("corpus")
            goal = corpus.parse_proof_text(text if text.endswith("\n") else text + "\n", "playground")
            completer = cached
            if completer is None:
                progress(0, None, f"loading {Path(model).name}")
                completer = core("complete").Completer.load(model)
            result = completer.complete(
                goal.context_text(),
                proof_so_far=tuple(goal.proof or ()),
                n=settings["n"],
                temperature=settings["temperature"],
                top_p=settings["top_p"],
                prover_prompt=settings["prover_prompt"],
            )
            return model, completer, result, len(goal.proof or ())

        self.start_job("complete", job, f"Asking {Path(model).name} for {settings['n']} candidates")

    def job_done(self, job: str, result: Any) -> None:
        if job == "goals":
            goals, model, completer = result
            if model is not None:
                self._completers = {model: completer}
            items = [_one_line(f"{g.name}  {(g.goal[0] if g.goal else '').strip()}") for g in goals]
            self.app.push_screen(PickDialog(f"{len(goals)} validation goals", items), lambda i: self._goal_picked(goals, i))
        elif job == "complete":
            model, completer, completion, done_lines = result
            self._completers = {model: completer}  # keep one model in memory
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
            notes = "; ".join(getattr(completion, "notes", ()) or ())
            ref = ""
            if self.reference is not None and done_lines < len(self.reference):
                ref = f" · corpus line: {self.reference[done_lines].strip()[:60]}"
            self._status(
                f"{len(self.candidates)} candidates in {completion.seconds * 1000:.0f} ms ({completion.backend})"
                + (" · prompt truncated" if getattr(completion, "truncated", False) else "")
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
            parts.append("ctrl+g asks the model · ctrl+l picks a validation goal · e exports the best model")
        self.query_one("#play-status", Static).update("\n".join(parts))

    def on_show(self) -> None:
        self._status()


def _one_line(text: str, width: int = 74) -> str:
    """One row of a list: newlines shown as spaces, cut to `width` with an ellipsis."""
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def model_options(ws, run_folder=None) -> list[tuple[str, str]]:
    """Export folders (newest first) then the run's checkpoints (best first) as (label, path).

    `run_folder`: the run whose checkpoints to offer (default: the workspace's current run)."""
    from pathlib import Path

    from tactics_core.runstore import current_run_dir

    options: list[tuple[str, str]] = []
    if ws.export_dir.is_dir():
        exports = sorted((p for p in ws.export_dir.iterdir() if (p / "model.onnx").is_file()), reverse=True)
        options += [(f"export  {p.name}", str(p)) for p in exports]
    folder = Path(run_folder) if run_folder is not None else current_run_dir(ws.checkpoint_dir)
    if folder.is_dir():
        pts = sorted(folder.glob("*.pt"), key=lambda p: (p.name != "best_model.pt", -p.stat().st_mtime))
        options += [(f"checkpoint  {p.name}", str(p)) for p in pts]
    return options
