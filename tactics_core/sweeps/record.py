"""A sweep's record read back: its folder, Optuna's SQLite storage, its trials as rows.

The sweep process writes the storage (`study.py`); `tactics sweeps`, the TUI's Sweeps screen and
the judge read it here, through short transactions that hold no connection afterwards, so they
can read while a sweep writes. `TrialRow` and `SweepSummary` are what they all show.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tactics_core.common.errors import TacticsError
from tactics_core.common.workspace import SWEEP_FILE, SWEEP_JUDGED_FILE, SWEEP_STUDY_FILE, SWEEP_TRIAL_SUFFIX, SWEEPS_DIR
from tactics_core.runs.workspace_runs import check_name

if TYPE_CHECKING:
    import optuna

STATES = ("COMPLETE", "PRUNED", "RUNNING", "WAITING", "FAIL")


def sweep_folder(sweeps_dir: str | Path, name: str) -> Path:
    """`<sweeps_dir>/NAME`, the name checked (a trial's run is `NAME-tNNN`, so run-name rules hold)."""
    check_name(name)
    return Path(sweeps_dir) / name


def trial_run_name(sweep: str, number: int) -> str:
    return sweep + SWEEP_TRIAL_SUFFIX.format(number=number)


def storage_url(folder: Path) -> str:
    return f"sqlite:///{(Path(folder) / SWEEP_STUDY_FILE).resolve()}"


STORAGE_ATTEMPTS = 5  # opening the storage, when a reader and the sweep create it at the same moment


def open_storage(folder: Path) -> optuna.storages.RDBStorage:
    """The study's SQLite storage. A reader (the TUI) and the sweep share the file: each waits for
    the other's short transactions, and when both open a new file at once, both stamp its schema
    version and one of them is refused (a UNIQUE constraint) — that one opens it again, and then
    finds the version written."""
    import optuna
    import sqlalchemy.exc

    for attempt in range(STORAGE_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(storage_url(folder), engine_kwargs={"connect_args": {"timeout": 30}})
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            if attempt == STORAGE_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass
class TrialRow:
    """One trial as `tactics sweeps show` and the TUI list it."""

    number: int
    state: str  # COMPLETE | PRUNED | RUNNING | WAITING | FAIL
    objective: float | None  # the trial's value (COMPLETE), else its last reported figure
    params: dict[str, Any]
    run: str | None  # its run folder's name
    seconds: float | None  # training wall clock
    step: int | None = None  # the last step it reported at
    max_steps: int | None = None  # the steps fitted to the budget
    note: str = ""  # why it failed, or whose parameters it retries
    base: bool = False  # trains the base preset's own values (`[sweep] base_trial`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SweepSummary:
    name: str
    folder: Path
    kind: str
    objective: str
    direction: str
    budget_minutes: float | None
    trials_target: int | None
    trials: list[TrialRow] = field(default_factory=list)
    base: str = ""
    data_dir: str = ""  # the folder every trial trained on
    judged: dict[str, Any] | None = None  # the real prover's last verdicts (judged.json), best first

    @property
    def best(self) -> TrialRow | None:
        done = [t for t in self.trials if t.state == "COMPLETE" and t.objective is not None]
        if not done:
            return None
        pick = max if self.direction == "maximize" else min
        return pick(done, key=lambda t: t.objective)

    def counts(self) -> dict[str, int]:
        return {s: sum(t.state == s for t in self.trials) for s in STATES}

    def ranking(self) -> list[TrialRow]:
        """COMPLETE trials best first, then PRUNED by their last figure, then the rest by number."""
        sign = -1.0 if self.direction == "maximize" else 1.0

        def key(t: TrialRow) -> tuple:
            group = {"COMPLETE": 0, "PRUNED": 1}.get(t.state, 2)
            value = sign * t.objective if t.objective is not None and group < 2 else math.inf
            return (group, value, t.number)

        return sorted(self.trials, key=key)

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "name": self.name, "folder": str(self.folder), "kind": self.kind, "objective": self.objective,
            "direction": self.direction, "budget_minutes": self.budget_minutes, "trials_target": self.trials_target,
            "base": self.base, "counts": self.counts(), "best": best.to_dict() if best else None,
            "trials": [t.to_dict() for t in self.ranking()], "judged": self.judged,
        }


def read_sweep(folder: str | Path) -> SweepSummary:
    """The sweep in `folder` as it stands (also while it runs)."""
    folder = Path(folder)
    if not (folder / SWEEP_STUDY_FILE).is_file():
        raise TacticsError(f"no sweep in {folder} ({SWEEP_STUDY_FILE} missing); list sweeps with `tactics sweeps`")
    info = read_info(folder)
    quiet_optuna()
    storage = open_storage(folder)
    try:
        study_id = storage.get_study_id_from_name(info.get("name", folder.name))
        frozen = storage.get_all_trials(study_id, deepcopy=False)
    except KeyError:
        raise TacticsError(f"{folder / SWEEP_STUDY_FILE} holds no study named {info.get('name', folder.name)!r}") from None
    finally:
        storage.engine.dispose()  # no connection (and no lock) outlives the read
    return SweepSummary(
        name=info.get("name", folder.name), folder=folder, kind=info.get("kind", "gpt"),
        objective=info.get("objective", ""), direction=info.get("direction", "minimize"),
        budget_minutes=info.get("budget_minutes"), trials_target=info.get("trials"),
        trials=[_row(t) for t in frozen], base=info.get("base", ""), data_dir=info.get("data_dir", ""),
        judged=read_judged(folder),
    )


def read_judged(folder: Path) -> dict[str, Any] | None:
    """The real prover's verdicts of the sweep's last `--judge-top` (None before one, or when the
    file cannot be read: the judge writes it atomically, so that is a damaged file, not a race)."""
    try:
        data = json.loads((folder / SWEEP_JUDGED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("verdicts"), list) else None


def list_sweeps(workspace: str | Path = ".", sweeps_dir: str | Path | None = None) -> list[SweepSummary]:
    """Every sweep of a workspace (`<workspace>/sweeps/*/study.db`, or `sweeps_dir/*/study.db`), by
    name; one that cannot be read is left out."""
    root = Path(sweeps_dir) if sweeps_dir is not None else Path(workspace) / SWEEPS_DIR
    out = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if (folder / SWEEP_STUDY_FILE).is_file():
            try:
                out.append(read_sweep(folder))
            except TacticsError:
                continue
    return out


def read_info(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / SWEEP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _row(t: optuna.trial.FrozenTrial) -> TrialRow:
    attrs = t.user_attrs
    value = t.value
    step = t.last_step
    if value is None and step is not None:
        value = t.intermediate_values.get(step)
    note = attrs.get("error", "")
    if attrs.get("base"):
        note = "the base preset" + ("; " + note if note else "")
    if "retry_of" in attrs:
        note = (note + "; " if note else "") + f"retries trial {attrs['retry_of']}"
    if attrs.get("interrupted"):
        note = (note + "; " if note else "") + "interrupted (parameters enqueued again)"
    return TrialRow(
        number=t.number, state=t.state.name, objective=value, params=dict(t.params), run=attrs.get("run"),
        seconds=attrs.get("seconds"), step=attrs.get("step", step), max_steps=attrs.get("max_steps"), note=note,
        base=bool(attrs.get("base")),
    )
