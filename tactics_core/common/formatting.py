"""How sizes and durations are written, the same in the CLI and the TUI.

Pure functions on numbers (no imports beyond the standard library), so both
front ends and the core's own one-line summaries can share them.
"""

from __future__ import annotations

import math
from typing import Any

_SIZE_UNITS = ("B", "KB", "MB", "GB", "TB")


def human_size(n: Any, missing: str = "?", decimals_from: str = "KB") -> str:
    """`n` bytes in binary units: '512 B', '1.5 KB', '3.2 GB'.

    Units below `decimals_from` are written whole (the system pane shows
    memory as '812 MB', '1.5 GB'); anything that is not a number is `missing`.
    """
    if isinstance(n, bool) or not isinstance(n, (int, float)):
        return missing
    whole = _SIZE_UNITS[: _SIZE_UNITS.index(decimals_from)]
    value = float(n)
    for unit in _SIZE_UNITS:
        if value < 1024 or unit == _SIZE_UNITS[-1]:
            return f"{value:.0f} {unit}" if unit in whole else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def format_duration(seconds: Any, missing: str = "–") -> str:
    """Whole seconds as '5s', '1m05s', '1h01m' (rounded, never negative);
    anything that is not a finite number is `missing`."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return missing
    secs = int(round(max(0.0, seconds)))
    if secs >= 3600:
        return f"{secs // 3600}h{secs % 3600 // 60:02d}m"
    if secs >= 60:
        return f"{secs // 60}m{secs % 60:02d}s"
    return f"{secs}s"
