"""The core never imports Textual (checked in a fresh interpreter, as Harlequin does).

Every module of `tactics_core` is imported in a subprocess and `sys.modules`
is inspected afterwards; a UI import sneaking into the core fails here. The
CLI entry point must also stay free of torch so `tactics --help` is fast.
"""

from __future__ import annotations

import json
import subprocess
import sys

CHECK_ALL = r"""
import importlib, json, pkgutil, sys
import tactics_core
names = ["tactics_core"]
for info in pkgutil.walk_packages(tactics_core.__path__, "tactics_core."):
    if not info.name.endswith("__main__"):  # running it would start the CLI
        names.append(info.name)
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "ui": sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "tactics_tui", "textual_plotext"))}))
"""

CHECK_CLI = r"""
import json, sys
from tactics_core.cli import build_parser
build_parser()
print(json.dumps({"heavy": sorted(m for m in ("torch", "onnxruntime", "onnx", "textual") if m in sys.modules)}))
"""


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_core_never_imports_textual():
    result = _run(CHECK_ALL)
    # The walk really covered the core (the test would be empty otherwise).
    assert {"tactics_core.gpt.corpus", "tactics_core.runs.run_folder", "tactics_core.cli"} <= set(result["modules"])
    assert result["ui"] == []


def test_cli_parser_does_not_load_torch_or_textual():
    assert _run(CHECK_CLI)["heavy"] == []


def test_the_check_would_catch_a_ui_import():
    """The same probe, on a module that does import Textual, reports it."""
    probe = CHECK_ALL.replace("importlib.import_module(name)", "importlib.import_module(name)\nimport textual")
    assert "textual" in _run(probe)["ui"]
