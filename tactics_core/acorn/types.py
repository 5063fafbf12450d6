"""Just enough of acorn's types to print a theorem's `@C` as acorn's code generator does.

The generator writes a generic callee's type arguments only where it cannot infer them: every
type parameter must be the declared type of one of the arguments given (`binomial_term(a, b, m)`
with `a: R`), otherwise they are all written (`partial[R](f, n)` for `f: Nat -> R`). Deciding
that needs the callee's signature; writing the arguments needs the types of the call's
arguments. `Library` reads the signatures from the checkout's sources (`define`, `let`,
`attributes`, `structure`, `inductive`, `numerals`; a few kilobytes per module), and
`TypeScope` infers the types of a theorem's expressions from its header. Whatever it cannot
type is answered None, and the printer keeps the source's text there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tactics_core.acorn import syntax as syn

_DEFINE = re.compile(
    r"^(?:define|let)\s+([A-Za-z_]\w*)\s*(\[[^\]]*\])?\s*\((.*)\)\s*->\s*(?:([A-Za-z_]\w*)\s*:\s*)?(.+?)\s*(?:satisfy)?\s*\{?\s*$"
)
_CONSTANT = re.compile(r"^(?:define|let)\s+([A-Za-z_]\w*)\s*(\[[^\]]*\])?\s*:\s*(.+?)\s*(?:=.*|\{.*)?$")
_ATTRIBUTES = re.compile(r"^(attributes|structure|inductive|instance)\s+([A-Z]\w*)\s*(\[[^\]]*\])?\s*(?::\s*([A-Z]\w*))?")
_TYPECLASS = re.compile(r"^typeclass\s+([A-Z]\w*)\s*:\s*([A-Z]\w*)")
_FIELD = re.compile(r"^([a-z_]\w*)\s*:\s*(.+?)\s*$")
_CONSTRUCTOR = re.compile(r"^([a-z_]\w*)(?:\((.*)\))?\s*$")
_ALIAS = re.compile(r"^let\s+([a-z_]\w*)\s*=\s*([a-z_]\w*)\s*$")
_NUMERALS = re.compile(r"^numerals\s+([A-Z]\w*)\s*$")
_FROM_IMPORT = re.compile(r"^from\s+([\w.]+)\s+import\s+(.+)$")


@dataclass
class Sig:
    """A constant's signature: type parameters, argument types, result type (None: a value)."""

    params: tuple
    args: tuple | None
    ret: object

    def value_type(self):
        return self.ret if self.args is None else syn.FnType(self.args, self.ret)


def _split_top(text: str, sep: str = ",") -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == sep and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return [s.strip() for s in out]


def _type(text: str):
    return syn.strip_type(syn.parse(text))


def _params(text: str | None) -> tuple:
    if not text:
        return ()
    return tuple(p.split(":")[0].strip() for p in _split_top(text[1:-1]))


def _args(text: str, self_type=None) -> tuple:
    out = []
    for part in _split_top(text):
        if part == "self":
            if self_type is None:
                raise syn.AcornSyntaxError("self outside attributes")
            out.append(self_type)
            continue
        name, _, t = part.partition(":")
        if not t:
            raise syn.AcornSyntaxError("an argument without a type")
        out.append(_type(t))
    return tuple(out)


def module_name(rel: str) -> str:
    """`src/nat/nat_base.ac` -> `nat.nat_base`; `src/real/default.ac` -> `real`."""
    name = rel[4:] if rel.startswith("src/") else rel
    name = name[:-3] if name.endswith(".ac") else name
    if name.endswith("/default"):
        name = name[: -len("/default")]
    return name.replace("/", ".")


@dataclass
class ModuleInfo:
    numerals: str | None = None
    imports: dict = field(default_factory=dict)  # name -> module


