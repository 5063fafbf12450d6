"""ONNX export for the prover, verified every time.

An export folder holds `model.onnx` (one file, weights inside), the
`tokenizer.json` the checkpoint was trained with, and `config.json`. It is
built under a temporary name and renamed only after every check passed, so a
folder that exists is complete and verified.

Why the dynamo exporter (`torch.onnx.export(..., dynamo=True)`): it keeps
batch, seq and past_seq symbolic, including past_seq = 0 (the prover starts
from an empty cache), and names the output length `past_seq + seq`.
`external_data=False` keeps the weights inside the one file.

The ONNX contract (what the prover feeds):
  inputs   input_ids                 int64   [batch, seq]
           past_key_values.{i}.key   float32 [batch, n_heads, past_seq, head_dim]
           past_key_values.{i}.value float32 [batch, n_heads, past_seq, head_dim]
  outputs  logits                    float32 [batch, seq, vocab]
           present_key_values.{i}.key / .value  [batch, n_heads, past_seq + seq, head_dim]
"""

from __future__ import annotations

import json
import os
import shutil
import time

from pathlib import Path
from typing import Any

from tactics_core.common.atomic import atomic_dir, remove_stale_partials
from tactics_core.common.errors import TacticsError
from tactics_core.common.onnx_export import (  # noqa: F401  (re-exported: the GPT's export names them)
    EXPORT_OPSET, MAX_IR_VERSION, MAX_OPSET, Check, ExportReport, fit_runtime_limits, quiet_exporter, runtime_limits_check,
)
from tactics_core.common.progress import CancelToken, ProgressFn, check, report
from tactics_core.common.workspace import CHECKPOINT_DIR, EXPORT_DIR
from tactics_core.gpt.complete import EXPORT_CONFIG_FILE, EXPORT_MODEL_FILE, EXPORT_TOKENIZER_FILE
from tactics_core.gpt.holdout import DEFAULT_VAL_FRACTION
from tactics_core.runs.checkpoints import BEST_SCORE_KEY, finite_or_none

TOLERANCE = 1e-4  # max abs difference of logits, ONNX Runtime vs PyTorch
DECODE_TOKENS = 32  # tokens fed one at a time in the decode check
MODEL_TYPE = "gpt"  # what the original scripts' config.json said; the prover reads it

# A real goal (acornlib, Apache-2.0) used to compare ONNX Runtime with PyTorch.
VERIFY_TEXT = """@T
theorem inverse_left[A: AddGroup](a: A) {
    -a + a = A.0
} by {
@G
    (-a + a) + (-a + --a) = -a + --a
@C
-a + a + (-a + --a) != -a + --a
@P
-a + (a + -a) = -a + a + -a
-a + a + (-a + --a) = -a + a + -a + --a
-a + a + -a + --a != -a + --a
a + -a = A.0
-a + A.0 = -a
"""


def input_names(n_layers: int) -> list[str]:
    return ["input_ids"] + [f"past_key_values.{i}.{kv}" for i in range(n_layers) for kv in ("key", "value")]


RAW_LOGITS = "raw_logits"  # the model's own logits, beside the guarded `logits` the prover samples


def output_names(n_layers: int, guarded: bool = True) -> list[str]:
    names = ["logits"] + [f"present_key_values.{i}.{kv}" for i in range(n_layers) for kv in ("key", "value")]
    return names + [RAW_LOGITS] if guarded else names


