"""Acorn expressions: a parser, and printing the way acorn's code generator prints them.

acorn f47631b0's `training` writes a theorem's `@C` by elaborating the theorem's claim, negating
it and printing the value back with its code generator; the certificate of a theorem holds only
the theorem's name, so the importer has the source text alone. Printing that text the way the
code generator would needs three things this module does: parse it with acorn's precedences
(`-a.re` is `-(a.re)`, `and` and `or` bind alike, left to right); print with the generator's
parenthesizing and spacing (`(a * b) * c` → `a * b * c`, `-(-a)` → `--a`, `exists (n: Nat)` →
`exists(k0: Nat)`, bound names renamed `x0, x1, ...` under forall/function and `k0, k1, ...` under
exists); and decide each generic call's type arguments as the generator does, from the callee's
signature (`Signatures`, read from the library's `define` lines). What needs acorn's full types
(methods printed as calls, instance attributes) is left as the source wrote it.

Anything this parser does not understand raises `AcornSyntaxError`; callers keep the source's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

# acorn's src/syntax/token.rs: binary_precedence, unary_precedence.
BINARY = {
    ".": 14, "*": 12, "/": 12, "+": 11, "-": 11, "%": 10, ">": 9, "<": 8, ">=": 8, "<=": 8,
    "=": 7, "!=": 7, "or": 5, "and": 5, "iff": 4, "->": 3, "implies": 3,
    "∪": 11, "∩": 12, "∖": 11, "∈": 9, "∉": 9, "∋": 9, "∌": 9, "⊆": 9, "⊇": 9, "⊂": 9, "⊃": 9,
}
UNARY = {"not": 6, "-": 13}
# Operators the elaborator keeps as logical values (acorn's BinaryOp); `iff` becomes `=`.
LOGICAL = {"implies", "=", "!=", "and", "or"}
APPLY = 14  # application binds like `.`
MAX = 127
KEYWORDS = {"not", "and", "or", "iff", "implies", "forall", "exists", "function", "if", "else", "match"}

_TOKEN = re.compile(
    r"\s+|(?P<tok>->|<=|>=|!=|[A-Za-z_][A-Za-z0-9_]*|\d+|[-+*/%<>=.,:()\[\]{}?∪∩∖∈∉∋∌⊆⊇⊂⊃])"
)


class AcornSyntaxError(ValueError):
    """The text is not an expression this parser reads."""


def tokenize(text: str) -> list[str]:
    out = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise AcornSyntaxError(f"unexpected {text[pos]!r}")
        if m.group("tok"):
            out.append(m.group("tok"))
        pos = m.end()
    return out


# ------------------------------------------------------------------ syntax tree


@dataclass
class Name:
    text: str  # identifier, numeral, true/false, self


@dataclass
class Dot:
    left: "Node"
    attr: str


@dataclass
class Call:
    fn: "Node"
    args: list


@dataclass
class TypeArgs:
    fn: "Node"
    types: list  # of Node (type expressions)


@dataclass
class Unary:
    op: str
    arg: "Node"


@dataclass
class Binary:
    op: str
    left: "Node"
    right: "Node"


@dataclass
class Binder:
    kind: str  # forall | exists | function
    decls: list  # of (name, type Node)
    body: "Node"


@dataclass
class IfElse:
    cond: "Node"
    then: "Node"
    other: "Node" | None


@dataclass
class Tuple:
    """A parenthesized list of types: the arguments of a function type `(A, B) -> C`."""

    items: list


@dataclass
class Paren:
    """Parentheses in the source: kept while parsing, gone once printed by the generator."""

    inner: "Node"


Node = Union[Name, Dot, Call, TypeArgs, Unary, Binary, Binder, IfElse, Tuple, Paren]


# ------------------------------------------------------------------ parser


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.t = tokens
        self.i = 0

    def peek(self, k: int = 0) -> str | None:
        j = self.i + k
        return self.t[j] if j < len(self.t) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise AcornSyntaxError(f"expected {expected or 'a token'}, found {tok!r}")
        self.i += 1
        return tok

    def expr(self, min_prec: int = 0) -> Node:
        """Operators of precedence > min_prec join (acorn's find_last_operator: the lowest
        operator is the root, the rightmost among equals; `->` leftmost)."""
        left = self.unary()
        while True:
            op = self.peek()
            prec = BINARY.get(op, 0) if op != "." else 0  # `.` is read by postfix()
            if not prec or prec <= min_prec:
                return left
            self.take()
            right = self.expr(prec - 1 if op == "->" else prec)
            left = Binary(op, left, right)

    def unary(self) -> Node:
        tok = self.peek()
        if tok in UNARY:
            self.take()
            return Unary(tok, self.expr(UNARY[tok]))
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        while True:
            tok = self.peek()
            if tok == ".":
                self.take()
                name = self.take()
                if not (name[0].isalnum() or name[0] == "_"):
                    raise AcornSyntaxError(f"expected a name after '.', found {name!r}")
                node = Dot(node, name)
            elif tok == "(":
                self.take()
                node = Call(node, self.items(")"))
            elif tok == "[":
                self.take()
                node = TypeArgs(node, self.items("]"))
            else:
                return node

    def items(self, close: str) -> list:
        out = []
        if self.peek() == close:
            self.take()
            return out
        while True:
            out.append(self.expr(1))
            tok = self.take()
            if tok == close:
                return out
            if tok != ",":
                raise AcornSyntaxError(f"expected ',' or {close!r}, found {tok!r}")

    def block(self) -> Node:
        self.take("{")
        inner = self.expr()
        self.take("}")
        return inner

    def primary(self) -> Node:
        tok = self.take()
        if tok in ("forall", "exists", "function"):
            self.take("(")
            decls = []
            while True:
                name = self.take()
                self.take(":")
                decls.append((name, self.expr(1)))
                sep = self.take()
                if sep == ")":
                    break
                if sep != ",":
                    raise AcornSyntaxError(f"expected ',' or ')' in a declaration, found {sep!r}")
            return Binder(tok, decls, self.block())
        if tok == "if":
            cond = self.expr()
            then = self.block()
            other = None
            if self.peek() == "else":
                self.take()
                other = self.block()
            return IfElse(cond, then, other)
        if tok == "(":
            items = self.items(")")
            return Paren(items[0]) if len(items) == 1 else Tuple(items)
        if tok in KEYWORDS or not (tok[0].isalnum() or tok[0] == "_"):
            raise AcornSyntaxError(f"unexpected {tok!r}")
        return Name(tok)


def parse(text: str) -> Node:
    """One expression; `//` comments are dropped, newlines are spaces."""
    text = "\n".join(line.split("//", 1)[0] for line in text.splitlines())
    p = _Parser(tokenize(text))
    node = p.expr()
    if p.peek() is not None:
        raise AcornSyntaxError(f"unexpected {p.peek()!r} after the expression")
    return node


# ------------------------------------------------------------------ elaboration-like rewrites


def strip_parens(node: Node) -> Node:
    """The tree without source parentheses (the generator places its own)."""
    if isinstance(node, Paren):
        return strip_parens(node.inner)
    if isinstance(node, Dot):
        return Dot(strip_parens(node.left), node.attr)
    if isinstance(node, Call):
        return Call(strip_parens(node.fn), [strip_parens(a) for a in node.args])
    if isinstance(node, TypeArgs):
        return TypeArgs(strip_parens(node.fn), [strip_type(t) for t in node.types])
    if isinstance(node, Unary):
        return Unary(node.op, strip_parens(node.arg))
    if isinstance(node, Binary):
        op = "=" if node.op == "iff" else node.op
        return Binary(op, strip_parens(node.left), strip_parens(node.right))
    if isinstance(node, Binder):
        return Binder(node.kind, [(n, strip_type(t)) for n, t in node.decls], strip_parens(node.body))
    if isinstance(node, IfElse):
        return IfElse(strip_parens(node.cond), strip_parens(node.then),
                      None if node.other is None else strip_parens(node.other))
    if isinstance(node, Tuple):
        raise AcornSyntaxError("a tuple outside a type")
    return node


@dataclass(frozen=True)
class FnType:
    """A function type, uncurried as acorn's types are: `A -> B -> C` is `(A, B) -> C`."""

    args: tuple
    ret: object


