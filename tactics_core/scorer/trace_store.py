"""The numeric columns of a trace, cached in binary so that a second run starts in seconds.

Why: parsing JSON is the slow part of a trace (a real eval writes 10^7-10^8 rows); the columns a
scorer trains on are a few flat arrays. Each trace file gets one folder in a store root:

    STORE_ROOT/NAME-SHA16/    meta.json (version, sha256, source, rows, feature names, problems),
                              features.f32 [rows, F], used.u8, search.i32, activation.i32 (raw,
                              mapped read-only with np.memmap), searches.npy + strings.json (one
                              row per search: module, goal, skip, policy, outcome, success, bucket,
                              first_row, rows, used_rows, first and last activation_index;
                              strings as indices into strings.json)
    STORE_ROOT/seen/H.json    per trace path: its size, mtime and inode when its sha256 was taken,
                              and the sha256s of its last stores (newest first)

* the key is the sha256 of the trace file's bytes: a re-recorded trace rebuilds only itself, a
  copied one reuses its twin's folder; `seen/` spares hashing an unchanged file again, so a
  reused store opens in milliseconds;
* a folder is built under a hidden temp name (`atomic.atomic_dir`: fsync, rename): a killed build
  leaves no folder, only a `.partial` that the next build removes;
* it is built from `traces.iter_row_chunks`, a chunk of rows at a time, appended to the column
  files: memory is bounded by a chunk (and the per-search table), not by the trace;
* the build's problems are kept in meta.json, so a reuse reports them again;
* a trace keeps its newest KEEP_PER_TRACE stores; older ones are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from tactics_core.common.atomic import atomic_dir, atomic_write_text, remove_stale_partials
from tactics_core.common.errors import Cancelled, TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn, check, report
from tactics_core.scorer import traces as _traces
from tactics_core.scorer.traces import OnProblem, Problem, SearchAccumulator, SearchInfo, TraceFileError, read_meta

STORE_VERSION = 1
KEEP_PER_TRACE = 2  # stores of one trace path kept (the newest); older ones go
SEEN_DIR = "seen"
META_FILE = "meta.json"
STRINGS_FILE = "strings.json"
SEARCHES_FILE = "searches.npy"
HASH_BYTES = 1 << 20
HASH_SHARE = 20  # hashing is reported as 1/HASH_SHARE of a file's progress (it is that much faster)

# file name -> dtype, and whether it holds F values per row
COLUMNS = {
    "features.f32": (np.float32, True),
    "used.u8": (np.uint8, False),
    "search.i32": (np.int32, False),
    "activation.i32": (np.int32, False),
}

SEARCH_DTYPE = np.dtype(
    [
        ("module", np.int32),  # index into `strings`
        ("goal", np.int32),
        ("policy", np.int32),
        ("outcome", np.int32),
        ("skip", np.int32),  # -1: none
        ("bucket", np.int16),
        ("success", np.uint8),
        ("first_row", np.int64),
        ("rows", np.int64),
        ("used_rows", np.int64),
        ("first_activation", np.int32),
        ("last_activation", np.int32),
    ]
)


@dataclass(frozen=True)
class SearchTable:
    """The searches of a trace: a structured array (SEARCH_DTYPE) whose string columns index `strings`."""

    array: np.ndarray
    strings: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.array)

    def _names(self, column: str) -> list[str]:
        return [self.strings[i] for i in self.array[column]]

    @property
    def module(self) -> list[str]:
        return self._names("module")

    @property
    def goal(self) -> list[str]:
        return self._names("goal")

    @property
    def policy(self) -> list[str]:
        return self._names("policy")

    @property
    def outcome(self) -> list[str]:
        return self._names("outcome")

    @property
    def skip(self) -> np.ndarray:
        """int32, -1 where the search has no skip."""
        return self.array["skip"]

    @property
    def success(self) -> np.ndarray:
        return self.array["success"].astype(bool)

    @property
    def bucket(self) -> np.ndarray:
        return self.array["bucket"]

    @property
    def first_row(self) -> np.ndarray:
        return self.array["first_row"]

    @property
    def rows(self) -> np.ndarray:
        return self.array["rows"]

    @property
    def used_rows(self) -> np.ndarray:
        return self.array["used_rows"]

    def info(self, i: int) -> SearchInfo:
        r = self.array[i]
        s = self.strings
        return SearchInfo(
            module=s[r["module"]],
            goal=s[r["goal"]],
            skip=None if r["skip"] < 0 else int(r["skip"]),
            policy=s[r["policy"]],
            outcome=s[r["outcome"]],
            bucket=int(r["bucket"]),
            first_row=int(r["first_row"]),
            rows=int(r["rows"]),
            used_rows=int(r["used_rows"]),
            first_activation=int(r["first_activation"]),
            last_activation=int(r["last_activation"]),
        )

    def infos(self) -> list[SearchInfo]:
        return [self.info(i) for i in range(len(self))]

    @classmethod
    def from_infos(cls, searches: Sequence[SearchInfo]) -> "SearchTable":
        ids: dict[str, int] = {}

        def sid(text: str) -> int:
            return ids.setdefault(text, len(ids))

        array = np.zeros(len(searches), dtype=SEARCH_DTYPE)
        for i, s in enumerate(searches):
            array[i] = (
                sid(s.module),
                sid(s.goal),
                sid(s.policy),
                sid(s.outcome),
                -1 if s.skip is None else s.skip,
                s.bucket,
                s.success,
                s.first_row,
                s.rows,
                s.used_rows,
                s.first_activation,
                s.last_activation,
            )
        return cls(array=array, strings=tuple(ids))


@dataclass(frozen=True)
class TraceColumns:
    """One trace's rows as columns (read-only memory maps when they come from a store)."""

    source: Path
    sha256: str
    bytes: int  # the compressed trace's size
    feature_names: tuple[str, ...]
    features: np.ndarray  # float32 [rows, F]
    used: np.ndarray  # uint8 [rows]: used_in_final_proof
    search: np.ndarray  # int32 [rows]: index into `searches`
    activation: np.ndarray  # int32 [rows]: activation_index within its search
    searches: SearchTable
    problems: tuple[Problem, ...]  # what the build skipped
    folder: Path | None = None  # the store folder

    @property
    def rows(self) -> int:
        return int(self.used.shape[0])


