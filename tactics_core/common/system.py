"""What a training process costs the machine: CPU %, resident memory, threads; GPU use on CUDA.

Read from the process by its pid with psutil (a small, long-kept library that reads /proc on
Linux and the matching calls on macOS, so the TUI need not parse /proc itself or import torch
to ask CUDA). GPU figures come from NVML (`pynvml`, from the nvidia-ml-py package, when
installed) or else from `nvidia-smi`; both are optional and only asked when the run is on CUDA.

`ProcessSampler(pid).sample()` returns a `ProcessStats`, or one with `gone=True` once the
process has ended. CPU % is over the time since the previous sample (100 % = one core busy).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from tactics_core.common.formatting import human_size


@dataclass
class GpuStats:
    util_percent: float | None
    memory_used: int | None  # bytes, the whole GPU
    memory_total: int | None
    process_memory: int | None  # bytes held by the training process, when known
    name: str = ""


@dataclass
class ProcessStats:
    pid: int
    gone: bool = False
    cpu_percent: float | None = None
    rss: int | None = None
    threads: int | None = None
    cores: int | None = None
    gpu: GpuStats | None = None
    gpu_note: str = ""
    error: str = ""
    pids: tuple[int, ...] = ()  # a data-parallel run: every rank's pid, figures summed over them


class ProcessSampler:
    """Samples one process; keep it between samples so CPU % covers the interval between them."""

    def __init__(self, pid: int, gpu: bool = False, gpu_interval: float = 2.0) -> None:
        self.pid = int(pid)
        self.want_gpu = gpu
        self.gpu_interval = gpu_interval
        self._proc: Any = None
        self._gpu: GpuStats | None = None
        self._gpu_note = ""
        self._gpu_at = 0.0

    def sample(self) -> ProcessStats:
        try:
            import psutil
        except ImportError:
            return ProcessStats(self.pid, error="install psutil for process figures (pip install psutil)")
        try:
            if self._proc is None:
                self._proc = psutil.Process(self.pid)
                self._proc.cpu_percent(None)  # starts the interval; the first figure comes next time
                cpu = None
            else:
                cpu = self._proc.cpu_percent(None)
            if self._proc.status() == psutil.STATUS_ZOMBIE:
                return ProcessStats(self.pid, gone=True)
            with self._proc.oneshot():
                rss = self._proc.memory_info().rss
                threads = self._proc.num_threads()
        except psutil.NoSuchProcess:
            return ProcessStats(self.pid, gone=True)
        except psutil.AccessDenied:
            return ProcessStats(self.pid, error=f"no permission to read process {self.pid}")
        stats = ProcessStats(self.pid, cpu_percent=cpu, rss=rss, threads=threads, cores=psutil.cpu_count() or None)
        if self.want_gpu:
            now = time.monotonic()
            if now - self._gpu_at >= self.gpu_interval:
                self._gpu_at = now
                self._gpu, self._gpu_note = gpu_stats(self.pid)
            stats.gpu, stats.gpu_note = self._gpu, self._gpu_note
        return stats


class RanksSampler:
    """Samples every rank of a data-parallel run and sums CPU, memory and threads.

    Why: each torchrun rank is its own process, so rank 0's figures alone would show 1/N of
    the run. GPU figures are rank 0's GPU (each rank has its own).
    """

    def __init__(self, pids: list[int], gpu: bool = False) -> None:
        self.pids = tuple(int(p) for p in pids)
        self.pid = self.pids[0]
        self.want_gpu = gpu
        self._samplers = [ProcessSampler(p, gpu=(gpu and i == 0)) for i, p in enumerate(self.pids)]

    def sample(self) -> ProcessStats:
        parts = [s.sample() for s in self._samplers]
        first = parts[0]
        if first.error or first.gone:
            return first
        live = [p for p in parts if not p.gone and not p.error]
        cpu = None if any(p.cpu_percent is None for p in live) else sum(p.cpu_percent for p in live)
        return ProcessStats(
            self.pid, cpu_percent=cpu, rss=sum(p.rss or 0 for p in live), threads=sum(p.threads or 0 for p in live),
            cores=first.cores, gpu=first.gpu, gpu_note=first.gpu_note, pids=tuple(p.pid for p in live),
        )


def gpu_stats(pid: int | None = None, index: int = 0) -> tuple[GpuStats | None, str]:
    """(figures of GPU `index`, a note when there are none)."""
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        pynvml = None
    if pynvml is not None:
        try:
            pynvml.nvmlInit()
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                util = pynvml.nvmlDeviceGetUtilizationRates(handle)
                mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
                used_by = None
                for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                    if pid is not None and proc.pid == pid:
                        used_by = int(proc.usedGpuMemory or 0)
                name = pynvml.nvmlDeviceGetName(handle)
                name = name.decode() if isinstance(name, bytes) else str(name)
                return GpuStats(float(util.gpu), int(mem.used), int(mem.total), used_by, name), ""
            finally:
                pynvml.nvmlShutdown()
        except Exception as exc:  # no driver, no such GPU
            return None, f"GPU figures unavailable: {type(exc).__name__}"
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None, "GPU figures need nvidia-smi or the nvidia-ml-py package"
    try:
        out = subprocess.run(
            [smi, f"--id={index}", "--query-gpu=utilization.gpu,memory.used,memory.total,name",
             "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip().splitlines()
        util, used, total, name = [x.strip() for x in out[0].split(",", 3)]
        used_by = None
        if pid is not None:
            apps = subprocess.run(
                [smi, f"--id={index}", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                capture_output=True, text=True, timeout=5,
            ).stdout.strip().splitlines()
            for line in apps:
                parts = [x.strip() for x in line.split(",")]
                if len(parts) == 2 and parts[0] == str(pid) and parts[1].isdigit():
                    used_by = int(parts[1]) * 2**20
        return GpuStats(float(util), int(float(used)) * 2**20, int(float(total)) * 2**20, used_by, name), ""
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None, "GPU figures unavailable (nvidia-smi gave none)"


def human_bytes(n: int | None) -> str:
    """Memory as the system pane writes it: whole up to MB ('812 MB'), one decimal above."""
    return human_size(n, missing="–", decimals_from="GB")


def stats_line(stats: ProcessStats | None, label: str = "training process") -> str:
    """One line for the system pane."""
    if stats is None:
        return f"system: no {label}"
    if stats.error:
        return f"system: {stats.error}"
    if stats.gone:
        return f"system: the {label} (pid {stats.pid}) is gone"
    cpu = "–" if stats.cpu_percent is None else f"{stats.cpu_percent:.0f}%"
    cores = f" of {stats.cores * 100}%" if stats.cores else ""
    who = f"{len(stats.pids)} processes (pids {', '.join(map(str, stats.pids))})" if len(stats.pids) > 1 else f"pid {stats.pid}"
    parts = [who, f"CPU {cpu}{cores}", f"RSS {human_bytes(stats.rss)}", f"{stats.threads} threads"]
    if stats.gpu is not None:
        g = stats.gpu
        util = "–" if g.util_percent is None else f"{g.util_percent:.0f}%"
        mine = f" (run {human_bytes(g.process_memory)})" if g.process_memory is not None else ""
        parts.append(f"GPU {util} · {human_bytes(g.memory_used)}/{human_bytes(g.memory_total)}{mine}")
    elif stats.gpu_note:
        parts.append(stats.gpu_note)
    return "system: " + " · ".join(parts)
