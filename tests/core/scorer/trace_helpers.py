"""Helpers of the scorer's tests: traces written by the tests themselves, in acorn 91f29ff1's format (src/prover/trace.rs), and
the small real trace committed in tests/fixtures/acorn_eval_91f29ff1."""

from __future__ import annotations

import pytest

import io
import json
from pathlib import Path

import zstandard

from tactics_core.scorer.traces import TRACE_SCHEMA, meta_path

REPO = Path(__file__).resolve().parents[3]
FIXTURE_DIR = REPO / "tests" / "fixtures" / "acorn_eval_91f29ff1"
NAMES = ("age", "depth", "atom_count", "goal_overlap", "is_negated")


def make_row(
    module="nat",
    goal="add_comm",
    skip=0,
    policy="depth-first",
    outcome="Success",
    activation=0,
    used=False,
    features=None,
    bucket=7,
    schema=TRACE_SCHEMA,
) -> dict:
    return {
        "schema": schema,
        "module": module,
        "goal": goal,
        "goal_bucket": bucket,
        "goal_first_line": 10,
        "goal_last_line": 12,
        "skip": skip,
        "policy": policy,
        "outcome": outcome,
        "activation_index": activation,
        "passive_id": activation + 3,
        "active_id": activation,
        "used_in_final_proof": used,
        "queue_score": 0.5,
        "queue_contradiction": False,
        "queue_shallow_status": "deep",
        "queue_is_shallow": False,
        "rule": "assumption",
        "truthiness": "factual",
        "feature_vector": list(features) if features is not None else [float(activation), 1.0, 2.0, 0.25, 0.0],
    }


def search_rows(module, goal, n, used=(), outcome="Success", skip=0, policy="depth-first", bucket=7) -> list[dict]:
    """The rows of one search: n activations, `used` the activation indices in the final proof."""
    return [
        make_row(module, goal, skip, policy, outcome, i, i in used, bucket=bucket)
        for i in range(n)
    ]


def standard_rows() -> list[dict]:
    """Three searches of two policies: one solved with 2 used steps, one timed out, one Inconsistent."""
    return (
        search_rows("nat", "add_comm", 6, used=(1, 4), bucket=3)
        + search_rows("nat", "mul_comm", 4, outcome="Timeout", bucket=95)
        + search_rows("list", "rev_rev", 3, used=(0,), outcome="Inconsistent", policy="model", skip=None, bucket=95)
    )


def encode_lines(rows) -> bytes:
    """JSON lines as acorn writes them (serde_json: compact); a str row is written as it is."""
    out = io.StringIO()
    for r in rows:
        out.write(r if isinstance(r, str) else json.dumps(r, separators=(",", ":")))
        out.write("\n")
    return out.getvalue().encode("utf-8")


def write_meta(trace: Path, names=NAMES, schema=TRACE_SCHEMA) -> Path:
    path = meta_path(trace)
    path.write_text(json.dumps({"schema": schema, "feature_vector": list(names)}, indent=2))
    return path


def write_trace(path: Path, rows, names=NAMES, schema=TRACE_SCHEMA, meta=True, frames=1) -> Path:
    """A finished trace (zstd frames closed) and its sidecar."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = encode_lines(rows)
    cctx = zstandard.ZstdCompressor(level=3)
    if frames == 1:
        blob = cctx.compress(data)
    else:
        step = max(1, len(data) // frames + 1)
        blob = b"".join(cctx.compress(data[i : i + step]) for i in range(0, len(data), step))
    path.write_bytes(blob)
    if meta:
        write_meta(path, names, schema)
    return path


def fixture_trace() -> Path:
    traces = sorted(FIXTURE_DIR.glob("*.jsonl.zst"))
    assert traces, f"the committed real trace is missing from {FIXTURE_DIR}"
    return traces[0]


def decompressed_rows(trace: Path) -> list[dict]:
    """Every row of a trace, read the plain way (the whole file at once) to check the reader."""
    text = zstandard.ZstdDecompressor().stream_reader(trace.read_bytes()).read().decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def real_trace() -> Path:
    """The small real trace of tests/fixtures/acorn_eval_91f29ff1 (import it into a test module to use it)."""
    return fixture_trace()



def learnable_search(rng, module, goal, bucket, n, solved=True) -> list[dict]:
    """A search whose used steps have high goal_overlap and low depth (learnable)."""
    used = set(rng.choice(n, size=max(1, n // 8), replace=False).tolist()) if solved else set()
    rows = []
    for i in range(n):
        u = i in used
        feats = [float(i), float(rng.integers(0, 5) + (0 if u else 3)), float(rng.integers(1, 30)),
                 float(rng.random() * 0.5 + (0.5 if u else 0.0)), float(rng.random() < 0.1)]
        rows.append(make_row(module, goal, 0, "default", "Success" if solved else "Timeout", i, u, feats, bucket))
    return rows


def write_learnable_traces(folder: Path) -> Path:
    """Two trace files a scorer can learn from: 40 searches of training buckets 0-3 and 12 of
    validation bucket 90."""
    import numpy as np

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    train_rows, val_rows = [], []
    for s in range(40):
        train_rows += learnable_search(rng, f"m{s % 5}", f"g{s}", s % 4, int(rng.integers(8, 30)), solved=s % 7 != 0)
    for s in range(12):
        val_rows += learnable_search(rng, f"v{s % 3}", f"h{s}", 90, int(rng.integers(8, 30)), solved=s % 5 != 0)
    write_trace(folder / "default-b00.jsonl.zst", train_rows)
    write_trace(folder / "default-b90.jsonl.zst", val_rows)
    return folder
