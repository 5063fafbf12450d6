"""ONNX export: the prover's contract, parity, atomic folder, tokenizer checks, original checkpoints."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from helpers_models import tiny_export, tiny_workspace
from tactics_core.common.errors import TacticsError
from tactics_core.gpt import export as export_mod
from tactics_core.gpt.export import export_model

CONFIG_INTS = ("vocab_size", "context_length", "d_model", "n_layers", "n_heads", "head_dim", "d_mlp")


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_export_folder_holds_one_model_file_and_config():
    report = tiny_export()
    folder = export_mod.Path(report.path)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.onnx", "tokenizer.json"]
    config = json.loads((folder / "config.json").read_text())
    for key in CONFIG_INTS:
        assert isinstance(config[key], int), key
    assert config["head_dim"] * config["n_heads"] == config["d_model"]
    assert config["d_mlp"] == 4 * config["d_model"]
    assert config["model_type"] == "gpt" and config["tie_embeddings"] is True and config["use_cache"] is True
    assert config["tokenizer_kind"] == "lines" and config["training_step"] > 0
    assert isinstance(config["validation_loss"], float)
    ws = tiny_workspace()
    assert (folder / "tokenizer.json").read_bytes() == ws.tokenizer.read_bytes()
    assert report.ok and report.max_abs_diff <= 1e-4
    assert {c.name.split(",")[0] for c in report.checks} >= {"onnx.checker", "single file", "empty cache"}
    assert report.to_dict()["path"] == str(folder) and report.seconds > 0


def test_onnx_contract_names_types_and_dynamic_axes():
    import onnx

    report = tiny_export()
    cfg = report.config
    model = onnx.load(str(export_mod.Path(report.path) / "model.onnx"))
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    inputs = {v.name: v for v in model.graph.input}
    outputs = {v.name: v for v in model.graph.output}
    assert list(inputs) == export_mod.input_names(cfg["n_layers"])
    assert list(outputs) == export_mod.output_names(cfg["n_layers"])
    assert inputs["input_ids"].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert _dims(inputs["input_ids"]) == ["batch", "seq"]
    h, d = cfg["n_heads"], cfg["head_dim"]
    for i in range(cfg["n_layers"]):
        for kv in ("key", "value"):
            past = inputs[f"past_key_values.{i}.{kv}"]
            assert past.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
            assert _dims(past) == ["batch", h, "past_seq", d]
            present = _dims(outputs[f"present_key_values.{i}.{kv}"])
            assert present[0] == "batch" and present[1:] == [h, present[2], d] and isinstance(present[2], str)
    assert _dims(outputs["logits"]) == ["batch", "seq", cfg["vocab_size"]]
    assert _dims(outputs["raw_logits"]) == ["batch", "seq", cfg["vocab_size"]]
    assert cfg["crash_guard"] is True and cfg["outputs"][-1] == "raw_logits"


@pytest.mark.parametrize("batch,seq,past", [(1, 1, 0), (3, 5, 0), (2, 1, 7), (4, 3, 9)])
def test_onnx_runs_any_batch_seq_and_past_including_empty(batch, seq, past):
    import onnxruntime as ort
    import torch

    from tactics_core.runs.checkpoints import load_model

    report = tiny_export()
    cfg = report.config
    session = ort.InferenceSession(str(export_mod.Path(report.path) / "model.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(batch * 100 + seq)
    prefix = rng.integers(3, cfg["vocab_size"], (batch, past + seq))
    feed = {"input_ids": prefix[:, past:].astype(np.int64)}
    model = load_model(tiny_workspace().checkpoint).model
    with torch.no_grad():
        _, cache = model(torch.from_numpy(prefix[:, :past]), model.empty_cache(batch)) if past else (None, model.empty_cache(batch))
        ref, _ = model(torch.from_numpy(prefix))
    for i, (k, v) in enumerate(cache):
        feed[f"past_key_values.{i}.key"] = k.numpy()
        feed[f"past_key_values.{i}.value"] = v.numpy()
    out = session.run(None, feed)
    assert out[0].shape == (batch, seq, cfg["vocab_size"])
    assert out[1].shape == (batch, cfg["n_heads"], past + seq, cfg["head_dim"])
    raw = out[-1]  # raw_logits: the model's own
    assert np.abs(raw - ref.numpy()[:, past:]).max() <= 1e-4
    # logits: the same, less the crash guard's penalty on the tokens that would write `//`
    from tactics_core.gpt.prover_replica import GUARD_PENALTY, CrashRule
    from tactics_core.gpt.tokenizer import load_tokenizer

    rule = CrashRule.of(load_tokenizer(export_mod.Path(report.path) / "tokenizer.json"))
    fed = prefix[:, past:]
    want = raw - GUARD_PENALTY * np.stack([[rule.mask(int(t)) for t in row] for row in fed])
    assert np.abs(out[0] - want).max() <= 1e-4


def test_failed_export_leaves_no_folder(tmp_path, monkeypatch):
    ws = tiny_workspace()

    def broken(model, path, guard=None):
        path.write_bytes(b"half a model")
        raise TacticsError("ONNX export failed: simulated crash")

    monkeypatch.setattr(export_mod, "_onnx_export", broken)
    out = tmp_path / "exports" / "x"
    with pytest.raises(TacticsError, match="simulated"):
        export_model(ws.checkpoint, out)
    assert not out.exists()
    assert list((tmp_path / "exports").iterdir()) == []  # no half-built temp folder either


def test_failed_check_is_an_error_and_writes_nothing(tmp_path, monkeypatch):
    ws = tiny_workspace()
    monkeypatch.setattr(export_mod, "TOLERANCE", -1.0)  # no difference can pass
    monkeypatch.setattr(export_mod, "_onnx_export", lambda model, path, guard=None: shutil.copyfile(
        export_mod.Path(tiny_export().path) / "model.onnx", path) and 20)
    out = tmp_path / "x"
    with pytest.raises(TacticsError, match="verification failed") as info:
        export_model(ws.checkpoint, out)
    assert "\n" not in str(info.value) and not out.exists() and list(tmp_path.iterdir()) == []


def test_existing_output_folder_is_refused(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(TacticsError, match="already exists"):
        export_model(tiny_workspace().checkpoint, tmp_path / "taken")


def test_retrained_tokenizer_is_refused(tmp_path, monkeypatch, capsys):
    """A tokenizer.json retrained after the checkpoint must not be exported with it."""
    from tactics_core.cli import main
    from tactics_core.gpt.tokenizer import train_tokenizer
    from tactics_core.runs.checkpoints import load_checkpoint, save_checkpoint

    ws = tiny_workspace()
    run = tmp_path / "checkpoints"
    payload = load_checkpoint(ws.checkpoint)
    payload["tokenizer_path"] = "checkpoints"  # relative, as a real run records it
    save_checkpoint(run / "best_model.pt", payload)
    train_tokenizer(ws.data_dir, run, vocab_size=320, kind="lines")  # a different tokenizer.json
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TacticsError, match="tokenizer") as info:
        export_model(run / "best_model.pt", tmp_path / "out")
    assert "sha256" in str(info.value) and not (tmp_path / "out").exists()
    assert main(["export", str(run / "best_model.pt"), str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and not (tmp_path / "out2").exists()


def _original_tokenizer(data_dir, path):
    """A tokenizer.json as the original scripts made it: GPT-2 regex byte-level BPE, <UNK> and <PAD> only."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from tactics_core.gpt.corpus import iter_corpus

    tok = Tokenizer(models.BPE(unk_token="<UNK>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<UNK>", "<PAD>"], show_progress=False)
    tok.train_from_iterator((pf.text() for pf in iter_corpus(data_dir)), trainer=trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return tok.get_vocab_size()


def test_original_format_checkpoint_exports_unchanged(tmp_path, monkeypatch):
    import torch

    from tactics_core.gpt.complete import Completer
    from tactics_core.gpt.model import GPT, GPTConfig

    ws = tiny_workspace()
    vocab = _original_tokenizer(ws.data_dir, tmp_path / "tok" / "tokenizer.json")
    ctx = 64
    torch.manual_seed(1)
    model = GPT(GPTConfig(vocab_size=vocab, context_length=ctx, d_model=32, n_layers=2, n_heads=4, dropout=0.1))
    state = model.state_dict()
    for i in range(2):  # the original scripts kept their causal mask as a buffer
        state[f"blocks.{i}.attn.mask"] = torch.tril(torch.ones(ctx, ctx)).view(1, 1, ctx, ctx)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.tensor([[3, 4, 5]]))[0].sum().backward()
    optimizer.step()
    payload = {
        "model": state,
        "optimizer": optimizer.state_dict(),
        "model_config": {"vocab_size": vocab, "context_length": ctx, "d_model": 32, "n_layers": 2, "n_heads": 4,
                         "d_mlp": 128, "dropout": 0.1, "use_bias": False, "tie_embeddings": True},
        "epoch": 3,
        "global_step": 1200,
        "best_val_loss": float("inf"),
        "tokenizer_path": "tok",
    }
    (tmp_path / "run").mkdir()
    torch.save(payload, tmp_path / "run" / "best_model.pt")
    monkeypatch.chdir(tmp_path / "run")
    report = export_model(tmp_path / "run" / "best_model.pt", tmp_path / "export" / "orig")
    assert report.ok and report.max_abs_diff <= 1e-4
    config = json.loads((tmp_path / "export" / "orig" / "config.json").read_text())
    assert config["checkpoint_format"] == "original" and config["tokenizer_kind"] == "seed"
    assert config["training_step"] == 1200 and config["validation_loss"] is None and config["eos_token_id"] is None
    assert config["vocab_size"] == vocab and config["context_length"] == ctx
    assert any("original-format" in n for n in report.notes)
    # And the export runs in the completion engine (stops at newlines: no <EOS> in that tokenizer).
    result = Completer.load(tmp_path / "export" / "orig").complete("@G\n    a = a\n@C\na != a\n", n=2, max_tokens=8, seed=0)
    assert result.backend == "onnx" and result.prompt_tokens > 0


