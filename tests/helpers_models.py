"""Small trained models for the export / completion / evaluation tests.

`tiny_workspace()` builds, once per test process, a data folder (a real slice
of acornlib-2025-11 plus generated "family" goals whose proofs are learnable
from the goal), trains the real tokenizer on it and a tiny GPT for a few
hundred steps with a minimal loop, and saves a checkpoint in this project's
format next to its tokenizer.json. Later calls return the same paths.

Why generated families: a model this small learns them in seconds, so
next-line exact match on held-out theorems is > 0 for a trained model and 0
for an untrained one, which makes the evaluation test able to fail.
"""

from __future__ import annotations

import atexit
import functools
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from conftest import CORPORA, copy_slice

# Goal families: (goal, counterfactual, proof lines). {i} makes each theorem distinct.
FAMILIES = [
    ("a + b = b + a", "a + b != b + a", ["add_comm(a, b)", "b + a = a + b"]),
    ("a * 1 = a", "a * 1 != a", ["mul_one(a)"]),
    ("a - a = 0", "a - a != 0", ["sub_self(a)", "a + -a = 0"]),
    ("0 + a = a", "0 + a != a", ["zero_add(a)"]),
]
REAL_FILES = 40
FAMILY_FILES = 160
TRAIN_STEPS = 250


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


def _minimal_train(model, texts_ids: list[list[int]], sep: int, steps: int, batch: int, seed: int) -> float:
    """Plain next-token training on packed random windows; returns the last loss."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    rng = random.Random(seed)
    stream: list[int] = []
    for ids in texts_ids:
        stream += ids + [sep]
    ctx = model.config.context_length
    data = torch.tensor(stream, dtype=torch.long)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    loss = torch.tensor(0.0)
    for step in range(steps):
        starts = [rng.randrange(0, len(stream) - ctx - 1) for _ in range(batch)]
        x = torch.stack([data[s : s + ctx] for s in starts])
        y = torch.stack([data[s + 1 : s + ctx + 1] for s in starts])
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    return float(loss.detach())


def save_ours(path: Path, model, tokenizer, step: int, val_loss: float | None, val_fraction: float = 0.1) -> Path:
    from tactics_core.checkpoints import save_checkpoint

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
            "config": {"training": {"val_fraction": val_fraction}},
        },
    )


@functools.lru_cache(maxsize=None)
def tiny_workspace() -> TinyWorkspace:
    """Build (once per process) the tiny trained model described above."""
    import torch

    from tactics_core.corpus import iter_corpus
    from tactics_core.data import split_corpus
    from tactics_core.model import GPT, GPTConfig
    from tactics_core.tokenizer import load_tokenizer, train_tokenizer

    src = CORPORA / "acornlib-2025-11" / "proofs"
    if not src.is_dir():
        import pytest

        pytest.skip(f"shared corpus not found at {src}")
    root = Path(tempfile.mkdtemp(prefix="tactics-tiny-"))
    atexit.register(shutil.rmtree, root, True)
    data_dir = root / "data" / "proofs"
    copy_slice(src, data_dir, REAL_FILES)
    write_family_files(data_dir, FAMILY_FILES)
    ckpt_dir = root / "checkpoints"
    train_tokenizer(data_dir, ckpt_dir, vocab_size=400, kind="lines")
    tokenizer = load_tokenizer(ckpt_dir / "tokenizer.json")

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        config = GPTConfig(vocab_size=tokenizer.vocab_size, context_length=128, d_model=64, n_layers=2, n_heads=4, dropout=0.0)
        untrained = GPT(config).eval()
        save_ours(ckpt_dir / "untrained.pt", untrained, tokenizer, 0, None)
        model = GPT(config)
        train_files, _ = split_corpus(list(iter_corpus(data_dir)), 0.1)  # held-out theorems stay unseen
        texts = [pf.text() for pf in train_files]
        ids = tokenizer.encode_batch(texts)
        loss = _minimal_train(model, ids, tokenizer.eos_id, steps=TRAIN_STEPS, batch=16, seed=0)
        save_ours(ckpt_dir / "best_model.pt", model, tokenizer, TRAIN_STEPS, loss)
    finally:
        torch.set_num_threads(threads)
    return TinyWorkspace(root, data_dir, ckpt_dir / "best_model.pt", ckpt_dir / "untrained.pt", ckpt_dir / "tokenizer.json")


@functools.lru_cache(maxsize=None)
def tiny_export():
    """The tiny trained model exported once (ExportReport; folder at report.path)."""
    from tactics_core.export import export_model

    ws = tiny_workspace()
    return export_model(ws.checkpoint, ws.root / "export" / "tiny")
