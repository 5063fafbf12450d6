"""What acorn 0.2.6 reads of a scorer: the feature contract beside the ONNX file.

`X.onnx` takes `input` [batch, F] float32 and gives `output` [batch, 1]; the file
`X.features.json` beside it (acorn: `Path::with_extension("features.json")`) names the F
features in order: `{"schema": FEATURE_CONTRACT_SCHEMA, "input_features": [...]}`. The export
writes it, the judge checks it before acorn loads it: one definition for both.
"""

from __future__ import annotations

from pathlib import Path

FEATURE_CONTRACT_SCHEMA = "acorn-scorer-feature-contract-v1"
FEATURES_SUFFIX = ".features.json"
INPUT_NAME, OUTPUT_NAME = "input", "output"


def features_path(onnx: Path) -> Path:
    """`X.onnx` -> `X.features.json`, as acorn finds it."""
    onnx = Path(onnx)
    return onnx.with_name(onnx.stem + FEATURES_SUFFIX) if onnx.suffix else onnx.with_name(onnx.name + FEATURES_SUFFIX)