def strip_type(node: Node):
    """A type expression as acorn holds it: names and `Name[params]` stay nodes, arrows
    become FnType (uncurried)."""
    if isinstance(node, Paren):
        return strip_type(node.inner)
    if isinstance(node, Binary) and node.op == "->":
        left = node.left
        args = tuple(strip_type(a) for a in left.items) if isinstance(left, Tuple) else (strip_type(left),)
        ret = strip_type(node.right)
        if isinstance(ret, FnType):
            return FnType(args + ret.args, ret.ret)
        return FnType(args, ret)
    if isinstance(node, TypeArgs):
        return TypeArgs(strip_type(node.fn), [strip_type(t) for t in node.types])
    if isinstance(node, (Name, Dot)):
        return node
    raise AcornSyntaxError("not a type")


def _type_name(node: Node) -> bool:
    """`Real` in `Real.neg`: a capitalized name is a type (bound variables are renamed first)."""
    return isinstance(node, Name) and node.text[:1].isupper()


def negate(node: Node) -> Node:
    """acorn's AcornValue::negate."""
    if isinstance(node, Unary) and node.op == "not":
        return node.arg
    if isinstance(node, Binary) and node.op in ("=", "!="):
        return Binary("!=" if node.op == "=" else "=", node.left, node.right)
    if isinstance(node, Name) and node.text in ("true", "false"):
        return Name("false" if node.text == "true" else "true")
    return Unary("not", node)


