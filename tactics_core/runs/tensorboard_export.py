"""A run folder in TensorBoard's event-file format (`tactics runs export NAME --tensorboard DIR`).

What a run recorded in its `metrics.jsonl` (`run_events`) is written to `DIR/NAME/`, so a
user's TensorBoard (`tensorboard --logdir DIR`) shows our runs beside their others:

* every number of every `step` event as the scalar `train/KEY` and of every `eval` event as
  `eval/KEY`, at the event's step and wall time; read generically from the events (a field
  added later, or a kind's own, such as the scorer's `auc`, comes along without a change here),
  leaving out only the bookkeeping keys of `SKIPPED`;
* the settings (the preset each start event carries, as TOML), what each start said of the
  data, device and model, and how the run ended, as text;
* the settings and the best figures as TensorBoard's hparams (the HPARAMS tab compares runs).

A resumed run re-does the steps after its checkpoint: the later value of a (tag, step) wins,
and a fresh start in the same folder begins the history anew, as `RunView` folds it. The
export folder is written whole or not at all (`atomic_dir`); an existing one is refused
unless `force`, and then replaced whole (`swap_dir`).

TensorBoard's writer is torch's `torch.utils.tensorboard.SummaryWriter`, which needs the
`tensorboard` package (the `tensorboard` extra); it is imported only when exporting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tactics_core.common.atomic import atomic_dir, swap_dir
from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn
from tactics_core.runs.run_events import (
    EndEvent,
    EvalEvent,
    RunEvent,
    StartEvent,
    StepEvent,
    data_line,
    metrics_path,
    read_metrics,
    reason_words,
)
from tactics_core.runs.workspace_runs import RunInfo, find_run, flat_settings, list_runs

INSTALL_HINT = "pip install 'tactics-tui[tensorboard]'"
# Keys of step / eval events that are not figures: the step itself, the horizon, the patience setting.
SKIPPED = frozenset({"step", "total_steps", "patience", "time"})
PREFIX = {StepEvent: "train", EvalEvent: "eval"}


@dataclass
class TensorBoardExport:
    """What one export wrote: the run, the folder, and the scalars (tag -> [(step, value)])."""

    run: str
    path: Path
    scalars: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)
    replaced: bool = False

    @property
    def points(self) -> int:
        return sum(len(v) for v in self.scalars.values())

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "path": str(self.path), "tags": sorted(self.scalars), "points": self.points,
                "texts": list(self.texts), "replaced": self.replaced}


def _number(value: Any) -> float | None:
    """A figure an event holds (bools and text are not figures)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def event_scalars(event: RunEvent) -> dict[str, float]:
    """The figures of one step or eval event as `train/KEY` / `eval/KEY` -> value (None left out)."""
    prefix = PREFIX.get(type(event))
    if prefix is None:
        return {}
    out: dict[str, float] = {}
    for key, value in event.to_record().items():
        if key in SKIPPED or key == "event":
            continue
        number = _number(value)
        if number is not None:
            out[f"{prefix}/{key}"] = number
    return out


@dataclass
class _Point:
    value: float
    walltime: float | None


def run_scalars(events: list[RunEvent]) -> dict[str, dict[int, _Point]]:
    """tag -> {step: value} over a run's events: a later value of a step wins (a resume re-does
    the steps after its checkpoint); a start that is not a resume begins the history anew."""
    scalars: dict[str, dict[int, _Point]] = {}
    for event in events:
        if isinstance(event, StartEvent) and not event.resumed_from:
            scalars.clear()
            continue
        for tag, value in event_scalars(event).items():
            scalars.setdefault(tag, {})[int(getattr(event, "step", 0) or 0)] = _Point(value, _number(event.time))
    return scalars


def _settings_text(config: dict[str, Any]) -> str:
    import tomli_w

    try:
        text = tomli_w.dumps(_toml_safe(config))
    except (TypeError, ValueError):
        text = "\n".join(f"{k} = {v!r}" for k, v in config.items())
    return "```toml\n" + text.rstrip() + "\n```"


def _toml_safe(value: Any) -> Any:
    """The preset as TOML can write it (None is not a TOML value: left out)."""
    if isinstance(value, dict):
        return {str(k): _toml_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_toml_safe(v) for v in value if v is not None]
    return value


def _start_text(start: StartEvent) -> str:
    kind = start.kind or "gpt"
    lines = [
        f"**{'resumed from ' + str(start.resumed_from) if start.resumed_from else 'started'}** at step {start.step}"
        + (f" of {start.total_steps}" if start.total_steps else ""),
        f"- kind: {kind}, preset: {start.preset or '-'}, parameters: {start.params:,}",
        f"- device: {start.device or '-'}" + (f", precision {start.precision}" if start.precision else "")
        + (f", {start.threads} threads" if start.threads else "") + (f", {start.world_size} processes" if start.world_size > 1 else ""),
    ]
    if start.data:
        lines.append(f"- data: {data_line(start)}")
    if start.features:
        lines.append(f"- features: {', '.join(start.features)}")
    if start.note:
        lines.append(f"- note: {start.note}")
    return "\n".join(lines)


