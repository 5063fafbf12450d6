"""acorn's proof-step scorer as a model kind of the training loop (`model_kind.TrainingKind`).

The loop is the GPT's (schedule, accumulation, clipping, DDP, early stopping, checkpoints
with exact resume, events); what is the scorer's is here: trace rows as data
(`scorer.data`), the MLP with its standardization (`scorer.model`), the loss — acorn's BCE on
`used_in_final_proof` (a used step weighs `pos_weight`, by default negatives / positives as
acorn's trainer) plus, with `data.loss = "bce+rank"` or `"rank"`, a ranking term: within each
search of a batch, the softmax over the search's steps should put its mass on the steps the
final proof used — and the figures that matter to the prover (`scorer.metrics`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from tactics_core.training.model_kind import Evaluation
from tactics_core.scorer.data import ScorerBatch, ScorerData, build_data, trace_store_root
from tactics_core.scorer.metrics import figures as score_figures

if TYPE_CHECKING:
    import torch

    from tactics_core.training.distributed import DistHandle
    from tactics_core.training.presets import Preset, TrainingSection
    from tactics_core.common.progress import CancelToken, ProgressFn


class ScorerKind:
    """The scorer's side of the seam (see model_kind.TrainingKind)."""

    name = "scorer"
    unit = "rows"
    reading_message = "reading the traces (a first read builds their column store)"

    def __init__(self) -> None:
        self.preset: Preset | None = None
        self.pos_weight = 1.0

    def prepare_folder(self, checkpoint_dir: Path) -> None:
        return None  # a scorer run needs nothing beside its traces

    def check_folder(self, checkpoint_dir: Path) -> None:
        return None

    def open(self, checkpoint_dir: Path, payload: dict[str, Any] | None, resume_path: Path | None) -> None:
        return None

    def read_data(self, preset: Preset, data_dir: Path, checkpoint_dir: Path, progress: ProgressFn | None,
                  cancel: CancelToken | None, dist: DistHandle) -> ScorerData:
        """Rank 0 builds the trace stores first; the others then map them."""
        from tactics_core.common.errors import TacticsError
        from tactics_core.scorer.trace_store import load_traces

        self.preset = preset
        data_dir = Path(data_dir)
        if not data_dir.exists():
            raise TacticsError(f"{data_dir}: no traces there; record some with `tactics traces collect --buckets 0-9,90` "
                               "or pass --data-dir with a folder of acorn eval traces (*.jsonl.zst)")
        problems: list[str] = []
        traces = dist.main_first(load_traces, [data_dir], trace_store_root(data_dir), progress, cancel, lambda p: problems.append(str(p)))
        d, tr = preset.data, preset.training
        data = build_data(traces, preset.model.features, d.train_buckets, d.val_buckets, d.negatives_per_positive,
                          d.max_val_rows, tr.seed, problems, d.max_train_rows, d.batches)
        kept_negatives = data.train.keep_negatives
        self.pos_weight = float(d.pos_weight) if d.pos_weight > 0 else kept_negatives / max(1, data.train.positives)
        return data

    def build_model(self, preset: Preset, data: ScorerData):
        import torch

        from tactics_core.scorer.model import ScorerConfig, ScorerNet

        m = preset.model
        config = ScorerConfig(features=data.feature_names, hidden_size=m.hidden_size, hidden_layers=m.hidden_layers,
                              dropout=m.dropout)
        model = ScorerNet(config)
        model.set_standardization(torch.from_numpy(data.mean), torch.from_numpy(data.scale))
        return model, config

    def load_weights(self, model, state: dict[str, Any], source: str) -> None:
        from tactics_core.common.errors import TacticsError

        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise TacticsError(f"{source}: its weights do not fit this scorer's shape or features "
                               f"({str(exc).splitlines()[0][:160]}); resume with the preset it was trained with") from exc

    def batch_size_of(self, batch: ScorerBatch) -> int:
        return batch.n_rows

    def batch_weight(self, batch: ScorerBatch, training: TrainingSection) -> float:
        return float(batch.n_rows)

    def loss_sum(self, net, batch: ScorerBatch, training: TrainingSection, device: str, precision: str, step: int):
        """BCE summed over the rows, plus rank_weight x the ranking term (a search's softmax
        cross-entropy on its used steps, counted once per row of the search)."""
        import torch

        x = torch.from_numpy(batch.x).to(device, non_blocking=True)
        y = torch.from_numpy(batch.y).to(device, non_blocking=True)
        logits = net(x).float()
        d = self.preset.data
        loss = logits.new_zeros(())
        if d.loss in ("bce", "bce+rank"):
            weight = torch.tensor(self.pos_weight, device=logits.device)
            loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=weight, reduction="sum")
        if d.loss in ("rank", "bce+rank"):
            scale = 1.0 if d.loss == "rank" else float(d.rank_weight)
            loss = loss + scale * rank_loss_sum(logits, y, torch.from_numpy(batch.group).to(device))
        return loss

    def empty_backward(self, net, data: ScorerData, device: str, precision: str) -> None:
        import torch

        x = torch.zeros((1, len(data.feature_names)), device=device)
        (net(x).float().sum() * 0.0).backward()

    def evaluate(self, model, data: ScorerData, training: TrainingSection, device: str, precision: str,
                 stop: Callable[[], bool], dist: DistHandle) -> Evaluation:
        """Every validation row scored (each rank alike: the MLP is small); the figures of
        `scorer.metrics` over them."""
        import torch

        was_training = model.training
        model.eval()
        probs, used, groups = [], [], []
        try:
            with torch.no_grad():
                for batch in data.val.chunks():
                    if stop():
                        return Evaluation(complete=False)
                    logits = model(torch.from_numpy(batch.x).to(device)).float()
                    probs.append(torch.sigmoid(logits).cpu().numpy())
                    used.append(batch.y)
                    groups.append(batch.group)
        finally:
            model.train(was_training)
        if not probs:
            return Evaluation(complete=True, empty=True)
        f = score_figures(np.concatenate(probs), np.concatenate(used), np.concatenate(groups))
        figures = {"val_loss": f.val_loss, "auc": f.auc, "used_rank": f.used_rank, "top10_hit": f.top10_hit}
        event = {"val_loss": f.val_loss, "auc": f.auc, "used_rank": f.used_rank, "top10_hit": f.top10_hit,
                 "val_rows": f.rows, "val_searches": f.searches_ranked}
        return Evaluation(complete=True, figures=figures, event=event)

    def sample(self, model, data: ScorerData) -> dict[str, Any] | None:
        return None  # nothing to read aloud: the figures are the sample

    def start_fields(self) -> dict[str, Any]:
        return {"kind": self.name, "unit": self.unit,
                "features": list(self.preset.model.features) if self.preset and self.preset.model.features else None}

    def payload_fields(self, data: ScorerData) -> dict[str, Any]:
        return {
            "kind": self.name,
            "features": list(data.feature_names),
            "traces": data.traces,
            "train_buckets": data.train_buckets,
            "val_buckets": data.val_buckets,
            "pos_weight": self.pos_weight,
        }

    def oom_hint(self, preset: Preset) -> str:
        return f"at batch_size {preset.training.batch_size} rows: lower training.batch_size"


def rank_loss_sum(logits, used, group):
    """Σ over the searches of the batch that have a used step and another step: |search| x the
    mean over its used steps of -log softmax_search(step). (Weighted by the search's size so the
    loop's division by the batch's rows gives a per-row mean, as the BCE term.)"""
    import torch

    uniq, inv = torch.unique(group, return_inverse=True)
    n_groups = len(uniq)
    size = torch.zeros(n_groups, device=logits.device).index_add_(0, inv, torch.ones_like(logits))
    npos = torch.zeros(n_groups, device=logits.device).index_add_(0, inv, used)
    gmax = torch.full((n_groups,), -torch.inf, device=logits.device).scatter_reduce(0, inv, logits.detach(), "amax")
    expsum = torch.zeros(n_groups, device=logits.device).index_add_(0, inv, torch.exp(logits - gmax[inv]))
    lse = gmax + torch.log(expsum)
    live = (npos > 0) & (size > 1)
    per_row = -(logits - lse[inv]) * used * (size / npos.clamp_min(1))[inv] * live[inv].float()
    return per_row.sum()
