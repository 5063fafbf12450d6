"""The brace/line parser of one `.ac` source (`SourceParser`): the `Slot`s a certificate can be
the proof of (theorems, claims, instance conditions), and `typeclass_conditions`."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cached_property

from tactics_core.acorn.library.claims import goal_key, token_key


_FORALL_CLAIM = re.compile(r"^forall\([^{}]*\)\s*\{\s*([^{}]*?)\s*\}$")


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
    closing_line: str | None = None
    header_lines: int = 0
    conditions: tuple = ()  # an instance's typeclass conditions (goal keys; "" where unknown), one slot copy each
    condition: str = ""  # the condition key of one copy
    first: bool = True  # the first copy: a 2025 certificate (all conditions) goes there
    _key: str | None = None

    @property
    def key(self) -> str:
        if self._key is None:
            self._key = goal_key(self.text)
        return self._key

    @cached_property
    def body_key(self) -> str | None:
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


ENDS_WITH_OP = re.compile(r"(?:[=+*<>,/]|->|\b(?:and|or|implies|iff))$")
_STARTS_WITH_OP = re.compile(r"(?:=|!=|\+|\*|<|>|/)\s|(?:and|or|implies|iff)\b")


def _strip_comment(line: str) -> str:
    i = line.find("//")
    return line if i < 0 else line[:i]


class SourceParser:
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
        if ENDS_WITH_OP.search(self.code[i].rstrip()):
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

    def _by_block(self, line: int, col: int) -> tuple[int, int] | None:
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

    def _header_brace(self, line: int, limit: int) -> tuple[int, int] | None:
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
            current: list | None = None  # [args, body lines] of the condition being read
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
