"""`tactics-tui`: the training console.

One App with eight modes (one screen each): Corpus, Tokenizer, Training,
Checkpoints, Playground, Presets, Runs, Sweeps, switched with the keys 1-8. The app only
reads files and calls `tactics_core`; training runs (and sweeps) in its own detached
process, so quitting the app (or losing SSH) leaves it running and the next
start attaches to it. Errors appear as notifications with the core's
one-line message; details go to `tactics-tui.log` in the workspace.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from tactics_core.common.workspace import Workspace, current_run_dir
from tactics_core.runs import run_folder
from tactics_core.runs.checkpoints import checkpoint_kind, latest_checkpoint
from tactics_core.training import kinds

from .jobs import LOG_FILE, error_line, log, one_line
from .messages import ReportDone
from .registry import SCREENS
from .screens.base import WorkScreen
from .screens.corpus import CorpusScreen, make_demo_job
from .screens.dialogs import DemoOfferDialog

SCREEN_KEYS = Binding.Group("Screens ", compact=True)


class TacticsApp(App):
    """The training console for one workspace folder."""

    CSS_PATH = "app.tcss"
    TITLE = "tactics"
    ENABLE_COMMAND_PALETTE = True
    MODES = {entry.mode: entry.screen for entry in SCREENS}
    screen_entries = SCREENS  # for the top line of every screen
    BINDINGS = [
        *(Binding(entry.key, f"go('{entry.mode}')", entry.title, group=SCREEN_KEYS) for entry in SCREENS),
        Binding("e", "export_best", "Export"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, workspace: str | os.PathLike = ".", offer_demo: bool = True) -> None:
        super().__init__()
        self.ws = Workspace.at(Path(workspace))
        self.data_dir: Path = self.ws.data_dir
        self.preset_name: str | None = None  # chosen on the Presets screen for the next run
        self.last_export: dict[str, Any] | None = None
        self.offer_demo = offer_demo
        self.acornlib_folder = ""  # the last folder imported from (the import dialog starts there)
        # The run the Training, Checkpoints and Playground screens show: one opened on the Runs
        # screen, else (None) the workspace's current run (checkpoints/current).
        self.selected_run: Path | None = None
        self.sub_title = str(self.ws.root)
        self._log_handler = _file_logging(self.ws.root / LOG_FILE)

    # -- start -----------------------------------------------------------
    def on_mount(self) -> None:
        start = "corpus"
        state = self._live_run_state()
        if state is not None:
            start = "training"  # a run is going: show it (attach) right away
        self.switch_mode(start)
        if self.offer_demo and not _has_proofs(self.data_dir) and not _has_traces(self.ws.traces_dir):
            self.push_screen(
                DemoOfferDialog(
                    f"No proof files in {self.data_dir}.\n\n"
                    "Generate the built-in demo corpus there (a few thousand small, "
                    "deterministic Acorn-style proofs) to try the whole loop, or import "
                    "the real proofs of an acornlib checkout?",
                    yes="Generate demo",
                    no="Not now",
                ),
                self._demo_answer,
            )

    def _live_run_state(self):
        try:
            state = run_folder.read_run_state(self.ws.checkpoint_dir)
        except Exception:  # no run folder yet, or a damaged one: the Training screen says so
            return None
        return state if state is not None and state.alive else None

    def _demo_answer(self, answer: bool | str | None) -> None:
        if answer == "import":
            self.action_import_acornlib()
        elif answer:
            self.action_make_demo()

    def on_unmount(self) -> None:
        if self._log_handler is not None:
            logging.getLogger("tactics_tui").removeHandler(self._log_handler)
            self._log_handler.close()

    # -- runs ----------------------------------------------------------------
    def run_folder(self) -> Path:
        """The folder of the run being looked at (safe from worker threads: files only)."""
        chosen = self.selected_run
        if chosen is not None and chosen.is_dir():
            return chosen
        return current_run_dir(self.ws.checkpoint_dir)

    async def open_run(self, folder: str | Path, mode: str = "training") -> None:
        """Show run `folder` on the Training, Checkpoints or Playground screen."""
        self.selected_run = Path(folder)
        await self.switch_mode(mode)
        if isinstance(self.screen, WorkScreen):  # not a dialog left open there
            self.screen.reread()

    # -- navigation --------------------------------------------------------
    def action_go(self, mode: str) -> None:
        if self.current_mode != mode:
            self.switch_mode(mode)

    async def open_in_playground(self, model_path: str | Path) -> None:
        """Switch to the Playground with `model_path` (a .pt or an export folder) chosen."""
        await self.switch_mode("playground")
        self.screen.choose_model(str(model_path))

    async def resume_run(self, checkpoint: str | Path) -> None:
        """Switch to Training and resume the run from `checkpoint`."""
        await self.switch_mode("training")
        self.screen.start_run(resume=True, checkpoint=str(checkpoint))

    def choose_preset(self, name: str) -> None:
        """Remember `name` as the preset for the next training run."""
        self.preset_name = name
        self.notify(f"preset {name} chosen for the next training run")

    # -- actions every screen shares ----------------------------------------
    def action_make_demo(self) -> None:
        self.action_go("corpus")
        self.screen.start_job("demo", make_demo_job(self.data_dir), "Generating the demo corpus")

    def action_import_acornlib(self) -> None:
        """Go to the Corpus screen and ask for an acornlib checkout to import."""
        self.action_go("corpus")
        self.call_after_refresh(self._ask_acornlib)

    def _ask_acornlib(self) -> None:
        if isinstance(self.screen, CorpusScreen):  # not a dialog left open there
            self.screen.action_import_acornlib()

    def action_export_best(self) -> None:
        """Export the run's best_model.pt; before the first evaluation, its latest checkpoint."""
        folder = self.run_folder()
        best = folder / self.ws.best_model_path.name
        if not best.exists():
            latest = self.guard(lambda: latest_checkpoint(folder))
            if latest is not None:
                self.notify(f"no {best.name} yet (no evaluation so far): exporting {latest.name}")
                best = latest
        self.export_model(best)

    def export_model(self, checkpoint: str | Path) -> None:
        """Export `checkpoint` the way its kind is exported, to a new folder under export/
        (`tactics-DATE` for the GPT, `scorer-DATE` for a scorer), and verify it (in a worker)."""
        checkpoint = Path(checkpoint)
        if not checkpoint.exists():
            self.show_error(f"no model to export: {checkpoint} does not exist (train first, screen 3)")
            return
        export_dir = self.ws.export_dir

        def job(progress, cancel):
            output = kinds.default_output_dir(checkpoint_kind(checkpoint), export_dir)
            report = kinds.export_checkpoint(checkpoint, output_dir=output, progress=progress, cancel=cancel)
            return Exported(report.to_dict())

        self.screen.start_job("export", job, f"Exporting {checkpoint.name}")

    def on_exported(self, message: Exported) -> None:
        """An export finished on some screen (its outcome bubbles up here)."""
        result = self.last_export = message.report
        diff = result.get("max_abs_diff")
        self.notify(
            f"exported and verified: {result.get('path')}"
            + (f" (max abs diff {diff:.1e})" if isinstance(diff, (int, float)) else ""),
            title="Export",
            timeout=8,
        )
        for mode in ("playground", "checkpoints", "runs"):
            screen = self._find_mode_screen(mode)
            if isinstance(screen, WorkScreen):
                screen.reread()

    def _find_mode_screen(self, mode: str) -> Screen | None:
        stack = self._screen_stacks.get(mode)
        return stack[0] if stack else None

    # -- errors --------------------------------------------------------------
    def show_error(self, message: str) -> None:
        log.info("error shown: %s", message)
        self.notify(one_line(Exception(message)), title="Error", severity="error", timeout=8)

    def guard(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` (a quick core call on the UI thread); errors become one notice."""
        try:
            return fn()
        except Exception as exc:
            self.show_error(error_line(exc))
        return None

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None, markup: bool = False) -> None:
        """Notifications carry file names, core messages and model output: never markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def _handle_exception(self, error: Exception) -> None:
        """A failure in a UI handler: a notice and the log, not a crash with a traceback.

        Headless runs (tests) and TACTICS_TUI_DEBUG=1 keep Textual's behaviour
        (exit and show the traceback), so bugs stay loud where they are fixed.
        """
        if self.is_headless or os.environ.get("TACTICS_TUI_DEBUG") or not isinstance(error, Exception):
            super()._handle_exception(error)
            return
        self.show_error(error_line(error))

    # -- command palette ---------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for entry in SCREENS:
            yield SystemCommand(
                f"Go to {entry.title}", f"Show the {entry.title} screen (key {entry.key})", _bind(self.action_go, entry.mode)
            )
        yield SystemCommand("Export best model", "Export the run's best_model.pt to ONNX and verify it (key e)", self.action_export_best)
        yield SystemCommand("Generate demo corpus", f"Write the built-in demo corpus to {self.data_dir}", self.action_make_demo)
        yield SystemCommand("Import from acornlib", f"Make {self.data_dir} from an acornlib checkout", self.action_import_acornlib)
        # Every action of the current screen, under the name its footer key shows.
        for binding in screen.BINDINGS:
            if isinstance(binding, Binding) and binding.description and binding.action != "cancel_job":
                yield SystemCommand(binding.description, f"{screen.__class__.__name__.removesuffix('Screen')}: key {binding.key}", _bind(screen.run_action, binding.action))
        yield from super().get_system_commands(screen)


class Exported(ReportDone):
    """An export was written and verified: `ExportReport.to_dict()`."""


def _bind(fn: Callable, *args: Any) -> Callable[[], Any]:
    def call() -> Any:
        return fn(*args)

    return call


def _has_proofs(data_dir: Path) -> bool:
    try:
        return data_dir.is_dir() and any(p.is_file() for p in data_dir.glob("*.txt"))
    except OSError:
        return False


def _has_traces(traces_dir: Path) -> bool:
    """A scorer's workspace: acorn traces in traces/ (no corpus to offer then)."""
    try:
        return traces_dir.is_dir() and any(p.is_file() for p in traces_dir.rglob("*.jsonl.zst"))
    except OSError:
        return False


def _file_logging(path: Path) -> logging.Handler | None:
    """Send the app's log (tracebacks included) to `path`, opened only when written."""
    logger = logging.getLogger("tactics_tui")
    logger.setLevel(logging.INFO)
    try:
        handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    return handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tactics-tui",
        description="The training console: corpus, tokenizer, training, checkpoints, playground, presets, runs, sweeps.",
    )
    parser.add_argument("--workspace", default=".", help="workspace folder (default: the current directory)")
    parser.add_argument("--no-demo-offer", action="store_true", help="do not offer the demo corpus in an empty folder")
    args = parser.parse_args(argv)
    root = Path(args.workspace)
    if not root.is_dir():
        print(f"error: workspace {root} is not a folder; create it or pass --workspace DIR", file=sys.stderr)
        return 2
    TacticsApp(root, offer_demo=not args.no_demo_offer).run()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
