"""Pilot-driven tests of every screen on a small real workspace (80x24)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widgets import Checkbox, DataTable, Input, Label, OptionList, Select, Static

from tactics_tui.app import TacticsApp
from tactics_tui.screens.dialogs import ConfirmDialog

from tui_helpers import make_workspace, notices, wait_for

SIZE = (80, 24)


@pytest.fixture(scope="module")
def base_ws(tmp_path_factory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("ws"))


@pytest.fixture
def ws(tmp_path, base_ws) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(base_ws, root)
    return root


def static(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_empty_folder_offers_the_demo_corpus_and_shows_its_stats(tmp_path):
    app = TacticsApp(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="demo offer")
        await pilot.press("y")
        await wait_for(pilot, lambda: "3,000" in static(app, "#corpus-summary"), what="demo stats")
        assert len(list((tmp_path / "data" / "proofs").glob("*.txt"))) == 3000
        assert "@G 100%" in static(app, "#corpus-summary")
        assert any("demo corpus written" in n for n in notices(app))


async def test_declining_the_demo_leaves_the_folder_alone(tmp_path):
    app = TacticsApp(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")
        await pilot.pause(0.2)
        assert not (tmp_path / "data").exists()
        assert "does not exist" in static(app, "#corpus-summary")


async def test_corpus_lists_skipped_files_with_their_problem(ws):
    (ws / "data" / "proofs" / "proof_zz_empty.txt").write_text("   \n")
    (ws / "data" / "proofs" / "proof_zz_binary.txt").write_bytes(b"@G\n\x00\x01\x02 bad\n")
    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#corpus-skipped", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, what="skipped rows")
        files = {str(table.get_row_at(i)[0]) for i in range(2)}
        assert files == {"proof_zz_empty.txt", "proof_zz_binary.txt"}
        assert "200" in static(app, "#corpus-summary")


async def test_keys_switch_screens_and_the_palette_offers_every_screen(ws):
    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        for key, mode in zip("123456", ["corpus", "tokenizer", "training", "checkpoints", "playground", "presets"]):
            await pilot.press(key)
            await pilot.pause(0.05)
            assert app.current_mode == mode
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for name in ("Go to Corpus", "Go to Training", "Go to Playground", "Export best model", "Generate demo corpus"):
            assert name in titles
        # The current screen's own actions are there too (Presets: copy, edit, save, use).
        assert {"Copy", "Edit", "Save", "Use"} <= set(titles)


async def test_tokenizer_screen_trains_and_shows_token_boundaries(ws):
    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        vocab = app.screen.query_one("#tok-vocab", Input)
        vocab.value = "400"
        await pilot.press("t")
        await wait_for(pilot, lambda: "asked 400" in static(app, "#tok-report"), what="tokenizer report")
        report = static(app, "#tok-report")
        assert "chars/token" in report
        pieces = str(app.screen.query_one("#tok-sample", Static).render())
        first = sorted((ws / "data" / "proofs").glob("*.txt"))[0].read_text()
        # Every character of the sample proof is shown (newlines marked ⏎).
        assert pieces.replace("⏎", "") == first


async def test_a_core_error_is_one_notification_and_is_logged(ws):
    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        app.screen.query_one("#tok-vocab", Input).value = "12"
        await pilot.press("t")
        await wait_for(pilot, lambda: any("out of range" in n for n in notices(app)), what="error notice")
        message = next(n for n in notices(app) if "out of range" in n)
        assert "\n" not in message and "Traceback" not in message
        assert app.current_mode == "tokenizer"  # still working
    assert "out of range" in (ws / "tactics-tui.log").read_text()


async def test_presets_copy_edit_with_inline_validation_save_and_use(ws):
    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        screen = app.screen
        names = [i.name for i in screen.infos]
        screen.query_one("#presets-list", OptionList).highlighted = names.index("tiny")
        await pilot.press("c")
        await pilot.pause(0.1)
        copied = ws / "presets" / "tiny.toml"
        assert copied.exists()
        await pilot.press("m")
        await wait_for(pilot, lambda: bool(screen.query("#f-model-n_heads")), what="form")
        screen.query_one("#f-model-n_heads", Input).value = "5"
        await pilot.pause(0.1)
        error = str(screen.query_one("#e-model-d_model", Label).render())
        assert "divisible" in error and "n_heads" in error
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert any("not saved" in n for n in notices(app))
        screen.query_one("#f-model-n_heads", Input).value = "8"
        screen.query_one("#f-training-batch_size", Input).value = "7"
        switch = screen.query_one("#f-training-context_sampling", Input)
        assert switch.value == "false"  # TOML's spelling, which the form reads back
        switch.value = "true"
        await pilot.pause(0.1)
        assert str(screen.query_one("#e-model-d_model", Label).render()) == ""
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        from tactics_core.training.presets import load_preset

        saved = load_preset("tiny", ws / "presets")
        assert (saved.model.n_heads, saved.training.batch_size, saved.training.context_sampling) == (8, 7, True)
        await pilot.press("escape")
        await pilot.press("u")
        assert app.preset_name == "tiny"
        await pilot.press("3")
        await pilot.pause(0.1)
        assert app.screen.query_one("#train-preset", Select).value == "tiny"


async def test_training_screen_without_a_run_says_how_to_start(ws):
    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause(0.3)
        assert "No run in this workspace yet" in static(app, "#train-status")
        await pilot.press("x")
        await pilot.pause(0.1)
        assert any("no run is going" in n for n in notices(app))


async def test_training_screen_tells_of_a_run_ending_while_watched_not_of_old_endings(ws):
    """The end notice comes from typed events: a run ending after the screen opened is told (an
    error when it failed), an end read from the history is not."""
    import time

    from tactics_core.runs.run_events import EndEvent, StepEvent

    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause(0.3)
        screen = app.screen
        old = EndEvent(reason="finished", step=3, time=screen._opened_at - 60)
        screen._apply([StepEvent(step=1, loss=2.0, time=time.time()), old], None, None)
        await pilot.pause(0.1)
        assert not any(n.startswith("training ") for n in notices(app))
        screen._apply([EndEvent(reason="failed", message="boom", step=4, time=time.time() + 1)], None, None)
        await pilot.pause(0.1)
        assert any(n.startswith("training ") for n in notices(app))
        assert any(n.severity == "error" for n in app._notifications)


async def test_export_without_a_model_is_a_clear_error(ws):
    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        await pilot.pause(0.1)
        assert any("no model to export" in n for n in notices(app))


async def test_playground_without_a_model_and_with_a_validation_goal(ws):
    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await pilot.press("ctrl+g")
        await pilot.pause(0.1)
        assert any("no model to ask" in n for n in notices(app))
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, __import__("tactics_tui.screens.dialogs", fromlist=["x"]).PickDialog), what="goal list")
        await pilot.press("enter")
        await pilot.pause(0.2)
        text = app.screen.query_one("#play-text").text
        assert text.startswith(("@T\n", "@G\n")) and text.endswith("@P\n") and "@C\n" in text
        assert app.screen.reference  # the corpus proof is kept to compare with


def tiny_checkpoint(ws: Path, name: str, step: int, **extra) -> Path:
    """A checkpoint of an untrained 1-layer GPT (vocab 300) in the workspace's checkpoint folder."""
    import torch

    from tactics_core.gpt.model import GPT, GPTConfig
    from tactics_core.runs.checkpoints import save_checkpoint

    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=300, context_length=32, d_model=16, n_layers=1, n_heads=2, dropout=0.0)
    payload = {"model": GPT(cfg).state_dict(), "model_config": cfg.to_dict(), "global_step": step, **extra}
    return save_checkpoint(ws / "checkpoints" / name, payload)


