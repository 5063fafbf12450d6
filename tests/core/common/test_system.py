"""The system pane's figures: a process by pid (psutil), GPU figures from nvidia-smi (faked here)."""

from __future__ import annotations

import os
import subprocess
import sys

from tactics_core.common import system


def test_sampler_reads_a_live_process_and_says_when_it_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: sum(range(10000))"])
    try:
        sampler = system.ProcessSampler(child.pid)
        first = sampler.sample()
        assert not first.gone and first.rss > 0 and first.threads >= 1 and first.cpu_percent is None
        import time

        time.sleep(0.3)
        second = sampler.sample()
        assert second.cpu_percent is not None and second.cpu_percent > 5
        line = system.stats_line(second)
        assert f"pid {child.pid}" in line and "CPU" in line and "RSS" in line and "threads" in line
    finally:
        child.kill()
        child.wait()
    gone = sampler.sample()
    assert gone.gone and "is gone" in system.stats_line(gone)


def test_gpu_figures_from_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        '  *query-gpu*) echo "37, 20480, 81920, NVIDIA H100" ;;\n'
        f'  *query-compute-apps*) echo "{os.getpid()}, 1024" ;;\n'
        "esac\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setitem(sys.modules, "pynvml", None)  # no NVML: the nvidia-smi path
    gpu, note = system.gpu_stats(os.getpid())
    assert note == "" and gpu.util_percent == 37 and gpu.memory_total == 81920 * 2**20
    assert gpu.process_memory == 1024 * 2**20 and gpu.name == "NVIDIA H100"
    stats = system.ProcessSampler(os.getpid(), gpu=True).sample()
    line = system.stats_line(stats)
    assert "GPU 37% · 20.0 GB/80.0 GB (run 1.0 GB)" in line


def test_no_gpu_tools_is_said_once(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pynvml", None)
    gpu, note = system.gpu_stats(1)
    assert gpu is None and "nvidia-smi" in note


def test_ranks_sampler_sums_every_rank_of_a_data_parallel_run():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        sampler = system.RanksSampler([os.getpid(), child.pid])
        sampler.sample()
        stats = sampler.sample()
        alone = system.ProcessSampler(os.getpid()).sample()
        assert stats.pids == (os.getpid(), child.pid) and stats.pid == os.getpid()
        assert stats.rss > alone.rss and stats.threads > alone.threads  # both processes counted
        line = system.stats_line(stats)
        assert line.startswith(f"system: 2 processes (pids {os.getpid()}, {child.pid})")
    finally:
        child.kill()
        child.wait()
