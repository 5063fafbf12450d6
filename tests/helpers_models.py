"""Small trained models for the export / completion / evaluation tests.

`tiny_workspace()` builds, once per test process, a data folder (a real slice
of acornlib-2025-11 plus generated "family" goals whose proofs are learnable
from the goal), trains the real tokenizer on it and a tiny GPT for 250 steps
with the real trainer (`tactics_core.training.loop`), so checkpoints are exactly what
`tactics train` writes. Later calls return the same paths.

Why generated families: a model this small learns them in seconds, so
next-line exact match on held-out theorems is > 0 for a trained model and 0
for an untrained one, which makes the evaluation test able to fail.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from conftest import CORPORA, copy_slice

from tactics_core.gpt.data import DEFAULT_VAL_FRACTION

# Goal families: (goal, counterfactual, proof lines). {i} makes each theorem distinct.
FAMILIES = [
    ("a + b = b + a", "a + b != b + a", ["add_comm(a, b)", "b + a = a + b"]),
    ("a * 1 = a", "a * 1 != a", ["mul_one(a)"]),
    ("a - a = 0", "a - a != 0", ["sub_self(a)", "a + -a = 0"]),
    ("0 + a = a", "0 + a != a", ["zero_add(a)"]),
]
REAL_FILES = 40
FAMILY_FILES = 160
# The built-in `tiny` preset made smaller and faster: ~250 steps learn the families.
TRAIN_OVERRIDES = {
    "model.d_model": 64,
    "model.n_layers": 2,
    "model.n_heads": 4,
    "model.context_length": 128,
    "model.dropout": 0.0,
    "training.batch_size": 16,
    "training.grad_accum_steps": 1,
    "training.grad_clip": 1.0,
    "training.seed": 1337,
    "training.learning_rate": 0.003,
    "training.min_lr": 0.0003,
    "training.warmup_steps": 20,
    "training.weight_decay": 0.0,
    "training.max_steps": 250,
    "training.eval_interval": 250,
    "training.eval_batches": 4,
    "training.save_interval": 1000,
    "training.patience": 100,
    "training.num_threads": 1,
    "training.device": "cpu",
}


def family_text(i: int) -> str:
    goal, cf, proof = FAMILIES[i % len(FAMILIES)]
    lines = [
        "@T",
        f"theorem fam_{i}(a: Nat, b: Nat) {{",
        "@G",
        f"    {goal}",
        "@C",
        cf,
        "@P",
        *proof,
    ]
    return "".join(line + "\n" for line in lines)


def write_family_files(dest: Path, n: int, start: int = 0) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        (dest / f"proof_fam_{i:05d}.txt").write_text(family_text(i), encoding="utf-8")


@dataclass(frozen=True)
class TinyWorkspace:
    root: Path
    data_dir: Path
    checkpoint: Path  # ours, trained
    untrained: Path  # same shape and tokenizer, random weights
    tokenizer: Path


def save_ours(path: Path, model, tokenizer, step: int, val_loss: float | None, val_fraction: float = DEFAULT_VAL_FRACTION,
              split: str = "theorem") -> Path:
    from tactics_core.runs.checkpoints import save_checkpoint

    return save_checkpoint(
        path,
        {
            "model": model.state_dict(),
            "model_config": model.config.to_dict(),
            "global_step": step,
            "epoch": 0,
            "val_loss": val_loss,
            "best_val_loss": val_loss,
            "tokenizer_path": str(tokenizer.path.parent),
            "tokenizer_sha256": tokenizer.sha256,
            "tokenizer_vocab_size": tokenizer.vocab_size,
            "tokenizer_kind": tokenizer.kind,
            "config": {"training": {"val_fraction": val_fraction, "split": split}},
        },
    )


@functools.lru_cache(maxsize=None)
def tiny_workspace(layout: str = "file") -> TinyWorkspace:
    """Build (once per process and layout) the tiny trained model described above, with the real trainer.

    `layout` "file" (the original scripts' whole-file format: what the completion,
    export and evaluation tests of that engine use) or "prover" (the default
    layout: the prover's token stream).
    """
    import torch

    from tactics_core.gpt.model import GPT, GPTConfig
    from tactics_core.gpt.tokenizer import load_tokenizer, train_tokenizer
    from tactics_core.training.loop import train
    from tactics_core.training.presets import apply_overrides, load_preset

    src = CORPORA / "acornlib-2025-11" / "proofs"
    if not src.is_dir():
        import pytest

        pytest.skip(f"shared corpus not found at {src}")
    root = Path(tempfile.mkdtemp(prefix=f"tactics-tiny-{layout}-"))
    atexit.register(shutil.rmtree, root, True)
    data_dir = root / "data" / "proofs"
    copy_slice(src, data_dir, REAL_FILES)
    write_family_files(data_dir, FAMILY_FILES)
    ckpt_dir = root / "checkpoints"
    train_tokenizer(data_dir, ckpt_dir, vocab_size=400, kind="lines")
    tokenizer = load_tokenizer(ckpt_dir / "tokenizer.json")

    threads = torch.get_num_threads()
    try:
        overrides = [f"{k}={v}" for k, v in TRAIN_OVERRIDES.items()] + [f"training.layout={layout}"]
        preset = apply_overrides(load_preset("tiny", root / "presets"), overrides)
        result = train(preset, data_dir, ckpt_dir, handle_signals=False)
        assert result.reason == "finished", result
        torch.manual_seed(0)
        config = GPTConfig(vocab_size=tokenizer.vocab_size, context_length=128, d_model=64, n_layers=2, n_heads=4, dropout=0.0)
        save_ours(ckpt_dir / "untrained.pt", GPT(config).eval(), tokenizer, 0, None)
    finally:
        torch.set_num_threads(threads)
    return TinyWorkspace(root, data_dir, ckpt_dir / "best_model.pt", ckpt_dir / "untrained.pt", ckpt_dir / "tokenizer.json")


@functools.lru_cache(maxsize=None)
def tiny_export(layout: str = "file"):
    """The tiny trained model exported once (ExportReport; folder at report.path)."""
    from tactics_core.gpt.export import export_model

    ws = tiny_workspace(layout)
    return export_model(ws.checkpoint, ws.root / "export" / "tiny")
