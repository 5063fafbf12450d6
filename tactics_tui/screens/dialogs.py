"""Small modal dialogs: a yes/no confirmation, a pick-one list, the demo offer, the acornlib import, "prove in Acorn",
a sweep to start or resume,
and results as tables that open their rows (the real prover's modules -> goals, acorn eval's policies -> buckets)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, DataTable, Input, Label, OptionList, Static
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


class SweepDialog(ModalScreen[dict | None]):
    """Ask for a sweep to start (`tactics sweep SPACE.toml --name N --budget-minutes M --trials T`)
    or, with `resume`, the sweep NAME to continue (its space and budget are its own; the trials
    field is its target). Dismisses with {"space", "name", "budget", "trials", "resume"} (budget
    None for a resume) or None. The focus starts in the first empty field."""

    BINDINGS = [Binding("escape", "close", "Cancel")]
    FIELDS = ("#sweep-space", "#sweep-name", "#sweep-budget", "#sweep-trials")

    def __init__(self, space: str = "", name: str = "", budget: str = "10", trials: str = "10", resume: bool = False) -> None:
        super().__init__()
        self.values = {"space": space, "name": name, "budget": budget, "trials": trials}
        self.resume = resume
        shown = self.FIELDS[1::2] if resume else self.FIELDS  # a resume asks for the name and the trials only
        by_id = dict(zip(self.FIELDS, (space, name, budget, trials)))
        self.AUTO_FOCUS = next((w for w in shown if not by_id[w].strip()), shown[0])

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide", id="sweep-dialog"):
            if self.resume:
                intro = ("Resume a sweep: trials left running are tried again, and trials run until the target "
                         "is complete or pruned; its space and budget stay its own.")
            else:
                intro = ("Start a sweep (tactics sweep): each trial a run trained for the same minutes, "
                         "in its own process; quitting the app leaves it running.")
            yield Label(intro, markup=False, classes="dialog-question")
            if not self.resume:
                with Horizontal(classes="form-row"):
                    yield Label("space file ", classes="form-key")
                    yield Input(self.values["space"], placeholder="a .toml file, or a built-in: scorer-sizes",
                                id="sweep-space", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("sweep name ", classes="form-key")
                yield Input(self.values["name"], placeholder="letters, digits, - _ .", id="sweep-name", compact=True)
            if not self.resume:
                with Horizontal(classes="form-row"):
                    yield Label("minutes per trial ", classes="form-key")
                    yield Input(self.values["budget"], placeholder="e.g. 10 or 0.5", id="sweep-budget", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("trials " if not self.resume else "trials target ", classes="form-key")
                yield Input(self.values["trials"], placeholder="complete or pruned trials to reach", id="sweep-trials",
                            type="integer", compact=True)
            yield Static("", markup=False, id="sweep-error", classes="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Resume (enter)" if self.resume else "Start (enter)", variant="primary", id="sweep-go")
                yield Button("Cancel (esc)", id="sweep-cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "sweep-go":
            self.submit()
        else:
            self.dismiss(None)

    def _refuse(self, field: str, message: str) -> None:
        self.query_one("#sweep-error", Static).update(message)
        self.query_one(field, Input).focus()

    def submit(self) -> None:
        get = {w: self.query_one(w, Input).value.strip() for w in self.FIELDS if self.query(w)}
        space, name = get.get("#sweep-space", ""), get["#sweep-name"]
        if not self.resume and not space:
            return self._refuse("#sweep-space", "Type a space file (or a built-in space's name).")
        if not name:
            return self._refuse("#sweep-name", "Type the sweep's name.")
        budget = None
        if not self.resume:
            try:
                budget = float(get["#sweep-budget"])
            except ValueError:
                budget = -1.0
            if not budget > 0 or budget == float("inf"):
                return self._refuse("#sweep-budget", "Type the minutes per trial, a number > 0 (fractions allowed).")
        try:
            trials = int(get["#sweep-trials"])
        except ValueError:
            trials = 0
        if trials < 1:
            return self._refuse("#sweep-trials", "Type how many trials to reach, 1 or more.")
        self.dismiss({"space": space or None, "name": name, "budget": budget, "trials": trials, "resume": self.resume})

    def action_close(self) -> None:
        self.dismiss(None)


class TextDialog(ModalScreen[None]):
    """A long text (one goal's results in full), scrolled with the arrow keys, closed with enter or escape."""

    BINDINGS = [Binding("escape,enter", "close", "Close")]
    AUTO_FOCUS = "#text-dialog-scroll"

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide", id="text-dialog"):
            with VerticalScroll(id="text-dialog-scroll"):
                yield Static(self.text, markup=False, id="text-dialog-body")
            yield Label("↑↓: scroll · enter / esc: close", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)


# ------------------------------------------------------------------ results as tables


class ResultDialog(ModalScreen[None]):
    """A result as a table: `rows` are (key, cells); the highlighted row's `details[key]` shows
    under it; enter on a row pushes what `open_row(key)` returns (another ResultDialog: the
    goals of a module, the buckets of a policy), escape closes. Text is shown as it is (no markup)."""

    BINDINGS = [Binding("escape", "close", "Close")]
    AUTO_FOCUS = "#result-table"

    def __init__(
        self,
        head: str,
        columns: Sequence[str],
        rows: Sequence[tuple[str, Sequence[str]]],
        foot: str = "",
        details: dict[str, str] | None = None,
        open_row: Callable[[str], "ModalScreen | None"] | None = None,
        hint: str = "esc: close",
    ) -> None:
        super().__init__()
        self.head = head
        self.columns = tuple(columns)
        self.rows = list(rows)
        self.foot = foot
        self.details = details or {}
        self.open_row = open_row
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide result-dialog"):
            yield Static(self.head, markup=False, id="result-head")
            yield DataTable(id="result-table", cursor_type="row", zebra_stripes=True)
            yield Static("", markup=False, id="result-details")
            if self.foot:
                yield Static(self.foot, markup=False, id="result-foot")
            yield Label(self.hint, markup=False, classes="dialog-hint")

    def on_mount(self) -> None:
        table = self.query_one("#result-table", DataTable)
        table.add_columns(*self.columns)
        for key, cells in self.rows:
            table.add_row(*(Text(str(c)) for c in cells), key=key)
        self._show_details()

    def selected_key(self) -> str | None:
        table = self.query_one("#result-table", DataTable)
        if not self.rows or table.cursor_row is None or not 0 <= table.cursor_row < len(self.rows):
            return None
        return self.rows[table.cursor_row][0]

    def _show_details(self) -> None:
        key = self.selected_key()
        self.query_one("#result-details", Static).update(self.details.get(key, "") if key is not None else "")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_details()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value
        if self.open_row is not None and key is not None:
            screen = self.open_row(key)
            if screen is not None:
                self.app.push_screen(screen)

    def action_close(self) -> None:
        self.dismiss(None)


def _secs(value: Any, spec: str = ".2f") -> str:
    return "-" if not isinstance(value, (int, float)) or isinstance(value, bool) else format(value, spec)


def _rate(value: Any) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{100 * value:.1f}%"


def prove_result_dialog(text: str, report: dict) -> ResultDialog:
    """The real prover's result (`generative_judge.report_text` and `ProveReport.to_dict()`) as a
    table of modules; enter on a module opens its goals (`module_goals_dialog`)."""
    provers = list((report.get("provers") or {}).items())
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if line and set(line) == {"-"}]
    head = lines[0] if lines else ""
    foot = "\n".join(lines[rules[1] + 1:]) if len(rules) >= 2 else ""
    modules = [m.get("module", "?") for m in (provers[0][1].get("modules") or [])] if provers else []
    rows, details = [], {}
    for i, module in enumerate(modules):
        cells, attempted, median = [], 0, None
        words = []
        for name, result in provers:
            m = (result.get("modules") or [])[i]
            attempted = m.get("attempted", 0)
            crash = f" ({m.get('crashed')}c)" if m.get("crashed") else ""
            cells.append(f"{m.get('proved', 0)}{crash}")
            if name == "model":
                median = m.get("median_proof_seconds")
            outcomes: dict[str, int] = {}
            for g in m.get("goals") or []:
                outcomes[g.get("outcome", "?")] = outcomes.get(g.get("outcome", "?"), 0) + 1
            words.append(f"{name}: " + ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items(), key=lambda x: -x[1])))
        rows.append((module, [module, str(attempted), *cells, _secs(median)]))
        details[module] = "\n".join(words) + f"\nenter: the {attempted} goals of {module}"
    columns = ("module", "goals", *(name for name, _ in provers), "median s")

    def open_row(module: str) -> ResultDialog | None:
        return module_goals_dialog(report, module) if module in modules else None

    return ResultDialog(head, columns, rows, foot, details, open_row, hint="enter: the module's goals · esc: close")


