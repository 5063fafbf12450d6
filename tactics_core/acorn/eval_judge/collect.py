"""Traces collected one bucket at a time (`collect_traces`): one acorn per bucket, atomic, resumable."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tactics_core.acorn.generative_judge import AcornSetup
from tactics_core.common.atomic import remove_stale_partials
from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn, check, report

from .setup import (
    DEFAULT_POLICY, DEFAULT_TIMEOUT, EVAL_COMMIT, LOG_SUFFIX, META_SUFFIX, SUMMARY_SUFFIX,
    TRACE_SUFFIX, TRACES_DIR,
)
from .exports import check_policy, check_scorer_export, feature_catalog, policy_label, safe_label, scorer_onnx
from .run import EvalRun, run_eval

@dataclass
class CollectedBucket:
    """One bucket's trace in the collection folder, and what acorn said while writing it."""

    bucket: int
    label: str
    trace: Path
    meta: Path
    log: Path
    summary_path: Path
    summary: dict  # EvalResult.to_dict() plus the request, as in summary_path
    resumed: bool  # already complete before this call: not run again

    def to_dict(self) -> dict:
        return {"bucket": self.bucket, "label": self.label, "trace": str(self.trace), "meta": str(self.meta),
                "log": str(self.log), "summary_path": str(self.summary_path), "resumed": self.resumed,
                "searches": self.summary.get("searches"), "succeeded": self.summary.get("succeeded")}


def bucket_stem(label: str, bucket: int) -> str:
    return f"{label}-b{bucket:02d}"


def bucket_files(out_dir: Path, label: str, bucket: int) -> dict[str, Path]:
    stem = bucket_stem(label, bucket)
    return {"trace": out_dir / (stem + TRACE_SUFFIX), "meta": out_dir / (stem + META_SUFFIX),
            "log": out_dir / (stem + LOG_SUFFIX), "summary": out_dir / (stem + SUMMARY_SUFFIX)}


def _request_record(request: EvalRun) -> dict:
    return {"policy": request.policy, "label": request.label, "model": str(request.model) if request.model else None,
            "timeout": request.timeout, "target": request.target, "acorn": str(request.setup.binary),
            "acornlib": str(request.setup.acornlib)}


def _read_complete(files: dict[str, Path]) -> dict | None:
    """The summary of a finished bucket (all four files present, the summary written last), else None."""
    if not all(p.is_file() for p in files.values()):
        return None
    try:
        data = json.loads(files["summary"].read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def collect_traces(
    setup: AcornSetup,
    buckets: Sequence[int],
    out_dir: str | os.PathLike = TRACES_DIR,
    policy: str = DEFAULT_POLICY,
    model: str | os.PathLike | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    jobs: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    label: str | None = None,
    target: str | None = None,
) -> list[CollectedBucket]:
    """Write acorn's activation traces, one acorn process per bucket, resumably.

    Each bucket gives `out_dir/LABEL-bNN.jsonl.zst`, its `.meta.json`, acorn's output `.log`
    and the parsed `.summary.json`. acorn writes into a hidden `.LABEL-bNN.*.partial` folder;
    the files are renamed into place only after acorn exited normally (the summary last), so a
    killed collection keeps its finished buckets and never leaves a torn trace under a final
    name. A bucket already complete is skipped; one collected with another policy or timeout
    is refused (collect into another folder).
    """
    model_path = scorer_onnx(model) if model is not None else None
    if model_path is not None and policy == DEFAULT_POLICY:
        policy = "model"
    check_policy(policy, model_path)
    if model_path is not None:
        check_scorer_export(model_path, feature_catalog(setup))
    label = safe_label(label) if label else policy_label(policy, model_path)
    chosen = sorted(set(int(b) for b in buckets))
    if not chosen:
        raise TacticsError("no bucket to collect; give buckets such as 0-9")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(out)
    collected: list[CollectedBucket] = []
    failed_total = 0
    n = len(chosen)
    for k, bucket in enumerate(chosen):
        check(cancel)
        files = bucket_files(out, label, bucket)
        request = EvalRun(setup, [bucket], policy, model_path, timeout, jobs, None, label, target)
        done = _read_complete(files)
        if done is not None:
            _check_same_request(files["summary"], done.get("request", {}), _request_record(request))
            collected.append(_collected(bucket, label, files, done, resumed=True))
            failed_total += len(done.get("failed", []))
            report(progress, k + 1, n, f"bucket {bucket} ({k + 1}/{n}) already collected")
            continue
        report(progress, k, n, f"bucket {bucket} ({k + 1}/{n}), {failed_total} failed searches so far")

        def inner(failures: int, _total: int | None, message: str, k=k, bucket=bucket) -> None:
            report(progress, k, n, f"bucket {bucket} ({k + 1}/{n}): {message}; {failed_total + failures} failed in all")

        summary = _collect_one(request, files, inner, cancel)
        failed_total += len(summary.get("failed", []))
        collected.append(_collected(bucket, label, files, summary, resumed=False))
        report(progress, k + 1, n, f"bucket {bucket} done ({k + 1}/{n}), {failed_total} failed searches so far")
    return collected


def _check_same_request(path: Path, old: dict, new: dict) -> None:
    for key in ("policy", "model", "timeout", "target"):
        if key in old and old.get(key) != new.get(key):
            raise TacticsError(
                f"{path} was collected with {key} {old.get(key)!r}, not {new.get(key)!r}; collect into another "
                f"folder (--out) or delete that bucket's files"
            )


def _collected(bucket: int, label: str, files: dict[str, Path], summary: dict, resumed: bool) -> CollectedBucket:
    return CollectedBucket(bucket, label, files["trace"], files["meta"], files["log"], files["summary"], summary, resumed)


def _collect_one(request: EvalRun, files: dict[str, Path], progress: ProgressFn, cancel: CancelToken | None) -> dict:
    """Run acorn for one bucket into a locked temp folder; move its files into place after a normal exit."""
    out = files["trace"].parent
    stem = files["trace"].name[: -len(TRACE_SUFFIX)]
    tmp = Path(tempfile.mkdtemp(prefix=f".{stem}.", suffix=".partial", dir=out))
    fd = os.open(tmp, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # remove_stale_partials spares a live collector's folder
        staged = {key: tmp / path.name for key, path in files.items()}
        request.trace_out = staged["trace"]
        with open(staged["log"], "w", encoding="utf-8") as log:
            def write(line: str) -> None:
                log.write(line + "\n")
                log.flush()

            result = run_eval(request, progress, cancel, on_line=write)
        for key in ("trace", "meta"):
            if not staged[key].is_file():
                raise TacticsError(
                    f"acorn exited normally but wrote no {staged[key].name} for bucket {request.buckets}; "
                    f"is {request.setup.binary} acorn {EVAL_COMMIT}?"
                )
        summary = {**result.to_dict(), "bucket": request.buckets[0] if request.buckets else None,
                   "request": _request_record(request)}
        staged["summary"].write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        for path in staged.values():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        for key in ("trace", "meta", "log", "summary"):  # the summary last: it marks the bucket complete
            os.replace(staged[key], files[key])
        with contextlib.suppress(OSError):
            dfd = os.open(out, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        return summary
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        os.close(fd)
