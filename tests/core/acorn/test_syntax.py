"""acorn's code-generator printing of a theorem's `@C` (tactics_core/acorn/syntax.py, acorn_types.py).

Every expected string below is what acorn f47631b0's `acorn training` wrote for acornlib c30e377
(the file named beside it, in the run docs/corpus.md describes); the library texts are the
lines of acornlib those theorems rely on."""

import pytest

from tactics_core.acorn import syntax as syn
from tactics_core.acorn.types import Library, TypeScope


@pytest.mark.parametrize("claim, expected", [
    ("(a + b) + c = a + (b + c)", "a + b + c != a + (b + c)"),  # proof_00128
    ("((a * b) * c).re = a.re * b.re * c.re - a.re * b.im * c.im",
     "(a * b * c).re != a.re * b.re * c.re - a.re * b.im * c.im"),  # proof_00169
    ("-(a.re) = (-a).re", "-a.re != (-a).re"),  # proof_00213
    ("-a = (-Complex.1) * a", "-a != -Complex.1 * a"),  # proof_00309
    ("-(-a) = a", "--a != a"),  # proof_00701
    ("a = Int.from_nat(abs(a)) or a = -(Int.from_nat(abs(a)))",
     "not (a = Int.from_nat(abs(a)) or a = -Int.from_nat(abs(a)))"),  # proof_00708
    ("exists (n: Nat) {\n    n > 0 and n <= G.order and g.pow(n) = G.1 // a comment\n}",
     "not exists(k0: Nat) { k0 > 0 and k0 <= G.order and g.pow(k0) = G.1 }"),  # proof_00644
    ("not list.contains(item)", "list.contains(item)"),
    ("r.neg.num = -r.num", "(-r).num != -r.num"),  # proof_03478
    ("true", "false"),
])
def test_printing_follows_acorns_precedence_and_names(claim, expected):
    assert syn.counterfactual(claim) == expected


def test_parsing_uses_acorns_precedences():
    p = lambda text: syn.Printer().code(syn.strip_parens(syn.parse(text)))
    assert p("not a = b and c") == "not a = b and c"
    assert p("(not a) = b") == "not a = b"  # the generator parenthesizes logical children only
    assert p("a or (b and c)") == "a or (b and c)"  # `and`, `or` bind alike: the right one keeps them
    assert p("(a or b) and c") == "a or b and c"
    assert p("-(a + b) * c") == "-(a + b) * c"
    assert p("forall(x: Nat) { exists(y: Nat) { x < y } } and forall(z: Nat) { z = z }") == \
        "forall(x0: Nat) { exists(k0: Nat) { x0 < k0 } } and forall(x1: Nat) { x1 = x1 }"
    assert p("function(f: Nat -> Nat -> Bool, g: (Nat -> Nat) -> Nat) { f }") == \
        "function(x0: (Nat, Nat) -> Bool, x1: (Nat -> Nat) -> Nat) { x0 }"  # types uncurried
    with pytest.raises(syn.AcornSyntaxError):
        syn.parse("match x { }")
    with pytest.raises(syn.AcornSyntaxError):
        syn.parse("a = ")


LIBRARY = {
    "src/util.ac": """
define compose[T, U, V](f: U -> V, g: T -> U) -> T -> V {
    function(x: T) { f(g(x)) }
}
define is_transitive[T](f: (T, T) -> Bool) -> Bool {
    forall(x: T, y: T, z: T) { f(x, y) and f(y, z) implies f(x, z) }
}
""",
    "src/list/list_sum.ac": """
numerals Nat
define partial[A: AddCommMonoid](f: Nat -> A, n: Nat) -> A {
    sum(map(n.range, f))
}
define sum[A: AddCommMonoid](items: List[A]) -> A {
    items.reduce
}
define map[T, U](items: List[T], f: T -> U) -> List[U] {
    items.map(f)
}
define reverse[T](items: List[T]) -> List[T] {
    items
}
""",
    "src/nat/nat_base.ac": """
numerals Nat
inductive Nat {
    0
    suc(Nat)
}
attributes Nat {
    define range(self) -> List[Nat] {
        self.upto
    }
}
instance Nat: LTE {
    define lte(self, b: Nat) -> Bool {
        exists(c: Nat) { self + c = b }
    }
}
let nat_mod(a: Nat, m: Nat) -> r: Nat satisfy {
    r < m
}
attributes Nat {
    let mod = nat_mod
}
""",
    "src/monoid.ac": """
typeclass M: Monoid extends Semigroup, One {
    one_mul(a: M) { M.1 * a = a }
}
attributes M: Monoid {
    define pow(self, exp: Nat) -> M {
        self
    }
}
""",
    "src/comm_ring/binomial.ac": """
from list import partial, compose
numerals Nat
define binomial_term[R: CommRing](a: R, b: R, m: Nat, k: Nat) -> R {
    a.pow(k) * b.pow(m - k)
}
""",
    "src/set.ac": """
structure Set[K] {
    contains: K -> Bool
}
attributes Set[K] {
    let empty_set = Set[K].new(constant_false[K])
    let singleton: K -> Set[K] = function(a: K) {
        Set[K].new(singleton_fun(a))
    }
}
""",
}


