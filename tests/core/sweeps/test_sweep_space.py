"""The space file reader: every problem one line naming the file and what to do; the samples load."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweep_helpers import REPO

from tactics_core.common.errors import TacticsError
from tactics_core.sweeps.space import override, read_space


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


SCORER = '[base]\npreset = "scorer"\n'
GPT = '[base]\npreset = "cpu"\n'


@pytest.mark.parametrize("text, expected", [
    (SCORER + "[space\n", "not valid TOML"),
    (SCORER + '[space]\n"model.hidden_sise" = { choices = [8, 16] }\n',
     "is not a key of the scorer preset 'scorer' (did you mean 'model.hidden_size'?)"),
    (GPT + '[space]\n"model.hidden_size" = { choices = [8, 16] }\n', "is not a key of the gpt preset 'cpu'"),
    (SCORER + '[space]\n"training.layout" = { choices = ["file"] }\n', "is not a key of the scorer preset"),
    (SCORER + '[space]\n"training.learning_rate" = { low = 3e-3, high = 3e-4 }\n', "empty range (low 0.003 >= high 0.0003)"),
    (SCORER + '[space]\n"model.hidden_size" = { low = 64, high = 64 }\n', "empty range"),
    (SCORER + '[space]\n"model.hidden_size" = { choices = [] }\n', "choices is empty"),
    (SCORER + '[space]\n"model.dropout" = { low = 0.0, high = 1.5 }\n', "= 1.5 is refused by the preset"),
    (SCORER + '[space]\n"model.hidden_size" = { low = 64, hgh = 512 }\n', "unknown 'hgh' (did you mean 'high'?)"),
    (SCORER + '[space]\n"training.learning_rate" = { low = 0.0, high = 1e-2, log = true }\n', "a log range needs low > 0"),
    (SCORER, "[space] is missing or empty"),
    ('[space]\n"model.hidden_size" = { choices = [8] }\n', "[base] needs preset"),
    ('[base]\npreset = "no-such-preset"\n[space]\n"a.b" = { choices = [1] }\n', "[base] preset:"),
    (SCORER + '[sweep]\nobjective = "proof_loss"\n[space]\n"model.hidden_size" = { choices = [8] }\n',
     "objective 'proof_loss' is not a figure of a scorer run"),
    (SCORER + '[sweep]\nprunner = "median"\n[space]\n"model.hidden_size" = { choices = [8] }\n', "unknown key 'prunner'"),
    (SCORER + '[sweep]\nbase_trial = "yes"\n[space]\n"model.hidden_size" = { choices = [8] }\n',
     "base_trial must be true or false"),
    (SCORER + '[sweep]\nprune_after = 1.5\n[space]\n"model.hidden_size" = { choices = [8] }\n',
     "prune_after must be a share of the budget from 0 to 1"),
])
def test_a_bad_space_file_is_one_line_naming_the_file(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(TacticsError) as err:
        read_space(path, tmp_path / "presets")
    message = str(err.value)
    assert str(path) in message and expected in message
    assert "\n" not in message


def test_a_missing_space_file_says_where_the_examples_are(tmp_path):
    with pytest.raises(TacticsError, match=r"space file .*nothing\.toml not found.*presets/sweeps"):
        read_space(tmp_path / "nothing.toml")


def test_ranges_choices_and_the_trial_preset(tmp_path):
    path = _write(tmp_path, SCORER + """
