#!/usr/bin/env bash
# Rebuild the shipped tiny model (model/) from nothing, reproducibly (same seeds, same files on
# the same CPU backend):
#   1. `mgrpo task`: the arithmetic task's train/test splits and the warm-start corpus;
#   2. `mgrpo init`: a byte-level BPE tokenizer trained on the corpus and a freshly initialised
#      Qwen2 (1.05 M parameters: hidden 128, 4 layers, 4 heads, 2 KV heads, vocab 512);
#   3. `mgrpo sft --config configs/tiny-warmstart.toml`: the warm start, phase 1 (solving; 8 %
#      self-correction traces);
#   4. `mgrpo task --trace-share 0.4` (same seed: the same splits, a corpus with 40 % traces) and
#      `mgrpo sft --config configs/tiny-warmstart-checks.toml`: phase 2 (checking);
#   5. `mgrpo task --trace-share 0.7` and `mgrpo sft --config configs/tiny-warmstart-phase3.toml`:
#      phase 3 (600 more steps of checking, which makes the checks pay: docs/RESULTS.md);
#   6. `mgrpo task --trace-share 0.3 --shortcut-share 0.5` and
#      `mgrpo sft --config configs/tiny-warmstart-phase4.toml`: phase 4, the noisy teacher (half
#      the plain solutions give the bare answer: the RL headroom, model/README.md);
#   7. model/ := the warm-started weights, config and tokenizer, and task/{train,test}.jsonl.
# About 80 minutes on 2 cores, nearly all of it steps 3 to 6 (phase 4 alone: 3 minutes;
# PHASE4_FROM=DIR runs only it, from a phase-3 model such as the one model/ held before).
#
#   bash scripts/make_tiny_model.sh            # builds target/release/mgrpo first
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release
mgrpo="${CARGO_TARGET_DIR:-target}/release/mgrpo"
work="runs/make-tiny-model"
if [ -n "${PHASE4_FROM:-}" ]; then
  # keep phases 1-3's outputs: only the phase-3 model is read
  rm -rf "$work/task" "$work/task-phase4" "$work/phase4"
  mkdir -p "$work"
  phase3="$PHASE4_FROM"
else
  rm -rf "$work"
  mkdir -p "$work"
  phase3="$work/phase3/model"
fi

if [ -z "${PHASE4_FROM:-}" ]; then
"$mgrpo" task --out "$work/task" --seed 0
"$mgrpo" init --corpus "$work/task/sft.jsonl" --out "$work/init" --seed 0
"$mgrpo" sft --config configs/tiny-warmstart.toml --out "$work/warmstart" \
  --set model="$work/init" --set dataset="$work/task/sft.jsonl"
"$mgrpo" task --out "$work/task-checks" --seed 0 --trace-share 0.4
cmp -s "$work/task/test.jsonl" "$work/task-checks/test.jsonl"   # same held-out split
"$mgrpo" sft --config configs/tiny-warmstart-checks.toml --out "$work/checks" \
  --set model="$work/warmstart/model" --set dataset="$work/task-checks/sft.jsonl"
"$mgrpo" task --out "$work/task-phase3" --seed 0 --trace-share 0.7
cmp -s "$work/task/test.jsonl" "$work/task-phase3/test.jsonl"
"$mgrpo" sft --config configs/tiny-warmstart-phase3.toml --out "$work/phase3" \
  --set model="$work/checks/model" --set dataset="$work/task-phase3/sft.jsonl"
else
"$mgrpo" task --out "$work/task" --seed 0 --sft 0
fi
"$mgrpo" task --out "$work/task-phase4" --seed 0 --trace-share 0.3 --shortcut-share 0.5
cmp -s "$work/task/test.jsonl" "$work/task-phase4/test.jsonl"
"$mgrpo" sft --config configs/tiny-warmstart-phase4.toml --out "$work/phase4" \
  --set model="$phase3" --set dataset="$work/task-phase4/sft.jsonl"

# Swap the new model in whole, keeping model/README.md.
rm -rf model.new
cp -r "$work/phase4/model" model.new
mkdir -p model.new/task
cp "$work/task/train.jsonl" "$work/task/test.jsonl" model.new/task/
cp model/README.md model.new/README.md
rm -rf model.old
mv model model.old
mv model.new model
rm -rf model.old
echo "model/ rebuilt; measure it with: $mgrpo eval --model model --data model/task/test.jsonl --template chatml --turns 2 --temperature 0.7"
