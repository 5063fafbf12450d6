"""The import contracts of pyproject.toml hold, and the TUI starts without torch.

`lint-imports` (import-linter) checks the `[tool.importlinter]` contracts: the core never
imports the TUI or Textual, the TUI's layers import only downwards, `common` imports no other
part of the core, `training` and `runs` never import the acorn adapter or the CLI, nothing in
the core imports the CLI, and only the CLI and the TUI import the acorn judge. It runs in a fresh
interpreter in the folder that holds the packages, so it reads this checkout's code. A
copy of the tree with one bad import shows the check really fails. The TUI imports the core
with plain top-level imports; importing every TUI module must still load no torch, onnx or
onnxruntime (those load inside the core functions that need them).

The core has no import cycle, counting imports inside functions (grimp sees them): a cycle
hidden in a function still means two modules that cannot be read, or changed, apart.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"

IMPORT_TUI = r"""
import importlib, json, pkgutil, sys
import tactics_tui
for info in pkgutil.walk_packages(tactics_tui.__path__, "tactics_tui."):
    importlib.import_module(info.name)
print(json.dumps({"heavy": sorted(m for m in ("torch", "onnx", "onnxruntime") if m in sys.modules)}))
"""


CYCLES = r"""
import json, grimp
graph = grimp.build_graph("tactics_core", cache_dir=None)
modules = sorted(graph.modules)
edges = {m: sorted(set(graph.find_modules_directly_imported_by(m)) & set(modules)) for m in modules}
index, low, stack, on_stack, cycles = {}, {}, [], set(), []

def visit(v):  # Tarjan: every strongly connected group of two or more modules is a cycle
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on_stack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        group = []
        while not group or group[-1] != v:
            group.append(stack.pop())
            on_stack.discard(group[-1])
        if len(group) > 1:
            cycles.append([
                f"{a} -> {b} (line {d['line_number']})"
                for a in sorted(group) for b in edges[a] if b in group
                for d in graph.get_import_details(importer=a, imported=b)
            ])

for m in modules:
    if m not in index:
        visit(m)
print(json.dumps({"modules": len(modules), "cycles": cycles}))
"""


def _cycles(root: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CYCLES], cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, capture_output=True, text=True, timeout=300)


def test_import_contracts_hold():
    out = _lint(REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "9 kept, 0 broken" in out.stdout


@pytest.mark.parametrize("module, mistake, reported", [
    ("common/errors.py", "import textual", "tactics_core.common.errors -> textual"),
    ("common/formatting.py", "from tactics_core.gpt import corpus", "tactics_core.common.formatting -> tactics_core.gpt.corpus"),
    ("gpt/evaluate.py", "from tactics_core.acorn import generative_judge",
     "tactics_core.gpt.evaluate -> tactics_core.acorn.generative_judge"),
    ("runs/workspace_runs.py", "from tactics_core.sweeps import study",
     "tactics_core.runs.workspace_runs -> tactics_core.sweeps.study"),
    ("sweeps/study.py", "from tactics_core.sweeps import judge",
     "tactics_core.sweeps.study -> tactics_core.sweeps.judge"),
])
def test_the_contracts_catch_a_forbidden_import(tmp_path, module, mistake, reported):
    ignore = shutil.ignore_patterns("__pycache__")
    for package in ("tactics_core", "tactics_tui"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    path = tmp_path / "tactics_core" / module
    path.write_text(path.read_text() + f"\n{mistake}  # the mistake the contract is for\n")
    out = _lint(tmp_path)
    assert out.returncode != 0
    assert "BROKEN" in out.stdout and reported in out.stdout


def test_importing_the_tui_loads_no_torch_or_onnx():
    out = subprocess.run([sys.executable, "-c", IMPORT_TUI], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["heavy"] == []


def test_the_core_has_no_import_cycle():
    found = _cycles(REPO)
    assert found["modules"] > 30  # the whole core was read
    assert found["cycles"] == [], "\n".join("; ".join(c) for c in found["cycles"])


def test_the_cycle_check_catches_one_hidden_in_a_function(tmp_path):
    shutil.copytree(REPO / "tactics_core", tmp_path / "tactics_core", ignore=shutil.ignore_patterns("__pycache__"))
    errors = tmp_path / "tactics_core" / "common" / "errors.py"  # corpus imports errors at the top
    errors.write_text(errors.read_text() + "\n\ndef _late():\n    from tactics_core.gpt.corpus import parse_proof_text  # the mistake\n")
    cycles = _cycles(tmp_path)["cycles"]
    assert len(cycles) == 1 and any(edge.startswith("tactics_core.common.errors -> tactics_core.gpt.corpus") for edge in cycles[0])