def test_checkpoint_whose_tokenizer_vocab_differs_is_explained(tmp_path, monkeypatch):
    import torch

    from tactics_core.gpt.model import GPT, GPTConfig

    ws = tiny_workspace()
    _original_tokenizer(ws.data_dir, tmp_path / "tokenizer.json")
    model = GPT(GPTConfig(vocab_size=999, context_length=32, d_model=32, n_layers=1, n_heads=4))
    torch.save({"model": model.state_dict(), "model_config": model.config.to_dict(), "global_step": 1,
                "tokenizer_path": "checkpoints"}, tmp_path / "m.pt")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TacticsError, match="vocab size 999"):
        export_model(tmp_path / "m.pt", tmp_path / "out")


def test_cancel_stops_the_export_and_leaves_nothing(tmp_path):
    from tactics_core.common.errors import Cancelled
    from tactics_core.common.progress import CancelToken

    token = CancelToken()
    seen = []

    def progress(done, total, message):
        seen.append(message)
        if done >= 1:
            token.cancel()  # cancel while the ONNX export runs

    with pytest.raises(Cancelled):
        export_model(tiny_workspace().checkpoint, tmp_path / "out", progress=progress, cancel=token)
    assert seen[0] == "loading checkpoint" and not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_export_stays_within_what_the_provers_onnx_runtime_reads():
    """acorn f47631b0 links ONNX Runtime 1.20: IR version <= 10, opset <= 21 (IR 11 is refused, seen in acorn)."""
    import onnx

    report = tiny_export()
    proto = onnx.load(str(export_mod.Path(report.path) / "model.onnx"))
    opset = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    assert proto.ir_version <= export_mod.MAX_IR_VERSION == 10
    assert opset == report.opset == export_mod.EXPORT_OPSET and opset <= export_mod.MAX_OPSET == 21
    limits = next(c for c in report.checks if c.name == "ONNX Runtime 1.20 limits")
    assert limits.ok and f"IR {proto.ir_version}" in limits.detail


