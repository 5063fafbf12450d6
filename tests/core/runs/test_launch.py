"""One launcher (`tactics_core.runs.launch`) for every way a run starts: every option reaches the
training process on each path (fresh, resume; attached, detached, torchrun ranks), a detached run
really records at its --metrics-interval, and a launch that fails leaves the workspace byte for
byte as it was."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from tactics_core.cli import build_parser, main
from tactics_core.cli.train_cmd import launch_request
from tactics_core.common.errors import TacticsError
from tactics_core.runs import launch, run_events, run_folder, workspace_runs
from tactics_core.runs.checkpoints import save_checkpoint
from tactics_core.runs.launch import LaunchRequest
from tactics_core.training.distributed import torchrun_command
from tactics_core.training.loop import TrainResult
from tactics_core.training.presets import apply_overrides, load_preset, preset_to_dict

from conftest import copy_slice, slice_with_tokenizer

TINY = [
    "model.d_model=32", "model.n_layers=1", "model.n_heads=2", "model.context_length=48",
    "training.batch_size=4", "training.eval_interval=100", "training.eval_batches=2",
    "training.warmup_steps=1", "training.num_threads=1", "training.device=cpu",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return slice_with_tokenizer(tmp_path_factory.mktemp("launch"))


@pytest.fixture
def ws(tmp_path, corpus):
    """A workspace with a tokenizer and run A holding one resumable checkpoint (never trained:
    what a launch reads of it is its file, its preset and its recorded data folder)."""
    data_dir, tok = corpus
    ck = tmp_path / "ws" / "checkpoints"
    ck.mkdir(parents=True)
    shutil.copyfile(tok, ck / "tokenizer.json")
    folder = workspace_runs.new_run(ck, "tiny", "A")
    checkpoint = save_checkpoint(folder / "checkpoint_step_3.pt", fake_payload(data_dir))
    return data_dir, ck, checkpoint


def fake_payload(data_dir: Path, config: dict | None = None) -> dict:
    preset = apply_overrides(load_preset("tiny"), TINY)
    return {"model": {}, "config": config or preset_to_dict(preset), "preset": "tiny", "global_step": 3,
            "layout": "prover", "data_dir": str(data_dir), "train_state": {"step": 3}}


class Exec(Exception):
    """os.execv, caught: the command torchrun would have become."""

    def __init__(self, cmd: list[str]) -> None:
        self.cmd = cmd


@pytest.fixture
def processes(monkeypatch):
    """Fakes for what starts a training process; records each call's command or train() arguments."""
    seen: dict[str, list] = {"spawn": [], "exec": [], "train": []}

    def spawn(command, folder):
        seen["spawn"].append(list(command))
        return 4242

    def execv(path, cmd):
        seen["exec"].append(list(cmd))
        raise Exec(list(cmd))

    def fake_train(preset, data_dir, checkpoint_dir, **kwargs):
        seen["train"].append(dict(kwargs, preset=preset, data_dir=Path(data_dir), folder=Path(checkpoint_dir)))
        return TrainResult("finished", "", 1, 1, None, None)

    monkeypatch.setattr(run_folder, "spawn_detached", spawn)
    monkeypatch.setattr(launch.os, "execv", execv)
    monkeypatch.setattr(launch, "train", fake_train)
    return seen


def run_process(command: list[str]) -> None:
    """Run a training process's command as that process would (one rank; train() is the fake)."""
    prefix = torchrun_command(2) if "torch.distributed.run" in command else [sys.executable, "-m", "tactics_core"]
    assert command[: len(prefix)] == prefix
    argv = command[len(prefix) :]
    assert "--detach" not in argv and "--nproc" not in argv  # the process trains; it does not launch again
    assert main(argv) == 0


