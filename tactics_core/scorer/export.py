"""A scorer checkpoint as the files today's acorn loads: `NAME.onnx` + `NAME.features.json`.

acorn 0.2.6 (`acorn eval --policy model --model NAME.onnx`, and its embedded default through
`include_bytes!`) reads one self-contained ONNX file — input `input` [batch, F] float32,
output `output` [batch, 1], the probability that a step is used in the final proof — with
ONNX Runtime 1.20 (IR <= 10, opset <= 21), and takes the feature order from the
`NAME.features.json` beside it (`{"schema": "acorn-scorer-feature-contract-v1",
"input_features": [...]}`). The standardization is inside the graph. Every export is
checked before its folder appears (built under a temporary name, renamed at the end):
onnx.checker, the runtime limits, one file (no external data), the contract's names and
shapes, and ONNX Runtime against PyTorch on real trace rows (synthetic rows drawn from the
training statistics only when no trace of the run is left, said in the report).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from tactics_core.common.atomic import atomic_dir, remove_stale_partials
from tactics_core.common.errors import TacticsError
from tactics_core.common.onnx_export import EXPORT_OPSET, Check, ExportReport, fit_runtime_limits, quiet_exporter, runtime_limits_check
from tactics_core.common.progress import CancelToken, ProgressFn, check, report
from tactics_core.common.workspace import EXPORT_DIR
from tactics_core.scorer.contract import FEATURE_CONTRACT_SCHEMA, INPUT_NAME, OUTPUT_NAME, features_path

TOLERANCE = 1e-5  # max |ONNX Runtime - PyTorch| of the probabilities
VERIFY_ROWS = 4096
CONFIG_FILE = "config.json"


def default_output_dir(export_root: str | os.PathLike = EXPORT_DIR) -> Path:
    return Path(export_root) / time.strftime("scorer-%Y-%m-%d-%H-%M-%S")


def _load(checkpoint: Path):
    from tactics_core.runs.checkpoints import load_checkpoint
    from tactics_core.scorer.model import ScorerConfig, ScorerNet

    payload = load_checkpoint(checkpoint)
    if payload.get("kind") != "scorer":
        raise TacticsError(f"{checkpoint} is not a scorer checkpoint")
    config = ScorerConfig.from_dict(payload["model_config"])
    net = ScorerNet(config)
    net.load_state_dict(payload["model"])
    return payload, net.eval()


def _onnx_export(net, path: Path) -> int:
    import torch

    from tactics_core.scorer.model import ProbabilityScorer

    width = len(net.config.features)
    with quiet_exporter("report it"):
        torch.onnx.export(
            ProbabilityScorer(net).eval(), (torch.zeros(3, width),), str(path),
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch_size", min=1, max=1 << 20)},),
            opset_version=EXPORT_OPSET, dynamo=True, external_data=False, optimize=True, verbose=False,
        )
    return fit_runtime_limits(path)


def _verify_rows(payload: dict[str, Any], net) -> tuple[np.ndarray, str]:
    """Real rows of the run's traces (its validation buckets first), else synthetic ones."""
    names = list(net.config.features)
    for entry in payload.get("traces") or []:
        trace = Path(entry.get("file", ""))
        if not trace.is_file():
            continue
        from tactics_core.scorer.data import trace_store_root
        from tactics_core.scorer.trace_store import load_columns

        try:
            cols = load_columns(trace, trace_store_root(trace.parent))
        except TacticsError:
            continue
        index = {n: i for i, n in enumerate(cols.feature_names)}
        if any(n not in index for n in names):
            continue
        take = min(VERIFY_ROWS, cols.rows)
        rows = np.asarray(cols.features[:take])[:, [index[n] for n in names]].astype(np.float32)
        return rows, f"{take} real rows of {trace.name}"
    rng = np.random.default_rng(0)
    mean = net.feature_mean.numpy()
    scale = net.feature_scale.numpy()
    return (mean + scale * rng.standard_normal((512, len(names)))).astype(np.float32), \
        "512 synthetic rows (no trace of the run is left to read)"


