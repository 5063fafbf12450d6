"""The run-event schema: what a training run writes to `metrics.jsonl`, and how it is read.

The trainer writes, and every watcher (the CLI's console lines, the TUI, `tactics runs`,
the benches, the tests) reads, through this module only, so the events have one
definition:

* one dataclass per event: `StartEvent`, `StepEvent`, `EvalEvent`, `SampleEvent`,
  `CheckpointEvent`, `EndEvent` (docs/training.md says what each field means);
* `END_REASONS`: the one list of ways a run ends (also the final states of run.json);
* `MetricsWriter` (append, flush per line), `MetricsReader` (tail) and `read_metrics`
  (whole file); both readers tolerate a torn last line and skip damaged ones;
* `RunView`: the run summary folded from the events, with the one ETA (`eta_seconds`)
  that the CLI and the TUI both show.

On disk a line is `{"event": KIND, <fields in declaration order>, "time": unix seconds}`,
as it always was. Reading is lenient so that older files still read: a missing key takes
its default, a renamed key (`RENAMED`: `best_val_loss` is now `best_score`) reads into its
new field, an unknown key is kept in `extra` (and written back), an unknown kind is
skipped. Pure Python: no torch, no textual.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

from tactics_core.common.workspace import METRICS_FILE

END_REASONS = ("finished", "early_stop", "stopped", "failed")
# At most one step event per this many seconds, plus the first and the last (--metrics-interval).
DEFAULT_METRICS_INTERVAL = 0.25

_WORDS = {"early_stop": "early stop"}


def reason_words(reason: str) -> str:
    """An end reason (or any run status) as people read it: `early_stop` -> `early stop`."""
    return _WORDS.get(reason, reason)


# ----------------------------------------------------------------------------
# The events


@dataclass(eq=True)
class RunEvent(Mapping):
    """One line of metrics.jsonl. Also a read-only mapping of the line's JSON object (`ev["key"]`,
    `"key" in ev`, `ev.get(...)`; `"event"` is the kind), so code written against the records
    reads the typed events unchanged."""

    EVENT: ClassVar[str] = ""
    # Keys that older files wrote under another name -> the field that reads them now.
    RENAMED: ClassVar[dict[str, str]] = {}
    # Fields one model kind writes and another does not: left out of the line while None, so a
    # GPT run's lines are what they always were.
    OPTIONAL: ClassVar[tuple[str, ...]] = ()
    time: float | None = field(default=None, kw_only=True)
    extra: dict[str, Any] = field(default_factory=dict, kw_only=True, repr=False)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The event's own keys, in the order they are written (no kind, time or extra)."""
        return tuple(f.name for f in fields(cls) if f.name not in ("time", "extra"))

    def to_record(self) -> dict[str, Any]:
        """The JSON object of the line: kind first, time last, as the trainer always wrote."""
        record: dict[str, Any] = {"event": self.EVENT}
        for name in self.field_names():
            value = getattr(self, name)
            if value is None and name in self.OPTIONAL:
                continue
            record[name] = value
        record.update(self.extra)
        record["time"] = self.time
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "RunEvent":
        if cls.RENAMED:
            renamed = {new: record[old] for old, new in cls.RENAMED.items() if old in record and new not in record}
            record = {k: v for k, v in record.items() if k not in cls.RENAMED} | renamed
        names = set(cls.field_names()) | {"time"}
        known = {k: v for k, v in record.items() if k in names}
        extra = {k: v for k, v in record.items() if k not in names and k != "event"}
        return cls(**known, extra=extra)

    def __getitem__(self, key: str) -> Any:
        if key == "event":
            return self.EVENT
        if key == "time" or key in self.field_names():
            return getattr(self, key)
        return self.extra[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_record())

    def __len__(self) -> int:
        return len(self.to_record())


@dataclass
class StartEvent(RunEvent):
    """A training process began (a fresh run, or a resume: `resumed_from` is its checkpoint)."""

    EVENT: ClassVar[str] = "start"
    step: int = 0
    total_steps: int | None = None
    resumed_from: str | None = None
    params: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None
    device: str = ""
    precision: str | None = None  # "bf16" or "fp32" (absent in runs from before training.precision)
    threads: int | None = None
    world_size: int = 1
    global_batch: int | None = None
    backend: str | None = None
    steps_per_epoch: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    tokenizer: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    pid: int | None = None
    OPTIONAL: ClassVar[tuple[str, ...]] = ("kind", "unit", "features")
    kind: str | None = None  # the model kind (None: the GPT, as every run before the scorer)
    unit: str | None = None  # what `tokens` counts for this kind ("rows" for the scorer)
    features: list[str] | None = None  # the scorer's input features, in order


