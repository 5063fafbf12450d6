"""The Sweeps screen with Pilot: the workspace's sweeps, a sweep's trials, its best so far and its
chart; a sweep started from the dialog (the request it makes), a real detached sweep started,
followed while its trial runs, stopped with x and resumed with u; a real sweep's trials; and its
snapshot at 80x24 on a sweep written here with fixed figures.

Nothing waits on time: every wait is for a condition (a row, a state, a process that ended)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from tactics_core.sweeps import launch
from tactics_tui.app import TacticsApp
from tactics_tui.screens.dialogs import SweepDialog
from tactics_tui.screens.sweeps import SweepsScreen
from tactics_tui.widgets.charts import SweepChart

from tui_helpers import notices, screen_text, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "sweeps"))
from sweep_helpers import PruneTrial, scorer_workspace  # noqa: E402

SIZE = (80, 24)


def fixed_sweep(root: Path, name: str = "sizes", rows=None) -> Path:
    """A sweep's folder as `tactics sweep` leaves it, its trials written with Optuna directly
    (fixed figures, no training): two complete trials and a pruned one."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import TrialState, create_trial

    from tactics_core.sweeps.record import storage_url

    folder = root / "sweeps" / name
    folder.mkdir(parents=True)
    info = {"name": name, "kind": "scorer", "base": "scorer", "objective": "used_rank", "direction": "minimize",
            "budget_minutes": 0.5, "trials": 6}
    (folder / "sweep.json").write_text(json.dumps(info))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(storage_url(folder))
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize")
    dists = {"model.hidden_size": CategoricalDistribution([64, 128, 256]),
             "training.learning_rate": FloatDistribution(1e-4, 1e-2, log=True)}
    rows = rows or [
        (TrialState.COMPLETE, 0.4102, 128, 0.001, 26.0, 246),
        (TrialState.COMPLETE, 0.3975, 256, 0.0031, 28.0, 120),
        (TrialState.PRUNED, None, 64, 0.0002, 8.0, 390),
    ]
    for number, (state, value, hidden, lr, seconds, steps) in enumerate(rows):
        study.add_trial(create_trial(
            state=state, value=value, params={"model.hidden_size": hidden, "training.learning_rate": lr},
            distributions=dists, intermediate_values={100: 0.45 if value is None else value + 0.02},
            user_attrs={"run": f"{name}-t{number:03d}", "seconds": seconds, "max_steps": steps},
        ))
    storage.engine.dispose()
    return folder


