"""Today's acorn as the judge of a scorer: `acorn eval` of acorn 0.2.6 (91f29ff1).

acorn's saturation prover orders its clause activations with a scorer, an
ONNX MLP whose inputs are named by a `X.features.json` beside `X.onnx`.
`acorn eval` searches every goal that has a cached proof again, with a
policy (`--policy model --model X.onnx`, the embedded default scorer,
`depth-first`, ...), and prints a failure line per failed search plus a
summary. This module drives that command (docs: acorn's src/bin/acorn.rs,
`Command::Eval`, and src/builder.rs for the words it prints):

* **Buckets.** acorn puts every goal into one of 100 stable buckets
  (`--eval-sample 0-4,90-94`); 90-99 are its validation buckets. One acorn
  process per bucket keeps a run resumable and lets a judge interleave
  policies, so a change of machine load hits each policy alike. Loading the
  library takes seconds; the searches take the time.
* **In place.** `acorn eval` writes nothing into the acornlib (its build
  cache is read only: `write_cache: false`; checked by mtime after a run), so
  it runs on the user's checkout, with the checkout as its working folder.
* **Traces.** `--trace-out T.jsonl.zst` is a zstd stream finished only when
  acorn exits normally (a killed acorn leaves a truncated file); acorn writes
  `T.meta.json` (its feature catalog) as soon as the trace opens, before it
  even looks for the library. `collect_traces` lets acorn write into a
  hidden temp folder and renames the files only after a normal exit.
* **Exit codes** (recorded in tests/fixtures/acorn_eval_91f29ff1/outputs):
  0 both for "Evaluation succeeded." and "Evaluation completed with failed
  searches."; 1 with an `Error: ...` line for a bad flag, model or target;
  2 for clap's `error: ...` (an unknown subcommand: an older acorn).

No torch here: acorn does all the inference.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from tactics_core.acorn.generative_judge import chosen_paths, find_binary, read_settings, ENV_ORT_LIB, SETTINGS_FILE, AcornSetup
from tactics_core.common.atomic import remove_stale_partials
from tactics_core.scorer.buckets import format_buckets, parse_buckets as _parse_buckets
from tactics_core.scorer.contract import FEATURE_CONTRACT_SCHEMA, features_path
from tactics_core.common.errors import Cancelled, TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn, check, report

EVAL_COMMIT = "91f29ff1"  # acorn release 0.2.6: `acorn eval --model X.onnx`, traces
EVAL_RELEASE = "0.2.6"
EVAL_ACORNLIB_COMMIT = "7df4882d"  # an acornlib of the 2026 layout (src/**/certs/*.jsonl) it reads
ENV_EVAL_BINARY = "TACTICS_ACORN_EVAL"
ENV_EVAL_ACORNLIB = "TACTICS_ACORNLIB_EVAL"
SETTINGS_TABLE = "acorn_eval"  # [acorn_eval] binary, acornlib, ort_lib in the workspace's tactics.toml
TRACES_DIR = Path("traces")  # collect_traces' default folder, in the workspace

DEFAULT_POLICY = "model-20260705-consistent-h128-l3"  # acorn's embedded scorer, its default policy
MODEL_POLICIES = ("model", "model-no-shallow", "model-df-1to1", "model-df-3to1", "model-jitter")
POLICIES = (DEFAULT_POLICY, "handcrafted", "depth-first", *MODEL_POLICIES)
BASELINES = (DEFAULT_POLICY, "depth-first")
SHORT_LABELS = {DEFAULT_POLICY: "default"}  # file names and table columns
VALIDATION_BUCKETS = tuple(range(90, 100))
BUCKETS = 100
DEFAULT_TIMEOUT = 1.0  # acorn eval's own default search budget, seconds

TRACE_SCHEMA = "acorn-activated-step-trace-v2"
TRACE_SUFFIX = ".jsonl.zst"
META_SUFFIX = ".meta.json"
LOG_SUFFIX = ".log"
SUMMARY_SUFFIX = ".summary.json"
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL of a cancelled acorn

_NO_LIBRARY = "error while loading shared libraries"
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


# ------------------------------------------------------------------ finding today's acorn


def read_eval_settings(workspace: str | os.PathLike = ".") -> dict[str, str]:
    """The `[acorn_eval]` table of the workspace's tactics.toml (empty when there is none)."""
    return read_settings(workspace, SETTINGS_TABLE)


