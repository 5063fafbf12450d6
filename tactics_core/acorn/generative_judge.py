"""The real Acorn prover as the judge: `tactics prove` runs acorn's own generative prover.

Every other quality figure of this project comes from our replica of the
prover's loop (`gpt/prover_replica.py`). This module runs the real thing, acorn
`f47631b0` (the last commit with `reprove --generative`), on the goals of
acornlib modules, and reads which goals it proved and how long each took.

How one module is judged (each step is what the real binary allows; see
docs/prover.md for the measurements behind it):

* **A scratch library.** acorn writes its build cache (`build/`) even when
  only reading certificates, so it never runs on the user's checkout: a
  temporary folder holds `acorn.toml`, a link to the checkout's `src/` and a
  copy of the certificate files of the modules asked for.
* **The goal list** comes from acorn itself: `reverify MODULE` with the
  checker's trace on prints `inserting goal NAME (line N)` for every goal, in
  order, in about a second (no search).
* **One acorn process per goal line** (`reprove MODULE:LINE`). acorn
  f47631b0 panics on a generated line that is only a `// comment` (its parser
  returns no statement and `parse_str_with_options` panics), which ends the
  whole process; one process per goal keeps such a crash to the goal it hit.
  It also makes each goal's time exact: acorn's debug log says
  `setting goal` when a search starts, and the verdict line (or the
  `concrete proof:` a single-goal run prints) ends it.

The generative prover's search budget is fixed at 5 s in acorn f47631b0
(`GenerativeProverConfig::time_limit_secs`); `--timeout` reaches only the
saturation prover. Reports say so rather than pretend otherwise.

Why one module over 600 lines: each section (setup, modules and goals, verdicts, running acorn)
speaks acorn f47631b0's words (its flags, its trace lines, its verdicts), and reads as one
account of that binary; the parsers are pure functions, tested on its recorded transcripts.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from tactics_core.common.errors import Cancelled, TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn, check, report
from tactics_core.common.workspace import SETTINGS_FILE

if TYPE_CHECKING:
    from tactics_core.acorn.goal_sample import GoalSample

GENERATIVE_COMMIT = "f47631b0"  # the last acorn commit with `reprove --generative` and `training`
REMOVAL_COMMIT = "25404530"  # "remove generative prover" (acorn, 2026-01-26)
ACORNLIB_COMMIT = "c30e377"  # the acornlib that f47631b0 pins (2025 layout: build/*.jsonl)
GENERATIVE_SECONDS = 5.0  # acorn f47631b0's generative search budget per goal (not settable)
ENV_BINARY = "TACTICS_ACORN"
ENV_ACORNLIB = "TACTICS_ACORNLIB"
ENV_ORT_LIB = "TACTICS_ACORN_ORT_LIB"
PROVERS = ("model", "saturation")
# Seconds an acorn process may run past its search budget (loading the library, the model).
PROCESS_GRACE = 120.0

# acorn's lines, as printed by f47631b0 (builder.rs, verifier.rs, generative_prover.rs).
_GOAL_LISTED = re.compile(r"^TRACE acorn::checker: inserting goal (?P<name>.*) \(line (?P<line>\d+)\)$")
_SEARCH_STARTS = "DEBUG acorn::processor: setting goal"
_PROVED = "concrete proof:"
_NOT_PROVED = re.compile(
    r"^(?P<path>.+?), line (?P<line>\d+): (?P<name>.*) could not be reproved "
    r"\((?P<reason>[a-z]+)(?: after (?P<secs>[0-9.]+)s)?\)$"
)
_INCONSISTENT = re.compile(r"^(?P<path>.+?), line (?P<line>\d+): (?P<name>.*) - prover found an inconsistency$")
_GOAL_ERROR = re.compile(r"^(?P<path>.+?\.ac), line (?P<line>\d+): (?P<message>.*)$")
_PANIC = re.compile(r"^thread '.*' (?:\(\d+\) )?panicked at (?P<where>[^:]+:\d+:\d+):$")
_NO_LIBRARY = "error while loading shared libraries"


# ------------------------------------------------------------------ setup


@dataclass(frozen=True)
class AcornSetup:
    """Where acorn is: the binary, the acornlib checkout, and ONNX Runtime's folder (if set)."""

    binary: Path
    acornlib: Path
    ort_lib: Path | None = None

    def environment(self) -> dict[str, str]:
        """The acorn process's environment: ours, plus ONNX Runtime's folder on LD_LIBRARY_PATH."""
        env = dict(os.environ)
        if self.ort_lib is not None:
            env["LD_LIBRARY_PATH"] = os.pathsep.join(
                p for p in (str(self.ort_lib), env.get("LD_LIBRARY_PATH", "")) if p
            )
        env.pop("RUST_LOG", None)
        return env


