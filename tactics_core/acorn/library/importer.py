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

import difflib
import fnmatch
import json
import os
import re
import stat
import time
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Iterator, Optional, Union

from tactics_core.acorn import syntax as acorn_syntax, types as acorn_types
from tactics_core.common.atomic import atomic_path, swap_dir
from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn, check, report

MANIFEST_NAME = "manifest.jsonl"
# A source or certificate file bigger than this is not acornlib text (the largest 2026
# certificate file is about 2 MB); it is reported instead of read.
MAX_INPUT_BYTES = 64 * 1024 * 1024
FUZZY_RATIO = 0.75
METHODS = ("theorem", "exact", "fuzzy", "instance", "order", "unlocated")
SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", "target", ".venv"}

# Alignment scores: one exact match outweighs any number of fuzzy ones, one fuzzy match any
# number of plain-position ones.
_EXACT = 1_000_000
_FUZZY = 1_000
_ORDER = 1


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class Problem:
    """One piece of input that was skipped and why (file relative to the checkout)."""

    file: str
    problem: str
    line: Optional[int] = None
    kind: str = "other"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.problem}"

    def to_dict(self) -> dict:
        out = {"file": self.file, "problem": self.problem, "kind": self.kind}
        if self.line is not None:
            out["line"] = self.line
        return out


@dataclass
class ImportReport:
    """What an import did: the summary that the CLI prints and the TUI shows."""

    source: str
    data_dir: str
    manifest: str
    layout: str
    modules: int = 0
    certificates: int = 0
    files: int = 0
    bytes: int = 0
    methods: dict = field(default_factory=lambda: {m: 0 for m in METHODS})
    skipped_certificates: int = 0
    capped_certificates: int = 0
    problems: list = field(default_factory=list)
    # Goals found only by position or not at all: statistics (counted in `methods`), not
    # problems; every one is kept here for --json.
    fallbacks: list = field(default_factory=list)
    seconds: float = 0.0
    replaced: bool = False

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "data_dir": self.data_dir,
            "manifest": self.manifest,
            "layout": self.layout,
            "modules": self.modules,
            "certificates": self.certificates,
            "files": self.files,
            "bytes": self.bytes,
            "methods": dict(self.methods),
            "skipped_certificates": self.skipped_certificates,
            "capped_certificates": self.capped_certificates,
            "problems": [p.to_dict() for p in self.problems],
            "fallbacks": list(self.fallbacks),
            "seconds": round(self.seconds, 3),
            "replaced": self.replaced,
        }


# What each problem kind means, in the order a summary lists them.
PROBLEM_KINDS = {
    "unreadable": "files that cannot be read",
    "symlink-loop": "symlink loops",
    "encoding": "files that are not UTF-8",
    "json": "certificate lines that are not JSON",
    "no-goal": "certificate lines without a goal",
    "orphan": "certificate files without their source",
    "empty": "empty certificate files",
    "other": "other problems",
}


def group_problems(problems: list[dict], examples: int = 3) -> list[dict]:
    """Problems (as in `ImportReport.to_dict()`) by kind: kind, title, count and the first
    few as one-line examples, so 60 real problems are not buried in a flat list."""
    groups: dict = {}
    for p in problems:
        kind = p.get("kind") if p.get("kind") in PROBLEM_KINDS else "other"
        group = groups.setdefault(kind, {"kind": kind, "title": PROBLEM_KINDS[kind], "count": 0, "examples": []})
        group["count"] += 1
        if len(group["examples"]) < examples:
            where = f"{p.get('file', '?')}:{p['line']}" if p.get("line") is not None else str(p.get("file", "?"))
            group["examples"].append(f"{where}: {p.get('problem', '?')}")
    return [groups[k] for k in PROBLEM_KINDS if k in groups]


@dataclass(frozen=True)
class Module:
    """A certificate file and the source module it belongs to (paths relative to the checkout)."""

    source: Optional[str]
    cert: str


@dataclass(frozen=True)
class Certificate:
    line: int  # 1-based line in the certificate file
    goal: str
    proof: tuple[str, ...]


# ------------------------------------------------------------------ text rules


_WORD_OPS = ("implies", "iff", "or", "and")


def _top_level_words(text: str, word: str) -> list[int]:
    """Offsets of ` word ` at bracket depth 0."""
    spaced = f" {word} "
    if spaced not in text:
        return []
    hits = []
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch == " " and text.startswith(spaced, i):
            hits.append(i)
    return hits


def _top_level_op(text: str) -> Optional[str]:
    for word in _WORD_OPS:
        if _top_level_words(text, word):
            return word
    return None


def _top_level_eq(text: str) -> list[tuple[int, str]]:
    """Depth-0 ` = ` and ` != ` operators as (offset, op)."""
    hits = []
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch == " ":
            if text.startswith(" = ", i):
                hits.append((i, "="))
            elif text.startswith(" != ", i):
                hits.append((i, "!="))
    return hits


