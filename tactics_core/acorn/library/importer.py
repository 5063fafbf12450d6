"""`tactics import acornlib`: turn an acornlib checkout into a proof-goal corpus.

acorn's `training` command (which wrote one `@T/@G/@H/@C/@P` file per proof
goal) was removed in January 2026, and `acorn export` no longer fills in
proofs, so the only place the proofs still live is acornlib itself: next to
every module's source sit its certificates, the proof claims the prover
found. This module pairs each certificate file with its source, finds each
certificate's goal in the source with a small brace/line parser, and writes
the files the way the shared corpora (`acornlib-2025-11`) were made; their
README ("Format", "How the files were derived") is the specification
followed here.

Two certificate layouts are read:

- 2025: `build/<module>.jsonl`, lines `{"goal": G, "proof": [claims] | null}`,
  source `src/<module>.ac` or `src/<module>/default.ac`;
- 2026: `<dir>/certs/<stem>.jsonl`, lines `{"goal": G, "p": [{"c": claim}, ...]}`,
  source `<dir>/<stem>.ac`.

The import is deterministic (modules in sorted source-path order,
certificates in file order, no hash-ordered output), streams one module at a
time (memory stays flat however big the checkout), is cancellable, and is
atomic: files go into a hidden folder beside the data folder that is swapped
in whole at the end. Bad input never stops it: every unusable line or file
becomes a `Problem` in the summary and the rest is imported.
"""

from __future__ import annotations

import fnmatch
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from tactics_core.acorn import types as acorn_types
from tactics_core.acorn.library.alignment import Placement, locate
from tactics_core.acorn.library.checkout import REPLACED, find_modules, not_a_checkout, parse_certificates, read_checkout_file, scan_checkout, walk_checkout
from tactics_core.acorn.library.records import Certificate, ImportReport, Module, Problem
from tactics_core.acorn.library.rendering import ModuleContext, STYLES, render
from tactics_core.acorn.library.source_parser import Slot, SourceParser
from tactics_core.common.atomic import atomic_path, swap_dir
from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn, check, report
from tactics_core.common.workspace import MANIFEST_FILE
from tactics_core.gpt.corpus import check_corpus_target


def _count_lines(text: str | None) -> int:
    return 0 if text is None else sum(1 for line in text.split("\n") if line.strip())


def _selected(path: str, include: list, exclude: list) -> bool:
    if include and not any(fnmatch.fnmatchcase(path, g) for g in include):
        return False
    return not any(fnmatch.fnmatchcase(path, g) for g in exclude)


