"""What the Playground remembers, without Textual: the mode, the goal picked, the rollout, the candidates.

The screen and its panes draw from a `PlaygroundState` and change it only through its methods,
on the UI thread; the pure text edits of the goal (`with_line`, `without_proof`) and the free
mode's settings (`parse_settings`) are functions here too, so all of it is tested without an app
(tests/tui/test_playground_state.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tactics_core.common.errors import TacticsError
from tactics_core.gpt import prover_figures, prover_replica

PROVER_MODE, FREE_MODE = MODES = ("prover", "free")  # Playground modes, not layouts
FREE_ONLY = frozenset({"ask", "reset_proof"})  # actions of free mode
PROVER_ONLY = frozenset({"attempt", "accept", "reject", "new_rollout"})  # actions of prover mode


@dataclass
class Rollout:
    """The prover state of one goal: the core's ProverSession and what the user did with
    each attempt of the current rollout (verdicts: pending, accepted, rejected, failed, crash).

    Only the UI thread changes it, and never while an attempt job uses the session.
    """

    session: Any
    key: tuple[str, str]  # (model, goal context) it was built for
    kept_text: str  # the prompt's kept tokens, decoded: what the model is given
    limit: int = prover_figures.ROLLOUT_ATTEMPTS  # attempts per rollout
    number: int = 1  # rollouts started on this goal
    history: list[list[Any]] = field(default_factory=list)  # [attempt, verdict]

    @property
    def attempts(self) -> int:
        return len(self.history)

    @property
    def over(self) -> bool:
        """All attempts used, or a line the real prover crashes on (it would not go on)."""
        return self.attempts >= self.limit or bool(self.history and self.history[-1][1] == "crash")

    @property
    def pending(self) -> Any | None:
        if self.history and self.history[-1][1] == "pending":
            return self.history[-1][0]
        return None

    def took(self, attempt: Any) -> None:
        """A new attempt came back; one still waiting is rejected (the prover drops its copy)."""
        if self.pending is not None:
            self.history[-1][1] = "rejected"
        crash = not attempt.failed and prover_replica.crashes_acorn(attempt.text)
        self.history.append([attempt, "failed" if attempt.failed else "crash" if crash else "pending"])

    def accept(self) -> Any:
        attempt = self.pending
        if attempt is None:
            raise TacticsError("no attempt waiting to be accepted: ctrl+g samples one")
        self.session.accept(attempt)
        self.history[-1][1] = "accepted"
        return attempt

    def reject(self) -> Any:
        attempt = self.pending
        if attempt is None:
            raise TacticsError("no attempt waiting to be rejected: ctrl+g samples one")
        self.history[-1][1] = "rejected"
        return attempt

    def new(self) -> None:
        """Back to the goal's base state: the prompt only, no attempts."""
        self.session.reset()
        self.history.clear()
        self.number += 1

    def why_over(self) -> str | None:
        """Why no attempt may be sampled in this rollout (None: one may)."""
        if not self.over:
            return None
        crashed = self.history[-1][1] == "crash"
        why = "ended on a // line acorn crashes on" if crashed else f"used its {self.limit} attempts"
        return f"rollout {self.number} {why}; ctrl+r starts a new one"


