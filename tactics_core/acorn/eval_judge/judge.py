"""The judge (`judge`): a scorer export against acorn's baseline policies, interleaved per bucket; its report and table."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from tactics_core.acorn.generative_judge import AcornSetup
from tactics_core.scorer.buckets import format_buckets
from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn, check, report

from .setup import BASELINES, DEFAULT_TIMEOUT
from .exports import check_policy, check_scorer_export, feature_catalog, policy_label, scorer_onnx
from .run import EvalRun, FailedSearch, run_eval


@dataclass
class BucketFigures:
    """One policy's figures on one bucket (or on all buckets at once when not run per bucket)."""

    searches: int
    succeeded: int
    avg_search_ms: float | None
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    summary: list[str] = field(default_factory=list)
    failed: list[FailedSearch] = field(default_factory=list)  # the searches acorn named as failed (goal, reason, time)

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.searches if self.searches else None

    def to_dict(self) -> dict:
        return {"searches": self.searches, "succeeded": self.succeeded, "success_rate": self.success_rate,
                "avg_search_ms": self.avg_search_ms, "failures": dict(self.failures),
                "seconds": round(self.seconds, 3), "summary": list(self.summary),
                "failed": [f.to_dict() for f in self.failed]}


@dataclass
class PolicyFigures:
    """One policy's results over the judged buckets."""

    label: str
    policy: str
    model: str | None = None
    buckets: dict[int, BucketFigures] = field(default_factory=dict)  # per bucket; {} when run in one process
    total: BucketFigures | None = None  # the one process over every bucket, when not per bucket
    diff_to_baseline: dict[int, float] = field(default_factory=dict)  # per bucket: rate - first baseline's

    def _parts(self) -> list[BucketFigures]:
        return [self.total] if self.total is not None else list(self.buckets.values())

    @property
    def searches(self) -> int:
        return sum(b.searches for b in self._parts())

    @property
    def succeeded(self) -> int:
        return sum(b.succeeded for b in self._parts())

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.searches if self.searches else None

    @property
    def avg_search_ms(self) -> float | None:
        timed = [(b.avg_search_ms, b.searches) for b in self._parts() if b.avg_search_ms is not None and b.searches]
        n = sum(s for _, s in timed)
        return sum(ms * s for ms, s in timed) / n if n else None

    @property
    def failures(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for b in self._parts():
            for kind, count in b.failures.items():
                out[kind] = out.get(kind, 0) + count
        return out

    @property
    def seconds(self) -> float:
        return sum(b.seconds for b in self._parts())

    def rate_spread(self) -> tuple[float, float] | None:
        """(min, max) of the per-bucket success rates (buckets with searches)."""
        rates = [b.success_rate for b in self.buckets.values() if b.success_rate is not None]
        return (min(rates), max(rates)) if rates else None

    def diff_spread(self) -> tuple[float, float, float] | None:
        """(min, mean, max) of the per-bucket difference of success rate to the first baseline."""
        diffs = list(self.diff_to_baseline.values())
        return (min(diffs), sum(diffs) / len(diffs), max(diffs)) if diffs else None

    def summary(self) -> dict[str, list[str]]:
        """acorn's summary lines, per bucket (key "all" when run in one process)."""
        if self.total is not None:
            return {"all": list(self.total.summary)}
        return {str(b): list(f.summary) for b, f in sorted(self.buckets.items())}

    def to_dict(self) -> dict:
        spread = self.rate_spread()
        diff = self.diff_spread()
        return {
            "label": self.label, "policy": self.policy, "model": self.model, "searches": self.searches,
            "succeeded": self.succeeded, "success_rate": self.success_rate, "avg_search_ms": self.avg_search_ms,
            "failures": self.failures, "seconds": round(self.seconds, 3),
            "bucket_rate_min": spread[0] if spread else None, "bucket_rate_max": spread[1] if spread else None,
            "diff_to_baseline": {str(b): d for b, d in sorted(self.diff_to_baseline.items())},
            "diff_min": diff[0] if diff else None, "diff_mean": diff[1] if diff else None,
            "diff_max": diff[2] if diff else None,
            "buckets": {str(b): f.to_dict() for b, f in sorted(self.buckets.items())},
            "total": self.total.to_dict() if self.total is not None else None,
            "summary": self.summary(),
        }


@dataclass
class JudgeReport:
    acorn: str
    acornlib: str
    buckets: list[int]
    timeout: float
    jobs: int | None
    target: str | None
    per_bucket: bool
    policies: list[PolicyFigures] = field(default_factory=list)
    baseline: str | None = None  # label of the first baseline (the differences' reference)
    seconds: float = 0.0

    def policy(self, label: str) -> PolicyFigures | None:
        return next((p for p in self.policies if p.label == label), None)

    def to_dict(self) -> dict:
        return {"acorn": self.acorn, "acornlib": self.acornlib, "buckets": format_buckets(self.buckets),
                "timeout": self.timeout, "jobs": self.jobs, "target": self.target, "per_bucket": self.per_bucket,
                "baseline": self.baseline, "seconds": round(self.seconds, 3),
                "policies": [p.to_dict() for p in self.policies]}


def judge(
    setup: AcornSetup,
    buckets: Sequence[int],
    model: str | os.PathLike | Sequence[str | os.PathLike] | None,
    baselines: Sequence[str] = BASELINES,
    timeout: float = DEFAULT_TIMEOUT,
    jobs: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    per_bucket: bool = True,
    target: str | None = None,
) -> JudgeReport:
    """Compare a scorer export (`--policy model --model X.onnx`) with acorn's baseline policies.

    One acorn process per (policy, bucket), run one after another with the policies interleaved
    per bucket (bucket 91: model, default, depth-first; then bucket 92 ...), so a change of
    machine load hits every policy alike. `model` None judges the baselines alone;
    `per_bucket` False runs one process per policy over all buckets (no spread then).
    """
    start = time.monotonic()
    chosen = sorted(set(int(b) for b in buckets))
    if not chosen:
        raise TacticsError("no bucket to judge on; give buckets such as 90-99 (acorn's validation buckets)")
    runs: list[tuple[str, Path | None]] = []
    models = [] if model is None else [model] if isinstance(model, (str, os.PathLike)) else list(model)
    for one in models:  # several exports judged side by side (e.g. two trainers' scorers)
        model_path = scorer_onnx(one)
        check_scorer_export(model_path, feature_catalog(setup))
        runs.append(("model", model_path))
    for policy in baselines:
        check_policy(policy, None)
        if policy not in [p for p, _ in runs]:
            runs.append((policy, None))
    if not runs:
        raise TacticsError("nothing to judge: give a scorer export or at least one baseline policy")
    figures = [PolicyFigures(policy_label(p, m), p, str(m) if m else None) for p, m in runs]
    seen_labels: set[str] = set()
    for i, fig in enumerate(figures):  # a scorer named like a baseline or another scorer
        if fig.label in seen_labels or (fig.model and fig.label in [p for p, _ in runs if p != "model"]):
            fig.label = f"{fig.label}-{i}"
        seen_labels.add(fig.label)
    groups: list[list[int] | None] = [[b] for b in chosen] if per_bucket else [chosen]
    total = len(groups) * len(runs)
    done = 0
    for group in groups:
        for fig, (policy, path) in zip(figures, runs):
            check(cancel)
            where = f"bucket {group[0]}" if per_bucket else f"buckets {format_buckets(chosen)}"
            report(progress, done, total, f"{where}: {fig.label}")

            def inner(failures: int, _total: int | None, message: str, where=where, fig=fig, done=done) -> None:
                report(progress, done, total, f"{where}: {fig.label}, {message}")

            request = EvalRun(setup, group, policy, path, timeout, jobs, None, None, target)
            result = run_eval(request, inner, cancel)
            entry = BucketFigures(result.searches, result.succeeded, result.avg_search_ms, dict(result.failures),
                                  result.seconds, list(result.summary), list(result.failed))
            if per_bucket:
                fig.buckets[group[0]] = entry
            else:
                fig.total = entry
            done += 1
            report(progress, done, total, f"{where}: {fig.label} {result.succeeded}/{result.searches}")
    baseline_label: str | None = None
    if baselines:
        reference = next(f for f in figures if f.policy == baselines[0] and f.model is None)
        baseline_label = reference.label
        for fig in figures:
            if fig is reference:
                continue
            for b, entry in fig.buckets.items():
                ref = reference.buckets.get(b)
                if ref is not None and entry.success_rate is not None and ref.success_rate is not None:
                    fig.diff_to_baseline[b] = entry.success_rate - ref.success_rate
    return JudgeReport(
        acorn=str(setup.binary), acornlib=str(setup.acornlib), buckets=chosen, timeout=timeout, jobs=jobs,
        target=target, per_bucket=per_bucket, policies=figures, baseline=baseline_label,
        seconds=time.monotonic() - start,
    )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def report_text(report: JudgeReport) -> str:
    """The judge's table: per policy totals and spread, then the success rate per bucket."""
    where = f" ({report.target})" if report.target else ""
    lines = [
        f"acorn eval{where} on buckets {format_buckets(report.buckets)}, {report.timeout:g} s per search: "
        f"{report.acorn} on {report.acornlib}",
    ]
    ref = report.baseline
    head = f"{'policy':18s} {'searches':>8s} {'proved':>6s} {'rate':>6s} {'avg ms':>7s} {'per bucket':>11s}"
    if ref:
        head += f"  vs {ref[:12]}"
    lines += [head, "-" * len(head)]
    for p in report.policies:
        spread = p.rate_spread()
        spread_text = f"{100 * spread[0]:.1f}-{100 * spread[1]:.1f}%" if spread else "-"  # the gaps are tenths
        avg = p.avg_search_ms
        row = (f"{p.label[:18]:18s} {p.searches:8d} {p.succeeded:6d} {_pct(p.success_rate):>6s} "
               f"{'-' if avg is None else f'{avg:.1f}':>7s} {spread_text:>11s}")
        diff = p.diff_spread()
        if ref and diff is not None:  # mean of the per-bucket differences, then their range
            row += f"  {100 * diff[1]:+.1f} [{100 * diff[0]:+.1f},{100 * diff[2]:+.1f}]"
        lines.append(row)
    if report.per_bucket and len(report.buckets) > 1:
        cols = [p.label[:12] for p in report.policies]
        lines.append("")
        lines.append("success rate per bucket")
        lines.append(f"{'bucket':>6s}" + "".join(f" {c:>12s}" for c in cols))
        for b in report.buckets:
            cells = ""
            for p in report.policies:
                f = p.buckets.get(b)
                cells += f" {(_pct(f.success_rate) + f' ({f.searches})') if f else '-':>12s}"
            lines.append(f"{b:6d}{cells}")
    if ref and any(p.diff_to_baseline for p in report.policies):
        lines.append(f"points: success rate minus {ref}'s, per bucket: the mean [min,max]")
    for p in report.policies:
        if p.failures:
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(p.failures.items()))
            lines.append(f"{p.label}: failures {kinds}")
    lines.append(f"time {report.seconds:.0f} s, one acorn process per policy and bucket, run one after another"
                 if report.per_bucket else f"time {report.seconds:.0f} s, one acorn process per policy")
    return "\n".join(lines)