def _goal_detail(prover: str, goal: dict) -> str:
    outcome = goal.get("outcome", "?")
    secs = goal.get("seconds")
    line = f"{prover}: {outcome}" + (f" in {secs:.2f} s" if isinstance(secs, (int, float)) else "")
    proof = goal.get("proof")
    if outcome == "proved":
        if proof:
            line += f", {len(proof)} accepted line{'s' if len(proof) != 1 else ''}:\n" + "\n".join(f"    {p}" for p in proof)
        else:
            line += " with no line (acorn's checker alone)"
    if goal.get("message"):
        line += f"\n    {goal['message']}"
    return line


def module_goals_dialog(report: dict, module: str) -> ResultDialog:
    """One module's goals: line, name, each prover's outcome and seconds, the model's accepted
    lines (how many in the table; the lines themselves, and acorn's message, under it)."""
    provers = list((report.get("provers") or {}).items())
    per_prover: list[tuple[str, dict[tuple[int, str], dict]]] = []
    order: list[tuple[int, str]] = []
    for name, result in provers:
        m = next((m for m in result.get("modules") or [] if m.get("module") == module), {})
        goals = {(int(g.get("line", 0)), str(g.get("name", ""))): g for g in m.get("goals") or []}
        per_prover.append((name, goals))
        order += [k for k in goals if k not in order]
    columns = ["line", "goal"]
    for name, _ in per_prover:
        columns += [name, "s"]
    columns.append("lines")
    rows, details = [], {}
    for line, goal_name in order:
        key = f"{line}:{goal_name}"
        cells = [str(line), goal_name]
        parts = [f"{module}:{line} {goal_name}"]
        accepted = "-"
        for name, goals in per_prover:
            g = goals.get((line, goal_name))
            if g is None:
                cells += ["-", "-"]
                continue
            cells += [g.get("outcome", "?"), _secs(g.get("seconds"))]
            parts.append(_goal_detail(name, g))
            if name == "model" and g.get("proof") is not None:
                accepted = str(len(g["proof"]))
        cells.append(accepted)
        rows.append((key, cells))
        details[key] = "\n".join(parts)
    tallies = "  ·  ".join(
        f"{name} proved {sum(g.get('outcome') == 'proved' for g in goals.values())}/{len(goals)}" for name, goals in per_prover
    )
    head = f"{module}: {len(order)} goals  ·  {tallies}"

    def open_row(key: str) -> TextDialog | None:
        return TextDialog(details[key]) if key in details else None

    return ResultDialog(head, columns, rows, "", details, open_row, hint="enter: the goal in full · esc: back")