def _unwrap(text: str) -> str:
    """`(X)` -> `X` while the parentheses enclose the whole text."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for i, ch in enumerate(text):
            depth += ch in "([{"
            depth -= ch in ")]}"
            if depth == 0 and i < len(text) - 1:
                return text
        text = text[1:-1].strip()
    return text


def negate(text: str) -> str:
    """The syntactic negation of a claim (the corpus README's @C rules, less `implies`)."""
    text = _unwrap(text)
    op = _top_level_op(text)
    if op is None:
        if text == "true":
            return "false"
        if text == "false":
            return "true"
        if text.startswith("not "):
            return _unwrap(text[4:])
        eqs = _top_level_eq(text)
        if eqs:
            i, eq = eqs[-1]
            if eq == "=":
                return text[:i] + " != " + text[i + 3 :]
            return text[:i] + " = " + text[i + 4 :]
        return "not " + text
    return f"not ({text})"


def split_implies(text: str) -> tuple[Optional[str], str]:
    """(premise, conclusion) of a goal text, split at the last top-level `implies`; no premise
    without one."""
    text = text.strip()
    hits = _top_level_words(text, "implies")
    if hits:
        i = hits[-1]
        return _unwrap(text[:i]), text[i + len(" implies ") :]
    return None, text


def hypothesis_and_counterfactual(text: str) -> tuple[Optional[str], str]:
    """(@H, @C) for a goal text: `A implies B` splits at the last top-level `implies`."""
    premise, conclusion = split_implies(text)
    return premise, negate(conclusion)


_TYPE_ARGS = re.compile(r"\[[^\[\]]*\]")
_LIB = re.compile(r"lib\([^()]*\)\.")
_BINDER = re.compile(r"\b(forall|exists|function)\s*\(([^()]*)\)")
_LET_SATISFY = re.compile(r"^let\s+(\(?)(.*?)\)?\s+satisfy\s*\{(.*)\}\s*$", re.S)
_NUMERAL = re.compile(r"(?<![\w.])[A-Z]\w*\.(\d+)\b")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _rename_bound(text: str) -> str:
    """Rename the variables bound by forall/exists/function to b0, b1, ... in order."""
    names: list[str] = []
    for m in _BINDER.finditer(text):
        for part in m.group(2).split(","):
            name = part.split(":")[0].strip()
            if name and _IDENT.fullmatch(name) and name not in names:
                names.append(name)
    if not names:
        return text
    mapping = {n: f"\x00{i}" for i, n in enumerate(names)}
    return re.sub(r"(?<![\w.])[A-Za-z_][A-Za-z0-9_]*", lambda m: mapping.get(m.group(0), m.group(0)), text)


_FORALL_CLAIM = re.compile(r"^forall\([^{}]*\)\s*\{\s*([^{}]*?)\s*\}$")
_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+|[^\s\w()\[\].,]+")


def token_key(text: str) -> str:
    """A looser key: the claim's tokens in sorted order, each name cut to its last `_` part,
    so that `(n + n).binom(k)` matches acorn's printing `binom(n + n)(k)` and `x.mod(q)`
    matches `lib(nat).nat_mod(x)(q)` (a method written as a call of its defining function)."""
    text = _LIB.sub("", " ".join(text.split()))
    while True:
        new = _TYPE_ARGS.sub("", text)
        if new == text:
            break
        text = new
    text = _NUMERAL.sub(r"\1", text)
    return " ".join(sorted(t.rsplit("_", 1)[-1] or t for t in _TOKEN.findall(text)))


def goal_key(text: str) -> str:
    """The matching key: no whitespace, parentheses or [type args]; bound names renamed."""
    text = " ".join(text.split())
    m = _LET_SATISFY.match(text)
    if m:
        binders = m.group(2)
        if "->" in binders:  # `let f(args) -> result: T satisfy { ... }` defines `result`
            binders = binders.rsplit("->", 1)[1]
        text = f"exists({binders.strip()}) {{ {m.group(3).strip()} }}"
    text = _LIB.sub("", text)
    while True:
        new = _TYPE_ARGS.sub("", text)
        if new == text:
            break
        text = new
    text = _rename_bound(text)
    text = re.sub(r"\bnot (\S+) = ", r"\1 != ", text)
    text = _NUMERAL.sub(r"\1", text)
    return re.sub(r"[\s()]", "", text)


_REFERENCE = re.compile(r"^([A-Za-z_][\w.]*)(\[[^\]]*\])?(\(.*\))?$", re.S)
_CITATION = re.compile(r"^[A-Za-z_][\w.]*(\[[^\]]*\])?\(.*\)$", re.S)


def _is_citation(text: str) -> bool:
    if not _CITATION.match(text):
        return False
    # `f(a) = b` is a claim, not a citation: the call must span the whole text.
    depth = 0
    opened = False
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
            opened = opened or ch == "("
        elif ch in ")]":
            depth -= 1
            if depth == 0 and opened and i != len(text) - 1:
                return False
    return True


# ------------------------------------------------------------------ source parser


@dataclass
class Slot:
    """A place in the source that a certificate can be the proof of."""

    kind: str  # theorem | claim | instance
    start: int  # 0-based line index where @G starts
    end: int  # 0-based line index where @G ends (inclusive)
    top: int  # 0-based line index where the enclosing top-level statement starts
    g_lines: list
    text: str  # the goal text: statement (theorem) or claim, one line
    name: str = ""
    block_end: int = 0  # last line of the whole statement (theorems)
    citation: bool = False
    typeclass: str = ""
    type_name: str = ""
    # What acorn writes differently (style "acorn"): a theorem's closing line whole (`} by {`);
    # for `structure ... constraint { C }` and `let ... satisfy { C }`, how many g_lines are the
    # header that acorn puts in @T (its @G is C's lines alone).
    closing_line: Optional[str] = None
    header_lines: int = 0
    conditions: tuple = ()  # an instance's typeclass conditions (goal keys; "" where unknown), one slot copy each
    condition: str = ""  # the condition key of one copy
    first: bool = True  # the first copy: a 2025 certificate (all conditions) goes there
    _key: Optional[str] = None

    @property
    def key(self) -> str:
        if self._key is None:
            self._key = goal_key(self.text)
        return self._key

    @cached_property
    def body_key(self) -> Optional[str]:
        """For a one-line `forall(x: T) { body }` claim, the key of its body: acorn's
        certificate states the body, with the bound names free."""
        m = _FORALL_CLAIM.match(self.text) if self.kind == "claim" else None
        return goal_key(m.group(1)) if m else None

    @cached_property
    def tokens(self) -> str:
        return token_key(self.text)

    @cached_property
    def matcher(self) -> difflib.SequenceMatcher:
        """A matcher against this slot's key, built once: most of a fuzzy comparison's cost
        is indexing its second string."""
        return difflib.SequenceMatcher(None, "", self.key, autojunk=False)


_ENDS_WITH_OP = re.compile(r"(?:[=+*<>,/]|->|\b(?:and|or|implies|iff))$")
_STARTS_WITH_OP = re.compile(r"(?:=|!=|\+|\*|<|>|/)\s|(?:and|or|implies|iff)\b")


def _strip_comment(line: str) -> str:
    i = line.find("//")
    return line if i < 0 else line[:i]


class _Source:
    """Brace/line parser of one `.ac` file: finds theorems, claims and block goals."""

    def __init__(self, lines: list[str], theorem_names: frozenset = frozenset()) -> None:
        self.lines = lines
        self.theorem_names = theorem_names
        self.code = [_strip_comment(l) for l in lines]
        self.slots: list[Slot] = []

    # --- brace helpers
    def _match(self, line: int, col: int) -> tuple[int, int]:
        """Position of the bracket closing the one opened at (line, col)."""
        depth = 0
        i, j = line, col
        while i < len(self.code):
            text = self.code[i]
            while j < len(text):
                ch = text[j]
                if ch in "([{":
                    depth += 1
                elif ch in ")]}":
                    depth -= 1
                    if depth == 0:
                        return i, j
                j += 1
            i += 1
            j = 0
        return len(self.code) - 1, max(0, len(self.code[-1]) - 1) if self.code else 0

    def _statement_end(self, line: int, col: int = 0) -> tuple[int, int]:
        """End of a statement starting at (line, col): where its brackets balance at a line end."""
        depth = 0
        i, j = line, col
        while i < len(self.code):
            text = self.code[i]
            while j < len(text):
                ch = text[j]
                if ch in "([{":
                    depth += 1
                elif ch in ")]}":
                    depth -= 1
                j += 1
            if depth <= 0 and not self._continues(i):
                return i, len(text)
            i += 1
            j = 0
        return len(self.code) - 1, len(self.code[-1]) if self.code else 0

    def _continues(self, i: int) -> bool:
        """Whether a balanced line i goes on: it ends in an operator or the next begins with one."""
        if _ENDS_WITH_OP.search(self.code[i].rstrip()):
            return True
        k = i + 1
        while k < len(self.code) and not self.code[k].strip():
            k += 1
        return k < len(self.code) and bool(_STARTS_WITH_OP.match(self.code[k].strip()))

    def _span_text(self, l0: int, c0: int, l1: int, c1: int) -> str:
        if l0 == l1:
            return self.code[l0][c0:c1].strip()
        parts = [self.code[l0][c0:].strip()]
        parts += [self.code[i].strip() for i in range(l0 + 1, l1)]
        parts.append(self.code[l1][:c1].strip())
        return " ".join(p for p in parts if p)

    def _after(self, line: int, col: int) -> tuple[int, int, str]:
        """The next non-blank code after (line, col): (line, col, rest of that line)."""
        i, j = line, col
        while i < len(self.code):
            rest = self.code[i][j:]
            if rest.strip():
                k = len(rest) - len(rest.lstrip())
                return i, j + k, rest.strip()
            i += 1
            j = 0
        return len(self.code), 0, ""

    # --- top level
    def parse(self, typeclasses: dict) -> list[Slot]:
        i = 0
        n = len(self.code)
        while i < n:
            text = self.code[i].strip()
            if not text:
                i += 1
                continue
            word = text.split(None, 1)[0]
            if word in ("theorem", "lemma"):
                i = self._theorem(i) + 1
            elif word == "instance":
                i = self._instance(i, typeclasses) + 1
            elif word == "structure":
                i = self._structure(i) + 1
            elif word == "let" and re.search(r"\bsatisfy\b", text):
                i = self._let_satisfy(i, i, 0) + 1
            else:
                i = self._statement_end(i)[0] + 1
        self.resolve_references()
        return self.slots

    def _brace_after_header(self, line: int) -> tuple[int, int]:
        """The `{` that opens a theorem's statement (after its name and arguments)."""
        depth = 0
        i, j = line, 0
        while i < len(self.code):
            text = self.code[i]
            while j < len(text):
                ch = text[j]
                if ch == "{" and depth == 0:
                    return i, j
                if ch in "([":
                    depth += 1
                elif ch in ")]":
                    depth -= 1
                j += 1
            i += 1
            j = 0
        return -1, -1

    def _by_block(self, line: int, col: int) -> Optional[tuple[int, int]]:
        """If `by {` follows (line, col), the position of its `{`."""
        i, j, rest = self._after(line, col)
        if rest.startswith("by") and rest[2:].lstrip().startswith("{"):
            k = self.code[i].index("{", j)
            return i, k
        return None

    def _theorem(self, line: int) -> int:
        ol, oc = self._brace_after_header(line)
        if ol < 0:
            return len(self.code) - 1
        cl, cc = self._match(ol, oc)
        statement = self._span_text(ol, oc + 1, cl, cc)
        m = re.match(r"\s*(?:theorem|lemma)\s+([\w.]+)", self.code[line])
        name = m.group(1) if m else ""
        g_lines = self.lines[line:cl] + [self.lines[cl][: cc + 1] if self._by_block(cl, cc + 1) else self.lines[cl]]
        slot = Slot("theorem", line, cl, line, g_lines, statement, name=name, closing_line=self.lines[cl])
        self.slots.append(slot)
        end = cl
        by = self._by_block(cl, cc + 1)
        if by is not None:
            bl, bc = by
            end = self._block(bl, bc, line)
        slot.block_end = end
        return end

    def _structure(self, line: int) -> int:
        """`structure ... { fields } constraint { C } by { ... }`: C is a goal."""
        ol, oc = self._brace_after_header(line)
        if ol < 0:
            return self._statement_end(line)[0]
        cl, cc = self._match(ol, oc)
        i, j, rest = self._after(cl, cc + 1)
        if not (rest.startswith("constraint") and "{" in rest):
            return cl
        k = self.code[i].index("{", j)
        el, ec = self._match(i, k)
        constraint = self._span_text(i, k + 1, el, ec)
        by = self._by_block(el, ec + 1)
        g_lines = self.lines[line:el] + [self.lines[el][: ec + 1] if by else self.lines[el]]
        slot = Slot("claim", line, el, line, g_lines, constraint, header_lines=self._header_lines(line, i, k, el, ec))
        end = el
        if by is not None:  # the goal of a block comes after the goals inside it
            end = self._block(by[0], by[1], line)
        self.slots.append(slot)
        return end

    def _instance(self, line: int, typeclasses: dict) -> int:
        m = re.match(r"\s*instance\s+([\w.]+(?:\[[^\]]*\])?)\s*:\s*([\w.]+)", self.code[line])
        end = line
        ol = self.code[line].find("{")
        if ol >= 0:
            end = self._match(line, ol)[0]
            by = self._by_block(*self._match(line, ol))
            if by is not None:
                end = self._block(by[0], by[1], line)
        type_name = m.group(1) if m else ""
        tc = m.group(2) if m else ""
        param, conditions = typeclasses.get(tc.split(".")[-1], ("", [""]))
        if not conditions:  # `typeclass M: AddCommMonoid extends ... { }`: nothing to prove
            return end
        if param and type_name:
            conditions = [re.sub(rf"\b{re.escape(param)}\b", type_name, c) for c in conditions]
        slot = Slot(
            "instance", line, end, line, self.lines[line : end + 1], self.code[line].strip(),
            typeclass=tc, type_name=type_name,
            conditions=tuple(goal_key(c) if c else "" for c in conditions),
        )
        self.slots.append(slot)
        return end

    def _let_satisfy(self, line: int, top: int, col: int) -> int:
        i = self.code[line].find("satisfy", col)
        ob = self.code[line].find("{", i)
        if ob < 0:
            return self._statement_end(line, col)[0]
        cl, cc = self._match(line, ob)
        by = self._by_block(cl, cc + 1)
        g_lines = self.lines[line:cl] + [self.lines[cl][: cc + 1] if by else self.lines[cl]]
        text = self._span_text(line, col, cl, cc + 1)
        header = self._header_lines(line, line, ob, cl, cc) if top == line else 0  # a module-level definition
        slot = Slot("claim", line, cl, top, g_lines, text, header_lines=header)
        end = cl
        if by is not None:  # the goal of a block comes after the goals inside it
            end = self._block(by[0], by[1], top)
        self.slots.append(slot)
        return end

    def _header_lines(self, start: int, open_line: int, open_col: int, close_line: int, close_col: int) -> int:
        """Lines from `start` through the one whose last character opens the body, when the
        body's `}` begins its line (the shape acorn splits into @T and @G); else 0."""
        opens_line = not self.code[open_line][open_col + 1 :].strip()
        closes_line = not self.code[close_line][:close_col].strip()
        return open_line - start + 1 if opens_line and closes_line and close_line > open_line + 1 else 0

    # --- proof blocks
    def _block(self, line: int, col: int, top: int) -> int:
        """Parse the statements of the block opened at (line, col); return its last line."""
        cl, cc = self._match(line, col)
        i = line + 1
        # A one-line block `by { claim }`.
        if cl == line:
            inner = self.code[line][col + 1 : cc].strip()
            if inner:
                self._claim_text(line, line, inner, top, self.lines[line : line + 1])
            return cl
        while i < cl:
            i = self._statement(i, top, cl) + 1
        return cl

    def _statement(self, i: int, top: int, limit: int) -> int:
        text = self.code[i].strip()
        if not text or text == "}":
            return i
        word = re.match(r"[^\s(]*", text).group(0)
        if text.startswith("}"):
            # `} else {`
            ob = self.code[i].rfind("{")
            if ob >= 0 and text.endswith("{"):
                return self._block(i, ob, top)
            return i
        if word == "if":
            # The condition may run over several lines (`if a and\n b {`): the block opens at
            # the first `{` outside brackets and inline blocks that ends a line.
            header = self._header_brace(i, limit)
            if header is not None:
                return self._block(*header, top)
        if word in ("if", "else", "forall", "match") or (word.startswith("forall") and text.endswith("{")):
            if text.endswith("{"):
                ob = self.code[i].rstrip().rindex("{")
                if word == "match":
                    return self._match_block(i, ob, top)
                return self._block(i, ob, top)
        if word == "define" or word in ("from", "import", "numerals", "type", "todo"):
            return self._statement_end(i)[0]
        if word == "let":
            if re.search(r"\bsatisfy\b", text):
                col = len(self.code[i]) - len(self.code[i].lstrip())
                return self._let_satisfy(i, top, col)
            return self._statement_end(i)[0]
        # A claim, maybe over several lines, maybe with its own `by { ... }`.
        end, _ = self._statement_end(i)
        full = self._span_text(i, 0, end, len(self.code[end]))
        m = re.search(r"\s+by\s*\{$", full)
        if m and self.code[end].rstrip().endswith("{"):
            claim = full[: m.start()].strip()
            ob = self.code[end].rstrip().rindex("{")
            # the claim itself ends on the line before `by {` or on the same line
            g_end_line = end
            g_lines = self.lines[i:end] + [re.sub(r"\s+by\s*\{\s*$", "", self.lines[end].rstrip("\n"))]
            block_end = self._block(end, ob, top)
            self._claim_text(i, g_end_line, claim, top, g_lines)  # after the goals inside its block
            return block_end
        self._claim_text(i, end, full, top, self.lines[i : end + 1])
        return end

    def _header_brace(self, line: int, limit: int) -> Optional[tuple[int, int]]:
        """The `{` opening the block of a statement that starts at `line`: the first one outside
        brackets and inline `{ ... }` that ends its line (None before `limit` or an unmatched `}`)."""
        brackets = braces = 0
        for i in range(line, min(limit, len(self.code))):
            text = self.code[i]
            last = len(text.rstrip()) - 1
            for j, ch in enumerate(text):
                if ch in "([":
                    brackets += 1
                elif ch in ")]":
                    brackets -= 1
                elif ch == "{":
                    if brackets == 0 and braces == 0 and j == last:
                        return i, j
                    braces += 1
                elif ch == "}":
                    braces -= 1
                    if braces < 0:
                        return None
        return None

    def _match_block(self, line: int, col: int, top: int) -> int:
        cl, _ = self._match(line, col)
        i = line + 1
        while i < cl:
            text = self.code[i].strip()
            if text.endswith("{"):
                ob = self.code[i].rstrip().rindex("{")
                i = self._block(i, ob, top) + 1
            else:
                i += 1
        return cl

    def _claim_text(self, start: int, end: int, text: str, top: int, g_lines: list) -> None:
        slot = Slot("claim", start, end, top, list(g_lines), text)
        m = _REFERENCE.match(text)
        if m and (m.group(1) in self.theorem_names or m.group(1).rsplit(".", 1)[-1] in self.theorem_names):
            if m.group(3) is None:
                slot.name = m.group(1)  # a bare `thm` or `thm[T]`: it claims thm's statement
                slot.citation = True
            elif _is_citation(text):
                slot.citation = True
        self.slots.append(slot)

    def resolve_references(self) -> None:
        """Give bare theorem references the key of the theorem's statement (when it is here)."""
        statements = {s.name: s for s in self.slots if s.kind == "theorem"}
        for slot in self.slots:
            if slot.kind == "claim" and slot.name:
                target = statements.get(slot.name) or statements.get(slot.name.rsplit(".", 1)[-1])
                if target is not None:
                    slot._key = target.key


def typeclass_conditions(lines: list[str]) -> dict:
    """{typeclass name: (its type parameter, [each condition as a claim])} declared in one source:
    `distrib_left(a: S, b: S) { a * b = b * a }` is `forall(a: S, b: S) { a * b = b * a }`, a
    condition without arguments (`reflexive { is_reflexive(P.lte) }`) its body."""
    out: dict = {}
    code = [_strip_comment(l) for l in lines]
    i = 0
    while i < len(code):
        m = re.match(r"\s*typeclass\s+(?:([\w]+)\s*:\s*)?([\w]+)", code[i])
        if m and "{" in code[i]:
            param, name = m.group(1) or "", m.group(2)
            depth = 0
            conditions: list[str] = []
            current: Optional[list] = None  # [args, body lines] of the condition being read
            j = i
            while j < len(code):
                line = code[j]
                head = re.match(r"\s*[a-z_][\w]*\s*(?:\[[^\]]*\])?(?:\((.*)\))?\s*\{\s*$", line) if depth == 1 else None
                if head:
                    current = [head.group(1), []]
                elif depth == 2 and current is not None and line.strip() != "}":
                    current[1].append(line.strip())
                depth += line.count("{") - line.count("}")
                if depth == 1 and current is not None and not head:
                    body = " ".join(current[1])
                    conditions.append(f"forall({current[0]}) {{ {body} }}" if current[0] else body)
                    current = None
                if depth <= 0 and j > i:
                    break
                j += 1
            out[name] = (param, conditions)
            i = j + 1
        else:
            i += 1
    return out


# ------------------------------------------------------------------ alignment


@dataclass(frozen=True)
class Placement:
    """Where one certificate's goal was found."""

    method: str
    slot: Optional[Slot]


def _fuzzy(a: str, slot: Slot) -> float:
    matcher = slot.matcher
    matcher.set_seq1(a)
    if matcher.real_quick_ratio() < FUZZY_RATIO or matcher.quick_ratio() < FUZZY_RATIO:
        return 0.0
    return matcher.ratio()


def _score(cert_key: str, cert_tokens: str, slot: Slot, fuzzy: bool = True) -> tuple[int, str]:
    if slot.kind == "instance":
        exact = 100 if slot.condition and cert_key == slot.condition else 0
        return _FUZZY + exact + slot.first, "instance"
    if cert_key == slot.key or cert_key == slot.body_key:
        return _EXACT, "exact"
    if slot.citation:
        return 0, ""
    if cert_tokens == slot.tokens:  # the same claim, spelled with methods on one side
        return _FUZZY + 100, "fuzzy"
    ratio = _fuzzy(cert_key, slot) if fuzzy else 0.0
    if ratio >= FUZZY_RATIO:
        return _FUZZY + int(ratio * 100), "fuzzy"
    return _ORDER, "order"


# The alignment table of one segment holds certificates x slots cells, each maybe a fuzzy
# comparison. Past ANCHOR_CELLS the segment is first cut at goals whose key occurs once on
# each side (the same placements on both fixtures, a third of the time on the whole tree);
# past ALIGN_CELLS with nothing to cut at, it is halved, so memory and time stay bounded (the
# largest acornlib proof has 1,280 certificates against 1,792 slots).
ANCHOR_CELLS = 1_000
ALIGN_CELLS = 250_000


def _align(certs: list[Certificate], slots: list[Slot]) -> list[Placement]:
    """Monotone alignment of claim certificates to slots that maximises the total score."""
    cells = len(certs) * len(slots)
    if cells <= ANCHOR_CELLS:
        return _align_table(certs, slots)
    anchors = _unique_anchors(certs, slots)
    if not anchors:
        if cells <= ALIGN_CELLS:
            return _align_table(certs, slots)
        h, k = len(certs) // 2, len(slots) // 2
        return _align(certs[:h], slots[:k]) + _align(certs[h:], slots[k:])
    out: list[Placement] = []
    i0 = j0 = 0
    for i, j in anchors:
        out.extend(_align(certs[i0:i], slots[j0:j]))
        out.append(Placement("exact", slots[j]))
        i0, j0 = i + 1, j + 1
    out.extend(_align(certs[i0:], slots[j0:]))
    return out


def _unique_anchors(certs: list[Certificate], slots: list[Slot]) -> list[tuple[int, int]]:
    """The longest in-order chain of (certificate, slot) pairs whose goal key occurs once on
    each side (patience diff's anchors)."""
    cert_keys = [goal_key(c.goal) for c in certs]
    slot_keys = [None if s.kind == "instance" else s.key for s in slots]
    in_certs, in_slots = Counter(cert_keys), Counter(k for k in slot_keys if k is not None)
    where = {k: j for j, k in enumerate(slot_keys) if k is not None and in_slots[k] == 1}
    pairs = [(i, where[k]) for i, k in enumerate(cert_keys) if in_certs[k] == 1 and k in where]
    # longest increasing subsequence of slot indices (pairs are in certificate order)
    tails: list[int] = []
    tail_at: list[int] = []
    back: list[int] = [-1] * len(pairs)
    for p, (_i, j) in enumerate(pairs):
        at = bisect_left(tails, j)
        if at == len(tails):
            tails.append(j)
            tail_at.append(p)
        else:
            tails[at] = j
            tail_at[at] = p
        back[p] = tail_at[at - 1] if at else -1
    chain: list[tuple[int, int]] = []
    p = tail_at[-1] if tail_at else -1
    while p >= 0:
        chain.append(pairs[p])
        p = back[p]
    return chain[::-1]


def _align_table(certs: list[Certificate], slots: list[Slot]) -> list[Placement]:
    """The exact alignment (a table of len(certs) x len(slots) cells)."""
    n, m = len(certs), len(slots)
    if n == 0:
        return []
    if m == 0:
        return [Placement("unlocated", None) for _ in certs]
    keys = [goal_key(c.goal) for c in certs]
    tokens = [token_key(c.goal) for c in certs]
    # A certificate whose goal is spelled exactly in the segment, as often as certificates
    # state it, is placed there (one exact match outweighs any fuzzy ones): comparing it
    # fuzzily with every other slot is wasted time.
    spelled = Counter(s.key for s in slots if s.kind != "instance")
    spelled.update(s.body_key for s in slots if s.body_key)
    stated = Counter(keys)
    fuzzy = [spelled[k] < stated[k] for k in keys]
    # best[i][j]: best score for certs[i:] against slots[j:]
    best = [[0] * (m + 1) for _ in range(n + 1)]
    choice = [[0] * (m + 1) for _ in range(n + 1)]  # 0 skip slot, 1 unlocated cert, 2 assign
    scores: dict = {}
    for i in range(n - 1, -1, -1):
        row, nxt = best[i], best[i + 1]
        for j in range(m, -1, -1):
            options = [(nxt[j], 1)]
            if j < m:
                options.append((row[j + 1], 0))
                s, method = _score(keys[i], tokens[i], slots[j], fuzzy[i])
                if s > 0:
                    scores[i, j] = method
                    options.append((s + nxt[j + 1], 2))
            value, pick = max(options, key=lambda o: (o[0], o[1]))
            row[j] = value
            choice[i][j] = pick
    out = []
    i = j = 0
    while i < n:
        pick = choice[i][j] if j <= m else 1
        if pick == 2:
            out.append(Placement(scores[i, j], slots[j]))
            i += 1
            j += 1
        elif pick == 0:
            j += 1
        else:
            out.append(Placement("unlocated", None))
            i += 1
    return out


def _expand(slots: list[Slot]) -> list[Slot]:
    """Instances take one certificate per typeclass condition: a copy of their slot for each,
    carrying that condition's key (acorn's 2026 certificates state one condition each, in its
    words; a 2025 certificate states them all at once and matches none exactly, so it goes to
    the first copy, and the next instance's certificate to the next instance)."""
    out = []
    for s in slots:
        if s.kind == "instance":
            out.extend(replace(s, condition=c, first=k == 0) for k, c in enumerate(s.conditions))
        else:
            out.append(s)
    return out


def locate(certs: list[Certificate], slots: list[Slot]) -> list[Placement]:
    """Place every certificate of one module: theorem names first, then the claims between."""
    theorems: dict = {}
    for s in slots:
        if s.kind == "theorem":
            theorems.setdefault(s.name, s)
            if "." in s.name:
                theorems.setdefault(s.name.rsplit(".", 1)[-1], s)
    others = [s for s in slots if s.kind != "theorem"]
    placements: list[Optional[Placement]] = [None] * len(certs)
    pending: list[int] = []
    low = -1  # claims of the next segment lie after this line

    def flush(high: Optional[int]) -> None:
        segment = [s for s in others if s.start > low and (high is None or s.start <= high)]
        result = _align([certs[k] for k in pending], _expand(segment))
        for k, p in zip(pending, result):
            placements[k] = p
        pending.clear()

    for k, cert in enumerate(certs):
        slot = theorems.get(cert.goal)
        if slot is not None:
            flush(slot.block_end)
            placements[k] = Placement("theorem", slot)
            low = max(low, slot.block_end)
        else:
            pending.append(k)
    flush(None)
    return placements  # type: ignore[return-value]


# ------------------------------------------------------------------ rendering


class _BlockScan:
    """The blocks open after each line of a theorem's text, read once from the theorem's first
    line however many goals ask (`block_prefix` for each goal alone was quadratic: 12 of 34 s on
    a 210-module import)."""

    def __init__(self, lines: list[str], top: int = 0) -> None:
        self.lines, self.top = lines, top
        self.stack: list[int] = []  # the line (relative to top) where each open block's statement began
        self.start = 0  # the line where the statement being read began (an `if` may run over lines)
        self.depth = 0  # open ( and [
        self.fed = 0  # lines read
        self.prev = ""

    def copy(self) -> "_BlockScan":
        other = _BlockScan(self.lines, self.top)
        other.stack, other.start, other.depth, other.fed, other.prev = list(self.stack), self.start, self.depth, self.fed, self.prev
        return other

    def feed(self, line: str) -> None:
        i = self.fed
        code = line.split("//", 1)[0]
        if self.depth == 0 and (i == 0 or not _ENDS_WITH_OP.search(self.prev.split("//", 1)[0].rstrip())):
            self.start = i
        popped: Optional[int] = None
        between = ""
        for ch in code:
            if ch == "{":
                self.stack.append(popped if popped is not None and between.strip() in ("by", "constraint") else self.start)
                popped = None
            elif ch == "}" and self.stack:
                popped, between = self.stack.pop(), ""
            else:
                between += ch
                self.depth += (ch in "([") - (ch in ")]")
        if code.strip():
            self.depth = max(self.depth, 0)
        self.fed += 1
        self.prev = line

    def prefix(self, end: int, extra: list[str] = ()) -> list[str]:
        """block_prefix(lines[top:end] + extra), reading only the lines not read yet."""
        n = end - self.top
        if n < self.fed:
            self.__init__(self.lines, self.top)
        while self.fed < n:
            self.feed(self.lines[self.top + self.fed])
        scan = self
        if extra:
            scan = self.copy()
            for line in extra:
                scan.feed(line)
        text = self.lines[self.top : end] + list(extra)
        return text[scan.stack[-1] :] if scan.stack else text


def block_prefix(prefix: list[str]) -> list[str]:
    """The part of a theorem's text before a goal that acorn f47631b0 writes as `@T`: from the
    innermost block still open at the goal (`if`, `else`, `forall`, a match case, ...), whose
    environment acorn's `GoalContext` uses (`env_for_line`); a theorem's own `} by {` block
    starts at the theorem, a structure's `} constraint {` at the structure. Braces after `//`
    do not count."""
    return _BlockScan(prefix).prefix(len(prefix))


STYLES = ("published", "acorn")


def _theorem_header(g_lines: list[str]) -> str:
    """`theorem name[T](args)`: a theorem's text before its statement's `{`."""
    text = " ".join(line.split("//", 1)[0].strip() for line in g_lines)
    depth = 0
    for i, ch in enumerate(text):
        if ch == "{" and depth == 0:
            return text[:i]
        depth += (ch in "([") - (ch in ")]")
    return text


def _theorem_counterfactual(slot: Slot, fallback: str, context: Optional["ModuleContext"]) -> str:
    """A theorem's `@C` printed as acorn's code generator prints it (acorn_syntax, with the
    library's signatures from acorn_types), from the conclusion after the last top-level
    `implies`; the syntactic negation where the text is beyond the parser."""
    _premise, conclusion = split_implies(slot.text)
    try:
        scope = numerals = None
        if context is not None:
            numerals = context.library.numerals(context.module)
            try:
                scope = acorn_types.TypeScope.for_theorem(context.library, context.module, _theorem_header(slot.g_lines))
            except acorn_syntax.SyntaxError:
                scope = None
        return acorn_syntax.counterfactual(conclusion, scope, numerals)
    except acorn_syntax.SyntaxError:
        return fallback


@dataclass(frozen=True)
class ModuleContext:
    """What printing a theorem's `@C` in acorn's style needs beyond the module's text."""

    library: "acorn_types.Library"
    module: str


def render(cert: Certificate, placement: Placement, lines: list[str], enclosing: Optional[Slot],
           style: str = "published", context: Optional[ModuleContext] = None,
           scans: Optional[dict] = None) -> str:
    """The proof file text for one certificate, in one of STYLES.

    "published": as the published corpora (their README): `@T` from the enclosing theorem, a
    theorem's `@G` ends at its statement's `}`, a theorem `A implies B` has `@H A`.
    "acorn": as acorn f47631b0's `training` writes, where that needs no elaborator: `@T` from
    the innermost open block (`block_prefix`), a theorem's `@G` keeps its `} by {` line and
    has no `@H`, a `structure ... constraint` or module-level `let ... satisfy` puts its header
    in `@T`, a one-line `forall(x) { ... }` claim has no `@T`.
    """
    out: list[str] = []
    slot = placement.slot
    acorn = style == "acorn"
    if slot is None:
        if enclosing is not None:
            out.append("@T")
            out.extend(enclosing.g_lines)
        out.append("@G")
        out.append(cert.goal)
        hyp, cf = hypothesis_and_counterfactual(cert.goal)
    else:
        prefix = lines[slot.top : slot.start] if slot.kind == "claim" else []
        if acorn and slot.body_key is not None:
            prefix = []  # acorn proves a `forall(x) { ... }` claim in the forall's own context
        elif acorn and slot.kind == "claim":
            scans = {} if scans is None else scans
            if slot.top not in scans:
                scans[slot.top] = _BlockScan(lines, slot.top)
            prefix = scans[slot.top].prefix(slot.start, slot.g_lines[: slot.header_lines])
        elif acorn:
            prefix = block_prefix(slot.g_lines[: slot.header_lines])
        if prefix:
            out.append("@T")
            out.extend(prefix)
        out.append("@G")
        if acorn and slot.header_lines:
            out.extend(slot.g_lines[slot.header_lines : -1])
        elif acorn and slot.closing_line is not None:
            out.extend(slot.g_lines[:-1] + [slot.closing_line])
        else:
            out.extend(slot.g_lines)
        hyp, cf = hypothesis_and_counterfactual(slot.text if slot.kind == "theorem" else cert.goal)
        if acorn and slot.kind == "theorem":
            hyp = None
            cf = _theorem_counterfactual(slot, cf, context)
    if hyp is not None:
        out.append("@H")
        out.append(hyp)
    out.append("@C")
    out.append(cf)
    out.append("@P")
    out.extend(cert.proof)
    return "".join(line + "\n" for line in out)


# ------------------------------------------------------------------ reading the checkout


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


def _walk(root: Path, cancel: CancelToken | None) -> _Tree:
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


def _read_text(path: Path, rel: str) -> tuple[Optional[str], Optional[Problem]]:
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


def _count_lines(text: Optional[str]) -> int:
    return 0 if text is None else sum(1 for line in text.split("\n") if line.strip())


def _selected(path: str, include: list, exclude: list) -> bool:
    if include and not any(fnmatch.fnmatchcase(path, g) for g in include):
        return False
    return not any(fnmatch.fnmatchcase(path, g) for g in exclude)


_THEOREM_NAME = re.compile(r"^\s*(?:theorem|lemma)\s+([\w.]+)", re.M)


def scan_checkout(root: Path, sources, cancel: CancelToken | None = None,
                  library: Optional[acorn_types.Library] = None) -> tuple[dict, frozenset]:
    """What goal finding needs from the whole checkout, one source at a time.

    Returns {typeclass: (parameter, conditions)} (`typeclass_conditions`: an instance takes
    one certificate per condition) and the set of theorem names (a claim `thm(args)` is a citation);
    fills `library` with the sources' signatures when given (style "acorn").
    """
    typeclasses: dict = {}
    theorems: set = set()
    for rel in sorted(sources):
        check(cancel)
        text, _problem = _read_text(root / rel, rel)  # problems are reported with the module
        if text is None:
            continue
        theorems.update(_THEOREM_NAME.findall(text))
        if library is not None:
            library.add_module(rel, text)
        if "typeclass" in text:
            for name, conditions in typeclass_conditions(text.split("\n")).items():
                typeclasses.setdefault(name, conditions)
    return typeclasses, frozenset(theorems)


def _not_a_checkout(root: Path, tree: _Tree) -> str:
    sources = len(tree.sources)
    found = f"{sources:,} .ac sources but no certificates" if sources else "no .ac sources and no certificates"
    return (
        f"{root} is not an acornlib checkout: found {found} "
        f"(looked for build/**/*.jsonl beside src/ and for <dir>/certs/*.jsonl beside <dir>/*.ac); "
        f"pass the folder you cloned acornlib into"
    )


# ------------------------------------------------------------------ import


def module_files(
    text: str, certs: list[Certificate], typeclasses: dict, theorem_names: frozenset = frozenset(),
    style: str = "published", context: Optional[ModuleContext] = None,
) -> Iterator[tuple[Certificate, Placement, str]]:
    """Each certificate of one module with its placement and proof file text."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    slots = _Source(lines, theorem_names).parse(typeclasses)
    placements = locate(certs, slots)
    theorems = [s for s in slots if s.kind == "theorem"]
    scans: dict = {}  # one _BlockScan per theorem (style "acorn")
    for cert, placement in zip(certs, placements):
        enclosing = None
        if placement.slot is None:
            enclosing = _enclosing_for_unlocated(cert, certs, placements, theorems)
        yield cert, placement, render(cert, placement, lines, enclosing, style, context, scans)


def _enclosing_for_unlocated(cert, certs, placements, theorems) -> Optional[Slot]:
    """The theorem whose certificate follows an unlocated one (claims come before their theorem)."""
    index = certs.index(cert)
    for p in placements[index + 1 :]:
        if p.slot is not None and p.slot.kind == "theorem":
            return p.slot
    return None


def import_acornlib(
    path: Union[str, os.PathLike],
    data_dir: Union[str, os.PathLike] = "data/proofs",
    include: Optional[list] = None,
    exclude: Optional[list] = None,
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
    from tactics_core.gpt.demo import _check_target

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
    manifest_path = data_dir.parent / MANIFEST_NAME
    report(progress, 0, None, f"looking for modules in {root}")
    tree = _walk(root, cancel)
    modules, layout = find_modules(root, tree)
    if not modules:
        raise TacticsError(_not_a_checkout(root, tree))
    _check_target(data_dir, force)
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
    with atomic_path(manifest_path) as manifest_tmp, swap_dir(data_dir, lambda: _check_target(data_dir, force)) as swap:
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
    library: Optional[acorn_types.Library] = None


def _import_module(job: _Job, module: Module) -> None:
    root, scanned, tmp, manifest, result = job.root, job.scanned, job.tmp, job.manifest, job.result
    max_bytes, cancel, style = job.max_bytes, job.cancel, job.style
    cert_text, problem = _read_text(root / module.cert, module.cert)
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
    source_text, source_damage = _read_text(root / module.source, module.source)
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