def _scope(module: str, header: str) -> tuple:
    lib = Library()
    for rel, text in LIBRARY.items():
        lib.add_module(rel, text)
    return TypeScope.for_theorem(lib, module, header), lib.modules[module].numerals


@pytest.mark.parametrize("module, header, claim, expected", [
    # a parameter that is an argument's declared type is inferred, so not written
    ("comm_ring.binomial", "theorem binomial_term_zero[R: CommRing](a: R, b: R, m: Nat)",
     "binomial_term[R](a, b, m.suc, 0) = b * binomial_term[R](a, b, m, 0)",
     "binomial_term(a, b, m.suc, 0) != b * binomial_term(a, b, m, 0)"),  # proof_00046
    # ... one only inside an argument's type is written, from the arguments' types
    ("comm_ring.binomial", "theorem binomial_middle_sum[R: CommRing](a: R, b: R, m: Nat)",
     "partial(compose(binomial_term[R](a, b, m.suc), Nat.suc), m) = a * partial(binomial_term[R](a, b, m), m)",
     "partial[R](compose[Nat, Nat, R](binomial_term(a, b, m.suc), Nat.suc), m) != a * partial[R](binomial_term(a, b, m), m)"),  # proof_00088
    ("nat.nat_base", "theorem range_reverse_map(n: Nat)",
     "reverse(n.range) = map(n.range, function(i: Nat) { n - 1 - i })",
     "reverse[Nat](n.range) != map[Nat, Nat](n.range, function(x0: Nat) { n - 1 - x0 })"),  # proof_01783
    ("nat.nat_base", "theorem nat_is_transitive", "is_transitive(Nat.lte)",
     "not is_transitive[Nat](Nat.lte)"),  # proof_02553 (an instance's method)
    ("comm_ring.binomial", "theorem geometric_sum[R: Ring](a: R, n: Nat)",
     "(a + -R.1) * sum(map(n.range, a.pow)) = a.pow(n) + -R.1",
     "(a + -R.1) * sum[R](map[Nat, R](n.range, a.pow)) != a.pow(n) + -R.1"),  # proof_10119 (a typeclass's method)
    # the module's numerals are written bare; a method that is `let mod = nat_mod` as a call
    ("nat.nat_base", "theorem mod_mod(a: Nat, m: Nat)", "a.mod(m).mod(m) = a.mod(m)",
     "nat_mod(nat_mod(a)(m))(m) != nat_mod(a)(m)"),  # proof_02749
    ("nat.nat_base", "theorem zero_until(n: Nat)", "Nat.0.suc = n.range", "0.suc != n.range"),
    # a generic type's attribute: `Set.empty_set[K]`, `Set.singleton(n)` (K inferred from n)
    ("set", "theorem empty_set_compl_is_universal[K]", "(Set[K].empty_set).c = Set[K].singleton(a)",
     "Set.empty_set[K].c != Set.singleton(a)"),  # proof_10166, proof_04670
])
def test_type_arguments_as_the_generator_decides(module, header, claim, expected):
    scope, numerals = _scope(module, header)
    assert syn.counterfactual(claim, scope, numerals) == expected


def test_unknown_callees_keep_the_source_text():
    scope, numerals = _scope("set", "theorem t(x: Foo)")
    assert syn.counterfactual("mystery[Foo](x) = other(x)", scope, numerals) == "mystery[Foo](x) != other(x)"
