"""The proof-step scorer: a small MLP over a step's feature vector, as acorn's prover runs it.

Why it looks like this: acorn (0.2.6) feeds its ONNX scorer `input` [batch, F] float32 and
reads `output` [batch, 1], the probability that the step is used in the final proof, and it
orders the passive set by that number. The standardization (means and scales of the
training rows) lives inside the graph as buffers, so the exported file is the whole model
and acorn needs nothing beside it but the feature names. Training reads logits
(`ScorerNet.forward`); the export wraps it in a sigmoid (`ProbabilityScorer`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

MIN_SCALE = 1e-6  # a constant feature keeps scale 1e-6 -> its standardized value is 0


@dataclass(frozen=True)
class ScorerConfig:
    """The scorer's shape and its input contract (what a checkpoint records as `model_config`)."""

    features: tuple[str, ...]
    hidden_size: int = 128
    hidden_layers: int = 3
    dropout: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["features"] = list(self.features)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ScorerConfig":
        return cls(
            features=tuple(d["features"]), hidden_size=int(d["hidden_size"]),
            hidden_layers=int(d["hidden_layers"]), dropout=float(d.get("dropout", 0.0)),
        )


class ScorerNet(nn.Module):
    """Standardize, then `hidden_layers` x (Linear, ReLU), then one logit."""

    def __init__(self, config: ScorerConfig) -> None:
        super().__init__()
        self.config = config
        width = len(config.features)
        self.register_buffer("feature_mean", torch.zeros(width))
        self.register_buffer("feature_scale", torch.ones(width))
        layers: list[nn.Module] = []
        size = width
        for _ in range(config.hidden_layers):
            layers += [nn.Linear(size, config.hidden_size), nn.ReLU()]
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            size = config.hidden_size
        layers.append(nn.Linear(size, 1))
        self.network = nn.Sequential(*layers)

    def set_standardization(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        """The training rows' mean and standard deviation per feature (computed once, before step 1)."""
        self.feature_mean.copy_(mean.float())
        self.feature_scale.copy_(scale.float().clamp_min(MIN_SCALE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [batch] of `x` [batch, F]."""
        return self.network((x - self.feature_mean) / self.feature_scale).squeeze(-1)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class ProbabilityScorer(nn.Module):
    """What acorn loads: `output` [batch, 1] = sigmoid(logit)."""

    def __init__(self, net: ScorerNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x)).unsqueeze(-1)
