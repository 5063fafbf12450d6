"""The Training screen's tail (tactics_tui.run_tail), without a UI: a thread and a fake screen."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from tactics_tui.run_tail import EventsArrived, RunTail


def _append(folder: Path, *events: dict) -> None:
    with open(folder / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.writelines(json.dumps(e) + "\n" for e in events)


def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class Screen:
    """Stands in for the screen: keeps what the tail posts."""

    def __init__(self) -> None:
        self.posted: list = []

    def post_message(self, message) -> bool:
        self.posted.append(message)
        return True


def test_the_tail_gathers_events_until_taken_and_starts_over_in_another_folder(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    _append(a, {"event": "start", "step": 0}, {"event": "step", "step": 1})
    screen, shown = Screen(), [a]
    tail = RunTail(screen, lambda: shown[0], poll_seconds=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=tail.run, args=(stop.is_set,), daemon=True)
    thread.start()
    try:
        _until(lambda: screen.posted)
        _append(a, {"event": "step", "step": 2})
        _until(lambda: len(screen.posted) >= 2)
        assert all(isinstance(m, EventsArrived) for m in screen.posted)
        # Not taken yet: both polls wait in one batch, in order (the messages coalesce).
        batch = tail.take()
        assert [e.get("step") for e in batch.events] == [0, 1, 2]
        assert batch.folder == a and batch.state is None and batch.error is None
        assert tail.take().events == []  # handed over once
        posted = len(screen.posted)
        time.sleep(0.3)
        assert len(screen.posted) == posted  # nothing new: no message
        _append(b, {"event": "start", "step": 0})
        shown[0] = b  # another run opened: its own history, after a reset
        _until(lambda: len(screen.posted) > posted)
        batch = tail.take()
        assert [(e["event"], e.get("step")) for e in batch.events] == [("_reset", None), ("start", 0)]
        assert batch.folder == b
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_queued_events_arrived_messages_give_way_to_the_next():
    assert EventsArrived().can_replace(EventsArrived())
