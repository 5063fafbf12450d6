"""The built-in demo corpus: generated proof files for a user with no Acorn data.

Theorems are polynomial identities in a commutative ring (`[R: CommRing]`)
and in `Nat`, written in Acorn syntax. Each proof is the chain of single
rewrites (distribute, reassociate, cancel, order terms, drop `0` / `1`) that
normalises the left side into the right side, one rewrite per proof line, so
the next line is a deterministic function of the goal and the lines so far:
real structure a small model can learn in minutes. Long proofs are split
into claims inside a `by { ... }` block, which gives goal files with `@T`
prefixes exactly like the real corpora; implications (`c = E implies ...`)
give `@H` sections. `@C` follows the corpora's negation rules (`=` becomes
`!=`; for `A implies B` it is the negated `B`).

Generation is seeded and uses no hash-ordered containers, so one seed always
gives the same bytes.
"""

from __future__ import annotations

import functools
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

from tactics_core.common.atomic import swap_dir
from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn, check, report
from tactics_core.gpt.corpus import check_corpus_target

DEFAULT_FILES = 3000
MAX_FILES = 200_000
MAX_STEPS = 14  # longer rewrite chains are dropped: they make unwieldy goals
MAX_EXPR_CHARS = 90

# An expression is a tuple: ("v", name) | ("0",) | ("1",) | ("+", x, y) | ("*", x, y) | ("-", x).
Expr = tuple


@dataclass(frozen=True)
class World:
    """A type the theorems live in: how it is declared and how its constants print."""

    name: str
    type_params: str
    type_name: str
    zero: str
    one: str
    has_neg: bool


RING = World("ring", "[R: CommRing]", "R", "R.0", "R.1", True)
NAT = World("nat", "", "Nat", "0", "1", False)
WORLDS = (RING, NAT)

ZERO: Expr = ("0",)
ONE: Expr = ("1",)


def var(name: str) -> Expr:
    return ("v", name)


# ---------------------------------------------------------------- printing

_PREC = {"+": 1, "*": 2, "-": 3}


@functools.lru_cache(maxsize=1 << 16)
def show(e: Expr, world: World, parent: int = 0, right: bool = False) -> str:
    """Acorn spelling with minimal parentheses (`+` and `*` are left associative)."""
    kind = e[0]
    if kind == "v":
        return e[1]
    if kind == "0":
        return world.zero
    if kind == "1":
        return world.one
    if kind == "-":
        inner = e[1]
        body = show(inner, world, 3) if inner[0] in ("v", "0", "1", "-") else "(" + show(inner, world) + ")"
        return "-" + body
    prec = _PREC[kind]
    text = f"{show(e[1], world, prec)} {kind} {show(e[2], world, prec, right=True)}"
    if parent > prec or (parent == prec and right):
        return "(" + text + ")"
    return text


def variables(e: Expr) -> list[str]:
    """Variables of `e`, sorted (a list, never a set: keeps generation deterministic)."""
    found: list[str] = []

    def walk(x: Expr) -> None:
        if x[0] == "v":
            if x[1] not in found:
                found.append(x[1])
        else:
            for child in x[1:]:
                walk(child)

    walk(e)
    return sorted(found)


# ---------------------------------------------------------------- one rewrite


def _strip_neg(e: Expr) -> tuple[Expr, bool]:
    return (e[1], True) if e[0] == "-" else (e, False)


@functools.lru_cache(maxsize=1 << 16)
def _term_key(e: Expr) -> tuple:
    """Order of terms in a normal form: by degree, then spelling, positive before negative."""
    base, negative = _strip_neg(e)
    return (_degree(base), show(base, RING), negative)


def _degree(e: Expr) -> int:
    if e[0] == "*":
        return _degree(e[1]) + _degree(e[2])
    return 1


