"""Which torch device a name means: the one rule for `auto` and for explicit names.

`auto` is CUDA when torch sees a GPU, else Apple's MPS, else the CPU. The
trainer checks explicit names (a run that asked for `cuda` on a machine
without one fails in its first second, with what to do); the completer
passes them through (`check=False`), because ONNX Runtime picks its own
provider for `cuda` and falls back to the CPU. torch is imported only when
the name needs it. `resolve_precision` is the same kind of rule for
`training.precision` (bf16 autocast on GPUs that have it).
"""

from __future__ import annotations

from tactics_core.common.errors import TacticsError


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


def cuda_bf16(device: str) -> bool:
    """True when `device` is a CUDA GPU that computes bfloat16 natively (Ampere and later)."""
    import torch

    return bool(device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def resolve_precision(precision: str | None, device: str) -> str:
    """`training.precision` on `device` -> "bf16" (autocast) or "fp32".

    auto = bf16 on a CUDA GPU with bf16, fp32 elsewhere. On CPUs bf16 autocast is not
    faster where it counts: on 2 cores of an AVX512-BF16 EPYC the trainer's steps take the
    same time (1 thread: 0.90x), so auto keeps fp32 there; an explicit bf16 is honoured on
    any CPU and on CUDA with bf16, and fails where autocast has no bf16 (MPS, old GPUs).
    """
    precision = (precision or "auto").strip()
    if precision == "fp32":
        return "fp32"
    if precision == "auto":
        return "bf16" if cuda_bf16(device) else "fp32"
    if precision != "bf16":
        raise TacticsError(f"unknown precision {precision!r}; use auto, fp32 or bf16")
    if device == "cpu" or cuda_bf16(device):
        return "bf16"
    raise TacticsError(f"precision 'bf16' asked for, but device {device!r} has no bf16 autocast; use precision = \"auto\" or \"fp32\"")


def autocast(device: str, precision: str = "fp32"):
    """bf16 autocast when `precision` (device.resolve_precision) says bf16; plain fp32 otherwise.
    Weights, gradients and optimizer state stay fp32 either way."""
    import contextlib

    import torch

    if precision == "bf16":
        return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
