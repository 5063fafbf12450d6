"""Checkpoint files: atomic save, small metadata sidecars, listing, loading.

A checkpoint is a `torch.save`d dict, always read back with
`torch.load(weights_only=True)`. Two formats load:

* ours (`"format": "tactics-tui/1"`): `model`, `model_config`, `global_step`,
  `epoch`, `best_val_loss` (`BEST_SCORE_KEY`: the best `select_by` figure),
  `select_by`, `val_loss`, `tokenizer_path`, `tokenizer_sha256`,
  `tokenizer_vocab_size`, `tokenizer_kind`, `config` (the full preset),
  and, for resumable checkpoints, `optimizer` and `train_state` (RNG states,
  data position, patience counter: owned by the trainer).
* the original scripts': `model`, `optimizer` (periodic ones), `model_config`,
  `epoch`, `global_step`, `best_val_loss`, `tokenizer_path`; their state dict
  carries `blocks.{i}.attn.mask` buffers, dropped on load.

Next to each `NAME.pt` we write `NAME.meta.json` (step, losses, time, size,
tokenizer) so `tactics checkpoints` and the TUI list a folder without loading
tensors. A sidecar that is missing or stale (it records the size,
mtime and inode of the file it describes) is rebuilt by loading the
checkpoint once.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tactics_core.common.atomic import atomic_path, atomic_write_text
from tactics_core.common.errors import TacticsError
from tactics_core.common.workspace import BEST_MODEL_FILE, TOKENIZER_FILE
from tactics_core.gpt.layouts import FILE

FORMAT = "tactics-tui/1"
META_SUFFIX = ".meta.json"
# The payload key of the best `select_by` figure so far (the best score; which figure it is,
# `select_by`, is stored beside it). The name is the original scripts' key, whose value was
# their best validation loss: their loaders read our best_model.pt (and we read theirs), so
# checkpoints keep it. Sidecars, events and code say `best_score`.
BEST_SCORE_KEY = "best_val_loss"
STEP_RE = re.compile(r"checkpoint_step_(\d+)\.pt$")
# Temp files left by a writer killed mid-save: `.NAME.pt.XXXX.tmp` (see common/atomic.py).
TEMP_RE = re.compile(r"^\..+\.(pt|meta\.json)\..+\.tmp$")


def meta_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.stem + META_SUFFIX)


def checkpoint_step_path(checkpoint_dir: str | os.PathLike, step: int) -> Path:
    """`checkpoint_dir/checkpoint_step_N.pt`, the periodic checkpoint name."""
    return Path(checkpoint_dir) / f"checkpoint_step_{int(step)}.pt"


def finite_or_none(value: Any) -> float | None:
    """A JSON-safe float (None for missing, NaN or inf; original files start at inf)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def training_layout(payload: dict[str, Any]) -> str:
    """The name of the data layout a checkpoint's model was trained on (`layouts.LAYOUTS`).

    Recorded since the prover layout exists; anything older (this project's
    first checkpoints, the original scripts') was trained on whole files.
    """
    layout = payload.get("layout")
    if layout is None:
        training = (payload.get("config") or {}).get("training") or {}
        layout = training.get("layout", FILE.name)
    return str(layout)


