"""The space file of a sweep: a base preset, the study's settings and the preset keys to search.

```toml
[base]
preset = "cpu"            # a preset name (workspace, then built-in) or a preset file
[sweep]                   # optional
objective = "proof_loss"  # an evaluation figure (default: the base preset's training.select_by)
direction = "minimize"    # default: maximize for auc and top10_hit, minimize for the others
pruner = "median"         # median | none
startup_trials = 2        # trials that are never pruned (their curves make the median)
prune_after = 0.3         # no pruning before this share of each trial's budget
seed = 0                  # the sampler's seed
[space]
"training.learning_rate" = { low = 3e-4, high = 3e-3, log = true }
"model.n_layers" = { choices = [3, 4, 6] }
"model.hidden_size" = { low = 64, high = 512, step = 64 }   # an int range when low and high are ints
```

`read_space` checks the whole file before anything runs; every problem is one line naming the
file and what to do. A trial's preset is the base preset with the trial's values applied through
the preset machinery (`presets.apply_overrides`), so it validates exactly as `--set` does.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tactics_core.common.errors import TacticsError
from tactics_core.common.workspace import PRESETS_DIR
from tactics_core.training.presets import Preset, PresetError, apply_overrides, load_preset, preset_to_dict

if TYPE_CHECKING:
    import optuna

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

PRUNERS = ("median", "none")
DIRECTIONS = ("minimize", "maximize")
# The evaluation figures a trial can be judged by, per model kind (run_events.EvalEvent's fields).
OBJECTIVES = {
    "gpt": ("proof_loss", "val_loss", "proof_bpb", "val_bpb"),
    "scorer": ("used_rank", "val_loss", "auc", "top10_hit"),
}
HIGHER_IS_BETTER = ("auc", "top10_hit")
SWEEP_KEYS = ("objective", "direction", "pruner", "startup_trials", "prune_after", "seed", "base_trial")
RANGE_KEYS = ("low", "high", "log", "step")


@dataclass(frozen=True)
class Param:
    """One searched preset key: a range (`low`..`high`, `log`, `step`) or `choices`."""

    key: str  # "section.key"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    @property
    def is_int(self) -> bool:
        return not self.choices and isinstance(self.low, int) and isinstance(self.high, int) and (
            self.step is None or isinstance(self.step, int))

    def suggest(self, trial: optuna.Trial) -> Any:
        """The trial's value of this key (Optuna records it under `key`)."""
        if self.choices:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.is_int:
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)

    def contains(self, value: Any) -> bool:
        """Whether `value` is a point of this key's range or one of its choices."""
        if self.choices:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not float(self.low) <= float(value) <= float(self.high):
            return False
        if self.step is not None:
            offset = (float(value) - float(self.low)) / float(self.step)
            return abs(offset - round(offset)) < 1e-9
        return not self.is_int or float(value).is_integer()

    def describe(self) -> str:
        if self.choices:
            return f"{self.key} in {list(self.choices)}"
        extra = (", log" if self.log else "") + (f", step {self.step}" if self.step is not None else "")
        return f"{self.key} in [{self.low}, {self.high}{extra}]"


@dataclass(frozen=True)
class SweepSettings:
    """The [sweep] table, defaults filled in from the base preset."""

    objective: str
    direction: str
    pruner: str = "median"
    startup_trials: int = 2
    prune_after: float = 0.3  # share of a trial's budget before which it is never pruned
    seed: int = 0
    base_trial: bool = True  # the first trial trains the base preset's own values: the reference to beat


@dataclass
class Space:
    """A read and checked space file."""

    path: Path
    text: str
    base_name: str  # as the file says it (`[base] preset`)
    base: Preset
    settings: SweepSettings
    params: tuple[Param, ...] = field(default_factory=tuple)

    @property
    def kind(self) -> str:
        return self.base.kind

    def preset_for(self, values: dict[str, Any], extra: list[str] | tuple[str, ...] = ()) -> Preset:
        """The base preset with these values (and `extra` `--set` items) applied and validated."""
        return apply_overrides(self.base, [override(k, v) for k, v in values.items()] + list(extra))

    def base_values(self) -> tuple[dict[str, Any], list[str]]:
        """The base preset's own value of each searched key, and the keys whose value lies outside
        the space (then the base cannot be a trial of this sweep)."""
        values, outside = {}, []
        for param in self.params:
            section, key = param.key.split(".", 1)
            value = getattr(getattr(self.base, section), key)
            values[param.key] = value
            if not param.contains(value):
                outside.append(f"{param.key}={value!r}")
        return values, outside


