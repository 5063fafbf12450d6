"""The one-line description of the machine every benchmark prints with its figures.

Figures without the machine (and its load: other work slows them) mean little,
so each bench prints `machine: ...` first.
"""

from __future__ import annotations

import importlib
import inspect
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


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    VmHWM is the process's own peak; ru_maxrss survives exec, so a child of a
    big process (bench/report.py holds torch) would report its parent's size.
    """
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# `peak_rss_mb` as source, for the `python -c` children the benches measure in.
PEAK_RSS_SOURCE = inspect.getsource(peak_rss_mb)
