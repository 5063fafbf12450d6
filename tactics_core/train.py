"""The training loop: schedule, evaluation, early stopping, NaN stop, checkpoints, exact resume.

Choices, and why:

* AdamW with weight decay on matrices and embeddings (every parameter with
  2+ dimensions, as nanoGPT) and none on the RMSNorm gains (decaying a gain
  towards 0 only fights the normalisation).
* Learning rate: linear warmup to `learning_rate`, then cosine decay to
  `min_lr` over the TRUE number of optimizer steps (`max_steps`, or epochs x
  micro-batches per epoch / grad_accum_steps), so short runs still anneal.
* Gradient accumulation sums token NLL over all micro-batches of a step and
  divides by the step's total scored tokens: the same loss as one big batch,
  whatever the padding of each micro-batch.
* Exact resume: a periodic or final checkpoint holds the model, optimizer,
  step, RNG states (torch CPU/CUDA, python, numpy), the data position
  (epoch, micro-batch) and the early-stopping counters. The data order is a
  pure function of (seed, epoch), so on CPU N straight steps and N/2 +
  resume + N/2 give bitwise the same loss at every step.
* A run ends for one of four reasons: finished, early_stop, stopped (stop
  request, SIGINT/SIGTERM/SIGHUP, cancel) or failed. Every end except a
  non-finite loss writes a final checkpoint first; after a NaN/inf the
  weights are suspect, so the last good checkpoint is kept as the one to use.
* CPU threads: torch's OpenMP workers spin-wait by default, which makes
  training 30-40x slower when another busy process (the TUI) shares 2 cores.
  A detached run gets OMP_WAIT_POLICY=PASSIVE before torch is imported, and
  `training.num_threads` (0 = all cores) sets torch's thread count.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .device import resolve_device
from .errors import TacticsError
from .progress import CancelToken, ProgressFn, report
from .workspace import BEST_MODEL_FILE, TOKENIZER_FILE

END_REASONS = ("finished", "early_stop", "stopped", "failed")
CACHE_SUBDIR = "cache"


@dataclass
class TrainResult:
    """How a run ended."""

    reason: str  # finished | early_stop | stopped | failed
    message: str
    step: int
    total_steps: int
    best_val_loss: float | None
    last_checkpoint: str | None


def configure_threads(num_threads: int = 0) -> int:
    """Set torch's CPU thread count (0 = every core) and return it.

    OMP_WAIT_POLICY must be set before torch is first imported to matter; the
    CLI and start_detached set it to PASSIVE.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    n = int(num_threads) if num_threads and num_threads > 0 else (os.cpu_count() or 1)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def lr_at(step: int, total_steps: int, warmup_steps: int, lr: float, min_lr: float) -> float:
    """Learning rate for the optimizer step with 0-based index `step`."""
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    frac = min(1.0, max(0.0, (step - warmup_steps) / span))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * frac)) * (lr - min_lr)


def disable_attention_dropout(model: Any) -> None:
    """Keep `model.dropout` on embeddings and residual branches, not on attention weights.

    Dropout on attention probabilities makes PyTorch's CPU attention fall back
    from the fused kernel to the unfused math path (bmm + softmax + a Bernoulli
    mask of batch x heads x ctx x ctx): about 1.2-1.4x slower steps at the
    default preset for a regularizer that residual dropout already provides.
    """
    for module in model.modules():
        if hasattr(module, "qkv") and hasattr(module, "dropout") and isinstance(module.dropout, float):
            module.dropout = 0.0


def make_optimizer(model: Any, training: Any, device: str):
    """AdamW (or Muon for the block matrices, `training.optimizer = "muon"`); decay on
    tensors with 2+ dims (matrices, embeddings), none on norm gains."""
    import torch

    if training.optimizer == "muon":
        from .muon import MuonAdamW, muon_groups

        return MuonAdamW(muon_groups(model, training))

    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": float(training.weight_decay)},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    kwargs: dict[str, Any] = {"lr": float(training.learning_rate), "betas": tuple(training.betas)}
    if device.startswith("cuda"):
        kwargs["fused"] = True
    return torch.optim.AdamW(groups, **kwargs)


# ----------------------------------------------------------------------------
# RNG state as plain tensors / lists (checkpoints load with weights_only=True)


