"""The scorer's figures, from scores and labels (numpy only, so the bench can score an ONNX
file the same way the trainer scores its model).

* `val_loss`: mean binary cross-entropy of the probabilities against `used_in_final_proof`
  (unweighted: the figure two trainers can be compared on, whatever weighting each trained with).
* `auc`: ROC AUC over all rows (ties count half).
* What matters to the prover is not a row's probability but the ORDER within one search:
  acorn activates the best-scored passive step first. For every step used in the final proof
  of a successful search: `used_rank`, its rank among that search's activated steps, as a share
  (0 = scored above every other step, 1 = below all), averaged; `top10_hit`, the share of used
  steps scored within the top 10% of their search. Searches with no used step (failed ones)
  have no order to judge and are left out of both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

EPS = 1e-7
TOP_SHARE = 0.10


@dataclass
class ScorerFigures:
    rows: int
    positives: int
    val_loss: float
    auc: float
    used_rank: float
    top10_hit: float
    searches_ranked: int

    def to_dict(self) -> dict:
        return asdict(self)


def bce(prob: np.ndarray, used: np.ndarray) -> float:
    p = np.clip(prob.astype(np.float64), EPS, 1 - EPS)
    y = used.astype(np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))) if len(p) else float("nan")


def auc(score: np.ndarray, used: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula (average ranks for ties), vectorized."""
    y = used.astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts  # 0-based position of each distinct score's first row
    ranks = (starts + (counts + 1) / 2.0)[inverse]  # a run of ties takes its average 1-based rank
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def search_ranks(score: np.ndarray, used: np.ndarray, search: np.ndarray) -> tuple[float, float, int]:
    """(mean used_rank, top10_hit, searches ranked) over searches that have a used step."""
    if len(score) == 0:
        return float("nan"), float("nan"), 0
    order = np.lexsort((-score, search))  # by search, best score first
    s_sorted, u_sorted = search[order], used[order].astype(bool)
    neg_sorted = -score[order]  # ascending within each search
    starts = np.r_[0, np.flatnonzero(np.diff(s_sorted)) + 1]
    ends = np.r_[starts[1:], len(s_sorted)]
    ranks: list[np.ndarray] = []
    hits = 0
    total = 0
    searches = 0
    for a, b in zip(starts, ends):
        u = u_sorted[a:b]
        if not u.any():
            continue
        n = b - a
        sc = neg_sorted[a:b]
        # ties: a used step tied with others takes the middle of the tie
        pos = np.flatnonzero(u)
        lo = np.searchsorted(sc, sc[pos], side="left")
        hi = np.searchsorted(sc, sc[pos], side="right")
        mid = (lo + hi - 1) / 2.0
        share = mid / max(1, n - 1)
        ranks.append(share)
        hits += int((mid < max(1.0, np.ceil(TOP_SHARE * n))).sum())
        total += len(pos)
        searches += 1
    if not ranks:
        return float("nan"), float("nan"), 0
    return float(np.concatenate(ranks).mean()), hits / total, searches


def figures(prob: np.ndarray, used: np.ndarray, search: np.ndarray) -> ScorerFigures:
    """Every figure of one set of rows (probabilities in [0, 1])."""
    rank, hit, n = search_ranks(prob, used, search)
    return ScorerFigures(
        rows=int(len(prob)), positives=int(used.sum()), val_loss=bce(prob, used), auc=auc(prob, used),
        used_rank=rank, top10_hit=hit, searches_ranked=n,
    )
