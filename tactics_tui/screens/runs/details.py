"""The Runs screen's side box as text: the highlighted run, or the diff of two."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from tactics_core.common.formatting import format_duration
from tactics_core.runs.run_events import reason_words

DIFF_LINES = 5  # settings shown in the side box; `tactics runs diff` prints them all


def run_details(info: Any, exports: list[Any]) -> str:
    """The highlighted run in a few lines: status, figures, where, which exports came from it."""
    status = reason_words(info.status)
    started = time.strftime("%m-%d %H:%M", time.localtime(info.started)) if info.started else "–"
    lines = [
        info.name + (" (current)" if info.current else ""),
        f"{status} · {info.preset or '?'} · {started}",
        f"steps {info.steps}" + (f"/{info.total_steps}" if info.total_steps else "") + f" · {format_duration(info.duration_s)}",
    ]
    if info.kind == "scorer":
        lines += [
            f"best val   {num(info.best_val_loss, '.4f')} (scorer)",
            f"best AUC   {num(info.best_auc, '.4f')} · used rank {num(info.best_used_rank, '.4f')}",
            f"rows/s     {num(info.tokens_per_s, ',.0f')}",
        ]
    else:
        lines += [
            f"best val   {num(info.best_val_loss, '.4f')} ({num(info.best_val_bpb, '.3f')} bpb)",
            f"best proof {num(info.best_proof_loss, '.4f')} ({num(info.best_proof_bpb, '.3f')} bpb)",
            f"tokens/s   {num(info.tokens_per_s, ',.0f')}",
        ]
    if info.message and info.status in ("failed", "vanished", "stopped"):
        lines.append(info.message[:160])
    mine = [e for e in exports if e.run == info.name and e.checkpoint and Path(e.checkpoint).parent == Path(info.path).resolve()]
    if not mine:
        mine = [e for e in exports if e.run == info.name]
    for e in mine[-3:]:
        lines.append(f"export {Path(e.path).name} ← {Path(e.checkpoint or '?').name} @ {e.step}")
    lines.append(str(info.path))
    return "\n".join(lines)


def diff_text(diff: Any) -> str:
    """What `tactics runs diff` prints, narrow enough for the side box."""
    lines = [f"{diff.a} vs", f"{diff.b}"]
    if diff.settings:
        for key, va, vb in diff.settings[:DIFF_LINES]:
            lines.append(f"{key}: {_value(va)} → {_value(vb)}")
        if len(diff.settings) > DIFF_LINES:  # the box holds 14 lines at 80x24
            lines.append(f"… {len(diff.settings) - DIFF_LINES} more: tactics runs diff")
    else:
        lines.append("same settings")
    lines.append("")
    scorer = any(key == "best_auc" for key, _, _ in diff.figures)  # a scorer in the pair: leave out figures neither has
    for key, va, vb in diff.figures:
        if scorer and va is None and vb is None:
            continue
        if key in ("best_val_loss", "best_proof_loss", "best_proof_bpb", "best_auc", "best_used_rank", "steps", "tokens_per_s"):
            spec = ".3f" if key.endswith("bpb") else (",.0f" if key in ("steps", "tokens_per_s") else ".4f")
            lines.append(f"{key.removeprefix('best_')}: {num(va, spec)} | {num(vb, spec)}")
    return "\n".join(lines)


def num(value: Any, spec: str) -> str:
    """A figure as `spec` formats it; – for none (or not finite)."""
    return format(value, spec) if isinstance(value, (int, float)) and math.isfinite(value) else "–"


def _value(value: Any) -> str:
    return "–" if value is None else str(value)
