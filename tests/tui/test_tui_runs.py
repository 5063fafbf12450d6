"""The Runs screen and the system pane: overlaid curves of two runs, a baseline, the settings diff,
opening a run elsewhere; and the whole thing with real runs: run A, then run B from the app."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Select, Static

from tactics_tui.app import TacticsApp
from tactics_tui.widgets.charts import OverlayChart, run_colour

from tui_helpers import TINY_OVERRIDES, make_workspace, wait_for

SIZE = (80, 24)
T0 = 1_780_000_000.0  # fixed times: the snapshot shows them


def write_run(ck: Path, name: str, lr: float, scale: float, steps: int = 40, start: float = T0) -> Path:
    """A finished run's files as the trainer writes them (no tensors needed)."""
    folder = ck / "runs" / name
    folder.mkdir(parents=True)
    config = {"model": {"d_model": 32, "n_layers": 1}, "training": {"learning_rate": lr, "batch_size": 4}}
    events = [{"event": "start", "step": 0, "total_steps": steps, "resumed_from": None, "preset": "tiny",
               "config": config, "device": "cpu", "pid": 1, "time": start}]
    for step in range(1, steps + 1):
        events.append({"event": "step", "step": step, "loss": round(scale * 6.0 * 0.95**step + 1.0, 4), "lr": lr,
                       "tokens_per_s": 2000.0 * scale, "elapsed_s": step * 0.5, "total_steps": steps, "time": start + step})
        if step % 10 == 0:
            v = round(scale * 6.0 * 0.95**step + 1.2, 4)
            events.append({"event": "eval", "step": step, "val_loss": v, "val_bpb": v / 2, "proof_loss": v + 0.1,
                           "proof_bpb": (v + 0.1) / 2, "select_by": "proof_loss", "best_val_loss": v + 0.1,
                           "bad_evals": 0, "patience": 8, "improved": True, "time": start + step})
    events.append({"event": "end", "reason": "finished", "message": f"reached step {steps} of {steps}", "step": steps,
                   "total_steps": steps, "elapsed_s": steps * 0.5, "time": start + steps + 1})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    state = {"pid": 1, "state": "finished", "heartbeat": start + steps + 1, "step": steps, "total_steps": steps,
             "config": config, "message": "", "started": start, "host": "elsewhere"}
    (folder / "run.json").write_text(json.dumps(state))
    return folder


