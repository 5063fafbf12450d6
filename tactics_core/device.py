"""Which torch device a name means: the one rule for `auto` and for explicit names.

`auto` is CUDA when torch sees a GPU, else Apple's MPS, else the CPU. The
trainer checks explicit names (a run that asked for `cuda` on a machine
without one fails in its first second, with what to do); the completer
passes them through (`check=False`), because ONNX Runtime picks its own
provider for `cuda` and falls back to the CPU. torch is imported only when
the name needs it.
"""

from __future__ import annotations

from .errors import TacticsError


def _mps_available(torch) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def resolve_device(name: str | None, check: bool = True) -> str:
    """auto -> cuda if available, else mps, else cpu; explicit names are checked unless `check` is false."""
    name = (name or "auto").strip()
    if name != "auto" and not check:
        return name
    try:
        import torch
    except ImportError:  # pragma: no cover - an ONNX-only install
        if name == "auto":
            return "cpu"
        raise
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if _mps_available(torch) else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TacticsError(f"device {name!r} asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    if name == "mps" and not _mps_available(torch):
        raise TacticsError("device 'mps' asked for, but this torch has no MPS support; use --device cpu or auto")
    if name != "cpu" and not name.startswith("cuda") and name != "mps":
        raise TacticsError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return name
