"""The Playground's state without an app: rollout verdicts, modes, the goal picked, the text edits."""

from __future__ import annotations

import ast
from types import SimpleNamespace

import pytest

from conftest import REPO
from tactics_core.common.errors import TacticsError
from tactics_tui.screens.playground.state import (
    FREE_MODE,
    PROVER_MODE,
    PlaygroundState,
    Rollout,
    parse_settings,
    with_line,
    without_proof,
)


class FakeSession:
    def __init__(self):
        self.accepted: list[str] = []
        self.resets = 0

    def accept(self, attempt):
        self.accepted.append(attempt.text)

    def reset(self):
        self.accepted.clear()
        self.resets += 1


def attempt(text: str, failed: bool = False):
    return SimpleNamespace(text=text, failed=failed)


def test_the_state_module_imports_no_textual():
    tree = ast.parse((REPO / "tactics_tui/screens/playground/state.py").read_text(encoding="utf-8"))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if n.split(".")[0] in ("textual", "rich", "tactics_tui")]


def test_a_rollout_keeps_each_attempts_verdict():
    session = FakeSession()
    r = Rollout(session, ("m", "@G\nx\n"), "@G\nx\n", limit=3)
    with pytest.raises(TacticsError, match="ctrl\\+g samples one"):
        r.accept()
    r.took(attempt("a = b"))
    assert r.pending.text == "a = b" and r.attempts == 1
    r.took(attempt("b = c"))  # a new attempt while one waits: the waiting one is rejected
    assert [v for _, v in r.history] == ["rejected", "pending"]
    assert r.accept().text == "b = c" and session.accepted == ["b = c"] and r.pending is None
    r.took(attempt("", failed=True))
    assert r.history[-1][1] == "failed" and r.over and "used its 3 attempts" in r.why_over()
    r.new()
    assert r.attempts == 0 and r.number == 2 and session.accepted == [] and r.why_over() is None


def test_a_line_acorn_crashes_on_ends_the_rollout():
    r = Rollout(FakeSession(), ("m", "g"), "g")
    r.took(attempt("// a comment"))
    assert r.history[-1][1] == "crash" and r.over and r.pending is None
    assert "crashes on" in r.why_over()
    with pytest.raises(TacticsError):
        r.reject()


def test_modes_decide_which_actions_exist():
    s = PlaygroundState()
    assert s.mode == PROVER_MODE and s.allows("attempt") and not s.allows("ask") and s.allows("pick_goal")
    assert s.toggled() == FREE_MODE and s.mode_chosen
    assert s.set_mode(FREE_MODE) and not s.set_mode(FREE_MODE)
    assert s.allows("ask") and s.allows("reset_proof") and not s.allows("accept")
    with pytest.raises(ValueError):
        s.set_mode("other")


def test_a_picked_goal_and_its_rollout():
    s = PlaygroundState(candidates=["old"])
    goal = SimpleNamespace(proof=("l1", "l2"), context_text=lambda: "@G\ng\n")
    assert s.pick_goal(goal) == "@G\ng\n@P\n" and s.candidates == [] and s.reference == ("l1", "l2")
    assert s.needs_prompt() and not s.edited()  # no rollout: an edit changes nothing shown
    r = Rollout(FakeSession(), ("m", "@G\ng\n"), "@G\ng\n")
    s.took_step(r, attempt("l1"))
    assert s.rollout is r and r.pending.text == "l1" and not s.needs_prompt()
    assert s.shown_rollout("m") is r and s.shown_rollout("other") is None
    assert s.gold_lines(r) == ("l1", "l2")
    assert s.gold_lines(Rollout(FakeSession(), ("m", "@G\nelse\n"), "")) is None
    assert s.edited() and s.goal_edited and s.needs_prompt()
    s.took_step(Rollout(FakeSession(), ("m", "@G\ng2\n"), ""), None)
    assert not s.goal_edited
    assert s.reference_line(1) == "l2" and s.reference_line(2) is None
    s.keep("m", "completer")
    s.keep("n", "other")
    assert s.completers == {"n": "other"}  # one model kept in memory


def test_the_goal_text_edits():
    assert with_line("@G\ng", "a = b\n") == "@G\ng\n@P\na = b\n"
    assert with_line("@G\ng\n@P\nx\n", "y") == "@G\ng\n@P\nx\ny\n"
    assert without_proof("@G\ng\n@P\nx\ny\n") == "@G\ng\n@P\n"
    assert without_proof("@P\nx\n") == "@P\n"
    assert without_proof("@G\ng\n") is None


def test_free_mode_settings():
    assert parse_settings(" 3 ", "0.5", "1") == {"n": 3, "temperature": 0.5, "top_p": 1.0}
    with pytest.raises(TacticsError, match="N 'x' is not a number"):
        parse_settings("x", "0.5", "1")
    with pytest.raises(TacticsError, match="top-p must be between 0.01 and 1.0"):
        parse_settings("3", "0.5", "2")
