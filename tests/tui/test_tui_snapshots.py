"""Snapshots of every screen at 80x24 (pytest-textual-snapshot).

Each runs in a workspace the test builds deterministically (the seeded demo
corpus, a tokenizer trained on it, a finished run's files written here), the
app given as "." so no temp path appears. Update after a deliberate change:
`pytest tests/tui/test_tui_snapshots.py --snapshot-update`, then look at the SVGs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tactics_tui.app import TacticsApp

from tui_helpers import make_workspace, wait_for

SIZE = (80, 24)


@pytest.fixture(scope="module")
def base_ws(tmp_path_factory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("snapws"))


@pytest.fixture
def ws(tmp_path, base_ws, monkeypatch) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(base_ws, root)
    monkeypatch.chdir(root)
    return root


def _idle(app):
    async def run_before(pilot):
        await pilot.pause(0.2)
        await wait_for(pilot, lambda: not getattr(app.screen, "_tokens", {}), what="jobs to end")
        await pilot.pause(0.3)

    return run_before


def _go(app, key: str, settle=None):
    async def run_before(pilot):
        await pilot.press(key)
        await pilot.pause(0.2)
        await wait_for(pilot, lambda: not getattr(app.screen, "_tokens", {}), what="jobs to end")
        if settle is not None:
            await wait_for(pilot, lambda: settle(app), what="screen content")
        await pilot.pause(0.3)

    return run_before


def test_snapshot_demo_offer(tmp_path, monkeypatch, snap_compare):
    monkeypatch.chdir(tmp_path)
    assert snap_compare(TacticsApp("."), terminal_size=SIZE, run_before=lambda pilot: pilot.pause(0.3))


def test_snapshot_corpus(ws, snap_compare):
    app = TacticsApp(".")
    assert snap_compare(app, terminal_size=SIZE, run_before=_idle(app))


def test_snapshot_tokenizer(ws, snap_compare):
    app = TacticsApp(".")
    assert snap_compare(app, terminal_size=SIZE, run_before=_go(app, "2"))


def test_snapshot_training_finished_run(ws, snap_compare):
    """A finished run as the Training screen shows it on attach (fixed figures)."""
    folder = ws / "checkpoints"
    events = [{"event": "start", "step": 0, "total_steps": 40, "resumed_from": None}]
    for step in range(1, 41):
        events.append({"event": "step", "step": step, "epoch": round(step / 20, 2), "loss": round(6.0 * 0.95**step + 1.0, 4),
                       "lr": 1e-3 * min(1.0, step / 5), "tokens_per_s": 2000.0, "elapsed_s": step * 0.5, "total_steps": 40})
        if step % 10 == 0:
            val = round(6.2 * 0.95**step + 1.1, 4)
            proof = round(val / 2, 4)
            events.append({"event": "eval", "step": step, "val_loss": val, "val_bpb": val / 4, "proof_loss": proof, "proof_bpb": proof / 4,
                           "select_by": "proof_loss", "best_val_loss": proof, "bad_evals": 0, "patience": 8})
            events.append({"event": "sample", "step": step, "prompt": "@G\n", "text": "a + b = b + a"})
    events.append({"event": "end", "reason": "finished", "message": "reached step 40 of 40", "step": 40})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (folder / "run.json").write_text(json.dumps({"pid": 0, "state": "finished", "heartbeat": 0, "step": 40, "total_steps": 40, "config": {}, "message": "reached step 40 of 40", "started": 0}))
    app = TacticsApp(".")
    assert snap_compare(app, terminal_size=SIZE, run_before=_go(app, "3", lambda a: a.screen.view.end is not None))


def test_snapshot_checkpoints_empty(ws, snap_compare):
    app = TacticsApp(".")
    assert snap_compare(app, terminal_size=SIZE, run_before=_go(app, "4"))


def test_snapshot_playground(ws, snap_compare):
    app = TacticsApp(".")
    assert snap_compare(app, terminal_size=SIZE, run_before=_go(app, "5"))


def test_snapshot_playground_prover_mode(tmp_path, monkeypatch, snap_compare):
    """A goal picked from the validation split of a prover-layout model: the prompt as the
    prover keeps it (the start cut) and the rollout's base state. No attempt is sampled:
    sampled text would tie the snapshot to the exact floating-point result of training."""
    from helpers_models import tiny_export, tiny_workspace
    from textual.widgets import OptionList

    from tactics_tui.screens.dialogs import PickDialog

    tiny_export("prover")
    root = tmp_path / "ws"
    shutil.copytree(tiny_workspace("prover").root, root)
    monkeypatch.chdir(root)
    app = TacticsApp(".", offer_demo=False)

    async def run_before(pilot):
        await pilot.press("5")
        await wait_for(pilot, lambda: not app.screen._tokens, what="layout")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, PickDialog), timeout=60, what="goals")
        dialog = app.screen
        dialog.query_one(OptionList).highlighted = next(i for i, t in enumerate(dialog.items) if t.startswith("proof_00004.txt"))
        await pilot.press("enter")
        await pilot.pause(0.2)
        await wait_for(pilot, lambda: app.screen.rollout is not None and not app.screen._tokens, timeout=60, what="prompt")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_snapshot_presets(ws, snap_compare):
    # A workspace preset of our own sorts first and is the one shown, so the
    # snapshot does not change whenever a built-in preset is retuned.
    (ws / "presets").mkdir()
    (ws / "presets" / "a-mine.toml").write_text(
        '# my preset\ndescription = "for the snapshot"\n[model]\nd_model = 64\nn_heads = 4\n[training]\nbatch_size = 8\n'
    )
    app = TacticsApp(".")
    assert snap_compare(app, terminal_size=SIZE, run_before=_go(app, "6"))
