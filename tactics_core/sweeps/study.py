"""A sweep: Optuna's study over a space file, each trial a normal training run at an equal budget.

* **The folder**: `<workspace>/sweeps/NAME/` holds `study.db` (Optuna's SQLite storage, the one
  record of the trials), `space.toml` (the space file as given), `sweep.json` (how the sweep was
  started: budget, trial target, data folder, base preset) and, at the end, `best.toml` (the best
  trial's preset, written atomically).
* **A trial** is a run in its own folder `checkpoints/runs/NAME-tNNN` (the Runs screen and
  `tactics runs diff` show it like any run), trained by `training.loop.train` in this process.
* **Equal budget**: before a trial trains, `training.budget.fit_steps` times real steps (and one
  evaluation) of the trial's preset on its data and gives it the `max_steps` that fit the budget,
  so its cosine schedule completes; a timer cancels a run that overruns (`OVERRUN`) as a safety net.
* **Pruning**: the trial reports the objective of each evaluation event (`trial.report(value,
  step)`); when `trial.should_prune()`, its run is cancelled and the trial recorded as PRUNED.
* **Resume**: a trial left RUNNING in the storage (the process was killed) is marked FAIL and its
  parameters are enqueued again; finished trials are kept; the sweep runs until `trials` trials
  are COMPLETE or PRUNED. A cancel (Ctrl-C, or `sweeps/NAME/stop.request`: `launch.request_stop`)
  ends the running trial's run gracefully, marks the trial FAIL and enqueues its parameters, so
  `--resume` trains them again.
* **One process per sweep**: `run_sweep` holds `sweeps/NAME/sweep.lock` while it runs
  (`launch.hold_sweep`), so a second process of the same sweep is refused and a watcher (the
  TUI) knows it runs.

Reading a sweep back (`read_sweep`, `list_sweeps`, the rows they give) is `record.py`.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tactics_core.common.atomic import atomic_write_text
from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken
from tactics_core.common.workspace import (
    CHECKPOINT_DIR, PRESETS_DIR, SWEEP_BEST_FILE, SWEEP_FILE, SWEEP_SPACE_FILE, SWEEP_STUDY_FILE, SWEEPS_DIR,
)
from tactics_core.sweeps.launch import hold_sweep
from tactics_core.sweeps.record import (
    SweepSummary, open_storage, quiet_optuna, read_info, read_sweep, sweep_folder, trial_run_name,
)
from tactics_core.sweeps.space import Space, read_space

if TYPE_CHECKING:
    import optuna

    from tactics_core.runs.run_events import RunEvent
    from tactics_core.training.presets import Preset

OVERRUN = 1.25  # the safety timer cancels a trial's run at OVERRUN x budget + OVERRUN_GRACE_S
OVERRUN_GRACE_S = 10.0
EVALUATIONS = (20, 10, 5, 4)  # a trial evaluates at this many equal shares of its budget: the most whose
# evaluations take at most EVALUATION_SHARE of it (each count divides 20, so every share is a multiple of 5%)
EVALUATION_SHARE = 0.1
SHARES = 1000  # a report's step is the trial's share of its budget in thousandths (50, 100, ..., 1000)
MAX_FAILURES_IN_A_ROW = 3  # then the sweep stops with the last failure's line

Log = Callable[[str], None]


# ----------------------------------------------------------------------------
# Running a sweep


@dataclass(frozen=True)
class SweepOptions:
    """What `tactics sweep` asks for."""

    space: Path | None  # the space file (None: a resumed sweep's own copy)
    name: str | None = None  # default: the space file's stem
    budget_minutes: float | None = None  # default: 10 (a resumed sweep keeps its own)
    trials: int | None = None  # COMPLETE + PRUNED trials to reach; default 10 (a resume: the sweep's own)
    resume: bool = False
    data_dir: Path | None = None  # default: data/proofs, a scorer's traces/ (a resume: the sweep's own)
    device: str | None = None  # default: the base preset's
    checkpoint_dir: Path = CHECKPOINT_DIR
    sweeps_dir: Path = SWEEPS_DIR
    presets_dir: Path = PRESETS_DIR


@dataclass
class SweepResult:
    summary: SweepSummary
    best_preset: Path | None
    cancelled: bool
    stopped_by_failures: str = ""


class _TrialCancel(CancelToken):
    """A trial's cancel: its own (pruned, overrun) or the sweep's (Ctrl-C)."""

    def __init__(self, parent: CancelToken | None) -> None:
        super().__init__()
        self.parent = parent

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or (self.parent is not None and self.parent.cancelled)

    def check(self) -> None:
        from tactics_core.common.errors import Cancelled

        if self.cancelled:
            raise Cancelled()


def default_pruner(space: Space) -> optuna.pruners.BasePruner:
    import optuna

    s = space.settings
    if s.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=s.startup_trials, n_warmup_steps=int(s.prune_after * SHARES))


def sampler(space: Space, trials_so_far: int) -> optuna.samplers.BaseSampler:
    """Optuna's TPE sampler, seeded by the space's seed plus the trials the study already holds: a
    resumed sweep's sampler starts afresh in a new process, and with the same seed its random
    startup draws would repeat the values of the trials before the kill."""
    import optuna

    return optuna.samplers.TPESampler(seed=space.settings.seed + trials_so_far)


def run_sweep(
    options: SweepOptions,
    log: Log = print,
    cancel: CancelToken | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> SweepResult:
    """Run (or resume) a sweep to its trial target; returns its summary and the best preset's file.
    `pruner` replaces the space file's (tests force pruning with one)."""
    import optuna

    quiet_optuna()
    space, folder, info = _open(options)
    # One process per sweep (its lock), and its stop file cancels like Ctrl-C (sweeps/launch.py).
    with hold_sweep(folder, cancel, log) as cancel:
        budget_s = float(info["budget_minutes"]) * 60.0
        target = int(info["trials"])
        data_dir = Path(info["data_dir"])
        device = info.get("device") or None
        checkpoint_dir = Path(info.get("checkpoint_dir") or options.checkpoint_dir)
        storage = open_storage(folder)
        study = optuna.create_study(
            study_name=info["name"], storage=storage, direction=space.settings.direction, load_if_exists=True,
            pruner=pruner or default_pruner(space),
        )
        study.sampler = sampler(space, len(study.get_trials(deepcopy=False)))
        try:
            cancelled, failures = _trials(study, space, info, target, budget_s, data_dir, checkpoint_dir, device, log,
                                          cancel)
        finally:
            storage.engine.dispose()
        summary = read_sweep(folder)
        best_path = write_best_preset(space, summary, folder) if summary.best is not None else None
    stopped = failures[-1] if len(failures) >= MAX_FAILURES_IN_A_ROW else ""
    return SweepResult(summary, best_path, cancelled, stopped)


