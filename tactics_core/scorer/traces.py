"""Reading acorn's activated-step traces (`acorn eval --trace-out T.jsonl.zst`, acorn 91f29ff1).

A trace `NAME.jsonl.zst` is a zstd-compressed JSON-lines file, one object per activated proof step,
written by acorn's src/prover/trace.rs; beside it the sidecar `NAME.meta.json` names the columns of
`feature_vector` once (`{"schema": TRACE_SCHEMA, "feature_vector": [names...]}`). With
`--trace-shard-rows` acorn writes `NAME-000000.jsonl.zst`, ... each with its own sidecar. The rows of
one search (module, goal, skip, policy) are written contiguously, `activation_index` counting from 0.

Traces are read streamed, a compressed block at a time (memory bounded by a block and a chunk of
rows, never by the file). The zstd frames are decoded with a `decompressobj`, not a `stream_reader`:
a reader of a cut stream just stops, so a trace cut on a line boundary (acorn killed: the frame is
closed only when acorn exits normally) would look complete. Hostile input is never fatal: a
truncated or damaged stream, a row that is not JSON, another schema, another feature count, a
NaN/inf/null feature, a missing field, an empty file each become one `Problem` per file and kind
(the first line, and how many more lines were like it), given to `on_problem`; the rest is used.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import zstandard

from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn, check, report

TRACE_SCHEMA = "acorn-activated-step-trace-v2"
TRACE_SUFFIX = ".jsonl.zst"
META_SUFFIX = ".meta.json"
# acorn's eval counts both as a solved search (docs/scoring.md: "Eval success counts ...").
SUCCESS_OUTCOMES = frozenset({"Success", "Inconsistent"})
NUM_BUCKETS = 100  # goal_bucket is 0-99 (acorn's trainer validates on 90-99)

READ_BYTES = 1 << 16  # compressed bytes per read (a block decompresses to ~1 MB of rows)
CHUNK_ROWS = 4096  # rows converted to one float32 array at a time
FEED_BYTES = 1 << 13  # compressed bytes given to the decompressor at a time
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAX_LINE_BYTES = 16 << 20  # a row is ~2 KB; a "line" longer than this is no trace

OnProblem = Callable[["Problem"], None]


class TraceFileError(TacticsError):
    """A whole trace file is unusable (its sidecar, or the file itself): `file` and `reason` apart,
    so a reader of many traces can skip it as one `Problem`."""

    def __init__(self, file: str | os.PathLike, reason: str) -> None:
        self.file = str(file)
        self.reason = reason
        super().__init__(f"{self.file}: {reason}")


def is_success(outcome: str) -> bool:
    """Whether a search with this `outcome` counts as solved (acorn's eval: Success, Inconsistent)."""
    return outcome in SUCCESS_OUTCOMES


@dataclass(frozen=True)
class Problem:
    """A part of a trace that was skipped: the file, the (first) line it concerns, and why."""

    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.reason}"

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict) -> "Problem":
        return cls(str(d["file"]), d.get("line"), str(d["reason"]))


@dataclass(frozen=True)
class TraceMeta:
    """A trace's sidecar: `path` is the sidecar file, `feature_names` the columns of `feature_vector`."""

    path: Path
    schema: str
    feature_names: tuple[str, ...]


@dataclass(frozen=True)
class TraceRow:
    """One activated step of one search."""

    module: str
    goal: str
    goal_bucket: int
    skip: int | None
    policy: str
    outcome: str
    success: bool
    activation_index: int
    used: bool
    features: np.ndarray  # float32 [F], in the order of the sidecar's names


