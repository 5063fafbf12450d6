"""`tactics sweep` and `tactics sweeps` from the command line, on the real acorn trace fixture."""

from __future__ import annotations

import json

import pytest
from sweep_helpers import scorer_workspace

from tactics_core.cli import main
from tactics_core.sweeps import study as study_mod

pytestmark = pytest.mark.slow


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(study_mod, "OVERRUN_GRACE_S", 3600.0)
    for name in ("TACTICS_ACORN", "TACTICS_ACORNLIB", "TACTICS_ACORN_EVAL", "TACTICS_ACORNLIB_EVAL"):
        monkeypatch.delenv(name, raising=False)
    return scorer_workspace(tmp_path)


def test_sweep_prints_progress_the_ranking_and_how_to_keep_the_best(ws, capsys):
    rc = main(["sweep", "space.toml", "--budget-minutes", "0.05", "--trials", "1", "--data-dir", "traces",
               "--judge-top", "1"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "trial 0 (1/1) space-t000: model.hidden_size=" in err  # progress lines, not a redrawn bar
    assert "max_steps" in err and "trial 0 done: used_rank" in err
    assert "judge: acorn is not configured" in err and "ranking by the validation used_rank" in err
    assert "sweep space (scorer, base tinyscorer): 1 complete" in out
    assert "space-t000" in out and "model.hidden_size" in out
    assert "keep it: tactics presets cp sweeps/space/best.toml space-best" in out

    # keep the best preset: never over an existing one without --force
    assert main(["sweep", "--resume", "--name", "space", "--save-preset", "mine"]) == 0
    assert (ws / "presets" / "mine.toml").is_file()
    assert "saved as presets/mine.toml" in capsys.readouterr().out
    assert main(["sweep", "--resume", "--name", "space", "--save-preset", "mine"]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main(["sweep", "--resume", "--name", "space", "--save-preset", "mine", "--force"]) == 0
    capsys.readouterr()

    assert main(["sweep", "--resume", "--name", "space", "--json"]) == 0  # the target reached: nothing trains
    done = json.loads(capsys.readouterr().out)
    assert done["best_preset"] == "sweeps/space/best.toml" and done["cancelled"] is False and done["judged"] == []

    assert main(["sweeps"]) == 0
    listing = capsys.readouterr().out
    assert "space" in listing and "scorer" in listing and "1/1" in listing
    assert main(["sweeps", "show", "space", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["counts"]["COMPLETE"] == 1 and shown["best"]["run"] == "space-t000"
    assert shown["trials"][0]["params"].keys() == {"model.hidden_size", "training.learning_rate"}


def test_a_bad_space_file_is_one_error_line_and_nothing_is_written(ws, capsys):
    (ws / "bad.toml").write_text('[base]\npreset = "tinyscorer"\n[space]\n"model.hidden_size" = { low = 512, high = 64 }\n')
    assert main(["sweep", "bad.toml", "--data-dir", "traces"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: bad.toml: [space] \"model.hidden_size\": empty range") and "\n" not in err
    assert not (ws / "sweeps").exists()
    assert main(["sweep", "--resume", "--name", "nothing"]) == 2
    assert "no sweep 'nothing' to resume" in capsys.readouterr().err
