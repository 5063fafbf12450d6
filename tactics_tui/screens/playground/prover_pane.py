"""The Playground's prover pane: the prompt as the prover keeps it, its cache, the rollout and the last attempt."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from tactics_core.gpt import corpus, prover_figures

from .state import Rollout


class ProverPane(Vertical):
    """Draws a `Rollout`; it holds no state of its own (the screen's `PlaygroundState` does).

    `KEYS` are the keys of prover mode. The screen binds them (a priority binding acts only
    in the focus chain, and the focus is on the goal's text area, outside this pane), and its
    actions call the rollout, then `show`.
    """

    KEYS = [
        Binding("ctrl+g", "attempt", "Attempt", priority=True),
        Binding("ctrl+y", "accept", "Accept", priority=True),
        Binding("ctrl+n", "reject", "Reject", priority=True),
        # Named on screen (the rollout line), so that the footer keeps room for 1-6, e and q at 80 columns.
        Binding("ctrl+r", "new_rollout", "New rollout", priority=True, show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Static("", markup=False, id="play-prompt-info")
        with VerticalScroll(id="play-cache"):
            yield Static("", markup=False, id="play-cache-text")
        yield Static("", markup=False, id="play-attempt")

    def show(self, r: Rollout | None, goal_edited: bool = False, gold: tuple[str, ...] | None = None) -> None:
        """Prompt facts, the cache as text, the rollout and the last attempt (None: how to start)."""
        info = self.query_one("#play-prompt-info", Static)
        cache = self.query_one("#play-cache-text", Static)
        panel = self.query_one("#play-attempt", Static)
        if r is None:
            info.update("The prover's prompt: ctrl+l picks a goal (or paste one above), ctrl+g samples an attempt.")
            cache.update("")
            panel.update("")
            return
        info.update(prompt_info(r.session.prompt) + (" · goal edited: ctrl+g rebuilds" if goal_edited else ""))
        cache.update(cache_text(r))
        self.query_one("#play-cache", VerticalScroll).scroll_end(animate=False)
        panel.update(attempt_text(r, gold))


def prompt_info(prompt: Any) -> str:
    """One line: the prompt's size as the prover keeps it, and what its front truncation cut."""
    kept = f"prompt {len(prompt.ids)} tokens (context only, no @P)"
    if not prompt.cut_tokens:
        return kept + " · nothing cut"
    return f"{kept} · cut {prompt.cut_tokens} of {prompt.full_tokens} from the front: «{preview(prompt.cut_text)}»"


def preview(text: str, width: int = 28) -> str:
    """A short one-line look at a text: its start and end, newlines as ⏎."""
    text = text.replace("\n", "⏎")
    if len(text) <= width:
        return text
    head = width * 2 // 3
    return text[:head] + "…" + text[-(width - head - 1):]


def cache_text(r: Rollout) -> Text:
    """What the prover's cache holds: the kept prompt, then ⏎ (the newline token it feeds)
    and each accepted line, then the attempt waiting for a verdict."""
    text = Text(r.kept_text, style="dim")
    for attempt, verdict in r.history:
        if verdict == "accepted":
            text.append("⏎ ", style="dim")
            text.append(attempt.text + "\n", style="bold green")
    pending = r.pending
    if pending is not None:
        text.append("⏎ ", style="dim")
        text.append(pending.text, style="reverse")
        text.append("  ← accept (ctrl+y) or reject (ctrl+n)", style="italic")
    return text


STATUS_WORDS = {
    "line": "a line",
    "max_tokens": f"no newline within {prover_figures.MAX_LINE_TOKENS} tokens",
    "empty": "empty: a failed attempt",
    "context_limit": "no room left: a failed attempt",
}


def attempt_text(r: Rollout, gold: tuple[str, ...] | None) -> str:
    """Three lines: where the rollout is, the last attempt and its fate, the corpus's next line."""
    session = r.session
    accepted = sum(1 for _, v in r.history if v == "accepted")
    lines = [
        f"rollout {r.number} (ctrl+r: new) · attempt {r.attempts}/{r.limit}"
        + (" (over)" if r.over and r.pending is None else "")
        + f" · {accepted} accepted · room {session.room} of {session.context_length}"
    ]
    if r.history:
        attempt, verdict = r.history[-1]
        what = STATUS_WORDS.get(attempt.status, attempt.status)
        fate = {"pending": "", "accepted": " · accepted", "rejected": " · rejected", "failed": "",
                "crash": " · acorn f47631b0 crashes on a // line"}[verdict]
        shown = one_line(attempt.text, 50) if attempt.text.strip() else "(nothing)"
        lines.append(f"attempt {r.attempts}: {shown}  [{what}, {len(attempt.tokens)} tokens{fate}]")
    else:
        lines.append("ctrl+g samples an attempt (one line, the prover's way)")
    if gold is not None:
        i = len(session.accepted)
        if i < len(gold):
            pending = r.pending
            same = pending is not None and corpus.normalize_line(pending.text) == corpus.normalize_line(gold[i])
            lines.append(f"corpus line {i + 1} of {len(gold)}: {gold[i].strip()}" + ("  (= the attempt)" if same else ""))
        else:
            lines.append(f"the corpus proof has {len(gold)} line(s); all accepted lines are past it")
    return "\n".join(lines)


def one_line(text: str, width: int = 74) -> str:
    """One row of a list: newlines shown as spaces, cut to `width` with an ellipsis."""
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"