@dataclass
class StepEvent(RunEvent):
    """An optimizer step finished (at most one per metrics interval, plus the first and last)."""

    EVENT: ClassVar[str] = "step"
    step: int = 0
    epoch: float | None = None
    loss: float | None = None
    lr: float | None = None
    tokens_per_s: float | None = None
    elapsed_s: float | None = None
    grad_norm: float | None = None
    tokens: int | None = None
    total_steps: int | None = None


@dataclass
class EvalEvent(RunEvent):
    """A validation pass; `best_score` is the best of the `select_by` figure so far (written as
    `best_val_loss` before it was named for what it holds, read either way)."""

    EVENT: ClassVar[str] = "eval"
    RENAMED: ClassVar[dict[str, str]] = {"best_val_loss": "best_score"}
    step: int = 0
    val_loss: float | None = None
    val_bpb: float | None = None
    proof_loss: float | None = None
    proof_bpb: float | None = None
    select_by: str = "val_loss"  # runs from before the proof-line figures selected by val_loss
    best_score: float | None = None
    bad_evals: int = 0
    patience: int = 0
    improved: bool = False
    val_tokens: int = 0
    val_bytes: int = 0
    proof_tokens: int = 0
    proof_bytes: int = 0
    # The scorer's figures (scorer.metrics): ROC AUC, where the steps used in the final proof
    # rank within their search (share, lower is better), the share of them in their search's top 10%.
    OPTIONAL: ClassVar[tuple[str, ...]] = ("auc", "used_rank", "top10_hit", "val_rows", "val_searches")
    auc: float | None = None
    used_rank: float | None = None
    top10_hit: float | None = None
    val_rows: int | None = None
    val_searches: int | None = None


@dataclass
class SampleEvent(RunEvent):
    """The greedy next proof line for a fixed validation goal, and what the corpus has."""

    EVENT: ClassVar[str] = "sample"
    step: int = 0
    prompt: str = ""
    text: str = ""
    expected: str | None = None


@dataclass
class CheckpointEvent(RunEvent):
    """A checkpoint was written (`best`: best_model.pt, else a resumable checkpoint_step_N.pt)."""

    EVENT: ClassVar[str] = "checkpoint"
    step: int = 0
    path: str = ""
    best: bool = False
    val_loss: float | None = None


@dataclass
class EndEvent(RunEvent):
    """The process ended; `reason` is one of END_REASONS, `checkpoint` the last one written,
    `best_score` the best `select_by` figure of the run (`best_val_loss` in older files)."""

    EVENT: ClassVar[str] = "end"
    RENAMED: ClassVar[dict[str, str]] = {"best_val_loss": "best_score"}
    reason: str = ""
    message: str = ""
    step: int = 0
    total_steps: int | None = None
    best_score: float | None = None
    select_by: str | None = None  # absent in runs from before it was recorded here
    checkpoint: str | None = None
    elapsed_s: float | None = None


EVENT_TYPES: dict[str, type[RunEvent]] = {
    cls.EVENT: cls for cls in (StartEvent, StepEvent, EvalEvent, SampleEvent, CheckpointEvent, EndEvent)
}


def parse_event(record: Any) -> RunEvent | None:
    """The event of one JSON record; None for a kind this version does not know."""
    if not isinstance(record, dict):
        return None
    cls = EVENT_TYPES.get(record.get("event"))  # type: ignore[arg-type]
    return cls.from_record(record) if cls is not None else None


def encode(event: RunEvent) -> str:
    """One line of metrics.jsonl (no newline). NaN/inf stay as JSON's NaN/Infinity."""
    return json.dumps(event.to_record(), default=_json_default, allow_nan=True)


def _json_default(value: Any) -> Any:
    try:
        return float(value)  # numpy / torch scalars
    except (TypeError, ValueError):
        return str(value)


# ----------------------------------------------------------------------------
# Writing and reading metrics.jsonl