def verify_scorer_export(onnx_path: Path, net, rows: np.ndarray, rows_note: str) -> list[Check]:
    """The checks every scorer export passes before its folder appears."""
    import onnx
    import onnxruntime as ort
    import torch

    checks: list[Check] = []
    proto = onnx.load(str(onnx_path), load_external_data=False)
    try:
        onnx.checker.check_model(proto)
        checks.append(Check("onnx.checker", True))
    except Exception as exc:  # noqa: BLE001 - the checker's own words
        checks.append(Check("onnx.checker", False, detail=str(exc).splitlines()[0][:160]))
    checks.append(runtime_limits_check(onnx_path))
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    extra = [p.name for p in onnx_path.parent.iterdir() if p.name.endswith(".data") or p.name.endswith(".onnx.data")]
    checks.append(Check("one self-contained file", not external and not extra,
                        detail="weights inside the .onnx (acorn embeds it with include_bytes!)"))
    contract = json.loads(features_path(onnx_path).read_text(encoding="utf-8"))
    names = contract.get("input_features")
    width = len(net.config.features)
    ok_contract = contract.get("schema") == FEATURE_CONTRACT_SCHEMA and names == list(net.config.features)
    checks.append(Check("features.json", ok_contract, detail=f"{len(names or [])} input features, {FEATURE_CONTRACT_SCHEMA}"))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ins, outs = session.get_inputs(), session.get_outputs()
    shape_ok = (
        [i.name for i in ins] == [INPUT_NAME] and [o.name for o in outs] == [OUTPUT_NAME]
        and ins[0].shape[1] == width and outs[0].shape[1] == 1 and ins[0].type == "tensor(float)"
    )
    checks.append(Check("contract", shape_ok, detail=f"input {ins[0].name} {ins[0].shape}, output {outs[0].name} {outs[0].shape}"))
    with torch.no_grad():
        want = torch.sigmoid(net(torch.from_numpy(rows))).numpy()
    got = session.run([OUTPUT_NAME], {INPUT_NAME: rows})[0]
    diff = float(np.max(np.abs(got[:, 0] - want))) if len(rows) else 0.0
    one = session.run([OUTPUT_NAME], {INPUT_NAME: rows[:1]})[0]
    diff = max(diff, float(abs(one[0, 0] - want[0]))) if len(rows) else diff
    checks.append(Check("ONNX Runtime = PyTorch", diff <= TOLERANCE and got.shape == (len(rows), 1),
                        max_abs_diff=diff, detail=f"on {rows_note}, batch {len(rows)} and 1"))
    return checks


def export_scorer(
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ExportReport:
    """A verified scorer export folder: NAME.onnx, NAME.features.json, config.json (NAME = the folder's name)."""
    start = time.perf_counter()
    checkpoint = Path(checkpoint)
    output = Path(output_dir) if output_dir else default_output_dir()
    remove_stale_partials(output.parent)
    if output.exists():
        raise TacticsError(f"{output} already exists; give another OUTPUT_DIR or remove it")
    total = 4
    report(progress, 0, total, "loading checkpoint")
    payload, net = _load(checkpoint)
    names = list(net.config.features)
    rows, rows_note = _verify_rows(payload, net)
    check(cancel)
    name = output.name
    config = {
        "model_type": "acorn-proof-step-scorer",
        "features": names,
        "hidden_size": net.config.hidden_size,
        "hidden_layers": net.config.hidden_layers,
        "checkpoint": str(checkpoint),
        "step": payload.get("global_step"),
        "figures": payload.get("figures") or {},
        "select_by": payload.get("select_by"),
        "traces": payload.get("traces") or [],
        "train_buckets": payload.get("train_buckets"),
        "val_buckets": payload.get("val_buckets"),
        "run": payload.get("run"),
        "embed": f'include_bytes!("../../files/models/{name}.onnx") and include_str!("../../files/models/{name}.features.json")',
    }
    with atomic_dir(output) as tmp:
        report(progress, 1, total, "exporting to ONNX")
        model_file = tmp / f"{name}.onnx"
        opset = _onnx_export(net, model_file)
        features_path(model_file).write_text(
            json.dumps({"schema": FEATURE_CONTRACT_SCHEMA, "input_features": names}, indent=2) + "\n", encoding="utf-8")
        config["opset"] = opset
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        check(cancel)
        report(progress, 2, total, "verifying")
        checks = verify_scorer_export(model_file, net, rows, rows_note)
        failed = [c for c in checks if not c.ok]
        if failed:
            raise TacticsError(f"scorer export verification failed ({failed[0].line()}); nothing was written to {output}")
    report(progress, total, total, "done")
    diffs = [c.max_abs_diff for c in checks if c.max_abs_diff is not None]
    return ExportReport(
        path=str(output), checkpoint=str(checkpoint), seconds=round(time.perf_counter() - start, 3),
        max_abs_diff=max(diffs) if diffs else 0.0, size_bytes=(output / f"{name}.onnx").stat().st_size,
        opset=opset, config=config, checks=checks, notes=[] if "real" in rows_note else [f"verified on {rows_note}"],
    )
