#!/usr/bin/env bash
# The headroom of a start model before any RL (model/README.md): greedy, T 0.7 (two turns) and
# 8 samples at T 1 on the held-out split, summarised by family with scripts/headroom.py.
#
#   bash scripts/headroom.sh [MODEL [OUT]]      # defaults: model, runs/headroom/<model name>
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-model}"
out="${2:-runs/headroom/$(basename "$model")}"
mgrpo="${MGRPO:-${CARGO_TARGET_DIR:-target}/release/mgrpo}"
data="${DATA:-model/task/test.jsonl}"
common=(--model "$model" --data "$data" --template chatml --max-new-tokens 192 --batch-size 128 --overwrite)
mkdir -p "$out"
"$mgrpo" eval "${common[@]}" --turns 1 --temperature 0 --out "$out/greedy" >/dev/null 2>"$out/log.txt"
"$mgrpo" eval "${common[@]}" --turns 2 --temperature 0.7 --out "$out/t07" >/dev/null 2>>"$out/log.txt"
"$mgrpo" eval "${common[@]}" --turns 1 --temperature 1 --samples 8 --out "$out/t10x8" \
  >/dev/null 2>>"$out/log.txt"
name="$(basename "$data" .jsonl)"
python3 scripts/headroom.py "$out/greedy/$name.jsonl" "$out/t07/$name.jsonl" "$out/t10x8/$name.jsonl" \
  | tee "$out/headroom.md"
