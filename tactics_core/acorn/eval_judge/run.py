"""One `acorn eval`: the request (`EvalRun`), the process (progress, cancel, kill), its output parsed (`EvalResult`)."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from tactics_core.acorn.generative_judge import AcornSetup
from tactics_core.scorer.buckets import format_buckets
from tactics_core.common.errors import Cancelled, TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn, check, report

from .setup import (
    DEFAULT_POLICY, DEFAULT_TIMEOUT, ENV_EVAL_BINARY, EVAL_ACORNLIB_COMMIT, EVAL_COMMIT,
    EVAL_RELEASE, KILL_GRACE, NO_LIBRARY, first_line, library_message,
)
from .exports import check_scorer_export, feature_catalog

_FAILED = re.compile(
    r"^(?P<file>.+?), line (?P<line>\d+): (?P<goal>.*) could not be proved(?: with skip=(?P<skip>\d+))? "
    r"\((?P<reason>timeout|exhaustion|shallow exhaustion|shallow explosion|hit activation cap)"
    r"(?: after (?P<secs>[0-9.]+)s)?\)$"
)
_GOAL_LINE = re.compile(r"^(?P<file>.+?\.ac), line (?P<line>\d+): (?P<message>.*)$")
_VERIFYING = re.compile(r"^verifying (?P<modules>\d+) modules? with (?P<threads>\d+) threads?\.\.\.$")
_COUNTS = {  # summary line -> EvalResult.counts key (src/builder.rs info_lines)
    re.compile(r"^(\d+) benchmark proofs with eligible cached proofs$"): "eligible",
    re.compile(r"^(\d+) benchmark proofs have empty cached proofs \(omitted for skip=0\)$"): "empty",
    re.compile(r"^(\d+) benchmark goals matched current source$"): "matched",
    re.compile(r"^(\d+) benchmark proofs unmatched by current source$"): "unmatched",
    re.compile(r"^(\d+) current goals skipped without eligible cached proofs$"): "uncertified",
    re.compile(r"^(\d+) current goals skipped by eval sample$"): "sampled_out",
    re.compile(r"^cert generation failures: (\d+)$"): "cert_failures",
    re.compile(r"^(\d+) searches found inconsistent assumptions$"): "inconsistent",
}
_SEARCHES = re.compile(r"^(\d+) searches performed$")
_RATE = re.compile(r"^([0-9.]+)% search success rate$")
_AVG = re.compile(r"^([0-9.]+) ms average search time$")
_FAILURES = re.compile(r"^search failures: (?P<list>.+)$")
_SKIP = re.compile(
    r"^skip=(?P<skip>\d+): (?P<ok>\d+)/(?P<n>\d+) searches succeeded"
    r"(?:, (?P<inel>\d+) ineligible)?(?:, (?P<ms>[0-9.]+) ms average)?(?:, (?P<inc>\d+) inconsistent)?$"
)
_SKIP_FAILURES = re.compile(r"^skip=(?P<skip>\d+) search failures: (?P<list>.+)$")
_TOTAL = re.compile(r"^(?P<ok>\d+)/(?P<n>\d+) benchmark searches succeeded$")
_STATUS = {
    "Evaluation succeeded.": "succeeded",
    "Evaluation completed with failed searches.": "failed searches",
    "Build failed.": "build failed",
}





@dataclass
class EvalRun:
    """One `acorn eval` to run."""

    setup: AcornSetup
    buckets: Sequence[int] | None = None  # None: every goal of the target
    policy: str = DEFAULT_POLICY
    model: Path | None = None  # the scorer's .onnx for a model policy
    timeout: float = DEFAULT_TIMEOUT
    jobs: int | None = None  # acorn's threads; None: acorn's default (every core)
    trace_out: Path | None = None
    label: str | None = None  # --policy-label (written into trace metadata)
    target: str | None = None  # a module, file or MODULE:LINE; None: the whole library

    def command(self) -> list[str]:
        cmd = [str(self.setup.binary), "--lib", str(self.setup.acornlib), "eval"]
        if self.target:
            cmd.append(self.target)
        cmd += ["--timeout", f"{self.timeout:g}", "--policy", self.policy]
        if self.model is not None:  # absolute: acorn runs in the acornlib folder
            cmd += ["--model", str(Path(self.model).absolute())]
        if self.buckets is not None:
            cmd += ["--eval-sample", format_buckets(self.buckets)]
        if self.jobs is not None:
            cmd += ["--jobs", str(self.jobs)]
        if self.label:
            cmd += ["--policy-label", self.label]
        if self.trace_out is not None:
            cmd += ["--trace-out", str(Path(self.trace_out).absolute())]
        return cmd


@dataclass
class FailedSearch:
    """One search acorn reported as failed: `FILE, line N: GOAL could not be proved with skip=S (REASON after Xs)`."""

    file: str
    line: int
    goal: str
    skip: int | None
    reason: str  # timeout | exhaustion | shallow exhaustion | shallow explosion | hit activation cap
    seconds: float | None

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "goal": self.goal, "skip": self.skip,
                "reason": self.reason, "seconds": self.seconds}


@dataclass
class SkipFigures:
    """acorn's per-skip line (`skip=1: 6/10 searches succeeded, 29 ineligible, 424.6 ms average`)."""

    skip: int
    searches: int
    succeeded: int
    ineligible: int = 0
    avg_search_ms: float | None = None
    inconsistent: int = 0
    failures: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"skip": self.skip, "searches": self.searches, "succeeded": self.succeeded,
                "ineligible": self.ineligible, "avg_search_ms": self.avg_search_ms,
                "inconsistent": self.inconsistent, "failures": dict(self.failures)}


