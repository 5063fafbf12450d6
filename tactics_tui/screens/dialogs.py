"""Small modal dialogs: a yes/no confirmation, a pick-one list, the demo offer, the acornlib import and "prove in Acorn"."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tactics_core.acorn import eval_judge as acorn_eval
from tactics_core.common.errors import TacticsError


class ConfirmDialog(ModalScreen[bool]):
    """Ask a yes/no question; y / n / escape work without the mouse."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question = question
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, markup=False, classes="dialog-question")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="primary", id="yes")
                yield Button(f"{self.no} (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PickDialog(ModalScreen[int | None]):
    """Pick one item of a list (enter), or escape for none."""

    BINDINGS = [Binding("escape", "pick_none", "Close")]

    def __init__(self, title: str, items: list) -> None:
        super().__init__()
        self.title_text = title
        self.items = items

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide"):
            yield Label(self.title_text, markup=False, classes="dialog-question")
            yield OptionList(*(Option(text, id=str(i)) for i, text in enumerate(self.items)), markup=False)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id))

    def action_pick_none(self) -> None:
        self.dismiss(None)


class DemoOfferDialog(ConfirmDialog):
    """The empty-workspace offer: the demo corpus (y), an acornlib import (i), or nothing (n).

    Dismisses with True (demo), "import" or False.
    """

    BINDINGS = [
        Binding("y", "answer(True)", "Demo"),
        Binding("i", "import_lib", "Import"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide"):
            yield Label(self.question, markup=False, classes="dialog-question")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="primary", id="yes")
                yield Button("Import acornlib (i)", id="import")
                yield Button(f"{self.no} (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss("import" if event.button.id == "import" else event.button.id == "yes")

    def action_import_lib(self) -> None:
        self.dismiss("import")


def split_globs(text: str) -> list[str]:
    """`src/real/* src/nat/*` or comma-separated: the globs of an include/exclude field."""
    return [g for g in text.replace(",", " ").split() if g]


class ImportDialog(ModalScreen[dict | None]):
    """Ask where the acornlib checkout is and which modules to take.

    Enter in any field starts the import, tab moves between fields, escape
    closes. Dismisses with {"path", "include", "exclude", "force", "style"} or None.
    """

    BINDINGS = [Binding("escape", "close", "Cancel")]

    def __init__(self, data_dir: str, folder: str = "", has_corpus: bool = False) -> None:
        super().__init__()
        self.data_dir = data_dir
        self.folder = folder
        self.has_corpus = has_corpus

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide", id="import-dialog"):
            yield Label(
                f"Import from acornlib: one proof file per certificate of a checkout, into {self.data_dir}.",
                markup=False, classes="dialog-question",
            )
            with Horizontal(classes="form-row"):
                yield Label("acornlib folder ", classes="form-key")
                yield Input(self.folder, placeholder="~/acornlib", id="imp-path", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("include globs ", classes="form-key")
                yield Input("", placeholder="all modules (e.g. src/real/*)", id="imp-include", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("exclude globs ", classes="form-key")
                yield Input("", placeholder="none", id="imp-exclude", compact=True)
            yield Checkbox(
                "Write the files as acorn's own `training` does (@T from the open block; docs/corpus.md)",
                False, id="imp-acorn-style", compact=True,
            )
            yield Checkbox(f"Replace the corpus in {self.data_dir}", self.has_corpus, id="imp-force", compact=True)
            yield Static("", markup=False, id="imp-error", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Import (enter)", variant="primary", id="imp-go")
                yield Button("Cancel (esc)", id="imp-cancel")

    def on_mount(self) -> None:
        self.query_one("#imp-path", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "imp-go":
            self.submit()
        else:
            self.dismiss(None)

    def submit(self) -> None:
        path = self.query_one("#imp-path", Input).value.strip()
        if not path:
            self.query_one("#imp-error", Static).update("Type the folder of your acornlib checkout.")
            self.query_one("#imp-path", Input).focus()
            return
        self.dismiss(
            {
                "path": path,
                "include": split_globs(self.query_one("#imp-include", Input).value),
                "exclude": split_globs(self.query_one("#imp-exclude", Input).value),
                "force": self.query_one("#imp-force", Checkbox).value,
                "style": "acorn" if self.query_one("#imp-acorn-style", Checkbox).value else "published",
            }
        )

    def action_close(self) -> None:
        self.dismiss(None)


class ImportReportDialog(ModalScreen[None]):
    """What an import did: the summary and every problem (file names shown as plain text)."""

    BINDINGS = [Binding("escape,enter", "close", "Close")]

    def __init__(self, summary: str, problems: list[str]) -> None:
        super().__init__()
        self.summary = summary
        self.problems = problems

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide", id="import-report"):
            yield Static(self.summary, markup=False, id="import-summary")
            title = f"Problems ({len(self.problems):,})" if self.problems else "No problems"
            yield Label(title, markup=False, classes="section-title")
            if self.problems:
                yield OptionList(*(Option(p) for p in self.problems), markup=False, id="import-problems")
            yield Label("enter / esc: close", classes="dialog-question")

    def on_mount(self) -> None:
        if self.problems:
            self.query_one("#import-problems", OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


class ProveDialog(ModalScreen[dict | None]):
    """Ask what the real Acorn prover should prove with a checkpoint, and where acorn is.

    A GPT (`kind` "gpt") is judged by acorn f47631b0's generative prover on acornlib
    modules: the binary and the library come prefilled from TACTICS_ACORN / TACTICS_ACORNLIB
    or the workspace's tactics.toml; "remember" writes them to tactics.toml. Dismisses with
    {"acorn", "acornlib", "modules", "baseline", "remember"} or None.
    A scorer (`kind` "scorer") is judged by acorn 0.2.6's `acorn eval` on goal buckets
    (`target` is the buckets, "91-92" by default); dismisses with {"acorn", "acornlib",
    "buckets", "baseline"} or None.
    The focus starts in the first empty field, so typing goes there at once.
    """

    BINDINGS = [Binding("escape", "close", "Cancel")]
    DEFAULT_BUCKETS = "91-92"
    FIELDS = ("#prove-acorn", "#prove-lib", "#prove-modules")

    def __init__(self, checkpoint: str, acorn: str = "", acornlib: str = "", modules: str = "", kind: str = "gpt") -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.acorn = acorn
        self.acornlib = acornlib
        self.kind = kind
        self.modules = modules if kind != "scorer" else (modules or self.DEFAULT_BUCKETS)
        # Focused as the dialog is composed (before any key can arrive): the first empty field.
        values = (self.acorn, self.acornlib, self.modules)
        self.AUTO_FOCUS = next((w for w, v in zip(self.FIELDS, values) if not v.strip()), self.FIELDS[-1])

    def compose(self) -> ComposeResult:
        scorer = self.kind == "scorer"
        with Vertical(classes="dialog dialog-wide", id="prove-dialog"):
            if scorer:
                intro = (f"Judge {self.checkpoint} in acorn eval: acorn {acorn_eval.EVAL_RELEASE} ({acorn_eval.EVAL_COMMIT}) "
                         f"searches every goal of the buckets with the scorer (exported first), "
                         f"{acorn_eval.DEFAULT_TIMEOUT:g} s each.")
            else:
                intro = (f"Prove in Acorn with {self.checkpoint}: the real generative prover (acorn f47631b0) on every goal "
                         "of the modules, 5 s each.")
            yield Label(intro, markup=False, classes="dialog-question")
            with Horizontal(classes="form-row"):
                yield Label("acorn binary ", classes="form-key")
                placeholder = f"path to acorn {acorn_eval.EVAL_COMMIT}" if scorer else "path to acorn f47631b0"
                yield Input(self.acorn, placeholder=placeholder, id="prove-acorn", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("acornlib ", classes="form-key")
                placeholder = f"acornlib {acorn_eval.EVAL_ACORNLIB_COMMIT} checkout" if scorer else "acornlib c30e377 checkout"
                yield Input(self.acornlib, placeholder=placeholder, id="prove-lib", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("buckets " if scorer else "modules ", classes="form-key")
                placeholder = "goal buckets, e.g. 91-92 or 90-99" if scorer else "e.g. list.list_order nat.*"
                yield Input(self.modules, placeholder=placeholder, id="prove-modules", compact=True)
            if scorer:
                yield Checkbox("Also run acorn's default scorer and depth-first (baseline)", False, id="prove-baseline", compact=True)
            else:
                yield Checkbox("Also run the saturation prover alone (baseline)", False, id="prove-baseline", compact=True)
                yield Checkbox("Remember acorn and acornlib in tactics.toml", False, id="prove-remember", compact=True)
            yield Static("", markup=False, id="prove-error", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Judge (enter)" if scorer else "Prove (enter)", variant="primary", id="prove-go")
                yield Button("Cancel (esc)", id="prove-cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "prove-go":
            self.submit()
        else:
            self.dismiss(None)

    def submit(self) -> None:
        scorer = self.kind == "scorer"
        third = "buckets" if scorer else "modules"
        values = {key: self.query_one(wid, Input).value.strip()
                  for key, wid in zip(("acorn", "acornlib", third), self.FIELDS)}
        whats = ("the acorn binary", "the acornlib folder", "the goal buckets" if scorer else "at least one module")
        for key, wid, what in zip(("acorn", "acornlib", third), self.FIELDS, whats):
            if not values[key]:
                self.query_one("#prove-error", Static).update(f"Type {what}.")
                self.query_one(wid, Input).focus()
                return
        baseline = self.query_one("#prove-baseline", Checkbox).value
        if scorer:
            try:
                acorn_eval.parse_buckets(values["buckets"])
            except TacticsError as exc:
                self.query_one("#prove-error", Static).update(str(exc))
                self.query_one("#prove-modules", Input).focus()
                return
            self.dismiss({"acorn": values["acorn"], "acornlib": values["acornlib"], "buckets": values["buckets"],
                          "baseline": baseline})
            return
        self.dismiss(
            {
                "acorn": values["acorn"],
                "acornlib": values["acornlib"],
                "modules": split_globs(values["modules"]),
                "baseline": baseline,
                "remember": self.query_one("#prove-remember", Checkbox).value,
            }
        )

    def action_close(self) -> None:
        self.dismiss(None)


class TextDialog(ModalScreen[None]):
    """A long result as plain text (the "prove in Acorn" table), closed with enter or escape."""

    BINDINGS = [Binding("escape,enter", "close", "Close")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide", id="text-dialog"):
            yield Static(self.text, markup=False, id="text-dialog-body")
            yield Label("enter / esc: close", classes="dialog-question")

    def action_close(self) -> None:
        self.dismiss(None)