def judge_result_dialog(text: str, report: dict) -> ResultDialog:
    """A scorer's acorn eval (`eval_judge.report_text` and `JudgeReport.to_dict()`) as a table of
    policies; enter on a policy opens its buckets (`policy_buckets_dialog`)."""
    lines = text.splitlines()
    head = lines[0] if lines else ""
    baseline = report.get("baseline")
    policies = report.get("policies") or []
    columns = ["policy", "searches", "proved", "rate", "avg ms", "per bucket"]
    if baseline:
        columns.append(f"vs {baseline}")
    rows, details = [], {}
    for p in policies:
        label = str(p.get("label", "?"))
        lo, hi = p.get("bucket_rate_min"), p.get("bucket_rate_max")
        spread = f"{100 * lo:.0f}-{100 * hi:.0f}%" if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) else "-"
        cells = [label, str(p.get("searches", 0)), str(p.get("succeeded", 0)), _rate(p.get("success_rate")),
                 _secs(p.get("avg_search_ms"), ".1f"), spread]
        if baseline:
            mean = p.get("diff_mean")
            cells.append("-" if not isinstance(mean, (int, float)) else f"{100 * mean:+.1f}")
        rows.append((label, cells))
        failures = p.get("failures") or {}
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(failures.items())) or "none"
        where = f"model {p['model']}" if p.get("model") else f"acorn's policy {p.get('policy')}"
        n_buckets = len(p.get("buckets") or {}) or 1
        details[label] = f"{where}\nfailures: {kinds}\nenter: its {n_buckets} bucket{'s' if n_buckets != 1 else ''}"
    foot = next((line for line in reversed(lines) if line.startswith("time ")), "")

    def open_row(label: str) -> ResultDialog | None:
        p = next((p for p in policies if str(p.get("label")) == label), None)
        return policy_buckets_dialog(report, p) if p is not None else None

    return ResultDialog(head, columns, rows, foot, details, open_row, hint="enter: the policy's buckets · esc: close")


