"""`tactics traces stats`: what a set of acorn traces holds (rows, searches, solved, used steps).

Built from the column store when a store root is given (a second run reads no JSON), otherwise
streamed. A search that acorn's `--trace-shard-rows` cut across two consecutive shards is counted
once.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from tactics_core.common.formatting import human_size
from tactics_core.common.progress import CancelToken, ProgressFn, check, report
from tactics_core.scorer import traces as _traces
from tactics_core.scorer.trace_store import feature_mismatch, load_columns
from tactics_core.scorer.traces import Problem, SearchAccumulator, SearchInfo, TraceFileError, is_success, read_meta


@dataclass
class Figures:
    """Counts of one slice of the traces (all, a policy, a bucket)."""

    rows: int = 0
    searches: int = 0
    successful: int = 0
    used: int = 0

    def to_dict(self) -> dict:
        return {
            "rows": self.rows,
            "searches": self.searches,
            "successful": self.successful,
            "success_rate": self.successful / self.searches if self.searches else 0.0,
            "used": self.used,
            "used_share": self.used / self.rows if self.rows else 0.0,
        }


@dataclass(frozen=True)
class _Search:
    """What stats need of one search of one file."""

    key: tuple
    outcome: str
    bucket: int
    rows: int
    used_rows: int
    first_activation: int
    last_activation: int


@dataclass
class TraceStats:
    files: list[dict] = field(default_factory=list)  # per trace: file, bytes, rows, searches
    total: Figures = field(default_factory=Figures)
    per_policy: dict[str, Figures] = field(default_factory=dict)
    per_bucket: dict[int, Figures] = field(default_factory=dict)
    outcomes: Counter = field(default_factory=Counter)  # searches per outcome
    feature_names: tuple[str, ...] = ()
    problems: list[Problem] = field(default_factory=list)
    store: str | None = None
    seconds: float = 0.0

    @property
    def bytes(self) -> int:
        return sum(f["bytes"] for f in self.files)

    def to_dict(self) -> dict:
        total = self.total.to_dict()
        return {
            "files": len(self.files),
            "bytes": self.bytes,
            "rows": total["rows"],
            "searches": total["searches"],
            "successful": total["successful"],
            "success_rate": total["success_rate"],
            "used": total["used"],
            "used_share": total["used_share"],
            "outcomes": dict(sorted(self.outcomes.items(), key=lambda kv: (-kv[1], kv[0]))),
            "per_policy": {p: f.to_dict() for p, f in sorted(self.per_policy.items())},
            "per_bucket": {str(b): f.to_dict() for b, f in sorted(self.per_bucket.items())},
            "feature_names": list(self.feature_names),
            "traces": list(self.files),
            "problems": [p.to_dict() for p in self.problems],
            "store": self.store,
            "seconds": self.seconds,
        }


_SHARD = re.compile(r"^(.*)-(\d{6})" + re.escape(_traces.TRACE_SUFFIX) + "$")


def _next_shard(a: Path, b: Path) -> bool:
    """Whether `b` is the shard acorn wrote right after `a` (NAME-00000K, NAME-00000K+1)."""
    ma, mb = _SHARD.match(a.name), _SHARD.match(b.name)
    return (
        ma is not None
        and mb is not None
        and a.parent == b.parent
        and ma.group(1) == mb.group(1)
        and int(mb.group(2)) == int(ma.group(2)) + 1
    )


class _Totals:
    def __init__(self, stats: TraceStats) -> None:
        self.stats = stats
        self.last: _Search | None = None
        self.last_file: Path | None = None

    def add_file(self, path: Path, searches: Iterable[_Search]) -> None:
        for i, s in enumerate(searches):
            continued = (
                i == 0
                and self.last is not None
                and self.last_file is not None
                and _next_shard(self.last_file, path)
                and s.key == self.last.key
                and s.outcome == self.last.outcome
                and s.first_activation > self.last.last_activation
            )
            self._add(s, continued)
            self.last = s
        self.last_file = path

    def _add(self, s: _Search, continued: bool) -> None:
        st = self.stats
        policy = s.key[3]
        slices = (
            st.total,
            st.per_policy.setdefault(policy, Figures()),
            st.per_bucket.setdefault(s.bucket, Figures()),
        )
        success = is_success(s.outcome)
        for f in slices:
            f.rows += s.rows
            f.used += s.used_rows
            if not continued:
                f.searches += 1
                f.successful += success
        if not continued:
            st.outcomes[s.outcome] += 1


def _from_store(path: Path, store_root: Path, progress, cancel, problems: list[Problem]):
    columns = load_columns(path, store_root, progress, cancel, on_problem=problems.append)
    searches = [_search_of(info) for info in columns.searches.infos()]
    return columns.feature_names, columns.rows, searches


def _streamed(path: Path, progress, cancel, problems: list[Problem]):
    meta = read_meta(path)
    acc = SearchAccumulator()
    for chunk in _traces.iter_row_chunks(path, meta, problems.append, progress, cancel):
        acc.add(chunk)
    return meta.feature_names, acc.rows, [_search_of(info) for info in acc.searches]


def _search_of(info: SearchInfo) -> _Search:
    return _Search(
        key=info.key,
        outcome=info.outcome,
        bucket=info.bucket,
        rows=info.rows,
        used_rows=info.used_rows,
        first_activation=info.first_activation,
        last_activation=info.last_activation,
    )


def trace_stats(
    paths: Sequence[str | os.PathLike],
    store_root: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> TraceStats:
    """Figures of the traces `paths` name (files, or folders of `*.jsonl.zst`).

    With `store_root`, each trace's columns come from its store (built the first time); without,
    every trace is streamed. Bad files and rows are `problems`, never fatal; only naming no trace
    at all is a TacticsError. Progress counts compressed bytes.
    """
    start = time.monotonic()
    files = _traces.find_traces(paths)
    sizes = _traces.file_sizes(files)
    total_bytes = sum(sizes)
    stats = TraceStats(store=str(store_root) if store_root is not None else None)
    totals = _Totals(stats)
    names_from: Path | None = None
    done = 0
    for path, size in zip(files, sizes):
        check(cancel)
        inner = None
        if progress is not None:
            base = done

            def inner(d: int, _t, message: str = "", base=base) -> None:
                progress(base + d, total_bytes, message)

        problems: list[Problem] = []
        try:
            if store_root is not None:
                names, rows, searches = _from_store(path, Path(store_root), inner, cancel, problems)
            else:
                names, rows, searches = _streamed(path, inner, cancel, problems)
        except TraceFileError as exc:
            stats.problems.append(Problem(exc.file, None, exc.reason))
            done += size
            continue
        done += size
        stats.problems.extend(problems)
        if names_from is None:
            stats.feature_names = names
            names_from = path
        elif names != stats.feature_names:
            stats.problems.append(
                Problem(
                    str(_traces.meta_path(path)),
                    None,
                    f"feature names differ from {_traces.meta_path(names_from)} "
                    f"({feature_mismatch(stats.feature_names, names)}); counted, but do not train on both",
                )
            )
        totals.add_file(path, searches)
        stats.files.append(
            {"file": str(path), "bytes": size, "rows": rows, "searches": len(searches)}
        )
    report(progress, total_bytes, total_bytes, "")
    stats.seconds = time.monotonic() - start
    return stats


# ---------------------------------------------------------------------------- the table

# buckets shown together in the table (acorn's trainer validates on 90-99)
BUCKET_GROUP = 10


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


NAME_WIDTH = 24  # a policy name wider than this is cut in the middle, so a row fits 80 columns


def _short_name(name: str) -> str:
    """`model-20260705-consistent-h128-l3` -> `model-20260…tent-h128-l3`: both ends kept."""
    if len(name) <= NAME_WIDTH:
        return name
    head = (NAME_WIDTH - 1) // 2
    return name[:head] + "…" + name[-(NAME_WIDTH - 1 - head):]


def _figure_rows(label: str, items: list[tuple[str, dict]]) -> list[str]:
    head = (label, "rows", "searches", "solved", "rate", "used", "used/rows")
    body = [
        (
            _short_name(name),
            f"{f['rows']:,}",
            f"{f['searches']:,}",
            f"{f['successful']:,}",
            _pct(f["success_rate"]),
            f"{f['used']:,}",
            _pct(f["used_share"]),
        )
        for name, f in items
    ]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return [fmt(head), *(fmt(r) for r in body)]


def _bucket_groups(per_bucket: dict) -> list[tuple[str, dict]]:
    groups: dict[int, dict] = {}
    for key, f in per_bucket.items():
        g = groups.setdefault(int(key) // BUCKET_GROUP, {"rows": 0, "searches": 0, "successful": 0, "used": 0})
        for k in g:
            g[k] += f[k]
    out = []
    for g, f in sorted(groups.items()):
        f["success_rate"] = f["successful"] / f["searches"] if f["searches"] else 0.0
        f["used_share"] = f["used"] / f["rows"] if f["rows"] else 0.0
        out.append((f"{g * BUCKET_GROUP}-{g * BUCKET_GROUP + BUCKET_GROUP - 1}", f))
    return out


def format_trace_stats(d: dict) -> str:
    """`TraceStats.to_dict()` as the table `tactics traces stats` prints and the TUI's Corpus screen shows."""
    names = d["feature_names"]
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    rows = [
        ("traces", f"{d['files']:,} file{'' if d['files'] == 1 else 's'}, {human_size(d['bytes'])} compressed"),
        ("rows", f"{d['rows']:,} activated steps"),
        ("searches", f"{d['searches']:,}  (solved {d['successful']:,}, {_pct(d['success_rate'])})"),
        ("used steps", f"{d['used']:,}  ({_pct(d['used_share'])} of rows; used_in_final_proof)"),
        ("outcomes", "  ".join(f"{k} {v:,}" for k, v in d["outcomes"].items()) or "-"),
        ("features", f"{len(names)}  ({shown})" if names else "-"),
        ("store", d["store"] or "none (streamed)"),
        ("seconds", f"{d['seconds']:.2f}"),
    ]
    width = max(len(k) for k, _ in rows)
    out = [f"{k.ljust(width)}  {v}" for k, v in rows]
    if d["per_policy"]:
        out.append("")
        out.extend(_figure_rows("policy", list(d["per_policy"].items())))
    if d["per_bucket"]:
        out.append("")
        out.extend(_figure_rows("goal_bucket", _bucket_groups(d["per_bucket"])))
    if d["problems"]:
        out.append("")
        out.append(f"problems ({len(d['problems'])}, skipped):")
        for p in d["problems"]:
            where = f"{p['file']}:{p['line']}" if p["line"] is not None else p["file"]
            out.append(f"  {where}: {p['reason']}")
    return "\n".join(out)