def _enqueue_base(study: optuna.Study, space: Space, log: Log) -> None:
    """A new sweep's first trial: the base preset's own values (`[sweep] base_trial`, default on), so
    the ranking says whether the search beat the recipe it started from, at the same budget."""
    if not space.settings.base_trial or study.get_trials(deepcopy=False):
        return
    values, outside = space.base_values()
    if outside:
        log(f"the base preset is not a trial: its {', '.join(outside)} {'lies' if len(outside) == 1 else 'lie'} "
            "outside the space")
        return
    study.enqueue_trial(values, user_attrs={"base": True})
    log(f"trial 0 trains the base preset {space.base.name!r} as it is (the reference to beat)")


def _trials(study: optuna.Study, space: Space, info: dict[str, Any], target: int, budget_s: float, data_dir: Path,
            checkpoint_dir: Path, device: str | None, log: Log, cancel: CancelToken | None) -> tuple[bool, list[str]]:
    """Trials until `target` are COMPLETE or PRUNED, a cancel, or failures in a row; returns
    (cancelled, the failures in a row at the end)."""
    _enqueue_base(study, space, log)
    _requeue_running(study, log)
    failures: list[str] = []
    cancelled = False
    while not cancelled:
        done = [t for t in study.get_trials(deepcopy=False) if t.state.name in ("COMPLETE", "PRUNED")]
        if len(done) >= target:
            break
        if cancel is not None and cancel.cancelled:
            cancelled = True
            break
        trial = study.ask()
        outcome = _run_trial(study, trial, space, info["name"], len(done) + 1, target, budget_s, data_dir,
                             checkpoint_dir, device, log, cancel)
        if outcome == "cancelled":
            cancelled = True
        elif outcome.startswith("failed:"):
            failures.append(outcome[len("failed:"):])
            if len(failures) >= MAX_FAILURES_IN_A_ROW:
                break
        else:
            failures.clear()
    return cancelled, failures


