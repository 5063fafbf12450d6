"""The GPT: parameter names and shapes, size, and the KV cache."""

from __future__ import annotations

import pytest
import torch

from tactics_core.gpt.model import GPT, GPTConfig
from tactics_core.training.presets import load_preset

torch.set_num_threads(1)


def small_config(**kw) -> GPTConfig:
    base = dict(vocab_size=97, context_length=24, d_model=32, n_layers=2, n_heads=4, dropout=0.0)
    base.update(kw)
    return GPTConfig(**base)


def expected_shapes(c: GPTConfig) -> dict[str, tuple[int, ...]]:
    """The original scripts' parameter names (issue 3) and their shapes."""
    d = c.d_model
    shapes = {
        "token_embedding.weight": (c.vocab_size, d),
        "position_embedding.weight": (c.context_length, d),
        "norm.weight": (d,),
    }
    for i in range(c.n_layers):
        shapes |= {
            f"blocks.{i}.norm1.weight": (d,),
            f"blocks.{i}.attn.qkv.weight": (3 * d, d),
            f"blocks.{i}.attn.proj.weight": (d, d),
            f"blocks.{i}.norm2.weight": (d,),
            f"blocks.{i}.mlp.fc1.weight": (4 * d, d),
            f"blocks.{i}.mlp.fc2.weight": (d, 4 * d),
        }
    return shapes


def test_parameter_names_and_shapes_are_the_original_scripts():
    config = small_config(n_layers=3)
    model = GPT(config)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert state == expected_shapes(config)  # exactly: no extra buffers, no lm_head copy
    assert model.blocks[0].norm1.eps == 1e-6


def test_forward_shapes_and_tied_output():
    config = small_config()
    model = GPT(config).eval()
    ids = torch.randint(0, config.vocab_size, (3, 10))
    logits, presents = model(ids)
    assert logits.shape == (3, 10, config.vocab_size)
    assert len(presents) == config.n_layers
    assert presents[0][0].shape == (3, config.n_heads, 10, config.head_dim)
    # Output projection is the token embedding: changing it changes the logits' basis.
    with torch.no_grad():
        model.token_embedding.weight[5].zero_()
    logits2, _ = model(ids[:, :1] * 0 + 7)
    assert torch.all(logits2[..., 5] == 0)


def test_default_preset_size_with_vocab_4096():
    preset = load_preset("default")
    config = preset.model.gpt_config(4096)
    model = GPT(config)
    d, L, V, T = config.d_model, config.n_layers, config.vocab_size, config.context_length
    formula = V * d + T * d + L * (12 * d * d + 2 * d) + d  # tied head, no biases
    assert model.num_parameters() == formula == 5_836_032  # "about 5.8M"


@pytest.mark.parametrize("batch", [1, 3])
def test_kv_cache_incremental_decode_equals_full_pass(batch):
    torch.manual_seed(0)
    config = small_config()
    model = GPT(config).eval()
    ids = torch.randint(0, config.vocab_size, (batch, config.context_length))
    with torch.no_grad():
        full, _ = model(ids)
        # Token by token from an empty cache (how the prover starts).
        cache = model.empty_cache(batch)
        steps = []
        for t in range(ids.shape[1]):
            out, cache = model(ids[:, t : t + 1], past_key_values=cache)
            steps.append(out)
        incremental = torch.cat(steps, dim=1)
        # A prompt chunk first, then a chunk of several tokens, then single tokens.
        out1, cache = model(ids[:, :7], past_key_values=model.empty_cache(batch))
        out2, cache = model(ids[:, 7:12], past_key_values=cache)
        out3, cache = model(ids[:, 12:], past_key_values=cache)
        chunked = torch.cat([out1, out2, out3], dim=1)
    torch.testing.assert_close(incremental, full, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(chunked, full, atol=1e-5, rtol=1e-4)
    assert cache[0][0].shape[2] == config.context_length


def test_empty_cache_equals_no_cache():
    config = small_config()
    model = GPT(config).eval()
    ids = torch.randint(0, config.vocab_size, (2, 9))
    with torch.no_grad():
        a, _ = model(ids)
        b, presents = model(ids, past_key_values=model.empty_cache(2))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert presents[0][0].shape[2] == 9


def test_context_overflow_is_refused():
    config = small_config(context_length=8)
    model = GPT(config).eval()
    with pytest.raises(ValueError, match="exceeds the context length 8"):
        model(torch.zeros(1, 9, dtype=torch.long))
    _, cache = model(torch.zeros(1, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="exceeds the context length"):
        model(torch.zeros(1, 1, dtype=torch.long), past_key_values=cache)


def test_causal_future_tokens_do_not_change_the_past():
    config = small_config()
    model = GPT(config).eval()
    ids = torch.randint(0, config.vocab_size, (1, 12))
    other = ids.clone()
    other[0, 8:] = (other[0, 8:] + 1) % config.vocab_size
    with torch.no_grad():
        a, _ = model(ids)
        b, _ = model(other)
    torch.testing.assert_close(a[:, :8], b[:, :8])
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_bad_shape_config_is_a_clear_error():
    from tactics_core.common.errors import TacticsError

    with pytest.raises(TacticsError, match=r"d_model \(30\) must be divisible by n_heads \(4\)"):
        GPT(small_config(d_model=30))


def test_attention_dropout_is_found_by_its_class():
    from tactics_core.gpt.kind import disable_attention_dropout

    class Lookalike(torch.nn.Module):  # has a `qkv` and a float dropout, but is no attention of ours
        def __init__(self) -> None:
            super().__init__()
            self.qkv = torch.nn.Linear(4, 12)
            self.dropout = 0.1

    model = torch.nn.ModuleDict({
        "gpt": GPT(GPTConfig(vocab_size=50, context_length=16, d_model=32, n_layers=2, n_heads=4, dropout=0.1)),
        "other": Lookalike(),
    })
    disable_attention_dropout(model)
    assert [b.attn.dropout for b in model["gpt"].blocks] == [0.0, 0.0]
    assert all(b.drop.p == 0.1 for b in model["gpt"].blocks) and model["gpt"].drop.p == 0.1  # residual dropout stays
    assert model["other"].dropout == 0.1