def _tiny_graph(path, ir_version: int, opset: int) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    onnx.save(model, str(path))


def test_a_newer_ir_version_is_lowered_and_a_newer_opset_refused(tmp_path):
    import onnx

    path = tmp_path / "model.onnx"
    _tiny_graph(path, ir_version=11, opset=20)
    assert not export_mod.runtime_limits_check(path).ok
    assert export_mod.fit_runtime_limits(path) == 20
    assert onnx.load(str(path)).ir_version == 10 and export_mod.runtime_limits_check(path).ok
    onnx.checker.check_model(str(path), full_check=True)
    _tiny_graph(path, ir_version=10, opset=22)
    with pytest.raises(TacticsError, match="opset 22, above the 21"):
        export_mod.fit_runtime_limits(path)


def test_the_crash_guard_keeps_an_export_from_writing_a_line_acorn_dies_on(tmp_path):
    """acorn f47631b0 panics on a `//` line or one starting with `}`: a guarded export never samples one;
    the same model exported without the guard does (the tiny model learned acornlib source text)."""
    from tactics_core.gpt.complete import Completer
    from tactics_core.gpt.corpus import parse_proof_text
    from tactics_core.gpt.prover_replica import CrashRule, ProverSession, crashes_acorn

    report = tiny_export()
    assert next(c for c in report.checks if c.name == "crash guard").ok
    completer = Completer.load(report.path, threads=1)
    rule = CrashRule.of(completer.tokenizer)
    assert rule.banned.any()  # the tiny model's vocabulary has `//` tokens (acornlib comments)
    assert rule.bad_first[completer.tokenizer.encode("}")[0]] and rule.line_start[completer.tokenizer.encode("\n")[0]]
    nl = completer.tokenizer.encode("\n")[0]
    logits, _ = completer.backend.prefill([nl])
    raw = completer.backend.all_logits([nl])[-1]
    assert (raw - logits)[rule.banned].min() >= 99.9 and np.allclose((raw - logits)[~rule.mask(nl)], 0, atol=1e-4)
    goal = parse_proof_text("@T\n// a comment the model has seen\n@G\nx = x\n@C\nx != x\n", "g.txt")
    session = ProverSession(completer.backend, completer.tokenizer, goal, seed=0)
    lines = [a.text for a in session.sample_lines(256)]
    assert not any(crashes_acorn(t) or "//" in t for t in lines)
    plain = export_model(tiny_workspace().checkpoint, tmp_path / "plain", crash_guard=False)
    assert plain.config["crash_guard"] is False and plain.config["outputs"] == export_mod.output_names(
        plain.config["n_layers"], guarded=False)
    unguarded = Completer.load(plain.path, threads=1)
    session = ProverSession(unguarded.backend, unguarded.tokenizer, goal, seed=0)
    # what the guard bans, sampled by the same model without it (which of the two, a whole crash
    # line or a `//` inside one, depends on the CPU the tiny model was trained on)
    assert any(crashes_acorn(a.text) or "//" in a.text for a in session.sample_lines(256))