def resolve_eval_setup(
    acorn: str | os.PathLike | None = None,
    acornlib: str | os.PathLike | None = None,
    ort_lib: str | os.PathLike | None = None,
    workspace: str | os.PathLike = ".",
    check_binary: bool = True,
) -> AcornSetup:
    """Where acorn 91f29ff1 is: flags, else TACTICS_ACORN_EVAL / TACTICS_ACORNLIB_EVAL
    (TACTICS_ACORN_ORT_LIB: ONNX Runtime's folder), else [acorn_eval] of tactics.toml; checked."""
    acorn, acornlib, ort_lib = chosen_paths(
        (acorn, acornlib, ort_lib), (ENV_EVAL_BINARY, ENV_EVAL_ACORNLIB), read_eval_settings(workspace))
    if not acorn:
        raise TacticsError(
            f"no acorn {EVAL_RELEASE} binary given: pass --acorn BIN, set {ENV_EVAL_BINARY} or binary in "
            f"[{SETTINGS_TABLE}] of {SETTINGS_FILE} (acorn {EVAL_COMMIT}, built with ONNX Runtime 1.20)"
        )
    if not acornlib:
        raise TacticsError(
            f"no acornlib given: pass --acornlib DIR, set {ENV_EVAL_ACORNLIB} or acornlib in [{SETTINGS_TABLE}] "
            f"of {SETTINGS_FILE} (acornlib {EVAL_ACORNLIB_COMMIT})"
        )
    setup = AcornSetup(
        binary=_find_binary(str(acorn)),
        acornlib=Path(acornlib).expanduser().resolve(),
        ort_lib=Path(ort_lib).expanduser() if ort_lib else None,
    )
    check_eval_acornlib(setup.acornlib)
    if check_binary:
        check_eval_binary(setup)
    return setup


def _find_binary(name: str) -> Path:
    return find_binary(name, f"build acorn {EVAL_COMMIT} (release {EVAL_RELEASE}: cargo build --release --bin acorn) and pass its path")


def check_eval_acornlib(path: Path) -> None:
    """An acornlib acorn 91f29ff1 evaluates: acorn.toml, src/, and cached proofs in src/**/certs/*.jsonl."""
    if not path.is_dir():
        raise TacticsError(f"acornlib {path} not found; check out acornlib {EVAL_ACORNLIB_COMMIT} and pass its folder")
    if not (path / "src").is_dir() or not (path / "acorn.toml").is_file():
        raise TacticsError(
            f"{path} is not an acornlib checkout (acorn needs acorn.toml and src/ there; acorn says "
            f"\"Could not find acornlib.\"); pass the checkout's top folder"
        )
    if not any(path.glob("src/certs/*.jsonl")) and not any(path.glob("src/**/certs/*.jsonl")):
        if any((path / "build").glob("*.jsonl")):
            raise TacticsError(
                f"{path} is an acornlib of the 2025 layout (build/*.jsonl): acorn {EVAL_COMMIT} finds no cached "
                f"proofs there and evaluates 0 goals; check out acornlib {EVAL_ACORNLIB_COMMIT} (src/**/certs/)"
            )
        raise TacticsError(
            f"{path} has no cached proofs (src/**/certs/*.jsonl), so acorn eval has no goal to search; "
            f"check out acornlib {EVAL_ACORNLIB_COMMIT}"
        )


_CHECKED: set[tuple[str, int, int]] = set()  # binaries whose `eval --help` passed (path, size, mtime)


def check_eval_binary(setup: AcornSetup) -> None:
    """Refuse, in one line, a binary that does not start or has no `acorn eval --model` / `--trace-out`."""
    try:
        st = setup.binary.stat()
        key = (str(setup.binary), st.st_size, st.st_mtime_ns)
    except OSError:
        key = None
    if key is not None and key in _CHECKED:
        return
    try:
        out = subprocess.run(
            [str(setup.binary), "eval", "--help"], capture_output=True, text=True, errors="replace",
            timeout=60, env=setup.environment(), stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TacticsError(f"{setup.binary} does not run ({exc}); is it acorn {EVAL_COMMIT}?") from None
    text = out.stdout + out.stderr
    if _NO_LIBRARY in text:
        raise TacticsError(_library_message(setup))
    if out.returncode != 0 or "--model" not in text or "--trace-out" not in text:
        said = _first_line(text)
        raise TacticsError(
            f"{setup.binary} has no `acorn eval --model` (it is an older acorn: `eval --help` said: {said[:120]}); "
            f"build acorn {EVAL_COMMIT} (release {EVAL_RELEASE}) and pass it with --acorn or {ENV_EVAL_BINARY}"
        )
    if key is not None:
        _CHECKED.add(key)


def _library_message(setup: AcornSetup) -> str:
    return (
        f"{setup.binary} cannot load libonnxruntime.so.1: point {ENV_ORT_LIB} (or ort_lib in [{SETTINGS_TABLE}] "
        f"of {SETTINGS_FILE}) at the folder holding ONNX Runtime 1.20's libonnxruntime.so.1"
    )


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "no output")


