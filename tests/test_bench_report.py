"""bench/report.py end to end at a tiny scale: every ratio divides two figures measured in the run.

Issue 14: a ratio against a constant from another machine or sitting (605
tokens/s, 78 ms, 3.84 bits/byte...) misled twice, so the report must only
print ratios whose both sides it measured. The tiny profile runs every bench
on 150 files with a tiny model in well under a minute; its figures mean nothing,
only their provenance is checked.
"""

from __future__ import annotations

import io
import math
import sys
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
sys.path[:0] = [str(BENCH)]

import figures  # noqa: E402

# Figures quoted from other machines or sittings in earlier versions of the benches.
FORMER_CONSTANTS = {605, 605.0, 1550, 1550.0, 78, 78.0, 440, 440.0, 3.84, 12.35, 0.31, 2.6, 1866, 3407}


def numbers(tree, skip=("ratios",)):
    """Every number in a nest of dicts, lists and tuples (the ratios themselves left out)."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k not in skip:
                yield from numbers(v, skip)
    elif isinstance(tree, (list, tuple)):
        for v in tree:
            yield from numbers(v, skip)
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield float(tree)


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    from conftest import SHARED

    if not (SHARED / "corpora" / "acornlib-2025-11" / "proofs").is_dir():
        pytest.skip(f"shared corpora not found under {SHARED} (only in CI / the dev workplace)")
    import report

    work = tmp_path_factory.mktemp("report")
    r = report.run_all("tiny", SHARED, work, log=lambda m: None)
    return r, report.render(r, 1.0)


def test_every_ratio_has_both_sides_measured_in_the_run(tiny_report):
    r, text = tiny_report
    names = {x["name"] for x in r["ratios"]}
    # Each bench that compares two ways contributes its side-by-side ratios.
    assert any("original recipe" in n for n in names), names  # training throughput
    assert any("full recompute" in x["a"]["label"] for x in r["ratios"])  # completion latency
    assert any("prefill" in x["b"]["label"] for x in r["ratios"])
    assert any(n.startswith("whole-file bits/byte") for n in names)  # time to quality --baseline
    assert any(n.startswith("proof_bpb") for n in names)
    measured = set(numbers(r["sections"]))
    for x in r["ratios"]:
        a, b = x["a"]["value"], x["b"]["value"]
        assert math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0, x
        assert x["ratio"] == pytest.approx(a / b)
        # Both sides are figures this run measured, not constants.
        assert a in measured and b in measured, x
        assert a not in FORMER_CONSTANTS and b not in FORMER_CONSTANTS, x
        assert figures.ratio_line(x) in text


def test_report_has_machine_figures_and_a_loss_plot(tiny_report):
    r, text = tiny_report
    assert "**Machine:**" in text and "torch" in text and "onnxruntime" in text and "git " in text
    assert "load average" in text and "shared this machine" in text
    for heading in ("Corpus stats", "Tokenizer kinds", "Training throughput", "Completion latency",
                    "Time to quality"):
        assert f"## {heading}" in text
    ttq = r["sections"]["time_to_quality"]
    for side in ("ours", "baseline"):
        for key in ("proof_bpb", "prover_exact_match_at_k", "first_line_marker_rate", "overflow_rate"):
            assert ttq[side]["prover"][key] is not None
        assert ttq[side]["whole_file_bpb"] > 0 and ttq[side]["curve"]
    assert "\x1b[" not in text and "wall-clock seconds" in text  # the plotext plot, plain text


def test_ratio_refuses_a_side_that_was_not_measured():
    for bad in (None, 0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError):
            figures.ratio("x", "a", 1.0, "b", bad, "s")
    x = figures.ratio("decode", "recompute", 40.0, "KV cache", 2.0, "ms", 1)
    assert figures.ratio_line(x) == "decode: recompute 40.0 ms vs KV cache 2.0 ms = 20.00x"


def test_no_bench_code_holds_a_former_reference_figure():
    """Numbers in code (comments and docstrings are history and may keep them)."""
    for path in sorted(BENCH.glob("*.py")):
        toks = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
        found = [(t.start[0], t.string) for t in toks if t.type == tokenize.NUMBER and float(t.string) in FORMER_CONSTANTS]
        assert not found, f"{path.name}: {found}"