def test_an_export_killed_mid_write_leaves_a_partial_that_the_next_export_or_listing_removes(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO
    from tactics_core.common.atomic import atomic_dir
    from tactics_core.runs.workspace_runs import list_exports

    root = tmp_path / "export"
    writer = (
        "import sys, time\n"
        "from tactics_core.common.atomic import atomic_dir\n"
        "with atomic_dir(sys.argv[1]) as tmp:\n"
        "    (tmp / 'model.onnx').write_bytes(b'half a model')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(120)\n"
    )

    def killed_export(name: str) -> None:
        proc = subprocess.Popen([sys.executable, "-c", writer, str(root / name)], cwd=REPO,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def partials() -> list[str]:
        return sorted(p.name.split(".")[1] for p in root.iterdir() if p.name.endswith(".partial"))

    def age(name: str) -> None:  # older than atomic.PARTIAL_MIN_AGE_S
        for p in root.glob(f".{name}.*.partial"):
            os.utime(p, (time.time() - 3600, time.time() - 3600))

    killed_export("killed")
    (root / ".young.abcd1234.partial").mkdir()  # maybe a writer that has not locked it yet
    age("killed")
    with atomic_dir(root / "live") as live:
        age("live")
        assert partials() == ["killed", "live", "young"]
        assert list_exports(root) == []
        assert partials() == ["live", "young"]  # the live writer's lock and the young one's age spare them
        assert live.is_dir()
    assert (root / "live").is_dir() and partials() == ["young"]
    killed_export("again")
    age("again")
    (root / "taken").mkdir()
    with pytest.raises(TacticsError, match="already exists"):
        export_model(tmp_path / "model.pt", root / "taken")  # an export removes them too, first
    assert partials() == ["young"]