# ------------------------------------------------------------------ buckets


def parse_buckets(text: str) -> list[int]:
    """`"0-9,90,92-93"` -> [0, ..., 9, 90, 92, 93]: acorn's goal buckets 0..99, sorted, unique
    (`scorer.buckets`), or one line saying what is wrong."""
    try:
        return _parse_buckets(text)
    except ValueError as exc:
        raise TacticsError(
            f"buckets {text!r}: {exc}; give numbers 0-{BUCKETS - 1} and ranges such as 0-9,90,92-93 "
            "(acorn's validation buckets are 90-99)"
        ) from None


# ------------------------------------------------------------------ scorer exports


def find_scorer_onnx(model: str | os.PathLike) -> Optional[Path]:
    """The `.onnx` of a scorer export (a folder holding `X.onnx` + `X.features.json`, or the .onnx itself);
    None when `model` is not one (e.g. a GPT export folder or a checkpoint)."""
    path = Path(model)
    if path.is_dir():
        found = sorted(p for p in path.glob("*.onnx") if features_path(p).is_file())
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise TacticsError(f"{path} holds several scorer exports ({names}); give the .onnx file to judge")
        return found[0] if found else None
    if path.suffix == ".onnx":
        return path
    return None


def scorer_onnx(model: str | os.PathLike) -> Path:
    """The `.onnx` of a scorer export, resolved; one line when `model` is no scorer export."""
    found = find_scorer_onnx(model)
    if found is None:
        path = Path(model)
        if path.is_dir():
            raise TacticsError(f"{path} holds no scorer export (an X.onnx with X.features.json beside it); export the scorer first")
        raise TacticsError(f"{path} is not a scorer export; give its .onnx or the folder holding it")
    return found.resolve()


def is_scorer_export(model: str | os.PathLike) -> bool:
    try:
        return find_scorer_onnx(model) is not None
    except TacticsError:
        return True  # several scorers in one folder: still a scorer, the caller's lookup says which


def scorer_label(onnx: Path) -> str:
    """A short name for the export in reports and file names: its stem, or its folder's for a generic stem."""
    name = onnx.stem
    if name in ("model", "scorer", "export") and onnx.parent.name:
        name = onnx.resolve().parent.name
    return _safe_label(name)