@dataclass
class Library:
    """Signatures of a checkout's constants and attributes, read statement by statement."""

    constants: dict = field(default_factory=dict)  # name -> {module: Sig}
    attributes: dict = field(default_factory=dict)  # type name -> {attr: Sig (self first)}
    type_params: dict = field(default_factory=dict)  # type name -> tuple of its parameters
    typeclass_self: dict = field(default_factory=dict)  # "typeclass C" -> its self parameter (M)
    aliases: dict = field(default_factory=dict)  # type name -> {attr: function} (`let attr = function`)
    modules: dict = field(default_factory=dict)  # module -> ModuleInfo

    def add_module(self, rel: str, text: str) -> None:
        module = module_name(rel)
        info = self.modules.setdefault(module, ModuleInfo())
        owner: tuple | None = None  # (type name, self type, kind) while inside attributes/structure/inductive
        depth = 0
        for raw in text.split("\n"):
            line = raw.split("//", 1)[0].strip()
            if not line:
                continue
            try:
                if depth == 0:
                    owner = None
                    self._top(module, info, line)
                    m = _ATTRIBUTES.match(line)
                    t = _TYPECLASS.match(line)
                    if m and line.endswith("{"):
                        kind, name, params, typeclass = m.group(1), m.group(2), _params(m.group(3)), m.group(4)
                        self_type = syn.TypeArgs(syn.Name(name), [syn.Name(p) for p in params]) if params else syn.Name(name)
                        if kind == "attributes" and typeclass:  # `attributes M: Monoid`: every instance's
                            self_type, name = syn.Name(name), "typeclass " + typeclass
                            self.typeclass_self[name] = m.group(2)
                        elif kind == "instance":
                            kind = "attributes"
                        else:
                            self.type_params.setdefault(name, params)
                        owner = (name, self_type, kind, params)
                    elif t and line.endswith("{"):
                        name = "typeclass " + t.group(2)
                        self.typeclass_self[name] = t.group(1)
                        owner = (name, syn.Name(t.group(1)), "structure", ())
                elif depth == 1 and owner is not None:
                    self._member(owner, line)
            except syn.AcornSyntaxError:
                pass
            depth += line.count("{") - line.count("}")
            depth = max(depth, 0)

    def _top(self, module: str, info: ModuleInfo, line: str) -> None:
        m = _NUMERALS.match(line)
        if m:
            info.numerals = m.group(1)
            return
        m = _FROM_IMPORT.match(line)
        if m:
            for name in m.group(2).split(","):
                info.imports[name.strip()] = m.group(1)
            return
        m = _DEFINE.match(line)
        if m:
            sig = Sig(_params(m.group(2)), _args(m.group(3)), _type(m.group(5)))
            self.constants.setdefault(m.group(1), {}).setdefault(module, sig)
            return
        m = _CONSTANT.match(line)
        if m and not line.rstrip().endswith("satisfy {"):
            sig = Sig(_params(m.group(2)), None, _type(m.group(3)))
            self.constants.setdefault(m.group(1), {}).setdefault(module, sig)

    def _member(self, owner: tuple, line: str) -> None:
        name, self_type, kind, params = owner
        table = self.attributes.setdefault(name, {})
        if kind == "attributes":
            m = _ALIAS.match(line)
            if m:
                self.aliases.setdefault(name, {}).setdefault(m.group(1), m.group(2))
                return
            m = _DEFINE.match(line)
            if m:
                table.setdefault(m.group(1), Sig(params + _params(m.group(2)), _args(m.group(3), self_type), _type(m.group(5))))
                return
            m = _CONSTANT.match(line)
            if m:
                table.setdefault(m.group(1), Sig(params + _params(m.group(2)), None, _type(m.group(3))))
        elif kind == "structure":
            m = _FIELD.match(line)
            if m:
                table.setdefault(m.group(1), Sig(params, (self_type,), _type(m.group(2))))
        elif kind == "inductive":
            m = _CONSTRUCTOR.match(line)
            if m:
                args = tuple(_type(a) for a in _split_top(m.group(2))) if m.group(2) else None
                table.setdefault(m.group(1), Sig(params, args, self_type))

    def numerals(self, module: str) -> str | None:
        """The type a module's bare numerals have (its last `numerals` line)."""
        info = self.modules.get(module)
        return info.numerals if info is not None else None

    def constant(self, module: str, name: str) -> Sig | None:
        """The signature `name` means in `module`: its own, an imported one, or the only one."""
        found = self.constants.get(name)
        if not found:
            return None
        if module in found:
            return found[module]
        imported = self.modules.get(module, ModuleInfo()).imports.get(name)
        if imported in found:
            return found[imported]
        sigs = list(found.values())
        return sigs[0] if all(s == sigs[0] for s in sigs) else None


# ------------------------------------------------------------------ inference


def _subst(t, bound: dict):
    if isinstance(t, syn.Name):
        return bound.get(t.text, t)
    if isinstance(t, syn.FnType):
        args = tuple(_subst(a, bound) for a in t.args)
        ret = _subst(t.ret, bound)
        if isinstance(ret, syn.FnType):
            return syn.FnType(args + ret.args, ret.ret)
        return syn.FnType(args, ret)
    if isinstance(t, syn.TypeArgs):
        return syn.TypeArgs(t.fn, [_subst(x, bound) for x in t.types])
    return t


