"""A real sweep on a slice of real data (the scorer kind on the committed acorn trace): trials as
runs, pruning, the ranking and the best preset, resume after a killed trial, a clean cancel.

Nothing here depends on timing: pruning is forced by a pruner that names its trials, the safety
timer is pushed out of reach, and no assertion reads a step count the machine's speed sets."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweep_helpers import PruneTrial, scorer_workspace

from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken
from tactics_core.common.workspace import SWEEP_BEST_FILE, SWEEP_FILE, SWEEP_SPACE_FILE, SWEEP_STUDY_FILE
from tactics_core.runs.workspace_runs import list_runs
from tactics_core.sweeps import study as study_mod
from tactics_core.sweeps.record import list_sweeps, read_sweep
from tactics_core.sweeps.study import SweepOptions, run_sweep

pytestmark = pytest.mark.slow

BUDGET = 0.05  # minutes: 3 s per trial, most of it the fitted steps of a tiny MLP


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(study_mod, "OVERRUN_GRACE_S", 3600.0)  # the safety net never fires in a test
    return scorer_workspace(tmp_path)


def _options(**kw) -> SweepOptions:
    base = dict(space=Path("space.toml"), budget_minutes=BUDGET, trials=3, data_dir=Path("traces"))
    base.update(kw)
    return SweepOptions(**base)


def test_a_tiny_sweep_trains_runs_prunes_one_and_writes_the_best_preset(ws):
    from tactics_core.training.presets import load_preset

    lines: list[str] = []
    result = run_sweep(_options(), log=lines.append, pruner=PruneTrial(1))
    summary = result.summary
    folder = ws / "sweeps" / "space"
    assert {p.name for p in folder.iterdir()} >= {SWEEP_STUDY_FILE, SWEEP_SPACE_FILE, SWEEP_FILE, SWEEP_BEST_FILE}
    assert (folder / SWEEP_SPACE_FILE).read_text() == (ws / "space.toml").read_text()
    states = {t.number: t.state for t in summary.trials}
    assert states == {0: "COMPLETE", 1: "PRUNED", 2: "COMPLETE"}
    # every trial is a normal run in its own folder, named after the sweep
    runs = {r.name: r for r in list_runs(ws / "checkpoints")}
    assert {"space-t000", "space-t001", "space-t002"} <= set(runs)
    assert all(t.run == f"space-t{t.number:03d}" for t in summary.trials)
    pruned = next(t for t in summary.trials if t.state == "PRUNED")
    assert pruned.step is not None and pruned.objective is not None  # its one report
    assert any("trial 1 pruned at step" in line for line in lines)
    assert any("the base preset is not a trial: its model.hidden_size=128 lies outside the space" in line for line in lines)
    # the ranking: completed trials best first (used_rank: lower), the pruned one after them
    ranking = summary.ranking()
    assert [t.state for t in ranking] == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert ranking[0].objective <= ranking[1].objective and summary.best is ranking[0]
    assert all(t.max_steps and t.max_steps >= 1 and t.seconds is not None for t in summary.trials)
    # evaluated at equal shares of the budget: reports keyed by share (thousandths), the step kept beside
    from tactics_core.sweeps.record import open_storage

    storage = open_storage(folder)
    try:
        frozen = {t.number: t for t in storage.get_all_trials(storage.get_study_id_from_name("space"))}
    finally:
        storage.engine.dispose()
    for t in summary.trials:
        shares = list(frozen[t.number].intermediate_values)
        assert shares and all(k % 50 == 0 and 0 < k <= 1000 for k in shares)
        assert max(shares) == round(1000 * t.step / t.max_steps)  # the real step of the last report, kept
    # the best preset: the base with the best trial's values and the steps it was fitted
    best = load_preset(str(result.best_preset))
    assert best.kind == "scorer" and best.data.val_buckets == "81-99"
    assert best.model.hidden_size == summary.best.params["model.hidden_size"]
    assert best.training.learning_rate == pytest.approx(summary.best.params["training.learning_rate"])
    assert best.training.max_steps == summary.best.max_steps
    assert "sweep space, trial" in best.description
    # read back as the TUI would
    again = read_sweep(folder)
    assert again.counts()["COMPLETE"] == 2 and again.best.number == summary.best.number
    assert [s.name for s in list_sweeps(ws)] == ["space"]
    # a second sweep of the name is refused; resuming it with another budget too
    with pytest.raises(TacticsError, match="already exists.*--resume"):
        run_sweep(_options())
    with pytest.raises(TacticsError, match="keeps its budget"):
        run_sweep(_options(resume=True, budget_minutes=1.0))


def test_the_first_trial_is_the_base_preset_when_its_values_lie_in_the_space(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(study_mod, "OVERRUN_GRACE_S", 3600.0)
    from sweep_helpers import SPACE

    scorer_workspace(tmp_path, SPACE.replace("choices = [8, 16]", "choices = [8, 128]"))  # the base's 128
    lines: list[str] = []
    result = run_sweep(_options(trials=2), log=lines.append)
    trials = {t.number: t for t in result.summary.trials}
    from tactics_core.training.presets import load_preset

    base = load_preset("tinyscorer", tmp_path / "presets")
    assert trials[0].params == {"model.hidden_size": base.model.hidden_size,
                                "training.learning_rate": pytest.approx(base.training.learning_rate)}
    assert trials[0].note.startswith("the base preset") and not trials[1].note.startswith("the base preset")
    assert any("trial 0 trains the base preset 'tinyscorer'" in line for line in lines)


class Killed(BaseException):
    """What kill -9 looks like from inside: the process stops mid-trial, nothing is told."""


def test_resume_after_a_trial_killed_midway_retries_its_parameters(ws, monkeypatch):
    from tactics_core.training import loop

    real_train = loop.train
    calls = {"n": 0}

    def dying_train(*args, on_event=None, **kw):
        calls["n"] += 1
        if calls["n"] > 1:
            return real_train(*args, on_event=on_event, **kw)

        def killer(ev):
            on_event(ev)
            if type(ev).__name__ == "EvalEvent":
                raise Killed()

        return real_train(*args, on_event=killer, **kw)

    monkeypatch.setattr(loop, "train", dying_train)
    with pytest.raises(Killed):
        run_sweep(_options(trials=2))
    folder = ws / "sweeps" / "space"
    left = read_sweep(folder)
    assert [(t.number, t.state) for t in left.trials] == [(0, "RUNNING")]
    killed_params = left.trials[0].params

    lines: list[str] = []
    result = run_sweep(_options(space=None, name="space", resume=True, budget_minutes=None, trials=None,
                                data_dir=None), log=lines.append)
    trials = {t.number: t for t in result.summary.trials}
    assert trials[0].state == "FAIL"
    assert trials[1].state == "COMPLETE" and trials[1].params == killed_params  # its parameters, trained again
    assert "retries trial 0" in trials[1].note
    assert trials[2].state == "COMPLETE"
    assert trials[2].params != killed_params  # the resumed sampler draws anew, not the killed process's draws again
    assert any("trial 0 was left running" in line for line in lines)
    assert result.best_preset is not None and result.best_preset.is_file()


def test_a_cancel_ends_the_trial_cleanly_and_resume_trains_it_again(ws):
    cancel = CancelToken()

    def log(line: str) -> None:
        if " step " in line and "trial 0" in line:  # the first evaluation of the first trial: Ctrl-C
            cancel.cancel()

    result = run_sweep(_options(trials=1), log=log, cancel=cancel)
    assert result.cancelled and result.best_preset is None
    states = sorted((t.number, t.state) for t in result.summary.trials)
    assert states == [(0, "FAIL"), (1, "WAITING")]  # interrupted, its parameters queued again
    runs = {r.name: r for r in list_runs(ws / "checkpoints")}
    assert runs["space-t000"].status == "stopped"  # ended gracefully, with a final checkpoint

    resumed = run_sweep(_options(space=None, name="space", resume=True, budget_minutes=None, trials=None,
                                 data_dir=None))
    trials = {t.number: t for t in resumed.summary.trials}
    assert trials[1].state == "COMPLETE" and trials[1].params == trials[0].params
    assert not resumed.cancelled


def test_a_gpt_sweep_needs_the_tokenizer_and_trains_its_trials_as_runs(tmp_path, monkeypatch):
    from sweep_helpers import gpt_workspace

    from tactics_core.gpt.tokenizer import train_tokenizer

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(study_mod, "OVERRUN_GRACE_S", 3600.0)
    gpt_workspace(tmp_path)
    options = SweepOptions(space=Path("gpt.toml"), budget_minutes=0.05, trials=1)
    with pytest.raises(TacticsError, match="tokenizer file not found.*tactics tokenizer train"):
        run_sweep(options)
    assert not (tmp_path / "sweeps").exists()  # refused before anything was written
    train_tokenizer(tmp_path / "data" / "proofs", tmp_path / "checkpoints", vocab_size=300, kind="lines")
    result = run_sweep(options)
    [trial] = result.summary.trials
    assert trial.state == "COMPLETE" and trial.run == "gpt-t000" and result.summary.objective == "proof_loss"
    assert (tmp_path / "checkpoints" / "runs" / "gpt-t000" / "tokenizer.json").is_file()
    assert result.best_preset is not None and "learning_rate" in result.best_preset.read_text()


def test_the_judge_exports_the_best_scorers_and_ranks_them_by_the_provers_verdict(ws, monkeypatch):
    """The seam to acorn eval, with acorn's side replaced: the real exports, the verdict per trial."""
    from tactics_core.acorn import eval_judge
    from tactics_core.sweeps.judge import judge_trials

    summary = run_sweep(_options(trials=2), pruner=PruneTrial()).summary
    seen = {}

    def fake_judge(setup, buckets, models, baselines=(), cancel=None, progress=None):
        seen.update(setup=setup, buckets=buckets, models=models, baselines=baselines)
        report = eval_judge.JudgeReport("acorn", "acornlib", list(buckets), 1.0, None, None, True)
        for i, folder in enumerate(models):  # the second export proves more
            onnx = eval_judge.scorer_onnx(folder)
            fig = eval_judge.PolicyFigures(onnx.stem, "model", str(onnx))
            fig.buckets[91] = eval_judge.BucketFigures(10, 5 + i, 100.0)
            report.policies.append(fig)
        return report

    monkeypatch.setattr(eval_judge, "resolve_eval_setup", lambda **kw: "SETUP")
    monkeypatch.setattr(eval_judge, "judge", fake_judge)
    lines: list[str] = []
    verdicts = judge_trials(summary, 2, ws / "checkpoints", "91", log=lines.append)
    ranked = [t.run for t in summary.ranking()]
    assert seen["setup"] == "SETUP" and seen["buckets"] == [91] and seen["baselines"] == ()
    assert [v.run for v in verdicts] == ranked[::-1] and verdicts[0].figure == pytest.approx(0.6)
    assert verdicts[0].text == "6/10 searches succeeded"
    for run in ranked:  # each trial's best checkpoint exported the way acorn loads it
        assert (ws / "sweeps" / "space" / "exports" / run / f"{run}.onnx").is_file()