def _safe_label(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


def read_feature_catalog(meta: Path) -> list[str]:
    """The feature names acorn knows, from a trace's `T.meta.json` (schema acorn-activated-step-trace-v2)."""
    try:
        data = json.loads(Path(meta).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TacticsError(f"{meta}: not a readable trace meta.json ({exc}); collect the trace again") from None
    names = data.get("feature_vector") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("schema") != TRACE_SCHEMA or not isinstance(names, list):
        raise TacticsError(
            f"{meta}: not acorn's trace metadata (schema {TRACE_SCHEMA} with a feature_vector list); "
            f"use the .meta.json acorn {EVAL_COMMIT} writes beside a trace"
        )
    return [str(n) for n in names]


_CATALOGS: dict[tuple[str, int, int], list[str]] = {}


def feature_catalog(setup: AcornSetup) -> Optional[list[str]]:
    """The feature names this acorn knows (its trace catalog), cached per binary; None if it wrote none.

    acorn writes `T.meta.json` when it opens `--trace-out`, before it looks for the library, so an
    eval in an empty temp folder gives the catalog in milliseconds (acorn then says it found no acornlib).
    """
    try:
        st = setup.binary.stat()
        key = (str(setup.binary), st.st_size, st.st_mtime_ns)
    except OSError:
        return None
    if key in _CATALOGS:
        return _CATALOGS[key]
    with tempfile.TemporaryDirectory(prefix="tactics-acorn-catalog-") as tmp:
        empty = Path(tmp) / "empty"
        empty.mkdir()
        trace = Path(tmp) / "catalog.jsonl.zst"
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                [str(setup.binary), "--lib", str(empty), "eval", "--trace-out", str(trace)],
                capture_output=True, timeout=60, env=setup.environment(), stdin=subprocess.DEVNULL, cwd=tmp,
            )
        meta = Path(tmp) / ("catalog" + META_SUFFIX)
        if not meta.is_file():
            return None
        try:
            catalog = read_feature_catalog(meta)
        except TacticsError:
            return None
    _CATALOGS[key] = catalog
    return catalog


def check_scorer_export(onnx: str | os.PathLike, catalog: Sequence[str] | str | os.PathLike | None = None) -> list[str]:
    """Check a scorer export before acorn loads it; return its input features in order.

    The `.features.json` beside the `.onnx` must be acorn's contract
    (`{"schema": "acorn-scorer-feature-contract-v1", "input_features": [...]}`); with a
    `catalog` (the names, or a trace `.meta.json`), every input feature must be one acorn knows.
    Each failure is one line naming the file (acorn itself names only the .onnx).
    """
    onnx = Path(onnx)
    if not onnx.is_file():
        raise TacticsError(f"scorer export {onnx} not found; give the .onnx a scorer export wrote (or its folder)")
    contract = features_path(onnx)
    if not contract.is_file():
        raise TacticsError(
            f"{contract} not found: acorn needs the feature contract beside {onnx.name}; export the scorer again"
        )
    try:
        data = json.loads(contract.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TacticsError(f"{contract}: not readable JSON ({exc}); export the scorer again") from None
    if not isinstance(data, dict) or data.get("schema") != FEATURE_CONTRACT_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise TacticsError(
            f"{contract}: schema {found!r} is not acorn's {FEATURE_CONTRACT_SCHEMA!r}; export the scorer again"
        )
    features = data.get("input_features")
    if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
        raise TacticsError(f"{contract}: input_features must be a non-empty list of feature names; export the scorer again")
    seen: set[str] = set()
    for name in features:
        if name in seen:
            raise TacticsError(f"{contract}: feature {name!r} is listed twice (acorn refuses that); export the scorer again")
        seen.add(name)
    if catalog is not None:
        source = ""
        if isinstance(catalog, (str, os.PathLike)):
            source = f" (catalog {catalog})"
            catalog = read_feature_catalog(Path(catalog))
        known = set(catalog)
        unknown = [f for f in features if f not in known]
        if unknown:
            more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
            raise TacticsError(
                f"{contract}: feature {unknown[0]!r}{more} is not one acorn {EVAL_COMMIT} computes{source}; "
                f"train the scorer on features from acorn's trace meta.json"
            )
    check_one_file(onnx)
    return list(features)


def check_one_file(onnx: Path) -> None:
    """acorn 0.2.6 reads a model whose weights sit in a file beside it (`X.onnx.data`, what torch's
    exporter writes by default since 2.9) relative to ITS working folder, so it refuses it when run
    from the acornlib ("cannot get file size ... X.onnx.data"), and `include_bytes!` cannot embed it."""
    import onnx as onnx_lib

    try:
        proto = onnx_lib.load(str(onnx), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - onnx's own words
        raise TacticsError(f"{onnx}: not an ONNX model ({str(exc).splitlines()[0][:120]}); export the scorer again") from None
    external = {
        entry.value for t in proto.graph.initializer if t.data_location == onnx_lib.TensorProto.EXTERNAL
        for entry in t.external_data if entry.key == "location"
    }
    if external:
        raise TacticsError(
            f"{onnx} keeps its weights in {', '.join(sorted(external))}, which acorn reads relative to its own working "
            "folder (it refuses the model when run from the acornlib); save it as one file: "
            "onnx.save(onnx.load(X), Y, save_as_external_data=False), or export it with `tactics export`"
        )


def check_policy(policy: str, model: Optional[Path]) -> None:
    """The policy/model pair acorn accepts (what it would refuse with `Error: ...`), before it starts."""
    if policy not in POLICIES:
        raise TacticsError(f"unknown policy {policy!r}; acorn {EVAL_COMMIT} has {', '.join(POLICIES)}")
    if policy in MODEL_POLICIES and model is None:
        raise TacticsError(f"policy {policy} needs a scorer export: give --model X.onnx")
    if policy not in MODEL_POLICIES and model is not None:
        raise TacticsError(f"--model goes with a model policy ({', '.join(MODEL_POLICIES)}), not {policy}")


def policy_label(policy: str, model: Optional[Path]) -> str:
    """The name a run goes by in reports, trace files and trace metadata."""
    if model is not None:
        base = scorer_label(model)
        return base if policy == "model" else f"{base}-{policy}"
    return SHORT_LABELS.get(policy, policy)


# ------------------------------------------------------------------ one acorn eval


@dataclass
class EvalRun:
    """One `acorn eval` to run."""

    setup: AcornSetup
    buckets: Optional[Sequence[int]] = None  # None: every goal of the target
    policy: str = DEFAULT_POLICY
    model: Optional[Path] = None  # the scorer's .onnx for a model policy
    timeout: float = DEFAULT_TIMEOUT
    jobs: Optional[int] = None  # acorn's threads; None: acorn's default (every core)
    trace_out: Optional[Path] = None
    label: Optional[str] = None  # --policy-label (written into trace metadata)
    target: Optional[str] = None  # a module, file or MODULE:LINE; None: the whole library

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
    skip: Optional[int]
    reason: str  # timeout | exhaustion | shallow exhaustion | shallow explosion | hit activation cap
    seconds: Optional[float]

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
    avg_search_ms: Optional[float] = None
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
    avg_search_ms: Optional[float] = None
    failures: dict[str, int] = field(default_factory=dict)  # reason -> count ("timeout": 6)
    per_skip: dict[int, SkipFigures] = field(default_factory=dict)
    failed: list[FailedSearch] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # eligible, matched, sampled_out, ...
    status: Optional[str] = None  # succeeded | failed searches | build failed
    summary: list[str] = field(default_factory=list)  # acorn's summary lines, verbatim
    warnings: list[str] = field(default_factory=list)  # other goal lines (e.g. certificate failures)
    modules: Optional[int] = None
    threads: Optional[int] = None
    command: list[str] = field(default_factory=list)

    @property
    def success_rate(self) -> Optional[float]:
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


def parse_failure_line(line: str) -> Optional[FailedSearch]:
    m = _FAILED.match(line.rstrip("\n"))
    if not m:
        return None
    return FailedSearch(m["file"], int(m["line"]), m["goal"], int(m["skip"]) if m["skip"] is not None else None,
                        m["reason"], float(m["secs"]) if m["secs"] else None)


def parse_eval_output(lines: Iterable[str], exit_code: int = 0) -> EvalResult:
    """Read `acorn eval`'s output (failure lines, then a blank line and the summary) into an EvalResult."""
    result = EvalResult(exit_code=exit_code)
    text = [ln.rstrip("\n").rstrip("\r") for ln in lines]
    summary_start: Optional[int] = None
    summary_end: Optional[int] = None
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


def eval_error(lines: Sequence[str], exit_code: int, request: EvalRun) -> Optional[str]:
    """The one-line message for an acorn eval that failed (acorn's own words first); None if it did not."""
    text = [ln.rstrip("\n") for ln in lines]
    setup = request.setup
    if any(_NO_LIBRARY in ln for ln in text):
        return _library_message(setup)
    if exit_code == 0:
        if not any(_TOTAL.match(ln) for ln in text):
            return f"{setup.binary} eval exited without its summary (no `X/Y benchmark searches succeeded` line); is it acorn {EVAL_COMMIT}?"
        return None
    if exit_code < 0:
        return (f"acorn eval was killed by signal {-exit_code} (out of memory? fewer --jobs may help); "
                f"{_tail(text)}")
    joined = "\n".join(text)
    if "unrecognized subcommand" in joined:
        return (f"{setup.binary} has no `acorn eval --model` (it is an older acorn: {_first_line(joined)}); "
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
    inbox: "queue.Queue[Optional[str]]" = queue.Queue()

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


# ------------------------------------------------------------------ traces, one bucket at a time


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


def _read_complete(files: dict[str, Path]) -> Optional[dict]:
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
    jobs: Optional[int] = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    label: Optional[str] = None,
    target: Optional[str] = None,
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
    label = _safe_label(label) if label else policy_label(policy, model_path)
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

        def inner(failures: int, _total: Optional[int], message: str, k=k, bucket=bucket) -> None:
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


# ------------------------------------------------------------------ the judge


@dataclass
class BucketFigures:
    """One policy's figures on one bucket (or on all buckets at once when not run per bucket)."""

    searches: int
    succeeded: int
    avg_search_ms: Optional[float]
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    summary: list[str] = field(default_factory=list)
    failed: list[FailedSearch] = field(default_factory=list)  # the searches acorn named as failed (goal, reason, time)

    @property
    def success_rate(self) -> Optional[float]:
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
    model: Optional[str] = None
    buckets: dict[int, BucketFigures] = field(default_factory=dict)  # per bucket; {} when run in one process
    total: Optional[BucketFigures] = None  # the one process over every bucket, when not per bucket
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
    def success_rate(self) -> Optional[float]:
        return self.succeeded / self.searches if self.searches else None

    @property
    def avg_search_ms(self) -> Optional[float]:
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

    def rate_spread(self) -> Optional[tuple[float, float]]:
        """(min, max) of the per-bucket success rates (buckets with searches)."""
        rates = [b.success_rate for b in self.buckets.values() if b.success_rate is not None]
        return (min(rates), max(rates)) if rates else None

    def diff_spread(self) -> Optional[tuple[float, float, float]]:
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
    jobs: Optional[int]
    target: Optional[str]
    per_bucket: bool
    policies: list[PolicyFigures] = field(default_factory=list)
    baseline: Optional[str] = None  # label of the first baseline (the differences' reference)
    seconds: float = 0.0

    def policy(self, label: str) -> Optional[PolicyFigures]:
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
    jobs: Optional[int] = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    per_bucket: bool = True,
    target: Optional[str] = None,
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
    runs: list[tuple[str, Optional[Path]]] = []
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
    groups: list[Optional[list[int]]] = [[b] for b in chosen] if per_bucket else [chosen]
    total = len(groups) * len(runs)
    done = 0
    for group in groups:
        for fig, (policy, path) in zip(figures, runs):
            check(cancel)
            where = f"bucket {group[0]}" if per_bucket else f"buckets {format_buckets(chosen)}"
            report(progress, done, total, f"{where}: {fig.label}")

            def inner(failures: int, _total: Optional[int], message: str, where=where, fig=fig, done=done) -> None:
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
    baseline_label: Optional[str] = None
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


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def report_text(report: JudgeReport) -> str:
    """The judge's table: per policy totals and spread, then the success rate per bucket."""
    where = f" ({report.target})" if report.target else ""
    lines = [
        f"acorn eval{where} on buckets {format_buckets(report.buckets)}, {report.timeout:g} s per search: "
        f"{report.acorn} on {report.acornlib}",
    ]
    ref = report.baseline
    head = f"{'policy':18s} {'searches':>8s} {'proved':>6s} {'rate':>6s} {'avg ms':>7s} {'per bucket':>10s}"
    if ref:
        head += f"  vs {ref[:12]}"
    lines += [head, "-" * len(head)]
    for p in report.policies:
        spread = p.rate_spread()
        spread_text = f"{100 * spread[0]:.0f}-{100 * spread[1]:.0f}%" if spread else "-"
        avg = p.avg_search_ms
        row = (f"{p.label[:18]:18s} {p.searches:8d} {p.succeeded:6d} {_pct(p.success_rate):>6s} "
               f"{'-' if avg is None else f'{avg:.1f}':>7s} {spread_text:>10s}")
        diff = p.diff_spread()
        if ref and diff is not None:  # mean of the per-bucket differences, then their range
            row += f"  {100 * diff[1]:+.1f} [{100 * diff[0]:+.0f},{100 * diff[2]:+.0f}]"
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


__all__ = [
    "EVAL_COMMIT", "EVAL_RELEASE", "EVAL_ACORNLIB_COMMIT", "ENV_EVAL_BINARY", "ENV_EVAL_ACORNLIB", "SETTINGS_TABLE",
    "DEFAULT_POLICY", "POLICIES", "MODEL_POLICIES", "BASELINES", "VALIDATION_BUCKETS", "TRACES_DIR",
    "read_eval_settings", "resolve_eval_setup", "check_eval_acornlib", "check_eval_binary",
    "parse_buckets", "format_buckets", "features_path", "find_scorer_onnx", "scorer_onnx", "is_scorer_export", "scorer_label",
    "read_feature_catalog", "feature_catalog", "check_scorer_export", "check_policy", "policy_label",
    "EvalRun", "EvalResult", "FailedSearch", "SkipFigures", "parse_eval_output", "parse_failure_line", "eval_error",
    "run_eval", "CollectedBucket", "bucket_files", "collect_traces",
    "BucketFigures", "PolicyFigures", "JudgeReport", "judge", "report_text",
]