def policy_buckets_dialog(report: dict, policy: dict) -> ResultDialog:
    """One policy's figures per goal bucket (or over all buckets at once), and under the table the
    highlighted bucket's failures by kind, the searches acorn named as failed and its summary lines."""
    baseline = report.get("baseline")
    entries = [(str(b), f) for b, f in (policy.get("buckets") or {}).items()]
    if not entries and policy.get("total"):
        entries = [("all", policy["total"])]
    diffs = policy.get("diff_to_baseline") or {}
    columns = ["bucket", "searches", "proved", "rate", "avg ms", "seconds"]
    if diffs:
        columns.append(f"vs {baseline}")
    rows, details = [], {}
    for bucket, f in entries:
        cells = [bucket, str(f.get("searches", 0)), str(f.get("succeeded", 0)), _rate(f.get("success_rate")),
                 _secs(f.get("avg_search_ms"), ".1f"), _secs(f.get("seconds"), ".1f")]
        if diffs:
            d = diffs.get(bucket)
            cells.append("-" if not isinstance(d, (int, float)) else f"{100 * d:+.1f}")
        rows.append((bucket, cells))
        failures = f.get("failures") or {}
        parts = ["failures: " + (", ".join(f"{n} {k}" for k, n in sorted(failures.items())) or "none")]
        for s in (f.get("failed") or [])[:8]:
            secs = s.get("seconds")
            parts.append(f"    {s.get('file')}:{s.get('line')} {s.get('goal')} ({s.get('reason')}"
                         + (f" after {secs:g} s)" if isinstance(secs, (int, float)) else ")"))
        if len(f.get("failed") or []) > 8:
            parts.append(f"    and {len(f['failed']) - 8} more")
        parts += [f"acorn: {line}" for line in f.get("summary") or []]
        details[bucket] = "\n".join(parts)
    head = (f"{policy.get('label')}: {policy.get('succeeded', 0)}/{policy.get('searches', 0)} searches proved "
            f"({_rate(policy.get('success_rate'))}) on buckets {report.get('buckets', '?')}")

    def open_row(key: str) -> TextDialog | None:
        return TextDialog(f"{policy.get('label')}, bucket {key}\n" + details[key]) if key in details else None

    return ResultDialog(head, columns, rows, "", details, open_row, hint="enter: the bucket in full · esc: back")
