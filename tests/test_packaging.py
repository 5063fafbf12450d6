"""The wheel carries the built-in presets as package data, and an installed
(non-editable) copy finds them without the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILTINS = sorted(p.name for p in (REPO / "presets").glob("*.toml"))


def _local_backend_can_build() -> bool:
    from importlib import metadata

    try:
        version = tuple(int(x) for x in metadata.version("setuptools").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    if version >= (70, 1):
        return True
    try:
        metadata.version("wheel")
    except metadata.PackageNotFoundError:
        return False
    return version >= (68, 0)


def test_wheel_contains_builtin_presets_and_they_load_when_installed(tmp_path):
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode:
        pytest.skip("pip is not available to build a wheel")
    # Build from a copy so the checkout gets no build/ or *.egg-info litter.
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("tactics_core", "tactics_tui", "presets"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", src)
    readme = REPO / "README.md"
    (src / "README.md").write_text(readme.read_text() if readme.exists() else "# tactics-tui\n")
    out = tmp_path / "dist"
    # Offline and fast with the venv's own setuptools when it can build wheels by itself
    # (>= 70.1, or older with `wheel`); otherwise let pip fetch the build backend.
    isolation = ["--no-build-isolation"] if _local_backend_can_build() else []
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=180,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = list(out.glob("*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for toml in BUILTINS:
            member = f"tactics_core/builtin_presets/{toml}"
            assert member in names, f"{member} missing from {wheel.name}"
            assert zf.read(member) == (REPO / "presets" / toml).read_bytes()
        assert "tactics_core/builtin_presets/__init__.py" in names
        for space in sorted((REPO / "presets" / "sweeps").glob("*.toml")):  # the sample sweep spaces
            assert f"tactics_core/builtin_presets/sweeps/{space.name}" in names, f"{space.name} missing from {wheel.name}"
        # Every subpackage is listed in [tool.setuptools] packages, or the installed copy lacks it.
        for package in ("tactics_core", "tactics_tui"):
            for init in sorted((REPO / package).rglob("__init__.py")):
                assert init.relative_to(REPO).as_posix() in names, f"{init.parent.relative_to(REPO)} missing from {wheel.name}"
        zf.extractall(tmp_path / "site")
    assert len(BUILTINS) >= 4

    # Import the unpacked wheel from a folder with no presets/ (not the checkout).
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = (
        "import json, tactics_core, tactics_core.training.presets as P\n"
        "infos = P.list_presets()\n"
        "from tactics_core.sweeps.space import builtin_space\n"
        "print(json.dumps({'pkg': tactics_core.__file__, 'dir': str(P.builtin_presets_dir()),\n"
        "  'names': [i.name for i in infos], 'tiny': P.load_preset('tiny').model.d_model,\n"
        "  'space': str(builtin_space('scorer-sizes'))}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    run = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    facts = json.loads(run.stdout)
    assert facts["pkg"].startswith(str(tmp_path / "site"))
    assert facts["dir"] == str(tmp_path / "site" / "tactics_core" / "builtin_presets")
    assert sorted(facts["names"]) == sorted(Path(b).stem for b in BUILTINS)
    assert facts["tiny"] == 128
    assert facts["space"] == str(tmp_path / "site" / "tactics_core" / "builtin_presets" / "sweeps" / "scorer-sizes.toml")