def capture_rng() -> dict[str, Any]:
    import numpy as np
    import torch

    version, state, gauss = random.getstate()
    np_state = np.random.get_state()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": {"version": int(version), "state": torch.tensor(state, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "key": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_rng(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(state["torch"].cpu())
    py = state["python"]
    random.setstate((int(py["version"]), tuple(int(x) for x in py["state"].tolist()), py["gauss"]))
    npst = state["numpy"]
    np.random.set_state(
        ("MT19937", npst["key"].numpy().astype(np.uint32), int(npst["pos"]), int(npst["has_gauss"]), float(npst["cached_gaussian"]))
    )
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------
# Evaluation


def evaluate_split(
    model: Any, split: Any, batch_size: int, max_batches: int, device: str,
    stop: Callable[[], bool] | None = None, dist: Any = None,
) -> dict[str, float]:
    """Validation loss (nats/token) and bits per byte over a split: over every scored token
    (`val_loss`, `val_bpb`) and over the proof tokens alone (`proof_loss`, `proof_bpb`:
    in the prover layout exactly the proof lines, each ended by its newline token, as
    the prover asks for them).

    bpb = sum of token NLL / ln 2 / UTF-8 bytes of exactly the tokens scored.

    `dist` (a distributed.Dist of several ranks): each rank scores every world-th row of
    each batch, the stop check is shared, and the sums are all-reduced, so every row counts
    once and every rank returns the same figures.
    """
    import torch

    from .data import masked_nll_split

    was_training = model.training
    model.eval()
    nll = proof_nll = 0.0
    tokens = nbytes = proof_tokens = proof_bytes = 0
    complete = True
    try:
        with torch.no_grad():
            for batch in _eval_batches(split, batch_size, max_batches, dist):
                if stop is not None and (dist.any(stop()) if dist is not None and dist.enabled else stop()):
                    complete = False
                    break
                if batch is None:  # this rank's share of a short last batch is empty
                    continue
                x, y = batch.to_torch(device)
                with _autocast(device):
                    logits, _ = model(x)
                total, proof = masked_nll_split(logits, y, torch.from_numpy(batch.proof).to(device))
                nll += float(total)
                proof_nll += float(proof)
                tokens += batch.n_tokens
                nbytes += batch.n_bytes
                proof_tokens += batch.n_proof_tokens
                proof_bytes += batch.n_proof_bytes
    finally:
        model.train(was_training)
    if dist is not None and dist.enabled:
        nll, proof_nll, tokens, nbytes, proof_tokens, proof_bytes = dist.all_reduce_sum(
            [nll, proof_nll, tokens, nbytes, proof_tokens, proof_bytes]
        )
        tokens, nbytes, proof_tokens, proof_bytes = (int(round(v)) for v in (tokens, nbytes, proof_tokens, proof_bytes))
    nan = float("nan")
    return {
        "complete": complete,
        "val_loss": nll / tokens if tokens else nan,
        "val_bpb": nll / math.log(2) / nbytes if nbytes else nan,
        "proof_loss": proof_nll / proof_tokens if proof_tokens else nan,
        "proof_bpb": proof_nll / math.log(2) / proof_bytes if proof_bytes else nan,
        "tokens": tokens,
        "bytes": nbytes,
        "proof_tokens": proof_tokens,
        "proof_bytes": proof_bytes,
    }


def _eval_batches(split: Any, batch_size: int, max_batches: int, dist: Any):
    """The validation batches of this rank (all of them for one process; None = an empty share)."""
    if dist is None or not dist.enabled:
        yield from split.iter_fixed(batch_size, max_batches)
        return
    for ids in split.fixed_rows(batch_size, max_batches):
        mine = ids[dist.rank :: dist.world]
        yield split.batch(mine) if len(mine) else None


def _autocast(device: str):
    """bf16 autocast on CUDA (tensor cores); plain fp32 elsewhere (no fast bf16 on most CPUs)."""
    import contextlib

    import torch

    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ----------------------------------------------------------------------------
# Loading what a run needs


def preset_for_checkpoint(payload: dict[str, Any], presets_dir: str | os.PathLike = "presets"):
    """The preset a checkpoint was trained with (ours), or the default preset shaped like its model (original)."""
    from .presets import apply_overrides, load_preset, preset_from_dict

    from .checkpoints import training_layout

    config = payload.get("config")
    if isinstance(config, dict) and "model" in config:
        # Runs from before the prover layout trained on whole files and selected by val_loss.
        training = {"select_by": "val_loss", **(config.get("training") or {}), "layout": training_layout(payload)}
        return preset_from_dict({**config, "training": training}, name=str(payload.get("preset") or "checkpoint"))
    preset = load_preset("default", presets_dir)
    cfg = payload.get("model_config") or {}
    from .model import GPTConfig

    shape = GPTConfig.from_dict(cfg)
    return apply_overrides(
        preset,
        [
            f"model.d_model={shape.d_model}",
            f"model.n_layers={shape.n_layers}",
            f"model.n_heads={shape.n_heads}",
            f"model.context_length={shape.context_length}",
            f"model.dropout={shape.dropout}",
            "training.layout=file",
            "training.select_by=val_loss",
        ],
    )