async def test_checkpoints_screen_empty_and_delete_needs_confirmation(ws):
    path = tiny_checkpoint(ws, "checkpoint_step_5.pt", 5, val_loss=3.25)
    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        table = app.screen.query_one("#ckpt-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="checkpoint row")
        row = table.get_row_at(0)
        assert str(row[1]) == "checkpoint_step_5.pt" and row[2] == "5" and row[3] == "3.2500"
        await wait_for(pilot, lambda: "d_model=16" in static(app, "#ckpt-details"), what="details")
        await pilot.press("d")
        await pilot.pause(0.1)
        await pilot.press("n")
        await pilot.pause(0.1)
        assert path.exists()
        await pilot.press("d")
        await pilot.pause(0.1)
        await pilot.press("y")
        await wait_for(pilot, lambda: table.row_count == 0, what="row removed")
        assert not path.exists() and not path.with_name("checkpoint_step_5.meta.json").exists()


async def test_checkpoints_screen_proves_in_acorn_and_shows_the_table(ws, tmp_path, monkeypatch):
    """`a` on a checkpoint: the dialog (prefilled from the environment), the job, the per-module table."""
    import types

    from tactics_core.acorn import generative_judge as acorn_mod
    from tactics_core.gpt import export as export_mod
    from tactics_tui.screens.dialogs import ProveDialog, ResultDialog, TextDialog
    from helpers_acorn import PLAN, fake_export, make_fake, make_library

    tiny_checkpoint(ws, "checkpoint_step_5.pt", 5)
    monkeypatch.setenv(acorn_mod.ENV_BINARY, str(make_fake(tmp_path, PLAN)))
    monkeypatch.setenv(acorn_mod.ENV_ACORNLIB, str(make_library(tmp_path)))
    exported = fake_export(tmp_path)
    # The stand-in acorn reads no model: skip the (slow, real) ONNX export of the checkpoint.
    monkeypatch.setattr(export_mod, "export_model", lambda ckpt, out, **kw: types.SimpleNamespace(path=str(exported)))
    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        table = app.screen.query_one("#ckpt-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="checkpoint row")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ProveDialog), what="prove dialog")
        assert app.screen.query_one("#prove-acorn", Input).value.endswith("acorn")
        app.screen.query_one("#prove-modules", Input).value = "nat.*"
        app.screen.query_one("#prove-remember", Checkbox).value = True
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ResultDialog) and bool(app.screen.query("#result-table")), what="the prove table", timeout=60)
        result = app.screen
        modules = result.query_one("#result-table", DataTable)
        assert [str(c) for c in modules.get_row_at(0)][:3] == ["nat.lattice", "8", "1 (1c)"]
        assert "model      proved 1/8" in str(result.query_one("#result-foot", Static).render())
        assert "enter: the 8 goals of nat.lattice" in str(result.query_one("#result-details", Static).render())
        assert (ws / "tactics.toml").is_file() and "acornlib" in (ws / "tactics.toml").read_text()
        # Enter on the module: its goals, each with its outcome, seconds and accepted lines.
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is not result and isinstance(app.screen, ResultDialog), what="the goals")
        goals = app.screen.query_one("#result-table", DataTable)
        rows = [[str(c) for c in goals.get_row_at(i)] for i in range(goals.row_count)]
        assert len(rows) == 8 and [r[0] for r in rows][:2] == ["12", "16"]
        assert rows[0][2] == "proved" and rows[1][2] == "crashed" and {r[2] for r in rows[2:]} == {"timeout", "not run"}
        assert rows[0][3] != "-" and rows[0][4] == "13"  # seconds; the model's accepted lines
        details = str(app.screen.query_one("#result-details", Static).render())
        assert details.startswith("nat.lattice:12 ") and "model: proved" in details and "accepted lines:" in details
        assert "not is_upper_bound(tail, ub)" in details  # the lines acorn accepted, in full
        # Enter on a goal: all of it, scrolled (13 accepted lines do not fit under the table).
        goals_dialog = app.screen
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TextDialog), what="the goal in full")
        full = str(app.screen.query_one("#text-dialog-body", Static).render())
        assert "13 accepted lines:" in full and full.count("\n    ") == 13
        await pilot.press("escape")
        assert app.screen is goals_dialog
        await pilot.press("down")
        assert "model: crashed" in str(app.screen.query_one("#result-details", Static).render())
        await pilot.press("escape")
        assert app.screen is result
        await pilot.press("escape")
        await wait_for(pilot, lambda: "Acorn: model proved 1/8" in static(app, "#ckpt-details"), what="summary line")
        # o opens the table again.
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ResultDialog), what="the table again")
        await pilot.press("escape")


