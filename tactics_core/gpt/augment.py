"""Training-set augmentation: the same proof goal with its bound variables renamed.

Why: on a small corpus the model sees each training file many times and learns
the training theorems' text by heart, variable names included. A copy of a file
in which every bound variable (theorem and `forall`/`exists`/`define`
parameters, `let` names, single-letter type parameters such as `F` in
`[F: Field]`) is renamed consistently, in the prompt and in every proof line,
is the same proof to the prover; training on such copies makes the model copy
names from the prompt instead of recalling them (docs/experiments.md has the runs).

Only names the file itself binds are renamed, never a theorem, function, type,
field (`p.x`) or comment word. The renaming is a pure function of (file name,
variant, seed), so a resumed run sees the same copies. torch-free.
"""

from __future__ import annotations

import dataclasses
import random
import re
from typing import Any

# `(a: T`, `, b: T` (parameters; `::` is not a declaration), `let x =` / `let x:`, `[F: C`, `, G: C`.
_PARAM = re.compile(r"(?:(?<=\()|(?<=,))\s*([a-z][a-z0-9_]*)\s*:(?!:)")
_LET = re.compile(r"\blet\s+([a-z][a-z0-9_]*)\s*[:=]")
_TYPE_PARAM = re.compile(r"(?:(?<=\[)|(?<=,))\s*([A-Z])\s*:")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LOWER = [chr(c) for c in range(ord("a"), ord("z") + 1)]
_UPPER = [chr(c) for c in range(ord("A"), ord("Z") + 1)]


def _split_comment(line: str) -> tuple[str, str]:
    """(code, its `//` comment or "")."""
    cut = line.find("//")
    return (line, "") if cut < 0 else (line[:cut], line[cut:])


def _lines(pf: Any) -> list[str]:
    """The code of every line of the file, comments cut."""
    sections = (pf.theorem, pf.goal, pf.hypothesis, pf.counterfactual, pf.proof or ())
    return [_split_comment(line)[0] for section in sections for line in section]


def bound_names(pf: Any) -> tuple[set[str], set[str]]:
    """(variable names, single-letter type parameters) that the file binds."""
    variables: set[str] = set()
    types: set[str] = set()
    for line in _lines(pf):
        variables.update(m.group(1) for m in _PARAM.finditer(line))
        variables.update(m.group(1) for m in _LET.finditer(line))
        types.update(m.group(1) for m in _TYPE_PARAM.finditer(line))
    return variables, types


def rename_variables(pf: Any, rng: random.Random) -> Any:
    """A copy of the ProofFile `pf` with its bound names renamed consistently.

    Each bound name gets a single letter (lower case for variables, upper case for
    type parameters) that no other word of the file uses, so no renaming can
    capture another name; the file comes back unchanged when it binds nothing.
    """
    variables, types = bound_names(pf)
    if not variables and not types:
        return pf
    words = {w for line in _lines(pf) for w in _WORD.findall(line)}
    mapping: dict[str, str] = {}
    for names, pool in ((sorted(variables), _LOWER), (sorted(types), _UPPER)):
        free = [p for p in pool if p not in words or p in names]
        rng.shuffle(free)
        mapping.update(zip(names, free))
    pattern = re.compile(
        r"(?<![\w.])(" + "|".join(re.escape(n) for n in sorted(mapping, key=len, reverse=True)) + r")(?!\w)"
    )

    def line_of(line: str) -> str:
        code, comment = _split_comment(line)
        return pattern.sub(lambda m: mapping[m.group(1)], code) + comment

    def section(lines: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(line_of(line) for line in lines)

    return dataclasses.replace(
        pf,
        theorem=section(pf.theorem),
        goal=section(pf.goal),
        hypothesis=section(pf.hypothesis),
        counterfactual=section(pf.counterfactual),
        proof=None if pf.proof is None else section(pf.proof),
    )


def variants(pf: Any, count: int, seed: int) -> list[Any]:
    """`count` renamed copies of `pf` (variant 1..count), each a pure function of (name, variant, seed)."""
    return [rename_variables(pf, random.Random(f"{seed}/{v}/{pf.name}")) for v in range(1, count + 1)]