def metrics_path(folder: str | os.PathLike) -> Path:
    """The metrics file of a run folder."""
    return Path(folder) / METRICS_FILE


class MetricsWriter:
    """Appends events to a run folder's metrics.jsonl, one flushed line each (a resumed run
    appends to the same file). A failed write (full disk) is swallowed: the run goes on, or
    ends, and says why in run.json."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = metrics_path(folder)
        self._fh = None

    def open(self) -> None:
        self._fh = open(self.path, "a", encoding="utf-8")

    def write(self, event: RunEvent) -> RunEvent:
        """Stamp the event's time (when unset) and append it."""
        if event.time is None:
            event.time = round(time.time(), 3)
        if self._fh is not None:
            try:
                self._fh.write(encode(event) + "\n")
                self._fh.flush()
            except OSError:
                pass
        return event

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class MetricsReader:
    """Tail a metrics.jsonl: `poll()` returns the complete events added since the last call.

    A partly written last line is kept for the next poll. If the file was
    replaced or truncated (a new run into a cleaned folder), reading restarts
    from its beginning (`restarted`); a damaged line is skipped.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._pos = 0
        self._inode: tuple[int, int] | None = None
        self._partial = b""
        self.restarted = False  # True after a poll that started over

    def poll(self) -> list[RunEvent]:
        self.restarted = False
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._pos or self._partial:
                self._reset()
                self.restarted = True
            return []
        ident = (st.st_dev, st.st_ino)
        if self._inode is not None and (ident != self._inode or st.st_size < self._pos):
            self._reset()
            self.restarted = True
        self._inode = ident
        if st.st_size == self._pos:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self._pos)
            chunk = fh.read()
        self._pos += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()  # b"" when the chunk ended with a newline
        return _parse_lines(lines)

    def _reset(self) -> None:
        self._pos = 0
        self._partial = b""
        self._inode = None


def read_metrics(path: str | os.PathLike) -> list[RunEvent]:
    """Every complete event of a metrics.jsonl (an incomplete last line is left out)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    lines.pop()  # incomplete (or empty) tail
    return _parse_lines(lines)


def _parse_lines(lines: list[bytes]) -> list[RunEvent]:
    out: list[RunEvent] = []
    for raw in lines:
        raw = raw.strip()
        if not raw:
            continue
        try:
            event = parse_event(json.loads(raw))
        except ValueError:
            continue  # a torn line from a killed writer
        if event is not None:
            out.append(event)
    return out


# ----------------------------------------------------------------------------
# The run summary


def eta_seconds(first: StepEvent | None, last: StepEvent | None, total_steps: int | None) -> float | None:
    """Time left at the pace between two step events of one session (None when unknown).

    `elapsed_s` is training time summed over resumes, so the pace of a resumed session is
    its own, never the average with an earlier machine or preset.
    """
    if first is None or last is None or not total_steps or first.elapsed_s is None or last.elapsed_s is None:
        return None
    steps = int(last.step) - int(first.step)
    secs = float(last.elapsed_s) - float(first.elapsed_s)
    if steps <= 0 or secs <= 0:
        return None
    return max(0.0, (int(total_steps) - int(last.step)) * secs / steps)


RESET = "_reset"  # a pseudo-event for RunView.feed: the file was replaced, start over


