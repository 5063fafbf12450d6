#!/usr/bin/env bash
# The GPU path, checked in one short run on a CUDA machine (never run on the CPU-only dev box).
#
#   bash bench/gpu_check.sh [CORPUS_PROOFS_DIR] [STEPS]
#
# 1. the machine: nvidia-smi, torch's CUDA build, bf16 support;
# 2. the `gpu` preset for STEPS (default 300) optimizer steps on one GPU: bf16 autocast,
#    fused AdamW, evaluation every 100 steps; prints tokens/s and the last losses;
# 3. `tactics export` of the final checkpoint: the export's own checks compare ONNX Runtime
#    with PyTorch (logits <= 1e-4, cache and decode); a failed check exits non-zero;
# 4. with 2+ GPUs: the same run with `--nproc 2` (NCCL DDP, the same global batch), its loss at
#    the last step next to the 1-GPU one (close, not bitwise);
# 5. the out-of-memory message: one step at a batch no GPU holds must end with
#    "out of memory on cuda...", not a traceback.
# Everything goes to a temporary workspace; the figures are printed at the end for
# docs/training.md. Exit status 0 = every check passed.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
CORPUS="${1:-$REPO/../shared/corpora/acornlib-2025-11/proofs}"
STEPS="${2:-300}"
PY="${PYTHON:-python}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export OMP_WAIT_POLICY=PASSIVE
WS="$(mktemp -d -t tactics-gpu-check-XXXX)"
trap 'echo "workspace kept at $WS"' EXIT
T() { "$PY" -m tactics_core "$@"; }

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || { echo "no nvidia-smi: not a CUDA machine"; exit 1; }
"$PY" - <<'EOF'
import torch
assert torch.cuda.is_available(), "torch sees no CUDA GPU"
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s): "
      f"{torch.cuda.get_device_name(0)}, bf16 {torch.cuda.is_bf16_supported()}")
EOF
NGPU="$("$PY" -c 'import torch; print(torch.cuda.device_count())')"

echo "== tokenizer"
T tokenizer train --data-dir "$CORPUS" --output-dir "$WS/ck" >/dev/null  # holds out data.DEFAULT_VAL_FRACTION, the gpu preset's val_fraction
COMMON=(--preset gpu --data-dir "$CORPUS" --checkpoint-dir "$WS/ck" --max-steps "$STEPS" --device cuda
        --set training.eval_interval=100 --set training.eval_batches=16 --set "training.save_interval=$((STEPS + 1))")

figures() {  # run folder -> "tokens/s, last loss, last val loss"
  "$PY" - "$1" <<'EOF'
import sys
from tactics_core.runs.run_events import metrics_path, read_metrics
ev = read_metrics(metrics_path(sys.argv[1]))
steps = [e for e in ev if e["event"] == "step"]
evals = [e for e in ev if e["event"] == "eval"]
end = [e for e in ev if e["event"] == "end"][-1]
a, b = steps[min(5, len(steps) - 1)], steps[-1]
tps = (b["tokens"] - a["tokens"]) / max(1e-9, b["elapsed_s"] - a["elapsed_s"])
print(f"end {end['reason']} at step {end['step']}; {tps:,.0f} tokens/s; loss {b['loss']:.4f}; "
      f"val loss {evals[-1]['val_loss']:.4f}, proof bpb {evals[-1]['proof_bpb']:.3f}")
assert end["reason"] == "finished", end["message"]
EOF
}

echo "== 1 GPU: gpu preset, $STEPS steps"
T train "${COMMON[@]}" --run-name one --metrics-interval 1
ONE="$(figures "$WS/ck/runs/one")"
echo "$ONE"

echo "== export + ONNX vs PyTorch"
T export "$WS/ck/runs/one/checkpoint_step_$STEPS.pt" "$WS/export" --json > "$WS/export.json"
"$PY" - "$WS/export.json" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
print(json.dumps({k: report[k] for k in report if k != "checks"}, default=str)[:400])
for check in report.get("checks", []):
    print(" ", check)
EOF

TWO="(skipped: $NGPU GPU)"
if [ "$NGPU" -ge 2 ]; then
  echo "== 2 GPUs: NCCL DDP, same global batch"
  T train "${COMMON[@]}" --run-name two --nproc 2 --metrics-interval 1
  TWO="$(figures "$WS/ck/runs/two")"
  echo "$TWO"
fi

echo "== out-of-memory message"
set +e
OOM="$(T train --preset gpu --data-dir "$CORPUS" --checkpoint-dir "$WS/ck" --run-name oom --max-steps 1 --device cuda \
        --set training.batch_size=4096 --set model.context_length=1024 2>&1 | tail -1)"
set -e
echo "$OOM"
case "$OOM" in *"out of memory on cuda"*) OOMOK=yes ;; *) OOMOK="no (a GPU this large held the batch?)" ;; esac

echo
echo "== figures for docs/training.md"
echo "1 GPU:  $ONE"
echo "2 GPUs: $TWO"
echo "OOM message: $OOMOK"
