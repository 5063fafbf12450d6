"""The seam between the one training loop and the kinds of model it trains.

The loop (`train.py`) owns what every run shares: the schedule, gradient accumulation and
clipping, DDP, early stopping, checkpoints with exact resume, run folders and events. A
model kind owns what differs: what a run folder needs (the GPT's tokenizer), its data and
batches, its model, its loss, its validation figures, its live sample and what its
checkpoints record. Two kinds implement `TrainingKind`:

* `gpt_kind.GptKind` ("gpt"): the generative tactics GPT on a corpus of proof files;
* `scorer.kind.ScorerKind` ("scorer"): acorn's proof-step scorer on `acorn eval` traces.

`kinds.training_kind(name)` is the one place a preset's `kind` becomes an implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    import torch

    from tactics_core.training.distributed import DistHandle
    from tactics_core.training.presets import Preset, TrainingSection
    from tactics_core.common.progress import CancelToken, ProgressFn

@dataclass
class Evaluation:
    """One validation pass of a kind: `figures` (what `select_by` picks from, and what the
    session remembers for checkpoints), `event` (the kind's fields of the eval event) and
    whether it ran to the end (a stop request cuts it short: a partial figure would mislead)."""

    complete: bool
    figures: dict[str, float] = field(default_factory=dict)
    event: dict[str, Any] = field(default_factory=dict)
    empty: bool = False  # nothing to score (no validation rows)


class KindData(Protocol):
    """What the loop reads of a kind's data: the two splits (`data.Split`) and a summary."""

    train: Any
    val: Any

    def summary(self) -> dict[str, Any]: ...


class TrainingKind(Protocol):
    """What the training loop asks of a model kind."""

    name: str
    unit: str  # what a step's `tokens` count: "tokens" (GPT) or "rows" (scorer)
    reading_message: str  # what run.json says while the data is read

    def prepare_folder(self, checkpoint_dir: Path) -> None:
        """Rank 0, before the run: give the run folder what the kind needs (the GPT: the tokenizer)."""
        ...

    def check_folder(self, checkpoint_dir: Path) -> None:
        """Every rank, before the folder is claimed: fail early when the kind's inputs are missing."""
        ...

    def open(self, checkpoint_dir: Path, payload: dict[str, Any] | None, resume_path: Path | None) -> None:
        """Load and check what the run depends on (the GPT: its tokenizer, the checkpoint's must match)."""
        ...

    def read_data(self, preset: Preset, data_dir: Path, checkpoint_dir: Path, progress: ProgressFn | None,
                  cancel: CancelToken | None, dist: DistHandle) -> KindData: ...

    def build_model(self, preset: Preset, data: KindData) -> tuple[torch.nn.Module, Any]:
        """A fresh model (seeded by the loop) and its config (`to_dict()` goes into checkpoints)."""
        ...

    def load_weights(self, model: torch.nn.Module, state: dict[str, Any], source: str) -> None: ...

    def batch_size_of(self, batch: Any) -> int:
        """What a batch counts for throughput (tokens, rows)."""
        ...

    def batch_weight(self, batch: Any, training: TrainingSection) -> float:
        """The batch's share of the step's loss denominator."""
        ...

    def loss_sum(self, net: torch.nn.Module, batch: Any, training: TrainingSection, device: str, precision: str,
                 step: int) -> torch.Tensor:
        """The batch's loss summed (divided by the step's total weight by the loop)."""
        ...

    def empty_backward(self, net: torch.nn.Module, data: KindData, device: str, precision: str) -> None:
        """A rank with nothing to score still joins the gradient all-reduce (zero gradient)."""
        ...

    def evaluate(self, model: torch.nn.Module, data: KindData, training: TrainingSection, device: str,
                 precision: str, stop: Callable[[], bool], dist: DistHandle) -> Evaluation: ...

    def sample(self, model: torch.nn.Module, data: KindData) -> dict[str, Any] | None:
        """A live sample's event fields (prompt, text, expected), or None (the scorer has none)."""
        ...

    def start_fields(self) -> dict[str, Any]:
        """The start event's kind-specific fields (the GPT's tokenizer)."""
        ...

    def payload_fields(self, data: KindData) -> dict[str, Any]:
        """What every checkpoint of the run records beside the weights (tokenizer, layout; features)."""
        ...

    def oom_hint(self, preset: Preset) -> str:
        """What to lower when a step runs out of memory: the rest of "out of memory on DEVICE …"."""
        ...
