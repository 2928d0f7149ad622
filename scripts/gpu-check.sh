#!/usr/bin/env bash
# The GPU run of issue 18, for a machine with an NVIDIA GPU, the CUDA
# toolkit (nvcc) and PyTorch with CUDA. One script, in this order:
#   1. build with --features cuda (fails early when nvcc is missing);
#   2. the CUDA tests (ops, Adam and scCBGM training against the CPU, checkpoints
#      crossing devices);
#   3. cargo run --release -p xtask --features xtask/cuda -- bench-train --device cuda next to PyTorch on the same GPU:
#      scCBGM at the reference's real-data configuration at batch 128, 1,024
#      and 8,192, flow training and flow edit -> results/bench-train-gpu.json.
# Usage: scripts/gpu-check.sh [PYTHON_WITH_TORCH]   (default: python3)
# Environment: CUDA_COMPUTE_CAP (default: from nvidia-smi), STEPS (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
STEPS=${STEPS:-30}

if [[ -z "${CUDA_COMPUTE_CAP:-}" ]] && command -v nvidia-smi >/dev/null; then
    CUDA_COMPUTE_CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.')
    export CUDA_COMPUTE_CAP
fi
command -v nvcc >/dev/null || { echo "gpu-check: nvcc not on PATH (see docs/gpu.md)" >&2; exit 2; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
"$PY" -c 'import torch; assert torch.cuda.is_available(), "torch sees no GPU"; print("torch", torch.__version__, torch.cuda.get_device_name(0))'

echo "== 1. build (--features cuda)"
time cargo build --release -p xtask --features xtask/cuda

echo "== 2. CUDA tests"
cargo test --release -p conceptlab-nn --features cuda --test cuda
cargo test --release -p conceptlab-models --features cuda --test cuda
# The CPU unit tests of the composed paths, in the CUDA build too.
cargo test --release -p conceptlab-nn --features cuda --lib

# (`cargo xtask` is built without features: run the CUDA build directly.)
echo "== 3. training and editing throughput, conceptlab vs PyTorch on the same GPU"
cargo run --release -p xtask --features xtask/cuda -- bench-train --device cuda --threads 1 --python "$PY" --steps "$STEPS" \
    --configs real --batches 128,1024,8192 --out results/bench-train-gpu.json
cargo run --release -p xtask --features xtask/cuda -- bench-train --device cuda --threads 1 --python "$PY" --steps "$STEPS" \
    --configs flow,flow-edit --out results/bench-train-gpu.json
echo "gpu-check: wrote results/bench-train-gpu.json"