def _read_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TacticsError(f"{path}: not readable TOML ({exc}); fix or remove it") from None


def read_settings(workspace: str | os.PathLike = ".", table_name: str = "acorn") -> dict[str, str]:
    """A table of the workspace's tactics.toml (empty when there is none): `[acorn]` (acorn
    f47631b0, the GPT's judge) or `[acorn_eval]` (acorn 0.2.6, the scorer's)."""
    path = Path(workspace) / SETTINGS_FILE
    if not path.is_file():
        return {}
    table = _read_toml(path).get(table_name, {})
    if not isinstance(table, dict):
        raise TacticsError(f"{path}: [{table_name}] must be a table (binary = \"...\", acornlib = \"...\")")
    return {k: str(v) for k, v in table.items() if k in ("binary", "acornlib", "ort_lib")}


def chosen_paths(flags: tuple, env_names: tuple[str, str], settings: dict[str, str]) -> tuple:
    """(binary, acornlib, ort_lib): each from its flag, else its variable, else the settings table
    — the one precedence both judges follow."""
    names = (*env_names, ENV_ORT_LIB)
    keys = ("binary", "acornlib", "ort_lib")
    return tuple(flag or os.environ.get(env) or settings.get(key) for flag, env, key in zip(flags, names, keys))


def configured_paths(workspace: str | os.PathLike = ".", table_name: str = "acorn",
                     env_names: tuple[str, str] = (ENV_BINARY, ENV_ACORNLIB)) -> tuple[str, str, str | None]:
    """(binary, acornlib, problem): what a form prefills before the user types a flag — each
    path from its variable, else the workspace's settings table (`chosen_paths`' precedence);
    a settings file that cannot be read comes back as its one-line problem, the variables
    still used. The TUI's Prove dialogs call this rather than choosing by themselves."""
    try:
        settings, problem = read_settings(workspace, table_name), None
    except TacticsError as exc:
        settings, problem = {}, str(exc)
    binary, acornlib, _ = chosen_paths((None, None, None), env_names, settings)
    return binary or "", acornlib or "", problem


def save_settings(workspace: str | os.PathLike, binary: str, acornlib: str, ort_lib: str | None = None) -> Path:
    """Write the [acorn] table of the workspace's tactics.toml (other tables kept), atomically."""
    import tomli_w

    from tactics_core.common.atomic import atomic_write_text

    path = Path(workspace) / SETTINGS_FILE
    data = _read_toml(path) if path.is_file() else {}
    table = {"binary": str(binary), "acornlib": str(acornlib)}
    if ort_lib:
        table["ort_lib"] = str(ort_lib)
    data["acorn"] = table
    atomic_write_text(path, tomli_w.dumps(data))
    return path


def resolve_setup(
    binary: str | os.PathLike | None = None,
    acornlib: str | os.PathLike | None = None,
    ort_lib: str | os.PathLike | None = None,
    workspace: str | os.PathLike = ".",
) -> AcornSetup:
    """Flags first, then TACTICS_ACORN / TACTICS_ACORNLIB, then the workspace's tactics.toml; checked."""
    binary, acornlib, ort_lib = chosen_paths((binary, acornlib, ort_lib), (ENV_BINARY, ENV_ACORNLIB), read_settings(workspace))
    if not binary:
        raise TacticsError(
            f"no acorn binary given: pass --acorn BIN or set {ENV_BINARY} "
            f"(acorn {GENERATIVE_COMMIT}, built with ONNX Runtime 1.20; docs/prover.md)"
        )
    if not acornlib:
        raise TacticsError(
            f"no acornlib given: pass --acornlib DIR or set {ENV_ACORNLIB} (acornlib {ACORNLIB_COMMIT}; docs/prover.md)"
        )
    setup = AcornSetup(
        binary=_find_binary(str(binary)),
        acornlib=Path(acornlib).expanduser(),
        ort_lib=Path(ort_lib).expanduser() if ort_lib else None,
    )
    check_acornlib(setup.acornlib)
    check_binary(setup)
    return setup


def find_binary(name: str, build: str) -> Path:
    """An acorn binary by path or on PATH; else one line ending in `build` (which acorn to build)."""
    path = Path(name).expanduser()
    if path.is_file() and os.access(path, os.X_OK):
        return path.resolve()
    found = shutil.which(name) if os.sep not in name else None
    if found:
        return Path(found)
    raise TacticsError(f"acorn binary {name} not found or not executable; {build}")


def _find_binary(name: str) -> Path:
    return find_binary(name, f"build acorn {GENERATIVE_COMMIT} (cargo build --release --bin acorn) and pass its path (docs/prover.md)")