def _load_optimizer_state(optimizer: Any, state: dict[str, Any]) -> bool:
    try:
        optimizer.load_state_dict(state)
        return True
    except (ValueError, KeyError, RuntimeError):
        return False


def _oom_message(preset: Any, device: str) -> str:
    return (
        f"out of memory on {device} at batch_size {preset.training.batch_size}, context_length "
        f"{preset.model.context_length}: lower training.batch_size or model.context_length "
        "(or raise training.grad_accum_steps to keep the effective batch)"
    )


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, MemoryError):
        return True
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


# ----------------------------------------------------------------------------
# The run


def train(
    preset: Any,
    data_dir: str | os.PathLike,
    checkpoint_dir: str | os.PathLike,
    *,
    max_steps: int | None = None,
    device: str | None = None,
    resume: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    metrics_interval: float = 0.25,
    heartbeat_interval: float = 1.0,
    handle_signals: bool = True,
) -> TrainResult:
    """Train (or resume) into `checkpoint_dir`; returns how the run ended.

    `preset`: a presets.Preset (for resume, None = the checkpoint's own).
    `max_steps`: total optimizer steps to reach (overrides the preset).
    `resume`: a checkpoint path to continue from.
    `on_event`: called with every metrics event (the CLI prints them).
    `metrics_interval`: at most one step event per this many seconds
    (0 = every step). Raises TacticsError for problems found before the
    first step (tokenizer missing or different, bad data, device); problems
    during training end the run with reason "failed" instead.
    """
    from . import distributed, runs, runstore

    checkpoint_dir = Path(checkpoint_dir)
    # Under torchrun (WORLD_SIZE > 1) every rank runs this; only rank 0 touches the run folder.
    dist = distributed.init(device or (preset.training.device if preset is not None else "auto"))
    if not dist.is_main:
        progress = None  # one console: rank 0's
    error: BaseException | None = None
    try:
        if dist.is_main:
            runstore.prepare_run_folder(checkpoint_dir)  # a run folder gets the workspace's tokenizer
    except Exception as exc:
        error = exc
    dist.agree(error)  # the other ranks read the tokenizer rank 0 may just have copied
    if not (checkpoint_dir / TOKENIZER_FILE).is_file():
        from .tokenizer import load_tokenizer

        load_tokenizer(checkpoint_dir / TOKENIZER_FILE)  # raises: "... run `tactics tokenizer train` first"
    payload = None
    resume_path = Path(resume) if resume else None
    if resume_path is not None:
        from .checkpoints import load_checkpoint

        payload = load_checkpoint(resume_path)
        if preset is None:
            preset = preset_for_checkpoint(payload)
    if preset is None:
        raise TacticsError("no preset given and no checkpoint to take one from")
    from .presets import preset_to_dict

    config = preset_to_dict(preset)
    if dist.is_main:
        recorder: Any = runs.RunRecorder(checkpoint_dir, config=config, on_event=on_event, heartbeat_interval=heartbeat_interval)
    else:
        recorder = runs.RankRecorder()
    try:
        if dist.is_main:
            if resume_path is None:
                runstore.check_fresh(checkpoint_dir)  # never write a new run over another run's files
            runstore.mark_current(checkpoint_dir)
            recorder.update(preset=preset.name, world_size=dist.world)
            recorder.open()
    except Exception as exc:
        error = exc
    dist.agree(error)
    with recorder:
        restore_signals = runs.install_stop_signals(recorder) if handle_signals else (lambda: None)
        try:
            return _run(
                recorder, preset, config, Path(data_dir), checkpoint_dir, payload, resume_path,
                max_steps, device, progress, cancel, metrics_interval, dist,
            )
        except Exception as exc:  # before the first step: nothing to checkpoint yet
            if isinstance(exc, TacticsError):
                error = exc
            elif _is_oom(exc):
                error = TacticsError(_oom_message(preset, device or preset.training.device))
            else:
                error = None
            message = str(error) if error is not None else f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            recorder.event("end", reason="failed", message=message, step=0)
            recorder.set_state("failed", message)
            if error is not None and error is not exc:
                raise error from exc
            raise
        finally:
            restore_signals()


