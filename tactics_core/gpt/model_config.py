"""The model's shape, `GPTConfig`, apart from the model so that reading it never imports torch.

The presets (`presets.ModelSection`) take their defaults from it, and loading
a preset must stay instant for the CLI and the TUI; importing torch takes a
second or more. `tactics_core.gpt.model` re-exports it, so
`from tactics_core.gpt.model import GPTConfig` keeps working.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from tactics_core.common.errors import TacticsError


@dataclass
class GPTConfig:
    """Model shape. Defaults are the original scripts' configuration."""

    vocab_size: int = 4096
    context_length: int = 256
    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 8
    dropout: float = 0.1

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def d_mlp(self) -> int:
        return 4 * self.d_model

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # Names the original scripts (or other tools) used for the same fields.
    _ALIASES = {
        "n_layer": "n_layers",
        "n_head": "n_heads",
        "n_embd": "d_model",
        "block_size": "context_length",
        "max_seq_len": "context_length",
        "max_len": "context_length",
    }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GPTConfig":
        """Build from a saved config, accepting the original scripts' key names."""
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            key = cls._ALIASES.get(key, key)
            if key in known:
                kwargs[key] = value
        config = cls(**kwargs)
        config.validate()
        return config

    def validate(self) -> None:
        if self.d_model % self.n_heads:
            raise TacticsError(
                f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})"
            )
        for name in ("vocab_size", "context_length", "d_model", "n_layers", "n_heads"):
            if getattr(self, name) <= 0:
                raise TacticsError(f"model.{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise TacticsError(f"model.dropout must be in [0, 1), got {self.dropout}")
