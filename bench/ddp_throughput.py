"""Data-parallel throughput: the same preset on 1 process and on N torchrun ranks, tokens/s.

    python bench/ddp_throughput.py [--corpus DIR] [--files 600] [--preset cpu] [--steps 30]
                                   [--nproc 2] [--threads-total 0]

Both runs are the real CLI (`python -m tactics_core train`, then the same with `--nproc N`,
which starts `torch.distributed.run`) with the same global batch, into a temporary workspace,
with `--metrics-interval 0`; tokens/s = scored tokens of the steps after the first 5 / their
training time (from the step events' `tokens` and `elapsed_s`). The single process gets all
`--threads-total` threads (0 = every core); each rank gets threads-total / N.

Be honest about what this measures on a 2-core machine: 2 ranks on 2 cores split the same
cores the one process already uses, and add a gradient all-reduce per step, so they cannot be
faster. It is a correctness run with a price tag, not a speed-up; data parallelism pays on
several machines or GPUs (docs/training.md).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from machine import describe  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpora" / "acornlib-2025-11" / "proofs"
WARMUP = 5


def measure(folder: Path) -> tuple[float, int]:
    from tactics_core.runs.run_events import metrics_path, read_metrics

    steps = [e for e in read_metrics(metrics_path(folder)) if e["event"] == "step"]
    a, b = steps[WARMUP - 1], steps[-1]
    return (b["tokens"] - a["tokens"]) / max(1e-9, b["elapsed_s"] - a["elapsed_s"]), len(steps)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--files", type=int, default=600, help="proof files copied from the corpus (default 600)")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--threads-total", type=int, default=0, help="threads in all (0 = every core)")
    args = ap.parse_args()
    print("machine:", describe("torch", "numpy"))
    total = args.threads_total or (os.cpu_count() or 1)
    per_rank = max(1, total // args.nproc)
    with tempfile.TemporaryDirectory(prefix="tactics-ddp-bench-") as tmp:
        root = Path(tmp)
        data = root / "proofs"
        data.mkdir()
        for f in sorted(args.corpus.glob("proof_*.txt"))[: args.files]:
            (data / f.name).write_bytes(f.read_bytes())
        env = dict(os.environ, PYTHONPATH=str(REPO), OMP_WAIT_POLICY="PASSIVE")
        py = [sys.executable, "-m", "tactics_core"]
        subprocess.run(py + ["tokenizer", "train", "--data-dir", str(data), "--output-dir", str(root / "ck")],
                       check=True, env=env, capture_output=True)
        figures = {}
        for name, nproc, threads in (("1 process", 1, total), (f"{args.nproc} processes", args.nproc, per_rank)):
            run = f"bench{nproc}"
            cmd = py + ["train", "--preset", args.preset, "--data-dir", str(data), "--checkpoint-dir", str(root / "ck"),
                        "--run-name", run, "--max-steps", str(args.steps), "--metrics-interval", "0",
                        "--set", f"training.num_threads={threads}", "--set", f"training.eval_interval={args.steps + 1}",
                        "--set", f"training.save_interval={args.steps + 1}",
                        "--set", "training.device=cpu"]
            if nproc > 1:
                cmd += ["--nproc", str(nproc)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{name}: failed\n{done.stderr[-2000:]}")
                return 1
            tps, n = measure(root / "ck" / "runs" / run)
            figures[name] = tps
            each = " each" if nproc > 1 else ""
            print(f"{name:>12} ({threads} thread{'s' if threads > 1 else ''}{each}): {tps:,.0f} tokens/s "
                  f"over steps {WARMUP + 1}-{n} of preset {args.preset} (global batch unchanged)")
        one, many = figures["1 process"], figures[f"{args.nproc} processes"]
        print(f"ratio {many / one:.2f}x: on {os.cpu_count()} cores this is a correctness run, not a speed-up "
              "(the ranks share the cores one process already used, plus an all-reduce per step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
