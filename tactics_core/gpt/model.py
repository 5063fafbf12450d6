"""The tactics GPT, in one readable file.

A decoder-only transformer as the original scripts defined it: learned
position embeddings, pre-norm RMSNorm blocks (eps 1e-6), causal
self-attention through PyTorch's fused `scaled_dot_product_attention`, an
exact-GELU MLP of 4 x d_model, no biases, and the output projection tied to
the token embedding. Parameter names match the original scripts so that their
checkpoints load unchanged (see `load_compatible_state_dict`).

Generation uses a KV cache: `forward` takes the keys/values of the tokens
already seen (`past_key_values`, one (key, value) pair per layer, each
[batch, n_heads, past_seq, head_dim]) and returns them extended by the new
tokens. An empty cache (past_seq = 0) is valid, which is how the prover starts.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from tactics_core.common.errors import TacticsError
from tactics_core.gpt.model_config import GPTConfig  # noqa: F401  (defined apart so that presets need no torch)
from tactics_core.gpt.prover_replica import GUARD_PENALTY
from tactics_core.gpt.prover_replica import CrashRule

KeyValue = tuple[torch.Tensor, torch.Tensor]


class RMSNorm(nn.Module):
    """Root-mean-square layer norm with a learned scale and no bias."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def _tracing() -> bool:
    """True while an exporter traces the model: then no branch may depend on sizes."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.compiler.is_exporting()


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention; q, k, v stacked in that order in `qkv`."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.head_dim = config.head_dim
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)

    def forward(self, x: torch.Tensor, past: KeyValue | None = None) -> tuple[torch.Tensor, KeyValue]:
        batch, seq, d_model = x.shape
        q, k, v = self.qkv(x).split(d_model, dim=2)
        q = q.view(batch, seq, self.n_heads, self.head_dim).transpose(1, 2)
        k = k.view(batch, seq, self.n_heads, self.head_dim).transpose(1, 2)
        v = v.view(batch, seq, self.n_heads, self.head_dim).transpose(1, 2)
        dropout = self.dropout if self.training else 0.0
        if past is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        elif not _tracing() and seq == 1:
            # One new token (generation): it may see every cached key, so no mask at all.
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        else:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
            # Query i sits at absolute position past_len + i and sees keys 0..past_len + i.
            # Built from tensor shapes only, so it traces for any past_len (0 included).
            total = k.shape[2]
            past_len = total - seq
            rows = torch.arange(seq, device=x.device).unsqueeze(1) + past_len
            cols = torch.arange(total, device=x.device).unsqueeze(0)
            mask = cols <= rows
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        y = y.transpose(1, 2).contiguous().view(batch, seq, d_model)
        return self.proj(y), (k, v)


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.d_model, config.d_mlp, bias=False)
        self.fc2 = nn.Linear(config.d_mlp, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.norm1 = RMSNorm(config.d_model)
        self.attn = CausalSelfAttention(config)
        self.norm2 = RMSNorm(config.d_model)
        self.mlp = MLP(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, past: KeyValue | None = None) -> tuple[torch.Tensor, KeyValue]:
        attn_out, present = self.attn(self.norm1(x), past)
        x = x + self.drop(attn_out)
        x = x + self.drop(self.mlp(self.norm2(x)))
        return x, present


class GPT(nn.Module):
    """Decoder-only GPT with tied input/output embeddings and a KV cache."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.position_embedding = nn.Embedding(config.context_length, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.d_model)
        self.apply(self._init_weights)
        # GPT-2 style: scale residual projections by depth so the stream stays O(1).
        for name, param in self.named_parameters():
            if name.endswith("attn.proj.weight") or name.endswith("mlp.fc2.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        input_ids: torch.Tensor,
        past_key_values: list[KeyValue] | None = None,
        select: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[KeyValue]]:
        """Logits [batch, seq, vocab] and the updated cache (one (k, v) per layer).

        Without `past_key_values` this is the plain training pass (fused causal
        attention). With it, even an empty one, positions continue after the
        cached tokens. `select` (flat indices into batch * seq) asks for the logits
        of those positions only, [N, vocab]: the trainer's loss reads a fraction of
        them, and the output layer is a third of a small model's step.
        """
        seq = input_ids.shape[1]
        past_len = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        if not _tracing():
            if past_len + seq > self.config.context_length:
                raise ValueError(
                    f"sequence of {past_len + seq} tokens exceeds the context length "
                    f"{self.config.context_length}"
                )
        positions = torch.arange(seq, device=input_ids.device) + past_len
        x = self.token_embedding(input_ids) + self.position_embedding(positions)
        x = self.drop(x)
        presents: list[KeyValue] = []
        for i, block in enumerate(self.blocks):
            past = None if past_key_values is None else past_key_values[i]
            x, present = block(x, past)
            presents.append(present)
        if select is not None:
            x = x.reshape(-1, x.shape[-1]).index_select(0, select)
        x = self.norm(x)
        logits = F.linear(x, self.token_embedding.weight)
        return logits, presents

    def empty_cache(self, batch: int = 1, device: torch.device | str | None = None) -> list[KeyValue]:
        """A cache with past_seq = 0, as the prover starts."""
        device = device or self.token_embedding.weight.device
        shape = (batch, self.config.n_heads, 0, self.config.head_dim)
        dtype = self.token_embedding.weight.dtype
        return [
            (torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype))
            for _ in range(self.config.n_layers)
        ]


