"""The scorer exports acorn loads: finding the .onnx, its feature contract checked against acorn's catalog, the policy that runs it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

from tactics_core.acorn.generative_judge import AcornSetup
from tactics_core.scorer.contract import FEATURE_CONTRACT_SCHEMA, features_path
from tactics_core.common.errors import TacticsError

from .setup import EVAL_COMMIT, META_SUFFIX, MODEL_POLICIES, POLICIES, SHORT_LABELS, TRACE_SCHEMA

def find_scorer_onnx(model: str | os.PathLike) -> Path | None:
    """The `.onnx` of a scorer export (a folder holding `X.onnx` + `X.features.json`, or the .onnx itself);
    None when `model` is not one (e.g. a GPT export folder or a checkpoint)."""
    path = Path(model)
    if path.is_dir():
        found = sorted(p for p in path.glob("*.onnx") if features_path(p).is_file())
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise TacticsError(f"{path} holds several scorer exports ({names}); give the .onnx file to judge")
        return found[0] if found else None
    if path.suffix == ".onnx":
        return path
    return None


def scorer_onnx(model: str | os.PathLike) -> Path:
    """The `.onnx` of a scorer export, resolved; one line when `model` is no scorer export."""
    found = find_scorer_onnx(model)
    if found is None:
        path = Path(model)
        if path.is_dir():
            raise TacticsError(f"{path} holds no scorer export (an X.onnx with X.features.json beside it); export the scorer first")
        raise TacticsError(f"{path} is not a scorer export; give its .onnx or the folder holding it")
    return found.resolve()


def is_scorer_export(model: str | os.PathLike) -> bool:
    try:
        return find_scorer_onnx(model) is not None
    except TacticsError:
        return True  # several scorers in one folder: still a scorer, the caller's lookup says which


def scorer_label(onnx: Path) -> str:
    """A short name for the export in reports and file names: its stem, or its folder's for a generic stem."""
    name = onnx.stem
    if name in ("model", "scorer", "export") and onnx.parent.name:
        name = onnx.resolve().parent.name
    return safe_label(name)


