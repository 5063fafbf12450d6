"""Every training run keeps its own folder: run A then run B in one workspace, `tactics runs`,
`runs diff`, `runs rm`, names in use, an old workspace's run, lineage, and a full disk."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tactics_core.cli import main
from tactics_core.common.errors import TacticsError
from tactics_core.runs import run_folder, workspace_runs

from conftest import slice_with_tokenizer

TINY = [
    "model.d_model=32", "model.n_layers=1", "model.n_heads=2", "model.context_length=48",
    "training.batch_size=4", "training.eval_interval=3", "training.eval_batches=2",
    "training.warmup_steps=1", "training.num_threads=1",
]


def sets(*extra: str) -> list[str]:
    out: list[str] = []
    for item in TINY + list(extra):
        out += ["--set", item]
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return slice_with_tokenizer(tmp_path_factory.mktemp("runfolders"))


@pytest.fixture
def ws(tmp_path, corpus):
    data_dir, tok = corpus
    ck = tmp_path / "checkpoints"
    ck.mkdir()
    shutil.copyfile(tok, ck / "tokenizer.json")
    return data_dir, ck


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_cli(data_dir: Path, ck: Path, *extra: str, steps: int = 6) -> int:
    return main(["train", "--preset", "tiny", "--data-dir", str(data_dir), "--checkpoint-dir", str(ck),
                 "--max-steps", str(steps), *extra])


def test_run_b_never_touches_run_a_and_both_are_listed(ws, capsys):
    data_dir, ck = ws
    assert train_cli(data_dir, ck, "--run-name", "A", *sets()) == 0
    a = ck / "runs" / "A"
    best_a, metrics_a = sha(a / "best_model.pt"), sha(a / "metrics.jsonl")
    files_a = sorted(p.name for p in a.iterdir())
    assert (ck / "best_model.pt").resolve() == (a / "best_model.pt").resolve()  # the original scripts' path
    assert train_cli(data_dir, ck, *sets("training.learning_rate=0.003")) == 0  # B: a name from time + preset
    (b,) = [p for p in (ck / "runs").iterdir() if p.name != "A"]
    assert b.name.endswith("-tiny")
    assert sha(a / "best_model.pt") == best_a and sha(a / "metrics.jsonl") == metrics_a
    assert sorted(p.name for p in a.iterdir()) == files_a
    assert workspace_runs.current_run_dir(ck) == b and (ck / "best_model.pt").resolve() == (b / "best_model.pt").resolve()
    capsys.readouterr()
    assert main(["runs", "--json", "--checkpoint-dir", str(ck)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["A", b.name]
    for r in rows:
        assert {"name", "status", "steps", "best_val_loss", "path", "preset", "best_proof_loss", "best_proof_bpb",
                "tokens_per_s", "duration_s", "started"} <= set(r)
        assert r["status"] == "finished" and r["steps"] == 6 and r["preset"] == "tiny"
        assert r["best_val_loss"] > 0 and r["best_proof_bpb"] > 0 and r["tokens_per_s"] > 0
    assert [r["current"] for r in rows] == [False, True]
    # The plain table names both.
    assert main(["runs", "--checkpoint-dir", str(ck)]) == 0
    out = capsys.readouterr().out
    assert "A " in out and b.name in out and "finished" in out

    # diff: exactly the one preset key that differs.
    assert main(["runs", "diff", "A", b.name, "--checkpoint-dir", str(ck)]) == 0
    out = capsys.readouterr().out
    settings = out.split("\n\n")[0].splitlines()
    assert settings[0].split()[0] == "SETTING"
    assert [line.split()[0] for line in settings[1:]] == ["training.learning_rate"]
    assert "0.001" in settings[1] and "0.003" in settings[1]
    assert "best_proof_loss" in out and "best_val_loss" in out
    assert main(["runs", "diff", "A", b.name, "--json", "--checkpoint-dir", str(ck)]) == 0
    assert list(json.loads(capsys.readouterr().out)["settings"]) == ["training.learning_rate"]

    # A name in use is refused; resuming it continues in its own folder and makes it current.
    assert train_cli(data_dir, ck, "--run-name", "A", *sets()) == 2
    assert "in use" in capsys.readouterr().err
    assert sha(a / "best_model.pt") == best_a
    assert main(["resume", "--run-name", "A", "--checkpoint-dir", str(ck), "--data-dir", str(data_dir), "--max-steps", "9"]) == 0
    assert workspace_runs.current_run_dir(ck) == a and (a / "checkpoint_step_9.pt").is_file()
    assert workspace_runs.find_run(ck, "A").steps == 9

    # rm: asks (no terminal: refuses without --yes), then removes; the links move on.
    assert main(["runs", "rm", "A", "--checkpoint-dir", str(ck)]) == 2
    assert a.is_dir()
    assert main(["runs", "rm", "A", "--yes", "--checkpoint-dir", str(ck)]) == 0
    assert not a.exists() and workspace_runs.current_run_dir(ck) == b
    assert (ck / "best_model.pt").resolve() == (b / "best_model.pt").resolve()
    assert main(["runs", "rm", "nope", "--yes", "--checkpoint-dir", str(ck)]) == 2


def test_core_train_refuses_a_fresh_run_over_another_runs_files(ws):
    from tactics_core.training.loop import train
    from tactics_core.training.presets import apply_overrides, load_preset

    data_dir, ck = ws
    folder = workspace_runs.new_run(ck, "tiny", "one")
    preset = apply_overrides(load_preset("tiny"), TINY + ["training.max_steps=3"])
    assert train(preset, data_dir, folder, handle_signals=False, metrics_interval=0).reason == "finished"
    before = sha(folder / "best_model.pt")
    with pytest.raises(TacticsError, match="already holds a run"):
        train(preset, data_dir, folder, handle_signals=False)
    assert sha(folder / "best_model.pt") == before
    with pytest.raises(TacticsError, match="in use"):
        workspace_runs.new_run(ck, "tiny", "one")
    with pytest.raises(TacticsError, match="reserved"):
        workspace_runs.new_run(ck, "tiny", "legacy")
    with pytest.raises(TacticsError, match="not usable"):
        workspace_runs.new_run(ck, "tiny", "../x")
    # A live run anywhere in the workspace refuses a second fresh one.
    with run_folder.RunRecorder(folder):
        with pytest.raises(TacticsError, match="already active"):
            workspace_runs.new_run(ck, "tiny", "two")


def test_old_workspace_run_shows_up_as_legacy_and_is_never_replaced(ws, capsys):
    data_dir, ck = ws
    from tactics_core.training.loop import train
    from tactics_core.training.presets import apply_overrides, load_preset

    preset = apply_overrides(load_preset("tiny"), TINY + ["training.max_steps=3"])
    train(preset, data_dir, ck, handle_signals=False, metrics_interval=0)  # the layout before runs/
    old = sha(ck / "best_model.pt")
    assert [i.name for i in workspace_runs.list_runs(ck)] == ["legacy"]
    assert workspace_runs.current_run_dir(ck) == ck
    assert train_cli(data_dir, ck, "--run-name", "new", *sets(), steps=3) == 0
    assert sha(ck / "best_model.pt") == old and not (ck / "best_model.pt").is_symlink()
    infos = workspace_runs.list_runs(ck)
    assert [(i.name, i.status, i.legacy) for i in infos] == [("legacy", "finished", True), ("new", "finished", False)]
    assert workspace_runs.best_model(ck) == ck / "runs" / "new" / "best_model.pt"  # what `tactics export` takes
    with pytest.raises(TacticsError, match="by hand"):
        workspace_runs.remove_run(ck, "legacy")
    # `tactics resume --run-name legacy` continues the old run where it is.
    assert main(["resume", "--run-name", "legacy", "--checkpoint-dir", str(ck), "--data-dir", str(data_dir), "--max-steps", "5"]) == 0
    assert (ck / "checkpoint_step_5.pt").is_file()


def test_export_config_names_its_run_checkpoint_and_figures(ws):
    from tactics_core.gpt.export import export_model

    data_dir, ck = ws
    assert train_cli(data_dir, ck, "--run-name", "A", *sets()) == 0
    report = export_model(ck / "best_model.pt", ck.parent / "export" / "e1")
    cfg = json.loads((Path(report.path) / "config.json").read_text())
    src = cfg["source"]
    best = ck / "runs" / "A" / "best_model.pt"
    assert src["run"] == "A" and src["checkpoint"] == "best_model.pt" and src["checkpoint_path"] == str(best.resolve())
    assert src["step"] == cfg["training_step"] == 6 and src["proof_loss"] > 0 and src["val_loss"] > 0
    exports = workspace_runs.list_exports(ck.parent / "export")
    assert [e.run for e in workspace_runs.exports_of(exports, best)] == ["A"]
    assert workspace_runs.exports_of(exports, ck / "runs" / "A" / "checkpoint_step_6.pt") == []


def test_disk_full_while_saving_is_one_clear_line_and_nothing_torn(ws, monkeypatch):
    import torch

    from tactics_core.runs import checkpoints as C
    from tactics_core.training.loop import train
    from tactics_core.training.presets import apply_overrides, load_preset

    data_dir, ck = ws
    folder = workspace_runs.new_run(ck, "tiny", "full")
    real_save = torch.save
    calls = {"n": 0}

    def full_disk_save(obj, path, *a, **kw):
        calls["n"] += 1
        if calls["n"] >= 3:  # the first best model and the first periodic checkpoint fit
            Path(path).write_bytes(b"PK\x03\x04 half a zip")
            raise RuntimeError(
                "[enforce fail at inline_container.cc:626] . unexpected pos 1234 vs 1100\n"
                "PytorchStreamWriter failed writing file data/3: file write failed"
            )
        return real_save(obj, path, *a, **kw)

    monkeypatch.setattr(torch, "save", full_disk_save)
    monkeypatch.setattr(C, "_free_bytes", lambda folder: 12_000_000)
    preset = apply_overrides(load_preset("tiny"), TINY + ["training.max_steps=12", "training.save_interval=3"])
    result = train(preset, data_dir, folder, handle_signals=False, metrics_interval=0)
    assert result.reason == "failed"
    assert "\n" not in result.message and "inline_container" not in result.message
    assert "disk is full" in result.message and "12 MB free" in result.message and "--checkpoint-dir" in result.message
    assert result.message.count("cannot write checkpoint") == 1
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]  # no temp file left
    for info in C.list_checkpoints(folder):
        assert info.error is None  # whatever is there loads
    assert run_folder.read_run_state(folder).state == "failed"
