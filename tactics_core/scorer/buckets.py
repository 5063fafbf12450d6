"""acorn's goal buckets: every eval goal falls into one of 100 stable buckets (0-99); acorn
holds out 90-99 for validation. Written as acorn's `--eval-sample` writes them: "0-4,90-94"."""

from __future__ import annotations

from typing import Iterable

N_BUCKETS = 100


def parse_buckets(text: str) -> list[int]:
    """"0-3,90,92-93" -> [0, 1, 2, 3, 90, 92, 93]; ValueError with the reason otherwise."""
    out: set[int] = set()
    parts = [p.strip() for p in str(text).split(",")]
    if not any(parts):
        raise ValueError("no bucket given")
    for part in parts:
        if not part:
            raise ValueError(f"empty item in {text!r}")
        lo, sep, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ValueError(f"{part!r} is not a bucket or a range like 90-99") from None
        if not (0 <= a < N_BUCKETS and 0 <= b < N_BUCKETS) or b < a:
            raise ValueError(f"{part!r} is outside 0-{N_BUCKETS - 1} or reversed")
        out.update(range(a, b + 1))
    return sorted(out)


def format_buckets(buckets: Iterable[int]) -> str:
    """[0, 1, 2, 3, 90] -> "0-3,90"."""
    items = sorted(set(int(b) for b in buckets))
    runs: list[str] = []
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        runs.append(str(items[i]) if i == j else f"{items[i]}-{items[j]}")
        i = j + 1
    return ",".join(runs)