def _unify(pattern, actual, params: tuple, bound: dict) -> bool:
    if isinstance(pattern, syn.Name) and pattern.text in params:
        if pattern.text in bound:
            return syn.type_text(bound[pattern.text]) == syn.type_text(actual)
        bound[pattern.text] = actual
        return True
    if isinstance(pattern, syn.FnType):
        if not isinstance(actual, syn.FnType):
            return False
        if len(pattern.args) == len(actual.args):
            return all(_unify(p, a, params, bound) for p, a in zip(pattern.args, actual.args)) and _unify(
                pattern.ret, actual.ret, params, bound)
        if len(pattern.args) < len(actual.args):  # the result parameter is itself a function
            k = len(pattern.args)
            return all(_unify(p, a, params, bound) for p, a in zip(pattern.args, actual.args[:k])) and _unify(
                pattern.ret, syn.FnType(actual.args[k:], actual.ret), params, bound)
        return False
    if isinstance(pattern, syn.TypeArgs):
        return (isinstance(actual, syn.TypeArgs) and syn.type_text(pattern.fn) == syn.type_text(actual.fn)
                and len(pattern.types) == len(actual.types)
                and all(_unify(p, a, params, bound) for p, a in zip(pattern.types, actual.types)))
    return syn.type_text(pattern) == syn.type_text(actual)


def _apply(fn_type, n: int):
    """The type of a value of `fn_type` applied to n arguments."""
    if not isinstance(fn_type, syn.FnType):
        return None
    if n == len(fn_type.args):
        return fn_type.ret
    if n < len(fn_type.args):
        return syn.FnType(fn_type.args[n:], fn_type.ret)
    return _apply(fn_type.ret, n - len(fn_type.args))


_ARITH = {"+", "-", "*", "/", "%", "∪", "∩", "∖"}
BOOL = syn.Name("Bool")


