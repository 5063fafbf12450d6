"""Ratios built from two measured numbers, and how they are written.

Every "x faster" in a report comes from `ratio()`, which takes both sides as
figures measured in the same run (never a constant from another machine or
sitting, issue 14), keeps both in the result, and refuses a side that is
missing or not a positive number; `ratio_line()` writes both sides next to
the ratio, so a reader (and tests/test_bench_report.py) can check them.
"""

from __future__ import annotations

import math


def ratio(name: str, a_label: str, a: float, b_label: str, b: float, unit: str, digits: int = 1) -> dict:
    """`a / b` with both sides kept: {"name", "a": {"label", "value"}, "b": {...}, "unit", "ratio"}."""
    for label, v in ((a_label, a), (b_label, b)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"ratio {name!r}: side {label!r} is not a measured positive number: {v!r}")
    return {"name": name, "a": {"label": a_label, "value": float(a)}, "b": {"label": b_label, "value": float(b)},
            "unit": unit, "digits": digits, "ratio": float(a) / float(b)}


def _num(v: float, digits: int) -> str:
    return f"{v:,.{digits}f}"


def ratio_line(r: dict) -> str:
    """'name: label_a 1,234 unit vs label_b 567 unit = 2.18x'."""
    d = r["digits"]
    return (f"{r['name']}: {r['a']['label']} {_num(r['a']['value'], d)} {r['unit']} vs "
            f"{r['b']['label']} {_num(r['b']['value'], d)} {r['unit']} = {r['ratio']:.2f}x")


def print_ratios(ratios: list[dict], where: str = "in this run") -> None:
    """The block a bench ends with: each ratio with both of its sides, all measured above `where`."""
    if ratios:
        print(f"\nratios, both sides measured above {where}:")
        for r in ratios:
            print(f"  {ratio_line(r)}")