# ------------------------------------------------------------------ printing


@dataclass
class _Out:
    """A printed expression and its top-level precedence (acorn's top_level_precedence)."""

    text: str
    prec: int  # binary precedence, or MAX for atoms
    unary: bool = False  # a prefix operator: MAX where unary counts as max, else its own

    def level(self, unary_counts_as_max: bool) -> int:
        if self.unary and not unary_counts_as_max:
            return self.prec
        return MAX if self.unary else self.prec


def _paren(o: _Out) -> _Out:
    return _Out(f"({o.text})", MAX)


def type_text(t) -> str:
    """acorn's type_to_expr."""
    if isinstance(t, FnType):
        args = [type_text(a) for a in t.args]
        if len(args) == 1:
            lhs = f"({args[0]})" if isinstance(t.args[0], FnType) else args[0]
        else:
            lhs = "(" + ", ".join(args) + ")"
        rhs = type_text(t.ret)
        if isinstance(t.ret, FnType):
            rhs = f"({rhs})"
        return f"{lhs} -> {rhs}"
    if isinstance(t, TypeArgs):
        return type_text(t.fn) + "[" + ", ".join(type_text(x) for x in t.types) + "]"
    if isinstance(t, Dot):
        return type_text(t.left) + "." + t.attr
    if isinstance(t, Name):
        return t.text
    raise AcornSyntaxError("not a type")


