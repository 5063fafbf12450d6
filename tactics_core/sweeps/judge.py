"""The best trials of a sweep judged by the real prover: a thin seam over the two acorn judges.

Judged are the best `top` completed trials and, beside them, the base trial (the base preset's own
values, `[sweep] base_trial`): the reference the search has to beat.

* a scorer: each trial's best checkpoint is exported (`training.kinds.export_checkpoint`) into
  `<sweep>/exports/RUN`, then `acorn.eval_judge.judge` runs them side by side on the goal buckets
  (`acorn eval --policy model`, one process per model and bucket); the figure is the success rate.
* a GPT: each trial's best checkpoint is exported the same way, then acorn's generative prover
  (`acorn.generative_judge.prove_modules`) judges it on up to two splits, each beside one run of
  acorn's saturation prover on the same goals: **held-out modules** (`modules`: ones the data
  left out) and **new theorems of seen subjects** (`seen_goals` goal lines of the validation
  theorems, `acorn.goal_sample.seen_subject_goals` of the sweep's data folder, split as the base
  preset splits it). Trials are ranked by the goals proved by their own lines (both splits), then
  the goals they proved that saturation did not.

When acorn is not configured (flags, environment, the workspace's tactics.toml), `judge_trials`
says so in one line and judges nothing: the sweep ranks by its validation objective. Only the
CLI (and later the TUI) import this module.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn
from tactics_core.common.atomic import atomic_write_text
from tactics_core.common.workspace import BEST_MODEL_FILE, CHECKPOINT_DIR, RUNS_SUBDIR, SWEEP_JUDGED_FILE, workspace_root
from tactics_core.sweeps.record import SweepSummary, TrialRow

DEFAULT_BUCKETS = "91-92"  # held out from the scorer preset's own validation bucket 90 in the docs' examples
HELD_OUT = "held-out modules"
SEEN = "new theorems of seen subjects"


@dataclass
class Verdict:
    """One judged trial: the prover's figure (higher is better), its words, and a GPT's figures
    per split (`generative_judge.split_figures`)."""

    number: int
    run: str
    figure: float | None
    text: str
    base: bool = False
    splits: dict[str, dict[str, Any]] = field(default_factory=dict)
    rank_key: tuple = ()


def judged_trials(summary: SweepSummary, top: int) -> list[TrialRow]:
    """The best `top` COMPLETE trials, and the base trial after them when it completed elsewhere."""
    complete = [t for t in summary.ranking() if t.state == "COMPLETE"]
    chosen = complete[: max(0, top)]
    chosen += [t for t in complete if t.base and t not in chosen][:1]
    return chosen


def judge_trials(
    summary: SweepSummary,
    top: int,
    checkpoint_dir: str | Path = CHECKPOINT_DIR,
    buckets: str = DEFAULT_BUCKETS,
    modules: Sequence[str] = (),
    workspace: str | Path = ".",
    log: Callable[[str], None] = print,
    cancel: CancelToken | None = None,
    progress: ProgressFn | None = None,
    seen_goals: int = 0,
    seed: int = 0,
    jobs: int = 1,
) -> list[Verdict]:
    """The best `top` COMPLETE trials (and the base trial) judged by the real prover, best verdict
    first; [] (and one line logged) when acorn is not configured or no trial completed."""
    chosen = judged_trials(summary, top)
    if not chosen:
        log("judge: no completed trial to judge")
        return []
    root = workspace_root(checkpoint_dir) / RUNS_SUBDIR
    if summary.kind == "scorer":
        from tactics_core.acorn.eval_judge import resolve_eval_setup

        try:
            setup = resolve_eval_setup(workspace=workspace)
        except TacticsError as exc:
            log(f"judge: acorn is not configured ({exc}); ranking by the validation {summary.objective}")
            return []
        verdicts = _judge_scorers(summary, chosen, root, setup, buckets, log, cancel, progress)
        return save_verdicts(summary, verdicts, f"acorn eval --policy model on buckets {buckets}", setup)
    from tactics_core.acorn.generative_judge import resolve_setup

    if not modules and not seen_goals:
        raise TacticsError("a GPT sweep is judged on held-out modules (--judge-module M) and/or new theorems of "
                           "seen subjects (--judge-seen N); give at least one")
    try:
        setup = resolve_setup(workspace=workspace)
    except TacticsError as exc:
        log(f"judge: acorn is not configured ({exc}); ranking by the validation {summary.objective}")
        return []
    exports = {t.number: _export(summary, root, t, cancel) for t in chosen}
    splits = _gpt_splits(summary, setup, exports, modules, seen_goals, seed, log, cancel)
    verdicts = _judge_gpts(chosen, exports, setup, splits, jobs, log, cancel, progress)
    words = "; ".join(s.describe() for s in splits)
    return save_verdicts(summary, verdicts, f"acorn's generative prover beside its saturation prover. {words}", setup)


def save_verdicts(summary: SweepSummary, verdicts: list[Verdict], how: str, setup: Any) -> list[Verdict]:
    """`<sweep>/judged.json` (atomically): the verdicts best first, how they were judged and with
    which acorn, so `tactics sweeps show` and the TUI rank by the prover after the judge ends."""
    data = {"judged": time.strftime("%Y-%m-%d %H:%M:%S"), "how": how, "acorn": str(getattr(setup, "binary", "")),
            "acornlib": str(getattr(setup, "acornlib", "")), "verdicts": [asdict(v) for v in verdicts]}
    atomic_write_text(summary.folder / SWEEP_JUDGED_FILE, json.dumps(data, indent=1, default=str) + "\n")
    return verdicts


def _export(summary: SweepSummary, runs: Path, trial: TrialRow, cancel: CancelToken | None) -> Path:
    """The trial's best checkpoint exported into `<sweep>/exports/RUN` (once: kept for a second judge)."""
    from tactics_core.training.kinds import export_checkpoint

    out = summary.folder / "exports" / str(trial.run)
    if not out.exists():
        export_checkpoint(runs / str(trial.run) / BEST_MODEL_FILE, out, cancel=cancel)
    return out


