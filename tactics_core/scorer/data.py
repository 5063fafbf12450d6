"""The scorer's training data: rows of acorn's eval traces, split by goal bucket, in batches of
shuffled rows or of whole searches.

Why it looks like this:

* **Split by goal bucket, never by row.** acorn puts every eval goal in one of 100 stable
  buckets and keeps 90-99 for validation; a search's rows all share its bucket, so no search
  (and no goal) is on both sides. `data.train_buckets` / `data.val_buckets` choose them.
* **Batches of shuffled rows** (`data.batches = "rows"`, the default, as acorn's trainer): the
  BCE term learns best from rows of many searches at once (measured: BCE 0.187 vs 0.218 on
  held-out bucket 90). **Or of whole searches** (`"searches"`): the prover only uses the ORDER
  of one search's steps, so the ranking term compares steps of the same search, each search's
  rows together. Either order is a pure function of (seed, epoch), so a resume continues it
  exactly.
* **Negatives subsampled per epoch** (`data.negatives_per_positive`): every step used in a
  final proof is kept; the others are drawn anew each epoch, exactly K of them.
* **Memory bounded by the batch.** The numeric columns stay in the trace store's memory maps
  (`trace_store`); a batch gathers its rows; the standardization is a streamed mean/variance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tactics_core.common.errors import TacticsError
from tactics_core.scorer.buckets import format_buckets, parse_buckets
from tactics_core.scorer.trace_store import TraceColumns

CHUNK_ROWS = 65536  # rows read at a time for statistics and evaluation


@dataclass
class ScorerBatch:
    """Rows of a batch: features [n, F] float32, labels [n] (1 = used in the final proof), and
    the search each row belongs to (global search ids)."""

    x: np.ndarray
    y: np.ndarray
    group: np.ndarray

    @property
    def n_rows(self) -> int:
        return int(len(self.y))


class RowSource:
    """Every trace's rows as one numbering: global row ids, global search ids, the selected
    feature columns."""

    def __init__(self, traces: Sequence[TraceColumns], columns: np.ndarray) -> None:
        self.traces = list(traces)
        self.columns = columns
        self.row_offsets = np.cumsum([0] + [t.rows for t in self.traces]).astype(np.int64)
        self.search_offsets = np.cumsum([0] + [len(t.searches) for t in self.traces]).astype(np.int64)
        self.n_rows = int(self.row_offsets[-1])
        self.n_searches = int(self.search_offsets[-1])
        self.search_bucket = np.concatenate([t.searches.bucket.astype(np.int64) for t in self.traces]) if self.traces else np.zeros(0, np.int64)
        self.search_first = np.concatenate(
            [t.searches.first_row.astype(np.int64) + off for t, off in zip(self.traces, self.row_offsets)]
        ) if self.traces else np.zeros(0, np.int64)
        self.search_rows = np.concatenate([t.searches.rows.astype(np.int64) for t in self.traces]) if self.traces else np.zeros(0, np.int64)
        self.search_used = np.concatenate([t.searches.used_rows.astype(np.int64) for t in self.traces]) if self.traces else np.zeros(0, np.int64)

    def rows_of(self, searches: np.ndarray) -> np.ndarray:
        """The global row ids of these searches, search by search."""
        if len(searches) == 0:
            return np.zeros(0, np.int64)
        starts, counts = self.search_first[searches], self.search_rows[searches]
        total = int(counts.sum())
        base = np.repeat(starts - np.cumsum(np.r_[0, counts[:-1]]), counts)
        return base + np.arange(total, dtype=np.int64)

    def labels(self, rows: np.ndarray) -> np.ndarray:
        """`used_in_final_proof` of these global row ids (no feature read)."""
        out = np.empty(len(rows), np.uint8)
        which = np.searchsorted(self.row_offsets, rows, side="right") - 1
        for f in np.unique(which):
            sel = which == f
            out[sel] = self.traces[f].used[rows[sel] - self.row_offsets[f]]
        return out

    def gather(self, rows: np.ndarray) -> ScorerBatch:
        """The batch of these global row ids (any order; returned in that order)."""
        x = np.empty((len(rows), len(self.columns)), np.float32)
        y = np.empty(len(rows), np.float32)
        g = np.empty(len(rows), np.int64)
        which = np.searchsorted(self.row_offsets, rows, side="right") - 1
        for f in np.unique(which):
            sel = np.flatnonzero(which == f)
            local = rows[sel] - self.row_offsets[f]
            order = np.argsort(local, kind="stable")  # memmaps read best in order
            t = self.traces[f]
            lo = local[order]
            x[sel[order]] = t.features[lo][:, self.columns]
            y[sel[order]] = t.used[lo]
            g[sel[order]] = t.search[lo].astype(np.int64) + self.search_offsets[f]
        return ScorerBatch(x, y, g)


def searches_within(source: RowSource, searches: np.ndarray, max_rows: int, seed: int, salt: int) -> np.ndarray:
    """A stable sample of whole searches holding at most `max_rows` rows (all when 0 or enough):
    the row budget that bounds memory however large the traces grow."""
    if not max_rows or int(source.search_rows[searches].sum()) <= max_rows:
        return searches
    order = np.random.default_rng([int(seed), salt]).permutation(len(searches))
    counts = source.search_rows[searches[order]]
    take = order[: max(1, int(np.searchsorted(np.cumsum(counts), max_rows, side="right")))]
    return np.sort(searches[take])


class TrainRows:
    """The training split (the loop's `data.Split` for a scorer): its rows shuffled per epoch
    (`batches = "rows"`, the preset's default) or whole searches in a shuffled order
    (`"searches"`), every used step kept, negatives subsampled to `negatives_per_positive`."""

    padding_fraction = 0.0
    n_windowed_files = 0

    def __init__(self, source: RowSource, searches: np.ndarray, seed: int, negatives_per_positive: float,
                 batches: str = "rows") -> None:
        self.source, self.searches, self.seed = source, searches, int(seed)
        self.batches = batches
        rows = source.rows_of(searches)
        self._rows = rows
        used = source.labels(rows)
        self.positives = int(used.sum())
        self.negatives = int(len(rows) - self.positives)
        if negatives_per_positive > 0:
            self.keep_negatives = min(self.negatives, int(round(negatives_per_positive * self.positives)))
        else:
            self.keep_negatives = self.negatives
        self._pos_mask = used.astype(bool)
        self.n_rows = self.positives + self.keep_negatives

    def n_batches(self, batch_size: int) -> int:
        return max(1, -(-self.n_rows // int(batch_size)))

    def epoch_order(self, epoch: int, batch_size: int) -> np.ndarray:
        """This epoch's row ids: with batches = "searches", searches in a shuffled order, each
        search's kept rows together; with "rows", the kept rows shuffled one by one."""
        rng = np.random.default_rng([self.seed, int(epoch), 20260715])
        keep = self._pos_mask.copy()
        if self.keep_negatives < self.negatives:
            neg = np.flatnonzero(~self._pos_mask)
            keep[rng.choice(neg, self.keep_negatives, replace=False)] = True
        else:
            keep[:] = True
        rows = self._rows[keep]
        if self.batches == "rows":
            return rows[rng.permutation(len(rows))]
        rank = np.empty(self.source.n_searches, np.int64)
        rank[self.searches] = rng.permutation(len(self.searches))
        search_of = np.searchsorted(self.source.search_first, rows, side="right") - 1
        return rows[np.argsort(rank[search_of], kind="stable")]

    def batch(self, row_ids: Sequence[int]) -> ScorerBatch:
        return self.source.gather(np.asarray(row_ids, dtype=np.int64))


class ValRows:
    """The validation split: whole searches of the validation buckets (a stable sample of whole
    searches when `max_rows` bounds it), scored in chunks."""

    padding_fraction = 0.0
    n_windowed_files = 0

    def __init__(self, source: RowSource, searches: np.ndarray, max_rows: int, seed: int) -> None:
        searches = searches_within(source, searches, max_rows, seed, 90)
        self.source, self.searches = source, searches
        self.rows = source.rows_of(searches)
        self.n_rows = int(len(self.rows))

    def n_batches(self, batch_size: int) -> int:
        return max(1, -(-self.n_rows // int(batch_size)))

    def chunks(self, size: int = CHUNK_ROWS):
        for start in range(0, self.n_rows, size):
            yield self.source.gather(self.rows[start : start + size])


@dataclass
class ScorerData:
    """What a scorer run trains on (the loop's `KindData`)."""

    source: RowSource
    train: TrainRows
    val: ValRows
    feature_names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    traces: list[dict[str, Any]] = field(default_factory=list)
    train_buckets: str = ""
    val_buckets: str = ""
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "traces": len(self.traces),
            "rows": self.source.n_rows,
            "searches": self.source.n_searches,
            "train_searches": int(len(self.train.searches)),
            "val_searches": int(len(self.val.searches)),
            "train_rows": self.train.n_rows,
            "train_positives": self.train.positives,
            "train_negatives": self.train.negatives,
            "val_rows": self.val.n_rows,
            "features": len(self.feature_names),
            "train_buckets": self.train_buckets,
            "val_buckets": self.val_buckets,
            "problems": len(self.problems),
        }


def select_columns(catalog: Sequence[str], wanted: Sequence[str], meta_file: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Column indices of the preset's features (all of the catalog when it names none)."""
    if not wanted:
        return np.arange(len(catalog)), tuple(catalog)
    index = {name: i for i, name in enumerate(catalog)}
    missing = [name for name in wanted if name not in index]
    if missing:
        raise TacticsError(
            f"{meta_file}: the traces have no feature {missing[0]!r} (model.features); "
            f"their {len(catalog)} features are listed in that file"
        )
    return np.array([index[n] for n in wanted], dtype=np.int64), tuple(wanted)


def standardization(source: RowSource, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each selected feature over these rows, streamed."""
    width = len(source.columns)
    total = np.zeros(width, np.float64)
    sq = np.zeros(width, np.float64)
    for start in range(0, len(rows), CHUNK_ROWS):
        x = source.gather(rows[start : start + CHUNK_ROWS]).x.astype(np.float64)
        total += x.sum(0)
        sq += (x * x).sum(0)
    n = max(1, len(rows))
    mean = total / n
    var = np.maximum(sq / n - mean * mean, 0.0)
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


def build_data(traces: Sequence[TraceColumns], features: Sequence[str], train_buckets: str, val_buckets: str,
               negatives_per_positive: float, max_val_rows: int, seed: int, problems: Sequence[str] = (),
               max_train_rows: int = 0, batches: str = "rows") -> ScorerData:
    """The splits of these traces (all with one feature catalog, `trace_store.load_traces`)."""
    if not traces:
        raise TacticsError("no trace to train on: record some with `tactics traces collect`")
    columns, names = select_columns(traces[0].feature_names, features, f"{traces[0].source.name[:-len('.jsonl.zst')]}.meta.json")
    source = RowSource(traces, columns)
    train_set, val_set = set(parse_buckets(train_buckets)), set(parse_buckets(val_buckets))
    in_train = np.isin(source.search_bucket, list(train_set))
    in_val = np.isin(source.search_bucket, list(val_set))
    train_searches, val_searches = np.flatnonzero(in_train), np.flatnonzero(in_val)
    where = ", ".join(sorted({t.source.name for t in traces}))
    if len(train_searches) == 0:
        raise TacticsError(f"{where}: no search in the training buckets {train_buckets} (data.train_buckets); "
                           f"these traces hold buckets {format_buckets(source.search_bucket) or 'none'}")
    if len(val_searches) == 0:
        raise TacticsError(f"{where}: no search in the validation buckets {val_buckets} (data.val_buckets); "
                           f"these traces hold buckets {format_buckets(source.search_bucket) or 'none'}: "
                           "collect one (`tactics traces collect --buckets 90`) or set data.val_buckets")
    train = TrainRows(source, searches_within(source, train_searches, max_train_rows, seed, 0), seed, negatives_per_positive,
                      batches)
    if train.positives == 0:
        raise TacticsError(f"{where}: no training step was used in a final proof (no solved search in buckets {train_buckets})")
    val = ValRows(source, val_searches, max_val_rows, seed)
    mean, scale = standardization(source, train._rows)
    return ScorerData(
        source=source, train=train, val=val, feature_names=names, mean=mean, scale=scale,
        traces=[{"file": str(t.source), "sha256": t.sha256, "rows": t.rows} for t in traces],
        train_buckets=format_buckets(train_set), val_buckets=format_buckets(val_set), problems=list(problems),
    )


def trace_store_root(traces: Path) -> Path:
    """Where the column stores of a folder of traces live: its `.store` (what `tactics traces
    stats` reads too), or beside a single trace file."""
    traces = Path(traces)
    return (traces if traces.is_dir() else traces.parent) / ".store"