def table_rows(app, wid: str) -> list[list[str]]:
    table = app.screen.query_one(wid, DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


@pytest.fixture
def two_sweeps(tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    ws.mkdir()
    fixed_sweep(ws, "sizes")
    fixed_sweep(ws, "widths", rows=[(__import__("optuna").trial.TrialState.COMPLETE, 0.5, 64, 0.002, 10.0, 50)])
    monkeypatch.chdir(ws)
    return ws


async def test_the_sweeps_view_lists_sweeps_trials_best_and_chart(two_sweeps):
    (two_sweeps / "checkpoints" / "runs" / "widths-t000").mkdir(parents=True)
    app = TacticsApp(".", offer_demo=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("8")
        assert isinstance(app.screen, SweepsScreen)
        screen = app.screen
        await wait_for(pilot, lambda: len(screen.names) == 2 and screen.trials, what="the sweeps")
        assert [r[0] for r in table_rows(app, "#sweeps-table")] == ["sizes", "widths"]
        assert table_rows(app, "#sweeps-table")[0][1:] == ["scorer", "3/6", "not running", "used_rank 0.3975"]
        # the last sweep is shown first; move to the first: its trials, best marked
        assert screen.chosen == "widths"
        await pilot.press("up")
        await wait_for(pilot, lambda: screen.chosen == "sizes" and len(screen.trials) == 3, what="sizes' trials")
        trials = table_rows(app, "#sweeps-trials")
        assert [r[:5] for r in trials] == [
            [" 0", "complete", "0.4102", "26", "sizes-t000"],
            ["★1", "complete", "0.3975", "28", "sizes-t001"],
            [" 2", "pruned", "0.4500", "8", "sizes-t002"],
        ]
        assert trials[1][5] == "hidden_size=256 learning_rate=0.0031"
        text = screen_text(app)
        assert "best so far: trial 1" in text and "used_rank 0.3975" in text and "run sizes-t001" in text
        assert "sizes: not running · 2 complete, 1 pruned · 0.5 min/trial · min used_rank" in text
        chart = screen.query_one(SweepChart)
        assert chart.heading == "used_rank by trial"
        # back to widths, then enter on its trial opens the trial's run on the Training screen
        await pilot.press("down")
        await wait_for(pilot, lambda: screen.chosen == "widths" and len(screen.trials) == 1, what="widths' trials")
        screen.query_one("#sweeps-trials", DataTable).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "training", what="the Training screen")
        assert app.selected_run == Path("checkpoints/runs/widths-t000")
        # nothing runs: x says so
        await pilot.press("8")
        await pilot.press("x")
        assert "no sweep is running here" in notices(app)


async def test_the_dialog_starts_a_sweep_with_the_workspace_paths(tmp_path, monkeypatch):
    """The start dialog: focus in the first empty field, a refusal focuses the field it names,
    and the request made: the space file made absolute, a scorer's traces/, the budget and trials."""
    monkeypatch.chdir(tmp_path)
    ws = scorer_workspace(tmp_path)
    asked = []

    def fake_start(request, cwd=None):
        asked.append((request, cwd))
        return launch.StartedSweep(4242, request.folder, request.folder / "sweep.log")

    monkeypatch.setattr(launch, "start_detached", fake_start)
    app = TacticsApp(".", offer_demo=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("8")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepDialog), what="the dialog")
        assert app.focused.id == "sweep-space"  # the first empty field: typing goes there at once
        await pilot.press(*"space.toml")
        await pilot.press("enter")  # no name yet: refused, the focus moves to the name
        await wait_for(pilot, lambda: app.focused.id == "sweep-name", what="the name field")
        assert "Type the sweep's name." in screen_text(app)
        await pilot.press(*"mine")
        dialog = app.screen
        dialog.query_one("#sweep-budget", Input).value = "0.5"
        dialog.query_one("#sweep-trials", Input).value = "3"
        await pilot.press("enter")
        await wait_for(pilot, lambda: asked and "sweep mine started (pid 4242)" in " ".join(notices(app)), what="the start")
    request, cwd = asked[0]
    assert request.name == "mine" and request.space == str((ws / "space.toml").resolve()) and not request.resume
    assert request.budget_minutes == 0.5 and request.trials == 3
    assert request.data_dir == (ws / "traces").resolve()  # the space's base preset is a scorer
    assert request.sweeps_dir == (ws / "sweeps").resolve() and Path(cwd) == ws.resolve()


@pytest.mark.slow
async def test_a_real_sweeps_trials_in_the_view(tmp_path, monkeypatch):
    """Two trials of a real sweep (run_sweep on the tiny scorer of the committed trace; the second
    pruned by a pruner that names it) as the view shows them."""
    from tactics_core.sweeps import study as study_mod
    from tactics_core.sweeps.study import SweepOptions, run_sweep

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(study_mod, "OVERRUN_GRACE_S", 3600.0)
    ws = scorer_workspace(tmp_path)
    result = run_sweep(SweepOptions(space=Path("space.toml"), budget_minutes=0.05, trials=2, data_dir=Path("traces")),
                       log=lambda line: None, pruner=PruneTrial(1))
    app = TacticsApp(".", offer_demo=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("8")
        screen = app.screen
        await wait_for(pilot, lambda: len(screen.trials) == 2, what="the trials")
        rows = table_rows(app, "#sweeps-trials")
        assert [r[1] for r in rows] == ["complete", "pruned"] and rows[0][0] == "★0"
        assert [r[4] for r in rows] == ["space-t000", "space-t001"]
        assert f"best so far: trial {result.summary.best.number}" in screen_text(app)
    assert (ws / "checkpoints" / "runs" / "space-t001").is_dir()


@pytest.mark.slow
async def test_a_detached_sweep_is_followed_stopped_and_resumed_from_the_view(tmp_path, monkeypatch):
    """A real `tactics sweep` process started from the dialog (10 minutes per trial: it runs until
    stopped), its running trial shown as the sweep writes it, x (its trial ends gracefully, FAIL
    with its parameters queued again), u (resumed: the queued parameters train again), x."""
    from tactics_core.training.presets import apply_overrides, load_preset, save_preset

    monkeypatch.chdir(tmp_path)
    ws = scorer_workspace(tmp_path)
    tiny = ws / "presets" / "tinyscorer.toml"  # no early stop: a trial trains until it is stopped
    save_preset(apply_overrides(load_preset(str(tiny)), ["training.patience=1000000"]), tiny)
    folder = ws / "sweeps" / "live"
    app = TacticsApp(".", offer_demo=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("8")
            screen = app.screen
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, SweepDialog), what="the dialog")
            await pilot.press(*"space.toml", "tab", *"live", "enter")  # 10 minutes, 10 trials: the prefilled ones
            await wait_for(pilot, lambda: isinstance(app.screen, SweepsScreen), what="the dialog to close")

            def running_trial() -> bool:
                proc = screen.processes.get("live")
                # an evaluation reported: the trial trains, and the view shows its figure as the sweep writes it
                return bool(proc and proc.state == "running"
                            and any(t.state == "RUNNING" and t.step is not None for t in screen.trials))

            await wait_for(pilot, running_trial, timeout=240, what="the sweep's first trial to report")
            row = table_rows(app, "#sweeps-trials")[0]
            assert row[1] == "running" and row[2] != "–" and row[4] == "live-t000"
            assert "live: running (pid" in screen_text(app)
            await pilot.press("x")
            assert any("stop requested" in n for n in notices(app))
            await wait_for(pilot, lambda: screen.processes["live"].state == "ended", timeout=240, what="the sweep to stop")
            await wait_for(pilot, lambda: [t.state for t in screen.trials] == ["FAIL", "WAITING"], timeout=30,
                           what="the stopped trial")
            assert "interrupted" in screen.trials[0].note
            assert "continue it with `tactics sweep --resume --name live`" in (folder / "sweep.log").read_text()
            # u: the resume dialog (name and target prefilled, the focus on the name), enter
            await pilot.press("u")
            await wait_for(pilot, lambda: isinstance(app.screen, SweepDialog), what="the resume dialog")
            assert app.focused.id == "sweep-name" and app.focused.value == "live"
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, SweepsScreen), what="the dialog to close")
            await wait_for(pilot, lambda: screen.processes["live"].state == "running"
                           and any(t.state == "RUNNING" and "retries trial 0" in t.note for t in screen.trials),
                           timeout=240, what="the resumed sweep to train trial 0's parameters again")
            await pilot.press("x")
            await wait_for(pilot, lambda: screen.processes["live"].state == "ended", timeout=240, what="the second stop")
    finally:
        _kill_left(folder)


