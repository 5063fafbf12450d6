"""The model kinds the console trains, by name: the one place a preset's `kind` becomes the
implementation of `model_kind.TrainingKind` that the training loop drives."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model_kind import TrainingKind

KIND_NAMES = ("gpt", "scorer")


def training_kind(name: str) -> TrainingKind:
    """The implementation of a preset's `kind`."""
    if name == "scorer":
        from .scorer.kind import ScorerKind

        return ScorerKind()
    if name == "gpt":
        from .gpt_kind import GptKind

        return GptKind()
    from .errors import TacticsError

    raise TacticsError(f"unknown model kind {name!r}: one of {', '.join(KIND_NAMES)}")