@pytest.fixture
def two_runs(tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    ck = ws / "checkpoints"
    from tactics_core.gpt import demo

    demo.write_demo_corpus(ws / "data" / "proofs", files=20)
    write_run(ck, "20260528-120000-tiny", 0.001, 1.0)
    write_run(ck, "20260528-130000-tiny", 0.003, 0.8, start=T0 + 3600)
    os.symlink("runs/20260528-130000-tiny", ck / "current")
    monkeypatch.chdir(ws)
    return ws


async def test_runs_screen_overlays_two_runs_with_a_baseline_and_diffs_them(two_runs):
    a, b = "20260528-120000-tiny", "20260528-130000-tiny"
    app = TacticsApp(".", offer_demo=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7")
        screen = app.screen
        await wait_for(pilot, lambda: len(screen.infos) == 2 and not screen.busy("list"), what="runs listed")
        table = screen.query_one("#runs-table", DataTable)
        assert [i.name for i in screen.infos] == [a, b] and [i.current for i in screen.infos] == [False, True]
        assert table.cursor_row == 1  # the current run is highlighted first
        # Select both: the chart draws two curves, each in the run's own colour.
        table.move_cursor(row=0)
        await pilot.press("space")
        table.move_cursor(row=1)
        await pilot.press("space")
        await wait_for(pilot, lambda: set(screen._curves) == {a, b} and not screen.busy("curves"), what="curves")
        assert screen.query_one(OverlayChart) is not None
        assert screen.selected_names == [a, b]
        assert [n for n, _, _ in _curves_shown(screen)] == [a, b]
        assert all(len(points) == 40 for _, points, _ in _curves_shown(screen))
        assert run_colour(a) == run_colour(a)  # stable: from the name alone
        marks = [str(table.get_cell_at((r, 0))) for r in range(2)]
        assert marks == ["● ", "●*"]
        # The diff of the two selected runs: exactly the one setting that differs.
        await pilot.press("d")
        side = str(screen.query_one("#runs-side", Static).render())
        settings = [line for line in side.splitlines() if "→" in line]
        assert settings == ["training.learning_rate: 0.001 → 0.003"]
        assert "proof_loss:" in side
        # Pin A as the baseline: drawn first (white), whatever else is selected.
        table.move_cursor(row=0)
        await pilot.press("b")
        assert screen.baseline == a and str(table.get_cell_at((0, 0))) == "B "
        await pilot.press("space")  # unselect A: the baseline stays in the chart
        await pilot.pause(0.1)
        assert [(n, base) for n, _, base in _curves_shown(screen)] == [(a, True), (b, False)]
        await pilot.press("v")  # validation curves
        assert [len(p) for _, p, _ in _curves_shown(screen)] == [4, 4]
        # Enter opens the highlighted run on the Training screen (its own history).
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "training", what="training screen")
        await wait_for(pilot, lambda: app.screen.view.end is not None, what="run A's history")
        assert app.run_folder().name == a and app.screen.view.step == 40
        assert f"run {a}" in str(app.screen.query_one("#train-status", Static).render())
        assert "no training process" in app.screen.query_one("#train-system").line or "is gone" in app.screen.query_one("#train-system").line
        # ... and c on the Runs screen opens it on Checkpoints.
        await pilot.press("7")
        await pilot.press("c")
        await wait_for(pilot, lambda: app.current_mode == "checkpoints" and not app.screen.busy("list"), what="checkpoints")
        assert a in str(app.screen.query_one("#ckpt-run", Static).render())


def _curves_shown(screen):
    out = []
    for info in screen._shown():
        cached = screen._curves.get(info.name)
        points = (cached[2] if screen.show_val else cached[1]) if cached else []
        out.append((info.name, points, info.name == screen.baseline))
    return out


def test_snapshot_runs_screen(two_runs, snap_compare):
    app = TacticsApp(".", offer_demo=False)

    async def run_before(pilot):
        await pilot.press("7")
        await wait_for(pilot, lambda: len(app.screen.infos) == 2 and not app.screen._tokens, what="runs")
        table = app.screen.query_one("#runs-table", DataTable)
        table.move_cursor(row=0)
        await pilot.press("b")
        table.move_cursor(row=1)
        await pilot.press("space")
        await wait_for(pilot, lambda: len(app.screen._curves) == 2 and not app.screen._tokens, what="curves")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


async def test_system_pane_reads_the_process_and_says_when_it_is_gone(tmp_path):
    import subprocess
    import sys

    from tactics_tui.widgets.system_pane import SystemPane

    ws = make_workspace(tmp_path, files=20, tokenizer=False)
    app = TacticsApp(ws, offer_demo=False)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("3")
            pane = app.screen.query_one(SystemPane)
            pane.watch_process(child.pid, True)
            await wait_for(pilot, lambda: "CPU" in pane.line and "RSS" in pane.line and "threads" in pane.line, what="stats")
            assert f"pid {child.pid}" in pane.line
            child.kill()
            child.wait()
            await wait_for(pilot, lambda: "is gone" in pane.line, what="gone")
    finally:
        if child.poll() is None:
            child.kill()


@pytest.mark.slow
async def test_run_b_from_the_app_leaves_run_a_alone(tmp_path, capsys):
    from tactics_core.cli import main
    from tactics_core.runs import run_folder

    ws = make_workspace(tmp_path)
    ck = ws / "checkpoints"
    app = TacticsApp(ws, offer_demo=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        screen = app.screen
        screen.query_one("#train-preset", Select).value = "tiny"
        screen.query_one("#train-steps", Input).value = "6"
        screen.query_one("#train-set", Input).value = " ".join(TINY_OVERRIDES)
        await pilot.press("s")
        await wait_for(pilot, lambda: screen.view.end is not None and not run_folder.read_run_state(ck).alive, timeout=90, what="run A")
        run_a = app.run_folder()
        best_a = hashlib.sha256((run_a / "best_model.pt").read_bytes()).hexdigest()
        await pilot.pause(1.1)  # a new second: a new name
        screen.query_one("#train-set", Input).value = " ".join([*TINY_OVERRIDES, "training.learning_rate=0.003"])
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_folder() != run_a, timeout=30, what="run B's folder")
        await wait_for(pilot, lambda: screen.view.end is not None and screen.view.step == 6 and not run_folder.read_run_state(ck).alive,
                       timeout=90, what="run B")
        run_b = app.run_folder()
        assert hashlib.sha256((run_a / "best_model.pt").read_bytes()).hexdigest() == best_a
        assert run_a.parent == run_b.parent == ck / "runs"
        # Both on the Runs screen, their curves overlaid.
        await pilot.press("7")
        rs = app.screen
        await wait_for(pilot, lambda: len(rs.infos) == 2 and not rs.busy("list"), what="two runs")
        table = rs.query_one("#runs-table", DataTable)
        for row in (0, 1):
            table.move_cursor(row=row)
            await pilot.press("space")
        await wait_for(pilot, lambda: len(rs._curves) == 2 and not rs.busy("curves"), what="curves")
        await pilot.press("d")
        assert "training.learning_rate: 0.001 → 0.003" in str(rs.query_one("#runs-side", Static).render())
    capsys.readouterr()
    assert main(["runs", "--json", "--checkpoint-dir", str(ck)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == [run_a.name, run_b.name]
    assert all(r["status"] == "finished" and r["steps"] == 6 and r["best_val_loss"] for r in rows)