def _kill_left(folder: Path) -> None:
    """A sweep process the test left running (a failed assertion): ended, by its own pid."""
    state = launch.sweep_process(folder)
    if state.alive and state.pid:
        try:
            os.kill(state.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_snapshot_sweeps_view(tmp_path, monkeypatch, snap_compare):
    """A sweep with fixed figures (two complete trials, one pruned) as the Sweeps screen shows it."""
    fixed_sweep(tmp_path, "sizes")
    monkeypatch.chdir(tmp_path)
    app = TacticsApp(".", offer_demo=False)

    async def run_before(pilot):
        await pilot.press("8")
        await wait_for(pilot, lambda: len(getattr(app.screen, "trials", [])) == 3, what="the trials")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_the_top_line_names_eight_screens_in_80_columns():
    from tactics_tui.registry import SCREENS
    from tactics_tui.widgets.nav import nav_text

    for entry in SCREENS:  # whichever screen is shown, its full title, and every key
        text = nav_text(SCREENS, entry.screen, 80)
        assert text.cell_len <= 80 and f"{entry.key} {entry.title}" in text.plain
        assert all(f"{e.key} " in text.plain for e in SCREENS)
    assert "4 Ckpts 5 Play" in nav_text(SCREENS, SweepsScreen, 80).plain
    assert "4 Checkpoints 5 Playground" in nav_text(SCREENS, SweepsScreen, 120).plain  # wide: full titles


def test_the_side_pane_names_the_provers_best_once_a_sweep_was_judged():
    """`side_text` is pure: the judged sweep's best by the real prover, beside the objective's best."""
    from pathlib import Path

    from tactics_core.sweeps.record import SweepSummary, TrialRow
    from tactics_tui.screens.sweeps import side_text

    rows = [TrialRow(0, "COMPLETE", 2.21, {"model.n_layers": 4}, "s-t000", 600.0, base=True),
            TrialRow(1, "COMPLETE", 2.10, {"model.n_layers": 6}, "s-t001", 600.0)]
    summary = SweepSummary("s", Path("sweeps/s"), "gpt", "proof_loss", "minimize", 10.0, 2, rows)
    assert "prover's best" not in side_text(summary, None, None)
    summary.judged = {"verdicts": [{"number": 0, "run": "s-t000", "base": True, "text": "seen: proved 30/120"},
                                   {"number": 1, "run": "s-t001", "base": False, "text": "seen: proved 28/120"}]}
    text = side_text(summary, None, None)
    assert "best so far: trial 1" in text and "prover's best: trial 0 (base)" in text and "seen: proved 30/120" in text