def _judge_scorers(summary: SweepSummary, chosen: list[TrialRow], runs: Path, setup, buckets: str, log,
                   cancel: CancelToken | None, progress: ProgressFn | None) -> list[Verdict]:
    from tactics_core.acorn.eval_judge import judge, parse_buckets, report_text
    exports = {str(_export(summary, runs, trial, cancel)): trial for trial in chosen}
    log(f"judge: acorn eval on buckets {buckets}, {len(exports)} scorer(s) side by side")
    report = judge(setup, parse_buckets(buckets), list(exports), baselines=(), cancel=cancel, progress=progress)
    for line in report_text(report).splitlines():
        log(f"  {line}")
    verdicts = []
    for figures in report.policies:
        model = Path(figures.model).resolve() if figures.model else None
        trial = next((t for path, t in exports.items() if model is not None and model.is_relative_to(Path(path).resolve())), None)
        if trial is None:
            continue
        rate = figures.success_rate
        verdicts.append(Verdict(trial.number, str(trial.run), rate,
                                f"{figures.succeeded}/{figures.searches} searches succeeded" if rate is not None else "no search",
                                base=trial.base))
    return sorted(verdicts, key=lambda v: -(v.figure if v.figure is not None else -1.0))


@dataclass
class _Split:
    name: str
    modules: list[str]
    choose: Any = None  # goal_sample.GoalSample.choose, or None: every goal of the modules
    words: str = ""
    unlisted: list[str] = field(default_factory=list)  # the sample's lines acorn's listing left out (filled by choose)

    def describe(self) -> str:
        return self.words if self.words.startswith(self.name) else f"{self.name}: {self.words}"


