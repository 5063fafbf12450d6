"""Muon: the orthogonalised update, the parameter split, and that it learns."""

from __future__ import annotations

import torch

from tactics_core.gpt.model import GPT, GPTConfig
from tactics_core.training.muon import MuonAdamW, muon_groups, orthogonalize
from tactics_core.training.presets import apply_overrides, load_preset


def test_orthogonalize_balances_singular_values():
    torch.manual_seed(0)
    # A badly conditioned matrix: singular values from 1e-3 to 10.
    u, _ = torch.linalg.qr(torch.randn(64, 64))
    v, _ = torch.linalg.qr(torch.randn(256, 64))
    g = u @ torch.diag(torch.logspace(-3, 1, 64)) @ v.T
    for matrix in (g, g.T):  # wide and tall
        s = torch.linalg.svdvals(orthogonalize(matrix))
        # Approximate on purpose (5 iterations): large directions land near 1, the tiniest
        # rise by orders of magnitude without reaching it. The input's condition number is 1e4.
        assert s.max() < 1.3, s
        assert s.max() / s.min() < 100, s
        assert (s > 0.5).float().mean() > 0.5, s


def test_orthogonalize_is_batched_per_block():
    torch.manual_seed(0)
    blocks = torch.randn(3, 16, 16) * torch.tensor([1.0, 100.0, 0.01]).view(3, 1, 1)
    out = orthogonalize(blocks)
    norms = out.norm(dim=(-2, -1))
    assert torch.allclose(norms, norms[0].expand(3), rtol=0.1)  # each block normalised on its own


def _model_and_preset(optimizer: str):
    preset = apply_overrides(load_preset("tiny"), [f"training.optimizer={optimizer}", "training.learning_rate=0.003"])
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, context_length=32, d_model=32, n_layers=2, n_heads=2, dropout=0.0))
    return model, preset


def test_matrices_go_to_muon_and_the_rest_to_adamw():
    model, preset = _model_and_preset("muon")
    groups = muon_groups(model, preset.training)
    names = {id(p): n for n, p in model.named_parameters()}
    muon = [names[id(p)] for g in groups if g.get("muon") for p in g["params"]]
    adam = [names[id(p)] for g in groups if not g.get("muon") for p in g["params"]]
    assert sorted(muon) == sorted(n for n, p in model.named_parameters() if n.startswith("blocks.") and p.dim() == 2)
    assert "token_embedding.weight" in adam and "norm.weight" in adam
    assert len(muon) + len(adam) == len(list(model.parameters()))
    (qkv,) = [g for g in groups if any(p is model.blocks[0].attn.qkv.weight for p in g["params"])]
    assert qkv["split"] == 3 and qkv["muon"] and len(qkv["params"]) == 2  # both layers' q/k/v


def test_muon_learns_a_repeating_pattern():
    """A tiny model memorises a fixed sequence; Muon gets the loss down like AdamW does."""
    torch.manual_seed(1)
    data = torch.randint(0, 64, (4, 33))
    final = {}
    for optimizer in ("adamw", "muon"):
        model, preset = _model_and_preset(optimizer)
        groups = muon_groups(model, preset.training) if optimizer == "muon" else None
        opt = MuonAdamW(groups) if groups else torch.optim.AdamW(model.parameters(), lr=0.003)
        for _ in range(60):
            logits, _ = model(data[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 64), data[:, 1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
        final[optimizer] = float(loss.detach())
    assert final["muon"] < 1.0, final  # from ln(64) = 4.16
    assert final["muon"] < 1.5 * final["adamw"] + 0.05, final


def test_a_plain_matrix_moves_as_with_torch_optim_muon():
    """The same update as PyTorch's reference Muon (Keller's shape factor), which iterates
    Newton-Schulz in bfloat16: equal to within that precision."""
    torch.manual_seed(0)
    for shape in [(64, 32), (32, 64)]:
        w0 = torch.randn(*shape)
        mine_p, ref_p = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
        mine = MuonAdamW([{"params": [mine_p], "muon": True, "lr": 0.02, "lr_scale": 1.0, "split": 1,
                           "weight_decay": 0.0}])
        ref = torch.optim.Muon([ref_p], lr=0.02, weight_decay=0.0, adjust_lr_fn="original")
        for _ in range(3):
            g = torch.randn(*shape)
            mine_p.grad, ref_p.grad = g.clone(), g.clone()
            mine.step()
            ref.step()
        moved = (ref_p - w0).detach()
        assert float((mine_p - ref_p).detach().norm() / moved.norm()) < 0.03