def module_files(
    text: str, certs: list[Certificate], typeclasses: dict, theorem_names: frozenset = frozenset(),
    style: str = "published", context: ModuleContext | None = None,
) -> Iterator[tuple[Certificate, Placement, str]]:
    """Each certificate of one module with its placement and proof file text."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    slots = SourceParser(lines, theorem_names).parse(typeclasses)
    placements = locate(certs, slots)
    theorems = [s for s in slots if s.kind == "theorem"]
    scans: dict = {}  # one _BlockScan per theorem (style "acorn")
    for cert, placement in zip(certs, placements):
        enclosing = None
        if placement.slot is None:
            enclosing = _enclosing_for_unlocated(cert, certs, placements, theorems)
        yield cert, placement, render(cert, placement, lines, enclosing, style, context, scans)


def _enclosing_for_unlocated(cert, certs, placements, theorems) -> Slot | None:
    """The theorem whose certificate follows an unlocated one (claims come before their theorem)."""
    index = certs.index(cert)
    for p in placements[index + 1 :]:
        if p.slot is not None and p.slot.kind == "theorem":
            return p.slot
    return None


def import_acornlib(
    path: str | os.PathLike,
    data_dir: str | os.PathLike = "data/proofs",
    include: list | None = None,
    exclude: list | None = None,
    max_bytes: int = 0,
    force: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    style: str = "published",
) -> ImportReport:
    """Write the corpus of an acornlib checkout into `data_dir` and `manifest.jsonl` beside it.

    The files are built in a hidden folder beside `data_dir` and swapped in
    whole at the end; a non-empty `data_dir` is replaced only with `force`.
    `style`: the files as the published corpora write them or as acorn f47631b0's
    `training` does (and its prover asks); see `render`.
    """
    start = time.perf_counter()
    root = Path(path).expanduser()
    include = list(include or [])
    exclude = list(exclude or [])
    if max_bytes < 0:
        raise TacticsError(f"--max-bytes must be 0 (no cap) or positive (got {max_bytes})")
    if style not in STYLES:
        raise TacticsError(f"--style must be one of {', '.join(STYLES)} (got {style!r})")
    if not root.exists():
        raise TacticsError(f"acornlib folder {root} not found; pass the folder you cloned acornlib into")
    if not root.is_dir():
        raise TacticsError(f"{root} is not a folder; pass the folder you cloned acornlib into")
    data_dir = Path(data_dir)
    manifest_path = data_dir.parent / MANIFEST_FILE
    report(progress, 0, None, f"looking for modules in {root}")
    tree = walk_checkout(root, cancel)
    modules, layout = find_modules(root, tree)
    if not modules:
        raise TacticsError(not_a_checkout(root, tree))
    check_corpus_target(data_dir, force)
    result = ImportReport(str(root), str(data_dir), str(manifest_path), layout)
    result.problems.extend(tree.problems)
    selected = [m for m in modules if _selected(m.source or m.cert, include, exclude)]
    if not selected:
        raise TacticsError(
            f"no module of {root} matches --include {include or '*'} / --exclude {exclude or '-'} "
            f"(module paths look like {modules[0].source or modules[0].cert}); loosen the globs"
        )
    library = acorn_types.Library() if style == "acorn" else None
    typeclasses, theorem_names = scan_checkout(root, tree.sources, cancel, library)
    report(progress, 0, len(selected), "counting certificates")
    digits = name_digits(sum(_count_certificates(root / m.cert) for m in selected if m.source is not None))

    # The folder is swapped in first, then the manifest replaced (both atomically); a failure
    # before the swap leaves the old folder and the old manifest as they were.
    with atomic_path(manifest_path) as manifest_tmp, swap_dir(data_dir, lambda: check_corpus_target(data_dir, force)) as swap:
        with open(manifest_tmp, "w", encoding="utf-8", newline="\n") as manifest:
            job = _Job(root, (typeclasses, theorem_names), swap.path, manifest, result, max_bytes, cancel, style, digits, library)
            for done, module in enumerate(selected):
                check(cancel)
                report(progress, done, len(selected), module.source or module.cert)
                _import_module(job, module)
            report(progress, len(selected), len(selected), "swapping the new corpus in")
        check(cancel)
    result.replaced = swap.replaced
    result.seconds = time.perf_counter() - start
    report(progress, len(selected), len(selected), "done")
    return result


def name_digits(count: int) -> int:
    """Digits in `proof_N.txt` for a corpus of `count` files: 5 as the published corpora, more
    only when needed, so that name order is number order in every corpus."""
    return max(5, len(str(max(count - 1, 0))))


def _count_certificates(path: Path) -> int:
    """Non-blank lines of a certificate file (an upper bound on the files it yields); 0 if unreadable."""
    try:
        with open(path, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    except OSError:
        return 0


@dataclass
class _Job:
    """What every module of one import shares."""

    root: Path
    scanned: tuple
    tmp: Path
    manifest: object
    result: ImportReport
    max_bytes: int
    cancel: CancelToken | None
    style: str
    digits: int
    library: acorn_types.Library | None = None


def _import_module(job: _Job, module: Module) -> None:
    root, scanned, tmp, manifest, result = job.root, job.scanned, job.tmp, job.manifest, job.result
    max_bytes, cancel, style = job.max_bytes, job.cancel, job.style
    cert_text, problem = read_checkout_file(root / module.cert, module.cert)
    if module.source is None:
        lines = _count_lines(cert_text)
        where = (
            "src/<module>.ac or src/<module>/default.ac" if module.cert.startswith("build/") else "the .ac file beside certs/"
        )
        result.problems.append(
            Problem(module.cert, f"certificate file without its source module (looked for {where}); {lines} certificates skipped", kind="orphan")
        )
        result.certificates += lines
        result.skipped_certificates += lines
        return
    if cert_text is None:
        result.problems.append(problem)
        return
    cert_damage = problem  # set when the certificate file is read with replaced bytes
    source_text, source_damage = read_checkout_file(root / module.source, module.source)
    if source_text is None:
        lines = _count_lines(cert_text)
        result.problems.append(
            Problem(source_damage.file, f"{source_damage.problem} ({lines} certificates skipped)", kind=source_damage.kind)
        )
        result.certificates += lines
        result.skipped_certificates += lines
        return
    certs, problems = parse_certificates(cert_text, module.cert)
    result.problems.extend(problems)
    result.modules += 1
    result.certificates += len(certs) + len(problems)
    result.skipped_certificates += len(problems)
    if cert_damage is not None:
        kept = [c for c in certs if REPLACED not in c.goal and not any(REPLACED in line for line in c.proof)]
        _damage_report(result, cert_damage, len(certs) - len(kept))
        certs = kept
    if not certs:
        if not problems and cert_damage is None:
            result.problems.append(Problem(module.cert, "empty certificate file (no goals to import)", kind="empty"))
        return
    touched = 0
    context = None if job.library is None else ModuleContext(job.library, acorn_types.module_name(module.source))
    for k, (cert, placement, text) in enumerate(module_files(source_text, certs, *scanned, style=style, context=context)):
        if k % 256 == 0:
            check(cancel)
        if source_damage is not None and REPLACED in text[: text.rindex("@P\n")]:
            touched += 1  # its goal text holds a byte that is not UTF-8: the file would be wrong
            continue
        data = text.encode("utf-8")
        if max_bytes and result.bytes + len(data) > max_bytes:
            result.capped_certificates += 1
            continue
        name = f"proof_{result.files:0{job.digits}d}.txt"
        (tmp / name).write_bytes(data)
        result.files += 1
        result.bytes += len(data)
        result.methods[placement.method] += 1
        slot = placement.slot
        if placement.method in ("unlocated", "order"):
            result.fallbacks.append({
                "cert": module.cert, "line": cert.line, "file": name, "method": placement.method,
                "module": module.source, "src_line": None if slot is None else slot.start + 1,
            })
        row = {
            "cert": module.cert,
            "file": name,
            "goal": cert.goal,
            "line": cert.line,
            "method": placement.method,
            "module": module.source,
            "src_line": None if slot is None else slot.start + 1,
        }
        manifest.write(json.dumps(row, sort_keys=True) + "\n")
    if source_damage is not None:
        _damage_report(result, source_damage, touched)


def _damage_report(result: ImportReport, problem: Problem, skipped: int) -> None:
    """The one problem of a file read with replaced bytes, with what it cost."""
    result.skipped_certificates += skipped
    cost = f"{skipped} certificates skipped" if skipped else "no certificate touched"
    result.problems.append(replace(problem, problem=f"{problem.problem} ({cost})"))