class CrashGuard(nn.Module):
    """Lowers the logits of the tokens that would write a line acorn f47631b0 dies on.

    `prover_replica.CrashRule` says which; the rule is a function of the token fed at
    each position, so it travels inside the ONNX export:
    `forward(input_ids, logits)` -> the logits to sample from.
    """

    def __init__(self, rule, penalty: float) -> None:
        super().__init__()
        self.penalty = float(penalty)
        for name in ("banned", "ends_slash", "starts_slash", "line_start", "bad_first"):
            self.register_buffer(name, torch.as_tensor(getattr(rule, name), dtype=torch.bool), persistent=False)

    @classmethod
    def for_tokenizer(cls, tokenizer) -> "CrashGuard":
        """The guard of one tokenizer's vocabulary (the rule: `prover_replica.CrashRule.of`)."""
        return cls(CrashRule.of(tokenizer), GUARD_PENALTY).eval()

    def forward(self, input_ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        after_slash = self.ends_slash[input_ids].unsqueeze(-1) & self.starts_slash  # [batch, seq, vocab]
        first = self.line_start[input_ids].unsqueeze(-1) & self.bad_first
        return logits - (after_slash | first | self.banned).to(logits.dtype) * self.penalty


# Keys the original scripts' state dicts may carry that are not parameters here.
_IGNORED_SUFFIXES = (".attn.mask", ".attn.bias")


def clean_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the original scripts' mask buffers, a tied `lm_head.weight`, and
    `_orig_mod.` / `module.` prefixes (torch.compile / DataParallel)."""
    cleaned: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        for prefix in ("_orig_mod.", "module."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        if key.endswith(_IGNORED_SUFFIXES) or key == "lm_head.weight":
            continue
        cleaned[key] = value
    return cleaned


def load_compatible_state_dict(model: GPT, state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load weights from this project's or the original scripts' checkpoints.

    Raises TacticsError naming the first mismatching tensor, e.g. a vocab size
    from another tokenizer.
    """
    cleaned = clean_state_dict(state_dict)
    own = model.state_dict()
    missing = [k for k in own if k not in cleaned]
    unexpected = [k for k in cleaned if k not in own]
    if missing or unexpected:
        raise TacticsError(
            f"{source}: weights do not fit this model "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}); was it written by another program?"
        )
    for key, tensor in cleaned.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise TacticsError(
                f"{source}: tensor {key} has shape {tuple(tensor.shape)} but the model expects "
                f"{tuple(own[key].shape)} (model config and weights disagree)"
            )
    model.load_state_dict(cleaned, strict=True)