def _run(
    recorder: Any,
    preset: Any,
    config: dict[str, Any],
    data_dir: Path,
    checkpoint_dir: Path,
    payload: dict[str, Any] | None,
    resume_path: Path | None,
    max_steps: int | None,
    device_name: str | None,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
    metrics_interval: float,
    dist: Any = None,
) -> TrainResult:
    from . import distributed

    dist = dist if dist is not None else distributed.SINGLE
    run_start = time.monotonic()
    num_threads = int(preset.training.num_threads or 0)
    if num_threads <= 0 and dist.enabled:
        num_threads = distributed.default_threads(dist)  # cores / local ranks (torchrun would say 1)
    threads = configure_threads(num_threads)
    import torch

    from .checkpoints import check_tokenizer_matches, prune_checkpoints, save_checkpoint
    from .data import load_dataset, masked_nll_sum
    from .model import GPT
    from .tokenizer import load_tokenizer

    tr = preset.training
    device = distributed.rank_device(resolve_device(device_name or tr.device), dist)
    if dist.enabled and device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    tokenizer = load_tokenizer(checkpoint_dir / TOKENIZER_FILE)
    note = ""
    if payload is not None:
        check_tokenizer_matches(payload, tokenizer, resume_path)

    def stop_requested() -> bool:
        if cancel is not None and cancel.cancelled:
            recorder.request_stop("cancelled")
        return recorder.stop_event.is_set()

    recorder.update(state="starting", message="reading and tokenizing the corpus")
    from .runstore import publish_best, run_name, workspace_root


    def read_dataset():
        return load_dataset(
            data_dir, tokenizer, workspace_root(checkpoint_dir) / CACHE_SUBDIR, preset.model.context_length,
            val_fraction=tr.val_fraction, seed=tr.seed, progress=progress, cancel=cancel,
            layout=tr.layout, batch_size=tr.batch_size,
        )

    # Rank 0 builds the token cache; the others wait, then read it (no double tokenizing).
    dataset, error = None, None
    for turn in ("main", "others"):
        if (turn == "main") == dist.is_main:
            try:
                dataset = read_dataset()
            except Exception as exc:
                error = exc
        dist.agree(error)
    context_weight = float(tr.context_weight)
    select_by = tr.select_by
    train_split, val_split = dataset.train, dataset.val
    micro_per_epoch = train_split.n_batches(tr.batch_size)
    accum = max(1, int(tr.grad_accum_steps))
    steps_per_epoch = max(1, math.ceil(micro_per_epoch / accum))
    # The preset's batch is the global one: a step is `accum` micro-batches of `batch_size`
    # rows in the one-process order, dealt to the ranks (distributed.shares).
    share_mode, _ = distributed.shares(int(tr.batch_size), accum, dist.world)

    # ---- model, optimizer, position
    seed_everything(tr.seed)
    model_config = preset.model.gpt_config(tokenizer.vocab_size)
    model = GPT(model_config)
    disable_attention_dropout(model)
    if dist.rank > 0:  # the same initial weights everywhere, each rank its own dropout masks
        torch.manual_seed(tr.seed + 7919 * dist.rank)
    start_step = 0
    data_epoch, data_batch = 0, 0
    best_val = float("inf")
    bad_evals = 0
    tokens_seen = 0
    elapsed_before = 0.0
    if max_steps:
        total_steps = int(max_steps)
    elif tr.max_steps:
        total_steps = int(tr.max_steps)
    else:
        total_steps = max(1, math.ceil(tr.epochs * micro_per_epoch / accum))
    resumed_from = None
    if payload is not None:
        from .model import load_compatible_state_dict

        load_compatible_state_dict(model, payload["model"], source=str(resume_path))
        resumed_from = str(resume_path)
        start_step = int(payload.get("global_step") or 0)
        state = payload.get("train_state")
        if state is not None:
            if max_steps is None:
                total_steps = int(state.get("total_steps") or total_steps)
            data_epoch, data_batch = int(state["data_epoch"]), int(state["data_batch"])
            best_val = float(state.get("best_val_loss", float("inf")))
            if state.get("select_by", "val_loss") != select_by:  # the run changed what it selects by
                best_val = float("inf")
            bad_evals = 0 if best_val == float("inf") else int(state.get("bad_evals", 0))
            tokens_seen = int(state.get("tokens_seen", 0))
            elapsed_before = float(state.get("elapsed_s", 0.0))
            if int(state.get("train_rows", train_split.n_rows)) != train_split.n_rows:
                note = "the corpus changed since this checkpoint: data order restarts at a new epoch (approximate resume)"
                data_epoch, data_batch = data_epoch + 1, 0
        else:
            kind = "a model-only checkpoint" if payload.get("format") == "tactics-tui/1" else "original scripts' format"
            note = (
                f"{resume_path.name} has no RNG state or data position ({kind}): "
                "resuming approximately (fresh data order from its epoch, optimizer state if compatible)"
            )
            data_epoch = int(payload.get("epoch") or 0)
            best = payload.get("best_val_loss")
            best_val = float(best) if best is not None else float("inf")
            torch.manual_seed(tr.seed + start_step)
        if start_step >= total_steps:
            raise TacticsError(
                f"{resume_path} is already at step {start_step} of {total_steps}; "
                f"pass --max-steps N (N > {start_step}) to train further"
            )
    model.to(device)
    optimizer = make_optimizer(model, tr, device)
    if payload is not None and "optimizer" in payload:
        if not _load_optimizer_state(optimizer, payload["optimizer"]):
            note = (note + "; " if note else "") + "optimizer state did not fit: starting it fresh"
    if payload is not None and payload.get("train_state") is not None:
        state = payload["train_state"]
        saved_world = int(state.get("world_size") or 1)
        rng_ranks = state.get("rng_ranks")
        if saved_world == dist.world and (dist.world == 1 or rng_ranks):
            restore_rng(rng_ranks[dist.rank] if rng_ranks else state["rng"])  # exact
        else:
            if dist.rank == 0:
                restore_rng(state["rng"])
            else:
                seed_everything(tr.seed + 7919 * dist.rank + start_step)
            if saved_world != dist.world:
                extra = (
                    f"checkpoint of {saved_world} process(es) resumed on {dist.world}: the same global data "
                    "position and optimizer state, new per-rank random streams (close, not bitwise)"
                )
            else:
                extra = "the other ranks' random state was not saved (a rank was lost): resuming approximately"
            note = (note + "; " if note else "") + extra
    ddp = None
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        ids = [torch.device(device).index] if device.startswith("cuda") else None
        ddp = DistributedDataParallel(model, device_ids=ids)  # broadcasts rank 0's weights once (the GPT has no buffers)
    net = ddp if ddp is not None else model
    if dist.enabled:  # run.json lists every rank's pid, so a watcher (the TUI's system pane) sums them
        recorder.update(rank_pids=[int(p) for p in dist.gather_objects(os.getpid())])

    params = model.num_parameters()
    summary = dataset.summary()
    recorder.update(state="running", step=start_step, total_steps=total_steps, message=note)
    recorder.write_state()
    recorder.event(
        "start",
        step=start_step,
        total_steps=total_steps,
        resumed_from=resumed_from,
        params=params,
        config=config,
        preset=preset.name,
        device=device,
        threads=threads,
        world_size=dist.world,
        global_batch=int(tr.batch_size) * accum,
        backend=dist.backend or None,
        steps_per_epoch=steps_per_epoch,
        data=summary,
        tokenizer={"path": str(tokenizer.path), "sha256": tokenizer.sha256, "vocab_size": tokenizer.vocab_size, "kind": tokenizer.kind},
        note=note,
        pid=os.getpid(),
    )

    # ---- checkpoint helpers
    last_good: str | None = resumed_from
    last_val: float | None = None
    last_eval: dict[str, Any] = {}

    def base_payload() -> dict[str, Any]:
        return {
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "model_config": model_config.to_dict(),
            "global_step": step,
            "epoch": done_epoch + done_batch / max(1, micro_per_epoch),
            "best_val_loss": None if math.isinf(best_val) else best_val,
            "val_loss": last_eval.get("val_loss"),
            "val_bpb": last_eval.get("val_bpb"),
            "val_proof_loss": last_eval.get("proof_loss"),
            "val_proof_bpb": last_eval.get("proof_bpb"),
            "select_by": select_by,
            "layout": dataset.layout,
            "tokenizer_path": str(tokenizer.path),
            "tokenizer_sha256": tokenizer.sha256,
            "tokenizer_vocab_size": tokenizer.vocab_size,
            "tokenizer_kind": tokenizer.kind,
            "config": config,
            "preset": preset.name,
            "data_dir": str(data_dir),
            "run": run_name(checkpoint_dir),  # lineage: the run folder this checkpoint belongs to
        }

    def save_resumable() -> str:
        """Every rank calls this at the same step; rank 0 writes, the others wait at a barrier.

        Each rank's RNG state is gathered (`rng_ranks`), so a resume at the same world size
        is exact. With a lost peer (broken group) rank 0 saves alone, with its own state.
        """
        nonlocal last_good
        path = checkpoint_dir / f"checkpoint_step_{step}.pt"
        rng_ranks = dist.gather_objects(capture_rng()) if dist.enabled and not dist.broken else None
        if not dist.is_main:
            if not dist.broken:
                dist.agree(None)  # waits for rank 0's save; raises its error if it failed
            last_good = str(path)
            return str(path)
        data = base_payload()
        data["optimizer"] = optimizer.state_dict()
        data["train_state"] = {
            "data_epoch": done_epoch,
            "data_batch": done_batch,
            "world_size": dist.world,
            "rng_ranks": rng_ranks,
            "data_seed": int(tr.seed),
            "train_rows": train_split.n_rows,
            "total_steps": total_steps,
            "best_val_loss": best_val,
            "select_by": select_by,
            "bad_evals": bad_evals,
            "tokens_seen": tokens_seen,
            "elapsed_s": elapsed_before + (time.monotonic() - run_start),
            "rng": capture_rng(),
        }
        error: BaseException | None = None
        try:
            save_checkpoint(path, data)
            prune_checkpoints(checkpoint_dir, int(tr.keep_checkpoints))
        except Exception as exc:
            error = exc
        if not dist.broken:
            dist.agree(error)  # the barrier after a save; every rank fails alike if it failed
        elif error is not None:
            raise error
        last_good = str(path)
        recorder.event("checkpoint", step=step, path=str(path), best=False, val_loss=last_val)
        return str(path)

    def save_best() -> None:
        error: BaseException | None = None
        if dist.is_main:
            try:
                write_best()
            except Exception as exc:
                error = exc
        dist.agree(error)  # the barrier after a save

    def write_best() -> None:
        data = base_payload()
        data["is_best"] = True
        path = checkpoint_dir / BEST_MODEL_FILE
        save_checkpoint(path, data)
        publish_best(checkpoint_dir)  # <root>/best_model.pt follows the latest run's best model
        recorder.event("checkpoint", step=step, path=str(path), best=True, val_loss=last_val)

    def run_eval() -> bool:
        """Evaluate, track best / patience; True when patience is exhausted."""
        nonlocal best_val, bad_evals, last_val, last_eval
        recorder.update(message=f"evaluating at step {step}")
        result = evaluate_split(model, val_split, tr.batch_size, int(tr.eval_batches), device, stop=stop_requested, dist=dist)
        recorder.update(message="")
        if result["tokens"] == 0 or not result["complete"]:
            return False  # cut short by a stop request: a partial loss would mislead
        val_loss = result["val_loss"]
        metric = result[select_by]
        if not math.isfinite(metric):  # no proof tokens in this split: select by the whole stream
            metric = val_loss
        last_val = val_loss
        last_eval = {k: result[k] for k in ("val_loss", "val_bpb", "proof_loss", "proof_bpb")}
        improved = metric < best_val
        if improved:
            best_val = metric
            bad_evals = 0
        else:
            bad_evals += 1
        recorder.event(
            "eval",
            step=step,
            val_loss=val_loss,
            val_bpb=result["val_bpb"],
            proof_loss=result["proof_loss"],
            proof_bpb=result["proof_bpb"],
            select_by=select_by,
            best_val_loss=best_val,
            bad_evals=bad_evals,
            patience=int(tr.patience),
            improved=improved,
            val_tokens=result["tokens"],
            val_bytes=result["bytes"],
            proof_tokens=result["proof_tokens"],
            proof_bytes=result["proof_bytes"],
        )
        if improved and math.isfinite(metric):
            save_best()
        return int(tr.patience) > 0 and bad_evals >= int(tr.patience)

    def run_sample() -> None:
        if not dataset.sample_prompt or not dist.is_main:
            return
        from .complete import greedy_next_line

        try:
            text = greedy_next_line(model, tokenizer, dataset.sample_file or dataset.sample_prompt, max_tokens=64, layout=dataset.layout)
        except Exception as exc:  # a sample must never end a run
            recorder.update(message=f"sample failed: {type(exc).__name__}: {exc}"[:200])
            return
        recorder.event("sample", step=step, prompt=dataset.sample_prompt, text=text, expected=dataset.sample_expected)

    # ---- the loop
    step = start_step
    # The data position of the last completed step (what a checkpoint records).
    done_epoch, done_batch = data_epoch, data_batch
    batch_size = int(tr.batch_size)
    epoch_order = train_split.epoch_order(data_epoch, batch_size)

    def next_rows():
        """Row ids of the next global micro-batch: the one-process order at every world size."""
        nonlocal epoch_order, data_epoch, data_batch
        if data_batch >= micro_per_epoch:
            data_epoch += 1
            data_batch = 0
            epoch_order = train_split.epoch_order(data_epoch, batch_size)
        ids = epoch_order[data_batch * batch_size : (data_batch + 1) * batch_size]
        data_batch += 1
        return ids

    def my_batches() -> list[Any]:
        """This rank's micro-batches of the next step (None = an empty share)."""
        rows = [next_rows() for _ in range(accum)]
        if dist.world > 1:
            if share_mode == "whole":
                rows = rows[dist.rank :: dist.world]
            else:
                rows = [ids[dist.rank :: dist.world] for ids in rows]
        return [train_split.batch(ids) if len(ids) else None for ids in rows]

    def empty_backward() -> None:
        """A rank with nothing to score still joins the gradient all-reduce (zero gradient)."""
        x = torch.full((1, 1), int(dataset.cache.pad_id), dtype=torch.long, device=device)
        with _autocast(device):
            logits, _ = net(x)
        (logits.float().sum() * 0.0).backward()

    model.train()
    reason, message = "finished", ""
    diverged = False  # NaN/inf, or an optimizer step that broke: the weights are suspect
    window_tokens = 0
    window_start = time.monotonic()
    last_emit = 0.0
    eval_interval = max(0, int(tr.eval_interval))
    sample_interval = int(getattr(tr, "sample_interval", 0) or 0)
    save_interval = max(0, int(tr.save_interval))
    saved_at = start_step if resumed_from else -1
    try:
        while step < total_steps:
            if not dist.enabled and stop_requested():
                reason, message = "stopped", recorder.stop_reason
                break
            lr = lr_at(step, total_steps, int(tr.warmup_steps), float(tr.learning_rate), float(tr.min_lr))
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            batches = my_batches()
            live = [b for b in batches if b is not None]
            n_tokens = sum(b.n_tokens for b in live)
            # The step's loss: weighted mean over every scored target of its micro-batches
            # (context targets weigh training.context_weight, proof targets 1).
            weight_total = sum(b.weight_sum(context_weight) for b in live)
            if dist.enabled:
                # One small all-reduce: the global step's weight and tokens, and any rank's
                # stop request (signals, `tactics stop` seen by rank 0), so all stop together.
                weight_total, n_tokens, stops = dist.all_reduce_sum(
                    [weight_total, n_tokens, 1.0 if stop_requested() else 0.0], device
                )
                n_tokens = int(round(n_tokens))
                if stops > 0:
                    reason, message = "stopped", recorder.stop_reason or "stopped (a rank was asked to stop)"
                    break
            optimizer.zero_grad(set_to_none=True)
            loss_sum = 0.0
            for i, batch in enumerate(batches):
                # DDP all-reduces the accumulated gradient in the backward of a rank's last
                # micro-batch only; every rank has the same number of them.
                sync = ddp.no_sync() if ddp is not None and i < len(batches) - 1 else contextlib.nullcontext()
                with sync:
                    if batch is None or batch.n_tokens == 0:
                        if ddp is not None:
                            empty_backward()
                        continue
                    x, y = batch.to_torch(device)
                    w = batch.weights(context_weight)
                    with _autocast(device):
                        logits, _ = net(x)
                    nll = masked_nll_sum(logits, y, None if w is None else torch.from_numpy(w).to(device))
                    scaled = nll / max(weight_total, 1e-9)
                    if dist.enabled:
                        scaled = scaled * dist.world  # DDP averages over ranks; the step's loss is their sum
                    scaled.backward()
                    loss_sum += float(nll.detach())
            if dist.enabled:
                loss_sum = dist.all_reduce_sum([loss_sum], device)[0]
            loss = loss_sum / max(weight_total, 1e-9)
            clip = float(tr.grad_clip) if tr.grad_clip and tr.grad_clip > 0 else float("inf")
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip)) if math.isfinite(loss) else loss
            if not (math.isfinite(loss) and math.isfinite(grad_norm)):
                what = f"loss became {loss}" if not math.isfinite(loss) else f"gradient norm became {grad_norm}"
                where = f"; the last good checkpoint is {last_good}" if last_good else "; no checkpoint was written yet"
                reason, diverged = "failed", True
                message = (
                    f"{what} at step {step + 1} (learning rate {lr:.3g}): training diverged, so no final "
                    f"checkpoint was written{where}; lower training.learning_rate"
                    f"{' (and training.muon_lr)' if tr.optimizer == 'muon' else ''}"
                    " or raise training.warmup_steps"
                )
                break
            diverged = True  # until the step completes
            optimizer.step()
            diverged = False
            step += 1
            done_epoch, done_batch = data_epoch, data_batch
            tokens_seen += n_tokens
            window_tokens += n_tokens
            now = time.monotonic()
            if now - last_emit >= metrics_interval or step == total_steps or step == start_step + 1:
                span = max(1e-9, now - window_start)
                recorder.event(
                    "step",
                    step=step,
                    epoch=round(data_epoch + data_batch / max(1, micro_per_epoch), 4),
                    loss=loss,
                    lr=lr,
                    tokens_per_s=window_tokens / span,
                    elapsed_s=round(elapsed_before + (now - run_start), 3),
                    grad_norm=grad_norm,
                    tokens=tokens_seen,
                    total_steps=total_steps,
                )
                window_tokens = 0
                window_start = now
                last_emit = now
            recorder.update(step=step)
            report(progress, step, total_steps, f"loss {loss:.4f}")
            early = False
            if eval_interval and step % eval_interval == 0:
                early = run_eval()
                if sample_interval == 0:
                    run_sample()
            if sample_interval and step % sample_interval == 0:
                run_sample()
            if save_interval and step % save_interval == 0:
                save_resumable()
                saved_at = step
            if early:
                reason = "early_stop"
                what = "proof-line validation loss" if select_by == "proof_loss" else "validation loss"
                message = f"no better {what} in {tr.patience} evaluations (best {best_val:.4f})"
                break
            window_start += time.monotonic() - now  # eval/checkpoint time does not count in tokens/s
        else:
            message = f"reached step {step} of {total_steps}"
            if eval_interval and step % eval_interval and step > start_step:
                run_eval()  # the final weights compete for best_model.pt too
    except KeyboardInterrupt:
        reason, message = "stopped", "interrupted (second Ctrl-C)"
        dist.broken = dist.enabled  # ranks may be anywhere in a step: rank 0 saves alone
    except distributed.PeerLost as exc:
        reason, message = "failed", f"rank {dist.rank}: {exc}"
    except Exception as exc:
        if dist.enabled:
            # The other ranks may be anywhere in their step: no more collectives; rank 0
            # writes the final checkpoint alone (its weights are those of the last step).
            dist.broken = True
        lost = distributed.peer_lost(exc) if dist.enabled else None
        if lost is not None:
            text = f"rank {dist.rank}: {lost}"
        elif isinstance(exc, TacticsError):
            text = str(exc)
        elif _is_oom(exc):
            text = _oom_message(preset, device)
        else:
            text = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        reason, message = "failed", text
    final_path: str | None = last_good
    if not diverged and step > start_step and step != saved_at and (dist.is_main or not dist.broken):
        recorder.set_state("stopping", "writing the final checkpoint")
        try:
            final_path = save_resumable()
        except Exception as exc:  # disk full etc.: say so, keep the older checkpoints
            reason = "failed"
            if "cannot write checkpoint" in message:  # a full disk: say it once, not twice
                message = f"{message} (the final checkpoint could not be written either)"
            else:
                message = f"{message}; the final checkpoint could not be written: {exc}".strip("; ")
    if reason == "stopped" and not message:
        message = "stopped"
    best = None if math.isinf(best_val) else best_val
    recorder.event(
        "end",
        reason=reason,
        message=message,
        step=step,
        total_steps=total_steps,
        best_val_loss=best,
        checkpoint=final_path,
        elapsed_s=round(elapsed_before + (time.monotonic() - run_start), 3),
    )
    recorder.set_state(reason, message)
    return TrainResult(reason, message, step, total_steps, best, final_path)