def started(seen: dict, argv: list[str], how: str) -> dict:
    """Start `argv` the way `how` says; the arguments train() got in the training process."""
    extra = {"attached": [], "detach": ["--detach"], "nproc": ["--nproc", "2"], "detach-nproc": ["--detach", "--nproc", "2"]}[how]
    if how == "nproc":
        with pytest.raises(Exec) as info:
            main(argv + extra)
        run_process(info.value.cmd)
    else:
        assert main(argv + extra) == 0
        if how != "attached":
            (command,) = seen["spawn"]
            assert ("torch.distributed.run" in command) == how.endswith("nproc")
            run_process(command)
    (got,) = seen["train"]
    return got


HOWS = ["attached", "detach", "nproc", "detach-nproc"]


@pytest.mark.parametrize("how", HOWS)
def test_every_option_of_a_new_run_reaches_the_training_process(ws, processes, how):
    data_dir, ck, _ = ws
    presets_dir = ck.parent / "my-presets"
    presets_dir.mkdir()
    (presets_dir / "mine.toml").write_text('description = "test"\n[model]\nd_model = 48\nn_heads = 4\n')
    sets = ["training.batch_size=2", "model.dropout=0.0"]
    argv = ["train", "--preset", "mine", "--presets-dir", str(presets_dir), "--data-dir", str(data_dir),
            "--checkpoint-dir", str(ck), "--run-name", "B", "--max-steps", "7", "--device", "cpu",
            "--metrics-interval", "0.5"]
    for item in sets:
        argv += ["--set", item]
    got = started(processes, argv, how)
    want = apply_overrides(load_preset("mine", presets_dir), sets)
    assert preset_to_dict(got["preset"]) == preset_to_dict(want) and got["preset"].model.d_model == 48
    assert got["folder"] == ck / "runs" / "B" and got["data_dir"] == data_dir and got["resume"] is None
    assert (got["max_steps"], got["device"], got["metrics_interval"]) == (7, "cpu", 0.5)
    assert workspace_runs.current_run_dir(ck) == ck / "runs" / "B"


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("source", ["checkpoint", "latest", "outside"])
def test_every_option_of_a_resume_reaches_the_training_process(ws, processes, tmp_path, how, source):
    data_dir, ck, checkpoint = ws
    other_data = copy_slice(data_dir, tmp_path / "other-proofs", 10)
    argv = ["resume", "--checkpoint-dir", str(ck), "--max-steps", "9", "--device", "cpu", "--metrics-interval", "0"]
    folder = checkpoint.parent
    if source == "checkpoint":
        argv += [str(checkpoint), "--data-dir", str(other_data)]
    elif source == "latest":
        argv += ["--run-name", "A"]  # the data folder: the one the checkpoint records
    else:  # a checkpoint from outside any run continues in a new run
        outside = tmp_path / "elsewhere" / "old.pt"
        outside.parent.mkdir()
        shutil.copyfile(checkpoint, outside)
        checkpoint, folder = outside, ck / "runs" / "cont"
        argv += [str(outside), "--run-name", "cont", "--data-dir", str(other_data)]
    got = started(processes, argv, how)
    assert got["preset"] is None and got["resume"] == checkpoint and got["folder"] == folder
    assert got["data_dir"] == (data_dir if source == "latest" else other_data)
    assert (got["max_steps"], got["device"], got["metrics_interval"]) == (9, "cpu", 0.0)


def test_a_request_is_its_command_line():
    """What quickstart prints and a training process runs parses back to the same request."""
    parser = build_parser()
    for request in (
        LaunchRequest(Path("ck"), preset="cpu", overrides=("training.batch_size=8",), presets_dir=Path("p"),
                      run_name="x", data_dir=Path("d"), device="cpu", max_steps=5, metrics_interval=0.0, nproc=2,
                      detach=True),
        LaunchRequest(Path("ck/runs/x"), resume=True, checkpoint=Path("ck/runs/x/best_model.pt"), data_dir=Path("d"),
                      max_steps=50, metrics_interval=2.5),
        LaunchRequest(resume=True, run_name="x"),
        LaunchRequest(),
    ):
        parsed = launch_request(parser.parse_args(request.argv()))
        assert parsed == LaunchRequest(**{**vars(request), "data_dir": request.data_dir or parsed.data_dir})
    with pytest.raises(TacticsError, match="--set applies to a new run"):
        LaunchRequest(resume=True, overrides=("training.batch_size=8",))
    with pytest.raises(TacticsError, match="--max-steps must be > 0"):
        LaunchRequest(max_steps=0)


