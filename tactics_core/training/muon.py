"""Muon for the transformer's matrices, AdamW for the rest, in one optimizer.

Why: on a 10-minute CPU budget the number of useful optimizer steps is the
limit. Muon (momentum, then an approximately orthogonalised update from a few
Newton-Schulz iterations) moves every direction of a weight matrix at the same
rate instead of letting a few large singular directions dominate, and reaches
a given loss in fewer steps than AdamW at this scale (measured in
docs/training.md). Embeddings, the tied output head and the RMSNorm gains are
not hidden matrices and stay on AdamW, as Muon's authors recommend.

One `torch.optim.Optimizer` holds both kinds of parameter group, so a
checkpoint's `optimizer` state (momentum buffers, Adam moments, step counts)
saves and restores with the usual `state_dict()` / `load_state_dict()`, and a
resumed run continues exactly.

Why not `torch.optim.Muon`: it takes 2-D parameters only, so it cannot treat
the stacked q/k/v projection (one tensor, kept for the original checkpoint
names) as the three matrices it is; it is a second optimizer beside AdamW,
which would change the checkpoint format; and it iterates in bfloat16, which
this class's CPUs lack a fast path for. For a plain matrix the update is the
same (tests/core/training/test_muon.py compares the two).

Each group carries `lr_scale`: the trainer's schedule sets
`group["lr"] = schedule_lr * group["lr_scale"]`, so the Muon groups follow the
same warmup and cosine decay at their own peak (`training.muon_lr`).
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

# Coefficients of the quintic Newton-Schulz iteration: chosen (by Muon's
# authors) to push all singular values of a normalised matrix towards ~1 fast,
# trading exactness for speed; the update does not need an exact orthogonal
# factor, only one with balanced singular values.
_NS_COEFFS = (3.4445, -4.7750, 2.0315)


def orthogonalize(grad: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """Approximate U V^T of grad = U S V^T (batched over leading dims)."""
    a, b, c = _NS_COEFFS
    x = grad.float()
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    tall = x.shape[-2] > x.shape[-1]
    if tall:  # iterate on the wide orientation: the Gram matrix is the smaller one
        x = x.mT
    for _ in range(steps):
        gram = x @ x.mT
        x = a * x + (b * gram + c * gram @ gram) @ x
    if tall:
        x = x.mT
    return x.to(grad.dtype)


class MuonAdamW(torch.optim.Optimizer):
    """Parameter groups with `muon=True` get Muon updates, the others AdamW.

    Muon group keys: lr, momentum, nesterov, weight_decay, split (orthogonalise
    the matrix as `split` stacked row blocks, e.g. 3 for the q/k/v projection).
    AdamW group keys: lr, betas, eps, weight_decay.
    """

    def __init__(self, groups: Iterable[dict[str, Any]]) -> None:
        defaults = dict(lr=1e-3, lr_scale=1.0, muon=False, momentum=0.95, nesterov=True, split=1,
                        betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
        super().__init__(list(groups), defaults)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - the torch.optim contract
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["muon"]:
                self._muon_step(group)
            else:
                self._adamw_step(group)
        return loss

    def _muon_step(self, group: dict[str, Any]) -> None:
        lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
        split = int(group["split"])
        # Momentum per matrix, then one batched Newton-Schulz per shape (the 4-16 small
        # matrices of a layer type become one batch of matmuls instead of many calls).
        by_shape: dict[tuple[int, ...], list[tuple[torch.Tensor, torch.Tensor]]] = {}
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p)
            buf = state["momentum_buffer"]
            buf.mul_(momentum).add_(p.grad)
            update = p.grad.add(buf, alpha=momentum) if group["nesterov"] else buf
            by_shape.setdefault(tuple(p.shape), []).append((p, update))
        for shape, items in by_shape.items():
            rows, cols = shape[0] // split, shape[1]
            stacked = torch.stack([u for _, u in items]).view(len(items) * split, rows, cols)
            ortho = orthogonalize(stacked).view(len(items), *shape)
            # An orthogonal rows x cols update has RMS ~ 1/sqrt(max(rows, cols)); this
            # factor makes tall and wide matrices move at comparable per-entry rates.
            scale = max(1.0, rows / cols) ** 0.5
            for (p, _), o in zip(items, ortho):
                if wd:  # the same decay per step as the AdamW groups: the schedule's lr x wd
                    p.mul_(1.0 - lr / group["lr_scale"] * wd)
                p.add_(o, alpha=-lr * scale)

    def _adamw_step(self, group: dict[str, Any]) -> None:
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "step" not in state:
                state["step"] = torch.zeros((), dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            state["step"] += 1
            t = float(state["step"])
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.lerp_(p.grad, 1.0 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
            bias1 = 1.0 - beta1 ** t
            bias2 = 1.0 - beta2 ** t
            denom = (exp_avg_sq / bias2).sqrt_().add_(eps)
            if wd:
                p.mul_(1.0 - lr * wd)
            p.addcdiv_(exp_avg, denom, value=-lr / bias1)


def muon_groups(model: torch.nn.Module, training: Any) -> list[dict[str, Any]]:
    """Split a GPT's parameters: block matrices to Muon, everything else to AdamW.

    The q/k/v projection is one stacked matrix; Muon orthogonalises its three
    blocks separately (`split = 3`), as three matrices they are.
    """
    muon_lr = float(training.muon_lr)
    lr = float(training.learning_rate)
    wd = float(training.weight_decay)
    qkv, matrices, adam_decay, adam_plain = [], [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("blocks.") and p.dim() == 2:
            (qkv if name.endswith("attn.qkv.weight") else matrices).append(p)
        elif p.dim() >= 2:
            adam_decay.append(p)
        else:
            adam_plain.append(p)
    muon = {"muon": True, "lr": muon_lr, "lr_scale": muon_lr / lr, "momentum": 0.95, "nesterov": True,
            "weight_decay": wd}
    betas = tuple(float(b) for b in training.betas)
    groups = [
        {"params": qkv, "split": 3, **muon},
        {"params": matrices, "split": 1, **muon},
        {"params": adam_decay, "lr": lr, "lr_scale": 1.0, "betas": betas, "weight_decay": wd},
        {"params": adam_plain, "lr": lr, "lr_scale": 1.0, "betas": betas, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]