def test_without_acorn_the_judge_says_so_in_one_line(ws, monkeypatch):
    from tactics_core.sweeps.judge import judge_trials

    for name in ("TACTICS_ACORN_EVAL", "TACTICS_ACORNLIB_EVAL"):
        monkeypatch.delenv(name, raising=False)
    summary = run_sweep(_options(trials=1)).summary
    lines: list[str] = []
    assert judge_trials(summary, 3, ws / "checkpoints", log=lines.append) == []
    assert len(lines) == 1 and lines[0].startswith("judge: acorn is not configured (") and \
        lines[0].endswith("ranking by the validation used_rank")


def test_a_storage_opened_by_two_processes_at_once_is_opened_again(tmp_path, monkeypatch):
    """The TUI reading a sweep while its process creates study.db: both stamp the schema version
    and one is refused by SQLite (a UNIQUE constraint); that side opens the storage again."""
    import optuna
    import sqlalchemy.exc

    from tactics_core.sweeps import record

    real = optuna.storages.RDBStorage
    calls = []

    def racing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            real(*args, **kwargs)  # the other side wins the race: the file and its version exist
            raise sqlalchemy.exc.IntegrityError("INSERT INTO alembic_version", {}, Exception("UNIQUE constraint failed"))
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    monkeypatch.setattr(record.time, "sleep", lambda s: None)
    storage = record.open_storage(tmp_path)
    assert len(calls) == 2 and storage.get_all_studies() == []
    storage.engine.dispose()