@dataclass
class PlaygroundState:
    """Everything the Playground keeps between keys: which mode, which model's layout was read,
    the goal picked from the corpus (its gold proof), the rollout, the last candidates, and the
    one model kept loaded."""

    mode: str = PROVER_MODE
    mode_chosen: bool = False  # the user switched: a model's layout no longer picks the mode
    rollout: Rollout | None = None
    goal_edited: bool = False  # the goal text changed since the rollout was built
    reference: tuple[str, ...] | None = None  # the picked goal's corpus proof
    reference_context: str | None = None
    candidates: list[Any] = field(default_factory=list)
    last_result: Any = None
    completers: dict[str, Any] = field(default_factory=dict)  # one model kept in memory
    wanted_model: str | None = None
    layout_read: str | None = None  # the model whose layout was (being) read

    def allows(self, action: str) -> bool:
        """ctrl+g and ctrl+r mean one thing per mode; accept / reject exist in prover mode only."""
        if action in FREE_ONLY:
            return self.mode == FREE_MODE
        if action in PROVER_ONLY:
            return self.mode == PROVER_MODE
        return True

    def set_mode(self, mode: str) -> bool:
        """Switch to `mode`; True when it changed."""
        if mode not in MODES:
            raise ValueError(mode)
        changed, self.mode = mode != self.mode, mode
        return changed

    def toggled(self) -> str:
        """The other mode, chosen by the user: from now on a model's layout no longer picks it."""
        self.mode_chosen = True
        return FREE_MODE if self.mode == PROVER_MODE else PROVER_MODE

    def needs_prompt(self) -> bool:
        """Prover mode must (re)build the prompt: none yet, or the goal was edited."""
        return self.rollout is None or self.goal_edited

    def keep(self, model: str | None, completer: Any) -> None:
        """Keep `model` loaded, and no other (one model in memory)."""
        self.completers = {model: completer}

    def pick_goal(self, goal: Any) -> str:
        """A corpus goal picked: remember its proof, forget the candidates; the goal's text to edit."""
        self.reference = tuple(goal.proof or ())
        self.reference_context = goal.context_text()
        self.candidates = []
        return goal.context_text() + "@P\n"

    def edited(self) -> bool:
        """The goal text changed; True when a rollout is shown (it is now for the old text)."""
        if self.rollout is None:
            return False
        self.goal_edited = True
        return True

    def took_step(self, fresh: Rollout | None, attempt: Any) -> None:
        """A prover job's outcome: a new rollout (goal or model changed), and an attempt sampled."""
        if fresh is not None:
            self.rollout = fresh
            self.goal_edited = False
        if attempt is not None and self.rollout is not None:
            self.rollout.took(attempt)

    def shown_rollout(self, model: str | None) -> Rollout | None:
        """The rollout, if it is the chosen model's (another model's is not shown)."""
        r = self.rollout
        return None if r is None or r.key[0] != model else r

    def gold_lines(self, r: Rollout) -> tuple[str, ...] | None:
        """The picked goal's corpus proof, if the rollout is on that goal."""
        if self.reference is None or r.key[1] != self.reference_context:
            return None
        return self.reference

    def took_candidates(self, completion: Any) -> None:
        self.candidates = list(completion.candidates)
        self.last_result = completion

    def reference_line(self, done_lines: int) -> str | None:
        """The corpus's line after the `done_lines` the goal already has, if a goal was picked."""
        if self.reference is not None and done_lines < len(self.reference):
            return self.reference[done_lines]
        return None


def with_line(text: str, line: str) -> str:
    """The goal text with `line` appended to its proof (an `@P` added when it has none)."""
    text = text if text.endswith("\n") else text + "\n"
    if "\n@P\n" not in "\n" + text:
        text += "@P\n"
    return text + line.rstrip("\n") + "\n"


def without_proof(text: str) -> str | None:
    """The goal text with its proof lines cleared (None: it has no `@P`, nothing to clear)."""
    if "\n@P\n" not in "\n" + text:
        return None
    head = ("\n" + text).split("\n@P\n", 1)[0][1:]
    return head + "\n@P\n" if head else "@P\n"


def parse_settings(n: str, temperature: str, top_p: str) -> dict[str, Any]:
    """Free mode's N, temperature and top-p from their fields; a bad one is one TacticsError line."""

    def number(text: str, kind, lo, hi, name):
        text = text.strip()
        try:
            value = kind(text)
        except ValueError:
            raise TacticsError(f"{name} {text!r} is not a number") from None
        if not lo <= value <= hi:
            raise TacticsError(f"{name} must be between {lo} and {hi}, not {value}")
        return value

    return {
        "n": number(n, int, 1, 64, "N"),
        "temperature": number(temperature, float, 0.0, 5.0, "temperature"),
        "top_p": number(top_p, float, 0.01, 1.0, "top-p"),
    }