[space]
"training.learning_rate" = { low = 3e-4, high = 3e-3, log = true }
"model.hidden_size" = { low = 64, high = 512, step = 64 }
"data.batches" = { choices = ["rows", "searches"] }
""")
    space = read_space(path, tmp_path / "presets")
    assert space.kind == "scorer"
    assert space.settings.objective == "used_rank" and space.settings.direction == "minimize"
    lr, width, loss = space.params
    assert lr.log and not lr.is_int and width.is_int and loss.choices == ("rows", "searches")
    preset = space.preset_for({"training.learning_rate": 1e-3, "model.hidden_size": 192, "data.batches": "searches"},
                              ["training.max_steps=7"])
    assert preset.model.hidden_size == 192 and preset.data.batches == "searches"
    assert preset.training.learning_rate == 1e-3 and preset.training.max_steps == 7
    assert override("data.loss", "bce") == 'data.loss="bce"'
    # a value the preset refuses only with another key's value is a trial's failure, not the file's
    with pytest.raises(TacticsError, match="data.batches must be"):
        space.preset_for({"data.batches": "rows"}, ['data.loss="bce+rank"'])


def test_a_gpt_space_defaults_to_the_proof_line_loss_and_auc_is_maximized(tmp_path):
    gpt = read_space(_write(tmp_path, GPT + '[space]\n"model.n_layers" = { choices = [3, 4, 6] }\n'), tmp_path)
    assert (gpt.kind, gpt.settings.objective, gpt.settings.direction) == ("gpt", "proof_loss", "minimize")
    assert gpt.preset_for({"model.n_layers": 6}).model.n_layers == 6
    auc = read_space(_write(tmp_path, SCORER + '[sweep]\nobjective = "auc"\n[space]\n"model.hidden_layers" = { choices = [2] }\n'),
                     tmp_path)
    assert auc.settings.direction == "maximize"


def test_a_base_preset_file_is_found_beside_the_space_file(tmp_path):
    from tactics_core.training.presets import load_preset, save_preset

    save_preset(load_preset("scorer"), tmp_path / "mine.toml")
    space = read_space(_write(tmp_path, '[base]\npreset = "mine.toml"\n[space]\n"model.hidden_size" = { choices = [8] }\n'),
                       tmp_path / "presets")
    assert space.kind == "scorer" and space.base_name == "mine.toml"


@pytest.mark.parametrize("name", ["scorer-sizes", "cpu-gpt"])
def test_the_sample_space_files_load(name):
    space = read_space(REPO / "presets" / "sweeps" / f"{name}.toml")
    assert space.params and space.kind == ("scorer" if name.startswith("scorer") else "gpt")


def test_the_base_preset_values_and_whether_they_lie_in_the_space(tmp_path):
    inside = read_space(_write(tmp_path, SCORER + """
[space]
"model.hidden_size" = { choices = [64, 128] }
"training.learning_rate" = { low = 1e-3, high = 1e-2, log = true }
"training.epochs" = { low = 2, high = 20, step = 2 }
"""), tmp_path / "presets")
    values, outside = inside.base_values()
    assert values == {"model.hidden_size": inside.base.model.hidden_size,
                      "training.learning_rate": inside.base.training.learning_rate,
                      "training.epochs": inside.base.training.epochs}
    assert outside == [] and inside.settings.base_trial
    away = read_space(_write(tmp_path, SCORER + """
[sweep]
base_trial = false
[space]
"model.hidden_size" = { choices = [8, 16] }
"training.epochs" = { low = 3, high = 9, step = 2 }
"""), tmp_path / "presets")
    _, outside = away.base_values()
    assert outside == [f"model.hidden_size={away.base.model.hidden_size}", f"training.epochs={away.base.training.epochs}"]
    assert not away.settings.base_trial


def test_evaluations_fall_on_equal_shares_of_the_budget():
    from tactics_core.sweeps.study import aligned_schedule, evaluation_count

    assert evaluation_count(600.0, 1.5) == 20  # 30 s of evaluations: within a tenth of 600 s
    assert evaluation_count(30.0, 0.5) == 5 and evaluation_count(30.0, 0.2) == 10
    assert evaluation_count(30.0, 5.0) == 4  # the fewest, even when they take more
    assert aligned_schedule(3489, 20) == (3480, 174)
    assert aligned_schedule(3489, 10) == (3480, 348)
    assert aligned_schedule(7, 20) == (5, 1)  # fewer steps than evaluations: fewer evaluations
    assert aligned_schedule(3, 20) == (3, 3)  # below the fewest: one evaluation, at the end
