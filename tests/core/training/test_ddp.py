"""Data-parallel training through torchrun: 2 CPU ranks (gloo, 1 thread each) on a small slice.

What is checked, and why each matters: one metrics.jsonl with one line per step (only rank 0
writes); the same global batch as one process (the `tokens` count of every step is equal); losses
that track the one-process run (close, not bitwise: the gradients are summed in another order,
across ranks, and each rank's micro-batch is padded to its own longest stream); a checkpoint that
loads without `module.` and exports; `tactics stop` and a killed rank end every rank with a whole
final checkpoint; a resumed 2-rank run is bitwise the uninterrupted one (dropout on).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tactics_core.common.errors import TacticsError
from tactics_core.common.locks import pid_alive
from tactics_core.gpt.tokenizer import train_tokenizer
from tactics_core.runs import launch, run_events, run_folder
from tactics_core.runs.checkpoints import load_checkpoint
from tactics_core.training.distributed import shares
from tactics_core.training.loop import train
from tactics_core.training.presets import apply_overrides, load_preset

from conftest import REPO, copy_slice, shared_corpus

SMALL = [
    "model.d_model=32",
    "model.n_layers=1",
    "model.n_heads=2",
    "model.context_length=48",
    "training.batch_size=4",
    "training.learning_rate=0.003",
    "training.min_lr=0.0003",
    "training.warmup_steps=2",
    "training.eval_batches=4",
    "training.num_threads=1",
    "training.device=cpu",
]
# The 1-vs-2 comparison: no dropout (each rank draws its own masks), Muon, a pass past one epoch.
COMPARE = SMALL + [
    "model.dropout=0.0", "training.optimizer=muon", "training.max_steps=24",
    "training.eval_interval=8", "training.save_interval=8",
]
# The resume check: dropout on (per-rank RNG must be restored), AdamW, accumulation over ranks.
RESUME = SMALL + [
    "model.dropout=0.1", "training.optimizer=adamw", "training.grad_accum_steps=2", "training.max_steps=12",
    "training.eval_interval=4", "training.save_interval=4", "training.keep_checkpoints=5",
]
# Stop / kill: long enough to be stopped mid-run.
LONG = SMALL + ["model.dropout=0.1", "training.max_steps=100000", "training.eval_interval=100000", "training.save_interval=100000"]
# What the 2-rank loss may drift from one process: float sums in another order (measured ~1e-7).
LOSS_RTOL = 1e-4


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    env.pop("WORLD_SIZE", None)
    return env


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
            "-m", "tactics_core", *args]


def train_args(base, name: str, overrides: list[str]) -> list[str]:
    data_dir, ck = base
    out = ["train", "--preset", "tiny", "--data-dir", str(data_dir), "--checkpoint-dir", str(ck), "--run-name", name,
           "--metrics-interval", "0"]
    for item in overrides:
        out += ["--set", item]
    return out


def run(cmd: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout, cwd=REPO)


def events(folder: Path, kind: str | None = None) -> list[dict]:
    evs = run_events.read_metrics(folder / "metrics.jsonl")
    return [e for e in evs if kind is None or e["event"] == kind]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A real 60-file slice and a workspace with a small tokenizer, built once."""
    root = tmp_path_factory.mktemp("ddp")
    data_dir = copy_slice(shared_corpus("acornlib-2025-11"), root / "proofs", 60, start=1200)
    train_tokenizer(data_dir, root / "ck", vocab_size=400, kind="lines")
    return data_dir, root / "ck"


@pytest.fixture(scope="module")
def compared(base):
    """The COMPARE preset on 2 ranks (torchrun -m tactics_core train) and in one process."""
    data_dir, ck = base
    done = run(torchrun(*train_args(base, "two", COMPARE)))
    assert done.returncode == 0, done.stderr[-3000:]
    one = ck / "runs" / "one"
    one.mkdir(parents=True)
    shutil.copyfile(ck / "tokenizer.json", one / "tokenizer.json")
    result = train(apply_overrides(load_preset("tiny"), COMPARE), data_dir, one, metrics_interval=0, handle_signals=False)
    assert result.reason == "finished"
    return ck / "runs" / "two", one, done