@dataclass
class RowChunk:
    """Up to CHUNK_ROWS consecutive valid rows of one trace, columns apart (what the store writes)."""

    lines: list[int] = field(default_factory=list)
    module: list[str] = field(default_factory=list)
    goal: list[str] = field(default_factory=list)
    bucket: list[int] = field(default_factory=list)
    skip: list[int | None] = field(default_factory=list)
    policy: list[str] = field(default_factory=list)
    outcome: list[str] = field(default_factory=list)
    activation: list[int] = field(default_factory=list)
    used: list[bool] = field(default_factory=list)
    features: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def __len__(self) -> int:
        return len(self.lines)


# ----------------------------------------------------------------------------------------------
# Files


def meta_path(trace: str | os.PathLike) -> Path:
    """The sidecar of a trace: `NAME.jsonl.zst` -> `NAME.meta.json` (as acorn's trace_metadata_path)."""
    trace = Path(trace)
    if trace.name.endswith(TRACE_SUFFIX):
        return trace.with_name(trace.name[: -len(TRACE_SUFFIX)] + META_SUFFIX)
    return trace.with_suffix(META_SUFFIX)


def trace_stem(trace: str | os.PathLike) -> str:
    """`NAME` of `NAME.jsonl.zst`."""
    name = Path(trace).name
    return name[: -len(TRACE_SUFFIX)] if name.endswith(TRACE_SUFFIX) else Path(name).stem


