"""The scorer's preset sections (`kind = "scorer"`): its shape, its data, and its training defaults.

Plain dataclasses without torch, so presets load fast and the TUI's form can list the keys.
Each key is documented where it is defined (the doc is the comment `dumps_preset` writes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LOSSES = ("bce", "rank", "bce+rank")
SELECT_BY = ("val_loss", "used_rank")
BATCHES = ("rows", "searches")


def _key(default: Any, doc: str) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass
class ScorerModelSection:
    """The MLP acorn's prover runs on each activated step's feature vector."""

    hidden_size: int = _key(128, "width of each hidden layer (acorn's embedded scorer: 128)")
    hidden_layers: int = _key(3, "hidden Linear+ReLU layers (acorn's embedded scorer: 3)")
    dropout: float = _key(0.0, "dropout after each hidden layer while training, 0 <= dropout < 1")
    features: list = _key(
        [], "feature names to read, in this order (empty = every feature of the traces' catalog); the export names exactly these",
    )


@dataclass
class ScorerDataSection:
    """Which trace rows train, which validate, and how the loss weighs them."""

    val_buckets: str = _key("90-99", "goal buckets held out for validation (acorn's own validation buckets are 90-99)")
    train_buckets: str = _key("0-89", "goal buckets that train (never overlapping val_buckets)")
    negatives_per_positive: float = _key(
        0.0, "subsample the steps not used in the final proof to this many per used step, drawn anew each epoch (0 = keep all)",
    )
    loss: str = _key(
        "bce",
        "bce (each step: used in the final proof or not) | rank (within a search, the used steps above the others: "
        "softmax over the search's steps) | bce+rank (their sum, rank weighted by rank_weight)",
    )
    batches: str = _key(
        "rows",
        "rows (each batch a shuffle of the training rows, as acorn's trainer) | searches (each batch whole searches "
        "together; the ranking terms need it)",
    )
    rank_weight: float = _key(0.5, "weight of the ranking term in loss = bce+rank")
    pos_weight: float = _key(0.0, "weight of a used step in the BCE term (0 = negatives / positives of the training rows, as acorn's trainer)")
    max_train_rows: int = _key(
        0, "train on at most this many trace rows, whole searches, a stable sample (0 = all): the row budget that bounds memory",
    )
    max_val_rows: int = _key(0, "score at most this many validation rows per evaluation, whole searches, a stable sample (0 = all)")


# What a scorer preset's [training] keys default to where the file says nothing (the GPT's
# defaults are for a transformer on token streams; these are for a small MLP on rows).
TRAINING_DEFAULTS: dict[str, Any] = {
    "batch_size": 4096,
    "learning_rate": 2e-3,
    "min_lr": 1e-4,
    "warmup_steps": 20,
    "weight_decay": 1e-3,
    "grad_clip": 1.0,
    "epochs": 10,
    "max_steps": 0,
    "eval_interval": 100,
    "eval_batches": 0,
    "save_interval": 200,
    "keep_checkpoints": 2,
    "patience": 0,
    "select_by": "used_rank",
    "optimizer": "adamw",
}

# The [training] keys a scorer reads; the others are the GPT's and a scorer preset leaves them out.
TRAINING_KEYS = (
    "batch_size", "learning_rate", "min_lr", "warmup_steps", "weight_decay", "betas", "grad_clip",
    "grad_accum_steps", "epochs", "max_steps", "eval_interval", "eval_batches", "save_interval",
    "keep_checkpoints", "patience", "seed", "device", "num_threads", "precision", "select_by",
)

# Where a shared [training] key means something else for a scorer, its doc says so.
TRAINING_DOCS: dict[str, str] = {
    "batch_size": "trace rows per optimizer step (with data.batches = \"searches\", whole searches, so the ranking term sees each search's steps together)",
    "epochs": "passes over the training rows (used when max_steps = 0)",
    "eval_batches": "unused by the scorer (data.max_val_rows bounds an evaluation)",
    "patience": "stop after this many evaluations without a better select_by figure; 0 = train the whole schedule, keeping the best",
    "select_by": "val_loss | used_rank: what picks best_model.pt and drives early stopping (used_rank: lower is better)",
}