@dataclass
class EvalResult:
    """What one `acorn eval` said: its summary figures, its failed searches and its own summary lines."""

    exit_code: int = 0
    seconds: float = 0.0  # wall time of the process
    searches: int = 0
    succeeded: int = 0
    avg_search_ms: float | None = None
    failures: dict[str, int] = field(default_factory=dict)  # reason -> count ("timeout": 6)
    per_skip: dict[int, SkipFigures] = field(default_factory=dict)
    failed: list[FailedSearch] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # eligible, matched, sampled_out, ...
    status: str | None = None  # succeeded | failed searches | build failed
    summary: list[str] = field(default_factory=list)  # acorn's summary lines, verbatim
    warnings: list[str] = field(default_factory=list)  # other goal lines (e.g. certificate failures)
    modules: int | None = None
    threads: int | None = None
    command: list[str] = field(default_factory=list)

    @property
    def success_rate(self) -> float | None:
        """Succeeded / searches (0..1); None when acorn searched nothing."""
        return self.succeeded / self.searches if self.searches else None

    @property
    def complete(self) -> bool:
        """acorn printed its summary (the `X/Y benchmark searches succeeded` line)."""
        return self.status is not None or any(_TOTAL.match(s) for s in self.summary)

    def to_dict(self) -> dict:
        return {
            "exit_code": self.exit_code, "seconds": round(self.seconds, 3), "searches": self.searches,
            "succeeded": self.succeeded, "success_rate": self.success_rate, "avg_search_ms": self.avg_search_ms,
            "failures": dict(self.failures), "per_skip": {str(k): v.to_dict() for k, v in sorted(self.per_skip.items())},
            "failed": [f.to_dict() for f in self.failed], "counts": dict(self.counts), "status": self.status,
            "summary": list(self.summary), "warnings": list(self.warnings), "modules": self.modules,
            "threads": self.threads, "command": list(self.command),
        }


def _failure_list(text: str) -> dict[str, int]:
    """`6 timeout, 2 shallow explosion` -> {"timeout": 6, "shallow explosion": 2}."""
    out: dict[str, int] = {}
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+) (.+?)\s*", part)
        if m:
            out[m[2]] = out.get(m[2], 0) + int(m[1])
    return out


def parse_failure_line(line: str) -> FailedSearch | None:
    m = _FAILED.match(line.rstrip("\n"))
    if not m:
        return None
    return FailedSearch(m["file"], int(m["line"]), m["goal"], int(m["skip"]) if m["skip"] is not None else None,
                        m["reason"], float(m["secs"]) if m["secs"] else None)


def parse_eval_output(lines: Iterable[str], exit_code: int = 0) -> EvalResult:
    """Read `acorn eval`'s output (failure lines, then a blank line and the summary) into an EvalResult."""
    result = EvalResult(exit_code=exit_code)
    text = [ln.rstrip("\n").rstrip("\r") for ln in lines]
    summary_start: int | None = None
    summary_end: int | None = None
    for i, line in enumerate(text):
        failed = parse_failure_line(line)
        if failed is not None:
            result.failed.append(failed)
            continue
        m = _VERIFYING.match(line)
        if m:
            result.modules, result.threads = int(m["modules"]), int(m["threads"])
            continue
        if _GOAL_LINE.match(line):
            result.warnings.append(line)
            continue
        if line in _STATUS:
            result.status = _STATUS[line]
            summary_end = i
            continue
        if _SEARCHES.match(line):
            result.searches = int(_SEARCHES.match(line)[1])  # type: ignore[index]
            summary_start = i
            while summary_start > 0 and text[summary_start - 1].strip():
                summary_start -= 1
            continue
        m = _AVG.match(line)
        if m:
            result.avg_search_ms = float(m[1])
            continue
        m = _FAILURES.match(line)
        if m:
            result.failures = _failure_list(m["list"])
            continue
        m = _SKIP.match(line)
        if m:
            result.per_skip[int(m["skip"])] = SkipFigures(
                int(m["skip"]), int(m["n"]), int(m["ok"]), int(m["inel"] or 0),
                float(m["ms"]) if m["ms"] else None, int(m["inc"] or 0))
            continue
        m = _SKIP_FAILURES.match(line)
        if m:
            figures = result.per_skip.get(int(m["skip"]))
            if figures is not None:
                figures.failures = _failure_list(m["list"])
            continue
        m = _TOTAL.match(line)
        if m:
            result.succeeded, result.searches = int(m["ok"]), int(m["n"])
            if summary_end is None or summary_end < i:
                summary_end = i
            continue
        for pattern, key in _COUNTS.items():
            m = pattern.match(line)
            if m:
                result.counts[key] = int(m[1])
                break
    if summary_start is not None:
        end = summary_end if summary_end is not None and summary_end >= summary_start else len(text) - 1
        result.summary = [s for s in text[summary_start:end + 1] if s.strip()]
    return result


