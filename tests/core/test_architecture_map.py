"""docs/ARCHITECTURE.md's module map names every module of the core, and nothing that is not there.

The map is a table under `## Module map`; its first column is a path in backticks, relative to
`tactics_core/` (a folder ends in `/`), or to the repository when it starts with another
top-level folder (`tactics_tui/`, `bench/`). A module added, moved or removed without its line
in the map fails here, so the map cannot drift from the tree.
"""

from __future__ import annotations

import re

from conftest import REPO

CORE = REPO / "tactics_core"
OTHER_ROOTS = ("tactics_tui/", "bench/")


def _map_paths() -> list[str]:
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text.split("\n## Module map\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, re.M)


def _core_modules() -> set[str]:
    """Every module file of the core (subpackages as `part/`, their `__init__.py` being the part)."""
    found = set()
    for path in CORE.rglob("*.py"):
        rel = path.relative_to(CORE)
        if "builtin_presets" in rel.parts or "__pycache__" in rel.parts:
            continue
        if rel.name == "__init__.py" and rel.parent.parts:
            found.add(rel.parent.as_posix() + "/")
        else:
            found.add(rel.as_posix())
    return found


def test_the_map_names_every_module_of_the_core():
    named = {p for p in _map_paths() if not p.startswith(OTHER_ROOTS)}
    missing = sorted(_core_modules() - named)
    assert not missing, f"modules missing from docs/ARCHITECTURE.md's module map: {missing}"


def test_every_path_in_the_map_exists():
    paths = _map_paths()
    assert len(paths) > 40  # the table was read
    assert len(paths) == len(set(paths)), "a path is named twice in the module map"
    gone = []
    for p in paths:
        where = REPO / p if p.startswith(OTHER_ROOTS) else CORE / p
        exists = (where / "__init__.py").is_file() if p.endswith("/") and not p.startswith(OTHER_ROOTS) else where.exists()
        if not exists:
            gone.append(p)
    assert not gone, f"docs/ARCHITECTURE.md's module map names what does not exist: {gone}"
