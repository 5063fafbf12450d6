"""The generative tactics GPT as a model kind of the training loop (`model_kind.TrainingKind`).

What is the GPT's alone lives here: the tokenizer a run folder carries and its checkpoints
must match, the token cache of a proof-file corpus, the weighted token NLL (context tokens
weigh `training.context_weight`), bits per byte and the proof-line figures, the live sample
of a fixed validation goal. The loop in `train.py` calls these through the seam and never
names the GPT.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from tactics_core.common.device import autocast
from tactics_core.gpt.layouts import layout_named
from tactics_core.training.model_kind import Evaluation
from tactics_core.common.workspace import TOKENIZER_FILE, workspace_root
from tactics_core.runs.workspace_runs import prepare_run_folder

if TYPE_CHECKING:
    import torch

    from tactics_core.gpt.data import Batch, Dataset, Split
    from tactics_core.training.distributed import DistHandle
    from tactics_core.training.presets import Preset, TrainingSection
    from tactics_core.common.progress import CancelToken, ProgressFn
    from tactics_core.gpt.tokenizer import TacticsTokenizer

CACHE_SUBDIR = "cache"  # the token cache's folder under the workspace's checkpoints/


def disable_attention_dropout(model: torch.nn.Module) -> None:
    """Keep `model.dropout` on embeddings and residual branches, not on attention weights.

    Dropout on attention probabilities makes PyTorch's CPU attention fall back
    from the fused kernel to the unfused math path (bmm + softmax + a Bernoulli
    mask of batch x heads x ctx x ctx): about 1.2-1.4x slower steps at the
    default preset for a regularizer that residual dropout already provides.
    The attention is found by its class, not by the name of one of its layers.
    """
    from tactics_core.gpt.model import CausalSelfAttention

    for module in model.modules():
        if isinstance(module, CausalSelfAttention):
            module.dropout = 0.0


def evaluate_split(
    model: torch.nn.Module, split: Split, batch_size: int, max_batches: int, device: str,
    stop: Callable[[], bool] | None = None, dist: DistHandle | None = None, precision: str = "fp32",
) -> dict[str, float]:
    """Validation loss (nats/token) and bits per byte over a split: over every scored token
    (`val_loss`, `val_bpb`) and over the proof tokens alone (`proof_loss`, `proof_bpb`:
    in the prover layout exactly the proof lines, each ended by its newline token, as
    the prover asks for them).

    bpb = sum of token NLL / ln 2 / UTF-8 bytes of exactly the tokens scored.

    `dist` (a distributed.Dist of several ranks): each rank scores every world-th row of
    each batch, the stop check is shared, and the sums are all-reduced, so every row counts
    once and every rank returns the same figures. `precision` "bf16" runs the forward pass
    under bf16 autocast (the trainer passes its own, so evaluations match its steps).
    """
    import torch

    from tactics_core.gpt.data import masked_nll_split

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
                with autocast(device, precision):
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
        nll, proof_nll, *counts = dist.all_reduce_sum([nll, proof_nll, tokens, nbytes, proof_tokens, proof_bytes])
        tokens, nbytes, proof_tokens, proof_bytes = (int(round(v)) for v in counts)
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


def _eval_batches(split: Split, batch_size: int, max_batches: int, dist: DistHandle | None) -> Iterator[Batch | None]:
    """The validation batches of this rank (all of them for one process; None = an empty share)."""
    if dist is None or not dist.enabled:
        yield from split.iter_fixed(batch_size, max_batches)
        return
    for ids in split.fixed_rows(batch_size, max_batches):
        mine = ids[dist.rank :: dist.world]
        yield split.batch(mine) if len(mine) else None


def batch_loss_sum(net: torch.nn.Module, batch: Batch, context_weight: float, device: str, precision: str = "fp32",
                   sample_seed: Sequence[int] | None = None) -> torch.Tensor:
    """The weighted NLL sum (nats, a tensor to backpropagate) of one training micro-batch, with
    the output layer run only on the targets the loss reads (`Batch.loss_targets`). The one loss
    of the trainer, which the bench's step timing calls too."""
    import torch

    from tactics_core.gpt.data import masked_nll_sum

    flat, targets, weights = batch.loss_targets(context_weight, sample_seed)
    x = torch.from_numpy(batch.inputs).to(device, non_blocking=True)
    with autocast(device, precision):
        logits, _ = net(x, select=torch.from_numpy(flat).to(device))
    return masked_nll_sum(logits, torch.from_numpy(targets).to(device),
                          None if weights is None else torch.from_numpy(weights).to(device))