def eval_error(lines: Sequence[str], exit_code: int, request: EvalRun) -> str | None:
    """The one-line message for an acorn eval that failed (acorn's own words first); None if it did not."""
    text = [ln.rstrip("\n") for ln in lines]
    setup = request.setup
    if any(NO_LIBRARY in ln for ln in text):
        return library_message(setup)
    if exit_code == 0:
        if not any(_TOTAL.match(ln) for ln in text):
            return f"{setup.binary} eval exited without its summary (no `X/Y benchmark searches succeeded` line); is it acorn {EVAL_COMMIT}?"
        return None
    if exit_code < 0:
        return (f"acorn eval was killed by signal {-exit_code} (out of memory? fewer --jobs may help); "
                f"{_tail(text)}")
    joined = "\n".join(text)
    if "unrecognized subcommand" in joined:
        return (f"{setup.binary} has no `acorn eval --model` (it is an older acorn: {first_line(joined)}); "
                f"build acorn {EVAL_COMMIT} (release {EVAL_RELEASE}) and pass it with --acorn or {ENV_EVAL_BINARY}")
    if any(ln.strip() == "Could not find acornlib." for ln in text):
        return (f"{setup.acornlib} is not an acornlib for acorn (acorn said: Could not find acornlib.); pass the "
                f"checkout's top folder (acorn.toml and src/), acornlib {EVAL_ACORNLIB_COMMIT}")
    error = next((ln.strip() for ln in text if ln.startswith("Error")), None)
    if error is not None:
        if request.model is not None and "--model" in error:
            words = error.removeprefix("Error: ")
            if "failed to load scoring model " in words:  # "... failed to load scoring model X.onnx: REASON"
                words = re.sub(r"^.*?\.onnx: ", "", words.split("failed to load scoring model ", 1)[1])
            return f"acorn refused the scorer export {request.model}: {words}"
        return f"acorn eval failed: {error}"
    clap = next((ln.strip() for ln in text if ln.startswith("error:")), None)
    if clap is not None:
        return f"acorn eval refused its arguments: {clap}"
    return f"acorn eval failed (exit code {exit_code}): {_tail(text)}"


def _tail(text: Sequence[str]) -> str:
    return next((ln.strip() for ln in reversed(text) if ln.strip()), "no output")[:240]


LineFn = Callable[[str], None]


def run_eval(
    request: EvalRun,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    on_line: LineFn | None = None,
) -> EvalResult:
    """Run one `acorn eval` and return its parsed summary; its errors as one line in acorn's words.

    Output is read line by line: `progress(failures so far, None, message)` with the elapsed
    time (acorn prints no total); `on_line` gets every line (e.g. a log file). `cancel` ends
    acorn's whole process group (SIGTERM, then SIGKILL) and raises `Cancelled`.
    """
    check(cancel)
    if request.model is not None:
        check_scorer_export(request.model, feature_catalog(request.setup))
    command = request.command()
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=request.setup.environment(), cwd=str(request.setup.acornlib), text=True, errors="replace",
            bufsize=1, start_new_session=True,
        )
    except OSError as exc:
        raise TacticsError(f"{request.setup.binary} does not run ({exc}); is it acorn {EVAL_COMMIT}?") from None
    lines: list[str] = []
    failures = 0
    inbox: "queue.Queue[str | None]" = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                inbox.put(line.rstrip("\n"))
        finally:
            inbox.put(None)

    reader = threading.Thread(target=read, name="acorn-eval-reader", daemon=True)
    reader.start()
    last_report = 0.0
    try:
        while True:
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
            failed = False
            try:
                line = inbox.get(timeout=0.2)
            except queue.Empty:
                pass
            else:
                if line is None:
                    break
                lines.append(line)
                if on_line is not None:
                    on_line(line)
                if _FAILED.match(line):
                    failures += 1
                    failed = True
            now = time.monotonic()
            if failed or now - last_report >= 0.5:  # each failure at once, the elapsed time twice a second
                last_report = now
                report(progress, failures, None, f"{failures} failed searches, {now - start:.0f} s")
        code = proc.wait()
    except BaseException:
        _stop(proc)
        reader.join(2)
        raise
    reader.join(2)
    seconds = time.monotonic() - start
    message = eval_error(lines, code, request)
    if message is not None:
        raise TacticsError(message)
    result = parse_eval_output(lines, code)
    result.seconds = seconds
    result.command = command
    return result


def _stop(proc: subprocess.Popen) -> None:
    """End acorn and anything it started (its own session), then reap it: no zombie is left."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, 30.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