class _Contract:
    """Wraps the GPT so its flat inputs/outputs follow the ONNX contract."""

    @staticmethod
    def module(model, guard=None):
        """`guard` (a model.CrashGuard): `logits` are guarded and `raw_logits` added last."""
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self, inner, guard) -> None:
                super().__init__()
                self.inner = inner
                self.guard = guard

            def forward(self, input_ids, past_key_values):
                past = [(past_key_values[2 * i], past_key_values[2 * i + 1]) for i in range(len(past_key_values) // 2)]
                logits, presents = self.inner(input_ids, past)
                flat = [logits if self.guard is None else self.guard(input_ids, logits)]
                for k, v in presents:
                    flat += [k, v]
                if self.guard is not None:
                    flat.append(logits)
                return tuple(flat)

        return Wrapped(model, guard).eval()


def _onnx_export(model, path: Path, guard=None) -> int:
    """Write model.onnx at `path` (single file); return the opset used."""
    import torch

    cfg = model.config
    n_layers = cfg.n_layers
    wrapped = _Contract.module(model, guard)
    ctx = int(cfg.context_length)
    # Sample shapes away from 0/1 so the exporter does not specialise them.
    seq, past = (3, 4) if ctx >= 8 else (2, 2)
    seq, past = min(seq, max(2, ctx - 2)), min(past, max(2, ctx - 2))
    ids = torch.randint(0, cfg.vocab_size, (2, seq), dtype=torch.long)
    cache = tuple(torch.zeros(2, cfg.n_heads, past, cfg.head_dim) for _ in range(2 * n_layers))
    batch_dim = torch.export.Dim("batch", min=1, max=4096)
    seq_dim = torch.export.Dim("seq", min=1, max=max(2, ctx))
    past_dim = torch.export.Dim("past_seq", min=0, max=max(2, ctx))
    dynamic_shapes = ({0: batch_dim, 1: seq_dim}, tuple({0: batch_dim, 2: past_dim} for _ in cache))
    with quiet_exporter("see the log above or report it"):
        torch.onnx.export(
            wrapped,
            (ids, cache),
            str(path),
            input_names=input_names(n_layers),
            output_names=output_names(n_layers, guard is not None),
            dynamic_shapes=dynamic_shapes,
            opset_version=EXPORT_OPSET,
            dynamo=True,
            external_data=False,
            optimize=True,
            verbose=False,
        )
    return fit_runtime_limits(path)


def export_config(loaded, tokenizer) -> dict[str, Any]:
    """config.json: the model shape the prover needs, plus where the weights came from."""
    from tactics_core.runs.checkpoints import training_layout

    cfg = loaded.config
    payload = loaded.payload
    val_loss = payload.get("val_loss", payload.get(BEST_SCORE_KEY))  # an original checkpoint holds only its best
    training = (payload.get("config") or {}).get("training") or {}
    return {
        "model_type": MODEL_TYPE,
        "vocab_size": int(cfg.vocab_size),
        "context_length": int(cfg.context_length),
        "d_model": int(cfg.d_model),
        "n_layers": int(cfg.n_layers),
        "n_heads": int(cfg.n_heads),
        "head_dim": int(cfg.head_dim),
        "d_mlp": int(cfg.d_mlp),
        "dropout": float(cfg.dropout),
        "use_bias": False,
        "tie_embeddings": True,
        "use_cache": True,
        "norm": "rmsnorm",
        "norm_eps": 1e-6,
        "activation": "gelu",
        "position_embedding": "learned",
        "tokenizer_kind": tokenizer.kind,
        "tokenizer_sha256": tokenizer.sha256,
        "eos_token_id": tokenizer.eos_id,
        "pad_token_id": tokenizer.pad_id,
        "training_step": int(payload.get("global_step") or 0),
        "validation_loss": finite_or_none(val_loss),
        "validation_bpb": finite_or_none(payload.get("val_bpb")),
        "validation_proof_loss": finite_or_none(payload.get("val_proof_loss")),
        "validation_proof_bpb": finite_or_none(payload.get("val_proof_bpb")),
        # The name of the layout the model was trained on (layouts.py), so completion and
        # evaluation ask it the same way.
        "layout": training_layout(payload),
        "val_fraction": float(training.get("val_fraction", DEFAULT_VAL_FRACTION)),
        "split": str(training.get("split", "theorem")),
        "checkpoint_format": "original" if loaded.original_format else payload.get("format"),
        "inputs": input_names(cfg.n_layers),
        "outputs": output_names(cfg.n_layers),
        "source": export_source(loaded),
    }


def export_source(loaded) -> dict[str, Any]:
    """Lineage: the run, checkpoint, step and validation figures an export was made from.

    The checkpoint path is resolved (`checkpoints/best_model.pt` is a link into a run folder),
    so the Checkpoints and Runs screens can tell which exports came from which checkpoint.
    """
    from tactics_core.runs.workspace_runs import run_name

    payload = loaded.payload
    path = Path(loaded.path)
    try:
        real = path.resolve()
    except OSError:
        real = path
    return {
        "run": payload.get("run") or run_name(real.parent),
        "run_path": str(real.parent),
        "checkpoint": real.name,
        "checkpoint_path": str(real),
        "step": int(payload.get("global_step") or 0),
        "val_loss": finite_or_none(payload.get("val_loss", payload.get(BEST_SCORE_KEY))),
        "val_bpb": finite_or_none(payload.get("val_bpb")),
        "proof_loss": finite_or_none(payload.get("val_proof_loss")),
        "proof_bpb": finite_or_none(payload.get("val_proof_bpb")),
        "select_by": payload.get("select_by"),
    }


def _max_diff(a, b) -> float:
    import numpy as np

    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))) if np.size(a) else 0.0