def override(key: str, value: Any) -> str:
    """`section.key=VALUE` with the value written as TOML (what `apply_overrides` reads)."""
    import tomli_w

    return f"{key}={tomli_w.dumps({'v': value}).split('=', 1)[1].strip()}"


def read_space(path: str | Path, presets_dir: str | Path = PRESETS_DIR, base_dir: str | Path | None = None) -> Space:
    """Read and check a space file. `base_dir`: where a relative base preset file is looked up
    (default: the space file's folder, then the current one). Raises TacticsError, one line."""
    path = builtin_space(path) or Path(path)
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TacticsError(f"space file {label} not found; give the path of a sweep's space file "
                           "(examples in presets/sweeps/)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TacticsError(f"{label}: cannot read the space file ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TacticsError(f"{label}: not valid TOML ({str(exc).splitlines()[0]}); fix the file") from None
    unknown = sorted(set(data) - {"base", "sweep", "space"})
    if unknown:
        raise TacticsError(f"{label}: unknown table [{unknown[0]}]; a space file has [base], [sweep] and [space]")
    base_table = data.get("base")
    if not isinstance(base_table, dict) or not isinstance(base_table.get("preset"), str) or not base_table["preset"]:
        raise TacticsError(f'{label}: [base] needs preset = "NAME" (a preset name or a preset file), e.g. preset = "cpu"')
    extra = sorted(set(base_table) - {"preset"})
    if extra:
        raise TacticsError(f"{label}: [base] has only the key preset, not {extra[0]!r}")
    base_name = base_table["preset"]
    base = _load_base(label, base_name, path, Path(presets_dir), Path(base_dir) if base_dir else None)
    settings = _settings(label, data.get("sweep", {}), base)
    params = _params(label, data.get("space"), base)
    return Space(path, text, base_name, base, settings, params)


def builtin_space(name: str | Path) -> Path | None:
    """A sample space file shipped with the presets (`presets/sweeps/NAME.toml`), when `name` is
    a bare name that is not a file here."""
    text = str(name)
    if Path(text).exists() or "/" in text or text.endswith(".toml"):
        return None
    from tactics_core.training.presets import builtin_presets_dir

    candidate = builtin_presets_dir() / "sweeps" / f"{text}.toml"
    return candidate if candidate.is_file() else None


def _load_base(label: str, name: str, path: Path, presets_dir: Path, base_dir: Path | None) -> Preset:
    candidate = Path(name)
    if name.endswith(".toml") and not candidate.is_absolute():
        for folder in (base_dir, path.parent):
            if folder is not None and (folder / candidate).is_file():
                candidate = folder / candidate
                break
        name = str(candidate)
    try:
        return load_preset(name, presets_dir)
    except TacticsError as exc:
        raise TacticsError(f"{label}: [base] preset: {exc}") from None


def _settings(label: str, table: Any, base: Preset) -> SweepSettings:
    if not isinstance(table, dict):
        raise TacticsError(f"{label}: [sweep] must be a table")
    for key in table:
        if key not in SWEEP_KEYS:
            raise TacticsError(f"{label}: [sweep] unknown key {key!r}{_did_you_mean(key, SWEEP_KEYS)}; "
                               f"keys are {', '.join(SWEEP_KEYS)}")
    figures = OBJECTIVES[base.kind]
    objective = table.get("objective", base.training.select_by)
    if objective not in figures:
        raise TacticsError(f"{label}: [sweep] objective {objective!r} is not a figure of a {base.kind} run; "
                           f"one of {', '.join(figures)}")
    direction = table.get("direction", "maximize" if objective in HIGHER_IS_BETTER else "minimize")
    if direction not in DIRECTIONS:
        raise TacticsError(f"{label}: [sweep] direction must be minimize or maximize, not {direction!r}")
    pruner = table.get("pruner", "median")
    if pruner not in PRUNERS:
        raise TacticsError(f"{label}: [sweep] pruner must be one of {', '.join(PRUNERS)}, not {pruner!r}")
    numbers: dict[str, Any] = {}
    for key, default in (("startup_trials", 2), ("seed", 0)):
        value = table.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise TacticsError(f"{label}: [sweep] {key} must be an integer >= 0, not {value!r}")
        numbers[key] = value
    prune_after = table.get("prune_after", 0.3)
    if isinstance(prune_after, bool) or not isinstance(prune_after, (int, float)) or not 0 <= prune_after <= 1:
        raise TacticsError(f"{label}: [sweep] prune_after must be a share of the budget from 0 to 1, not {prune_after!r}")
    numbers["prune_after"] = float(prune_after)
    base_trial = table.get("base_trial", True)
    if not isinstance(base_trial, bool):
        raise TacticsError(f"{label}: [sweep] base_trial must be true or false, not {base_trial!r}")
    return SweepSettings(objective, direction, pruner, **numbers, base_trial=base_trial)


def _params(label: str, table: Any, base: Preset) -> tuple[Param, ...]:
    if not isinstance(table, dict) or not table:
        raise TacticsError(f'{label}: [space] is missing or empty; add a key to search, e.g. '
                           '"training.learning_rate" = { low = 3e-4, high = 3e-3, log = true }')
    keys = preset_to_dict(base)
    known = [f"{s}.{k}" for s, values in keys.items() if isinstance(values, dict) for k in values]
    params = []
    for dotted, spec in table.items():
        where = f'{label}: [space] "{dotted}"'
        section, _, key = dotted.partition(".")
        if not isinstance(keys.get(section), dict) or key not in keys[section]:
            what = f"{base.kind} preset {base.name!r}"
            raise TacticsError(f"{where} is not a key of the {what}{_did_you_mean(dotted, known)}; "
                               f"see its keys with `tactics presets show {base.name}`")
        if not isinstance(spec, dict):
            raise TacticsError(f"{where} must be a table: {{ low = .., high = .. }} or {{ choices = [..] }}")
        params.append(_param(where, dotted, spec))
    space = tuple(params)
    for param in space:  # each value the search can take must be one the preset accepts
        for value in _extremes(param):
            try:
                apply_overrides(base, [override(param.key, value)])
            except PresetError as exc:
                raise TacticsError(f'{label}: [space] "{param.key}" = {value!r} is refused by the preset: '
                                   f"{exc.reason}; narrow the range") from None
    return space


def _param(where: str, key: str, spec: dict[str, Any]) -> Param:
    if "choices" in spec:
        extra = sorted(set(spec) - {"choices"})
        if extra:
            raise TacticsError(f"{where}: choices goes alone, not with {extra[0]!r}")
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise TacticsError(f"{where}: choices is empty; list at least one value, e.g. choices = [3, 4, 6]")
        if any(isinstance(c, (list, dict)) for c in choices):
            raise TacticsError(f"{where}: choices must be plain values (numbers, strings, booleans)")
        return Param(key, choices=tuple(choices))
    for name in spec:
        if name not in RANGE_KEYS:
            raise TacticsError(f"{where}: unknown {name!r}{_did_you_mean(name, RANGE_KEYS + ('choices',))}; "
                               "a range has low, high, log, step; or give choices")
    if "low" not in spec or "high" not in spec:
        raise TacticsError(f"{where}: give low and high (a range) or choices (a list)")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    for name, value in (("low", low), ("high", high), ("step", step)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise TacticsError(f"{where}: {name} must be a number, not {value!r}")
    if not isinstance(log, bool):
        raise TacticsError(f"{where}: log must be true or false")
    if low >= high:
        raise TacticsError(f"{where}: empty range (low {low} >= high {high}); make low < high")
    if log and low <= 0:
        raise TacticsError(f"{where}: a log range needs low > 0, not {low}")
    if step is not None and step <= 0:
        raise TacticsError(f"{where}: step must be > 0, not {step}")
    if step is not None and log:
        raise TacticsError(f"{where}: give log or step, not both")
    return Param(key, low=low, high=high, log=log, step=step)


def _extremes(param: Param) -> list[Any]:
    if param.choices:
        return list(param.choices)
    if param.is_int:
        step = int(param.step or 1)
        return [int(param.low), int(param.low) + (int(param.high) - int(param.low)) // step * step]
    return [float(param.low), float(param.high)]


def _did_you_mean(word: str, options: Any) -> str:
    best = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {best[0]!r}?)" if best else ""