def _end_text(end: EndEvent) -> str:
    text = f"**{reason_words(end.reason or '?')}** at step {end.step}"
    if end.message:
        text += f": {end.message}"
    if end.best_score is not None:
        text += f"\n- best {end.select_by or 'score'}: {end.best_score:.6g}"
    if end.checkpoint:
        text += f"\n- last checkpoint: {end.checkpoint}"
    return text


def _hparam_value(value: Any) -> bool | int | float | str | None:
    if value is None:
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _summary_writer():
    """torch's SummaryWriter, or one line saying how to install what it needs."""
    try:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams
    except ImportError as exc:
        raise TacticsError(f"exporting to TensorBoard needs the tensorboard package ({exc}): {INSTALL_HINT}") from None
    return SummaryWriter, hparams


def check_target(out_dir: str | os.PathLike, name: str, force: bool = False) -> Path:
    """The export folder `out_dir/name`; one that exists (and is not empty) is refused unless `force`."""
    target = Path(out_dir) / name
    if target.exists() and not target.is_dir():
        raise TacticsError(f"{target} exists and is not a folder; remove it or export to another --tensorboard folder")
    if not force and target.is_dir() and any(target.iterdir()):
        raise TacticsError(f"{target} exists already; pass --force to replace it, or export to another --tensorboard folder")
    return target


def _readable(folder: Path) -> None:
    """The temp folder as a plain `mkdir` would make it (mkdtemp's is private to its owner)."""
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(folder, 0o777 & ~umask)
    except OSError:
        pass


def export_run(info: RunInfo, out_dir: str | os.PathLike, force: bool = False) -> TensorBoardExport:
    """Write one run (a `workspace_runs.RunInfo`) as TensorBoard events into `out_dir/<run name>/`."""
    target = check_target(out_dir, info.name, force)
    events = read_metrics(metrics_path(info.path))
    if not events:
        raise TacticsError(f"run {info.name} has no events in {metrics_path(info.path)} to export")
    SummaryWriter, hparams = _summary_writer()
    scalars = run_scalars(events)
    starts = [e for e in events if isinstance(e, StartEvent)]
    ends = [e for e in events if isinstance(e, EndEvent)]
    first_time = _number(starts[0].time) if starts else None
    result = TensorBoardExport(info.name, target)
    result.scalars = {tag: sorted((s, p.value) for s, p in points.items()) for tag, points in scalars.items()}

    def write(folder: Path) -> None:
        _readable(folder)
        writer = SummaryWriter(log_dir=str(folder), max_queue=1000, flush_secs=3600)
        try:
            for tag in sorted(scalars):
                for step, point in sorted(scalars[tag].items()):
                    writer.add_scalar(tag, point.value, global_step=step, walltime=point.walltime)
            config = (starts[-1].config if starts else None) or info.config
            if config:
                writer.add_text("settings/preset", _settings_text(config), global_step=0, walltime=first_time)
                result.texts.append("settings/preset")
            for start in starts:
                writer.add_text("run/start", _start_text(start), global_step=int(start.step or 0), walltime=_number(start.time))
            if starts:
                result.texts.append("run/start")
            for end in ends:
                writer.add_text("run/end", _end_text(end), global_step=int(end.step or 0), walltime=_number(end.time))
            if ends:
                result.texts.append("run/end")
            # The hparams tab: the settings, flattened, and the eval figures as its metrics.
            params = {k: v for k, v in ((k, _hparam_value(v)) for k, v in flat_settings(info).items()) if v is not None}
            params.setdefault("kind", info.kind)
            metrics = {tag: points[max(points)].value for tag, points in scalars.items() if tag.startswith("eval/") and points}
            if params and metrics:
                for summary in hparams(params, metrics):
                    writer.file_writer.add_summary(summary, walltime=first_time)
                result.texts.append("hparams")
            writer.flush()
        finally:
            writer.close()

    if target.exists():
        with swap_dir(target, lambda: target.exists() and any(target.iterdir())) as swap:
            write(swap.path)
        result.replaced = swap.replaced
    else:
        with atomic_dir(target) as folder:
            write(folder)
    return result


def export_runs(
    checkpoint_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    names: list[str] | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> list[TensorBoardExport]:
    """Export the runs called `names` (None: every run of the workspace) into `out_dir/NAME/` each.

    Every run and every target folder is checked before anything is written, so a refusal
    (an unknown run, a folder that exists without `force`) leaves `out_dir` as it was.
    """
    if names is None:
        infos = [i for i in list_runs(checkpoint_dir) if metrics_path(i.path).is_file()]
        if not infos:
            raise TacticsError(f"no run with events in {checkpoint_dir} to export; start one with `tactics train`")
    else:
        infos = [find_run(checkpoint_dir, name) for name in names]
    for info in infos:
        check_target(out_dir, info.name, force)
    _summary_writer()  # one line before anything is written when tensorboard is missing
    out: list[TensorBoardExport] = []
    for i, info in enumerate(infos):
        if cancel is not None:
            cancel.check()
        if progress is not None:
            progress(i, len(infos), f"exporting {info.name}")
        out.append(export_run(info, out_dir, force))
    if progress is not None:
        progress(len(infos), len(infos), "exported")
    return out


__all__ = ["INSTALL_HINT", "TensorBoardExport", "check_target", "event_scalars", "export_run", "export_runs", "run_scalars"]
