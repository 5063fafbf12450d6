"""Shared helpers for the TUI tests: a small real workspace and waiting in Pilot."""

from __future__ import annotations

import time
from pathlib import Path

TINY_OVERRIDES = [
    "model.d_model=32",
    "model.n_layers=1",
    "model.n_heads=2",
    "model.context_length=64",
    "training.batch_size=4",
    "training.eval_interval=3",
    "training.eval_batches=2",
    "training.warmup_steps=1",
    "training.save_interval=100",
    "training.num_threads=1",
]


def make_workspace(root: Path, files: int = 200, tokenizer: bool = True) -> Path:
    """A workspace with a demo corpus (and a tokenizer trained on it), built by the core."""
    from tactics_core.gpt import demo
    from tactics_core.gpt import tokenizer as tok

    demo.write_demo_corpus(root / "data" / "proofs", files=files)
    if tokenizer:
        tok.train_tokenizer(root / "data" / "proofs", root / "checkpoints", vocab_size=300)
    return root


async def wait_for(pilot, condition, timeout: float = 30.0, what: str = "condition") -> None:
    """Let the app run until `condition()` holds (or fail after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await pilot.pause(0.1)
    await pilot.pause()  # let what the condition saw finish mounting (a pushed screen composes after it is current)


def notices(app) -> list[str]:
    return [n.message for n in app._notifications]


def screen_text(app) -> str:
    """Everything the current screen draws, as plain text (for asserting on content)."""
    from textual.widgets import Static, Label

    parts = []
    for widget in app.screen.query(Static):
        try:
            parts.append(str(widget.render()))
        except Exception:
            pass
    return "\n".join(parts)
