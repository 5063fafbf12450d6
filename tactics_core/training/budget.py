"""How many optimizer steps of a preset fit a wall-clock budget, measured, for either model kind.

A run given a time budget should not be cancelled halfway through its schedule: the cosine
decay would never anneal, and runs of different cost would be compared at different points of
their schedules. So the steps that fit are measured first, on real batches of the run's own data
through the kind's own loss (`model_kind.TrainingKind`), and the run is then given
`max_steps` = those steps: its schedule completes within the budget.

Real batches matter: in the GPT's prover layout a batch is as long as its longest stream, so
random full-length rows would overstate the step cost. Evaluations are charged either at their
share of forward passes (the GPT's estimate: an evaluation batch is about a third of a training
micro-batch; what `bench/time_to_quality.py` has always used) or by timing one real evaluation
(`measure_eval=True`: what `tactics sweep` uses, for both kinds). `overhead_s` covers reading
the data and checkpoints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tactics_core.training.presets import Preset

TIMED_STEPS = 25  # steps timed after WARMUP_STEPS untimed ones (the first allocate and warm caches)
WARMUP_STEPS = 6
CHECKPOINT_ALLOWANCE_S = 2.0  # charged besides reading the data when the overhead is measured


@dataclass(frozen=True)
class StepFit:
    """The measurement and its verdict: `steps` optimizer steps fit `budget_s` seconds."""

    steps: int
    step_s: float  # mean seconds per optimizer step (all its micro-batches)
    eval_s: float  # seconds per evaluation (measured, or estimated from step_s)
    evals_measured: bool
    read_s: float  # seconds it took to read the data here (a run reads it again, cached)
    budget_s: float
    overhead_s: float

    def steps_with_evaluations(self, evaluations: int) -> int:
        """The steps that fit when the run evaluates `evaluations` times in all (a sweep's
        evaluations at equal shares of the budget) instead of every `eval_interval` steps."""
        return max(1, int((self.budget_s - self.overhead_s - evaluations * self.eval_s) / self.step_s))

    def line(self) -> str:
        """One line for a console."""
        how = "measured" if self.evals_measured else "estimated"
        return (f"{self.step_s * 1000:.0f} ms per step (mean of {TIMED_STEPS} real batches), "
                f"{self.eval_s:.1f} s per evaluation ({how}) -> max_steps {self.steps} for {self.budget_s:.0f} s")


def fit_steps(
    preset: Preset,
    data_dir: str | Path,
    checkpoint_dir: str | Path,
    budget_s: float,
    overhead_s: float | None = 12.0,
    device: str = "cpu",
    measure_eval: bool = False,
    timed_steps: int = TIMED_STEPS,
) -> StepFit:
    """Optimizer steps of `preset` that fit `budget_s` seconds of training on `device`.

    `checkpoint_dir` is a run folder (or a workspace checkpoint folder) holding what the kind
    reads (the GPT: its tokenizer.json; the token cache goes to its workspace's cache/, where the
    run then finds it). Nothing is written but those caches. At least one step is returned.
    `overhead_s` None: the time it took to read the data here plus CHECKPOINT_ALLOWANCE_S (a run
    reads it again, from the caches this read made).
    """
    import torch

    from tactics_core.common.device import resolve_precision
    from tactics_core.training import distributed
    from tactics_core.training.kinds import training_kind
    from tactics_core.training.loop import configure_threads, make_optimizer, seed_everything

    tr = preset.training
    configure_threads(int(tr.num_threads or 0))
    seed_everything(int(tr.seed))
    kind = training_kind(preset.kind)
    checkpoint_dir, data_dir = Path(checkpoint_dir), Path(data_dir)
    t_read = time.perf_counter()
    kind.open(checkpoint_dir, None, None)
    data = kind.read_data(preset, data_dir, checkpoint_dir, None, None, distributed.SINGLE)
    read_s = time.perf_counter() - t_read
    model, _ = kind.build_model(preset, data)
    model.to(device)
    model.train()
    optimizer = make_optimizer(model, tr, device)
    precision = resolve_precision(tr.precision, device)
    accum = max(1, int(tr.grad_accum_steps))
    batch_size = int(tr.batch_size)
    n_batches = max(1, data.train.n_batches(batch_size))
    epoch, index, order = 0, 0, data.train.epoch_order(0, batch_size)
    times: list[float] = []
    for step in range(WARMUP_STEPS + timed_steps):
        t0 = time.perf_counter()
        batches = []
        for _ in range(accum):
            if index >= n_batches:
                epoch, index = epoch + 1, 0
                order = data.train.epoch_order(epoch, batch_size)
            batches.append(data.train.batch(order[index * batch_size : (index + 1) * batch_size]))
            index += 1
        weight = sum(kind.batch_weight(b, tr) for b in batches)
        optimizer.zero_grad(set_to_none=True)
        for batch in batches:
            (kind.loss_sum(model, batch, tr, device, precision, step) / max(weight, 1e-9)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if step >= WARMUP_STEPS:
            times.append(time.perf_counter() - t0)
    step_s = sum(times) / len(times)
    eval_interval = max(0, int(tr.eval_interval))
    if measure_eval:
        t0 = time.perf_counter()
        kind.evaluate(model, data, tr, device, precision, lambda: False, distributed.SINGLE)
        eval_s = time.perf_counter() - t0
    else:
        # An evaluation batch is a forward pass: about a third of a training micro-batch.
        eval_s = step_s * (tr.eval_batches or 40) / 3 / accum
    evals_per_step = eval_s / step_s / eval_interval if eval_interval else 0.0
    overhead = read_s + CHECKPOINT_ALLOWANCE_S if overhead_s is None else float(overhead_s)
    steps = int((budget_s - overhead) / (step_s * (1 + evals_per_step)))
    return StepFit(max(1, steps), step_s, eval_s, measure_eval, read_s, float(budget_s), overhead)
