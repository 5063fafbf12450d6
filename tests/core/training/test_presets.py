"""Presets: built-ins, validation messages, round trip, overrides, shadowing, cp."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from conftest import REPO

from tactics_core.cli import main
from tactics_core.common.errors import TacticsError
from tactics_core.training import presets as P

BUILTINS = ("cpu", "default", "gpu", "library", "tiny")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(TacticsError) as info:
        P.load_preset(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    return message


# ---------------------------------------------------------------- built-ins


def test_builtins_present_and_valid():
    names = [i.name for i in P.list_presets(Path("/nonexistent"))]
    assert set(BUILTINS) <= set(names)
    for name in BUILTINS:
        preset = P.load_preset(name, Path("/nonexistent"))
        assert preset.builtin and preset.description and "\n" not in preset.description
        assert preset.source.parent == P.builtin_presets_dir()


def test_default_is_the_original_configuration():
    p = P.load_preset("default", Path("/nonexistent"))
    m, t = p.model, p.training
    assert (m.d_model, m.n_layers, m.n_heads, m.context_length, m.dropout) == (256, 6, 8, 256, 0.1)
    assert (t.batch_size, t.learning_rate, t.min_lr, t.warmup_steps) == (32, 3e-4, 3e-5, 1000)
    assert (t.weight_decay, t.betas, t.grad_clip, t.patience) == (0.1, [0.9, 0.95], 1.0, 10)
    # The dataclass defaults are the same configuration.
    assert p.model == P.ModelSection() and p.training == P.TrainingSection()


@pytest.mark.parametrize("name", BUILTINS)
def test_every_key_is_written_and_documented_in_the_file(name):
    path = P.builtin_presets_dir() / f"{name}.toml"
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    for section, cls in P.SECTIONS.items():
        assert set(data[section]) == {f.name for f in dataclasses.fields(cls)}, (name, section)
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "description")):
            assert "#" in line.split("=", 1)[1], f"{name}.toml: undocumented line {line!r}"


def test_tiny_and_cpu_are_small_enough_for_two_cores():
    tiny = P.load_preset("tiny", Path("/nonexistent"))
    cpu = P.load_preset("cpu", Path("/nonexistent"))
    default = P.load_preset("default", Path("/nonexistent"))
    for p in (tiny, cpu):
        assert p.training.max_steps > 0 and p.training.warmup_steps <= 200
        assert p.model.d_model * p.model.n_layers < default.model.d_model * default.model.n_layers
        assert p.training.learning_rate > default.training.learning_rate
        assert p.training.eval_batches > 0


# ---------------------------------------------------------------- validation


def test_toml_syntax_error_has_line_and_column(tmp_path):
    path = write(tmp_path / "presets" / "x.toml", "[model]\nd_model = 128\nn_layers = = 3\n")
    message = error_of(path)
    assert "line 3, column" in message and "TOML" in message


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[training]\nbatchsize = 8\n", "unknown key training.batchsize (did you mean training.batch_size?)"),
        ("[model]\nd_modle = 8\n", "did you mean model.d_model?"),
        ("[trainig]\nbatch_size = 8\n", "unknown key trainig (did you mean training?)"),
        ("[training]\nd_model = 128\n", "training.d_model belongs in the [model] section"),
        ("descripton = 'x'\n", "did you mean description?"),
    ],
)
def test_unknown_keys_suggest_the_closest(tmp_path, text, expected):
    assert expected in error_of(write(tmp_path / "p.toml", text))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[training]\nbatch_size = true\n", "training.batch_size must be an integer, got a boolean"),
        ("[training]\nbatch_size = 8.0\n", "training.batch_size must be an integer, got the float 8.0"),
        ("[training]\nbatch_size = '8'\n", "training.batch_size must be an integer, got a string"),
        ("[model]\ndropout = 'none'\n", "model.dropout must be a number, got a string"),
        ("[training]\nlearning_rate = true\n", "training.learning_rate must be a number, got a boolean"),
        ("[training]\ndevice = 1\n", "training.device must be a string"),
        ("[training]\nbetas = 0.9\n", "training.betas must be a list of 2 numbers"),
        ("[training]\nbetas = [0.9]\n", "training.betas must be a list of 2 numbers"),
        ("model = 3\n", "model must be a section [model]"),
    ],
)
def test_wrong_types_are_named(tmp_path, text, expected):
    assert expected in error_of(write(tmp_path / "p.toml", text))


def test_int_is_fine_where_a_float_is_expected(tmp_path):
    preset = P.load_preset(write(tmp_path / "p.toml", "[training]\nlearning_rate = 1\nmin_lr = 0\n"))
    assert preset.training.learning_rate == 1.0 and isinstance(preset.training.learning_rate, float)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[model]\nd_model = 100\nn_heads = 8\n", "model.d_model (100) must be divisible by model.n_heads (8)"),
        ("[model]\ncontext_length = 0\n", "model.context_length must be >= 1, got 0"),
        ("[model]\ndropout = 1.0\n", "model.dropout must be in [0, 1), got 1.0"),
        ("[model]\nn_layers = -1\n", "model.n_layers must be >= 1"),
        ("[training]\nlearning_rate = 0\nmin_lr = 0\n", "training.learning_rate must be > 0"),
        ("[training]\nmin_lr = 0.1\n", "training.min_lr (0.1) must be <= training.learning_rate (0.0003)"),
        ("[training]\nbetas = [0.9, 1.0]\n", "training.betas[1] must be in [0, 1), got 1.0"),
        ("[training]\nbatch_size = 0\n", "training.batch_size must be >= 1, got 0"),
        ("[training]\npatience = -1\n", "training.patience must be >= 0"),
        ("[training]\nval_fraction = 1.0\n", "training.val_fraction must be between 0 and 1"),
        ("[training]\nval_fraction = 0\n", "training.val_fraction must be between 0 and 1"),
        ("[training]\nwarmup_steps = -5\n", "training.warmup_steps must be >= 0"),
        ("[training]\ndevice = 'gpu'\n", "training.device must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"),
        ("[training]\ngrad_clip = -1\n", "training.grad_clip must be >= 0"),
        ("[training]\noptimizer = 'sgd'\n", "training.optimizer must be one of adamw, muon, got 'sgd'"),
        ("[training]\nmuon_lr = 0\n", "training.muon_lr must be > 0, got 0"),
    ],
)
def test_out_of_range_values_are_named(tmp_path, text, expected):
    assert expected in error_of(write(tmp_path / "p.toml", text))


def test_cuda_n_and_missing_keys_take_defaults(tmp_path):
    preset = P.load_preset(write(tmp_path / "p.toml", "[training]\ndevice = 'cuda:1'\n"))
    assert preset.training.device == "cuda:1"
    assert preset.model == P.ModelSection()
    assert dataclasses.replace(preset.training, device="auto") == P.TrainingSection()


def test_unknown_preset_name_lists_the_available_ones(tmp_path):
    with pytest.raises(TacticsError) as info:
        P.load_preset("tinny", tmp_path)
    message = str(info.value)
    assert "unknown preset 'tinny'" in message and "did you mean 'tiny'" in message
    assert all(name in message for name in BUILTINS)
    with pytest.raises(TacticsError, match="preset file not found: .*nope.toml"):
        P.load_preset(str(tmp_path / "nope.toml"), tmp_path)


# ---------------------------------------------------------------- round trip


@pytest.mark.parametrize("name", BUILTINS)
def test_round_trip_loses_no_value(tmp_path, name):
    original = P.load_preset(name, tmp_path)
    saved = P.save_preset(original, tmp_path / "copy.toml")
    again = P.load_preset(saved)
    assert again.to_dict() == original.to_dict()
    assert again.header == original.header and original.header.startswith(f"# {name}")
    # And a second save gives the same text (stable formatting).
    assert P.dumps_preset(again) == P.dumps_preset(original)


def test_round_trip_of_awkward_values(tmp_path):
    text = (
        "# my preset\n# second line\n\n"
        'description = "quotes \\" and unicode ∀"\n'
        "[model]\nd_model = 96\nn_heads = 3\ndropout = 0.05\n"
        "[training]\nlearning_rate = 3e-4\nmin_lr = 1e-7\nbetas = [0.8, 0.999]\nweight_decay = 0\n"
    )
    original = P.load_preset(write(tmp_path / "a.toml", text))
    again = P.load_preset(P.save_preset(original, tmp_path / "b.toml"))
    assert again.to_dict() == original.to_dict()
    assert again.training.min_lr == 1e-7 and again.training.betas == [0.8, 0.999]
    assert again.description == 'quotes " and unicode ∀'
    assert (tmp_path / "b.toml").read_text(encoding="utf-8").startswith("# my preset\n# second line\n")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # atomic write cleaned up


# ---------------------------------------------------------------- overrides


def test_overrides_parse_toml_values():
    base = P.load_preset("default", Path("/nonexistent"))
    p = P.apply_overrides(
        base,
        [
            "training.batch_size=8",
            "training.learning_rate=3e-3",
            'training.device="cuda"',
            "training.betas=[0.9,0.99]",
            "model.dropout=0",
            "n_layers=2",  # unambiguous without its section
        ],
    )
    assert p.training.batch_size == 8 and p.training.learning_rate == 3e-3
    assert p.training.device == "cuda" and p.training.betas == [0.9, 0.99]
    assert p.model.dropout == 0.0 and isinstance(p.model.dropout, float) and p.model.n_layers == 2
    assert P.apply_overrides(base, ["training.device=cpu"]).training.device == "cpu"  # bare word
    assert base.training.batch_size == 32 and base.model.n_layers == 6  # not mutated
    assert p.source == base.source and p.name == "default"


@pytest.mark.parametrize(
    "override, expected",
    [
        ("training.batchsize=8", "--set training.batchsize=8: unknown key training.batchsize (did you mean training.batch_size?)"),
        ("trainig.batch_size=8", "unknown section 'trainig' (did you mean training.batch_size?)"),
        ("training.batch_size", "expected section.key=value"),
        ("training.batch_size=eight", "--set training.batch_size=eight: training.batch_size must be an integer, got a string"),
        ("training.batch_size=0", "training.batch_size must be >= 1, got 0 (after --set training.batch_size=0)"),
        ("model.n_heads=7", "must be divisible by model.n_heads (7)"),
    ],
)
def test_bad_overrides_are_named(override, expected):
    base = P.load_preset("default", Path("/nonexistent"))
    with pytest.raises(TacticsError) as info:
        P.apply_overrides(base, [override])
    assert expected in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------- workspace presets


def test_user_preset_shadows_builtin(tmp_path):
    presets_dir = tmp_path / "presets"
    write(presets_dir / "tiny.toml", 'description = "mine"\n[model]\nd_model = 64\nn_heads = 2\n')
    write(presets_dir / "extra.toml", "[training]\nbatch_size = 4\n")
    write(presets_dir / "broken.toml", "[training]\nbatch_size = 0\n")
    preset = P.load_preset("tiny", presets_dir)
    assert preset.model.d_model == 64 and not preset.builtin and preset.description == "mine"
    assert P.load_preset("extra", presets_dir).training.batch_size == 4
    infos = {(i.name, i.builtin): i for i in P.list_presets(presets_dir)}
    assert infos[("tiny", False)].shadows and not infos[("tiny", True)].active
    assert infos[("default", True)].active and not infos[("default", True)].shadows
    assert infos[("extra", False)].shadows is False
    assert "batch_size must be >= 1" in infos[("broken", False)].error  # listed, not hidden
    # The built-in is still reachable by path.
    assert P.load_preset(P.builtin_presets_dir() / "tiny.toml", presets_dir).model.d_model == 128


def test_copy_builtin_never_overwrites_without_force(tmp_path):
    presets_dir = tmp_path / "presets"
    target = P.copy_builtin("tiny", presets_dir)
    assert target == presets_dir / "tiny.toml"
    assert target.read_text() == (P.builtin_presets_dir() / "tiny.toml").read_text()  # comments kept
    target.write_text(target.read_text().replace("d_model        = 128", "d_model        = 64"))
    with pytest.raises(TacticsError, match="already exists; pass --force"):
        P.copy_builtin("tiny", presets_dir)
    assert P.load_preset("tiny", presets_dir).model.d_model == 64  # the user's edit survived
    P.copy_builtin("tiny", presets_dir, force=True)
    assert P.load_preset("tiny", presets_dir).model.d_model == 128
    other = P.copy_builtin("cpu", presets_dir, dest="fast")
    assert other == presets_dir / "fast.toml" and P.load_preset("fast", presets_dir).model == P.load_preset("cpu").model


# ---------------------------------------------------------------- CLI


def test_cli_ls_show_cp(tmp_path, capsys):
    presets_dir = tmp_path / "presets"
    assert main(["presets", "--presets-dir", str(presets_dir), "cp", "tiny"]) == 0
    assert "presets/tiny.toml" in capsys.readouterr().out
    assert main(["presets", "--presets-dir", str(presets_dir), "cp", "tiny"]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main(["presets", "--presets-dir", str(presets_dir), "ls"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "workspace" in out and "shadows the built-in" in out and "default" in out
    assert main(["presets", "--presets-dir", str(presets_dir), "show", "default", "--set", "training.batch_size=4"]) == 0
    shown = capsys.readouterr().out
    data = tomllib.loads(shown)
    assert data["training"]["batch_size"] == 4 and data["model"]["d_model"] == 256
    assert main(["presets", "--presets-dir", str(presets_dir), "show", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown preset 'nope'") and err.count("\n") == 1


def test_docs_table_lists_every_key_with_its_default():
    from tactics_core.training.presets import _format_value

    docs = (REPO / "docs" / "presets.md").read_text(encoding="utf-8")
    for section, cls in P.SECTIONS.items():
        defaults = cls()
        for f in dataclasses.fields(cls):
            row = f"| `{section}.{f.name}` | `{_format_value(getattr(defaults, f.name))}` |"
            assert row in docs, f"docs/presets.md lacks or mis-states {row}"


def test_presets_load_without_torch_and_take_the_models_defaults():
    """Loading a preset must stay instant (CLI, TUI): GPTConfig lives apart from the torch model."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "import tactics_core.training.presets as P\n"
        "from tactics_core.gpt.model_config import GPTConfig\n"
        "P.load_preset('default')\n"
        "same = P.ModelSection().gpt_config(4096) == GPTConfig()\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'same': same}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"torch": False, "same": True}
    from tactics_core.gpt.model import GPTConfig

    assert GPTConfig is __import__("tactics_core.gpt.model_config", fromlist=["GPTConfig"]).GPTConfig  # re-exported


