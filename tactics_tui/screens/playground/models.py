"""The models the Playground offers (exports, then the run's checkpoints) and the layout each was trained on."""

from __future__ import annotations

import json
from pathlib import Path

from tactics_core.common.workspace import current_run_dir
from tactics_core.gpt import complete
from tactics_core.gpt.layouts import Layout, layout_named
from tactics_core.runs import checkpoints


def model_layout(path: str) -> Layout | None:
    """The data layout a model was trained on (export config.json or checkpoint sidecar), if known."""
    p = Path(path)
    if p.is_dir():
        return complete.export_layout(complete.read_export_config(p))
    name = checkpoints.read_meta(p).get("layout")
    return None if name is None else layout_named(name)


def model_options(ws, run_folder=None) -> list[tuple[str, str]]:
    """Export folders (newest first) then the run's checkpoints (best first) as (label, path).

    `run_folder`: the run whose checkpoints to offer (default: the workspace's current run)."""
    options: list[tuple[str, str]] = []
    if ws.export_dir.is_dir():
        exports = sorted((p for p in ws.export_dir.iterdir() if (p / "model.onnx").is_file()), reverse=True)
        options += [(f"export  {p.name}", str(p)) for p in exports]
    folder = Path(run_folder) if run_folder is not None else current_run_dir(ws.checkpoint_dir)
    if folder.is_dir():
        pts = sorted(folder.glob("*.pt"), key=lambda p: (p.name != "best_model.pt", -p.stat().st_mtime))
        options += [(f"checkpoint  {p.name}", str(p)) for p in pts if not _scorer_checkpoint(p)]
    return options


def _scorer_checkpoint(path: Path) -> bool:
    """A proof-step scorer's checkpoint (its sidecar says so): nothing the Playground can run."""
    try:
        return json.loads(checkpoints.meta_path(path).read_text(encoding="utf-8")).get("kind") == "scorer"
    except (OSError, ValueError, AttributeError):
        return False
