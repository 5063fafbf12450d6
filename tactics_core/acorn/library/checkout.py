"""Reading an acornlib checkout: its source and certificate files (`walk_checkout`), the
modules they pair into, certificate files, and what goal finding needs of the whole tree."""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from tactics_core.acorn import types as acorn_types
from tactics_core.acorn.library.records import Certificate, Module, Problem
from tactics_core.acorn.library.source_parser import typeclass_conditions
from tactics_core.common.progress import CancelToken, check


# A source or certificate file bigger than this is not acornlib text (the largest 2026
# certificate file is about 2 MB); it is reported instead of read.
MAX_INPUT_BYTES = 64 * 1024 * 1024


SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", "target", ".venv"}


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


@dataclass
class _Tree:
    sources: set
    certs_2025: list
    certs_2026: list
    problems: list


def walk_checkout(root: Path, cancel: CancelToken | None) -> _Tree:
    """Every `.ac` source and certificate file under `root`, following folder links safely."""
    tree = _Tree(set(), [], [], [])
    seen: set = set()

    def visit(directory: Path, ancestors: tuple) -> None:
        check(cancel)
        try:
            st = directory.stat()
        except OSError as exc:
            tree.problems.append(Problem(_rel(directory, root) + "/", _os_reason(exc), kind="unreadable"))
            return
        ident = (st.st_dev, st.st_ino)
        if ident in ancestors:
            tree.problems.append(
                Problem(_rel(directory, root), "symlink loop (links back to a folder above it); skipped", kind="symlink-loop")
            )
            return
        if ident in seen:
            return  # the same folder through a second link: read it once
        seen.add(ident)
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            tree.problems.append(Problem(_rel(directory, root) + "/", _os_reason(exc), kind="unreadable"))
            return
        for entry in entries:
            path = directory / entry.name
            rel = _rel(path, root)
            try:
                is_dir = entry.is_dir()
                is_file = entry.is_file()
            except OSError:
                is_dir = is_file = False
            if is_dir:
                if entry.name.startswith(".") or entry.name in SKIP_DIRS:
                    continue
                visit(path, ancestors + (ident,))
                continue
            wanted = entry.name.endswith(".ac") or entry.name.endswith(".jsonl")
            if not wanted:
                continue
            if not is_file:
                if entry.is_symlink():
                    try:
                        os.stat(path)
                        reason, kind = "not a regular file; skipped", "unreadable"
                    except OSError as exc:
                        if getattr(exc, "errno", None) == 40:  # ELOOP
                            reason, kind = "symlink loop; skipped", "symlink-loop"
                        else:
                            reason, kind = "broken link; skipped", "unreadable"
                    tree.problems.append(Problem(rel, reason, kind=kind))
                continue
            if entry.name.endswith(".ac"):
                tree.sources.add(rel)
            elif rel.startswith("build/"):
                tree.certs_2025.append(rel)
            elif directory.name == "certs":
                tree.certs_2026.append(rel)

    visit(root, ())
    return tree


def _os_reason(exc: OSError) -> str:
    return f"cannot be read ({exc.strerror or exc}); skipped"


def find_modules(root: Path, tree: _Tree) -> tuple[list[Module], str]:
    """Pair certificate files with sources; sorted by source path (orphans by cert path, last)."""
    modules: list[Module] = []
    for cert in tree.certs_2025:
        stem = cert[len("build/") : -len(".jsonl")]
        source = None
        for candidate in (f"src/{stem}.ac", f"src/{stem}/default.ac"):
            if candidate in tree.sources:
                source = candidate
                break
        modules.append(Module(source, cert))
    for cert in tree.certs_2026:
        parent, name = cert.rsplit("/", 1)
        directory = parent[: -len("certs")].rstrip("/")
        candidate = f"{directory}/{name[: -len('.jsonl')]}.ac" if directory else f"{name[: -len('.jsonl')]}.ac"
        modules.append(Module(candidate if candidate in tree.sources else None, cert))
    modules.sort(key=lambda m: (m.source is None, m.source or m.cert, m.cert))
    layouts = [name for name, found in (("2025", tree.certs_2025), ("2026", tree.certs_2026)) if found]
    return modules, "+".join(layouts) or "none"


