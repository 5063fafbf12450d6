"""What the Training screen derives from metrics events (pure, no UI)."""

from __future__ import annotations

from tactics_core.common.formatting import format_duration as format_seconds
from tactics_core.runs.run_events import RunView
from tactics_tui.screens.training import figures_text, status_line


class State:
    def __init__(self, alive: bool, state: str = "running", pid: int = 42) -> None:
        self.alive, self.state, self.pid, self.message, self.total_steps = alive, state, pid, "", None


def steps(a: int, b: int, secs_per_step: float = 2.0, offset: float = 0.0) -> list[dict]:
    return [
        {"event": "step", "step": s, "epoch": s / 10, "loss": 5.0 - s * 0.01, "lr": 1e-3, "tokens_per_s": 100.0,
         "elapsed_s": offset + (s - a + 1) * secs_per_step}
        for s in range(a, b + 1)
    ]


def test_eta_uses_this_sessions_pace_and_status_says_running():
    view = RunView()
    view.feed([{"event": "start", "step": 0, "total_steps": 100}] + steps(1, 10))
    assert view.step == 10 and len(view.train) == 10
    assert view.eta_seconds() == 90 * 2.0
    line = status_line(view, State(True))
    assert line.startswith("● running (pid 42)") and "step 10/100" in line and "ETA 3m00s" in line


def test_resume_keeps_history_and_a_new_run_starts_over():
    view = RunView()
    view.feed([{"event": "start", "step": 0, "total_steps": 100}] + steps(1, 10))
    view.feed([{"event": "end", "reason": "stopped", "message": "stop requested"}])
    assert view.ending() == "stopped: stop requested"
    view.feed([{"event": "start", "step": 10, "total_steps": 100, "resumed_from": "checkpoints/checkpoint_step_10.pt"}])
    view.feed(steps(11, 12, secs_per_step=4.0, offset=100.0))
    assert len(view.train) == 12 and view.end is None
    assert view.eta_seconds() == 88 * 4.0  # the resumed session's pace, not the old one
    view.feed([{"event": "start", "step": 0, "total_steps": 50, "resumed_from": None}] + steps(1, 2))
    assert [s for s, _ in view.train] == [1, 2] and view.total_steps == 50


def test_early_stop_counter_best_and_why_it_ended():
    view = RunView()
    view.feed([{"event": "start", "step": 0, "total_steps": 100}] + steps(1, 20))
    view.feed([{"event": "eval", "step": 20, "val_loss": 4.5, "val_bpb": 1.2, "best_val_loss": 4.2, "bad_evals": 3, "patience": 3}])
    view.feed([{"event": "end", "reason": "early_stop", "message": "no better validation loss in 3 evaluations (best 4.2000)"}])
    figures = figures_text(view)
    assert "early stop 3/3" in figures and "best val   4.2000" in figures and "val bpb    1.200" in figures
    line = status_line(view, State(False, "early_stop"))
    assert line.startswith("■ step 20/100") and "early stop: no better validation loss" in line
    assert view.eta_seconds() is None


def test_a_run_without_early_stop_says_so():
    view = RunView()
    view.feed([{"event": "start", "step": 0, "total_steps": 100}] + steps(1, 20))
    view.feed([{"event": "eval", "step": 20, "val_loss": 4.5, "val_bpb": 1.2, "best_val_loss": 4.2, "bad_evals": 4, "patience": 0}])
    assert "early stop off" in figures_text(view)


def test_a_vanished_run_is_called_out():
    view = RunView()
    view.feed([{"event": "start", "step": 0, "total_steps": 100}] + steps(1, 3))
    line = status_line(view, State(False, "running", pid=7))
    assert line.startswith("✖") and "pid 7" in line and "resume with u" in line


def test_truncated_metrics_file_resets_and_time_format():
    view = RunView()
    view.feed(steps(1, 5))
    view.feed([{"event": "_reset"}] + steps(1, 1))
    assert len(view.train) == 1
    assert [format_seconds(s) for s in (None, 5, 65, 3700)] == ["–", "5s", "1m05s", "1h01m"]


def test_a_data_parallel_run_shows_its_world_size():
    view = RunView()
    view.feed([{"event": "start", "step": 0, "total_steps": 100, "world_size": 2}] + steps(1, 4))
    assert "step 4/100 · epoch 0.4 · 2 processes" in status_line(view, State(True))
    single = RunView()
    single.feed([{"event": "start", "step": 0, "total_steps": 100, "world_size": 1}] + steps(1, 4))
    assert "processes" not in status_line(single, State(True))


def test_the_best_score_is_written_by_its_name_and_old_files_still_read():
    from tactics_core.runs.run_events import EndEvent, EvalEvent, encode, parse_event

    line = encode(EvalEvent(step=3, val_loss=4.5, select_by="proof_loss", best_score=1.25))
    assert '"best_score": 1.25' in line and "best_val_loss" not in line
    old = parse_event({"event": "eval", "step": 3, "select_by": "proof_loss", "best_val_loss": 1.25})
    assert old.best_score == 1.25 and old["best_score"] == 1.25 and not old.extra  # not kept twice
    end = parse_event({"event": "end", "reason": "finished", "best_val_loss": 2.0})
    assert isinstance(end, EndEvent) and end.best_score == 2.0 and end.select_by is None
