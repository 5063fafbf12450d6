"""Checkpoint files: atomic save, small metadata sidecars, listing, loading.

A checkpoint is a `torch.save`d dict, always read back with
`torch.load(weights_only=True)`. Two formats load:

* ours (`"format": "tactics-tui/1"`): `model`, `model_config`, `global_step`,
  `epoch`, `best_val_loss`, `val_loss`, `tokenizer_path`, `tokenizer_sha256`,
  `tokenizer_vocab_size`, `tokenizer_kind`, `config` (the full preset),
  and, for resumable checkpoints, `optimizer` and `train_state` (RNG states,
  data position, patience counter: owned by the trainer).
* the original scripts': `model`, `optimizer` (periodic ones), `model_config`,
  `epoch`, `global_step`, `best_val_loss`, `tokenizer_path`; their state dict
  carries `blocks.{i}.attn.mask` buffers, dropped on load.

Next to each `NAME.pt` we write `NAME.meta.json` (step, losses, time, size,
tokenizer) so `tactics checkpoints` and the TUI list a folder without loading
tensors. A sidecar that is missing or stale (size differs) is rebuilt by
loading the checkpoint once.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .atomic import atomic_path, atomic_write_text
from .errors import TacticsError

FORMAT = "tactics-tui/1"
META_SUFFIX = ".meta.json"
STEP_RE = re.compile(r"checkpoint_step_(\d+)\.pt$")


def meta_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.stem + META_SUFFIX)


def _meta_from_payload(path: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """The small facts about a checkpoint that listings need."""
    cfg = payload.get("model_config") or {}
    return {
        "format": payload.get("format", "original"),
        "step": int(payload.get("global_step") or 0),
        "epoch": payload.get("epoch"),
        "val_loss": payload.get("val_loss", payload.get("best_val_loss")),
        "best_val_loss": payload.get("best_val_loss"),
        "is_best": bool(payload.get("is_best", path.name == "best_model.pt")),
        "has_optimizer": "optimizer" in payload,
        "resumable": "train_state" in payload,
        "tokenizer_sha256": payload.get("tokenizer_sha256"),
        "tokenizer_vocab_size": payload.get("tokenizer_vocab_size", cfg.get("vocab_size")),
        "model_config": cfg,
        "created": payload.get("created", path.stat().st_mtime if path.exists() else time.time()),
        "size": path.stat().st_size if path.exists() else None,
    }


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write `payload` atomically to `path` (and its metadata sidecar).

    Serialises to memory first so the temp file is written in one go; a kill
    at any instant leaves the old file or the new one.
    """
    import torch

    path = Path(path)
    payload = dict(payload)
    payload.setdefault("format", FORMAT)
    payload.setdefault("created", time.time())
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(buffer.getbuffer())
    meta = _meta_from_payload(path, payload)
    atomic_write_text(meta_path(path), json.dumps(meta, indent=1, default=float))
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict safely (`weights_only=True`), with one-line errors."""
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.exists():
        raise TacticsError(f"checkpoint not found: {path} (list them with `tactics checkpoints`)")
    if path.is_dir():
        raise TacticsError(f"{path} is a folder, not a checkpoint file (.pt)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Weights only load failed" in str(exc):
            raise TacticsError(
                f"{path}: refusing to load, it holds Python objects beyond tensors and plain "
                f"data (weights_only=True); re-save it from a trusted source"
            ) from exc
        raise TacticsError(
            f"{path} is damaged or not a checkpoint (truncated copy or interrupted write?): "
            f"{first[:160]}; use another checkpoint from the same folder"
        ) from exc
    if not isinstance(payload, dict) or "model" not in payload:
        raise TacticsError(f"{path} is not a tactics checkpoint (no 'model' weights inside)")
    return payload


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Metadata of a checkpoint from its sidecar; rebuilt (one load) when missing or stale."""
    path = Path(path)
    sidecar = meta_path(path)
    size = path.stat().st_size
    if sidecar.exists():
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            if meta.get("size") == size:
                return meta
        except (OSError, ValueError):
            pass
    payload = load_checkpoint(path)
    meta = _meta_from_payload(path, payload)
    try:
        atomic_write_text(sidecar, json.dumps(meta, indent=1, default=float))
    except OSError:
        pass  # read-only folder: listing still works, just slower next time
    return meta