def test_cli_refuses_a_missing_workspace(tmp_path, capsys):
    from tactics_tui.app import main

    assert main(["--workspace", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a folder" in err


async def test_checkpoint_opens_in_playground_and_resume_goes_to_training(ws):
    path = tiny_checkpoint(ws, "best_model.pt", 3)
    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        table = app.screen.query_one("#ckpt-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="checkpoint row")
        await pilot.press("p")
        await pilot.pause(0.1)
        assert app.current_mode == "playground"
        assert app.screen.query_one("#play-model", Select).value == str(path)
        await pilot.press("4")
        await pilot.press("r")
        await wait_for(pilot, lambda: app.current_mode == "training" and not app.screen.busy("start"), what="resume attempt")
        # The resumed run (a detached process) shows up in the Training screen.
        try:
            await wait_for(pilot, lambda: app.screen.run_state is not None, what="resumed run state")
            # On a busy machine the child may still be reading the corpus: wait for it to say more.
            await wait_for(
                pilot,
                lambda: "resume" in app.screen.run_state.message or app.screen.run_state.state != "starting",
                what="the resumed run past its start",
            )
        finally:
            _kill_run(ws / "checkpoints")


def _kill_run(folder: Path) -> None:
    """Never leave a detached run behind a test."""
    import os
    import signal
    import time

    from tactics_core.runs import run_folder

    state = run_folder.read_run_state(folder)
    if state is not None and state.alive:
        os.kill(state.pid, signal.SIGKILL)
        time.sleep(0.2)


async def test_text_with_brackets_is_shown_literally_never_as_markup(ws):
    """Model output, goals and core messages contain `[`…`]` (Acorn: `[R: CommRing]`)."""
    from tactics_core.gpt.complete import Candidate, CompletionResult

    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        screen = app.screen
        assert screen.mode == "prover"  # no model yet: the default mode
        # The prover mode's prompt, cut text and attempt, all model or file text.
        from types import SimpleNamespace

        from tactics_core.gpt.prover_replica import Attempt, ProverPrompt
        from tactics_tui.screens.playground import CandidatesReady, ProverStep, Rollout

        prompt = ProverPrompt("@G\n[i]x\n", [1, 2, 3], 5, 2, "@T [b]cut[/b]")
        session = SimpleNamespace(prompt=prompt, room=40, context_length=64, accepted=[])
        rollout = Rollout(session, (None, "@G\n[i]x\n"), "@G\n[i]x [red]kept\n")
        attempt = Attempt("g[R: Ring] [bold]y", [4, 5], "line", cache=object(), length=6)
        screen.post_message(ProverStep(None, None, rollout, attempt))
        await pilot.pause(0.2)
        assert "[b]cut[/b]" in str(screen.query_one("#play-prompt-info", Static).render())
        cache = str(screen.query_one("#play-cache-text", Static).render())
        assert "[i]x [red]kept" in cache and "g[R: Ring] [bold]y" in cache
        assert "g[R: Ring] [bold]y" in str(screen.query_one("#play-attempt", Static).render())
        await pilot.press("ctrl+t")
        assert screen.mode == "free"
        result = CompletionResult([Candidate("f[R: CommRing](a) [/] [bold]x", -1.5)], 0.01, "torch", "@G\n")
        screen.post_message(CandidatesReady("m", None, result, 0))
        await pilot.pause(0.2)
        options = screen.query_one("#play-candidates", OptionList)
        assert options.option_count == 1
        assert "[/] [bold]x" in str(options.get_option_at_index(0).prompt)
        app.show_error("bad file data/proofs/[x].txt: unknown marker [/]")
        await pilot.pause(0.1)
        assert any("[x].txt" in n for n in notices(app))


def _small_acornlib(root: Path) -> Path:
    """A 2025-layout checkout with one good module and one broken certificate line."""
    import json

    (root / "src").mkdir(parents=True)
    (root / "build").mkdir()
    (root / "src" / "m.ac").write_text(
        "theorem t(a: Nat) {\n    a + 0 = a\n} by {\n    a + 0 = 0 + a\n}\n"
    )
    rows = [{"goal": "a + 0 = 0 + a", "proof": ["0 + a = a"]}, {"goal": "t", "proof": []}]
    (root / "build" / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"goal": [bad\n')
    (root / "build" / "[b]orphan.jsonl").write_text(json.dumps(rows[0]) + "\n")  # markup-like name
    return root


async def test_corpus_import_action_imports_an_acornlib_checkout(tmp_path):
    from tactics_tui.screens.dialogs import DemoOfferDialog, ImportDialog, ImportReportDialog

    lib = _small_acornlib(tmp_path / "acornlib")
    ws = tmp_path / "ws"
    ws.mkdir()
    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        # the empty-workspace offer has the import too
        await wait_for(pilot, lambda: isinstance(app.screen, DemoOfferDialog), what="demo offer")
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, ImportDialog), what="import dialog")
        await pilot.press(*str(lib))
        await pilot.press("tab", *"src/* build/*")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ImportReportDialog), what="import report")
        summary = str(app.screen.query_one("#import-summary", Static).render())
        assert "files 2" in summary and "modules 1" in summary
        problems = app.screen.query_one("#import-problems", OptionList)
        texts = [str(problems.get_option_at_index(i).prompt) for i in range(problems.option_count)]
        # grouped by kind: a heading per kind, then its examples
        assert "certificate lines that are not JSON: 1" in texts and "certificate files without their source: 1" in texts
        assert any(t.startswith("  build/m.jsonl:3: not JSON") for t in texts)
        assert any(t.startswith("  build/[b]orphan.jsonl: certificate file without") for t in texts)  # not markup
        await pilot.press("escape")
        await wait_for(pilot, lambda: "files" in static(app, "#corpus-summary") and " 2" in static(app, "#corpus-summary"), what="stats")
        assert len(list((ws / "data" / "proofs").glob("*.txt"))) == 2
        assert (ws / "data" / "manifest.jsonl").exists()
        # again from the Corpus screen's key, without replace: the core refuses and says why
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, ImportDialog), what="import dialog again")
        assert app.screen.query_one("#imp-path", Input).value == str(lib)
        assert app.screen.query_one("#imp-force").value is True  # a corpus is there: replace is ticked
        await pilot.press("escape")
        # once more, ticking acorn's style: the theorem's file keeps its `} by {` line
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, ImportDialog), what="import dialog, acorn style")
        app.screen.query_one("#imp-acorn-style").value = True
        app.screen.query_one("#imp-path", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ImportReportDialog), what="acorn-style report")
        await pilot.press("escape")
        texts = [p.read_text() for p in sorted((ws / "data" / "proofs").glob("*.txt"))]
        assert any(t.startswith("@G\ntheorem t(a: Nat) {\n    a + 0 = a\n} by {\n@C\n") for t in texts)
        assert "Import from acornlib" in [c.title for c in app.get_system_commands(app.screen)]
        assert "Import acornlib" in [c.title for c in app.get_system_commands(app.screen)]