def _rewrite_here(e: Expr, world: World) -> tuple[Expr, str] | None:
    """Apply the first rule that matches at the root of `e`, or None."""
    kind = e[0]
    if kind == "*":
        x, y = e[1], e[2]
        if y == ZERO or x == ZERO:
            return ZERO, "mul_zero"
        if y == ONE:
            return x, "mul_one"
        if x == ONE:
            return y, "one_mul"
        if y[0] == "-":
            return ("-", ("*", x, y[1])), "mul_neg"
        if x[0] == "-":
            return ("-", ("*", x[1], y)), "neg_mul"
        if y[0] == "+":
            return ("+", ("*", x, y[1]), ("*", x, y[2])), "distrib_left"
        if x[0] == "+":
            return ("+", ("*", x[1], y), ("*", x[2], y)), "distrib_right"
        if y[0] == "*":
            return ("*", ("*", x, y[1]), y[2]), "mul_assoc"
        # x * y with both sides atoms or products: order the factors
        if x[0] == "*":
            if _term_key(y) < _term_key(x[2]):
                return ("*", ("*", x[1], y), x[2]), "mul_comm"
        elif _term_key(y) < _term_key(x):
            return ("*", y, x), "mul_comm"
        return None
    if kind == "+":
        x, y = e[1], e[2]
        if y == ZERO:
            return x, "add_zero"
        if x == ZERO:
            return y, "zero_add"
        if y[0] == "+":
            return ("+", ("+", x, y[1]), y[2]), "add_assoc"
        if x == ("-", y) or y == ("-", x):
            return ZERO, "add_neg"
        if x[0] == "+":
            last = x[2]
            if last == ("-", y) or y == ("-", last):
                return x[1], "add_neg_cancel"
            if _term_key(y) < _term_key(last):
                return ("+", ("+", x[1], y), last), "add_comm"
        elif _term_key(y) < _term_key(x):
            return ("+", y, x), "add_comm"
        return None
    if kind == "-":
        x = e[1]
        if x[0] == "-":
            return x[1], "neg_neg"
        if x == ZERO:
            return ZERO, "neg_zero"
        if x[0] == "+":
            return ("+", ("-", x[1]), ("-", x[2])), "neg_add"
        return None
    return None


def rewrite_once(e: Expr, world: World) -> tuple[Expr, str] | None:
    """One leftmost-innermost rewrite of `e`: (new expression, rule name), or None if normal.

    Innermost first, as a person simplifies: sub-terms are cleaned up before
    the terms around them are expanded or reordered.
    """
    for i in range(1, len(e)):
        if isinstance(e[i], tuple):
            inner = rewrite_once(e[i], world)
            if inner is not None:
                return e[:i] + (inner[0],) + e[i + 1 :], inner[1]
    return _rewrite_here(e, world)


def normalise(e: Expr, world: World, limit: int = MAX_STEPS) -> list[tuple[Expr, str]] | None:
    """The rewrite chain from `e` to its normal form, or None if longer than `limit`."""
    chain: list[tuple[Expr, str]] = []
    while True:
        step = rewrite_once(e, world)
        if step is None:
            return chain
        chain.append(step)
        if len(chain) > limit:
            return None
        e = step[0]


# ---------------------------------------------------------------- theorems


@dataclass(frozen=True)
class GoalFile:
    """One generated proof file's sections (lines without markers)."""

    theorem: tuple[str, ...]
    goal: tuple[str, ...]
    hypothesis: tuple[str, ...]
    counterfactual: tuple[str, ...]
    proof: tuple[str, ...]

    def text(self) -> str:
        out = []
        for marker, lines in (("T", self.theorem), ("G", self.goal), ("H", self.hypothesis), ("C", self.counterfactual)):
            if lines:
                out.append(f"@{marker}\n" + "".join(line + "\n" for line in lines))
        out.append("@P\n" + "".join(line + "\n" for line in self.proof))
        return "".join(out)


def _random_expr(rng: random.Random, world: World, depth: int, names: str) -> Expr:
    if depth == 0 or rng.random() < 0.25:
        roll = rng.random()
        if roll < 0.08:
            return ZERO
        if roll < 0.16:
            return ONE
        return var(rng.choice(names))
    roll = rng.random()
    if world.has_neg and roll < 0.12:
        return ("-", _random_expr(rng, world, depth - 1, names))
    op = "+" if roll < 0.56 else "*"
    return (op, _random_expr(rng, world, depth - 1, names), _random_expr(rng, world, depth - 1, names))


