"""Presets screen: built-in and workspace presets; view, copy, edit, choose.

Editing is a form of one input per key; every change re-validates the whole
preset through the core (`edit_preset`), whose `PresetError` names the key:
its reason appears next to that field (and on top, always in view). Saving
writes TOML with tomli-w through `save_preset` (atomically); a built-in is
saved as a workspace copy of the same name, which then shadows it.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tactics_core.common.errors import TacticsError
from tactics_core.training import presets
from tactics_core.training.presets import PresetError

from .base import WorkScreen


class PresetsScreen(WorkScreen):
    BINDINGS = [
        Binding("c", "copy", "Copy", tooltip="Copy the built-in preset to the workspace"),
        Binding("m", "edit", "Edit"),
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("u", "use", "Use", tooltip="Use this preset for the next training run"),
    ]

    AUTO_FOCUS = "#presets-list"

    def __init__(self) -> None:
        super().__init__()
        self.infos: list[Any] = []
        self.preset: Any = None  # the loaded preset being viewed / edited
        self.editing = False
        self.form_error: str | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="presets-main"):
            yield OptionList(markup=False, id="presets-list")
            with VerticalScroll(id="presets-right"):
                yield Static("", markup=False, id="presets-view")
                yield Static("", markup=False, id="presets-form-error")
                yield Vertical(id="presets-form")

    def on_mount(self) -> None:
        self.reload()
        self.query_one("#presets-list", OptionList).focus()

    def reload(self, select: str | None = None) -> None:
        infos = self.guard(lambda: presets.list_presets(self.ws.presets_dir))
        if infos is None:
            return
        self.infos = list(infos)
        options = self.query_one("#presets-list", OptionList)
        options.clear_options()
        for info in self.infos:
            where = "built-in" if info.builtin else "workspace"
            mark = " (shadowed)" if not info.active else ""
            bad = " !" if info.error else ""
            chosen = "▶ " if info.name == self.app.preset_name and info.active else "  "
            options.add_option(Option(f"{chosen}{info.name}  {where}{mark}{bad}", id=str(len(options.options))))
        names = [i.name for i in self.infos]
        target = select or (self.preset.name if self.preset is not None else None)
        index = next((i for i, info in enumerate(self.infos) if info.name == target and info.active), 0)
        if names:
            options.highlighted = index
            self.view(index)

    def selected_info(self) -> Any | None:
        index = self.query_one("#presets-list", OptionList).highlighted
        return self.infos[index] if index is not None and index < len(self.infos) else None

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id == "presets-list" and event.option.id is not None:
            self.view(int(event.option.id))

    def view(self, index: int) -> None:
        info = self.infos[index]
        self._leave_form()
        view = self.query_one("#presets-view", Static)
        if info.error:
            self.preset = None
            view.update(f"{info.path}\n\n{info.error}")
            return
        try:
            self.preset = presets.load_preset(info.path, self.ws.presets_dir)
        except TacticsError as exc:
            self.preset = None
            view.update(str(exc))
            return
        origin = "built-in (c copies it to the workspace)" if info.builtin else f"workspace: {info.path}"
        view.update(
            Group(
                Text(f"{info.name} · {origin}\n", no_wrap=True, overflow="ellipsis"),
                Syntax(presets.dumps_preset(self.preset), "toml", word_wrap=False, theme="ansi_dark", background_color="default"),
            )
        )

    # -- actions ------------------------------------------------------------------
    def action_copy(self) -> None:
        info = self.selected_info()
        if info is None:
            return
        if not info.builtin:
            self.notify(f"{info.name} is already a workspace preset: edit it with m", severity="warning")
            return
        ws = self.ws
        path = self.guard(lambda: presets.copy_builtin(info.name, ws.presets_dir))
        if path is not None:
            self.notify(f"copied to {path}; edit it with m")
            self.reload(select=info.name)

    def action_use(self) -> None:
        info = self.selected_info()
        if info is not None and not info.error:
            self.app.choose_preset(info.name)
            self.reload(select=info.name)

    def action_edit(self) -> None:
        if self.preset is None:
            self.notify("this preset does not load; fix its file first", severity="warning")
            return
        self.editing = True
        self.query_one("#presets-view", Static).update(
            f"Editing {self.preset.name}: ctrl+s saves"
            + (" a workspace copy" if self.preset.builtin else f" to {self.preset.source}")
            + ", escape leaves"
        )
        form = self.query_one("#presets-form", Vertical)
        form.remove_children()
        rows = []
        for section, values in self.sections().items():
            rows.append(Label(f"[{section}]", markup=False, classes="section-title"))
            for key, value in values.items():
                rows.append(
                    Horizontal(
                        Label(f"{key:<17}", classes="form-key"),
                        Input(_show(value), id=f"f-{section}-{key}", compact=True, classes="form-input"),
                        Label("", markup=False, id=f"e-{section}-{key}", classes="form-error"),
                        classes="form-row",
                    )
                )
        form.mount_all(rows)
        self.call_after_refresh(lambda: self.query(".form-input").first().focus())

    def _leave_form(self) -> None:
        self.editing = False
        self.form_error = None
        self.query_one("#presets-form", Vertical).remove_children()
        self.query_one("#presets-form-error", Static).update("")

    def action_cancel_job(self) -> None:
        if self.editing:
            self._leave_form()
            info = self.selected_info()
            if info is not None:
                self.view(self.infos.index(info))
            self.query_one("#presets-list", OptionList).focus()
        else:
            super().action_cancel_job()

    def sections(self) -> dict[str, dict[str, Any]]:
        """The preset's sections and keys as its kind has them (a scorer: [model] [data] [training])."""
        data = presets.preset_to_dict(self.preset)
        return {section: data[section] for section in presets.kind_sections(self.preset.kind)}

    def values(self) -> dict[str, dict[str, str]]:
        """The form's text per key, as `edit_preset` takes it."""
        texts: dict[str, dict[str, str]] = {}
        for section, values in self.sections().items():
            for key in values:
                texts.setdefault(section, {})[key] = self.query_one(f"#f-{section}-{key}", Input).value.strip()
        return texts

    def check_form(self) -> Any | None:
        """Validate the form through the core; show the reason next to the key it names."""
        for label in self.query(".form-error").results(Label):
            label.update("")
        try:
            edited = presets.edit_preset(self.preset, self.values())
        except PresetError as exc:
            self.form_error = exc.reason
            # The reason on top (always in view), and a marker at the field of its key.
            self.query_one("#presets-form-error", Static).update(exc.reason)
            marks = self.query(f"#e-{exc.key.replace('.', '-')}") if exc.key else None
            if marks:
                marks.first(Label).update(f"✗ {exc.reason}")
            return None
        self.form_error = None
        self.query_one("#presets-form-error", Static).update("")
        return edited

    def on_input_changed(self, event: Input.Changed) -> None:
        if self.editing and event.input.has_class("form-input"):
            self.check_form()

    def action_save(self) -> None:
        if not self.editing:
            self.notify("press m to edit a preset first", severity="warning")
            return
        edited = self.check_form()
        if edited is None:
            self.app.show_error(f"not saved: {self.form_error}")
            return
        target = self.ws.presets_dir / f"{self.preset.name}.toml" if self.preset.builtin else self.preset.source
        ws = self.ws
        ws.presets_dir.mkdir(parents=True, exist_ok=True) if self.preset.builtin else None
        saved = self.guard(lambda: presets.save_preset(edited, target))
        if saved is not None:
            self.notify(f"saved {saved}")
            name = self.preset.name
            self.preset = None
            self.reload(select=name)


def _show(value: Any) -> str:
    """A value as the TOML text the form edits (`true`, not Python's `True`)."""
    if isinstance(value, (list, bool)):
        return json.dumps(value)
    return str(value)
