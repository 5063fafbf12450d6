"""The one-line description of the machine every benchmark prints with its figures.

Figures without the machine (and its load: other work slows them) mean little,
so each bench prints `machine: ...` first.
"""

from __future__ import annotations

import importlib
import os
import platform
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe(*packages: str) -> str:
    """CPU, cores, load average, Python and the versions of `packages` (imported here)."""
    try:
        load = "load average %.1f %.1f %.1f at start" % os.getloadavg()
    except (AttributeError, OSError):
        load = "load average unknown"
    versions = []
    for name in packages:
        try:
            versions.append(f"{name} {importlib.import_module(name).__version__}")
        except ImportError:
            versions.append(f"{name} missing")
    parts = [cpu_model(), f"{os.cpu_count()} cores", f"Python {platform.python_version()}", *versions, load]
    return ", ".join(parts)
