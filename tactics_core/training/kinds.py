"""The model kinds the console trains, by name: the one place a kind's name becomes its
implementation — the `model_kind.TrainingKind` the training loop drives, and the export of a
checkpoint of that kind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tactics_core.gpt.export import ExportReport
    from tactics_core.training.model_kind import TrainingKind
    from tactics_core.common.progress import CancelToken, ProgressFn

KIND_NAMES = ("gpt", "scorer")


def training_kind(name: str) -> TrainingKind:
    """The implementation of a preset's `kind`."""
    if name == "scorer":
        from tactics_core.scorer.kind import ScorerKind

        return ScorerKind()
    if name == "gpt":
        from tactics_core.gpt.kind import GptKind

        return GptKind()
    from tactics_core.common.errors import TacticsError

    raise TacticsError(f"unknown model kind {name!r}: one of {', '.join(KIND_NAMES)}")


def default_output_dir(kind: str, export_root: str | os.PathLike) -> Path:
    """The new export folder under `export_root` for a checkpoint of `kind`: `tactics-DATE` for the
    GPT, `scorer-DATE` for a scorer (what `export_checkpoint` picks, under `export/`, without one)."""
    if kind == "scorer":
        from tactics_core.scorer.export import default_output_dir as scorer_dir

        return scorer_dir(export_root)
    from tactics_core.gpt.export import default_output_dir as gpt_dir

    return gpt_dir(export_root)


def export_checkpoint(
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    crash_guard: bool = True,
) -> ExportReport:
    """Export a checkpoint the way its kind is exported: the GPT's export folder for acorn
    f47631b0 (`export.export_model`), a scorer's NAME.onnx + NAME.features.json for acorn 0.2.6
    (`scorer.export.export_scorer`). `crash_guard` is the GPT's."""
    from tactics_core.runs.checkpoints import checkpoint_kind

    if checkpoint_kind(checkpoint) == "scorer":
        from tactics_core.scorer.export import export_scorer

        return export_scorer(checkpoint, output_dir, progress=progress, cancel=cancel)
    from tactics_core.gpt.export import export_model

    return export_model(checkpoint, output_dir, progress=progress, cancel=cancel, crash_guard=crash_guard)
