"""Checkpoint files: atomic writes under kill -9, damaged files, the original
scripts' format, tokenizer checks, retention, and `tactics checkpoints --json`."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tactics_core.cli import main
from tactics_core.common.errors import TacticsError
from tactics_core.gpt.model import GPT, GPTConfig
from tactics_core.runs import checkpoints as C

from conftest import REPO

torch.set_num_threads(1)


def make_tokenizer(path: Path, vocab_size: int, texts: list[str]) -> Path:
    """A small byte-level BPE tokenizer.json like the original scripts' (built here, fast)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<UNK>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<UNK>", "<PAD>", "<EOS>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


TEXTS = [
    "theorem add_comm(a: Nat, b: Nat) { a + b = b + a }\n@P\nadd_comm(a, b)\n",
    "theorem mul_one(a: Nat) { a * 1 = a }\n@P\nmul_one(a)\n",
] * 20


def small_model(vocab: int = 300, **kw) -> GPT:
    cfg = dict(vocab_size=vocab, context_length=16, d_model=32, n_layers=2, n_heads=4, dropout=0.0)
    cfg.update(kw)
    return GPT(GPTConfig(**cfg))


def ours(model: GPT, step: int, **extra) -> dict:
    payload = {"model": model.state_dict(), "model_config": model.config.to_dict(), "global_step": step}
    payload.update(extra)
    return payload


# ---------------------------------------------------------------- the original scripts' model


class OrigAttention(nn.Module):
    """Attention as the original scripts wrote it: explicit mask buffer, softmax."""

    def __init__(self, d: int, h: int, ctx: int) -> None:
        super().__init__()
        self.h = h
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.register_buffer("mask", torch.tril(torch.ones(ctx, ctx)).view(1, 1, ctx, ctx))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.h, d // self.h).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.h)
        att = att.masked_fill(self.mask[:, :, :t, :t] == 0, float("-inf")).softmax(-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, d))


class OrigRMSNorm(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class OrigMLP(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d, 4 * d, bias=False)
        self.fc2 = nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="none"))


class OrigBlock(nn.Module):
    def __init__(self, d, h, ctx):
        super().__init__()
        self.norm1, self.attn = OrigRMSNorm(d), OrigAttention(d, h, ctx)
        self.norm2, self.mlp = OrigRMSNorm(d), OrigMLP(d)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class OrigGPT(nn.Module):
    def __init__(self, vocab, ctx, d, layers, heads):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, d)
        self.position_embedding = nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(OrigBlock(d, heads, ctx) for _ in range(layers))
        self.norm = OrigRMSNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.token_embedding.weight  # tied, saved as a copy

    def forward(self, idx):
        x = self.token_embedding(idx) + self.position_embedding(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.norm(x))


def test_original_format_checkpoint_loads_with_identical_logits(tmp_path):
    torch.manual_seed(1)
    work = tmp_path / "old_run"
    tok_path = make_tokenizer(work / "checkpoints" / "tokenizer.json", 300, TEXTS)
    from tactics_core.gpt.tokenizer import load_tokenizer

    vocab = load_tokenizer(tok_path).vocab_size
    orig = OrigGPT(vocab, 16, 32, 2, 4)
    with torch.no_grad():  # make the norms matter
        for module in orig.modules():
            if isinstance(module, OrigRMSNorm):
                module.weight.uniform_(0.5, 1.5)
    optimizer = torch.optim.AdamW(orig.parameters(), lr=3e-4)
    orig(torch.randint(0, vocab, (2, 16))).sum().backward()
    optimizer.step()
    state = orig.state_dict()
    assert "blocks.0.attn.mask" in state and state["blocks.0.attn.mask"].shape == (1, 1, 16, 16)
    assert "lm_head.weight" in state
    payload = {
        "model": state,
        "optimizer": optimizer.state_dict(),
        "model_config": {"vocab_size": vocab, "context_length": 16, "d_model": 32, "n_layers": 2, "n_heads": 4, "dropout": 0.1},
        "epoch": 3,
        "global_step": 1234,
        "best_val_loss": 1.75,
        "tokenizer_path": "checkpoints",
    }
    path = work / "checkpoints" / "checkpoint_step_1234.pt"
    torch.save(payload, path)  # plain torch.save, as the original scripts did

    loaded = C.load_model(path)
    assert loaded.original_format and loaded.tokenizer_path == tok_path
    assert loaded.config.vocab_size == vocab and loaded.config.n_layers == 2
    ids = torch.randint(0, vocab, (3, 16))
    with torch.no_grad():
        expected = orig.eval()(ids)
        got, _ = loaded.model(ids)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # Listing reads it too (sidecar built once), with the original's facts.
    [info] = C.list_checkpoints(path.parent)
    assert (info.step, info.format, info.val_loss, info.best_score, info.select_by) == (1234, "original", None, 1.75, "val_loss")
    assert C.meta_path(path).exists()
    # A sidecar written before `best_score` was named for what it holds still reads.
    meta = json.loads(C.meta_path(path).read_text())
    meta["best_val_loss"] = meta.pop("best_score")
    C.meta_path(path).write_text(json.dumps(meta))
    assert C.read_meta(path)["best_score"] == 1.75 and C.list_checkpoints(path.parent)[0].best_score == 1.75