def test_a_detached_run_records_at_its_metrics_interval(ws):
    data_dir, ck, _ = ws
    argv = ["train", "--detach", "--preset", "tiny", "--data-dir", str(data_dir), "--checkpoint-dir", str(ck),
            "--run-name", "d", "--max-steps", "12", "--metrics-interval", "0"]
    for item in TINY:
        argv += ["--set", item]
    assert main(argv) == 0
    folder = ck / "runs" / "d"
    deadline = time.monotonic() + 120
    state = None
    while time.monotonic() < deadline:
        state = run_folder.read_run_state(folder, resolve=False)
        if state is not None and state.state in run_events.END_REASONS:
            break
        time.sleep(0.3)
    log = (folder / "train.log").read_text()
    assert state is not None and state.state == "finished", log[-2000:]
    steps = [e["step"] for e in run_events.read_metrics(folder / "metrics.jsonl") if e["event"] == "step"]
    assert steps == list(range(1, 13))  # 0 = every step (the default, 0.25 s, would keep fewer)
    assert "--metrics-interval 0.0" in log


def snapshot(root: Path) -> dict[str, object]:
    """Every path under `root` with its bytes (files) or target (links)."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", path.read_bytes())
    return out


def test_a_failed_launch_leaves_the_workspace_as_it_was(ws, tmp_path, capsys):
    data_dir, ck, checkpoint = ws
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "damaged.pt").write_bytes(checkpoint.read_bytes()[:200])
    (elsewhere / "empty.pt").write_bytes(b"")
    (elsewhere / "notes.pt").write_text("not a checkpoint\n")
    bad = preset_to_dict(apply_overrides(load_preset("tiny"), TINY))
    bad["model"]["n_heads"] = 3  # 32 does not divide by 3
    save_checkpoint(elsewhere / "bad_preset.pt", fake_payload(data_dir, bad))
    save_checkpoint(elsewhere / "good.pt", fake_payload(data_dir))
    ckd = ["--checkpoint-dir", str(ck)]
    new = ["train", "--preset", "tiny", "--data-dir", str(data_dir), *ckd]
    before = snapshot(tmp_path)

    def refused(argv: list[str], why: str) -> None:
        for extra in ([], ["--detach"], ["--nproc", "2"]):
            capsys.readouterr()
            assert main(argv + extra) == 2, argv + extra
            err = capsys.readouterr().err
            assert why in err and len(err.strip().splitlines()) == 1, err
            assert snapshot(tmp_path) == before, f"{argv + extra} changed the workspace"

    for name in ("damaged.pt", "empty.pt", "notes.pt"):
        refused(["resume", str(elsewhere / name), *ckd], "is damaged or not a checkpoint")
    refused(["resume", str(elsewhere / "bad_preset.pt"), *ckd], "must be divisible by model.n_heads")
    refused(new + ["--preset", "nope"], "nope")
    refused(new + ["--set", "training.batch_size=0"], "training.batch_size")
    refused(new + ["--run-name", "A"], "in use")
    refused(["resume", str(checkpoint), "--run-name", "other", *ckd], "belongs to run A")

    # A live run (heartbeat written once: the tree stays still) refuses every launch.
    with run_folder.RunRecorder(ck / "runs" / "A", heartbeat_interval=3600):
        before = snapshot(tmp_path)
        refused(new, "already active")
        refused(["resume", *ckd], "already active")
        refused(["resume", str(elsewhere / "good.pt"), *ckd], "already active")
        with pytest.raises(TacticsError, match="already active"):
            launch.start_detached(LaunchRequest(ck, resume=True, detach=True))
        assert snapshot(tmp_path) == before