@dataclass
class Printer:
    """acorn's CodeGenerator.value_to_code over a parsed (paren-free) tree.

    `scope` (an acorn_types.TypeScope, optional) decides a generic callee's type arguments
    (`explicit`: [] for none, type texts, or None to keep the source's) and names the function
    behind a method alias (`alias`); `numerals` is the module's numerals type, whose numerals
    acorn writes bare (`Nat.0` -> `0`)."""

    scope: object | None = None
    numerals: str | None = None
    next_x: int = 0
    next_k: int = 0
    names: dict = field(default_factory=dict)  # source name -> printed name (bound variables)
    local: dict = field(default_factory=dict)  # source name -> type (bound variables)

    def code(self, node: Node) -> str:
        return self._expr(node).text

    def _fresh(self, kind: str) -> str:
        if kind == "exists":
            name = f"k{self.next_k}"
            self.next_k += 1
        else:
            name = f"x{self.next_x}"
            self.next_x += 1
        return name

    def _binary(self, left: _Out, op: str, right: _Out) -> _Out:
        """generate_binary (an infix method) with its parenthesizing."""
        p = BINARY[op]
        if left.level(False) < p:
            left = _paren(left)
        if right.level(True) <= p:
            right = _paren(right)
        if op == ".":
            return _Out(f"{left.text}.{right.text}", p)
        return _Out(f"{left.text} {op} {right.text}", p)

    def _unary(self, op: str, arg: _Out) -> _Out:
        if arg.level(True) < UNARY[op]:
            arg = _paren(arg)
        return _Out(f"-{arg.text}" if op == "-" else f"{op} {arg.text}", UNARY[op], unary=True)

    def _head(self, node: Node, call: Call | None) -> _Out:
        """A callee or a constant, with the type arguments the generator would write."""
        base = node.fn if isinstance(node, TypeArgs) else node
        decided = self.scope.explicit(node, call, self.local) if self.scope is not None else None
        out = self._expr(base)
        if decided is None:
            if isinstance(node, TypeArgs):
                return _Out(out.text + "[" + ", ".join(type_text(t) for t in node.types) + "]", APPLY)
            return out
        if decided:
            return _Out(out.text + "[" + ", ".join(decided) + "]", APPLY)
        return out

    def _alias(self, node: Dot) -> str | None:
        return self.scope.alias(node.left, node.attr, self.local) if self.scope is not None else None

    def _expr(self, node: Node) -> _Out:
        if isinstance(node, Name):
            return _Out(self.names.get(node.text, node.text), MAX)
        if isinstance(node, TypeArgs):
            return self._head(node, None)
        if isinstance(node, Dot):
            left = node.left
            if isinstance(left, Name) and left.text == self.numerals and node.attr.isdigit() and left.text not in self.names:
                return _Out(node.attr, MAX)
            if node.attr == "neg" and not _type_name(left):
                return self._unary("-", self._expr(left))
            if isinstance(left, TypeArgs) and isinstance(left.fn, Name):  # `Set[K].empty_set`
                return _Out(f"{left.fn.text}.{node.attr}[{', '.join(type_text(t) for t in left.types)}]", APPLY)
            alias = self._alias(node)
            if alias is not None:
                return _Out(f"{alias}({self._expr(left).text})", APPLY)
            return self._binary(self._expr(left), ".", _Out(node.attr, MAX))
        if isinstance(node, Call):
            fn = node.fn
            args = [self._expr(a).text for a in node.args]  # the generator does args first
            alias = self._alias(fn) if isinstance(fn, Dot) else None
            if alias is not None:
                return _Out(f"{alias}({self._expr(fn.left).text})({', '.join(args)})", APPLY)
            if isinstance(fn, Dot) and isinstance(fn.left, TypeArgs) and isinstance(fn.left.fn, Name):
                # `Set[Nat].singleton(n)`: the type's arguments as a generic constant's
                owner, types = fn.left.fn.text, ", ".join(type_text(t) for t in fn.left.types)
                inferable = self.scope is not None and self.scope.static_inferable(owner, fn.attr, len(node.args))
                if inferable is None:
                    head = self._expr(fn)
                else:
                    head = _Out(f"{owner}.{fn.attr}" + ("" if inferable else f"[{types}]"), APPLY)
                return _Out(f"{head.text}({', '.join(args)})", APPLY)
            if isinstance(fn, (Name, TypeArgs)) and self.scope is not None:
                head = self._head(fn, node)
            else:
                head = self._expr(fn)
            return _Out(f"{head.text}({', '.join(args)})", APPLY)
        if isinstance(node, Unary):
            return self._unary(node.op, self._expr(node.arg))
        if isinstance(node, Binary):
            if node.op in LOGICAL:
                left, right = self._expr(node.left), self._expr(node.right)
                p = BINARY[node.op]
                if isinstance(node.left, Binary) and node.left.op in LOGICAL and BINARY[node.left.op] < p:
                    left = _paren(left)
                if isinstance(node.right, Binary) and node.right.op in LOGICAL and BINARY[node.right.op] <= p:
                    right = _paren(right)
                return _Out(f"{left.text} {node.op} {right.text}", p)
            left, right = self._expr(node.left), self._expr(node.right)
            if node.op in ("∋", "∌"):  # printed by its method's first operator, operands swapped
                return self._binary(right, "∈" if node.op == "∋" else "∉", left)
            return self._binary(left, node.op, right)
        if isinstance(node, Binder):
            saved, saved_local = dict(self.names), dict(self.local)
            decls = []
            for name, t in node.decls:
                fresh = self._fresh(node.kind)
                decls.append(f"{fresh}: {type_text(t)}")
                self.names[name] = fresh
                self.local[name] = t
            body = self._expr(node.body).text
            self.names, self.local = saved, saved_local
            return _Out(f"{node.kind}({', '.join(decls)}) {{ {body} }}", MAX)
        if isinstance(node, IfElse):
            text = f"if {self._expr(node.cond).text} {{ {self._expr(node.then).text} }}"
            if node.other is not None:
                text += f" else {{ {self._expr(node.other).text} }}"
            return _Out(text, MAX)
        raise AcornSyntaxError(f"cannot print {type(node).__name__}")


def counterfactual(claim: str, scope=None, numerals: str | None = None) -> str:
    """A theorem claim's `@C` as acorn f47631b0 prints it (the negated claim)."""
    return Printer(scope, numerals).code(negate(strip_parens(parse(claim))))
