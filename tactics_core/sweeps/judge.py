"""The best trials of a sweep judged by the real prover: a thin seam over the two acorn judges.

* a scorer: each trial's best checkpoint is exported (`training.kinds.export_checkpoint`) into
  `<sweep>/exports/RUN`, then `acorn.eval_judge.judge` runs them side by side on the goal buckets
  (`acorn eval --policy model`, one process per model and bucket); the figure is the success rate.
* a GPT: `acorn.generative_judge.prove` judges each trial's best checkpoint on acornlib modules;
  the figure is the goals proved.

When acorn is not configured (flags, environment, the workspace's tactics.toml), `judge_trials`
says so in one line and judges nothing: the sweep ranks by its validation objective. Only the
CLI (and later the TUI) import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn
from tactics_core.common.workspace import BEST_MODEL_FILE, CHECKPOINT_DIR, RUNS_SUBDIR, workspace_root
from tactics_core.sweeps.study import SweepSummary, TrialRow

DEFAULT_BUCKETS = "91-92"  # held out from the scorer preset's own validation bucket 90 in the docs' examples


@dataclass
class Verdict:
    """One judged trial: the prover's figure (higher is better) and its words."""

    number: int
    run: str
    figure: float | None
    text: str


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
) -> list[Verdict]:
    """The best `top` COMPLETE trials judged by the real prover, best verdict first; [] (and one
    line logged) when acorn is not configured or no trial completed."""
    chosen = [t for t in summary.ranking() if t.state == "COMPLETE"][: max(0, top)]
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
        return _judge_scorers(summary, chosen, root, setup, buckets, log, cancel, progress)
    from tactics_core.acorn.generative_judge import resolve_setup

    try:
        setup = resolve_setup(workspace=workspace)
    except TacticsError as exc:
        log(f"judge: acorn is not configured ({exc}); ranking by the validation {summary.objective}")
        return []
    return _judge_gpts(chosen, root, setup, modules, log, cancel, progress)


def _judge_scorers(summary: SweepSummary, chosen: list[TrialRow], runs: Path, setup, buckets: str, log,
                   cancel: CancelToken | None, progress: ProgressFn | None) -> list[Verdict]:
    from tactics_core.acorn.eval_judge import judge, parse_buckets, report_text
    from tactics_core.training.kinds import export_checkpoint

    exports: dict[str, TrialRow] = {}
    for trial in chosen:
        out = summary.folder / "exports" / str(trial.run)
        if not out.exists():
            export_checkpoint(runs / str(trial.run) / BEST_MODEL_FILE, out, cancel=cancel)
        exports[str(out)] = trial
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
                                f"{figures.succeeded}/{figures.searches} searches succeeded" if rate is not None else "no search"))
    return sorted(verdicts, key=lambda v: -(v.figure if v.figure is not None else -1.0))


def _judge_gpts(chosen: list[TrialRow], runs: Path, setup, modules: Sequence[str], log,
                cancel: CancelToken | None, progress: ProgressFn | None) -> list[Verdict]:
    from tactics_core.acorn.generative_judge import prove

    verdicts = []
    for trial in chosen:
        log(f"judge: acorn's generative prover with trial {trial.number} ({trial.run})")
        report = prove(runs / str(trial.run) / BEST_MODEL_FILE, setup, modules=modules, cancel=cancel, progress=progress)
        result = report.result("model")
        proved = result.proved if result is not None else None
        text = f"{result.proved}/{result.attempted} goals proved, {result.empty_proofs} with no line" if result else "no result"
        verdicts.append(Verdict(trial.number, str(trial.run), float(proved) if proved is not None else None, text))
    return sorted(verdicts, key=lambda v: -(v.figure if v.figure is not None else -1.0))
