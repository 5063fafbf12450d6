"""The prover's figures and protocol in the app (issue 9), at 80x24 with Pilot.

Playground prover mode on a small trained model of the prover layout (its
ONNX export, run as the prover runs it): pick a goal, sample attempts,
accept (the room shrinks), reject (nothing changes), a new rollout (back to
the base state), escape cancels. The Training screen's proof-line figures
from a metrics.jsonl, and the Checkpoints screen's quick eval line.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, OptionList, Static

from tactics_tui.app import TacticsApp
from tactics_tui.screens.dialogs import PickDialog

from helpers_models import tiny_export, tiny_workspace
from tui_helpers import make_workspace, notices, wait_for

SIZE = (80, 24)


@pytest.fixture
def prover_ws(tmp_path) -> Path:
    """A copy of the tiny prover-layout workspace: data, checkpoints, and its export."""
    tiny_export("prover")
    root = tmp_path / "ws"
    shutil.copytree(tiny_workspace("prover").root, root)
    return root


def static(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def _pick_goal(pilot, app, name: str) -> None:
    """ctrl+l, then the goal called `name` in the list, with the keyboard."""
    await pilot.press("ctrl+l")
    await wait_for(pilot, lambda: isinstance(app.screen, PickDialog), timeout=60, what="validation goals")
    dialog = app.screen
    index = next(i for i, item in enumerate(dialog.items) if item.startswith(name))
    dialog.query_one(OptionList).highlighted = index
    await pilot.press("enter")


async def _attempt(pilot, screen) -> None:
    before = screen.rollout.attempts if screen.rollout else 0
    await pilot.press("ctrl+g")
    await wait_for(pilot, lambda: screen.rollout is not None and screen.rollout.attempts == before + 1 and not screen.busy("attempt"),
                   timeout=60, what="an attempt")


async def test_prover_mode_rollout_step_by_step(prover_ws):
    app = TacticsApp(prover_ws, offer_demo=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        play = app.screen
        play.seed = 0
        await wait_for(pilot, lambda: not play.busy("layout"), what="layout")
        assert play.mode == "prover" and "prover mode" in str(play.query_one("#play-mode").render())
        assert str(play.query_one("#play-model").value).endswith("tiny")  # the export: ONNX, as the prover
        assert not play.query_one("#play-free").display and play.query_one("#play-prover").display

        # A long goal: the prompt is cut at the front, as the prover cuts it.
        await _pick_goal(pilot, app, "proof_00004.txt")
        await wait_for(pilot, lambda: play.rollout is not None and not play.busy("prompt"), timeout=60, what="prompt")
        prompt = play.rollout.session.prompt
        assert prompt.cut_tokens > 0 and len(prompt.ids) == 128 - 100
        info = static(app, "#play-prompt-info")
        assert f"prompt {len(prompt.ids)} tokens" in info and f"cut {prompt.cut_tokens} of {prompt.full_tokens}" in info
        assert "@P" not in play.rollout.kept_text and play.rollout.kept_text.rstrip().endswith(
            (prover_ws / "data" / "proofs" / "proof_00004.txt").read_text().split("@P\n")[0].rstrip().splitlines()[-1]
        )
        assert "corpus line 1 of" in static(app, "#play-attempt")

        # A short goal of a family the model learned.
        started = []
        start_job = play.start_job
        play.start_job = lambda job, fn, label: started.append(job) or start_job(job, fn, label)
        await _pick_goal(pilot, app, "proof_fam_00030.txt")
        await wait_for(pilot, lambda: "fam_30(" in play.rollout.key[1] and not play.busy("prompt"), timeout=60, what="the second goal's prompt")
        # Closing the goal list refreshes the model list: the same model, so its layout is not
        # read again (that job used to switch the mode again and warn about a running job).
        await pilot.pause(0.3)
        assert started == ["goals", "prompt"] and not any("being sampled" in m for m in notices(app)), (started, notices(app))
        rollout = play.rollout
        base_room = rollout.session.room
        assert "nothing cut" in static(app, "#play-prompt-info")
        assert "corpus line 1 of 2: sub_self(a)" in static(app, "#play-attempt")
        assert f"room {base_room} of 128" in static(app, "#play-attempt")

        # Attempts until one can be accepted (failed ones count, and cannot be accepted).
        while rollout.pending is None:
            await _attempt(pilot, play)
            assert f"attempt {rollout.attempts}/10" in static(app, "#play-attempt")
            assert rollout.attempts < 10, "ten attempts and not one line"
        attempt = rollout.pending
        assert attempt.text in static(app, "#play-cache-text")
        await pilot.press("ctrl+y")
        await pilot.pause(0.1)
        assert rollout.session.accepted == [attempt.text]
        assert rollout.session.room == base_room - 1 - len(attempt.tokens)
        panel = static(app, "#play-attempt")
        assert f"room {rollout.session.room} of 128" in panel and "1 accepted" in panel and "accepted]" in panel
        assert "corpus line 2 of 2: a + -a = 0" in panel

        # Reject: the state stays as it was.
        room = rollout.session.room
        await _attempt(pilot, play)
        n = rollout.attempts
        await pilot.press("ctrl+n")
        await pilot.pause(0.1)
        assert rollout.history[-1][1] in ("rejected", "failed") and rollout.session.room == room
        assert rollout.session.accepted == [attempt.text] and f"attempt {n}/10" in static(app, "#play-attempt")

        # Escape cancels an attempt being sampled; nothing is counted.
        from tactics_core.gpt import prover_replica as prover

        original = prover.ProverSession.attempt

        def slow(self, cancel=None):
            while not cancel.cancelled:
                time.sleep(0.01)
            return original(self, cancel)

        prover.ProverSession.attempt = slow
        try:
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: play.busy("attempt"), what="attempt running")
            await pilot.press("escape")
            await wait_for(pilot, lambda: not play.busy("attempt"), what="cancelled")
        finally:
            prover.ProverSession.attempt = original
        assert any("attempt: cancelled" in m for m in notices(app)) and rollout.attempts == n

        # A new rollout: back to the goal's base state.
        await pilot.press("ctrl+r")
        await pilot.pause(0.1)
        assert rollout.attempts == 0 and rollout.number == 2 and rollout.session.room == base_room
        assert rollout.session.accepted == [] and f"rollout 2 (ctrl+r: new) · attempt 0/10" in static(app, "#play-attempt")
        assert attempt.text not in static(app, "#play-cache-text")

        # Ten attempts make a rollout; the eleventh asks for a new one.
        for _ in range(10):
            await _attempt(pilot, play)
        await pilot.press("ctrl+g")
        await pilot.pause(0.1)
        assert rollout.attempts == 10 and any("ctrl+r starts a new one" in m for m in notices(app))

        # ctrl+t: free mode, with N candidates and the other meaning of ctrl+g.
        await pilot.press("ctrl+t")
        await pilot.pause(0.1)
        assert play.mode == "free" and play.query_one("#play-free").display and not play.query_one("#play-prover").display
        await pilot.press("ctrl+g")
        options = play.query_one("#play-candidates", OptionList)
        await wait_for(pilot, lambda: options.option_count > 0, timeout=60, what="candidates")
        assert rollout.attempts == 10


def _metrics(folder: Path) -> None:
    events = [{"event": "start", "step": 0, "total_steps": 20, "resumed_from": None}]
    for step in range(1, 21):
        events.append({"event": "step", "step": step, "loss": 3.0 - step * 0.05, "lr": 1e-3, "tokens_per_s": 900.0, "elapsed_s": step * 0.5})
        if step % 10 == 0:
            events.append({"event": "eval", "step": step, "val_loss": 2.5 - step * 0.01, "val_bpb": 0.81, "proof_loss": 1.25 - step * 0.01,
                           "proof_bpb": 0.55, "select_by": "proof_loss", "best_val_loss": 1.25 - step * 0.01, "bad_evals": 0, "patience": 8})
    events.append({"event": "end", "reason": "finished", "message": "reached step 20 of 20", "step": 20})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


async def test_training_screen_shows_the_proof_line_figures_and_what_selects(tmp_path):
    ws = make_workspace(tmp_path, files=20, tokenizer=False)
    _metrics(ws / "checkpoints")
    app = TacticsApp(ws, offer_demo=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        screen = app.screen
        await wait_for(pilot, lambda: screen.view.end is not None, what="history")
        figures = static(app, "#train-figures")
        assert "val loss   2.3000\n" in figures and "val bpb    0.810" in figures
        assert "proof loss 1.0500 *" in figures and "proof bpb  0.550" in figures
        assert "best proof 1.0500" in figures and "* picks best_model.pt" in figures
        assert screen.view.proof_val == [(10, 1.15), (20, 1.05)]
        # Every line fits the figures column at 80 columns.
        assert max(len(line) for line in figures.splitlines()) <= screen.query_one("#train-figures").size.width


async def test_checkpoints_show_proof_loss_layout_and_the_provers_eval_figures(prover_ws):
    app = TacticsApp(prover_ws, offer_demo=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        ck = app.screen
        table = ck.query_one("#ckpt-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 3, timeout=90, what="checkpoint rows")
        names = [i.name for i in ck.infos]
        best = names.index("best_model.pt")
        meta = ck.metas[ck.infos[best].path]
        assert isinstance(meta["val_proof_loss"], float)
        assert table.get_row_at(best)[4] == f"{meta['val_proof_loss']:.4f}"
        assert table.get_row_at(names.index("untrained.pt"))[4] == "–"
        table.move_cursor(row=best)
        await wait_for(pilot, lambda: "layout prover" in static(app, "#ckpt-details"), what="details")
        assert "selects by proof_loss" in static(app, "#ckpt-details")
        await pilot.press("v")
        await wait_for(pilot, lambda: static(app, "#ckpt-details").startswith("eval"), timeout=180, what="eval line")
        first, second = static(app, "#ckpt-details").splitlines()[:2]
        assert re.fullmatch(r"eval 21 goals: proof \d\.\d{3} bits/byte · prover exact match@8 \d+\.\d% \(\d+/\d+\)", first), first
        assert "first line marker" in second and "overflow" in second and "attempts/5 s" in second
        # The line comes from a real report: figures, not dashes.
        assert "–" not in first and "–" not in second.split("stream bpb")[0], (first, second)
        assert max(len(first), len(second)) <= 78
