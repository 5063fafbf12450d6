"""A stand-in `acorn` for tests: it replays transcripts recorded from acorn f47631b0
(tests/fixtures/acorn_f47631b0), and the small acornlib checkout and export it is run on.
The judge's tests (tests/core/acorn) and the TUI's Checkpoints screen test use it."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from conftest import TESTS

FIXTURES = TESTS / "fixtures" / "acorn_f47631b0"


FAKE = """\
#!{python}
# Replays transcripts recorded from acorn f47631b0 (tests/fixtures/acorn_f47631b0).
import os, sys
from pathlib import Path
fixtures = Path({fixtures!r})
plan = {plan!r}
args = sys.argv[1:]
log = os.environ.get("FAKE_ACORN_LOG")
if log:
    with open(log, "a") as f:
        f.write(" ".join(args) + "\\n")
def play(name, code):
    sys.stdout.write((fixtures / (name + ".txt")).read_text())
    sys.exit(code)
if args[:2] == ["reprove", "--help"]:
    if plan.get("help") == "old":
        print("Usage: acorn reprove [OPTIONS] [TARGET]\\n  --timeout <SECONDS>")
        sys.exit(0)
    if plan.get("help") == "nolib":
        play("no_onnxruntime", 127)
    play("reprove_help", 0)
lib = Path(args[args.index("--lib") + 1])
assert (lib / "src").is_symlink(), "acorn must run on the scratch library"
if "reverify" in args:
    play("reverify_nat_lattice", 0)
target = args[args.index("reprove") + 1]
line = target.split(":")[1]
which = "generative" if "--generative" in args else "saturation"
name, code = plan[which].get(line, plan[which]["*"])
play(name, code)
"""


def make_fake(tmp_path: Path, plan: dict) -> Path:
    path = tmp_path / "bin" / "acorn"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FAKE.format(python=sys.executable, fixtures=str(FIXTURES), plan=plan), encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def make_library(tmp_path: Path, layout: str = "2025") -> Path:
    lib = tmp_path / "acornlib"
    (lib / "src" / "nat").mkdir(parents=True)
    (lib / "src" / "nat" / "lattice.ac").write_text("// the module\n")
    (lib / "acorn.toml").write_text("")
    if layout == "2025":
        (lib / "build" / "nat").mkdir(parents=True)
        (lib / "build" / "nat" / "lattice.jsonl").write_text('{"goal": "g", "proof": []}\n')
        (lib / "build" / "empty.jsonl").write_text("")
    else:
        (lib / "src" / "nat" / "certs").mkdir()
        (lib / "src" / "nat" / "certs" / "lattice.jsonl").write_text('{"goal": "g", "p": []}\n')
    return lib


PLAN = {
    # nat.lattice's goals start on lines 12, 16, 20 (two goals), 28 (four goals)
    "generative": {"12": ("saturation_proved", 0), "16": ("generative_crashed", 101), "*": ("generative_timeout", 1)},
    "saturation": {"*": ("saturation_proved", 0)},
}


def fake_export(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    for name in ("model.onnx", "tokenizer.json", "config.json"):
        (folder / name).write_text("{}")
    return folder
