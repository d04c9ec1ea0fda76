#!/usr/bin/env bash
# Everything the GPU issues measure on an NVIDIA GPU, in one go (`scripts/gpu_check.sh` builds
# and runs it in one command where Rust is installed): the parity and generation tests on
# CUDA, then ours and PyTorch/transformers (and TRL) side by side on the same shapes. Built on a
# machine with Rust, run on the GPU machine (CUDA 13, PyTorch, no Rust):
#
#   here:  CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda
#          CUDARC_CUDA_VERSION=13000 cargo test --release --features cuda --no-run --test parity --test generate
#          mkdir -p .gpu && cp target/release/mgrpo target/release/deps/{parity,generate}-<hash> .gpu/
#   there: OUT=results bash scripts/gpu_bench.sh   (TRL wheels in .whl/, optional)
#
# Each figure is one JSON line in $OUT/bench.jsonl; peak GPU memory (nvidia-smi, sampled every
# 100 ms) is added as "peak_gpu_mib".
set -uo pipefail
OUT="${OUT:-gpu-results}"
mkdir -p "$OUT"
BIN=.gpu/mgrpo
PY="${PYTHON:-python3}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"
# the test binaries read their fixtures from this checkout, wherever they were built
export MGRPO_REPO="$PWD"

# `measure NAME CMD...`: run CMD with a timeout, append its last JSON line + peak GPU memory
measure() {
  local name="$1"; shift
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$OUT/.mem" 2>/dev/null &
  local smi=$!
  local line
  local t0=$SECONDS
  line=$(timeout "${LIMIT:-240}" "$@" 2> "$OUT/$name.err" | grep '^{' | tail -1)
  echo "$name: $((SECONDS - t0)) s" >&2
  kill "$smi" 2>/dev/null; wait "$smi" 2>/dev/null
  local peak; peak=$(sort -n "$OUT/.mem" | tail -1)
  if [ -n "$line" ]; then
    echo "$line" | "$PY" -c "import json,sys; d=json.loads(sys.stdin.read()); d['name']='$name'; d['peak_gpu_mib']=int('${peak:-0}' or 0); print(json.dumps(d))" | tee -a "$OUT/bench.jsonl"
  else
    echo "{\"name\": \"$name\", \"failed\": true}" | tee -a "$OUT/bench.jsonl"; tail -5 "$OUT/$name.err"
  fi
}

# the tests run many small shapes once each: minimal kernel autotuning
for t in ${TESTS-parity generate}; do
  bin=$(ls .gpu/$t-* | grep -v '\.xz$' | head -1)
  CUBECL_AUTOTUNE_LEVEL=minimal timeout "${TEST_LIMIT:-300}" "$bin" --ignored --nocapture --test-threads 1 cuda \
    > "$OUT/test-$t.txt" 2>&1
  echo "$t: exit $?"; grep -E "^test |bf16|panicked|max" "$OUT/test-$t.txt" | head -20
done

# Our backends side by side: CubeCL's CUDA kernels (`cuda`) and libtorch's (`tch:cuda`, in a
# binary built with `--features cuda,tch`; without it that line is recorded as failed). Every
# report carries its first run apart (`first_run_ms` / `first_step_s`: kernel compilation and
# autotuning) from the steady state.
DEVICES="${DEVICES:-cuda tch:cuda}"
for shape in ${SHAPES:-qwen2.5-0.5b qwen2.5-1.5b}; do
  for batch in ${BATCHES:-1 16 64}; do
    for dev in $DEVICES; do
      measure "ours-$dev-generate-$shape-b$batch" $BIN bench generate --device "$dev" --dtype bf16 \
        --shape "$shape" --batch "$batch" --prompt 256 --new-tokens 256 --warmup 1 --iters 3
    done
    measure "torch-generate-$shape-b$batch" "$PY" scripts/bench_torch.py generate --device cuda --dtype bf16 \
      --shape "$shape" --batch "$batch" --prompt 256 --new-tokens 256 --warmup 1 --iters 3
  done
  for dev in $DEVICES; do
    measure "ours-$dev-train-$shape" $BIN bench train --device "$dev" --dtype bf16 --shape "$shape" --batch 8 \
      --seq 1024 --warmup 2 --iters 5
  done
  measure "torch-train-$shape" "$PY" scripts/bench_torch.py train --device cuda --dtype bf16 --shape "$shape" \
    --batch 8 --seq 1024 --warmup 2 --iters 5
done

if [ "${SKIP_GRPO:-0}" != 1 ]; then
  measure "ours-grpo-qwen2.5-0.5b" $BIN bench grpo --device cuda --dtype bf16 --shape qwen2.5-0.5b --batch 8 \
    --generations 8 --prompt 32 --new-tokens 256 --warmup 1 --iters 2
  if ls .whl/trl-*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
      && export PYTHONPATH=/tmp/site
    measure "trl-grpo-qwen2.5-0.5b" "$PY" scripts/bench_trl_grpo.py --device cuda --bf16 --shape qwen2.5-0.5b \
      --prompts 8 --generations 8 --prompt-len 32 --new-tokens 256 --steps 3
  fi
fi
rm -f "$OUT/.mem"; find "$OUT" -name '*.err' -size 0 -delete