def verify_export(folder: Path, model, tokenizer, text: str = VERIFY_TEXT, cancel: CancelToken | None = None,
                  guard=None) -> list[Check]:
    """Run the contract checks on an export folder against the PyTorch model (and its crash guard).

    The file first (`_file_checks`: a model that fails onnx's checker is not run), then the
    graph in ONNX Runtime against PyTorch, fed the three ways the prover and completion feed
    it (`_prefill_check`, `_chunk_check`, `_decode_check`), then the crash guard."""
    import onnxruntime as ort

    cfg = model.config
    path = folder / EXPORT_MODEL_FILE
    checks = _file_checks(folder, path)
    if not checks[0].ok:  # onnx's checker refused it
        return checks

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    names_in = [i.name for i in session.get_inputs()]
    names_out = [o.name for o in session.get_outputs()]
    ok_names = names_in == input_names(cfg.n_layers) and names_out == output_names(cfg.n_layers, guard is not None)
    checks.append(Check("input/output names", ok_names, detail="" if ok_names else f"got {names_in[:3]}… {names_out[:3]}…"))

    runner = _Runner(session, model, guard)
    ids = tokenizer.encode(text)
    limit = int(cfg.context_length)
    ids = ids[:limit]
    if len(ids) < 4:
        ids = (ids * 4)[:4]
    checks.append(_prefill_check(runner, ids, cancel))
    checks.append(_chunk_check(runner, ids, cancel))
    checks.append(_decode_check(runner, ids, limit, cancel))
    if guard is not None:
        checks.append(_guard_check(session, cfg.n_layers, cfg.n_heads, cfg.head_dim, tokenizer, guard))
    return checks


def _file_checks(folder: Path, path: Path) -> list[Check]:
    """onnx's full check (a failure ends the list), ONNX Runtime 1.20's limits, and one file:
    the prover loads `model.onnx` alone, so no weights may sit beside it."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:
        return [Check("onnx.checker", False, detail=str(exc).splitlines()[0][:160])]
    checks = [Check("onnx.checker", True), runtime_limits_check(path)]
    others = sorted(p.name for p in folder.iterdir() if p.name not in (EXPORT_MODEL_FILE, EXPORT_TOKENIZER_FILE, EXPORT_CONFIG_FILE))
    checks.append(Check("single file", not others, detail=f"extra files: {others}" if others else f"{path.stat().st_size:,} bytes"))
    return checks


class _Runner:
    """The export in ONNX Runtime and the PyTorch model it must equal, fed alike."""

    def __init__(self, session, model, guard) -> None:
        cfg = model.config
        self.session, self.model, self.guard = session, model, guard
        self.n_layers, self.n_heads, self.head_dim = cfg.n_layers, cfg.n_heads, cfg.head_dim
        self.vocab_size = cfg.vocab_size

    def empty(self, batch: int) -> list:
        """An empty KV cache for `batch` rows."""
        import numpy as np

        return [np.zeros((batch, self.n_heads, 0, self.head_dim), dtype=np.float32) for _ in range(2 * self.n_layers)]

    def run(self, ids, cache: list):
        """The export fed `ids` on top of `cache`: (logits, presents)."""
        import numpy as np

        feed = {"input_ids": ids.astype(np.int64)}
        feed.update(dict(zip(input_names(self.n_layers)[1:], cache)))
        out = self.session.run(None, feed)
        return out[0], out[1 : 1 + 2 * self.n_layers]

    def reference(self, x):
        """The PyTorch side: (logits as the export should give them, presents), without gradients."""
        import torch

        with torch.no_grad():
            raw, presents = self.model(x)
            return (raw if self.guard is None else self.guard(x, raw)), presents


def _prefill_check(r: _Runner, ids: list[int], cancel: CancelToken | None) -> Check:
    """The whole prompt from an empty cache (how the prover starts, with one prefill): logits
    and presents equal PyTorch's, with the shapes the prover expects."""
    import numpy as np
    import torch

    full = np.asarray([ids], dtype=np.int64)
    ref_logits, ref_presents = r.reference(torch.from_numpy(full))
    ref = ref_logits.numpy()
    check(cancel)
    logits, presents = r.run(full, r.empty(1))
    diff = max(_max_diff(logits, ref), max(_max_diff(p, t) for p, t in zip(presents, (t for kv in ref_presents for t in kv))))
    shape_ok = logits.shape == (1, len(ids), r.vocab_size) and presents[0].shape == (1, r.n_heads, len(ids), r.head_dim)
    return Check(f"empty cache, {len(ids)}-token prompt", diff <= TOLERANCE and shape_ok, diff,
                 "" if shape_ok else f"shapes {logits.shape} {presents[0].shape}")