@dataclass
class CheckpointInfo:
    path: str
    name: str
    step: int
    val_loss: float | None
    best: bool
    size: int
    created: float
    resumable: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_checkpoints(checkpoint_dir: str | os.PathLike) -> list[CheckpointInfo]:
    """Every `*.pt` in the folder, oldest first (newest last).

    A damaged file is listed with `error` set rather than hiding the others.
    """
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return []
    infos: list[CheckpointInfo] = []
    for pt in sorted(folder.glob("*.pt")):
        if pt.name.startswith("."):
            continue
        try:
            meta = read_meta(pt)
            infos.append(
                CheckpointInfo(
                    path=str(pt),
                    name=pt.name,
                    step=int(meta.get("step") or 0),
                    val_loss=meta.get("val_loss"),
                    best=pt.name == "best_model.pt" or bool(meta.get("is_best")),
                    size=pt.stat().st_size,
                    created=float(meta.get("created") or pt.stat().st_mtime),
                    resumable=bool(meta.get("resumable")),
                )
            )
        except TacticsError as exc:
            st = pt.stat()
            infos.append(
                CheckpointInfo(str(pt), pt.name, -1, None, False, st.st_size, st.st_mtime, False, str(exc))
            )
    infos.sort(key=lambda i: (i.created, i.step))
    return infos


def latest_checkpoint(checkpoint_dir: str | os.PathLike) -> Path | None:
    """The newest loadable checkpoint (highest step, then newest), best_model included."""
    good = [i for i in list_checkpoints(checkpoint_dir) if i.error is None]
    if not good:
        return None
    good.sort(key=lambda i: (i.resumable, i.step, i.created))
    return Path(good[-1].path)


def find_tokenizer(checkpoint_path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """The tokenizer.json a checkpoint was trained with.

    Looks next to the checkpoint first, then at the checkpoint's recorded
    `tokenizer_path` (a file, or a folder holding tokenizer.json, relative to
    where training ran, usually `checkpoints`). The candidate must match the
    recorded sha256 (ours) or the model's vocab size (original checkpoints).
    """
    from .tokenizer import file_sha256, load_tokenizer

    checkpoint_path = Path(checkpoint_path)
    candidates = [checkpoint_path.parent / "tokenizer.json"]
    recorded = payload.get("tokenizer_path")
    if recorded:
        rec = Path(recorded)
        rec = rec if rec.suffix == ".json" else rec / "tokenizer.json"
        candidates += [rec, checkpoint_path.parent / rec, checkpoint_path.parent.parent / rec]
    want_hash = payload.get("tokenizer_sha256")
    want_vocab = (payload.get("model_config") or {}).get("vocab_size")
    tried: list[str] = []
    for cand in candidates:
        if not cand.is_file() or str(cand) in tried:
            continue
        tried.append(str(cand))
        if want_hash:
            if file_sha256(cand) == want_hash:
                return cand
        elif want_vocab is None or load_tokenizer(cand).vocab_size == want_vocab:
            return cand
    if not tried:
        raise TacticsError(
            f"no tokenizer.json found for {checkpoint_path} (looked next to it"
            + (f" and at {recorded}" if recorded else "")
            + "); copy the tokenizer it was trained with next to it"
        )
    what = f"sha256 {want_hash[:12]}…" if want_hash else f"vocab size {want_vocab}"
    raise TacticsError(
        f"no tokenizer fits {checkpoint_path}: it was trained with {what}, but "
        f"{', '.join(tried)} differ(s) (was the tokenizer retrained?); use the tokenizer from that run"
    )


@dataclass
class LoadedModel:
    """A model ready for inference, with where it came from."""

    model: Any  # tactics_core.model.GPT, in eval mode
    config: Any  # tactics_core.model.GPTConfig
    payload: dict[str, Any]
    path: Path
    tokenizer_path: Path
    original_format: bool


def load_model(path: str | os.PathLike, device: str = "cpu") -> LoadedModel:
    """Load a checkpoint (ours or the original scripts') into an eval-mode GPT."""
    from .model import GPT, GPTConfig, load_compatible_state_dict

    path = Path(path)
    payload = load_checkpoint(path)
    if "model_config" not in payload:
        raise TacticsError(f"{path} has no model_config; cannot rebuild the model")
    config = GPTConfig.from_dict(payload["model_config"])
    model = GPT(config)
    load_compatible_state_dict(model, payload["model"], source=str(path))
    model.to(device).eval()
    tokenizer_path = find_tokenizer(path, payload)
    return LoadedModel(model, config, payload, path, tokenizer_path, payload.get("format") != FORMAT)