def test_checkpoint_with_a_missing_config_key_reads_the_shape_off_the_weights(tmp_path):
    from tactics_core.gpt.tokenizer import load_tokenizer

    tok = load_tokenizer(make_tokenizer(tmp_path / "tokenizer.json", 300, TEXTS))
    model = small_model(vocab=tok.vocab_size)
    torch.save({"model": model.state_dict(), "model_config": {"n_heads": 4}}, tmp_path / "old.pt")
    loaded = C.load_model(tmp_path / "old.pt")
    assert (loaded.config.d_model, loaded.config.n_layers, loaded.config.context_length) == (32, 2, 16)


# ---------------------------------------------------------------- tokenizer checks


def test_tokenizer_mismatch_is_refused_with_both_sizes_and_hashes(tmp_path):
    from tactics_core.gpt.tokenizer import load_tokenizer

    tok_a = load_tokenizer(make_tokenizer(tmp_path / "a" / "tokenizer.json", 300, TEXTS))
    tok_b = load_tokenizer(make_tokenizer(tmp_path / "b" / "tokenizer.json", 280, TEXTS))
    assert tok_a.vocab_size != tok_b.vocab_size
    payload = ours(small_model(tok_a.vocab_size), 10, tokenizer_sha256=tok_a.sha256, tokenizer_vocab_size=tok_a.vocab_size)
    C.check_tokenizer_matches(payload, tok_a, "ck.pt")  # same tokenizer: fine
    with pytest.raises(TacticsError) as info:
        C.check_tokenizer_matches(payload, tok_b, "ck.pt")
    message = str(info.value)
    assert f"vocab {tok_a.vocab_size}" in message and f"vocab {tok_b.vocab_size}" in message
    assert tok_a.sha256[:12] in message and tok_b.sha256[:12] in message and "ck.pt" in message
    # Same size, other file (retrained): refused by hash.
    same_size = tok_a.__class__.__new__(tok_a.__class__)
    same_size.__dict__.update(tok_a.__dict__, sha256="f" * 64)
    with pytest.raises(TacticsError, match="another tokenizer"):
        C.check_tokenizer_matches(payload, same_size, "ck.pt")
    # Original checkpoints (no hash) are compared by vocabulary size.
    original = {"model": {}, "model_config": {"vocab_size": tok_a.vocab_size}}
    C.check_tokenizer_matches(original, same_size, "old.pt")
    with pytest.raises(TacticsError, match=f"vocab {tok_a.vocab_size}"):
        C.check_tokenizer_matches(original, tok_b, "old.pt")


def test_find_tokenizer_refuses_a_retrained_one(tmp_path):
    from tactics_core.gpt.tokenizer import load_tokenizer

    tok = load_tokenizer(make_tokenizer(tmp_path / "tokenizer.json", 300, TEXTS))
    path = C.save_checkpoint(
        tmp_path / "best_model.pt",
        ours(small_model(tok.vocab_size), 5, tokenizer_sha256=tok.sha256, tokenizer_vocab_size=tok.vocab_size),
    )
    assert C.load_model(path).tokenizer_path == tmp_path / "tokenizer.json"
    make_tokenizer(tmp_path / "tokenizer.json", 300, TEXTS[:2] + ["something else entirely"] * 10)
    with pytest.raises(TacticsError, match="no tokenizer fits .*best_model.pt.*sha256"):
        C.load_model(path)


