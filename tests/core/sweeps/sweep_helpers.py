"""Helpers of the sweep tests: a scorer workspace on the real acorn trace committed in
tests/fixtures/acorn_eval_91f29ff1 (7 searches of add_monoid, goal buckets 14-87: buckets 0-80
train, the one search of bucket 87 validates), a small base preset and a space file over it;
and a small GPT workspace on generated proof files."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[3]
FIXTURE_DIR = REPO / "tests" / "fixtures" / "acorn_eval_91f29ff1"
BASE_OVERRIDES = [
    'data.train_buckets="0-80"', 'data.val_buckets="81-99"', "training.batch_size=64", "training.eval_interval=5",
    "training.save_interval=1000", "training.warmup_steps=2", "training.device=\"cpu\"", "training.patience=3",
    "training.num_threads=1",
]
SPACE = """\
[base]
preset = "tinyscorer"

[sweep]
startup_trials = 1

[space]
"model.hidden_size" = { choices = [8, 16] }
"training.learning_rate" = { low = 1e-3, high = 1e-2, log = true }
"""


def scorer_workspace(root: Path, space: str = SPACE) -> Path:
    """`root` as a workspace: traces/ (the real fixture trace), presets/tinyscorer.toml, space.toml."""
    from tactics_core.training.presets import apply_overrides, load_preset, save_preset

    traces = root / "traces"
    traces.mkdir(parents=True)
    for name in ("add_monoid_sample.jsonl.zst", "add_monoid_sample.meta.json"):
        shutil.copyfile(FIXTURE_DIR / name, traces / name)
    (root / "presets").mkdir()
    save_preset(apply_overrides(load_preset("scorer"), BASE_OVERRIDES), root / "presets" / "tinyscorer.toml")
    (root / "space.toml").write_text(space)
    return root


TINY_GPT = [
    "model.d_model=32", "model.n_layers=1", "model.n_heads=2", "model.context_length=64", "training.batch_size=4",
    "training.num_threads=1", "training.eval_interval=10", "training.eval_batches=2", "training.device=\"cpu\"",
    "training.save_interval=1000", "training.warmup_steps=2",
]
GPT_SPACE = '[base]\npreset = "tinygpt"\n[space]\n"training.learning_rate" = { low = 1e-3, high = 1e-2, log = true }\n'


def gpt_workspace(root: Path, extra: tuple[str, ...] = ()) -> Path:
    """`root` as a GPT workspace without its tokenizer: data/proofs (a generated family of 60
    proof files), presets/tinygpt.toml (the `tiny` preset made smaller, with `extra`), gpt.toml."""
    from helpers_models import write_family_files

    from tactics_core.training.presets import apply_overrides, load_preset, save_preset

    write_family_files(root / "data" / "proofs", 60)
    (root / "presets").mkdir()
    save_preset(apply_overrides(load_preset("tiny"), TINY_GPT + list(extra)), root / "presets" / "tinygpt.toml")
    (root / "gpt.toml").write_text(GPT_SPACE)
    return root


class PruneTrial(optuna.pruners.BasePruner):
    """Prunes the trials of the given numbers at their first report, and no other: pruning the
    tests can count on, whatever the figures and the machine's speed."""

    def __init__(self, *numbers: int) -> None:
        self.numbers = set(numbers)

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number in self.numbers
