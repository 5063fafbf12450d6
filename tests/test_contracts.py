"""The import contracts of pyproject.toml hold, and the TUI starts without torch.

`lint-imports` (import-linter) checks the `[tool.importlinter]` contracts: the core never
imports the TUI or Textual, and the TUI's layers import only downwards. It runs in a fresh
interpreter in the folder that holds the packages, so it reads this checkout's code. A
copy of the tree with one bad import shows the check really fails. The TUI imports the core
with plain top-level imports; importing every TUI module must still load no torch, onnx or
onnxruntime (those load inside the core functions that need them).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"

IMPORT_TUI = r"""
import importlib, json, pkgutil, sys
import tactics_tui
for info in pkgutil.walk_packages(tactics_tui.__path__, "tactics_tui."):
    importlib.import_module(info.name)
print(json.dumps({"heavy": sorted(m for m in ("torch", "onnx", "onnxruntime") if m in sys.modules)}))
"""


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, capture_output=True, text=True, timeout=300)


def test_import_contracts_hold():
    out = _lint(REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 kept, 0 broken" in out.stdout


def test_the_contract_catches_a_core_module_importing_textual(tmp_path):
    ignore = shutil.ignore_patterns("__pycache__")
    for package in ("tactics_core", "tactics_tui"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    errors = tmp_path / "tactics_core" / "errors.py"
    errors.write_text(errors.read_text() + "\nimport textual  # the mistake the contract is for\n")
    out = _lint(tmp_path)
    assert out.returncode != 0
    assert "BROKEN" in out.stdout and "tactics_core.errors -> textual" in out.stdout


def test_importing_the_tui_loads_no_torch_or_onnx():
    out = subprocess.run([sys.executable, "-c", IMPORT_TUI], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["heavy"] == []