class GptKind:
    """The GPT's side of the seam (see model_kind.TrainingKind)."""

    name = "gpt"
    unit = "tokens"
    reading_message = "reading and tokenizing the corpus"

    def __init__(self) -> None:
        self.tokenizer: TacticsTokenizer | None = None

    def prepare_folder(self, checkpoint_dir: Path) -> None:
        prepare_run_folder(checkpoint_dir)  # a run folder gets the workspace's tokenizer

    def check_folder(self, checkpoint_dir: Path) -> None:
        """Before anything is claimed: the run folder has a tokenizer (else: train one first)."""
        if not (checkpoint_dir / TOKENIZER_FILE).is_file():
            from tactics_core.gpt.tokenizer import load_tokenizer

            load_tokenizer(checkpoint_dir / TOKENIZER_FILE)  # raises: "... run `tactics tokenizer train` first"

    def open(self, checkpoint_dir: Path, payload: dict[str, Any] | None, resume_path: Path | None) -> None:
        from tactics_core.runs.checkpoints import check_tokenizer_matches
        from tactics_core.gpt.tokenizer import load_tokenizer

        self.tokenizer = load_tokenizer(checkpoint_dir / TOKENIZER_FILE)
        if payload is not None:
            check_tokenizer_matches(payload, self.tokenizer, resume_path)

    def read_data(self, preset: Preset, data_dir: Path, checkpoint_dir: Path, progress: ProgressFn | None,
                  cancel: CancelToken | None, dist: DistHandle) -> Dataset:
        """Rank 0 builds the token cache; the others wait, then read it (no double tokenizing)."""
        from tactics_core.gpt.data import load_dataset

        tr = preset.training
        return dist.main_first(
            load_dataset, data_dir, self.tokenizer, workspace_root(checkpoint_dir) / CACHE_SUBDIR,
            preset.model.context_length, val_fraction=tr.val_fraction, seed=tr.seed, progress=progress,
            cancel=cancel, layout=tr.layout, batch_size=tr.batch_size, rename_variants=int(tr.rename_variants),
            split=tr.split,
        )

    def build_model(self, preset: Preset, data: Dataset):
        from tactics_core.gpt.model import GPT

        config = preset.model.gpt_config(self.tokenizer.vocab_size)
        model = GPT(config)
        disable_attention_dropout(model)
        return model, config

    def load_weights(self, model, state: dict[str, Any], source: str) -> None:
        from tactics_core.gpt.model import load_compatible_state_dict

        load_compatible_state_dict(model, state, source=source)

    def batch_size_of(self, batch: Batch) -> int:
        return batch.n_tokens

    def batch_weight(self, batch: Batch, training: TrainingSection) -> float:
        return batch.weight_sum(float(training.context_weight))

    def loss_sum(self, net, batch: Batch, training: TrainingSection, device: str, precision: str, step: int):
        """Weighted token NLL; with training.context_sampling a random share context_weight of
        the prompt's targets, drawn by (seed, step, row)."""
        sample_seed = (int(training.seed), int(step)) if training.context_sampling else None
        return batch_loss_sum(net, batch, float(training.context_weight), device, precision, sample_seed)

    def empty_backward(self, net, data: Dataset, device: str, precision: str) -> None:
        import torch

        x = torch.full((1, 1), int(data.cache.pad_id), dtype=torch.long, device=device)
        with autocast(device, precision):
            logits, _ = net(x)
        (logits.float().sum() * 0.0).backward()

    def evaluate(self, model, data: Dataset, training: TrainingSection, device: str, precision: str,
                 stop: Callable[[], bool], dist: DistHandle) -> Evaluation:
        result = evaluate_split(
            model, data.val, training.batch_size, int(training.eval_batches), device, stop=stop, dist=dist,
            precision=precision,
        )
        figures = {k: result[k] for k in ("val_loss", "val_bpb", "proof_loss", "proof_bpb")}
        event = {
            "val_loss": result["val_loss"], "val_bpb": result["val_bpb"], "proof_loss": result["proof_loss"],
            "proof_bpb": result["proof_bpb"], "val_tokens": int(result["tokens"]), "val_bytes": int(result["bytes"]),
            "proof_tokens": int(result["proof_tokens"]), "proof_bytes": int(result["proof_bytes"]),
        }
        return Evaluation(complete=bool(result["complete"]), figures=figures, event=event, empty=result["tokens"] == 0)

    def sample(self, model, data: Dataset) -> dict[str, Any] | None:
        """The greedy next proof line for the fixed validation goal."""
        if not data.sample_prompt:
            return None
        from tactics_core.gpt.complete import greedy_next_line

        text = greedy_next_line(model, self.tokenizer, data.sample_file, max_tokens=64, layout=layout_named(data.layout))
        return {"prompt": data.sample_prompt, "text": text, "expected": data.sample_expected}

    def start_fields(self) -> dict[str, Any]:
        tok = self.tokenizer
        return {"tokenizer": {"path": str(tok.path), "sha256": tok.sha256, "vocab_size": tok.vocab_size, "kind": tok.kind}}

    def payload_fields(self, data: Dataset) -> dict[str, Any]:
        tok = self.tokenizer
        return {
            "layout": data.layout,
            "tokenizer_path": str(tok.path),
            "tokenizer_sha256": tok.sha256,
            "tokenizer_vocab_size": tok.vocab_size,
            "tokenizer_kind": tok.kind,
        }

    def oom_hint(self, preset: Preset) -> str:
        return (
            f"at batch_size {preset.training.batch_size}, context_length "
            f"{preset.model.context_length}: lower training.batch_size or model.context_length "
            "(or raise training.grad_accum_steps to keep the effective batch)"
        )
