"""The original scripts' training recipe, rebuilt from our parts so a bench can measure it.

Ratios "x the original" mean something only when both sides ran in the same
sitting with the same threads (issue 14), so the benches train the original
way here instead of quoting a figure measured elsewhere. The recipe, as the
original scripts trained (the `default` preset holds their configuration):

* one proof file per row of context_length + 1 tokens (its text and end
  token, cut after the row), the rest of the row padded;
* the loss is the mean over EVERY target, pad tokens included (nothing masked);
* the original GPT shape (d_model 256, 6 layers, 8 heads, context 256,
  dropout 0.1, on the attention weights too: no fused-kernel trick);
* AdamW with their defaults (lr 3e-4, warmup 1,000 steps, cosine to 3e-5,
  weight decay 0.1, betas 0.9/0.95, gradient clip 1.0), batch 32;
* the `seed` tokenizer (their BPE recipe; our kind adds the 256 bytes and <EOS>).

It lives in bench/ so the core keeps only the recipe users run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

ORIGINAL_OVERRIDES = [  # the original defaults, on top of the `default` preset (which already holds them)
    "model.d_model=256", "model.n_layers=6", "model.n_heads=8", "model.context_length=256", "model.dropout=0.1",
    "training.batch_size=32", "training.learning_rate=0.0003", "training.optimizer=adamw",
]


def original_preset(overrides: list[str] | None = None):
    """The `default` preset with the original values pinned (plus `overrides`, for tiny test runs)."""
    from tactics_core.training.presets import apply_overrides, load_preset

    return apply_overrides(load_preset("default"), ORIGINAL_OVERRIDES + list(overrides or []))


class OriginalRows:
    """Each file of a split as one padded row (file layout tokens: text + end token)."""

    def __init__(self, cache: Any, file_indices: list[int], context_length: int, seed: int = 0) -> None:
        import numpy as np

        self.cache = cache
        self.row_len = int(context_length) + 1
        self.files = np.asarray(file_indices, dtype=np.int64)
        self.seed = seed
        lengths = cache.lengths[self.files]
        self.used = np.minimum(lengths, self.row_len)
        self.padding_fraction = 1.0 - float(self.used.sum()) / max(1, len(self.files) * self.row_len)

    def batches(self, batch_size: int, epoch: int = 0):
        """(inputs, targets, useful targets) per batch, in a shuffled order of (seed, epoch)."""
        import numpy as np
        import torch

        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.files))
        pad = self.cache.pad_id
        for k in range(0, len(order) - batch_size + 1, batch_size):
            rows = np.full((batch_size, self.row_len), pad, dtype=np.int64)
            for b, i in enumerate(order[k : k + batch_size]):
                toks = self.cache.file_tokens(int(self.files[i]))[: self.row_len]
                rows[b, : len(toks)] = toks
            x = torch.from_numpy(rows[:, :-1].copy())
            y = torch.from_numpy(rows[:, 1:].copy())
            yield x, y, int((rows[:, 1:] != pad).sum())


def load_original(corpus: Path, work: Path, preset: Any):
    """(train rows, val file indices, tokenizer, cache) of the corpus, file layout, seed tokenizer in `work`."""
    from tactics_core.gpt.data import is_validation_key, load_token_cache
    from tactics_core.gpt.tokenizer import load_tokenizer

    tok = load_tokenizer(work / "tokenizer.json")
    cache, _ = load_token_cache(corpus, tok, work / "cache", layout="file")
    frac = preset.training.val_fraction
    train_idx = [i for i, k in enumerate(cache.keys) if not is_validation_key(k, frac)]
    val_idx = [i for i, k in enumerate(cache.keys) if is_validation_key(k, frac)]
    return OriginalRows(cache, train_idx, preset.model.context_length, seed=preset.training.seed), val_idx, tok, cache


def train_original(
    corpus: Path,
    work: Path,
    preset: Any,
    max_steps: int,
    deadline: float | None = None,
    on_step: Callable[[dict], None] | None = None,
    total_steps: int | None = None,
    rows: OriginalRows | None = None,
) -> dict:
    """Train the original way for `max_steps` (or until time.monotonic() passes `deadline`).

    The schedule is the original's (warmup then cosine over `total_steps`,
    default max_steps). Writes `work/best_model.pt` (the final weights: in a
    short budget the original never reaches its first evaluation at step 500)
    in our checkpoint format, so `tactics_core.gpt.evaluate` scores it like ours.
    Returns {"steps", "params", "padding_fraction", "checkpoint"}.
    """
    import torch
    import torch.nn.functional as F

    from tactics_core.gpt.model import GPT
    from tactics_core.runs.checkpoints import save_checkpoint
    from tactics_core.training.loop import lr_at, make_optimizer, seed_everything

    m, t = preset.model, preset.training
    seed_everything(t.seed)
    if rows is None:
        rows, *_ = load_original(corpus, work, preset)
    from tactics_core.gpt.tokenizer import load_tokenizer

    tok = load_tokenizer(work / "tokenizer.json")
    model = GPT(m.gpt_config(tok.vocab_size))  # attention dropout stays on, as in the original
    model.train()
    opt = make_optimizer(model, t, "cpu")
    total = total_steps or max_steps
    step = epoch = 0
    done = False
    while not done:
        for x, y, useful in rows.batches(t.batch_size, epoch):
            lr = lr_at(step, total, t.warmup_steps, t.learning_rate, t.min_lr)
            for g in opt.param_groups:
                g["lr"] = lr
            logits, _ = model(x)
            nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
            loss = nll.mean()  # pads included, as the original trained
            loss.backward()
            useful_loss = float(nll.detach()[y.reshape(-1) != rows.cache.pad_id].mean())
            torch.nn.utils.clip_grad_norm_(model.parameters(), float(t.grad_clip))
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            if on_step:
                on_step({"step": step, "loss": float(loss.detach()), "useful_loss": useful_loss, "useful": useful, "tokens": int(y.numel()), "lr": lr})
            if step >= max_steps or (deadline is not None and time.monotonic() >= deadline):
                done = True
                break
        epoch += 1
    path = work / "best_model.pt"
    save_checkpoint(path, {
        "model": model.state_dict(), "model_config": model.config.to_dict(), "global_step": step,
        "tokenizer_path": str(work), "tokenizer_sha256": tok.sha256, "tokenizer_vocab_size": tok.vocab_size,
        "tokenizer_kind": tok.kind, "config": {"training": {"val_fraction": t.val_fraction, "layout": "file"}},
        "layout": "file",
    })
    return {"steps": step, "params": model.num_parameters(), "padding_fraction": rows.padding_fraction,
            "checkpoint": str(path)}