def test_every_key_is_documented_next_to_its_definition():
    """The doc at each key's definition is the comment saving writes and the docs table's meaning."""
    from tactics_core.training.presets import _format_value

    text = P.dumps_preset(P.load_preset("default", Path("/nonexistent")))
    docs = (REPO / "docs" / "presets.md").read_text(encoding="utf-8")
    for section, cls in P.SECTIONS.items():
        defaults = cls()
        for f in dataclasses.fields(cls):
            doc = P.key_doc(section, f.name)
            assert doc and "\n" not in doc and f"# {doc}" in text, (section, f.name)
            assert f"| `{section}.{f.name}` | `{_format_value(getattr(defaults, f.name))}` | {doc} |" in docs, f.name


# ---------------------------------------------------------------- structured errors


@pytest.mark.parametrize(
    "texts, key, reason",
    [
        ({"model": {"n_heads": "5"}}, "model.d_model", "model.d_model (128) must be divisible by model.n_heads (5); e.g. n_heads = 4"),
        ({"model": {"n_heads": "abc"}}, "model.n_heads", "model.n_heads must be an integer, got a string ('abc')"),
        ({"training": {"min_lr": "1"}}, "training.min_lr", "training.min_lr (1.0) must be <= training.learning_rate"),
        ({"training": {"betas": "[0.9,"}}, "training.betas", "cannot read the value '[0.9,'"),
        ({"training": {"betas": "[0.9, 1]"}}, "training.betas", "training.betas[1] must be in [0, 1), got 1.0"),
    ],
)
def test_edit_preset_names_the_key_and_the_reason_apart(texts, key, reason):
    base = P.load_preset("tiny", Path("/nonexistent"))
    with pytest.raises(P.PresetError) as info:
        P.edit_preset(base, texts)
    exc = info.value
    assert isinstance(exc, TacticsError) and exc.key == key and exc.reason.startswith(reason)
    assert str(exc) == f"{base.label}: {exc.reason}" and "\n" not in str(exc)


def test_edit_preset_applies_text_values_like_set():
    base = P.load_preset("tiny", Path("/nonexistent"))
    edited = P.edit_preset(base, {"model": {"n_heads": "4"}, "training": {"device": "cpu", "betas": "[0.8, 0.9]"}})
    assert edited == P.apply_overrides(base, ["model.n_heads=4", "training.device=cpu", "training.betas=[0.8,0.9]"])
    assert edited.model.n_heads == 4 and edited.header == base.header and edited.source == base.source


def test_set_errors_keep_their_one_line_and_carry_the_key():
    base = P.load_preset("default", Path("/nonexistent"))
    with pytest.raises(P.PresetError) as info:
        P.apply_overrides(base, ["training.batch_size=0"])
    assert info.value.key == "training.batch_size" and info.value.reason == "training.batch_size must be >= 1, got 0"
    assert str(info.value).endswith("(after --set training.batch_size=0)")
    import pickle

    again = pickle.loads(pickle.dumps(info.value))
    assert (again.key, again.reason, str(again)) == (info.value.key, info.value.reason, str(info.value))