# ---------------------------------------------------------------- damaged files


def test_truncated_or_garbage_checkpoint_is_a_one_line_error(tmp_path):
    good = C.save_checkpoint(tmp_path / "good.pt", ours(small_model(), 1))
    data = good.read_bytes()
    cases = {"empty.pt": b"", "half.pt": data[: len(data) // 2], "tail.pt": data[:-20], "text.pt": b"hello\n" * 50}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(TacticsError) as info:
            C.load_checkpoint(tmp_path / name)
        message = str(info.value)
        assert "\n" not in message and str(tmp_path / name) in message, message
        assert "damaged" in message and "use another checkpoint" in message
    with pytest.raises(TacticsError, match="checkpoint not found"):
        C.load_checkpoint(tmp_path / "missing.pt")
    # A pickle holding arbitrary objects is refused (weights_only), not executed.
    torch.save({"model": {}, "thing": nn.Linear(2, 2)}, tmp_path / "objects.pt")
    with pytest.raises(TacticsError, match="refusing to load.*torch.nn.modules.linear.Linear"):
        C.load_checkpoint(tmp_path / "objects.pt")
    # The listing keeps going and marks the damaged ones.
    infos = {i.name: i for i in C.list_checkpoints(tmp_path)}
    assert infos["good.pt"].error is None and infos["half.pt"].error and infos["empty.pt"].step == -1


def test_harmless_legacy_types_load(tmp_path):
    import numpy as np

    torch.save(
        {"model": {}, "best_val_loss": np.float64(1.5), "tokenizer_path": Path("checkpoints"), "global_step": np.int64(7)},
        tmp_path / "legacy.pt",
    )
    payload = C.load_checkpoint(tmp_path / "legacy.pt")
    assert payload["best_val_loss"] == 1.5 and type(payload["best_val_loss"]) is float
    assert payload["tokenizer_path"] == "checkpoints" and payload["global_step"] == 7


# ---------------------------------------------------------------- atomic writes under kill -9

WRITER = r"""
import os, random, signal, sys, time
import torch
from tactics_core.runs.checkpoints import save_checkpoint
path = sys.argv[1]
for line in sys.stdin:
    start, delay = line.split()
    pid = os.fork()
    if pid == 0:  # the writer: save bigger and bigger steps over the same file, forever
        torch.set_num_threads(1)
        step = int(start)
        while True:
            step += 1
            save_checkpoint(path, {"model": {"w": torch.full((1_000_000,), float(step))}, "global_step": step})
    time.sleep(float(delay))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    print("killed", flush=True)
"""


def test_kill_9_mid_save_leaves_old_or_new_never_torn(tmp_path):
    path = tmp_path / "ckpt.pt"
    C.save_checkpoint(path, {"model": {"w": torch.full((1_000_000,), 0.0)}, "global_step": 0})
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    rng = random.Random(7)
    last = 0
    try:
        for _ in range(7):
            proc.stdin.write(f"{last} {rng.uniform(0.05, 0.5):.3f}\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "killed"
            payload = C.load_checkpoint(path)  # always loads
            step = payload["global_step"]
            assert step >= last  # the old file or a newer one
            assert torch.all(payload["model"]["w"] == float(step))  # and never a mix
            assert C.read_meta(path)["step"] == step  # a stale sidecar is noticed and rebuilt
            last = step
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert last > 0, "the writer never completed a save: the test exercised nothing"
    # Temp files of killed writes are never listed, and retention clears them.
    assert [i.name for i in C.list_checkpoints(tmp_path)] == ["ckpt.pt"]
    C.remove_stale_temp_files(tmp_path, older_than_s=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.meta.json", "ckpt.pt", "writer.py"]


# ---------------------------------------------------------------- sidecars, listing, retention


def test_sidecar_is_used_and_rebuilt_when_stale(tmp_path, monkeypatch):
    model = small_model()
    path = C.save_checkpoint(tmp_path / "checkpoint_step_10.pt", ours(model, 10, val_loss=2.0, train_state={}))
    meta = json.loads(C.meta_path(path).read_text())
    assert meta["step"] == 10 and meta["val_loss"] == 2.0 and meta["size"] == path.stat().st_size
    # Same size, new content (best_model.pt is rewritten in place like this): noticed via mtime/inode.
    time.sleep(0.01)
    torch.save({**ours(model, 20, val_loss=1.0, train_state={}), "format": C.FORMAT, "created": 1.0}, path)
    assert C.read_meta(path)["step"] == 20
    # With fresh sidecars, listing never loads a tensor file.
    monkeypatch.setattr(C, "load_checkpoint", lambda *a, **k: pytest.fail("loaded tensors to list"))
    assert [i.step for i in C.list_checkpoints(tmp_path)] == [20]


def test_prune_keeps_last_k_and_best(tmp_path):
    model = small_model()
    for step in (100, 200, 300, 400, 500):
        C.save_checkpoint(C.checkpoint_step_path(tmp_path, step), ours(model, step))
    C.save_checkpoint(tmp_path / "best_model.pt", ours(model, 200, val_loss=1.0))
    (tmp_path / "final_export.pt").write_bytes(b"other")  # never touched
    (tmp_path / "checkpoint_step_50.meta.json").write_text("{}")  # orphan sidecar: cleared
    removed = C.prune_checkpoints(tmp_path, keep_last=2)
    assert sorted(p.name for p in removed) == ["checkpoint_step_100.pt", "checkpoint_step_200.pt", "checkpoint_step_300.pt"]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "best_model.meta.json", "best_model.pt",
        "checkpoint_step_400.meta.json", "checkpoint_step_400.pt",
        "checkpoint_step_500.meta.json", "checkpoint_step_500.pt",
        "final_export.pt",
    ]
    assert C.prune_checkpoints(tmp_path, keep_last=0) == []  # 0 keeps all


def test_latest_prefers_resumable_then_highest_step(tmp_path):
    model = small_model()
    C.save_checkpoint(C.checkpoint_step_path(tmp_path, 100), ours(model, 100, train_state={"x": 1}))
    C.save_checkpoint(C.checkpoint_step_path(tmp_path, 200), ours(model, 200, train_state={"x": 1}))
    C.save_checkpoint(tmp_path / "best_model.pt", ours(model, 300, val_loss=1.0))  # not resumable
    assert C.latest_checkpoint(tmp_path).name == "checkpoint_step_200.pt"
    assert C.latest_checkpoint(tmp_path / "nothing") is None


def test_cli_checkpoints_json_schema(tmp_path, capsys):
    model = small_model()
    C.save_checkpoint(C.checkpoint_step_path(tmp_path, 100), ours(model, 100, train_state={}))
    C.save_checkpoint(C.checkpoint_step_path(tmp_path, 200), ours(model, 200, val_loss=2.5, best_val_loss=2.5, train_state={}))
    C.save_checkpoint(tmp_path / "best_model.pt", ours(model, 200, val_loss=2.5, best_val_loss=2.5))
    (tmp_path / "broken.pt").write_bytes(b"")
    os.utime(tmp_path / "broken.pt", (1, 1))  # oldest
    assert main(["checkpoints", "--checkpoint-dir", str(tmp_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [Path(r["path"]).name for r in rows] == ["broken.pt", "checkpoint_step_100.pt", "checkpoint_step_200.pt", "best_model.pt"]
    for r in rows:
        assert {"path", "step", "val_loss", "best", "size", "created", "error"} <= set(r)
        assert r["size"] == Path(r["path"]).stat().st_size and isinstance(r["step"], int)
    assert rows[0]["error"] and "damaged" in rows[0]["error"]
    assert rows[1]["val_loss"] is None and rows[1]["best"] is False and rows[1]["resumable"] is True
    assert rows[2]["val_loss"] == 2.5 and rows[3]["best"] is True
    # The table shows the same, with the best mark.
    assert main(["checkpoints", "--checkpoint-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    best_line = next(line for line in captured.out.splitlines() if "best_model.pt" in line)
    assert best_line.startswith("*") and "2.5000" in best_line and "200" in best_line
    assert "broken.pt" in captured.err
    assert main(["checkpoints", "--checkpoint-dir", str(tmp_path / "nope")]) == 2
    assert "checkpoint folder not found" in capsys.readouterr().err