def test_a_gpt_judge_ranks_by_own_lines_then_goals_saturation_misses_on_both_splits(tmp_path, monkeypatch):
    """The seam to acorn's generative prover with acorn's side replaced: each trial exported once,
    saturation run once per split, both splits in each verdict, the base trial judged beside the
    best, the ranking by the goals proved by the model's own lines, then those saturation missed."""
    from types import SimpleNamespace

    from sweep_helpers import gpt_workspace

    from tactics_core.acorn import generative_judge as gj
    from tactics_core.acorn import goal_sample
    from tactics_core.gpt.tokenizer import train_tokenizer
    from tactics_core.sweeps.judge import HELD_OUT, SEEN, judge_trials

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(study_mod, "OVERRUN_GRACE_S", 3600.0)
    gpt_workspace(tmp_path, ("training.learning_rate=0.002",))  # the base lies in the space: trial 0 is it
    train_tokenizer(tmp_path / "data" / "proofs", tmp_path / "checkpoints", vocab_size=300, kind="lines")
    summary = run_sweep(SweepOptions(space=Path("gpt.toml"), budget_minutes=0.05, trials=3)).summary
    assert next(t for t in summary.trials if t.number == 0).base

    calls: list[tuple[str, str | None]] = []

    def fake_prove(setup, modules, export, jobs=1, cancel=None, progress=None, choose=None):
        run = None if export is None else Path(export).name
        calls.append(("seen" if choose is not None else "held", run or "saturation"))
        number = -1 if run is None else int(run[-3:])
        goals = []
        for k in range(4):  # goal k is proved by saturation when k < 2; trial n proves goals < n+1, by lines when k > 0
            proved = k < 2 if run is None else k <= number
            goals.append(gj.GoalResult(modules[0], f"g{k}", k + 1, "proved" if proved else "timeout", 1.0,
                                       proof=["by line"] if proved and run is not None and k > 0 else None))
        return [gj.ProverResult("model" if run else "saturation", [gj.ModuleResult(modules[0], goals)])]

    sample = SimpleNamespace(modules=["nat.seen"], choose=lambda module, listed: listed, summary=lambda: "3 goal lines",
                             unlisted=["nat.seen:9 (acorn lists no goal there)"])
    asked = {}

    def fake_sample(data_dir, size, seed=0, val_fraction=None, split="theorem", cancel=None):
        asked.update(data_dir=data_dir, size=size, seed=seed, val_fraction=val_fraction, split=split)
        return sample

    monkeypatch.setattr(gj, "resolve_setup", lambda **kw: SimpleNamespace(acornlib=tmp_path))
    monkeypatch.setattr(gj, "select_modules", lambda lib, patterns: list(patterns))
    monkeypatch.setattr(gj, "prove_modules", fake_prove)
    monkeypatch.setattr(goal_sample, "seen_subject_goals", fake_sample)
    with pytest.raises(TacticsError, match="--judge-module M.*--judge-seen N"):
        judge_trials(summary, 1, tmp_path / "checkpoints")
    manifest = tmp_path / "data" / "manifest.jsonl"  # the import's record of the data's modules
    manifest.write_text('{"file": "proof_00000.txt", "module": "src/list/held.ac"}\n')
    with pytest.raises(TacticsError, match=r"list\.held is in the sweep's data .*not held out"):
        judge_trials(summary, 1, tmp_path / "checkpoints", modules=["list.held"])
    manifest.write_text('{"file": "proof_00000.txt"}\n')  # damaged: said, not taken for "no module trained"
    with pytest.raises(TacticsError, match=r"manifest\.jsonl:1: no provenance"):
        judge_trials(summary, 1, tmp_path / "checkpoints", modules=["list.held"])
    manifest.unlink()
    lines: list[str] = []
    verdicts = judge_trials(summary, 2, tmp_path / "checkpoints", modules=["list.held"], log=lines.append,
                            seen_goals=3, seed=7)
    judged = {t.number for t in summary.ranking()[:2]} | {0}  # the best two and the base trial
    assert f"judge: {SEEN}: 1 sampled lines left out: nat.seen:9 (acorn lists no goal there)" in lines
    assert len(judged) >= 2
    assert {v.number for v in verdicts} == judged and any(v.base for v in verdicts)
    assert asked["size"] == 3 and asked["seed"] == 7 and asked["split"] == "theorem"
    assert asked["data_dir"] == str((tmp_path / "data" / "proofs").resolve())
    # saturation once per split, each judged trial once per split, from its own export
    assert sorted(calls) == sorted([("held", "saturation"), ("seen", "saturation")] +
                                   [(s, f"gpt-t{n:03d}") for s in ("held", "seen") for n in judged])
    for v in verdicts:
        assert set(v.splits) == {HELD_OUT, SEEN}
        own = v.splits[SEEN]["own_lines"]
        assert own == v.number and v.splits[SEEN]["beyond_saturation"] == max(0, v.number - 1)
        assert v.figure == 2 * own and f"{SEEN}: proved" in v.text
        assert (tmp_path / "sweeps" / "gpt" / "exports" / v.run).is_dir()
    assert [v.number for v in verdicts] == sorted(judged, reverse=True)  # more own lines first
    # kept in the sweep's folder: `tactics sweeps show` and the TUI rank by the prover afterwards
    from tactics_core.cli.sweep_cmd import judged_text

    again = read_sweep(tmp_path / "sweeps" / "gpt")
    assert [v["number"] for v in again.judged["verdicts"]] == [v.number for v in verdicts]
    assert again.judged["verdicts"][0]["splits"][SEEN]["own_lines"] == verdicts[0].splits[SEEN]["own_lines"]
    text = judged_text(again)
    assert text.startswith("judged by the real prover (") and "(the base preset)" in text
    assert f"1  trial {verdicts[0].number} ({verdicts[0].run})\n     {HELD_OUT}: proved" in text