def check_binary(setup: AcornSetup) -> None:
    """Refuse a binary that does not start or has no generative prover, in one line."""
    try:
        out = subprocess.run(
            [str(setup.binary), "reprove", "--help"], capture_output=True, text=True, errors="replace",
            timeout=60, env=setup.environment(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TacticsError(f"{setup.binary} does not run ({exc}); is it acorn {GENERATIVE_COMMIT}?") from None
    text = out.stdout + out.stderr
    if _NO_LIBRARY in text:
        raise TacticsError(_library_message(setup, text))
    if out.returncode != 0 or "reprove" not in text.lower():
        first = (text.strip().splitlines() or ["no output"])[0]
        raise TacticsError(f"{setup.binary} is not an acorn binary (`reprove --help` said: {first[:160]})")
    if "--generative" not in text:
        raise TacticsError(
            f"{setup.binary} has no generative prover (acorn removed it in {REMOVAL_COMMIT}); "
            f"build acorn {GENERATIVE_COMMIT} (docs/prover.md)"
        )


def _library_message(setup: AcornSetup, text: str) -> str:
    line = next((ln for ln in text.splitlines() if _NO_LIBRARY in ln), text.strip()[:200])
    lib = line.split(":")[-2].strip() if line.count(":") >= 2 else "libonnxruntime.so.1"
    return (
        f"{setup.binary} cannot load {lib}: point {ENV_ORT_LIB} (or LD_LIBRARY_PATH) at the folder holding "
        f"ONNX Runtime 1.20's libonnxruntime.so.1 (docs/prover.md)"
    )


def check_acornlib(path: Path) -> None:
    """An acornlib acorn f47631b0 can read: src/ plus certificates in build/*.jsonl (2025 layout)."""
    if not path.is_dir():
        raise TacticsError(f"acornlib {path} not found; check out acornlib {ACORNLIB_COMMIT} and pass its folder")
    if not (path / "src").is_dir():
        raise TacticsError(f"{path} is not an acornlib checkout (no src/ folder); pass the checkout's top folder")
    build = path / "build"
    if not build.is_dir() or not any(build.rglob("*.jsonl")):
        if any(path.glob("src/**/certs/*.jsonl")):
            raise TacticsError(
                f"{path} is an acornlib of the 2026 layout (certs/ folders); acorn {GENERATIVE_COMMIT} reads "
                f"build/*.jsonl: check out acornlib {ACORNLIB_COMMIT}"
            )
        raise TacticsError(f"{path} has no certificates in build/*.jsonl; check out acornlib {ACORNLIB_COMMIT}")


# ------------------------------------------------------------------ modules and goals


def module_name(jsonl: Path, build: Path) -> str:
    """`build/real/real_seq.jsonl` -> `real.real_seq` (the name acorn takes)."""
    return ".".join(jsonl.relative_to(build).with_suffix("").parts)


def library_modules(acornlib: Path) -> list[str]:
    """Every module of the checkout that has at least one certificate, sorted."""
    build = acornlib / "build"
    names = []
    for jsonl in build.rglob("*.jsonl"):
        try:
            if jsonl.stat().st_size > 0:
                names.append(module_name(jsonl, build))
        except OSError:
            continue
    return sorted(names)


def select_modules(acornlib: Path, patterns: Sequence[str]) -> list[str]:
    """The modules matching `patterns` (names or globs such as `list.*`); all when none is given."""
    known = library_modules(acornlib)
    if not patterns:
        return known
    chosen: list[str] = []
    for pattern in patterns:
        hits = [m for m in known if fnmatch.fnmatchcase(m, pattern)]
        if not hits:
            raise TacticsError(
                f"no module of {acornlib} with certificates matches {pattern!r} (names look like real.real_seq; "
                f"`tactics prove --list-modules` lists them)"
            )
        chosen.extend(m for m in hits if m not in chosen)
    return chosen


@dataclass(frozen=True)
class Goal:
    """One goal of a module as acorn numbers it: its name and 1-based first line."""

    name: str
    line: int


def parse_goal_listing(lines: Iterable[str]) -> list[Goal]:
    """Goals from `RUST_LOG=acorn::checker=trace acorn reverify MODULE` output, in acorn's order."""
    goals = []
    for raw in lines:
        m = _GOAL_LISTED.match(raw.rstrip("\n"))
        if m:
            goals.append(Goal(m["name"], int(m["line"]) + 1))  # the trace prints 0-based lines
    return goals


# ------------------------------------------------------------------ verdicts


@dataclass
class GoalResult:
    """What acorn said about one goal."""

    module: str
    name: str
    line: int
    outcome: str  # proved | timeout | exhaustion | constraints | inconsistent | crashed | error | not run
    seconds: float | None = None  # search time: acorn's own for failures, from its log for proofs
    proof: list[str] | None = None  # the lines acorn accepted, for a proved goal
    message: str | None = None  # acorn's words for a crash or an error

    @property
    def proved(self) -> bool:
        return self.outcome == "proved"

    def to_dict(self) -> dict:
        out = {"name": self.name, "line": self.line, "outcome": self.outcome, "seconds": self.seconds}
        if self.proof is not None:
            out["proof"] = self.proof
        if self.message:
            out["message"] = self.message
        return out


@dataclass(frozen=True)
class Verdict:
    """One goal's result as read from one acorn process (no module or line yet)."""

    outcome: str
    seconds: float | None = None
    proof: tuple[str, ...] | None = None
    message: str | None = None
    name: str | None = None


def parse_goal_run(stamped: Sequence[tuple[float, str]], returncode: int) -> tuple[list[Verdict], str | None]:
    """Read one `reprove MODULE:LINE` process: (verdicts in search order, a fatal message or None).

    `stamped` is (seconds since the start, line) per output line, so a proof's
    time is from its `setting goal` line to its `concrete proof:` line. A
    panic becomes the verdict `crashed` of the goal whose search it ended; a
    panic before any search is the fatal message (e.g. the model did not load).
    """
    verdicts: list[Verdict] = []
    started: float | None = None  # time of the current search's `setting goal`
    proof: list[str] | None = None  # lines of a `concrete proof:` being read
    proof_seconds: float | None = None
    fatal: str | None = None
    i = 0
    lines = [(t, s.rstrip("\n")) for t, s in stamped]

    def close_proof() -> None:
        nonlocal proof, proof_seconds
        if proof is not None:
            verdicts.append(Verdict("proved", proof_seconds, tuple(p for p in proof if p != "<no proof>")))
            proof, proof_seconds = None, None

    while i < len(lines):
        t, text = lines[i]
        i += 1
        if proof is not None:
            if text.startswith("  "):
                proof.append(text[2:])
                continue
            close_proof()
        if text.startswith(_SEARCH_STARTS):
            started = t
            continue
        if text == _PROVED:
            proof, proof_seconds = [], (round(t - started, 3) if started is not None else None)
            started = None
            continue
        m = _NOT_PROVED.match(text)
        if m:
            secs = float(m["secs"]) if m["secs"] else (round(t - started, 3) if started is not None else None)
            verdicts.append(Verdict(m["reason"], secs, name=m["name"]))
            started = None
            continue
        m = _INCONSISTENT.match(text)
        if m:
            verdicts.append(Verdict("inconsistent", round(t - started, 3) if started is not None else None, name=m["name"]))
            started = None
            continue
        m = _PANIC.match(text)
        if m:
            # The message follows on the next lines (some panics start it with a newline).
            message = next((s.strip() for _, s in lines[i : i + 4] if s.strip()), "panic")
            full = f"acorn panicked at {m['where']}: {message}"
            if started is not None:
                verdicts.append(Verdict("crashed", round(t - started, 3), message=full))
                started = None
            else:
                fatal = full
            break
        if _NO_LIBRARY in text:
            fatal = text.strip()
            break
        m = _GOAL_ERROR.match(text)
        if m and started is not None:
            verdicts.append(Verdict("error", round(t - started, 3), message=m["message"]))
            started = None
            continue
    close_proof()
    if started is not None and fatal is None:
        # A search began and acorn said nothing more: killed, or it died without a panic line.
        verdicts.append(Verdict("crashed", None, message=f"acorn exited with code {returncode} during the search"))
    return verdicts, fatal


class _Tally:
    """The counts a report shows, over `all_goals()` (one module's, or one prover's across modules)."""

    def all_goals(self) -> list[GoalResult]:
        raise NotImplementedError

    @property
    def proved(self) -> int:
        return sum(g.proved for g in self.all_goals())

    @property
    def attempted(self) -> int:
        return len(self.all_goals())

    @property
    def crashed(self) -> int:
        return sum(g.outcome == "crashed" for g in self.all_goals())

    @property
    def empty_proofs(self) -> int:
        """Goals proved with no line at all: acorn's checker closed them before the first attempt."""
        return sum(g.proved and not g.proof for g in self.all_goals())

    def median_proof_seconds(self) -> float | None:
        times = [g.seconds for g in self.all_goals() if g.proved and g.seconds is not None]
        return round(statistics.median(times), 3) if times else None

    def tally(self) -> dict:
        return {"proved": self.proved, "attempted": self.attempted, "crashed": self.crashed,
                "empty_proofs": self.empty_proofs, "median_proof_seconds": self.median_proof_seconds()}


@dataclass
class ModuleResult(_Tally):
    module: str
    goals: list[GoalResult] = field(default_factory=list)
    seconds: float = 0.0

    def all_goals(self) -> list[GoalResult]:
        return self.goals

    def to_dict(self) -> dict:
        return {"module": self.module, **self.tally(), "seconds": round(self.seconds, 3),
                "goals": [g.to_dict() for g in self.goals]}


@dataclass
class ProverResult(_Tally):
    """One prover's results over the modules: `model` (acorn's generative prover) or `saturation`."""

    prover: str
    modules: list[ModuleResult] = field(default_factory=list)
    search_seconds: float | None = None  # the budget per goal that acorn applied

    def all_goals(self) -> list[GoalResult]:
        return [g for m in self.modules for g in m.goals]

    def to_dict(self) -> dict:
        return {"prover": self.prover, **self.tally(), "search_seconds": self.search_seconds,
                "modules": [m.to_dict() for m in self.modules]}


@dataclass
class ProveReport:
    model: str
    export: str | None
    acorn: str
    acornlib: str
    timeout: float
    jobs: int
    results: list[ProverResult] = field(default_factory=list)
    seconds: float = 0.0
    sample: dict | None = None  # the goals judged when they are a sample (goal_sample.GoalSample.to_dict())
    sample_summary: str | None = None  # its one line

    def result(self, prover: str) -> ProverResult | None:
        return next((r for r in self.results if r.prover == prover), None)

    def figures(self) -> dict | None:
        """The split's figures (`split_figures`), when the model was judged."""
        model = self.result("model")
        return None if model is None else split_figures(model, self.result("saturation"))

    def to_dict(self) -> dict:
        out = {
            "model": self.model, "export": self.export, "acorn": self.acorn, "acornlib": self.acornlib,
            "timeout": self.timeout, "jobs": self.jobs, "seconds": round(self.seconds, 3),
            "provers": {r.prover: r.to_dict() for r in self.results},
        }
        if self.result("model") is not None:
            out["figures"] = self.figures()
        if self.sample is not None:
            out["sample"] = self.sample
        return out


def _goal_id(goal: GoalResult) -> tuple[str, int, str]:
    return goal.module, goal.line, goal.name


def split_figures(model: ProverResult, saturation: ProverResult | None = None) -> dict:
    """What the bench prints for one split, from the per-goal results of the model's run and of
    saturation's on the same goals: proved, by the model's own lines (and which goals, with the
    lines acorn accepted), with no line (acorn's checker alone), acorn crashes, median time to
    proof, and the goals the model proved that saturation did not (None without a saturation
    run), beside saturation's own count."""
    out = {
        "attempted": model.attempted, "proved": model.proved, "own_lines": model.proved - model.empty_proofs,
        "no_line": model.empty_proofs, "crashed": model.crashed, "median_proof_seconds": model.median_proof_seconds(),
        "own_line_goals": [f"{g.module}:{g.line} {g.name}: {' / '.join(g.proof)}" for g in model.all_goals()
                           if g.proved and g.proof],
        "beyond_saturation": None, "beyond_saturation_own_lines": None, "beyond_saturation_goals": None,
        "saturation_proved": None, "saturation_attempted": None, "saturation_median_proof_seconds": None,
    }
    if saturation is None:
        return out
    judged = {_goal_id(g) for g in model.all_goals()}
    sat_goals = [g for g in saturation.all_goals() if _goal_id(g) in judged]  # the same goals, whatever was run
    sat_proved = {_goal_id(g) for g in sat_goals if g.proved}
    beyond = [g for g in model.all_goals() if g.proved and _goal_id(g) not in sat_proved]
    out.update(
        beyond_saturation=len(beyond), beyond_saturation_own_lines=sum(bool(g.proof) for g in beyond),
        beyond_saturation_goals=[f"{g.module}:{g.line} {g.name}" for g in beyond],
        saturation_proved=len(sat_proved), saturation_attempted=len(sat_goals),
        saturation_median_proof_seconds=_median([g.seconds for g in sat_goals if g.proved and g.seconds is not None]),
    )
    return out


def _median(times: list[float]) -> float | None:
    return round(statistics.median(times), 3) if times else None


def figures_line(figures: dict) -> str:
    """One split's figures in one line (bench/real_prover.py, `tactics prove` with a baseline)."""
    f = figures
    median = f["median_proof_seconds"]
    text = (
        f"proved {f['proved']}/{f['attempted']} ({f['own_lines']} by the model's own lines, {f['no_line']} with no "
        f"line), {f['crashed']} acorn crashes, median time to proof {'-' if median is None else f'{median:.2f} s'}"
    )
    if f["beyond_saturation"] is not None:
        text += (
            f"; proved by the model, not by saturation: {f['beyond_saturation']} ({f['beyond_saturation_own_lines']} "
            f"by own lines), saturation alone {f['saturation_proved']}/{f['saturation_attempted']}"
        )
    return text


# ------------------------------------------------------------------ running acorn


class ScratchLibrary:
    """A throw-away acornlib for acorn to write its build cache into; the user's checkout stays untouched."""

    def __init__(self, acornlib: Path, modules: Sequence[str]) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="tactics-acorn-"))
        toml = acornlib / "acorn.toml"
        if toml.is_file():
            shutil.copyfile(toml, self.path / "acorn.toml")
        else:
            (self.path / "acorn.toml").write_text("", encoding="utf-8")
        os.symlink((acornlib / "src").resolve(), self.path / "src", target_is_directory=True)
        for module in modules:
            rel = Path(*module.split(".")).with_suffix(".jsonl")
            source = acornlib / "build" / rel
            if source.is_file():
                (self.path / "build" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, self.path / "build" / rel)
        (self.path / "build").mkdir(exist_ok=True)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> "ScratchLibrary":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_acorn(
    setup: AcornSetup, library: Path, args: Sequence[str], rust_log: str, limit: float,
    cancel: CancelToken | None = None,
) -> tuple[list[tuple[float, str]], int]:
    """Run `acorn --lib LIBRARY ARGS`; return its output lines stamped with seconds since start, and its code.

    Killed past `limit` seconds or when `cancel` is set (then `Cancelled`).
    """
    env = setup.environment()
    env["RUST_LOG"] = rust_log
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            [str(setup.binary), "--lib", str(library), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, text=True, errors="replace", bufsize=1,
        )
    except OSError as exc:
        raise TacticsError(f"{setup.binary} does not run ({exc})") from None
    stamped: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            stamped.append((time.monotonic() - start, line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    killed = False
    while reader.is_alive():
        reader.join(0.1)
        if (cancel is not None and cancel.cancelled) or time.monotonic() - start > limit:
            proc.kill()
            killed = True
            reader.join(5)
            break
    code = proc.wait()
    check(cancel)
    if killed:
        stamped.append((time.monotonic() - start, f"tactics: killed after {limit:.0f}s"))
    return stamped, code


def list_goals(setup: AcornSetup, library: Path, module: str, cancel: CancelToken | None = None) -> list[Goal]:
    """The module's goals, in acorn's order, from a `reverify` with the checker's trace (no search)."""
    stamped, code = run_acorn(setup, library, ["reverify", module], "acorn::checker=trace", PROCESS_GRACE, cancel)
    text = [s for _, s in stamped]
    goals = parse_goal_listing(text)
    for line in text:
        if _NO_LIBRARY in line:
            raise TacticsError(_library_message(setup, line))
    if code != 0 and not goals:
        tail = next((s.strip() for s in reversed(text) if s.strip()), f"exit code {code}")
        raise TacticsError(f"acorn could not read module {module} of {setup.acornlib}: {tail[:200]}")
    return goals


def prove_goals(
    setup: AcornSetup, library: Path, module: str, goals: Sequence[Goal], export: Path | None,
    timeout: float, cancel: CancelToken | None = None,
) -> list[GoalResult]:
    """Search the goals that start on one line (usually one) in one acorn process."""
    line = goals[0].line
    args = ["reprove", f"{module}:{line}", "--timeout", f"{timeout:g}"]
    if export is not None:
        args += ["--generative", str(export)]
    budget = (GENERATIVE_SECONDS if export is not None else timeout) * len(goals)
    stamped, code = run_acorn(setup, library, args, "acorn::processor=debug", budget + PROCESS_GRACE, cancel)
    verdicts, fatal = parse_goal_run(stamped, code)
    if fatal is not None:
        if _NO_LIBRARY in fatal:
            raise TacticsError(_library_message(setup, fatal))
        if export is not None and "generative model" in fatal.lower():
            raise TacticsError(f"acorn refused the export {export}: {refusal_words(fatal)}")
        raise TacticsError(f"acorn failed on {module}:{line} before searching: {fatal}")
    results = []
    for k, goal in enumerate(goals):
        if k < len(verdicts):
            v = verdicts[k]
            results.append(GoalResult(module, goal.name, goal.line, v.outcome, v.seconds,
                                      list(v.proof) if v.proof is not None else None, v.message))
        else:
            message = verdicts[-1].message if verdicts and verdicts[-1].outcome == "crashed" else None
            results.append(GoalResult(module, goal.name, goal.line, "not run", None, None,
                                      message or f"acorn stopped before this goal (exit code {code})"))
    return results


def refusal_words(fatal: str) -> str:
    """The part of acorn's model-loading panic a user can act on (ONNX Runtime's own message)."""
    m = re.search(r'msg: "(?P<msg>.*?)(?:\\n)?" \}', fatal)
    if not m:
        return fatal
    msg = m["msg"]
    # "... model.cc:180 onnxruntime::Model::Model(<signature>) Unsupported model IR version: 11, ..."
    tail = msg.rsplit(") ", 1)[-1] if ") " in msg else msg
    return f"{tail.strip()} (ONNX Runtime 1.20 in acorn)"


GoalCallback = Callable[[str, GoalResult], None]
# Which of a module's listed goals to judge (all when None): goal_sample.GoalSample.choose.
GoalChooser = Callable[[str, Sequence[Goal]], Sequence[Goal]]


def prove_modules(
    setup: AcornSetup,
    modules: Sequence[str],
    export: Path | None,
    timeout: float = GENERATIVE_SECONDS,
    baseline: bool = False,
    jobs: int = 1,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    on_goal: GoalCallback | None = None,
    choose: GoalChooser | None = None,
) -> list[ProverResult]:
    """Run acorn's generative prover (with `export`) and/or its saturation prover on every goal of `modules`.

    `export` None runs the saturation prover only. `jobs` acorn processes run
    at once (each is single-threaded; the 5 s budget is wall-clock, so leave a
    core per job). `choose(module, listed)` keeps some of a module's listed
    goals (a sample's goal lines); every prover judges the same ones.
    """
    stop = _LinkedCancel(cancel)  # one failed goal stops the processes still running beside it
    provers: list[tuple[str, Path | None]] = []
    if export is not None:
        provers.append(("model", export))
    if baseline or export is None:
        provers.append(("saturation", None))
    results = {name: ProverResult(name, search_seconds=GENERATIVE_SECONDS if path else timeout) for name, path in provers}
    with ScratchLibrary(setup.acornlib, modules) as scratch:
        listed: dict[str, list[Goal]] = {}
        for k, module in enumerate(modules):
            stop.check()
            report(progress, 0, None, f"listing the goals of {module} ({k + 1}/{len(modules)})")
            listed[module] = list_goals(setup, scratch.path, module, stop)
            if choose is not None:
                listed[module] = list(choose(module, listed[module]))
        total = sum(len(g) for g in listed.values()) * len(provers)
        done = 0
        lock = threading.Lock()
        report(progress, 0, total, "proving")
        for name, path in provers:
            for module in modules:
                groups = _by_line(listed[module])
                module_result = ModuleResult(module)
                start = time.monotonic()
                with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                    futures = [pool.submit(prove_goals, setup, scratch.path, module, g, path, timeout, stop)
                               for g in groups]
                    try:
                        for future in futures:
                            goal_results = future.result()
                            module_result.goals.extend(goal_results)
                            with lock:
                                done += len(goal_results)
                            for r in goal_results:
                                if on_goal is not None:
                                    on_goal(name, r)
                            report(progress, done, total, f"{name}: {module} {module_result.proved}/{len(listed[module])}")
                    except BaseException:
                        stop.cancel()
                        raise
                module_result.seconds = time.monotonic() - start
                results[name].modules.append(module_result)
    return [results[name] for name, _ in provers]


class _LinkedCancel(CancelToken):
    """Set by itself or by the caller's token."""

    def __init__(self, outer: CancelToken | None) -> None:
        super().__init__()
        self.outer = outer

    @property
    def cancelled(self) -> bool:
        return super().cancelled or (self.outer is not None and self.outer.cancelled)

    def check(self) -> None:
        if self.cancelled:
            raise Cancelled()


def _by_line(goals: Sequence[Goal]) -> list[list[Goal]]:
    """Goals grouped by first line, in order of first appearance (one acorn process per group)."""
    groups: dict[int, list[Goal]] = {}
    for goal in goals:
        groups.setdefault(goal.line, []).append(goal)
    return list(groups.values())


def prove(
    model: str | os.PathLike,
    setup: AcornSetup,
    modules: Sequence[str] = (),
    timeout: float = GENERATIVE_SECONDS,
    baseline: bool = False,
    jobs: int = 1,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    on_goal: GoalCallback | None = None,
    sample: GoalSample | None = None,
) -> ProveReport:
    """`tactics prove`: judge a model (an export folder or a checkpoint, exported first) with the real prover.

    With `sample` (goal_sample.seen_subject_goals: new theorems of seen subjects), the goals
    are its goal lines instead of every goal of `modules` (which must then be empty).
    """
    from tactics_core.gpt.complete import EXPORT_MODEL_FILE

    start = time.monotonic()
    if sample is not None:
        if modules:
            raise TacticsError("give --module or a sample of goal lines (--seen-subjects), not both")
        known = set(library_modules(setup.acornlib))
        missing = [m for m in sample.modules if m not in known]
        if missing:
            raise TacticsError(
                f"{len(missing)} of the sample's {len(sample.modules)} modules have no certificates in "
                f"{setup.acornlib} (first: {missing[0]}): {sample.data_dir} was imported from another acornlib; "
                f"judge it with the checkout it was imported from"
            )
        chosen = sample.modules
    else:
        chosen = select_modules(setup.acornlib, modules)
    model_path = Path(model)
    temp: Path | None = None
    try:
        if model_path.is_dir():
            if not (model_path / EXPORT_MODEL_FILE).is_file():
                raise TacticsError(f"{model_path} is not an export folder (no {EXPORT_MODEL_FILE}); give a checkpoint or `tactics export` first")
            export = model_path.resolve()
        elif model_path.is_file():
            from tactics_core.gpt.export import export_model

            temp = Path(tempfile.mkdtemp(prefix="tactics-prove-"))
            report(progress, 0, None, f"exporting {model_path.name}")
            export = Path(export_model(model_path, temp / "export", cancel=cancel).path).resolve()
        else:
            raise TacticsError(f"model {model_path} not found; give an export folder or a checkpoint .pt")
        results = prove_modules(setup, chosen, export, timeout, baseline, jobs, progress, cancel, on_goal,
                                choose=None if sample is None else sample.choose)
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    return ProveReport(
        model=str(model_path), export=str(export) if temp is None else None, acorn=str(setup.binary),
        acornlib=str(setup.acornlib), timeout=timeout, jobs=jobs, results=results,
        seconds=time.monotonic() - start,
        sample=None if sample is None else sample.to_dict(),
        sample_summary=None if sample is None else sample.summary(),
    )


def report_text(report: ProveReport) -> str:
    """The per-module table and totals: what `tactics prove` prints and the Checkpoints screen shows."""
    # Under 70 columns with both provers, so the TUI's dialog (80x24) shows it unwrapped; module
    # names are short (the longest of acornlib c30e377: 21 characters). "median s" is the model's.
    provers = [r.prover for r in report.results]
    head = f"{'module':28s} {'goals':>5s}" + "".join(f" {p:>11s}" for p in provers) + "  median s"
    lines = [f"{report.model} judged by {report.acorn} on {report.acornlib}"]
    if report.sample_summary:
        lines.append(report.sample_summary)
    lines += [head, "-" * len(head)]
    modules = [m.module for m in report.results[0].modules] if report.results else []
    for i, name in enumerate(modules):
        cells, attempted, median = "", 0, None
        for r in report.results:
            m = r.modules[i]
            attempted = m.attempted
            crash = f" ({m.crashed}c)" if m.crashed else ""
            cells += f" {f'{m.proved}{crash}':>11s}"
            if r.prover == "model":
                median = m.median_proof_seconds()
        lines.append(f"{name:28s} {attempted:5d}{cells}  {'-' if median is None else f'{median:.2f}'}")
    lines.append("-" * len(head))
    for r in report.results:
        share = r.proved / r.attempted if r.attempted else 0.0
        median = r.median_proof_seconds()
        budget = f"{r.search_seconds:g} s per goal" if r.search_seconds else ""
        lines.append(
            f"{r.prover:10s} proved {r.proved}/{r.attempted} ({share:.1%}; {r.empty_proofs} with no line: acorn's "
            f"checker alone), {r.crashed} acorn crashes, median time to proof "
            f"{'-' if median is None else f'{median:.2f} s'}, {budget}"
        )
    figures = report.figures()
    if figures is not None and figures["beyond_saturation"] is not None:
        lines.append(
            f"proved by the model, not by saturation: {figures['beyond_saturation']} "
            f"({figures['beyond_saturation_own_lines']} by the model's own lines); saturation alone proved "
            f"{figures['saturation_proved']}/{figures['saturation_attempted']}"
        )
    if report.sample and report.sample.get("unlisted"):
        unlisted = report.sample["unlisted"]
        lines.append(f"{len(unlisted)} sampled goal lines left out: {unlisted[0]}" + (" ..." if len(unlisted) > 1 else ""))
    crashes = [g for r in report.results for m in r.modules for g in m.goals if g.outcome == "crashed"]
    if crashes:
        lines.append(f"acorn crashed on {len(crashes)} goals: {crashes[0].message} (first: {crashes[0].module}:{crashes[0].line})")
    lines.append(f"time {report.seconds:.0f} s, {report.jobs} acorn process(es) at once")
    return "\n".join(lines)


__all__ = [
    "AcornSetup", "Goal", "GoalResult", "ModuleResult", "ProverResult", "ProveReport", "Verdict",
    "resolve_setup", "check_binary", "check_acornlib", "library_modules", "select_modules", "parse_goal_listing",
    "parse_goal_run", "list_goals", "prove_goals", "prove_modules", "prove", "report_text", "save_settings",
    "split_figures", "figures_line",
]