def _open(options: SweepOptions) -> tuple[Space, Path, dict[str, Any]]:
    """The sweep's space, folder and settings: made for a new sweep, read back for a resume."""
    name = options.name or (options.space.stem if options.space is not None else None)
    if not name:
        raise TacticsError("name the sweep to resume: --name NAME (see `tactics sweeps`)")
    folder = sweep_folder(options.sweeps_dir, name)
    exists = (folder / SWEEP_STUDY_FILE).is_file()
    if options.resume:
        if not exists:
            raise TacticsError(f"no sweep {name!r} to resume ({folder / SWEEP_STUDY_FILE} missing); "
                               "start it without --resume")
        info = read_info(folder)
        if not info:
            raise TacticsError(f"{folder / SWEEP_FILE} is missing or damaged; start a new sweep with another --name")
        space = read_space(folder / SWEEP_SPACE_FILE, options.presets_dir, base_dir=info.get("space_dir"))
        if options.space is not None:
            given = read_space(options.space, options.presets_dir).text
            if given != space.text:
                raise TacticsError(f"{options.space} differs from the space of sweep {name!r} "
                                   f"({folder / SWEEP_SPACE_FILE}); a resumed sweep keeps its space: "
                                   "drop SPACE or start a new sweep with another --name")
        if options.budget_minutes is not None and float(options.budget_minutes) != float(info["budget_minutes"]):
            raise TacticsError(f"sweep {name!r} trains each trial for {info['budget_minutes']:g} minutes; "
                               "a resumed sweep keeps its budget (every trial gets the same): drop --budget-minutes")
        if options.trials is not None:
            info["trials"] = int(options.trials)
        atomic_write_text(folder / SWEEP_FILE, json.dumps(info, indent=1) + "\n")
        return space, folder, info
    if options.space is None:
        raise TacticsError("give a space file: tactics sweep SPACE.toml (examples in presets/sweeps/)")
    if exists:
        raise TacticsError(f"sweep {name!r} already exists ({folder}); continue it with --resume, "
                           "or start a new one with another --name")
    space = read_space(options.space, options.presets_dir)
    budget = 10.0 if options.budget_minutes is None else float(options.budget_minutes)
    if not (budget > 0 and math.isfinite(budget)):
        raise TacticsError(f"--budget-minutes must be > 0, got {options.budget_minutes}")
    trials = 10 if options.trials is None else int(options.trials)
    if trials < 1:
        raise TacticsError(f"--trials must be >= 1, got {trials}")
    from tactics_core.runs.launch import default_data_dir

    data_dir = options.data_dir or default_data_dir(space.base)
    if not Path(data_dir).exists():
        raise TacticsError(f"data folder {data_dir} not found; pass --data-dir with the "
                           f"{'acorn eval traces' if space.kind == 'scorer' else 'proof files'} to train on")
    from tactics_core.runs.workspace_runs import check_new_run

    # Before anything is written: the first trial's run name is free, no run is live, a GPT has its tokenizer.
    check_new_run(options.checkpoint_dir, space.base.name, trial_run_name(name, 0), needs_tokenizer=space.kind == "gpt")
    info = {
        "name": name, "kind": space.kind, "base": space.base_name, "space_dir": str(options.space.parent.resolve()),
        "objective": space.settings.objective, "direction": space.settings.direction, "budget_minutes": budget,
        "trials": trials, "data_dir": str(Path(data_dir).resolve()), "device": options.device,
        "checkpoint_dir": str(Path(options.checkpoint_dir).resolve()), "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "params": [p.describe() for p in space.params],
    }
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / SWEEP_SPACE_FILE, space.text)
    atomic_write_text(folder / SWEEP_FILE, json.dumps(info, indent=1) + "\n")
    return space, folder, info


def _retry_attrs(trial: optuna.trial.FrozenTrial | optuna.Trial) -> dict[str, Any]:
    """What a trial's retry carries: which trial it retries, and whether it is the base preset."""
    return {"retry_of": trial.number, **({"base": True} if trial.user_attrs.get("base") else {})}


