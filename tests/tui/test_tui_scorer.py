"""The console on a scorer's workspace (acorn's proof-step scorer, trained from `acorn eval` traces).

The workspace holds traces/ written by the tests (goal buckets 0 and 90, so the scorer has
training and validation searches, with feature names acorn 91f29ff1 computes) and one tiny
scorer run trained in-process by the real trainer (`tactics_core.training.loop.train`), so the run
folder, events and checkpoints are what `tactics train --preset scorer` writes. Pilot drives
the app at 80x24: the Corpus screen's trace figures, the Training and Runs screens' AUC and
used rank, the Checkpoints screen's kind, its refusals, the export and the acorn eval judge
(with the fake acorn 0.2.6 of tests/core/acorn).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, OptionList, Select, Static

from tactics_tui.app import TacticsApp
from tactics_tui.screens.dialogs import ConfirmDialog, ProveDialog, ResultDialog

from tui_helpers import notices, wait_for

HERE = Path(__file__).resolve().parents[1]  # tests/
sys.path.insert(0, str(HERE / "core" / "scorer"))
sys.path.insert(0, str(HERE / "core" / "acorn"))

from trace_helpers import search_rows, write_trace  # noqa: E402

SIZE = (80, 24)
RUN = "scorer-run"
# Five features of acorn 91f29ff1's catalog, so its `acorn eval` (the fake's catalog) accepts the export.
FEATURES = ("atom_count", "depth", "proof_size", "is_negated_goal", "literal_count")


def write_traces(traces: Path) -> None:
    """Twelve solved searches in goal bucket 0 (training) and twelve in bucket 90 (validation)."""
    train, val = [], []
    for g in range(12):
        train += search_rows("nat", f"train_{g}", 8, used=(1, 3), bucket=0)
        val += search_rows("nat", f"val_{g}", 8, used=(2,), bucket=90, outcome="Success" if g % 2 else "Timeout")
    write_trace(traces / "depth-first-b00.jsonl.zst", train, names=FEATURES)
    write_trace(traces / "depth-first-b90.jsonl.zst", val, names=FEATURES)


@pytest.fixture(scope="module")
def base_ws(tmp_path_factory) -> Path:
    from tactics_core.runs import workspace_runs
    from tactics_core.training.presets import apply_overrides, load_preset
    from tactics_core.training.loop import train

    root = tmp_path_factory.mktemp("scorerws")
    write_traces(root / "traces")
    preset = apply_overrides(
        load_preset("scorer"),
        ["training.max_steps=6", "training.eval_interval=3", "training.batch_size=64", "training.device=cpu"],
    )
    folder = workspace_runs.new_run(root / "checkpoints", "scorer", name=RUN, needs_tokenizer=False)
    result = train(preset, root / "traces", folder, handle_signals=False, metrics_interval=0)
    assert result.reason == "finished", result.message
    return root


@pytest.fixture
def ws(tmp_path, base_ws) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(base_ws, root, symlinks=True)  # `checkpoints/current` stays a link to the run
    return root


def static(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def idle(app) -> bool:
    return not getattr(app.screen, "_tokens", {})


async def test_corpus_screen_shows_the_trace_figures_and_offers_no_demo(ws):
    app = TacticsApp(ws)  # no corpus, but traces: a scorer's workspace, not an empty one
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "goal_bucket" in static(app, "#corpus-traces"), timeout=60, what="trace stats")
        assert not isinstance(app.screen, ConfirmDialog)
        text = static(app, "#corpus-traces")
        assert "2 files" in text and "192 activated steps" in text
        assert "searches    24  (solved 18, 75.0%)" in text and "used steps  36" in text
        assert "0-9" in text and "90-99" in text and "depth-first" in text
        assert "no proof corpus" in text
        assert not app.screen.query_one("#corpus-top").display  # nothing of the absent corpus in the way


async def test_corpus_screen_shows_the_corpus_first_then_the_traces(ws):
    from tactics_core.gpt import demo

    demo.write_demo_corpus(ws / "data" / "proofs", files=20)
    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "goal_bucket" in static(app, "#corpus-traces"), timeout=60, what="trace stats")
        assert "files" in static(app, "#corpus-summary") and "20" in static(app, "#corpus-summary")
        assert app.screen.query_one("#corpus-top").display and "no proof corpus" not in static(app, "#corpus-traces")


async def test_training_and_runs_screens_show_the_scorer_figures(ws):
    from tactics_core.runs.run_events import EvalEvent, metrics_path, read_metrics

    evals = [e for e in read_metrics(metrics_path(ws / "checkpoints" / "runs" / RUN)) if isinstance(e, EvalEvent)]
    last = evals[-1]
    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: app.screen.view.end is not None, what="the run's history")
        figures = static(app, "#train-figures")
        assert f"AUC        {last.auc:.4f}" in figures and f"used rank  {last.used_rank:.4f} *" in figures
        assert "rows/s" in figures and "tokens/s" not in figures and "bpb" not in figures
        assert f"val loss   {last.val_loss:.4f}" in figures and "best used" in figures
        assert len(app.screen.view.auc) == len(evals) == 2
        sample = static(app, "#train-sample")
        assert sample.startswith("data: 2 traces, 12 train / 12 validation searches") and "5 features" in sample
        assert "finished" in static(app, "#train-status") and f"run {RUN}" in static(app, "#train-status")
        assert app.screen.query_one("#train-preset", Select).value == "scorer"  # traces and no corpus: a scorer's

        await pilot.press("7")
        table = app.screen.query_one("#runs-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="the run's row")
        assert [str(c.label) for c in table.columns.values()][2] == "kind"
        row = table.get_row_at(0)
        assert row[2] == "scorer" and row[6] == f"{min(e.used_rank for e in evals):.4f}"
        side = static(app, "#runs-side")
        assert f"best AUC   {max(e.auc for e in evals):.4f}" in side and "rows/s" in side


def test_runs_diff_compares_scorer_runs(ws):
    from tactics_core.runs import workspace_runs
    from tactics_tui.screens.runs import diff_text

    info = workspace_runs.find_run(ws / "checkpoints", RUN)
    assert info.kind == "scorer" and info.best_auc is not None and info.best_step is not None
    gpt = workspace_runs.RunInfo(name="gpt-run", path=str(ws), status="finished", best_val_loss=1.5, best_proof_loss=0.7)
    diff = workspace_runs.diff_runs(info, gpt)
    keys = [k for k, _, _ in diff.figures]
    assert "best_auc" in keys and "best_used_rank" in keys
    text = diff_text(diff)
    assert f"auc: {info.best_auc:.4f} | –" in text and "proof_loss: – | 0.7000" in text
    assert "best_auc" not in [k for k, _, _ in workspace_runs.diff_runs(gpt, gpt).figures]  # two GPTs: as before


async def test_presets_screen_edits_the_scorer_preset_in_its_sections(ws):
    from tactics_core.training import presets

    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        screen = app.screen
        screen.query_one("#presets-list", OptionList).highlighted = [i.name for i in screen.infos].index("scorer")
        await pilot.pause(0.1)
        assert screen.preset.kind == "scorer"
        await pilot.press("m")
        await pilot.pause(0.2)
        fields = {i.id for i in screen.query(".form-input")}
        assert {"f-model-hidden_size", "f-data-val_buckets", "f-data-rank_weight", "f-training-select_by"} <= fields
        assert "f-model-d_model" not in fields and "f-training-optimizer" not in fields  # the GPT's keys
        screen.query_one("#f-data-rank_weight", Input).value = "-1"
        await pilot.pause(0.1)
        assert "rank_weight" in static(app, "#presets-form-error")
        screen.query_one("#f-data-rank_weight", Input).value = "0.25"
        screen.query_one("#f-training-batch_size", Input).value = "256"
        await pilot.pause(0.1)
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
    saved = presets.load_preset(ws / "presets" / "scorer.toml")
    assert saved.kind == "scorer" and saved.data.rank_weight == 0.25 and saved.training.batch_size == 256


def test_playground_offers_no_scorer_model(ws):
    from tactics_core.common.workspace import Workspace
    from tactics_tui.screens.playground import model_options

    assert (ws / "checkpoints" / "runs" / RUN / "best_model.pt").is_file()
    assert model_options(Workspace.at(ws)) == []  # a scorer writes no proof lines


async def test_checkpoints_screen_lists_refuses_eval_and_exports_a_scorer(ws):
    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        table = app.screen.query_one("#ckpt-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, timeout=60, what="checkpoint rows")
        assert [str(c.label) for c in table.columns.values()][2:6] == ["kind", "step", "val loss", "used rank"]
        rows = {str(table.get_row_at(i)[1]): table.get_row_at(i) for i in range(2)}
        assert rows["best_model.pt"][2] == "scorer" and rows["checkpoint_step_6.pt"][3] == "6"
        assert rows["best_model.pt"][5] != "–"  # its used rank, from the sidecar's figures
        await wait_for(pilot, lambda: "kind scorer" in static(app, "#ckpt-details"), timeout=60, what="details")
        assert "AUC" in static(app, "#ckpt-details") and "5 features" in static(app, "#ckpt-details")

        await pilot.press("v")
        await pilot.pause(0.2)
        refusal = [n for n in notices(app) if "quick eval" in n]
        assert len(refusal) == 1 and "\n" not in refusal[0] and "scorer" in refusal[0]
        assert not app.screen.busy("eval")

        await pilot.press("e")
        await wait_for(pilot, lambda: any("exported and verified" in n for n in notices(app)), timeout=120, what="export")
        folders = list((ws / "export").iterdir())
        assert len(folders) == 1 and folders[0].name.startswith("scorer-")
        name = folders[0].name
        assert {p.name for p in folders[0].iterdir()} == {f"{name}.onnx", f"{name}.features.json", "config.json"}
        config = json.loads((folders[0] / "config.json").read_text())
        assert config["model_type"] == "acorn-proof-step-scorer" and config["features"] == list(FEATURES)


async def test_prove_judges_a_scorer_with_acorn_eval_focus_in_the_first_empty_field(ws, tmp_path, monkeypatch):
    from test_acorn_eval import make_fake, make_library

    from tactics_core.acorn import eval_judge as acorn_eval

    fake = make_fake(tmp_path, {"outputs": {"*": "add_monoid-b90-99-model.txt"}})
    library = make_library(tmp_path)
    monkeypatch.setenv(acorn_eval.ENV_EVAL_BINARY, str(fake))
    monkeypatch.delenv(acorn_eval.ENV_EVAL_ACORNLIB, raising=False)
    app = TacticsApp(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        table = app.screen.query_one("#ckpt-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2 and idle(app), timeout=60, what="checkpoint rows")
        table.move_cursor(row=[str(table.get_row_at(i)[1]) for i in range(2)].index("best_model.pt"))
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ProveDialog), what="the judge dialog")
        dialog = app.screen
        assert dialog.query_one("#prove-acorn", Input).value == str(fake)
        assert dialog.query_one("#prove-modules", Input).value == "91-92"
        assert dialog.focused is dialog.query_one("#prove-lib", Input)  # the first empty field, typed into at once
        await pilot.press(*str(library))
        assert dialog.query_one("#prove-lib", Input).value == str(library)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ResultDialog) and bool(app.screen.query("#result-table")), timeout=120, what="the judge's table")
        result = app.screen
        assert "acorn eval on buckets 91-92" in static(app, "#result-head")
        policies = result.query_one("#result-table", DataTable)
        assert [str(c) for c in policies.get_row_at(0)][:4] == ["best_model", "6", "6", "100.0%"]
        assert "enter: its 2 buckets" in static(app, "#result-details")
        # Enter on the policy: its buckets, with acorn's own summary lines of the highlighted one.
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is not result and isinstance(app.screen, ResultDialog), what="the buckets")
        buckets = app.screen.query_one("#result-table", DataTable)
        rows = [[str(c) for c in buckets.get_row_at(i)] for i in range(buckets.row_count)]
        assert [r[:3] for r in rows] == [["91", "3", "3"], ["92", "3", "3"]], rows
        assert "failures: none" in static(app, "#result-details") and "acorn: " in static(app, "#result-details")
        await pilot.press("escape")
        assert app.screen is result
        await pilot.press("escape")
        await wait_for(pilot, lambda: "acorn eval on buckets 91-92: best_model 6/6 (100.0%) (o: the table)" in static(app, "#ckpt-details"),
                       what="the judge's line")


async def test_prove_dialog_of_a_gpt_focuses_its_first_empty_field():
    from textual.app import App

    class Host(App):
        def __init__(self, dialog: ProveDialog) -> None:
            super().__init__()
            self.dialog = dialog

        def on_mount(self) -> None:
            self.push_screen(self.dialog)

    for given, first_empty in (((), "#prove-acorn"), (("/bin/acorn",), "#prove-lib"),
                               (("/bin/acorn", "/lib"), "#prove-modules")):
        app = Host(ProveDialog("best_model.pt", *given))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.1)
            assert app.screen.focused is app.screen.query_one(first_empty, Input)
            await pilot.press("n", "a", "t")
            assert app.screen.query_one(first_empty, Input).value == "nat"


# ------------------------------------------------------------------ snapshot


def test_snapshot_training_scorer_run(tmp_path, monkeypatch, snap_compare):
    """A finished scorer run as the Training screen shows it on attach (fixed figures, no paths)."""
    from tactics_core.runs import workspace_runs

    root = tmp_path / "ws"
    folder = root / "checkpoints" / "runs" / "20260101-000000-scorer"
    folder.mkdir(parents=True)
    workspace_runs.set_current(root / "checkpoints", folder.name)
    data = {"traces": 20, "rows": 1200000, "searches": 9000, "train_searches": 8100, "val_searches": 900,
            "train_rows": 1080000, "train_positives": 54000, "train_negatives": 1026000, "val_rows": 120000,
            "features": 63, "train_buckets": "0-89", "val_buckets": "90-99", "problems": 0}
    events = [{"event": "start", "step": 0, "total_steps": 40, "resumed_from": None, "preset": "scorer", "device": "cpu",
               "data": data, "kind": "scorer", "unit": "rows"}]
    for step in range(1, 41):
        events.append({"event": "step", "step": step, "epoch": round(step / 8, 2), "loss": round(1.2 * 0.96**step + 0.3, 4),
                       "lr": 2e-3 * min(1.0, step / 5), "tokens_per_s": 250000.0, "elapsed_s": step * 0.5, "total_steps": 40})
        if step % 10 == 0:
            val = round(1.0 * 0.97**step + 0.35, 4)
            rank = round(0.3 * 0.97**step + 0.05, 4)
            events.append({"event": "eval", "step": step, "val_loss": val, "select_by": "used_rank", "best_score": rank,
                           "bad_evals": 0, "patience": 6, "auc": round(0.7 + step / 200, 4), "used_rank": rank,
                           "top10_hit": round(0.5 + step / 100, 4), "val_rows": 120000, "val_searches": 900})
    events.append({"event": "end", "reason": "finished", "message": "reached step 40 of 40", "step": 40})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (folder / "run.json").write_text(json.dumps({"pid": 0, "state": "finished", "heartbeat": 0, "step": 40, "total_steps": 40,
                                                 "config": {}, "message": "reached step 40 of 40", "started": 0}))
    monkeypatch.chdir(root)
    app = TacticsApp(".", offer_demo=False)

    async def run_before(pilot):
        await pilot.press("3")
        await pilot.pause(0.2)
        await wait_for(pilot, lambda: app.screen.view.end is not None and idle(app), what="the run")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
