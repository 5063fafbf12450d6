"""Text rules of a claim: its top-level operators, its negation, the split of a goal at
its last `implies` (`@H` / `@C`), and the keys a certificate's goal is matched by."""

from __future__ import annotations

import re


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


def _top_level_op(text: str) -> str | None:
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


def split_implies(text: str) -> tuple[str | None, str]:
    """(premise, conclusion) of a goal text, split at the last top-level `implies`; no premise
    without one."""
    text = text.strip()
    hits = _top_level_words(text, "implies")
    if hits:
        i = hits[-1]
        return _unwrap(text[:i]), text[i + len(" implies ") :]
    return None, text


def hypothesis_and_counterfactual(text: str) -> tuple[str | None, str]:
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