@dataclass
class TypeScope:
    """Types of the names a theorem's claim can use, and the generator's type-argument rule."""

    library: Library
    module: str
    variables: dict = field(default_factory=dict)  # name -> type
    type_names: frozenset = frozenset()  # the theorem's type parameters (concrete in its goal)

    @classmethod
    def for_theorem(cls, library: Library, module: str, header: str) -> "TypeScope":
        """`theorem name[T: C](a: T, b: Nat)` -> its parameters and argument types."""
        m = re.match(r"\s*(?:theorem|lemma)\s+[\w.]+\s*(\[[^\]]*\])?\s*(?:\((.*)\))?\s*$", header, re.S)
        scope = cls(library, module)
        if not m:
            raise syn.AcornSyntaxError("not a theorem header")
        scope.type_names = frozenset(_params(m.group(1)))
        for part in _split_top(m.group(2) or ""):
            name, _, t = part.partition(":")
            scope.variables[name.strip()] = _type(t)
        return scope

    def _sig(self, node) -> Sig | None:
        if isinstance(node, syn.Name) and node.text not in self.variables:
            return self.library.constant(self.module, node.text)
        return None

    def _attr(self, type_, attr: str) -> tuple | None:
        """(Sig, bindings of the owner's parameters) of `attr` on a value of type_."""
        if isinstance(type_, syn.Name):
            name, actual = type_.text, []
        elif isinstance(type_, syn.TypeArgs) and isinstance(type_.fn, syn.Name):
            name, actual = type_.fn.text, type_.types
        else:
            return None
        sig = self.library.attributes.get(name, {}).get(attr)
        if sig is None:
            target = self.library.aliases.get(name, {}).get(attr)
            sig = self.library.constant(self.module, target) if target else None
        if sig is None:
            # a typeclass's attribute, on one of its instances or a type parameter (`a.pow(n)`)
            found = [(tc, table[attr]) for tc, table in self.library.attributes.items()
                     if tc.startswith("typeclass ") and attr in table]
            if len(found) != 1:
                return None
            tc, sig = found[0]
            return sig, {self.library.typeclass_self[tc]: type_}
        owner = self.library.type_params.get(name, ())
        return sig, dict(zip(owner, actual))

    def type_of(self, node, local: dict | None = None):
        local = local or {}
        try:
            return self._type_of(node, local)
        except (RecursionError, syn.AcornSyntaxError):
            return None

    def _type_of(self, node, local: dict):
        if isinstance(node, syn.Name):
            if node.text in local:
                return local[node.text]
            if node.text in self.variables:
                return self.variables[node.text]
            if node.text.isdigit():
                numerals = self.library.numerals(self.module)
                return syn.Name(numerals) if numerals else None
            if node.text in ("true", "false"):
                return BOOL
            sig = self._sig(node)
            return sig.value_type() if sig is not None and not sig.params else None
        if isinstance(node, syn.TypeArgs):
            sig = self._sig(node.fn)
            if sig is None or len(sig.params) != len(node.types):
                return None
            return _subst(sig.value_type(), dict(zip(sig.params, node.types)))
        if isinstance(node, syn.Dot):
            left = node.left
            if isinstance(left, syn.Name) and left.text not in local and left.text not in self.variables and left.text[:1].isupper():
                if node.attr.isdigit():
                    return syn.Name(left.text)
                found = self._attr(syn.Name(left.text), node.attr)
                if found is None or found[0].params:
                    return None
                return found[0].value_type()
            receiver = self._type_of(left, local)
            found = self._attr(receiver, node.attr) if receiver is not None else None
            if found is None:
                return None
            sig, bound = found
            if sig.args is None:
                return _subst(sig.ret, bound)
            return _subst(_apply(sig.value_type(), 1), bound)
        if isinstance(node, syn.Call):
            fn = node.fn
            sig = self._sig(fn.fn if isinstance(fn, syn.TypeArgs) else fn)
            if sig is not None and sig.args is not None:
                bound = self.bind(sig, fn, node.args, local)
                if bound is None or any(p not in bound for p in sig.params):
                    return None
                return _apply(_subst(sig.value_type(), bound), len(node.args))
            t = self._type_of(fn, local)
            return _apply(t, len(node.args)) if t is not None else None
        if isinstance(node, syn.Unary):
            return BOOL if node.op == "not" else self._type_of(node.arg, local)
        if isinstance(node, syn.Binary):
            if node.op in _ARITH:
                return self._type_of(node.left, local) or self._type_of(node.right, local)
            return BOOL
        if isinstance(node, syn.Binder):
            if node.kind != "function":
                return BOOL
            inner = dict(local)
            for name, t in node.decls:
                inner[name] = t
            body = self._type_of(node.body, inner)
            return syn.FnType(tuple(t for _, t in node.decls), body) if body is not None else None
        if isinstance(node, syn.IfElse):
            return self._type_of(node.then, local)
        return None

    def bind(self, sig: Sig, fn, args: list, local: dict) -> dict | None:
        """The callee's type parameters: written in the source, or unified from the arguments."""
        if isinstance(fn, syn.TypeArgs):
            return dict(zip(sig.params, fn.types)) if len(fn.types) == len(sig.params) else None
        bound: dict = {}
        for declared, arg in zip(sig.args, args):
            actual = self._type_of(arg, local)
            if actual is None:
                continue
            if not _unify(declared, actual, sig.params, bound):
                return None
        return bound

    def static_inferable(self, owner: str, attr: str, nargs: int) -> bool | None:
        """Whether `Owner[T].attr(args)` prints without `[T]`: each of the owner's parameters is
        the declared type of one of the arguments given. None: the attribute is unknown."""
        sig = self.library.attributes.get(owner, {}).get(attr)
        params = self.library.type_params.get(owner)
        if sig is None or params is None:
            return None
        declared = sig.args if sig.args is not None else (sig.ret.args if isinstance(sig.ret, syn.FnType) else ())
        given = declared[:nargs]
        return all(any(isinstance(a, syn.Name) and a.text == p for a in given) for p in params)

    def alias(self, receiver, attr: str, local: dict) -> str | None:
        """The function behind `receiver.attr` when its type's attribute is `let attr = function`
        (acorn prints `function(receiver)(args)`)."""
        if not any(attr in table for table in self.library.aliases.values()):
            return None
        t = self.type_of(receiver, local)
        name = t.text if isinstance(t, syn.Name) else (t.fn.text if isinstance(t, syn.TypeArgs) and isinstance(t.fn, syn.Name) else None)
        return self.library.aliases.get(name, {}).get(attr) if name else None

    def explicit(self, head, call, local: dict) -> list | None:
        """The type arguments acorn prints for a callee: [] none, a list of type texts, None: unknown."""
        name = head.fn if isinstance(head, syn.TypeArgs) else head
        sig = self._sig(name)
        if sig is None or not sig.params:
            return None if sig is None else []
        if call is not None and sig.args is not None:
            given = sig.args[: len(call.args)]
            bound = self.bind(sig, head, call.args, local)
            inferable = all(any(isinstance(a, syn.Name) and a.text == p for a in given) for p in sig.params)
            # type_param_could_change_arity: a result parameter that becomes a function type
            # (`compose`'s V) would change the callee's arity, so the parameters are written
            grows = isinstance(sig.ret, syn.Name) and isinstance((bound or {}).get(sig.ret.text), syn.FnType)
            if inferable and not grows:
                return []
        else:
            bound = dict(zip(sig.params, head.types)) if isinstance(head, syn.TypeArgs) else None
        if bound is None or any(p not in bound for p in sig.params):
            return None
        return [syn.type_text(bound[p]) for p in sig.params]