def _signature(name: str, world: World, names: list[str]) -> str:
    args = ", ".join(f"{n}: {world.type_name}" for n in names)
    return f"theorem {name}{world.type_params}({args}) {{"


_VERBS = (
    ("add_neg", "cancel"),
    ("add_neg_cancel", "cancel"),
    ("distrib_left", "expand"),
    ("distrib_right", "expand"),
    ("neg_add", "neg"),
    ("mul_zero", "absorb"),
)


def _verb(rules: list[str]) -> str:
    for rule, verb in _VERBS:
        if rule in rules:
            return verb
    if any(r.endswith("_comm") for r in rules):
        return "reorder"
    return "simplify"


def _step_lines(start: Expr, chain: list[tuple[Expr, str]], world: World) -> list[str]:
    lines = []
    previous = start
    for expr, _rule in chain:
        lines.append(f"{show(previous, world)} = {show(expr, world)}")
        previous = expr
    return lines


def _identity_theorem(rng: random.Random, world: World, index: int) -> list[GoalFile] | None:
    expr = _random_expr(rng, world, rng.choice((2, 3, 3, 4)), rng.choice(("ab", "abc", "abc")))
    chain = normalise(expr, world)
    if not chain or not variables(expr):
        return None
    normal = chain[-1][0]
    lhs, rhs = show(expr, world), show(normal, world)
    if len(lhs) > MAX_EXPR_CHARS or len(rhs) > MAX_EXPR_CHARS:
        return None
    name = f"{world.name}_{_verb([r for _, r in chain])}_{index}"
    header = _signature(name, world, variables(expr))
    statement = f"    {lhs} = {rhs}"
    steps = _step_lines(expr, chain, world)
    files: list[GoalFile] = []
    if len(chain) >= 5 and rng.random() < 0.7:
        # Split the chain into claims inside a `by` block; each claim is its own goal file.
        cuts = [0]
        while cuts[-1] < len(chain):
            cuts.append(min(len(chain), cuts[-1] + rng.choice((2, 3, 4))))
        points = [expr] + [e for e, _ in chain]
        claims = [f"{show(points[s], world)} = {show(points[t], world)}" for s, t in zip(cuts, cuts[1:])]
        prefix = [header, statement, "} by {"]
        for k, (s, t) in enumerate(zip(cuts, cuts[1:])):
            files.append(
                GoalFile(
                    theorem=tuple(prefix + ["    " + c for c in claims[:k]]),
                    goal=("    " + claims[k],),
                    hypothesis=(),
                    counterfactual=(claims[k].replace(" = ", " != ", 1),),
                    proof=tuple(steps[s:t]),
                )
            )
        # The theorem itself follows from its claims by transitivity.
        proof = tuple(f"{lhs} = {show(points[t], world)}" for t in cuts[2:-1])
    else:
        proof = tuple(steps)
    files.append(
        GoalFile(
            theorem=(),
            goal=(header, statement, "}"),
            hypothesis=(),
            counterfactual=(f"{lhs} != {rhs}",),
            proof=proof,
        )
    )
    return files


