"""What the TUI attached to a live run costs it: training tokens/s, CLI alone vs CLI + TUI.

    python bench/tui_overhead.py [--steps 90] [--rounds 2] [--preset tiny] [--ui tmux|headless]

In one sitting, in a fresh workspace (the demo corpus and a tokenizer made here), this runs
`tactics train` (the CLI, a subprocess, all cores) for a fixed number of steps, alternately

  A. alone, and
  B. with `tactics-tui` attached on the Training screen (chart, figures, sample, and the system
     pane sampling the training process twice a second): in a real 80x24 terminal (tmux) when
     tmux is there, else the app headless in this process,

A, B, A, B, ... (`--rounds` of each), so drift of the machine shows in both. It reads each
run's own step events (tokens/s measured by the trainer between step events, evaluation time
excluded; no evaluation until the end) and reports the median of each side and the cost,
1 - B/A. The goal (issue 11): under 5%.

Prints the machine line (CPU, cores, load average), this process's niceness (the trainer and
the TUI inherit it, so both sides run at the same priority) and the load average at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))


TUI_CPU: list[tuple[float, float]] = []  # (CPU seconds of the TUI process, wall seconds) per attached run


def machine() -> str:
    from machine import describe

    return describe("torch", "textual", "psutil")


def make_workspace(root: Path, files: int) -> None:
    from tactics_core.gpt import demo
    from tactics_core.gpt import tokenizer as tok

    demo.write_demo_corpus(root / "data" / "proofs", files=files)
    tok.train_tokenizer(root / "data" / "proofs", root / "checkpoints", vocab_size=1024)


def train_cmd(root: Path, preset: str, steps: int, name: str) -> list[str]:
    return [
        sys.executable, "-m", "tactics_core", "train", "--preset", preset,
        "--data-dir", str(root / "data" / "proofs"), "--checkpoint-dir", str(root / "checkpoints"),
        "--max-steps", str(steps), "--run-name", name,
        "--set", "training.eval_interval=100000", "--set", "training.save_interval=100000",
        "--set", "training.sample_interval=0", "--set", "training.num_threads=0",
    ]


def tokens_per_s(root: Path, name: str, skip: int = 3) -> tuple[float, int]:
    from tactics_core.runs.run_events import metrics_path, read_metrics

    steps = [e for e in read_metrics(metrics_path(root / "checkpoints" / "runs" / name)) if e.get("event") == "step"]
    rates = [float(e["tokens_per_s"]) for e in steps[skip:]]
    if not rates:
        raise SystemExit(f"run {name} wrote no step events; see {root}/checkpoints/runs/{name}/train.log")
    return statistics.median(rates), len(rates)


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return e


def run_alone(root: Path, preset: str, steps: int, name: str) -> None:
    subprocess.run(train_cmd(root, preset, steps, name), env=env(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_with_tmux_tui(root: Path, preset: str, steps: int, name: str) -> str:
    session = f"tactics-bench-{os.getpid()}"
    tui = f"cd {root} && exec {sys.executable} -m tactics_tui.app --no-demo-offer"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                    "-e", f"PYTHONPATH={REPO}", tui], check=True)
    try:
        time.sleep(4.0)  # the app starts (imports, first screen)
        subprocess.run(["tmux", "send-keys", "-t", session, "3"], check=True)
        time.sleep(1.0)
        import psutil

        pane = int(subprocess.run(["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"],
                                  capture_output=True, text=True).stdout.split()[0])
        tui = psutil.Process(pane)
        cpu0, t0 = sum(tui.cpu_times()[:2]), time.monotonic()
        proc = subprocess.Popen(train_cmd(root, preset, steps, name), env=env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        screen = ""
        deadline = time.monotonic() + 12.0  # what the screen shows mid-run
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        if proc.poll() is None:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
        if proc.wait() != 0:
            raise SystemExit(f"training failed; see {root}/checkpoints/runs/{name}/train.log")
        cpu, wall = sum(tui.cpu_times()[:2]) - cpu0, time.monotonic() - t0
        TUI_CPU.append((cpu, wall))
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], stderr=subprocess.DEVNULL)
    return screen


def run_with_headless_tui(root: Path, preset: str, steps: int, name: str) -> str:
    from tactics_tui.app import TacticsApp

    async def go() -> str:
        app = TacticsApp(root, offer_demo=False)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3")
            proc = await asyncio.create_subprocess_exec(
                *train_cmd(root, preset, steps, name), env=env(),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            while proc.returncode is None:
                await pilot.pause(0.2)
                try:
                    await asyncio.wait_for(proc.wait(), 0.01)
                except asyncio.TimeoutError:
                    pass
            return app.screen.query_one("#train-system").line

    return asyncio.run(go())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--files", type=int, default=1000, help="demo corpus files")
    parser.add_argument("--ui", choices=("tmux", "headless"), default="tmux" if shutil.which("tmux") else "headless")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    print(f"machine: {machine()}", flush=True)
    print(f"niceness {os.nice(0)} (the trainer and the TUI inherit it); OMP_WAIT_POLICY={env()['OMP_WAIT_POLICY']}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="tactics-tui-overhead-"))
    try:
        make_workspace(root, args.files)
        alone: list[float] = []
        attached: list[float] = []
        last_screen = ""
        for r in range(args.rounds):
            name = f"alone-{r}"
            t = time.perf_counter()
            run_alone(root, args.preset, args.steps, name)
            rate, n = tokens_per_s(root, name)
            alone.append(rate)
            print(f"round {r + 1} A alone:        {rate:10,.0f} tokens/s (median of {n} step events, {time.perf_counter() - t:.0f} s)", flush=True)
            name = f"tui-{r}"
            t = time.perf_counter()
            if args.ui == "tmux":
                last_screen = run_with_tmux_tui(root, args.preset, args.steps, name)
            else:
                last_screen = run_with_headless_tui(root, args.preset, args.steps, name)
            rate, n = tokens_per_s(root, name)
            attached.append(rate)
            print(f"round {r + 1} B TUI attached: {rate:10,.0f} tokens/s (median of {n} step events, {time.perf_counter() - t:.0f} s)", flush=True)
        a, b = statistics.median(alone), statistics.median(attached)
        cost = 1.0 - b / a
        system_line = next((line.strip() for line in last_screen.splitlines() if "system:" in line), "")
        print(f"CLI alone {a:,.0f} tokens/s; with the TUI attached ({args.ui}, system pane on) {b:,.0f} tokens/s: "
              f"cost {cost:+.1%} (goal < 5%)")
        if TUI_CPU:
            cpu = sum(c for c, _ in TUI_CPU)
            wall = sum(w for _, w in TUI_CPU)
            print(f"the TUI process used {cpu:.1f} CPU-seconds over {wall:.0f} s of training: "
                  f"{cpu / wall:.1%} of one core (of {os.cpu_count()})")
        per_round = ", ".join(f"{1 - b / a:+.1%}" for a, b in zip(alone, attached))
        print(f"cost per round (A then B back to back): {per_round}")
        if system_line:
            print(f"the TUI's system pane during the last attached run: {system_line}")
        print("load average at the end: %.1f %.1f %.1f" % os.getloadavg())
        if args.json:
            print(json.dumps({"alone": alone, "attached": attached, "cost": cost, "ui": args.ui, "steps": args.steps}))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
