"""What the Training screen shows, folded from the run's metrics events.

Pure Python (no widgets), so it is easy to test: feed it the events of
`metrics.jsonl` in order (the whole file on attach, then what the tail
brings) and read the figures to draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tactics_core.formatting import format_duration

REASONS = {"finished": "finished", "early_stop": "early stop", "stopped": "stopped", "failed": "FAILED"}


@dataclass
class RunView:
    train: list[tuple[int, float]] = field(default_factory=list)
    val: list[tuple[int, float]] = field(default_factory=list)
    proof_val: list[tuple[int, float]] = field(default_factory=list)  # proof-line validation loss
    last_step: dict[str, Any] | None = None
    last_eval: dict[str, Any] | None = None
    last_sample: dict[str, Any] | None = None
    last_checkpoint: dict[str, Any] | None = None
    start: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    total_steps: int | None = None
    events: int = 0
    _session_first: dict[str, Any] | None = None

    def reset(self) -> None:
        """The metrics file was replaced (a new run in a cleaned folder)."""
        self.__init__()

    def feed(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.events += 1
            kind = event.get("event")
            if kind == "_reset":
                self.reset()
            elif kind == "start":
                if not event.get("resume") and not event.get("resumed_from"):
                    # A new run in this folder: its history starts here.
                    self.train.clear()
                    self.val.clear()
                    self.proof_val.clear()
                    self.last_eval = self.last_sample = self.last_checkpoint = None
                self.start = event
                self.end = None
                self.last_step = None
                self._session_first = None
                total = event.get("total_steps") or event.get("max_steps")
                if total:
                    self.total_steps = int(total)
            elif kind == "step":
                if _num(event.get("loss")) is not None:
                    self.train.append((int(event.get("step", 0)), float(event["loss"])))
                self.last_step = event
                if self._session_first is None:
                    self._session_first = event
                if event.get("total_steps"):
                    self.total_steps = int(event["total_steps"])
            elif kind == "eval":
                if _num(event.get("val_loss")) is not None:
                    self.val.append((int(event.get("step", 0)), float(event["val_loss"])))
                proof = _num(event.get("proof_loss"))
                if proof is not None and math.isfinite(proof):
                    self.proof_val.append((int(event.get("step", 0)), proof))
                self.last_eval = event
            elif kind == "sample":
                self.last_sample = event
            elif kind == "checkpoint":
                self.last_checkpoint = event
            elif kind == "end":
                self.end = event

    # -- figures -----------------------------------------------------------
    @property
    def step(self) -> int | None:
        return int(self.last_step["step"]) if self.last_step else None

    def eta_seconds(self) -> float | None:
        """Remaining time from this session's pace (steps since the last start)."""
        first, last = self._session_first, self.last_step
        if not first or not last or not self.total_steps or self.end is not None:
            return None
        steps = int(last.get("step", 0)) - int(first.get("step", 0))
        secs = float(last.get("elapsed_s", 0)) - float(first.get("elapsed_s", 0))
        if steps <= 0 or secs <= 0:
            return None
        return max(0.0, (self.total_steps - int(last["step"])) * secs / steps)

    def ending(self) -> str | None:
        """Why the run ended, in words (None while it runs)."""
        if self.end is None:
            return None
        reason = str(self.end.get("reason", "?"))
        text = REASONS.get(reason, reason)
        message = self.end.get("message")
        return f"{text}: {message}" if message else text

    @property
    def select_by(self) -> str:
        """The metric that picks best_model.pt and counts for early stopping (runs before
        the proof-line figures existed selected by the whole-stream validation loss)."""
        return str((self.last_eval or {}).get("select_by") or "val_loss")

    def recent_losses(self, n: int = 120) -> list[float]:
        return [v for _, v in self.train[-n:]]


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def format_seconds(secs: float | None) -> str:
    return format_duration(secs)  # the one rule, shared with the CLI