@dataclass
class RunView:
    """What a run looks like so far, folded from its events in order (the whole file on
    attach, then what a tail brings); the TUI's Training screen draws from it."""

    train: list[tuple[int, float]] = field(default_factory=list)
    val: list[tuple[int, float]] = field(default_factory=list)
    proof_val: list[tuple[int, float]] = field(default_factory=list)  # proof-line validation loss
    auc: list[tuple[int, float]] = field(default_factory=list)  # a scorer's ROC AUC (higher is better)
    used_rank: list[tuple[int, float]] = field(default_factory=list)  # a scorer's used-step rank (lower is better)
    last_step: StepEvent | None = None
    last_eval: EvalEvent | None = None
    last_sample: SampleEvent | None = None
    last_checkpoint: CheckpointEvent | None = None
    start: StartEvent | None = None
    end: EndEvent | None = None
    total_steps: int | None = None
    events: int = 0
    _session_first: StepEvent | None = None

    def reset(self) -> None:
        """The metrics file was replaced (a new run in a cleaned folder)."""
        self.__init__()

    def feed(self, events: Iterable[RunEvent | dict[str, Any]]) -> None:
        """Fold events (or their JSON records; `{"event": RESET}` starts over) into the view."""
        for item in events:
            self.events += 1
            if isinstance(item, dict):
                if item.get("event") == RESET:
                    self.reset()
                    continue
                item = parse_event(item)
            if isinstance(item, StartEvent):
                self._start(item)
            elif isinstance(item, StepEvent):
                loss = _num(item.loss)
                if loss is not None:
                    self.train.append((int(item.step), loss))
                self.last_step = item
                if self._session_first is None:
                    self._session_first = item
                if item.total_steps:
                    self.total_steps = int(item.total_steps)
            elif isinstance(item, EvalEvent):
                val = _num(item.val_loss)
                if val is not None:
                    self.val.append((int(item.step), val))
                proof = _num(item.proof_loss)
                if proof is not None and math.isfinite(proof):
                    self.proof_val.append((int(item.step), proof))
                for curve, value in ((self.auc, item.auc), (self.used_rank, item.used_rank)):
                    number = _num(value)
                    if number is not None and math.isfinite(number):
                        curve.append((int(item.step), number))
                self.last_eval = item
            elif isinstance(item, SampleEvent):
                self.last_sample = item
            elif isinstance(item, CheckpointEvent):
                self.last_checkpoint = item
            elif isinstance(item, EndEvent):
                self.end = item

    def _start(self, event: StartEvent) -> None:
        if not event.resumed_from:  # a new run in this folder: its history starts here
            self.train.clear()
            self.val.clear()
            self.proof_val.clear()
            self.auc.clear()
            self.used_rank.clear()
            self.last_eval = self.last_sample = self.last_checkpoint = None
        self.start = event
        self.end = None
        self.last_step = None
        self._session_first = None
        if event.total_steps:
            self.total_steps = int(event.total_steps)

    @property
    def step(self) -> int | None:
        return int(self.last_step.step) if self.last_step else None

    @property
    def kind(self) -> str:
        """The model kind the run trains ("gpt" unless its start event says otherwise)."""
        return str((self.start.kind if self.start else None) or "gpt")

    @property
    def unit(self) -> str:
        """What the step events' `tokens_per_s` counts: "tok", or the kind's unit ("rows")."""
        return str((self.start.unit if self.start else None) or "tok")

    def eta_seconds(self) -> float | None:
        """Remaining time from this session's pace (steps since the last start); None once ended."""
        if self.end is not None:
            return None
        return eta_seconds(self._session_first, self.last_step, self.total_steps)

    def ending(self) -> str | None:
        """Why the run ended, in words (None while it runs)."""
        if self.end is None:
            return None
        reason = self.end.reason or "?"
        text = "FAILED" if reason == "failed" else reason_words(reason)
        return f"{text}: {self.end.message}" if self.end.message else text

    @property
    def select_by(self) -> str:
        """The metric that picks best_model.pt and counts for early stopping."""
        return str((self.last_eval.select_by if self.last_eval else None) or "val_loss")

    def recent_losses(self, n: int = 120) -> list[float]:
        return [v for _, v in self.train[-n:]]


def data_line(start: StartEvent) -> str:
    """What a run's `start` event says of its data, in one line (the CLI's `data:` line, the
    TUI's scorer data line): files and tokens for the GPT, traces, searches and rows for a scorer."""
    data = start.data or {}
    if start.kind == "scorer":
        return (
            f"{data.get('traces')} traces, {_count(data.get('train_searches'))} train / "
            f"{_count(data.get('val_searches'))} validation searches (goal buckets {data.get('train_buckets')} / "
            f"{data.get('val_buckets')}), {_count(data.get('train_rows'))} train rows per epoch "
            f"({_count(data.get('train_positives'))} used in a final proof), {_count(data.get('val_rows'))} validation rows, "
            f"{data.get('features')} features"
            + (f", {data.get('problems')} trace problems skipped" if data.get("problems") else "")
        )
    return (
        f"{data.get('train_files')} train / {data.get('val_files')} validation files"
        f" (by {data.get('split', 'theorem')}), "
        f"{data.get('tokens', 0):,} tokens, padding {data.get('train_padding', 0):.1%}, "
        f"token cache {'reused' if data.get('cache_reused') else 'built'}"
    )


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