def _implication_theorem(rng: random.Random, world: World, index: int) -> list[GoalFile] | None:
    """`c = E implies c op F = N`: substitute the hypothesis, then normalise."""
    value = _random_expr(rng, world, rng.choice((1, 2, 2)), "ab")
    other = _random_expr(rng, world, rng.choice((0, 1, 1)), "ab")
    subject = var("c")
    op = rng.choice(("*", "*", "+"))
    left = rng.random() < 0.5
    goal_lhs = (op, subject, other) if left else (op, other, subject)
    substituted = (op, value, other) if left else (op, other, value)
    chain = normalise(substituted, world)
    if not chain or not variables(value):
        return None
    normal = chain[-1][0]
    texts = [show(x, world) for x in (goal_lhs, substituted, normal, value)]
    if max(len(t) for t in texts) > MAX_EXPR_CHARS:
        return None
    goal_text, subst_text, normal_text, value_text = texts
    name = f"{world.name}_subst_{_verb([r for _, r in chain])}_{index}"
    header = _signature(name, world, sorted(set(variables(value) + variables(other) + ["c"])))
    hypothesis = f"c = {value_text}"
    return [
        GoalFile(
            theorem=(),
            goal=(header, f"    {hypothesis} implies {goal_text} = {normal_text}", "}"),
            hypothesis=(hypothesis,),
            counterfactual=(f"{goal_text} != {normal_text}",),
            proof=(f"{goal_text} = {subst_text}", *_step_lines(substituted, chain, world)),
        )
    ]


def generate(files: int = DEFAULT_FILES, seed: int = 0) -> list[tuple[str, str]]:
    """The demo corpus as (file name, text) pairs, deterministic in `seed`."""
    return _generate(files, seed)[0]


def _generate(files: int, seed: int) -> tuple[list[tuple[str, str]], int]:
    """(files, number of theorems they come from)."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    seen: dict[str, None] = {}
    index = 0
    attempts = 0
    while len(out) < files:
        attempts += 1
        if attempts > 200 * files + 1000:  # pragma: no cover - the world is far from exhausted
            raise TacticsError(f"could only make {len(out)} distinct demo files; ask for fewer with --files")
        world = WORLDS[0] if rng.random() < 0.6 else WORLDS[1]
        maker = _identity_theorem if rng.random() < 0.75 else _implication_theorem
        made = maker(rng, world, index)
        if not made:
            continue
        statement = made[-1].goal[1]
        if statement in seen:
            continue
        seen[statement] = None
        index += 1
        for goal_file in made:
            if len(out) == files:
                break
            out.append((f"proof_{len(out):05d}.txt", goal_file.text()))
    return out, index


# ---------------------------------------------------------------- writing


@dataclass(frozen=True)
class DemoReport:
    data_dir: str
    files: int
    theorems: int
    bytes: int
    seed: int
    seconds: float
    replaced: bool

    def to_dict(self) -> dict:
        return {
            "data_dir": self.data_dir,
            "files": self.files,
            "theorems": self.theorems,
            "bytes": self.bytes,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "replaced": self.replaced,
        }



def write_demo_corpus(
    data_dir: str | os.PathLike = "data/proofs",
    files: int = DEFAULT_FILES,
    seed: int = 0,
    force: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> DemoReport:
    """Generate the demo corpus into `data_dir`.

    Files are written into a hidden temp folder beside `data_dir`, which is
    renamed into place at the end, so an interrupted run leaves no half
    corpus. A non-empty `data_dir` is replaced only with `force`.
    """
    if not 1 <= files <= MAX_FILES:
        raise TacticsError(f"--files must be between 1 and {MAX_FILES:,} (got {files})")
    start = time.perf_counter()
    data_dir = Path(data_dir)
    check_corpus_target(data_dir, force)  # fail before generating, not after
    report(progress, 0, files, "generating demo theorems")
    corpus, theorems = _generate(files, seed)
    total_bytes = 0
    # The target is checked again right before the swap: something may have appeared meanwhile.
    with swap_dir(data_dir, lambda: check_corpus_target(data_dir, force)) as swap:
        for i, (name, text) in enumerate(corpus):
            if i % 256 == 0:
                check(cancel)
                report(progress, i, files, "writing demo proof files")
            data = text.encode("utf-8")
            (swap.path / name).write_bytes(data)
            total_bytes += len(data)
        check(cancel)
    report(progress, files, files, "done")
    return DemoReport(
        data_dir=str(data_dir),
        files=len(corpus),
        theorems=theorems,
        bytes=total_bytes,
        seed=seed,
        seconds=time.perf_counter() - start,
        replaced=swap.replaced,
    )
