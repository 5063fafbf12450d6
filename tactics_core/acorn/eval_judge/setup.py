"""Which acorn 0.2.6 and acornlib judge a scorer: flags, `TACTICS_ACORN_EVAL*`, `[acorn_eval]`; checked; its policies and buckets."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tactics_core.acorn.generative_judge import chosen_paths, find_binary, read_settings, ENV_ORT_LIB, SETTINGS_FILE, AcornSetup
from tactics_core.scorer.buckets import parse_buckets as _parse_buckets
from tactics_core.common.errors import TacticsError

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

NO_LIBRARY = "error while loading shared libraries"



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
    if NO_LIBRARY in text:
        raise TacticsError(library_message(setup))
    if out.returncode != 0 or "--model" not in text or "--trace-out" not in text:
        said = first_line(text)
        raise TacticsError(
            f"{setup.binary} has no `acorn eval --model` (it is an older acorn: `eval --help` said: {said[:120]}); "
            f"build acorn {EVAL_COMMIT} (release {EVAL_RELEASE}) and pass it with --acorn or {ENV_EVAL_BINARY}"
        )
    if key is not None:
        _CHECKED.add(key)


def library_message(setup: AcornSetup) -> str:
    return (
        f"{setup.binary} cannot load libonnxruntime.so.1: point {ENV_ORT_LIB} (or ort_lib in [{SETTINGS_TABLE}] "
        f"of {SETTINGS_FILE}) at the folder holding ONNX Runtime 1.20's libonnxruntime.so.1"
    )


def first_line(text: str) -> str:
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