def test_two_ranks_write_one_metrics_file_with_one_line_per_step(compared):
    two, _, done = compared
    steps = [e["step"] for e in events(two, "step")]
    assert steps == list(range(1, 25))  # --metrics-interval 0: every step once (two writers would double them)
    start = events(two, "start")
    assert len(start) == 1 and start[0]["world_size"] == 2 and start[0]["global_batch"] == 4
    assert start[0]["threads"] == 1 and start[0]["backend"] == "gloo"
    end = events(two, "end")
    assert len(end) == 1 and end[0]["reason"] == "finished"
    state = json.loads((two / "run.json").read_text())
    assert state["state"] == "finished" and state["world_size"] == 2
    assert len(state["rank_pids"]) == 2 and state["pid"] == state["rank_pids"][0]  # the system pane sums them
    assert "2 processes" in done.stderr


def test_two_ranks_take_the_global_batch_and_track_one_process(compared):
    two, one, _ = compared
    one_steps = {e["step"]: e for e in events(one, "step")}
    two_steps = {e["step"]: e for e in events(two, "step")}
    assert len(one_steps) == 24
    worst = 0.0
    for step, ev in two_steps.items():
        ref = one_steps[step]
        assert ev["tokens"] == ref["tokens"]  # the same rows, step for step: the same global batch
        assert ev["epoch"] == ref["epoch"]
        worst = max(worst, abs(ev["loss"] - ref["loss"]) / ref["loss"])
    print(f"worst relative loss difference, 2 ranks vs 1 process: {worst:.2e}")
    assert worst < LOSS_RTOL, f"2-rank loss drifted {worst:.2e} from the 1-process run"
    one_eval = [(e["step"], e["val_loss"], e["val_tokens"]) for e in events(one, "eval")]
    two_eval = [(e["step"], e["val_loss"], e["val_tokens"]) for e in events(two, "eval")]
    assert [(s, t) for s, _, t in two_eval] == [(s, t) for s, _, t in one_eval]  # every row once
    for (_, a, _), (_, b, _) in zip(one_eval, two_eval):
        assert b == pytest.approx(a, rel=LOSS_RTOL)


def test_two_rank_checkpoint_loads_without_module_prefix_and_exports(compared, tmp_path):
    two, _, _ = compared
    payload = load_checkpoint(two / "checkpoint_step_24.pt")
    assert not any(k.startswith("module.") for k in payload["model"])
    state = payload["train_state"]
    assert state["world_size"] == 2 and len(state["rng_ranks"]) == 2
    from tactics_core.gpt.export import export_model

    report = export_model(two / "checkpoint_step_24.pt", tmp_path / "export")
    assert (tmp_path / "export" / "config.json").is_file() and report is not None