def _chunk_check(r: _Runner, ids: list[int], cancel: CancelToken | None) -> Check:
    """A multi-token chunk on top of a cache, batch 2 (two different windows): what completion's
    batched decoding feeds."""
    import numpy as np
    import torch

    check(cancel)
    half = len(ids) // 2
    rows = np.asarray([ids[:half * 2][:half], ids[half:half * 2]], dtype=np.int64)
    split = max(1, half // 2)
    _, cache = r.run(rows[:, :split], r.empty(2))
    logits2, presents2 = r.run(rows[:, split:], cache)
    ref2, _ = r.reference(torch.from_numpy(rows))
    diff2 = _max_diff(logits2, ref2.numpy()[:, split:])
    shape_ok2 = presents2[0].shape == (2, r.n_heads, half, r.head_dim)
    return Check(f"batch 2, {half - split} tokens after a {split}-token cache", diff2 <= TOLERANCE and shape_ok2, diff2,
                 "" if shape_ok2 else f"present shape {presents2[0].shape}")


def _decode_check(r: _Runner, ids: list[int], limit: int, cancel: CancelToken | None) -> Check:
    """A decode fed one token at a time (the prover's attempts) equals one full-sequence pass."""
    import numpy as np
    import torch

    check(cancel)
    steps = min(DECODE_TOKENS, limit, len(ids))
    if steps < DECODE_TOKENS:
        ids3 = (ids * (DECODE_TOKENS // max(1, len(ids)) + 1))[: min(DECODE_TOKENS, limit)]
        steps = len(ids3)
    else:
        ids3 = ids[:steps]
    cache = r.empty(1)
    step_logits = []
    for t in ids3:
        out, cache = r.run(np.asarray([[t]], dtype=np.int64), cache)
        step_logits.append(out[0, 0])
    ref3, _ = r.reference(torch.tensor([ids3]))
    diff3 = _max_diff(np.stack(step_logits), ref3.numpy()[0])
    return Check(f"{steps}-token decode one token at a time vs one full pass", diff3 <= TOLERANCE, diff3)


def _guard_check(session, n_layers: int, n_heads: int, head_dim: int, tokenizer, guard) -> Check:
    """The graph lowers exactly the tokens `prover_replica.CrashRule` names, after every kind of fed token."""
    import numpy as np

    from tactics_core.gpt.prover_replica import CrashRule

    rule = CrashRule.of(tokenizer)
    # The newline the prover feeds (a line starts), a `/`-ending token if the vocabulary has one, and a
    # plain token (neither): each kind of fed token the rule tells apart.
    plain = np.flatnonzero(~rule.ends_slash & ~rule.line_start)
    fed = ([int(tokenizer.encode("\n")[0])] + [int(i) for i in np.flatnonzero(rule.ends_slash)[:1]]
           + [int(i) for i in plain[-1:]])
    feed = {"input_ids": np.asarray([fed], dtype=np.int64)}
    for i in range(n_layers):
        for kv in ("key", "value"):
            feed[f"past_key_values.{i}.{kv}"] = np.zeros((1, n_heads, 0, head_dim), dtype=np.float32)
    out = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))
    lowered = out[RAW_LOGITS][0] - out["logits"][0]  # [seq, vocab]
    want = np.stack([rule.mask(t) for t in fed]) * guard.penalty
    diff = _max_diff(lowered, want)
    return Check("crash guard", diff <= 1e-3, None,
                 f"{int(rule.banned.sum())} tokens hold //, {int(rule.bad_first.sum())} can not start a line; lowered "
                 f"by {guard.penalty:g} (graph vs rule: max|Δ|={diff:.1e})")


def default_output_dir(export_root: str | os.PathLike = EXPORT_DIR) -> Path:
    """`export/tactics-YYYY-MM-DD-HH-MM-SS`, the folder name the prover's users know."""
    return Path(export_root) / time.strftime("tactics-%Y-%m-%d-%H-%M-%S")


def _checked_tokenizer(loaded, checkpoint: Path):
    """The tokenizer the checkpoint was trained with (its sha256 and vocabulary size), or a
    one-line error saying which file to restore."""
    from tactics_core.gpt.tokenizer import file_sha256, load_tokenizer

    tokenizer = load_tokenizer(loaded.tokenizer_path)
    want_sha = loaded.payload.get("tokenizer_sha256")
    if want_sha and file_sha256(loaded.tokenizer_path) != want_sha:  # find_tokenizer checks too; be explicit
        raise TacticsError(
            f"{loaded.tokenizer_path} is not the tokenizer {checkpoint} was trained with (sha256 differs); "
            "restore the tokenizer.json from that run"
        )
    if tokenizer.vocab_size != loaded.config.vocab_size:
        raise TacticsError(
            f"{loaded.tokenizer_path} has {tokenizer.vocab_size} tokens but {checkpoint} expects "
            f"{loaded.config.vocab_size}; copy the tokenizer it was trained with next to it"
        )
    return tokenizer


def export_model(
    checkpoint: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    crash_guard: bool = True,
) -> ExportReport:
    """Export a checkpoint to a verified export folder; raise TacticsError if any check fails.

    `crash_guard` (default): the graph lowers the logits of tokens that would
    write `//`, on which acorn f47631b0 panics (`prover_replica.CrashRule`); the
    model's own logits stay beside them as `raw_logits`.
    """
    import torch

    from tactics_core.runs.checkpoints import load_model

    start = time.perf_counter()
    if not checkpoint:
        from tactics_core.runs.workspace_runs import best_model

        checkpoint = best_model(CHECKPOINT_DIR)
    checkpoint = Path(checkpoint)
    output = Path(output_dir) if output_dir else default_output_dir()
    remove_stale_partials(output.parent)  # what exports killed mid-write left beside it
    if output.exists():
        raise TacticsError(f"{output} already exists; give another OUTPUT_DIR or remove it")
    total = 6
    report(progress, 0, total, "loading checkpoint")
    loaded = load_model(checkpoint, device="cpu")
    model = loaded.model.float().eval()
    tokenizer = _checked_tokenizer(loaded, checkpoint)
    check(cancel)
    config = export_config(loaded, tokenizer)
    guard = None
    if crash_guard:
        from tactics_core.gpt.model import CrashGuard

        guard = CrashGuard.for_tokenizer(tokenizer)
    config["crash_guard"] = guard is not None
    config["outputs"] = output_names(loaded.config.n_layers, guard is not None)
    notes: list[str] = []
    if loaded.original_format:
        notes.append(f"original-format checkpoint; tokenizer {loaded.tokenizer_path} chosen by vocab size")
    with atomic_dir(output) as tmp:
        report(progress, 1, total, "exporting to ONNX (takes a while)")
        opset = _onnx_export(model, tmp / EXPORT_MODEL_FILE, guard)
        check(cancel)
        report(progress, 2, total, "writing tokenizer and config")
        shutil.copyfile(loaded.tokenizer_path, tmp / EXPORT_TOKENIZER_FILE)
        config["opset"] = opset
        (tmp / EXPORT_CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        report(progress, 3, total, "verifying")
        checks = verify_export(tmp, model, tokenizer, cancel=cancel, guard=guard)
        report(progress, 5, total, "verified")
        failed = [c for c in checks if not c.ok]
        if failed:
            raise TacticsError(
                f"export verification failed ({failed[0].line()}); nothing was written to {output}"
            )
    report(progress, total, total, "done")
    diffs = [c.max_abs_diff for c in checks if c.max_abs_diff is not None]
    return ExportReport(
        path=str(output),
        checkpoint=str(checkpoint),
        seconds=round(time.perf_counter() - start, 3),
        max_abs_diff=max(diffs) if diffs else 0.0,
        size_bytes=(output / EXPORT_MODEL_FILE).stat().st_size,
        opset=opset,
        config=config,
        checks=checks,
        notes=notes,
    )
