#!/usr/bin/env bash
# The one-command GPU check, for a machine with an NVIDIA GPU (CUDA 12.x/13) and Rust:
#
#   bash scripts/gpu_check.sh            # results in gpu-results/ (OUT=... to change)
#
# builds the `cuda` backend (and `tch`, libtorch's CUDA kernels, when LIBTORCH or
# LIBTORCH_USE_PYTORCH is set), runs the parity and generation tests on the GPU, then
# scripts/gpu_bench.sh: our decode, training step and GRPO step against PyTorch/transformers
# (and TRL when its wheels are in .whl/), on `cuda` and `tch:cuda`, each report with its first
# (compiling, autotuning) run apart from the steady state; with two GPUs or more, also the NCCL
# build (`--features nccl`) training on two GPUs like one. On a GPU machine without Rust, build
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
  # several GPUs: the `nccl` build too (Burn's distributed feature; CUDA and wgpu only)
  if [ "$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')" -ge 2 ]; then
    cargo build --release --no-default-features --features nccl --target-dir "$target/nccl"
    cp "$target/nccl/release/mgrpo" .gpu/mgrpo-nccl
  fi
fi
if [ ! -x .gpu/mgrpo ]; then
  echo "gpu_check: no .gpu/mgrpo; build it where Rust is installed (this script does that) and copy .gpu/ here" >&2
  exit 1
fi
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu_check: nvidia-smi not found: this machine has no NVIDIA driver" >&2
  exit 1
fi
# NCCL, on two GPUs or more: two devices with one micro-batch each must train like one device
# with two (what tests/train.rs checks on the CPU with the host sum), on the copy task.
if [ -x .gpu/mgrpo-nccl ] && [ "$(nvidia-smi -L | grep -c '^GPU')" -ge 2 ]; then
  out="${OUT:-gpu-results}"
  mkdir -p "$out"
  rm -rf "$out/nccl-1" "$out/nccl-2"
  if ! .gpu/mgrpo-nccl train --device cuda --config configs/copy-grpo.toml --out "$out/nccl-1" \
    --set max_steps=4 --set gradient_accumulation_steps=2 2> "$out/nccl-1.err" \
    || ! timeout 300 .gpu/mgrpo-nccl train --device cuda --config configs/copy-grpo.toml \
    --out "$out/nccl-2" --set max_steps=4 --set gradient_accumulation_steps=1 \
    --set num_devices=2 2> "$out/nccl-2.err"; then
    echo "nccl: FAILED (see $out/nccl-1.err, $out/nccl-2.err)" | tee "$out/nccl.txt"
  else
  python3 - "$out/nccl-1" "$out/nccl-2" <<'PY' | tee "$out/nccl.txt"
import json, sys
runs = [[json.loads(l) for l in open(f"{d}/metrics.jsonl")] for d in sys.argv[1:]]
worst = 0.0
for a, b in zip(*runs):
    for k in ("loss", "grad_norm", "reward"):
        worst = max(worst, abs(a[k] - b[k]) / max(abs(a[k]), 1.0))
ok = len(runs[0]) == len(runs[1]) == 4 and worst < 1e-3
print(f"nccl: 2 GPUs vs 1, {len(runs[1])} steps, max relative difference {worst:.2e}: {'ok' if ok else 'FAILED'}")
PY
  fi
fi
exec bash scripts/gpu_bench.sh