def test_resumed_two_rank_run_is_bitwise_the_uninterrupted_one(base):
    data_dir, ck = base
    # `tactics train --nproc 2` starts the same through torch.distributed.run.
    straight = run([sys.executable, "-m", "tactics_core", *train_args(base, "straight", RESUME), "--nproc", "2"])
    assert straight.returncode == 0, straight.stderr[-3000:]
    folder = ck / "runs" / "straight"
    want = {e["step"]: e["loss"] for e in events(folder, "step")}
    assert sorted(want) == list(range(1, 13))
    copy = ck / "runs" / "resumed"
    copy.mkdir()
    shutil.copyfile(folder / "checkpoint_step_4.pt", copy / "checkpoint_step_4.pt")
    shutil.copyfile(folder / "tokenizer.json", copy / "tokenizer.json")
    resumed = run(torchrun("resume", str(copy / "checkpoint_step_4.pt"), "--data-dir", str(data_dir),
                           "--metrics-interval", "0"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    got = {e["step"]: e["loss"] for e in events(copy, "step")}
    assert sorted(got) == list(range(5, 13))
    assert all(got[s] == want[s] for s in got), {s: (got[s], want[s]) for s in got if got[s] != want[s]}
    want_eval = [(e["step"], e["val_loss"]) for e in events(folder, "eval") if e["step"] > 4]
    assert [(e["step"], e["val_loss"]) for e in events(copy, "eval")] == want_eval
    assert events(copy, "start")[0]["note"] == ""
    # On one process the same checkpoint continues from the same global position (the same
    # rows: equal token counts step for step), with new random streams: not bitwise.
    alone = ck / "runs" / "alone"
    alone.mkdir()
    shutil.copyfile(folder / "checkpoint_step_4.pt", alone / "checkpoint_step_4.pt")
    shutil.copyfile(folder / "tokenizer.json", alone / "tokenizer.json")
    result = train(None, data_dir, alone, resume=alone / "checkpoint_step_4.pt", metrics_interval=0, handle_signals=False)
    assert result.reason == "finished" and result.step == 12
    tokens_two = {e["step"]: e["tokens"] for e in events(folder, "step")}
    assert {e["step"]: e["tokens"] for e in events(alone, "step")} == {s: tokens_two[s] for s in range(5, 13)}
    assert "resumed on 1" in events(alone, "start")[0]["note"]


def _start_long(base, name: str) -> tuple[subprocess.Popen, Path]:
    _, ck = base
    proc = subprocess.Popen(torchrun(*train_args(base, name, LONG)), env=_env(), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    folder = ck / "runs" / name
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended early: {proc.stderr.read()[-2000:]}")
        if any(e["event"] == "step" and e["step"] >= 3 for e in events(folder)):
            return proc, folder
        time.sleep(0.2)
    proc.kill()
    pytest.fail("no step within 120 s")


def _final_checkpoint_is_whole(folder: Path) -> dict:
    end = events(folder, "end")[-1]
    payload = load_checkpoint(end["checkpoint"])  # loads: written whole (atomic rename)
    assert payload["global_step"] == end["step"] and "optimizer" in payload
    return end


def test_tactics_stop_ends_every_rank_with_a_final_checkpoint(base):
    proc, folder = _start_long(base, "stopped")
    assert run_folder.request_stop(folder)
    rc = proc.wait(timeout=90)
    assert rc == 0, proc.stderr.read()[-2000:]
    end = _final_checkpoint_is_whole(folder)
    assert end["reason"] == "stopped" and "tactics stop" in end["message"]
    assert len(load_checkpoint(end["checkpoint"])["train_state"]["rng_ranks"]) == 2


def test_killing_one_rank_ends_all_ranks_and_rank_0_saves(base):
    proc, folder = _start_long(base, "killed")
    rank0 = json.loads((folder / "run.json").read_text())["pid"]
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    others = [int(p) for p in children if int(p) != rank0]
    assert len(others) == 1
    os.kill(others[0], signal.SIGKILL)
    rc = proc.wait(timeout=90)
    assert rc != 0  # torchrun reports the lost rank
    assert not pid_alive(rank0)
    end = _final_checkpoint_is_whole(folder)
    assert end["reason"] == "failed" and "another rank of the run ended" in end["message"]
    assert "\n" not in end["message"] and ".cc:" not in end["message"]
    state = run_folder.read_run_state(folder, resolve=False)
    assert not state.alive and state.state == "failed"


def test_a_global_batch_that_does_not_divide_is_refused_in_one_line(base):
    assert shares(4, 1, 2) == ("rows", 1) and shares(3, 4, 2) == ("whole", 2) and shares(8, 1, 1) == ("whole", 1)
    with pytest.raises(TacticsError) as err:
        shares(3, 1, 2)
    assert "multiple of 2" in str(err.value) and "\n" not in str(err.value)
    done = run([sys.executable, "-m", "tactics_core", *train_args(base, "odd", SMALL + ["training.batch_size=3"]),
                "--nproc", "2"], timeout=60)
    assert done.returncode == 2 and "does not divide among 2 ranks" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_detached_two_rank_run_is_watched_like_any_run(base, monkeypatch):
    """`tactics train --detach --nproc 2` (launch.start_detached): rank 0 takes over the launcher's
    reservation in run.json (the launcher is its parent), and the run ends finished."""
    data_dir, ck = base
    for key, value in _env().items():
        monkeypatch.setenv(key, value)
    pid = launch.start_detached(launch.LaunchRequest(ck, preset="tiny", overrides=SMALL + ["training.max_steps=6"],
                                                     data_dir=data_dir, run_name="detached", nproc=2, detach=True)).pid
    folder = ck / "runs" / "detached"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = run_folder.read_run_state(folder, resolve=False)
        if state is not None and state.state in run_events.END_REASONS:
            break
        time.sleep(0.3)
    assert state.state == "finished", (folder / "train.log").read_text()[-2000:]
    assert state.pid != pid  # rank 0's pid, not the launcher's
    start = events(folder, "start")[0]
    assert start["world_size"] == 2 and events(folder, "end")[-1]["step"] == 6
    assert "torch.distributed.run" in (folder / "train.log").read_text()


def test_a_rank_with_an_empty_share_joins_the_step(tmp_path):
    """An odd number of training rows, batch 2 dealt by rows: the epoch's last micro-batch has
    one row, so rank 1 has nothing to score at that step. It must still join the gradient all-reduce (a zero
    gradient) or rank 0 would wait forever; the step equals the one-process step."""
    data_dir = copy_slice(shared_corpus("acornlib-2025-11"), tmp_path / "proofs", 62, start=1200)
    train_tokenizer(data_dir, tmp_path / "ck", vocab_size=400, kind="lines")
    odd = SMALL + ["model.dropout=0.0", "training.batch_size=2", "training.max_steps=28",
                   "training.eval_interval=28", "training.save_interval=28"]
    done = run(torchrun(*train_args((data_dir, tmp_path / "ck"), "two", odd)), timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    two = tmp_path / "ck" / "runs" / "two"
    start = events(two, "start")[0]
    rows = start["data"]["train_rows"]
    assert rows % 2 == 1 and start["steps_per_epoch"] == (rows + 1) // 2 < 28
    last = start["steps_per_epoch"]  # the step whose second row does not exist
    one = tmp_path / "ck" / "runs" / "one"
    one.mkdir()
    shutil.copyfile(tmp_path / "ck" / "tokenizer.json", one / "tokenizer.json")
    train(apply_overrides(load_preset("tiny"), odd), data_dir, one, metrics_interval=0, handle_signals=False)
    ref = {e["step"]: e for e in events(one, "step")}
    got = {e["step"]: e for e in events(two, "step")}
    assert sorted(got) == list(range(1, 29))
    assert all(got[s]["tokens"] == ref[s]["tokens"] for s in got)
    for s in (last, last + 1):
        assert got[s]["loss"] == pytest.approx(ref[s]["loss"], rel=LOSS_RTOL)


def test_a_scorer_trains_on_two_ranks_as_in_one_process(tmp_path):
    """The second model kind through the same data-parallel path: trace rows dealt to 2 ranks
    (a global batch of 64 rows), one metrics file, losses and validation figures that track the
    one-process run."""
    sys.path.insert(0, str(REPO / "tests" / "core" / "scorer"))
    from trace_helpers import write_learnable_traces

    traces = write_learnable_traces(tmp_path / "traces")
    overrides = ['data.train_buckets="0-3"', 'data.val_buckets="90"', "training.batch_size=64", "training.max_steps=12",
                 "training.eval_interval=4", "training.save_interval=4", "training.warmup_steps=2",
                 "training.device=cpu", "training.num_threads=1"]
    ck = tmp_path / "ck"
    args = ["train", "--preset", "scorer", "--data-dir", str(traces), "--checkpoint-dir", str(ck), "--run-name", "two",
            "--metrics-interval", "0"]
    for item in overrides:
        args += ["--set", item]
    done = run(torchrun(*args))
    assert done.returncode == 0, done.stderr[-3000:]
    two = ck / "runs" / "two"
    one = ck / "runs" / "one"
    result = train(apply_overrides(load_preset("scorer"), overrides), traces, one, metrics_interval=0, handle_signals=False)
    assert result.reason == "finished"
    start = events(two, "start")
    assert len(start) == 1 and start[0]["world_size"] == 2 and start[0]["kind"] == "scorer"
    two_steps = {e["step"]: e for e in events(two, "step")}
    one_steps = {e["step"]: e for e in events(one, "step")}
    assert sorted(two_steps) == list(range(1, 13)) == sorted(one_steps)  # rank 0 alone writes, every step once
    for step, ev in two_steps.items():
        assert ev["tokens"] == one_steps[step]["tokens"]  # the same global batch of rows
        assert ev["loss"] == pytest.approx(one_steps[step]["loss"], rel=LOSS_RTOL)
    two_evals = [(e["step"], e["val_loss"], e["used_rank"]) for e in events(two, "eval")]
    one_evals = [(e["step"], e["val_loss"], e["used_rank"]) for e in events(one, "eval")]
    assert [s for s, *_ in two_evals] == [s for s, *_ in one_evals] == [4, 8, 12]
    for (_, vl2, ur2), (_, vl1, ur1) in zip(two_evals, one_evals):
        assert vl2 == pytest.approx(vl1, rel=LOSS_RTOL) and ur2 == pytest.approx(ur1, abs=1e-6)
    assert events(two, "end")[0]["reason"] == "finished"