def read_meta(trace: str | os.PathLike) -> TraceMeta:
    """Read and check a trace's sidecar; TacticsError (one line: the file and what to do) otherwise."""
    path = meta_path(trace)
    redo = f"copy it from where acorn wrote {Path(trace).name} (acorn writes it beside the trace)"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TraceFileError(path, f"the sidecar of trace {Path(trace).name} is missing; {redo}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceFileError(path, f"cannot read the trace sidecar ({exc}); {redo}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise TraceFileError(path, f"the trace sidecar is not JSON ({exc}); {redo}") from None
    if not isinstance(data, dict):
        raise TraceFileError(path, f"the trace sidecar is not a JSON object; {redo}")
    schema = data.get("schema")
    if schema != TRACE_SCHEMA:
        raise TraceFileError(
            path,
            f"trace schema {schema!r}, this version reads {TRACE_SCHEMA!r}; "
            "record the trace with acorn 0.2.6 (91f29ff1) `acorn eval --trace-out`"
        )
    names = data.get("feature_vector")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise TraceFileError(path, f"the trace sidecar has no list of feature names (`feature_vector`); {redo}")
    if len(set(names)) != len(names):
        raise TraceFileError(path, f"the trace sidecar names a feature twice; {redo}")
    return TraceMeta(path=path, schema=schema, feature_names=tuple(names))


def _is_temp(path: Path) -> bool:
    name = path.name
    return name.startswith(".") or ".partial" in name or name.endswith((".tmp", ".part"))


def file_sizes(files: Sequence[Path]) -> list[int]:
    """Each file's size in bytes (0 for one that vanished): what progress over traces counts."""
    sizes = []
    for f in files:
        try:
            sizes.append(f.stat().st_size)
        except OSError:
            sizes.append(0)
    return sizes


def find_traces(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The trace files meant by `paths`: files as given, folders expanded to the `*.jsonl.zst` below
    them (sorted; hidden folders such as the column store `.store` and temp files skipped)."""
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(
                p
                for p in path.rglob(f"*{TRACE_SUFFIX}")
                if p.is_file()
                and not _is_temp(p)
                and not any(part.startswith(".") for part in p.relative_to(path).parts[:-1])
            )
            if not inside:
                raise TacticsError(
                    f"{path}: no *{TRACE_SUFFIX} trace in this folder; write one with "
                    "`acorn eval --trace-out PATH.jsonl.zst` or name the trace files"
                )
            candidates = inside
        elif path.is_file():
            candidates = [path]
        else:
            raise TacticsError(f"{path}: no such trace file or folder; check the path")
        for p in candidates:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                found.append(p)
    if not found:
        raise TacticsError("no trace named; give trace files or folders of *.jsonl.zst")
    return found


# ----------------------------------------------------------------------------------------------
# Problems, one per file and kind


class _ProblemLog:
    """The problems of one file: the first line of each kind and a count, given out at the end."""

    def __init__(self, file: str) -> None:
        self.file = file
        self._kinds: dict[str, list] = {}  # kind -> [first line, reason, count]

    def add(self, kind: str, line: int | None, reason: str) -> None:
        entry = self._kinds.get(kind)
        if entry is None:
            self._kinds[kind] = [line, reason, 1]
        else:
            entry[2] += 1

    def problems(self) -> list[Problem]:
        out = []
        for line, reason, count in self._kinds.values():
            if count > 1:
                reason = f"{reason} (and {count - 1:,} more lines like it, skipped)"
            out.append(Problem(self.file, line, reason))
        return out


# ----------------------------------------------------------------------------------------------
# The stream


def _lines(
    fh,
    log: _ProblemLog,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
    total: int,
    label: str,
    hasher=None,
) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of the decompressed text, frame by frame; damage becomes a problem."""
    dobj = zstandard.ZstdDecompressor().decompressobj()
    pending = b""
    line_no = 0
    read = 0
    frame_open = False  # bytes fed to `dobj` since the last frame ended
    while True:
        check(cancel)
        block = fh.read(READ_BYTES)
        if not block:
            break
        if hasher is not None:
            hasher.update(block)
        if read == 0 and len(block) >= 4 and block[:4] != ZSTD_MAGIC:
            log.add("zstd", None, "not zstd data; acorn writes traces as zstd-compressed .jsonl.zst")
            return
        # fed in small pieces, so that damage costs only the rows after it
        for offset in range(0, len(block), FEED_BYTES):
            data = block[offset : offset + FEED_BYTES]
            out: list[bytes] = []
            try:
                while data:
                    out.append(dobj.decompress(data))
                    frame_open = True
                    if dobj.eof:
                        data = dobj.unused_data
                        dobj = zstandard.ZstdDecompressor().decompressobj()
                        frame_open = False
                    else:
                        data = b""
            except zstandard.ZstdError as exc:
                at = read + offset
                log.add(
                    "zstd",
                    None,
                    f"damaged zstd data near compressed byte {at:,} ({exc}); "
                    f"the {line_no:,} lines before it are used, record the trace again for the rest",
                )
                return
            if not out:
                continue
            parts = (pending + b"".join(out)).split(b"\n")
            pending = parts.pop()
            for part in parts:
                line_no += 1
                yield line_no, part
            if len(pending) > MAX_LINE_BYTES:
                log.add(
                    "long",
                    line_no + 1,
                    f"a line longer than {MAX_LINE_BYTES >> 20} MiB (no trace row); the rest of the file is skipped",
                )
                return
        read += len(block)
        report(progress, read, total, label)
    if read == 0:
        log.add("empty", None, "empty file (0 bytes): acorn wrote no row into it; record the trace again")
        return
    if frame_open:
        log.add(
            "truncated",
            None,
            f"truncated: the zstd stream stops mid-frame after {line_no:,} complete lines "
            "(acorn killed before it finished?); the rows before the cut are used",
        )
        return
    if pending:
        line_no += 1
        yield line_no, pending
    if line_no == 0:
        log.add("empty", None, "holds no rows (a finished but empty trace)")


_STR_FIELDS = ("module", "goal", "policy", "outcome")
_DECODE = json.JSONDecoder().decode


def _parse(line: bytes, n_features: int) -> tuple | tuple[str, str]:
    """A row as (module, goal, bucket, skip, policy, outcome, activation, used, feature list), or
    (kind, reason) of the problem."""
    try:
        obj = _DECODE(line.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError too
        return ("json", f"not JSON ({str(exc).split(':')[0]})")
    if not isinstance(obj, dict):
        return ("json", "not a JSON object")
    schema = obj.get("schema")
    if schema != TRACE_SCHEMA:
        return ("schema", f"a row of schema {schema!r}, not {TRACE_SCHEMA!r}")
    fv = obj.get("feature_vector")
    if not isinstance(fv, list):
        return ("field", "no feature_vector list")
    if len(fv) != n_features:
        return ("length", f"feature_vector has {len(fv)} values, the sidecar names {n_features}")
    for name in _STR_FIELDS:
        if type(obj.get(name)) is not str:
            return ("field", f"field {name!r} missing or not a string")
    bucket = obj.get("goal_bucket")
    if type(bucket) is not int or not 0 <= bucket < NUM_BUCKETS:
        return ("field", f"goal_bucket {bucket!r} is not an integer 0-{NUM_BUCKETS - 1}")
    skip = obj.get("skip")
    if skip is not None and (type(skip) is not int or skip < 0):
        return ("field", f"skip {skip!r} is neither null nor a count")
    activation = obj.get("activation_index")
    if type(activation) is not int or not 0 <= activation < 2**31:
        return ("field", f"activation_index {activation!r} is not a count")
    used = obj.get("used_in_final_proof")
    if type(used) is not bool:
        return ("field", f"used_in_final_proof {used!r} is not true/false")
    return (obj["module"], obj["goal"], bucket, skip, obj["policy"], obj["outcome"], activation, used, fv)


def _chunk(rows: list[tuple], lines: list[int], names: tuple[str, ...], log: _ProblemLog) -> RowChunk:
    """Convert parsed rows to a RowChunk; rows with a non-number or non-finite feature are dropped."""
    n_features = len(names)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            features = np.array([r[8] for r in rows], dtype=np.float32).reshape(len(rows), n_features)
            ok = np.ones(len(rows), dtype=bool)
        except (ValueError, TypeError):
            features = np.zeros((len(rows), n_features), dtype=np.float32)
            ok = np.zeros(len(rows), dtype=bool)
            for i, r in enumerate(rows):
                try:
                    features[i] = np.array(r[8], dtype=np.float32)
                    ok[i] = True
                except (ValueError, TypeError):
                    log.add("number", lines[i], "feature_vector holds a value that is not a number")
    finite = np.isfinite(features).all(axis=1)
    bad = ok & ~finite
    for i in np.flatnonzero(bad):
        col = int(np.flatnonzero(~np.isfinite(features[i]))[0])
        log.add("finite", lines[i], f"feature {names[col]!r} is NaN, infinite or null")
    keep = ok & finite
    if not keep.all():
        idx = np.flatnonzero(keep)
        rows = [rows[i] for i in idx]
        lines = [lines[i] for i in idx]
        features = features[idx]
    chunk = RowChunk(lines=lines, features=np.ascontiguousarray(features))
    for r in rows:
        chunk.module.append(r[0])
        chunk.goal.append(r[1])
        chunk.bucket.append(r[2])
        chunk.skip.append(r[3])
        chunk.policy.append(r[4])
        chunk.outcome.append(r[5])
        chunk.activation.append(r[6])
        chunk.used.append(r[7])
    return chunk


def iter_row_chunks(
    trace: str | os.PathLike,
    meta: TraceMeta | None = None,
    on_problem: OnProblem | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    chunk_rows: int = CHUNK_ROWS,
    hasher=None,
) -> Iterator[RowChunk]:
    """The valid rows of a trace in chunks (what `iter_rows` and the column store read).

    `hasher` (a hashlib object) is fed the compressed bytes as they are read. The file's problems
    go to `on_problem` once the file is read (one per kind; None: not reported). A missing or bad
    sidecar is a TacticsError (see `read_meta`); an unreadable trace file too.
    """
    path = Path(trace)
    meta = meta if meta is not None else read_meta(path)
    names = meta.feature_names
    log = _ProblemLog(str(path))
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise TraceFileError(path, f"cannot read the trace ({exc.strerror or exc}); check the path") from None
    with fh:
        total = os.fstat(fh.fileno()).st_size
        report(progress, 0, total, path.name)
        rows: list[tuple] = []
        lines: list[int] = []
        for line_no, line in _lines(fh, log, progress, cancel, total, path.name, hasher):
            if not line.strip():
                continue
            parsed = _parse(line, len(names))
            if len(parsed) == 2:
                log.add(parsed[0], line_no, parsed[1])
                continue
            rows.append(parsed)
            lines.append(line_no)
            if len(rows) >= chunk_rows:
                chunk = _chunk(rows, lines, names, log)
                rows, lines = [], []
                if len(chunk):
                    yield chunk
        if rows:
            chunk = _chunk(rows, lines, names, log)
            if len(chunk):
                yield chunk
    if on_problem is not None:
        for problem in log.problems():
            on_problem(problem)


def iter_rows(
    trace: str | os.PathLike,
    meta: TraceMeta | None = None,
    on_problem: OnProblem | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[TraceRow]:
    """The valid rows of one trace, streamed (progress: compressed bytes read of the file's size).

    Hostile input is skipped and reported to `on_problem` as one `Problem` per file and kind,
    once the file is read; a missing or bad sidecar raises TacticsError.
    """
    for chunk in iter_row_chunks(trace, meta, on_problem, progress, cancel):
        for i in range(len(chunk)):
            outcome = chunk.outcome[i]
            yield TraceRow(
                module=chunk.module[i],
                goal=chunk.goal[i],
                goal_bucket=chunk.bucket[i],
                skip=chunk.skip[i],
                policy=chunk.policy[i],
                outcome=outcome,
                success=outcome in SUCCESS_OUTCOMES,
                activation_index=chunk.activation[i],
                used=chunk.used[i],
                features=chunk.features[i],
            )


# ----------------------------------------------------------------------------------------------
# Searches: runs of contiguous rows


@dataclass
class SearchInfo:
    """One search (module, goal, skip, policy) of a trace: its rows are first_row .. first_row+rows."""

    module: str
    goal: str
    skip: int | None
    policy: str
    outcome: str
    bucket: int
    first_row: int
    rows: int = 0
    used_rows: int = 0
    first_activation: int = 0
    last_activation: int = -1

    @property
    def success(self) -> bool:
        return self.outcome in SUCCESS_OUTCOMES

    @property
    def key(self) -> tuple[str, str, int | None, str]:
        return (self.module, self.goal, self.skip, self.policy)


class SearchAccumulator:
    """Splits a trace's rows into searches: a new one starts where the key (module, goal, skip,
    policy) or the outcome changes, or `activation_index` does not grow (a search run again)."""

    def __init__(self) -> None:
        self.searches: list[SearchInfo] = []
        self.rows = 0

    def add(self, chunk: RowChunk) -> np.ndarray:
        """Take a chunk's rows; returns each row's search index (int32)."""
        ids = np.empty(len(chunk), dtype=np.int32)
        cur = self.searches[-1] if self.searches else None
        for i in range(len(chunk)):
            activation = chunk.activation[i]
            if (
                cur is None
                or activation <= cur.last_activation
                or chunk.goal[i] != cur.goal
                or chunk.module[i] != cur.module
                or chunk.skip[i] != cur.skip
                or chunk.policy[i] != cur.policy
                or chunk.outcome[i] != cur.outcome
            ):
                cur = SearchInfo(
                    module=chunk.module[i],
                    goal=chunk.goal[i],
                    skip=chunk.skip[i],
                    policy=chunk.policy[i],
                    outcome=chunk.outcome[i],
                    bucket=chunk.bucket[i],
                    first_row=self.rows + i,
                    first_activation=activation,
                )
                self.searches.append(cur)
            cur.rows += 1
            cur.used_rows += chunk.used[i]
            cur.last_activation = activation
            ids[i] = len(self.searches) - 1
        self.rows += len(chunk)
        return ids