# ----------------------------------------------------------------------------------------------
# The store's bookkeeping


def _scaled(progress: ProgressFn | None, offset: int, share: int, total: int) -> ProgressFn | None:
    """A progress function that maps a file's byte count into [offset, offset + total // share]."""
    if progress is None:
        return None

    def inner(done: int, _total, message: str = "") -> None:
        progress(offset + done // share, total, message)

    return inner


def file_sha256(path: Path, progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> str:
    h = hashlib.sha256()
    done = 0
    try:
        with open(path, "rb") as fh:
            total = os.fstat(fh.fileno()).st_size
            while True:
                check(cancel)
                block = fh.read(HASH_BYTES)
                if not block:
                    break
                h.update(block)
                done += len(block)
                report(progress, done, total, f"hashing {path.name}")
    except OSError as exc:
        raise TraceFileError(path, f"cannot read the trace ({exc.strerror or exc}); check the path") from None
    return h.hexdigest()


def _seen_file(store_root: Path, trace: Path) -> Path:
    key = hashlib.sha1(str(trace.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return store_root / SEEN_DIR / f"{key}.json"


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _folder_name(trace: Path, sha: str) -> str:
    return f"{_traces.trace_stem(trace)}-{sha[:16]}"


def _folders_of(store_root: Path, sha: str) -> list[Path]:
    try:
        return sorted(
            p for p in store_root.glob(f"*-{sha[:16]}") if p.is_dir() and not p.name.startswith(".")
        )
    except OSError:
        return []


def _open(folder: Path, source: Path, sha: str, feature_names: tuple[str, ...]) -> TraceColumns | None:
    """The columns of a store folder, or None where it is not a complete store of this trace."""
    meta = _read_json(folder / META_FILE)
    if (
        not isinstance(meta, dict)
        or meta.get("version") != STORE_VERSION
        or meta.get("sha256") != sha
        or tuple(meta.get("feature_names") or ()) != feature_names
    ):
        return None
    try:
        rows = int(meta["rows"])
        n_features = len(feature_names)
        columns = {}
        for name, (dtype, wide) in COLUMNS.items():
            shape = (rows, n_features) if wide else (rows,)
            path = folder / name
            expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
            if path.stat().st_size != expected:
                return None
            if expected == 0:
                columns[name] = np.zeros(shape, dtype=dtype)
            else:
                columns[name] = np.memmap(path, dtype=dtype, mode="r", shape=shape)
        strings = _read_json(folder / STRINGS_FILE)
        array = np.load(folder / SEARCHES_FILE, allow_pickle=False)
        if not isinstance(strings, list) or array.dtype != SEARCH_DTYPE:
            return None
        problems = tuple(Problem.from_dict(p) for p in meta.get("problems", ()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return TraceColumns(
        source=source,
        sha256=sha,
        bytes=int(meta.get("bytes", 0)),
        feature_names=feature_names,
        features=columns["features.f32"],
        used=columns["used.u8"],
        search=columns["search.i32"],
        activation=columns["activation.i32"],
        searches=SearchTable(array=array, strings=tuple(strings)),
        problems=problems,
        folder=folder,
    )


def _find(store_root: Path, source: Path, sha: str, feature_names: tuple[str, ...]) -> TraceColumns | None:
    for folder in _folders_of(store_root, sha):
        columns = _open(folder, source, sha, feature_names)
        if columns is not None:
            return columns
    return None


def _remember(store_root: Path, trace: Path, st: os.stat_result, sha: str) -> None:
    """Record `sha` as the trace's newest store; remove the stores it no longer keeps."""
    seen = _seen_file(store_root, trace)
    entry = _read_json(seen)
    history = entry.get("history", []) if isinstance(entry, dict) else []
    history = [sha] + [h for h in history if isinstance(h, str) and h != sha]
    kept, dropped = history[:KEEP_PER_TRACE], history[KEEP_PER_TRACE:]
    new = {"source": str(trace.resolve()), "stat": _stat_key(st), "sha256": sha, "history": kept}
    if new != entry:
        with contextlib.suppress(OSError):
            atomic_write_text(seen, json.dumps(new, indent=1))
    if dropped:
        _remove_unreferenced(store_root, set(dropped))


def _remove_unreferenced(store_root: Path, shas: set[str]) -> None:
    """Remove the store folders of `shas` that no trace path keeps any more."""
    try:
        entries = list((store_root / SEEN_DIR).glob("*.json"))
    except OSError:
        entries = []
    for path in entries:
        entry = _read_json(path)
        if isinstance(entry, dict):
            shas -= set(entry.get("history", [])[:KEEP_PER_TRACE])
    for sha in shas:
        for folder in _folders_of(store_root, sha):
            shutil.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# Building


def _build(
    trace: Path,
    folder: Path,
    sha: str,
    meta,
    size: int,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> None:
    """Write the store of `trace` into the (temp) folder `folder`."""
    problems: list[Problem] = []
    acc = SearchAccumulator()
    hasher = hashlib.sha256()
    handles = {name: open(folder / name, "wb") for name in COLUMNS}
    try:
        for chunk in _traces.iter_row_chunks(
            trace, meta, on_problem=problems.append, progress=progress, cancel=cancel, hasher=hasher
        ):
            search_ids = acc.add(chunk)
            handles["features.f32"].write(np.ascontiguousarray(chunk.features, dtype=np.float32).tobytes())
            handles["used.u8"].write(np.asarray(chunk.used, dtype=np.uint8).tobytes())
            handles["search.i32"].write(search_ids.tobytes())
            handles["activation.i32"].write(np.asarray(chunk.activation, dtype=np.int32).tobytes())
    finally:
        for fh in handles.values():
            fh.close()
    check(cancel)
    if hasher.hexdigest() != sha:
        raise TraceFileError(
            trace, "the trace changed while it was read (acorn still writing it?); run again once acorn has finished"
        )
    table = SearchTable.from_infos(acc.searches)
    np.save(folder / SEARCHES_FILE, table.array, allow_pickle=False)
    (folder / STRINGS_FILE).write_text(json.dumps(list(table.strings), ensure_ascii=False), encoding="utf-8")
    info = {
        "version": STORE_VERSION,
        "sha256": sha,
        "source": str(trace),
        "bytes": size,
        "rows": acc.rows,
        "searches": len(acc.searches),
        "feature_names": list(meta.feature_names),
        "problems": [p.to_dict() for p in problems],
    }
    # meta.json last: a folder without it is no store (atomic_dir renames the folder whole anyway)
    (folder / META_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")


def load_columns(
    trace: str | os.PathLike,
    store_root: str | os.PathLike,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    on_problem: OnProblem | None = None,
) -> TraceColumns:
    """The columns of one trace, from its store in `store_root` (built first if there is none).

    Progress counts the trace's compressed bytes. The problems the build skipped go to
    `on_problem` (a reuse reports them again) and are in `TraceColumns.problems`. A missing or bad
    sidecar or an unreadable trace is a `TraceFileError`; a store root that cannot be written a
    TacticsError.
    """
    trace = Path(trace)
    store_root = Path(store_root)
    meta = read_meta(trace)
    try:
        st = os.stat(trace)
    except OSError as exc:
        raise TraceFileError(trace, f"cannot read the trace ({exc.strerror or exc}); check the path") from None
    size = st.st_size
    report(progress, 0, size, trace.name)

    # 1. the same file as last time: its sha256 is known
    sha = None
    entry = _read_json(_seen_file(store_root, trace))
    if isinstance(entry, dict) and entry.get("stat") == _stat_key(st) and isinstance(entry.get("sha256"), str):
        sha = entry["sha256"]
    columns = _find(store_root, trace, sha, meta.feature_names) if sha else None
    # 2. otherwise hash it: a store of the same bytes (a copy, a touched file) is reused
    if columns is None and sha is None:
        sha = file_sha256(trace, _scaled(progress, 0, HASH_SHARE, size), cancel)
        columns = _find(store_root, trace, sha, meta.feature_names)
    if columns is None:
        columns = _build_store(trace, store_root, sha, meta, size, progress, cancel)
    with contextlib.suppress(OSError):
        _remember(store_root, trace, st, sha)
    report(progress, size, size, trace.name)
    if on_problem is not None:
        for problem in columns.problems:
            on_problem(problem)
    return columns


def _build_store(
    trace: Path, store_root: Path, sha: str, meta, size: int, progress: ProgressFn | None, cancel: CancelToken | None
) -> TraceColumns:
    try:
        store_root.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(store_root)
        for stale in _folders_of(store_root, sha):  # incomplete or of other feature names
            shutil.rmtree(stale, ignore_errors=True)
    except OSError as exc:
        raise TacticsError(
            f"{store_root}: cannot write the trace store ({exc.strerror or exc}); "
            "fix its permissions or name another store folder"
        ) from None
    final = store_root / _folder_name(trace, sha)
    build_progress = None
    if progress is not None:
        offset = size // HASH_SHARE
        share = size - offset

        def build_progress(done: int, _total, message: str = "") -> None:
            progress(offset + (done * share // size if size else 0), size, message)

    try:
        with atomic_dir(final) as tmp:
            _build(trace, tmp, sha, meta, size, build_progress, cancel)
    except (TacticsError, Cancelled):
        raise
    except OSError as exc:
        columns = _open(final, trace, sha, meta.feature_names) if final.is_dir() else None
        if columns is not None:  # another process built it meanwhile
            return columns
        raise TacticsError(
            f"{store_root}: cannot write the trace store ({exc.strerror or exc}); "
            "free some space, fix its permissions or name another store folder"
        ) from None
    columns = _open(final, trace, sha, meta.feature_names)
    if columns is None:  # pragma: no cover - just written
        raise TacticsError(f"{final}: the trace store just written cannot be read; remove the folder and retry")
    return columns


# ----------------------------------------------------------------------------------------------
# Many traces


def feature_mismatch(a: Sequence[str], b: Sequence[str]) -> str:
    """How two feature name lists differ, in a few words ('' when equal)."""
    a, b = tuple(a), tuple(b)
    if a == b:
        return ""
    if len(a) != len(b):
        return f"{len(a)} features against {len(b)}"
    i = next(i for i in range(len(a)) if a[i] != b[i])
    return f"feature {i} is {a[i]!r} against {b[i]!r}"


def load_traces(
    paths: Sequence[str | os.PathLike],
    store_root: str | os.PathLike,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    on_problem: OnProblem | None = None,
) -> list[TraceColumns]:
    """The columns of every trace `paths` name (see `traces.find_traces`), from the store.

    All traces must have the same feature names (else a TacticsError naming two sidecars). A
    trace with a missing or bad sidecar is skipped as one problem where `on_problem` is given
    (else its TraceFileError is raised); no usable trace at all is a TacticsError. Progress counts
    the compressed bytes of all traces.
    """
    files = _traces.find_traces(paths)
    sizes = _traces.file_sizes(files)
    total = sum(sizes)
    done = 0
    out: list[TraceColumns] = []
    first_meta: Path | None = None
    skipped: list[Problem] = []
    for f, size in zip(files, sizes):
        check(cancel)
        inner = None
        if progress is not None:
            base = done

            def inner(d: int, _t, message: str = "", base=base) -> None:
                progress(base + d, total, message)

        try:
            columns = load_columns(f, store_root, inner, cancel, on_problem)
        except TraceFileError as exc:
            if on_problem is None:
                raise
            problem = Problem(exc.file, None, exc.reason)
            skipped.append(problem)
            on_problem(problem)
            done += size
            continue
        done += size
        if out:
            diff = feature_mismatch(out[0].feature_names, columns.feature_names)
            if diff:
                raise TacticsError(
                    f"{_traces.meta_path(f)}: its feature names differ from {first_meta} ({diff}); "
                    "use traces of one acorn version together"
                )
        else:
            first_meta = _traces.meta_path(f)
        out.append(columns)
    if not out:
        raise TacticsError(f"no usable trace among {len(files)} file(s); first: {skipped[0]}")
    report(progress, total, total, "")
    return out
