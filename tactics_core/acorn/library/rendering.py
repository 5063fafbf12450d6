"""A located certificate as a proof file (`render`): the `@T` block prefix, the goal's
`@G`/`@H`/`@C` in the chosen `STYLES`, the proof lines."""

from __future__ import annotations

from dataclasses import dataclass

from tactics_core.acorn import syntax as acorn_syntax, types as acorn_types
from tactics_core.acorn.library.alignment import Placement
from tactics_core.acorn.library.claims import hypothesis_and_counterfactual, split_implies
from tactics_core.acorn.library.records import Certificate
from tactics_core.acorn.library.source_parser import ENDS_WITH_OP, Slot


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
        if self.depth == 0 and (i == 0 or not ENDS_WITH_OP.search(self.prev.split("//", 1)[0].rstrip())):
            self.start = i
        popped: int | None = None
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


def _theorem_counterfactual(slot: Slot, fallback: str, context: "ModuleContext" | None) -> str:
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
            except acorn_syntax.AcornSyntaxError:
                scope = None
        return acorn_syntax.counterfactual(conclusion, scope, numerals)
    except acorn_syntax.AcornSyntaxError:
        return fallback


@dataclass(frozen=True)
class ModuleContext:
    """What printing a theorem's `@C` in acorn's style needs beyond the module's text."""

    library: "acorn_types.Library"
    module: str


def render(cert: Certificate, placement: Placement, lines: list[str], enclosing: Slot | None,
           style: str = "published", context: ModuleContext | None = None,
           scans: dict | None = None) -> str:
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