def _file_identity(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def _meta_from_payload(path: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """The small facts about a checkpoint that listings need."""
    cfg = payload.get("model_config") or {}
    is_best = path.name == BEST_MODEL_FILE
    if "val_loss" in payload:
        val_loss = payload.get("val_loss")
    elif is_best:
        # The original scripts record only the best loss so far: for best_model.pt
        # that is its own loss; for a periodic one it is not, so it stays unknown.
        val_loss = payload.get(BEST_SCORE_KEY)
    else:
        val_loss = None
    meta = {
        "format": payload.get("format", "original"),
        "step": int(payload.get("global_step") or 0),
        "epoch": payload.get("epoch"),
        "val_loss": finite_or_none(val_loss),
        "best_score": finite_or_none(payload.get(BEST_SCORE_KEY)),
        "val_bpb": finite_or_none(payload.get("val_bpb")),
        "val_proof_loss": finite_or_none(payload.get("val_proof_loss")),
        "val_proof_bpb": finite_or_none(payload.get("val_proof_bpb")),
        "select_by": payload.get("select_by", "val_loss"),
        "layout": training_layout(payload),
        "is_best": is_best,
        "has_optimizer": "optimizer" in payload,
        "resumable": "train_state" in payload,
        "tokenizer_sha256": payload.get("tokenizer_sha256"),
        "tokenizer_vocab_size": payload.get("tokenizer_vocab_size", cfg.get("vocab_size")),
        "model_config": {k: v for k, v in cfg.items() if isinstance(v, (int, float, str, bool))},
        "created": finite_or_none(payload.get("created")) or (path.stat().st_mtime if path.exists() else time.time()),
    }
    if payload.get("kind", "gpt") != "gpt":  # a scorer's: its kind and the figures of its last evaluation
        meta["kind"] = payload["kind"]
        meta["figures"] = {k: finite_or_none(v) for k, v in (payload.get("figures") or {}).items()}
    if path.exists():
        meta.update(_file_identity(path))
    return meta


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    atomic_write_text(meta_path(path), json.dumps(meta, indent=1, default=finite_or_none))


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write `payload` atomically to `path`, then its metadata sidecar.

    `torch.save` goes to a temp file in the same folder, which is fsynced and
    renamed over `path`: a kill at any instant leaves the old file or the new
    one. The sidecar is written after the rename and records the file's
    size/mtime/inode, so a kill between the two leaves a sidecar that
    `read_meta` sees as stale and rebuilds.
    """
    import torch

    path = Path(path)
    payload = dict(payload)
    payload.setdefault("format", FORMAT)
    payload.setdefault("created", time.time())
    try:
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
    except (OSError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and not _is_write_failure(exc):
            raise
        raise TacticsError(write_failure_message(path, exc)) from exc
    try:
        _write_meta(path, _meta_from_payload(path, payload))
    except OSError:
        pass  # the checkpoint itself is safe; the sidecar is rebuilt when read
    return path


# A full disk makes torch.save raise "RuntimeError: [enforce fail at inline_container.cc:...]
# PytorchStreamWriter failed writing file data/0: file write failed", with no errno.
LOW_SPACE_BYTES = 64 * 1024 * 1024


def _is_write_failure(exc: BaseException) -> bool:
    text = str(exc)
    return any(s in text for s in ("file write failed", "PytorchStreamWriter", "inline_container", "No space left"))


def _free_bytes(folder: Path) -> int | None:
    import shutil

    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def write_failure_message(path: Path, exc: BaseException) -> str:
    """One line for a checkpoint that could not be written: why, the free space, what to do."""
    import errno

    free = _free_bytes(path.parent)
    where = f"{free / 1e6:,.0f} MB free in {path.parent}" if free is not None else f"free space in {path.parent} unknown"
    full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (free is not None and free < LOW_SPACE_BYTES)
    if full:
        return (
            f"cannot write checkpoint {path}: the disk is full ({where}); free some space, or train into "
            "another folder (--checkpoint-dir DIR); nothing half-written was left"
        )
    reason = getattr(exc, "strerror", None) or str(exc).splitlines()[-1].strip()[:160]
    return f"cannot write checkpoint {path}: {reason} ({where}); check free disk space and permissions"


def _safe_globals() -> list[Any]:
    """Harmless non-tensor types older checkpoints may hold (numpy scalars, paths)."""
    import pathlib

    allowed: list[Any] = [pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath, pathlib.PureWindowsPath]
    try:
        import numpy as np

        try:
            from numpy._core.multiarray import scalar
        except ImportError:  # numpy < 2
            from numpy.core.multiarray import scalar  # type: ignore[no-redef]
        allowed += [scalar, np.dtype]
        allowed += [type(np.dtype(name)) for name in ("float64", "float32", "float16", "int64", "int32", "bool")]
    except ImportError:  # pragma: no cover - numpy ships with torch
        pass
    return allowed


def _plainify(value: Any) -> Any:
    """numpy scalars -> Python numbers, paths -> str (top level and one dict deep)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        return value.item()
    return value


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict safely (`weights_only=True`), with one-line errors."""
    import torch

    path = Path(path)
    if not path.exists():
        raise TacticsError(f"checkpoint not found: {path} (list them with `tactics checkpoints`)")
    if path.is_dir():
        raise TacticsError(f"{path} is a folder, not a checkpoint file (.pt)")
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError as exc:
        raise TacticsError(f"cannot read checkpoint {path}: {exc.strerror or exc}; check its permissions") from exc
    except Exception as exc:  # torch raises many types for a damaged file
        text = str(exc).strip()
        forbidden = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if forbidden:
            raise TacticsError(
                f"{path}: refusing to load, it holds a Python object ({forbidden.group(1)}) beyond "
                f"tensors and plain data (weights_only=True); re-save it from a trusted source"
            ) from exc
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", text)
        if detail:
            first = detail.group(1).strip()
        else:
            first = " ".join(text.splitlines()[0].split()) if text else type(exc).__name__
            first = first.split(". ")[0]  # torch appends paragraphs of advice
        if path.stat().st_size == 0:
            first = "the file is empty"
        raise TacticsError(
            f"{path} is damaged or not a checkpoint (truncated copy or interrupted write?): "
            f"{first[:160]}; use another checkpoint from the same folder"
        ) from exc
    if not isinstance(payload, dict) or "model" not in payload:
        raise TacticsError(f"{path} is not a tactics checkpoint (no 'model' weights inside)")
    return {key: (value if key in ("model", "optimizer") else _plainify(value)) for key, value in payload.items()}


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Metadata of a checkpoint from its sidecar; rebuilt (one load) when missing or stale."""
    path = Path(path)
    try:
        identity = _file_identity(path)
    except FileNotFoundError:
        raise TacticsError(f"checkpoint not found: {path} (list them with `tactics checkpoints`)") from None
    sidecar = meta_path(path)
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        if isinstance(meta, dict) and all(meta.get(k) == v for k, v in identity.items()):
            if "best_score" not in meta:  # a sidecar written before the key was named for what it holds
                meta["best_score"] = meta.pop("best_val_loss", None)
            return meta
    except (OSError, ValueError):
        pass
    payload = load_checkpoint(path)
    meta = _meta_from_payload(path, payload)
    try:
        _write_meta(path, meta)
    except OSError:
        pass  # read-only folder: listing still works, just slower next time
    return meta


@dataclass
class CheckpointInfo:
    """One row of `tactics checkpoints` (from the sidecar, never the tensors)."""

    path: str
    name: str
    step: int
    val_loss: float | None
    best: bool
    size: int
    created: float
    resumable: bool
    error: str | None = None
    best_score: float | None = None  # the best `select_by` figure of the run when it was saved
    epoch: Any = None
    format: str = ""
    select_by: str = "val_loss"  # which figure `best_score` is
    kind: str = "gpt"  # the model kind (a scorer's checkpoint says "scorer")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_checkpoints(checkpoint_dir: str | os.PathLike) -> list[CheckpointInfo]:
    """Every `*.pt` in the folder, oldest first (newest last).

    A damaged file is listed with `error` set rather than hiding the others;
    a file removed while listing (retention by a live run) is skipped.
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
                    val_loss=finite_or_none(meta.get("val_loss")),
                    best=pt.name == BEST_MODEL_FILE,
                    size=int(meta.get("size") or pt.stat().st_size),
                    created=float(meta.get("created") or pt.stat().st_mtime),
                    resumable=bool(meta.get("resumable")),
                    best_score=finite_or_none(meta.get("best_score")),
                    epoch=meta.get("epoch"),
                    format=str(meta.get("format") or ""),
                    select_by=str(meta.get("select_by") or "val_loss"),
                    kind=str(meta.get("kind") or "gpt"),
                )
            )
        except TacticsError as exc:
            try:
                st = pt.stat()
            except FileNotFoundError:
                continue
            infos.append(
                CheckpointInfo(str(pt), pt.name, -1, None, False, st.st_size, st.st_mtime, False, str(exc))
            )
        except FileNotFoundError:
            continue
    infos.sort(key=lambda i: (i.created, i.step))
    return infos


def latest_checkpoint(checkpoint_dir: str | os.PathLike) -> Path | None:
    """The checkpoint to resume from: resumable first, then highest step, then newest."""
    good = [i for i in list_checkpoints(checkpoint_dir) if i.error is None]
    if not good:
        return None
    good.sort(key=lambda i: (i.resumable, i.step, i.created))
    return Path(good[-1].path)


def remove_checkpoint(path: str | os.PathLike) -> None:
    """Delete a checkpoint and its sidecar (missing files are fine)."""
    path = Path(path)
    for p in (path, meta_path(path)):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def remove_stale_temp_files(checkpoint_dir: str | os.PathLike, older_than_s: float = 60.0) -> list[Path]:
    """Remove temp files of writes killed mid-save (older than `older_than_s`)."""
    removed: list[Path] = []
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return removed
    now = time.time()
    for p in folder.iterdir():
        if TEMP_RE.match(p.name):
            try:
                if now - p.stat().st_mtime >= older_than_s:
                    p.unlink()
                    removed.append(p)
            except FileNotFoundError:
                pass
    return removed


def prune_checkpoints(checkpoint_dir: str | os.PathLike, keep_last: int) -> list[Path]:
    """Retention: keep the last `keep_last` periodic `checkpoint_step_N.pt` (by N)
    and `best_model.pt`; delete older periodic ones with their sidecars.

    `keep_last <= 0` keeps every checkpoint. Other `.pt` files are never
    touched. Also clears temp files of writes killed long ago. Returns the
    removed checkpoints.
    """
    folder = Path(checkpoint_dir)
    remove_stale_temp_files(folder)
    if keep_last <= 0 or not folder.is_dir():
        return []
    periodic = []
    for p in folder.iterdir():
        match = STEP_RE.fullmatch(p.name)
        if match:
            periodic.append((int(match.group(1)), p))
    periodic.sort()
    doomed = [p for _, p in periodic[:-keep_last]]
    for p in doomed:
        remove_checkpoint(p)
    # Sidecars whose checkpoint is gone (a listing may rebuild one while we delete).
    for sidecar in folder.glob(f"checkpoint_step_*{META_SUFFIX}"):
        if not sidecar.with_name(sidecar.name[: -len(META_SUFFIX)] + ".pt").exists():
            sidecar.unlink(missing_ok=True)
    return doomed


def tokenizer_facts(payload: dict[str, Any]) -> tuple[int | None, str | None]:
    """(vocab size, sha256) of the tokenizer a checkpoint was trained with, as recorded."""
    cfg = payload.get("model_config") or {}
    vocab = payload.get("tokenizer_vocab_size") or cfg.get("vocab_size")
    if vocab is None:
        weights = payload.get("model") or {}
        emb = weights.get("token_embedding.weight")
        if emb is not None:
            vocab = int(emb.shape[0])
    return (int(vocab) if vocab is not None else None), payload.get("tokenizer_sha256")


def check_tokenizer_matches(payload: dict[str, Any], tokenizer: Any, checkpoint_path: str | os.PathLike) -> None:
    """Refuse a checkpoint trained with another tokenizer than `tokenizer`.

    Compares the recorded sha256 when the checkpoint has one (ours), else the
    vocabulary size (the original scripts recorded none). The message shows both.
    """
    want_vocab, want_sha = tokenizer_facts(payload)
    have_vocab = getattr(tokenizer, "vocab_size", None)
    have_sha = getattr(tokenizer, "sha256", None)
    have_path = getattr(tokenizer, "path", "the tokenizer in use")
    same_vocab = want_vocab is None or have_vocab is None or int(want_vocab) == int(have_vocab)
    same_sha = not want_sha or not have_sha or want_sha == have_sha
    if same_vocab and same_sha:
        return

    def describe(vocab: int | None, sha: str | None) -> str:
        parts = [f"vocab {vocab if vocab is not None else '?'}"]
        if sha:
            parts.append(f"sha256 {sha[:12]}")
        return ", ".join(parts)

    raise TacticsError(
        f"{checkpoint_path} was trained with another tokenizer ({describe(want_vocab, want_sha)}) "
        f"than {have_path} ({describe(have_vocab, have_sha)}); use the tokenizer of that run, "
        f"or train from scratch into another --checkpoint-dir"
    )


def find_tokenizer(checkpoint_path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """The tokenizer.json a checkpoint was trained with.

    Looks next to the checkpoint first, then at the checkpoint's recorded
    `tokenizer_path` (a file, or a folder holding tokenizer.json, relative to
    where training ran, usually `checkpoints`). The candidate must match the
    recorded sha256 (ours) or the model's vocab size (original checkpoints).
    """
    from tactics_core.gpt.tokenizer import file_sha256, load_tokenizer

    checkpoint_path = Path(checkpoint_path)
    candidates = [checkpoint_path.parent / TOKENIZER_FILE]
    recorded = payload.get("tokenizer_path")
    if recorded:
        rec = Path(str(recorded))
        rec = rec if rec.suffix == ".json" else rec / TOKENIZER_FILE
        candidates += [rec, checkpoint_path.parent / rec, checkpoint_path.parent.parent / rec]
    want_vocab, want_hash = tokenizer_facts(payload)
    tried: list[str] = []
    for cand in candidates:
        if not cand.is_file() or str(cand) in tried:
            continue
        tried.append(str(cand))
        if want_hash:
            if file_sha256(cand) == want_hash:
                return cand
        else:
            try:
                if want_vocab is None or load_tokenizer(cand).vocab_size == want_vocab:
                    return cand
            except TacticsError:
                continue  # a broken candidate: try the next one
    if not tried:
        raise TacticsError(
            f"no tokenizer.json found for {checkpoint_path} (looked next to it"
            + (f" and at {recorded}" if recorded else "")
            + "); copy the tokenizer it was trained with next to it"
        )
    what = f"sha256 {want_hash[:12]}" if want_hash else f"vocab size {want_vocab}"
    raise TacticsError(
        f"no tokenizer fits {checkpoint_path}: it was trained with {what}, but "
        f"{', '.join(tried)} differ(s) (was the tokenizer retrained?); use the tokenizer from that run"
    )


def model_config_from_payload(payload: dict[str, Any], source: str | os.PathLike = "checkpoint"):
    """The GPTConfig of a checkpoint; shape fields missing from an old config are read off the weights."""
    from tactics_core.gpt.model import GPTConfig, clean_state_dict

    if "model_config" not in payload or not isinstance(payload["model_config"], dict):
        raise TacticsError(f"{source} has no model_config; cannot rebuild the model")
    data = dict(payload["model_config"])
    for alias, key in GPTConfig._ALIASES.items():
        if alias in data and key not in data:
            data[key] = data.pop(alias)
    weights = clean_state_dict(payload.get("model") or {})
    emb = weights.get("token_embedding.weight")
    pos = weights.get("position_embedding.weight")
    if emb is not None:
        data.setdefault("vocab_size", int(emb.shape[0]))
        data.setdefault("d_model", int(emb.shape[1]))
    if pos is not None:
        data.setdefault("context_length", int(pos.shape[0]))
    layers = {int(m.group(1)) for k in weights if (m := re.match(r"blocks\.(\d+)\.", k))}
    if layers:
        data.setdefault("n_layers", max(layers) + 1)
    try:
        return GPTConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise TacticsError(f"{source}: unusable model_config ({exc})") from exc
    except TacticsError as exc:
        raise TacticsError(f"{source}: {exc}") from exc


@dataclass
class LoadedModel:
    """A model ready for inference, with where it came from."""

    model: Any  # tactics_core.gpt.model.GPT, in eval mode
    config: Any  # tactics_core.gpt.model.GPTConfig
    payload: dict[str, Any]
    path: Path
    tokenizer_path: Path
    original_format: bool


def load_model(path: str | os.PathLike, device: str = "cpu") -> LoadedModel:
    """Load a checkpoint (ours or the original scripts') into an eval-mode GPT."""
    from tactics_core.gpt.model import GPT, load_compatible_state_dict

    path = Path(path)
    payload = load_checkpoint(path)
    config = model_config_from_payload(payload, path)
    model = GPT(config)
    load_compatible_state_dict(model, payload["model"], source=str(path))
    model.to(device).eval()
    tokenizer_path = find_tokenizer(path, payload)
    return LoadedModel(model, config, payload, path, tokenizer_path, payload.get("format") != FORMAT)


def checkpoint_kind(path: str | os.PathLike) -> str:
    """The model kind of a checkpoint ("gpt" or "scorer"), from its sidecar when there is one."""
    return str(read_meta(path).get("kind") or "gpt")  # read_meta rebuilds a missing sidecar
