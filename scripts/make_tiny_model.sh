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
#   6. model/ := the warm-started weights, config and tokenizer, and task/{train,test}.jsonl.
# About 75 minutes on 2 cores, nearly all of it steps 3 to 5.
#
#   bash scripts/make_tiny_model.sh            # builds target/release/mgrpo first
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release
mgrpo="${CARGO_TARGET_DIR:-target}/release/mgrpo"
work="runs/make-tiny-model"
rm -rf "$work"
mkdir -p "$work"

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

# Swap the new model in whole, keeping model/README.md.
rm -rf model.new
cp -r "$work/phase3/model" model.new
mkdir -p model.new/task
cp "$work/task/train.jsonl" "$work/task/test.jsonl" model.new/task/
cp model/README.md model.new/README.md
rm -rf model.old
mv model model.old
mv model.new model
rm -rf model.old
echo "model/ rebuilt; measure it with: $mgrpo eval --model model --data model/task/test.jsonl --template chatml --turns 2 --temperature 0.7"