_BINARY = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")


def read_checkout_file(path: Path, rel: str) -> tuple[str | None, Problem | None]:
    """A file's text, or the problem that stops it being read. Text that is not UTF-8 is
    read with U+FFFD for each bad byte and comes with an `encoding` problem: the caller skips
    only what a replaced byte touches (one bad byte in a comment costs nothing)."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            return None, Problem(rel, "not a regular file; skipped", kind="unreadable")
        if st.st_size > MAX_INPUT_BYTES:
            return None, Problem(rel, f"{st.st_size:,} bytes is too big for acornlib text; skipped", kind="unreadable")
        with open(path, "rb") as fh:
            data = fh.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        kind = "symlink-loop" if getattr(exc, "errno", None) == 40 else "unreadable"
        return None, Problem(rel, _os_reason(exc), kind=kind)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    hit = _BINARY.search(data)
    if hit:
        return None, Problem(rel, f"binary data (byte 0x{data[hit.start()]:02x} at offset {hit.start()}); skipped", kind="encoding")
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return data.decode("utf-8", errors="replace"), Problem(
            rel,
            f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); read with replacement, "
            f"goals it touches skipped; re-save it as UTF-8",
            line, kind="encoding",
        )


REPLACED = "\ufffd"  # what a byte that is not UTF-8 reads as


def parse_certificates(text: str, rel: str) -> tuple[list[Certificate], list[Problem]]:
    """Certificate lines of either layout; bad lines become problems (one per line)."""
    certs: list[Certificate] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError as exc:
            problems.append(Problem(rel, f"not JSON ({exc.msg} at column {exc.colno}); line skipped", number, kind="json"))
            continue
        goal = row.get("goal") if isinstance(row, dict) else None
        if not isinstance(goal, str) or not goal.strip():
            problems.append(Problem(rel, 'no "goal" string; line skipped', number, kind="no-goal"))
            continue
        claims = row.get("proof") if "proof" in row else row.get("p")
        proof: list[str] = []
        ok = True
        for claim in claims or []:
            if isinstance(claim, dict):
                claim = claim.get("c")
            if not isinstance(claim, str):
                ok = False
                break
            proof.append(" ".join(claim.split("\n")))
        if not ok or not isinstance(claims, (list, type(None))):
            problems.append(Problem(rel, "proof claims are not strings; line skipped", number, kind="no-goal"))
            continue
        certs.append(Certificate(number, " ".join(goal.split("\n")), tuple(proof)))
    return certs, problems


_THEOREM_NAME = re.compile(r"^\s*(?:theorem|lemma)\s+([\w.]+)", re.M)


def scan_checkout(root: Path, sources, cancel: CancelToken | None = None,
                  library: acorn_types.Library | None = None) -> tuple[dict, frozenset]:
    """What goal finding needs from the whole checkout, one source at a time.

    Returns {typeclass: (parameter, conditions)} (`typeclass_conditions`: an instance takes
    one certificate per condition) and the set of theorem names (a claim `thm(args)` is a citation);
    fills `library` with the sources' signatures when given (style "acorn").
    """
    typeclasses: dict = {}
    theorems: set = set()
    for rel in sorted(sources):
        check(cancel)
        text, _problem = read_checkout_file(root / rel, rel)  # problems are reported with the module
        if text is None:
            continue
        theorems.update(_THEOREM_NAME.findall(text))
        if library is not None:
            library.add_module(rel, text)
        if "typeclass" in text:
            for name, conditions in typeclass_conditions(text.split("\n")).items():
                typeclasses.setdefault(name, conditions)
    return typeclasses, frozenset(theorems)


def not_a_checkout(root: Path, tree: _Tree) -> str:
    sources = len(tree.sources)
    found = f"{sources:,} .ac sources but no certificates" if sources else "no .ac sources and no certificates"
    return (
        f"{root} is not an acornlib checkout: found {found} "
        f"(looked for build/**/*.jsonl beside src/ and for <dir>/certs/*.jsonl beside <dir>/*.ac); "
        f"pass the folder you cloned acornlib into"
    )