def _requeue_running(study: optuna.Study, log: Log) -> None:
    """Trials left RUNNING by a killed sweep: FAIL, and their parameters enqueued again."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(dict(t.params), user_attrs=_retry_attrs(t), skip_if_exists=False)
        log(f"trial {t.number} was left running (the sweep was killed): marked failed, its parameters queued again")


def _run_trial(
    study: optuna.Study, trial: optuna.Trial, space: Space, sweep: str, ordinal: int, target: int, budget_s: float,
    data_dir: Path, checkpoint_dir: Path, device: str | None, log: Log, cancel: CancelToken | None,
) -> str:
    """Train one trial; returns "complete", "pruned", "cancelled" or "failed:<line>"."""
    from optuna.trial import TrialState

    from tactics_core.runs import workspace_runs
    from tactics_core.training.budget import fit_steps
    from tactics_core.training.presets import PresetError

    values = {p.key: p.suggest(trial) for p in space.params}
    run = trial_run_name(sweep, trial.number)
    trial.set_user_attr("run", run)
    shown = ", ".join(f"{k}={_short(v)}" for k, v in values.items())
    log(f"trial {trial.number} ({ordinal}/{target}) {run}: {shown}")

    def fail(message: str) -> str:
        trial.set_user_attr("error", message[:300])
        study.tell(trial, state=TrialState.FAIL)
        log(f"trial {trial.number} failed: {message}")
        return "failed:" + message

    try:
        preset = space.preset_for(values)
    except PresetError as exc:
        return fail(f"the preset refuses these values: {exc.reason}")
    needs_tokenizer = preset.kind == "gpt"
    try:
        folder = workspace_runs.new_run(checkpoint_dir, preset.name, run, needs_tokenizer=needs_tokenizer)
        fit = fit_steps(preset, data_dir, folder, budget_s, overhead_s=None, device=_device(preset, device),
                        measure_eval=True)
    except TacticsError as exc:
        return fail(str(exc))
    except Exception as exc:  # e.g. out of memory for a wide trial on a GPU: that trial fails, not the sweep
        return fail(f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
    evaluations = evaluation_count(budget_s, fit.eval_s)
    steps, interval = aligned_schedule(fit.steps_with_evaluations(evaluations), evaluations)
    trial.set_user_attr("max_steps", steps)
    trial.set_user_attr("step_ms", round(fit.step_s * 1000, 3))
    log(f"  budget {budget_s / 60:g} min: {fit.step_s * 1000:.0f} ms per step, {fit.eval_s:.1f} s per evaluation "
        f"(measured) -> max_steps {steps}, {steps // interval} evaluations (every {interval} steps)")
    preset = space.preset_for(values, [f"training.max_steps={steps}", f"training.eval_interval={interval}"])
    outcome = _train_trial(study, trial, space, preset, data_dir, folder, device, budget_s, log, cancel)
    return outcome


def evaluation_count(budget_s: float, eval_s: float) -> int:
    """How many evaluations a trial makes: the most of EVALUATIONS that take at most
    EVALUATION_SHARE of its budget (the fewest when even those take more)."""
    return next((n for n in EVALUATIONS if n * eval_s <= EVALUATION_SHARE * budget_s), EVALUATIONS[-1])


def aligned_schedule(steps: int, evaluations: int) -> tuple[int, int]:
    """(max_steps, eval_interval) that put a trial's evaluations at `evaluations` equal shares of
    its schedule: max_steps a multiple of `evaluations` (the fit's steps rounded down), fewer
    evaluations when there are fewer steps, one at the end below the fewest. At an equal budget a
    wide model's step costs more, so trials are compared at equal shares of the budget, never at
    equal steps (where a narrow model is still warming up)."""
    fitting = [n for n in EVALUATIONS if n <= min(evaluations, steps)]
    if not fitting:
        return max(1, steps), max(1, steps)
    interval = steps // fitting[0]
    return interval * fitting[0], interval


def _train_trial(
    study: optuna.Study, trial: optuna.Trial, space: Space, preset: Preset, data_dir: Path, folder: Path,
    device: str | None, budget_s: float, log: Log, cancel: CancelToken | None,
) -> str:
    from optuna.trial import TrialState

    from tactics_core.runs.run_events import EvalEvent
    from tactics_core.training.loop import train

    objective = space.settings.objective
    maximize = space.settings.direction == "maximize"
    token = _TrialCancel(cancel)
    state = {"pruned": False, "best": None, "step": None}
    overran = threading.Event()

    def on_event(ev: RunEvent) -> None:
        if not isinstance(ev, EvalEvent):
            return
        value = getattr(ev, objective, None)
        if value is None or not math.isfinite(value):
            return
        best = state["best"]
        if best is None or (value > best if maximize else value < best):
            state["best"] = value
        state["step"] = ev.step
        trial.set_user_attr("step", int(ev.step))
        trial.report(float(value), round(SHARES * ev.step / max(1, preset.training.max_steps)))
        prune = trial.should_prune()
        log(f"  trial {trial.number} step {ev.step}: {objective} {value:.4f} (best {state['best']:.4f})"
            + ("; pruned" if prune else ""))
        if prune:
            state["pruned"] = True
            token.cancel()

    def overrun() -> None:
        overran.set()
        token.cancel()

    timer = threading.Timer(budget_s * OVERRUN + OVERRUN_GRACE_S, overrun)
    timer.daemon = True
    start = time.monotonic()
    timer.start()
    try:
        result = train(preset, data_dir, folder, device=device, cancel=token, on_event=on_event,
                       handle_signals=False)
    except TacticsError as exc:
        trial.set_user_attr("seconds", round(time.monotonic() - start, 1))
        if cancel is not None and cancel.cancelled:  # stopped before its run trained (reading its data): tried again
            return _interrupted(study, trial, log, "before it trained")
        return _failed(study, trial, log, str(exc))
    finally:
        timer.cancel()
    seconds = round(time.monotonic() - start, 1)
    trial.set_user_attr("seconds", seconds)
    if overran.is_set():
        trial.set_user_attr("overran", True)
    if state["pruned"]:
        study.tell(trial, state=TrialState.PRUNED)
        log(f"trial {trial.number} pruned at step {state['step']} ({seconds:.0f} s)")
        return "pruned"
    if cancel is not None and cancel.cancelled:
        return _interrupted(study, trial, log, f"at step {result.step}")
    if result.reason == "failed":
        return _failed(study, trial, log, result.message)
    if state["best"] is None:
        return _failed(study, trial, log, f"no evaluation of {objective} within the budget; lower training.eval_interval")
    study.tell(trial, state["best"])
    late = " (cancelled by the overrun timer)" if overran.is_set() else ""
    log(f"trial {trial.number} done: {objective} {state['best']:.4f}, {result.reason} at step {result.step} "
        f"of {result.total_steps}, {seconds:.0f} s{late}")
    return "complete"


def _interrupted(study: optuna.Study, trial: optuna.Trial, log: Log, when: str) -> str:
    """A trial stopped by the sweep's own stop: FAIL, and its parameters queued again for `--resume`."""
    from optuna.trial import TrialState

    trial.set_user_attr("interrupted", True)
    study.tell(trial, state=TrialState.FAIL)
    study.enqueue_trial(dict(trial.params), user_attrs=_retry_attrs(trial), skip_if_exists=False)
    log(f"trial {trial.number} interrupted {when}; `--resume` trains its parameters again")
    return "cancelled"


def _failed(study: optuna.Study, trial: optuna.Trial, log: Log, message: str) -> str:
    """A trial that failed on its own: FAIL with its reason, kept in the ranking."""
    from optuna.trial import TrialState

    trial.set_user_attr("error", message[:300])
    study.tell(trial, state=TrialState.FAIL)
    log(f"trial {trial.number} failed: {message}")
    return f"failed:{message}"


def _device(preset: Preset, device: str | None) -> str:
    from tactics_core.common.device import resolve_device

    return resolve_device(device or preset.training.device)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------
# The best trial's preset


def best_preset(space: Space, summary: SweepSummary) -> Preset | None:
    """The best trial's preset: the base preset with its values and the steps it trained for."""
    best = summary.best
    if best is None:
        return None
    extra = [f"training.max_steps={best.max_steps}"] if best.max_steps else []
    preset = space.preset_for(best.params, extra)
    preset.description = (f"sweep {summary.name}, trial {best.number} ({best.run}): {summary.objective} "
                          f"{best.objective:.4f} in {summary.budget_minutes:g} minutes; base {space.base.name}")
    preset.header = ""
    return preset


def write_best_preset(space: Space, summary: SweepSummary, folder: Path) -> Path | None:
    """`<sweep>/best.toml`, written atomically; None when no trial completed."""
    from tactics_core.training.presets import save_preset

    preset = best_preset(space, summary)
    if preset is None:
        return None
    return save_preset(preset, Path(folder) / SWEEP_BEST_FILE)


def save_best_preset(folder: Path, name: str, presets_dir: Path = PRESETS_DIR, force: bool = False) -> Path:
    """Copy `<sweep>/best.toml` into the workspace's presets as NAME (never over one without `force`)."""
    from tactics_core.training.presets import copy_builtin

    source = Path(folder) / SWEEP_BEST_FILE
    if not source.is_file():
        raise TacticsError(f"{source} not found: no trial of the sweep completed yet")
    return copy_builtin(str(source), presets_dir, force=force, dest=name)
