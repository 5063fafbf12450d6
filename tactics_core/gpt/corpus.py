"""Proof files: parse and validate them, stream a corpus folder, count it.

A proof file is one proof goal in the format that acorn's removed `training`
command wrote (and the shared corpora keep): marker lines `@T` (theorem prefix,
optional), `@G` (goal), `@H` (hypothesis, optional), `@C` (counterfactual),
`@P` (proof lines, optional), in that order. Every later stage (tokenizer,
token cache, evaluation, the prover prompt) reads files only through this
module, so a bad file is caught once, here, and reported with its name instead
of crashing a training run an hour later.

Reading is streaming: one file at a time, each capped in size, so a corpus of
any size gives its stats with flat memory.
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn, check, report

MARKERS = ("T", "G", "H", "C", "P")
SECTION_MARKERS = frozenset(f"@{m}" for m in MARKERS)  # a line that is one of these is no proof line
MARKER_NAMES = {
    "T": "theorem prefix",
    "G": "goal",
    "H": "hypothesis",
    "C": "counterfactual",
    "P": "proof",
}
# Which files in a data folder are proof files (the original scripts wrote proof_NNNNN.txt).
PROOF_SUFFIX = ".txt"
# Guards against things that are not proof files. The largest real file (acornlib-2026-08)
# is 787,827 bytes and its longest line 1,888 characters, so these never hit real data.
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_LINE_CHARS = 64 * 1024

_MARKER_LIKE = re.compile(r"@[A-Za-z]")
# C0 control characters other than tab, LF, VT, FF, CR, plus DEL: a text file never has them.
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
_BINARY_SET = bytes([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])
_BOM = b"\xef\xbb\xbf"


class CorpusProblem(TacticsError):
    """One proof file is unusable; `file` names it and `problem` says why."""

    def __init__(self, file: str, problem: str) -> None:
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.problem = problem


@dataclass(frozen=True)
class Problem:
    """A skipped file and what is wrong with it (what `on_problem` receives)."""

    file: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}"

    def to_dict(self) -> dict:
        return {"file": self.file, "problem": self.problem}


def _section_text(marker: str, lines: tuple[str, ...]) -> str:
    return f"@{marker}\n" + "".join(line + "\n" for line in lines)


@dataclass(frozen=True)
class ProofFile:
    """One parsed proof goal. Sections are tuples of lines without marker or newline.

    `theorem` and `hypothesis` are empty tuples when the file has no `@T` / `@H`;
    `proof` is `None` when the file has no `@P` line at all, and `()` for a bare `@P`.
    """

    name: str
    theorem: tuple[str, ...]
    goal: tuple[str, ...]
    hypothesis: tuple[str, ...]
    counterfactual: tuple[str, ...]
    proof: tuple[str, ...] | None

    @property
    def has_proof(self) -> bool:
        return self.proof is not None

    def context_text(self) -> str:
        """The `@T @G @H @C` sections (what the prover knows), LF line ends."""
        parts = []
        if self.theorem:
            parts.append(_section_text("T", self.theorem))
        parts.append(_section_text("G", self.goal))
        if self.hypothesis:
            parts.append(_section_text("H", self.hypothesis))
        parts.append(_section_text("C", self.counterfactual))
        return "".join(parts)

    def text(self) -> str:
        """The whole file as training text: context, `@P`, one line per proof line.

        A file without `@P` gives just its context, so `text()` reproduces a
        well-formed LF file byte for byte.
        """
        if self.proof is None:
            return self.context_text()
        return self.context_text() + _section_text("P", self.proof)

    def prompt(self, proof_so_far: tuple[str, ...] | list[str] = ()) -> str:
        """The text a `file`-layout model continues: context + `@P` + the proof lines so far,
        so its next line is the next proof step (the prover's prompt: `prover.build_prompt`)."""
        return self.context_text() + _section_text("P", tuple(proof_so_far))

    def theorem_key(self) -> str:
        """What groups the goal files of one theorem, for the train/validation split.

        Files with `@T` start with the theorem's first source line; a
        theorem-level goal file has it as the first line of `@G`. The key is
        that line with whitespace collapsed and cut before its first `{`
        (a one-line theorem `theorem t { x } by {` and its goal file
        `theorem t { x }` then agree). Deterministic and stable across runs;
        hash it with hashlib, not `hash()`.
        """
        lines = self.theorem if self.theorem else self.goal
        first = next((line for line in lines if line.strip()), lines[0])
        return theorem_key_of_line(first)


def theorem_key_of_line(line: str) -> str:
    """Normalise a theorem's first source line into its grouping key."""
    key = " ".join(line.split())
    brace = key.find("{")
    if brace >= 0:
        key = key[:brace].rstrip()
    if key.endswith(" by"):
        key = key[:-3].rstrip()
    return key or " ".join(line.split())


def _line_at(text: str, start: int) -> tuple[str, int]:
    """The line starting at `start` and the index just past its newline."""
    end = text.find("\n", start)
    if end < 0:
        return text[start:], len(text)
    return text[start:end], end + 1


def _section_lines(text: str, start: int, end: int) -> list[str]:
    chunk = text[start:end]
    if not chunk:
        return []
    if chunk.endswith("\n"):
        chunk = chunk[:-1]
    return chunk.split("\n")


def _line_number(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def normalize_line(text: str) -> str:
    """A proof line with whitespace runs collapsed and ends stripped (for dedup and exact match)."""
    return " ".join(text.split())


def as_proof_file(context: ProofFile | str, name: str = "<prompt>") -> ProofFile:
    """A ProofFile from a ProofFile or from proof-file text (what the prompt builders accept)."""
    return parse_proof_text(context, name) if isinstance(context, str) else context


def parse_proof_text(text: str, name: str) -> ProofFile:
    """Parse one proof file's text; raise `CorpusProblem` saying what is wrong.

    Accepts a UTF-8 BOM, CRLF or CR line ends and a missing final newline. A line
    that starts with `@` and a letter is a marker (real proof lines never
    start with `@`); anything else is content. Only lines starting with `@`
    are inspected one by one, which keeps a 40 MB corpus fast.
    """
    text = _normalized_text(text, name)
    found = _find_markers(text, name)
    sections = _sections(text, found, name)
    proof = tuple(sections["P"]) if "P" in sections else None
    return ProofFile(
        name=name,
        theorem=tuple(sections.get("T", ())),
        goal=tuple(sections["G"]),
        hypothesis=tuple(sections.get("H", ())),
        counterfactual=tuple(sections["C"]),
        proof=proof,
    )


def _normalized_text(text: str, name: str) -> str:
    """The text without BOM, with LF line ends; refused when empty or with an absurdly long line."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:  # CRLF (Windows) and lone CR (old Mac) line ends
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise CorpusProblem(name, "empty file" if not text else "only whitespace, no sections")
    if len(text) > MAX_LINE_CHARS:
        offset = 0
        for line in text.split("\n"):
            if len(line) > MAX_LINE_CHARS:
                raise CorpusProblem(
                    name,
                    f"line {_line_number(text, offset)} is {len(line):,} characters long "
                    f"(limit {MAX_LINE_CHARS:,}); not a proof file?",
                )
            offset += len(line) + 1
    return text


def _find_markers(text: str, name: str) -> list[tuple[str, int, int]]:
    """(marker, offset of the marker line, content start) of every marker line, visiting only
    the lines that start with `@`; an unknown marker or text before the first is refused."""
    found: list[tuple[str, int, int]] = []
    if text.startswith("@"):
        at = 0
    else:
        nxt = text.find("\n@")
        at = nxt + 1 if nxt >= 0 else -1
    while at >= 0:
        line, after = _line_at(text, at)
        if _MARKER_LIKE.match(line):
            word = line.rstrip()
            if len(word) != 2 or word[1] not in MARKERS:
                shown = word if len(word) <= 20 else word[:20] + "..."
                raise CorpusProblem(
                    name,
                    f"unknown marker {shown} on line {_line_number(text, at)} (known: @T @G @H @C @P)",
                )
            found.append((word[1], at, after))
        nxt = text.find("\n@", at)
        at = nxt + 1 if nxt >= 0 else -1
    if not found:
        raise CorpusProblem(name, "no section markers; a proof file has @G and @C sections")
    head = text[: found[0][1]]
    if head.strip():
        raise CorpusProblem(
            name,
            f"text before the first marker on line {_line_number(text, len(head) - len(head.lstrip()))}; "
            f"a proof file starts with @T or @G",
        )
    return found


def _sections(text: str, found: list[tuple[str, int, int]], name: str) -> dict[str, list[str]]:
    """{marker: its lines}: each marker once, in the order @T @G @H @C @P, @G and @C present,
    no empty section but the proof."""
    sections: dict[str, list[str]] = {}
    order_index = -1
    previous = ""
    for i, (marker, at, content) in enumerate(found):
        index = MARKERS.index(marker)
        if marker in sections:
            raise CorpusProblem(name, f"duplicate @{marker} on line {_line_number(text, at)}")
        if index < order_index:
            raise CorpusProblem(
                name,
                f"@{marker} on line {_line_number(text, at)} comes after @{previous}; "
                f"markers must be in the order @T @G @H @C @P",
            )
        end = found[i + 1][1] if i + 1 < len(found) else len(text)
        sections[marker] = _section_lines(text, content, end)
        order_index = index
        previous = marker
    for required in ("G", "C"):
        if required not in sections:
            raise CorpusProblem(name, f"missing @{required} ({MARKER_NAMES[required]}) section")
    for marker in ("T", "G", "H", "C"):
        if marker in sections and not any(line.strip() for line in sections[marker]):
            raise CorpusProblem(name, f"@{marker} ({MARKER_NAMES[marker]}) section is empty")
    return sections


def _describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "vanished while the corpus was read (file not found)"
    if exc.errno == errno.ELOOP:
        return "symbolic link loop (too many levels of symbolic links); remove the link"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "cannot be read (permission denied); fix its permissions"
    if exc.errno == errno.EISDIR:
        return "is a directory, not a proof file"
    return f"cannot be read ({exc.strerror or exc})"


def read_proof_bytes(path: Path) -> bytes:
    """Read a proof file's bytes safely; raise `CorpusProblem` for anything not a small regular file.

    Opens non-blocking so a FIFO named like a proof file cannot hang the scan,
    and reads at most `MAX_FILE_BYTES` + 1 bytes.
    """
    name = path.name
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise CorpusProblem(name, _describe_os_error(exc)) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise CorpusProblem(name, "is a directory, not a proof file")
        if not stat.S_ISREG(info.st_mode):
            raise CorpusProblem(name, "is not a regular file (a pipe, socket or device?)")
        if info.st_size > MAX_FILE_BYTES:
            raise CorpusProblem(
                name, f"too large ({info.st_size:,} bytes, limit {MAX_FILE_BYTES:,}); split or remove it"
            )
        chunks = []
        remaining = MAX_FILE_BYTES + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise CorpusProblem(name, _describe_os_error(exc)) from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise CorpusProblem(name, f"too large (over {MAX_FILE_BYTES:,} bytes); split or remove it")
    return data


def decode_proof_bytes(data: bytes, name: str) -> str:
    """UTF-8 (optional BOM) text, or `CorpusProblem` for binary / non-UTF-8 bytes.

    Offsets in the messages count from the start of the file, BOM included.
    """
    skip = len(_BOM) if data.startswith(_BOM) else 0
    if len(data.translate(None, _BINARY_SET)) != len(data):  # fast check, then locate
        binary = _BINARY_BYTES.search(data, skip)
        raise CorpusProblem(
            name, f"binary data (byte 0x{binary.group()[0]:02x} at offset {binary.start()}); not a text file"
        )
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + skip
        raise CorpusProblem(
            name, f"not UTF-8 text (byte 0x{data[offset]:02x} at offset {offset}); re-save it as UTF-8"
        ) from None


def read_proof_file(path: str | os.PathLike) -> ProofFile:
    """Read and parse one proof file; raise `CorpusProblem` if it is unusable."""
    path = Path(path)
    return parse_proof_text(decode_proof_bytes(read_proof_bytes(path), path.name), path.name)


def _missing_dir_message(data_dir: Path) -> str:
    return (
        f"data folder {data_dir} not found; run `tactics demo` for a demo corpus "
        f"or pass --data-dir DIR"
    )


def list_proof_files(data_dir: str | os.PathLike) -> list[Path]:
    """The proof files of a data folder (`*.txt`, not hidden), sorted by name.

    Raises `TacticsError` when the folder is missing, not a folder, or has no
    proof files. Entries named like proof files that are not regular files
    (folders, broken links) are listed too, so the reader reports them.
    """
    data_dir = Path(data_dir)
    return [data_dir / name for name in _proof_file_names(data_dir)]


def _proof_file_names(data_dir: Path) -> list[str]:
    """Sorted proof file names (plain strings: 15k Path objects alone cost ~5 MB)."""
    if not data_dir.exists():
        raise TacticsError(_missing_dir_message(data_dir))
    if not data_dir.is_dir():
        raise TacticsError(f"data folder {data_dir} is not a folder; pass --data-dir DIR with proof files")
    try:
        with os.scandir(data_dir) as entries:
            names = [e.name for e in entries if e.name.endswith(PROOF_SUFFIX) and not e.name.startswith(".")]
    except OSError as exc:
        raise TacticsError(f"data folder {data_dir} cannot be read ({exc.strerror}); check its permissions") from None
    if not names:
        raise TacticsError(
            f"data folder {data_dir} has no proof files (*{PROOF_SUFFIX}); "
            f"run `tactics demo` for a demo corpus or pass --data-dir DIR"
        )
    names.sort()
    return names


@dataclass(frozen=True)
class _Entry:
    path: Path
    file: ProofFile | None
    nbytes: int
    nchars: int
    problem: Problem | None


def _scan(
    data_dir: str | os.PathLike,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
    message: str,
) -> Iterator[_Entry]:
    data_dir = Path(data_dir)
    names = _proof_file_names(data_dir)
    total = len(names)
    report(progress, 0, total, message)
    good = 0
    skipped: list[Problem] = []
    for i, name in enumerate(names):
        check(cancel)
        path = data_dir / name
        try:
            data = read_proof_bytes(path)
            text = decode_proof_bytes(data, path.name)
            parsed = parse_proof_text(text, path.name)
        except CorpusProblem as exc:
            problem = Problem(exc.file, exc.problem)
            skipped.append(problem)
            yield _Entry(path, None, 0, 0, problem)
        else:
            good += 1
            yield _Entry(path, parsed, len(data), len(text), None)
        if (i + 1) % 64 == 0 or i + 1 == total:
            report(progress, i + 1, total, message)
    if good == 0:
        first = f"; first: {skipped[0]}" if skipped else ""
        raise TacticsError(
            f"no usable proof files in {data_dir} ({len(skipped)} skipped{first}); "
            f"fix them, run `tactics demo`, or pass --data-dir DIR"
        )


def iter_corpus(
    data_dir: str | os.PathLike,
    on_problem: Callable[[Problem], None] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[ProofFile]:
    """Stream the good proof files of a folder in file name order.

    Each bad file is reported once to `on_problem` and skipped. Raises
    `TacticsError` if the folder is missing or has no usable proof file at
    all (after reporting every problem).
    """
    for entry in _scan(data_dir, progress, cancel, "reading proof files"):
        if entry.problem is not None:
            if on_problem is not None:
                on_problem(entry.problem)
        else:
            yield entry.file


def percentile(sorted_values: list[int], q: float) -> float:
    """Nearest-rank percentile (the corpus READMEs' convention: median of 5,450 files = 695)."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class CorpusStats:
    """Counts over a corpus folder; `to_dict()` is the `--json` schema."""

    data_dir: str
    files: int = 0
    bytes: int = 0
    chars: int = 0
    theorems: int = 0
    section_counts: dict = field(default_factory=lambda: {m: 0 for m in MARKERS})
    nonempty_proofs: int = 0
    sizes: list = field(default_factory=list, repr=False)
    proof_line_counts: list = field(default_factory=list, repr=False)
    skipped: list = field(default_factory=list)
    seconds: float = 0.0

    def share(self, count: int) -> float:
        return count / self.files if self.files else 0.0

    def to_dict(self) -> dict:
        sizes = sorted(self.sizes)
        lines = sorted(self.proof_line_counts)
        return {
            "data_dir": self.data_dir,
            "files": self.files,
            "bytes": self.bytes,
            "chars": self.chars,
            "theorems": self.theorems,
            "sections": {m: round(self.share(self.section_counts[m]), 6) for m in MARKERS},
            "proof_nonempty": round(self.share(self.nonempty_proofs), 6),
            "size": {
                "mean": round(self.bytes / self.files, 1) if self.files else 0.0,
                "median": percentile(sizes, 50),
                "p95": percentile(sizes, 95),
                "max": sizes[-1] if sizes else 0,
                "min": sizes[0] if sizes else 0,
            },
            "proof_lines": {
                "goals": len(lines),
                "total": sum(lines),
                "mean": round(sum(lines) / len(lines), 3) if lines else 0.0,
                "median": percentile(lines, 50),
                "max": lines[-1] if lines else 0,
            },
            "skipped": [p.to_dict() for p in self.skipped],
            "seconds": round(self.seconds, 3),
        }


def corpus_stats(
    data_dir: str | os.PathLike,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> CorpusStats:
    """Stream a corpus folder once and count it (files, sizes, sections, proof lines, problems).

    Holds per-file sizes and proof-line counts (two ints a file) and the set of
    theorem keys, never the texts.
    """
    start = time.perf_counter()
    stats = CorpusStats(data_dir=str(data_dir))
    keys: set[str] = set()
    for entry in _scan(data_dir, progress, cancel, "counting proof files"):
        if entry.problem is not None:
            stats.skipped.append(entry.problem)
            continue
        pf = entry.file
        stats.files += 1
        stats.bytes += entry.nbytes
        stats.chars += entry.nchars
        stats.sizes.append(entry.nbytes)
        counts = stats.section_counts
        counts["G"] += 1
        counts["C"] += 1
        if pf.theorem:
            counts["T"] += 1
        if pf.hypothesis:
            counts["H"] += 1
        if pf.proof is not None:
            counts["P"] += 1
            stats.proof_line_counts.append(len(pf.proof))
            if pf.proof:
                stats.nonempty_proofs += 1
        keys.add(pf.theorem_key())
    stats.theorems = len(keys)
    stats.seconds = time.perf_counter() - start
    return stats

def check_corpus_target(data_dir: Path, force: bool) -> bool:
    """Whether `data_dir` holds something to replace; refuse when that is not allowed.

    What `tactics demo` and `tactics import acornlib` check before (and again right before
    swapping in) the corpus folder they write."""
    if not data_dir.exists() and not data_dir.is_symlink():
        return False
    if not data_dir.is_dir():
        raise TacticsError(f"{data_dir} exists and is not a folder; pass another --data-dir")
    entries = sorted(os.listdir(data_dir))
    if not entries:
        return False
    if not force:
        raise TacticsError(
            f"data folder {data_dir} is not empty ({len(entries)} entries); "
            f"pass --force to replace it or choose another --data-dir"
        )
    if data_dir.is_symlink() or any((data_dir / e).is_dir() for e in entries):
        raise TacticsError(
            f"data folder {data_dir} has subfolders or is a link, so it does not look like a proof folder; "
            f"refusing to replace it even with --force"
        )
    resolved = data_dir.resolve()
    if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents or resolved == Path.home():
        raise TacticsError(f"refusing to replace {data_dir}: it is the current, a parent or the home folder")
    return True