def safe_label(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


def read_feature_catalog(meta: Path) -> list[str]:
    """The feature names acorn knows, from a trace's `T.meta.json` (schema acorn-activated-step-trace-v2)."""
    try:
        data = json.loads(Path(meta).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TacticsError(f"{meta}: not a readable trace meta.json ({exc}); collect the trace again") from None
    names = data.get("feature_vector") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("schema") != TRACE_SCHEMA or not isinstance(names, list):
        raise TacticsError(
            f"{meta}: not acorn's trace metadata (schema {TRACE_SCHEMA} with a feature_vector list); "
            f"use the .meta.json acorn {EVAL_COMMIT} writes beside a trace"
        )
    return [str(n) for n in names]


_CATALOGS: dict[tuple[str, int, int], list[str]] = {}


def feature_catalog(setup: AcornSetup) -> list[str] | None:
    """The feature names this acorn knows (its trace catalog), cached per binary; None if it wrote none.

    acorn writes `T.meta.json` when it opens `--trace-out`, before it looks for the library, so an
    eval in an empty temp folder gives the catalog in milliseconds (acorn then says it found no acornlib).
    """
    try:
        st = setup.binary.stat()
        key = (str(setup.binary), st.st_size, st.st_mtime_ns)
    except OSError:
        return None
    if key in _CATALOGS:
        return _CATALOGS[key]
    with tempfile.TemporaryDirectory(prefix="tactics-acorn-catalog-") as tmp:
        empty = Path(tmp) / "empty"
        empty.mkdir()
        trace = Path(tmp) / "catalog.jsonl.zst"
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                [str(setup.binary), "--lib", str(empty), "eval", "--trace-out", str(trace)],
                capture_output=True, timeout=60, env=setup.environment(), stdin=subprocess.DEVNULL, cwd=tmp,
            )
        meta = Path(tmp) / ("catalog" + META_SUFFIX)
        if not meta.is_file():
            return None
        try:
            catalog = read_feature_catalog(meta)
        except TacticsError:
            return None
    _CATALOGS[key] = catalog
    return catalog


def check_scorer_export(onnx: str | os.PathLike, catalog: Sequence[str] | str | os.PathLike | None = None) -> list[str]:
    """Check a scorer export before acorn loads it; return its input features in order.

    The `.features.json` beside the `.onnx` must be acorn's contract
    (`{"schema": "acorn-scorer-feature-contract-v1", "input_features": [...]}`); with a
    `catalog` (the names, or a trace `.meta.json`), every input feature must be one acorn knows.
    Each failure is one line naming the file (acorn itself names only the .onnx).
    """
    onnx = Path(onnx)
    if not onnx.is_file():
        raise TacticsError(f"scorer export {onnx} not found; give the .onnx a scorer export wrote (or its folder)")
    contract = features_path(onnx)
    if not contract.is_file():
        raise TacticsError(
            f"{contract} not found: acorn needs the feature contract beside {onnx.name}; export the scorer again"
        )
    try:
        data = json.loads(contract.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TacticsError(f"{contract}: not readable JSON ({exc}); export the scorer again") from None
    if not isinstance(data, dict) or data.get("schema") != FEATURE_CONTRACT_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise TacticsError(
            f"{contract}: schema {found!r} is not acorn's {FEATURE_CONTRACT_SCHEMA!r}; export the scorer again"
        )
    features = data.get("input_features")
    if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
        raise TacticsError(f"{contract}: input_features must be a non-empty list of feature names; export the scorer again")
    seen: set[str] = set()
    for name in features:
        if name in seen:
            raise TacticsError(f"{contract}: feature {name!r} is listed twice (acorn refuses that); export the scorer again")
        seen.add(name)
    if catalog is not None:
        source = ""
        if isinstance(catalog, (str, os.PathLike)):
            source = f" (catalog {catalog})"
            catalog = read_feature_catalog(Path(catalog))
        known = set(catalog)
        unknown = [f for f in features if f not in known]
        if unknown:
            more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
            raise TacticsError(
                f"{contract}: feature {unknown[0]!r}{more} is not one acorn {EVAL_COMMIT} computes{source}; "
                f"train the scorer on features from acorn's trace meta.json"
            )
    check_one_file(onnx)
    return list(features)


def check_one_file(onnx: Path) -> None:
    """acorn 0.2.6 reads a model whose weights sit in a file beside it (`X.onnx.data`, what torch's
    exporter writes by default since 2.9) relative to ITS working folder, so it refuses it when run
    from the acornlib ("cannot get file size ... X.onnx.data"), and `include_bytes!` cannot embed it."""
    import onnx as onnx_lib

    try:
        proto = onnx_lib.load(str(onnx), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - onnx's own words
        raise TacticsError(f"{onnx}: not an ONNX model ({str(exc).splitlines()[0][:120]}); export the scorer again") from None
    external = {
        entry.value for t in proto.graph.initializer if t.data_location == onnx_lib.TensorProto.EXTERNAL
        for entry in t.external_data if entry.key == "location"
    }
    if external:
        raise TacticsError(
            f"{onnx} keeps its weights in {', '.join(sorted(external))}, which acorn reads relative to its own working "
            "folder (it refuses the model when run from the acornlib); save it as one file: "
            "onnx.save(onnx.load(X), Y, save_as_external_data=False), or export it with `tactics export`"
        )


def check_policy(policy: str, model: Path | None) -> None:
    """The policy/model pair acorn accepts (what it would refuse with `Error: ...`), before it starts."""
    if policy not in POLICIES:
        raise TacticsError(f"unknown policy {policy!r}; acorn {EVAL_COMMIT} has {', '.join(POLICIES)}")
    if policy in MODEL_POLICIES and model is None:
        raise TacticsError(f"policy {policy} needs a scorer export: give --model X.onnx")
    if policy not in MODEL_POLICIES and model is not None:
        raise TacticsError(f"--model goes with a model policy ({', '.join(MODEL_POLICIES)}), not {policy}")


def policy_label(policy: str, model: Path | None) -> str:
    """The name a run goes by in reports, trace files and trace metadata."""
    if model is not None:
        base = scorer_label(model)
        return base if policy == "model" else f"{base}-{policy}"
    return SHORT_LABELS.get(policy, policy)
