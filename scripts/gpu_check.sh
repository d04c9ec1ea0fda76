#!/usr/bin/env bash
# The one-command GPU check, for a machine with an NVIDIA GPU (CUDA 12.x/13) and Rust:
#
#   bash scripts/gpu_check.sh            # results in gpu-results/ (OUT=... to change)
#
# builds the `cuda` backend (and `tch`, libtorch's CUDA kernels, when LIBTORCH or
# LIBTORCH_USE_PYTORCH is set), runs the parity and generation tests on the GPU, then
# scripts/gpu_bench.sh: our decode, training step and GRPO step against PyTorch/transformers
# (and TRL when its wheels are in .whl/), on `cuda` and `tch:cuda`, each report with its first
# (compiling, autotuning) run apart from the steady state. On a GPU machine without Rust, build
# here and copy `.gpu/` over (see scripts/gpu_bench.sh), then run this same script there.
set -euo pipefail
cd "$(dirname "$0")/.."
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"
features=cuda
if [ -n "${LIBTORCH:-}${LIBTORCH_USE_PYTORCH:-}" ]; then
  features=cuda,tch
fi
if command -v cargo >/dev/null 2>&1; then
  target="${CARGO_TARGET_DIR:-target}"
  cargo build --release --features "$features"
  cargo test --release --features "$features" --no-run --test parity --test generate
  mkdir -p .gpu
  cp "$target/release/mgrpo" .gpu/
  for t in parity generate; do
    rm -f .gpu/"$t"-*
    bin=$(find "$target/release/deps" -maxdepth 1 -type f -executable -name "$t-*" -printf '%T@ %p\n' \
      | sort -nr | head -1 | cut -d' ' -f2)
    cp "$bin" .gpu/
  done
fi
if [ ! -x .gpu/mgrpo ]; then
  echo "gpu_check: no .gpu/mgrpo; build it where Rust is installed (this script does that) and copy .gpu/ here" >&2
  exit 1
fi
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu_check: nvidia-smi not found: this machine has no NVIDIA driver" >&2
  exit 1
fi
exec bash scripts/gpu_bench.sh