def _gpt_splits(summary: SweepSummary, setup, exports: dict[int, Path], modules: Sequence[str], seen_goals: int,
                seed: int, log, cancel: CancelToken | None) -> list[_Split]:
    """The splits the GPTs are judged on: the named held-out modules, the seen-subjects sample."""
    from tactics_core.acorn.generative_judge import select_modules
    from tactics_core.acorn.goal_sample import model_split, seen_subject_goals

    splits = []
    if modules:
        chosen = select_modules(setup.acornlib, modules)
        trained = sorted(set(chosen) & trained_modules(summary.data_dir))
        if trained:
            raise TacticsError(f"--judge-module: {', '.join(trained)} is in the sweep's data ({summary.data_dir}), "
                               "not held out; name modules the import left out (tactics import acornlib --exclude)")
        splits.append(_Split(HELD_OUT, chosen, words=", ".join(chosen)))
    if seen_goals:
        kinds = {model_split(folder) for folder in exports.values()}
        if len(kinds) > 1:
            raise TacticsError(f"the judged trials split their data differently ({sorted(kinds)}); the seen-subjects "
                               "sample needs one split: judge them on --judge-module alone")
        val_fraction, split = kinds.pop()
        sample = seen_subject_goals(summary.data_dir, seen_goals, seed=seed, val_fraction=val_fraction, split=split,
                                    cancel=cancel)
        splits.append(_Split(SEEN, list(sample.modules), sample.choose, sample.summary(), sample.unlisted))
    for s in splits:
        log(f"judge: {s.describe()}")
    return splits


def trained_modules(data_dir: str) -> set[str]:
    """The acornlib modules of a data folder's proof files (its import manifest); empty without one,
    so a hand-made corpus is not refused (a damaged one is: one line naming the row)."""
    from tactics_core.acorn.types import module_name
    from tactics_core.common.manifest import manifest_path, read_manifest_rows

    if not manifest_path(data_dir).is_file():
        return set()
    rows = read_manifest_rows(data_dir, ("module",), "no manifest at {path}")
    return {module_name(str(row["module"])) for row in rows.values() if row.get("module")}


def _judge_gpts(chosen: list[TrialRow], exports: dict[int, Path], setup, splits: list[_Split], jobs: int, log,
                cancel: CancelToken | None, progress: ProgressFn | None) -> list[Verdict]:
    from tactics_core.acorn.generative_judge import figures_line, prove_modules, split_figures

    verdicts = {t.number: Verdict(t.number, str(t.run), None, "", base=t.base) for t in chosen}
    for split in splits:
        log(f"judge: {split.name}: acorn's saturation prover alone (the reference)")
        saturation = prove_modules(setup, split.modules, None, jobs=jobs, cancel=cancel, progress=progress,
                                   choose=split.choose)[0]
        if split.unlisted:  # the same lines are left out for every prover: the judged goals are the same
            log(f"judge: {split.name}: {len(split.unlisted)} sampled lines left out: {', '.join(split.unlisted[:5])}"
                + (" ..." if len(split.unlisted) > 5 else ""))
        for trial in chosen:
            log(f"judge: {split.name}: acorn's generative prover with trial {trial.number} ({trial.run})")
            result = prove_modules(setup, split.modules, exports[trial.number], jobs=jobs, cancel=cancel,
                                   progress=progress, choose=split.choose)[0]
            figures = split_figures(result, saturation)
            verdicts[trial.number].splits[split.name] = figures
            log(f"  trial {trial.number}: {figures_line(figures)}")
    for v in verdicts.values():
        own = sum(f["own_lines"] for f in v.splits.values())
        beyond = sum(f["beyond_saturation"] or 0 for f in v.splits.values())
        v.figure, v.rank_key = float(own), (own, beyond)
        v.text = "; ".join(f"{name}: {figures_line(f)}" for name, f in v.splits.items())
    return sorted(verdicts.values(), key=lambda v: (-v.rank_key[0], -v.rank_key[1], v.number))
