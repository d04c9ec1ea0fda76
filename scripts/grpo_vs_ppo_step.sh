#!/usr/bin/env bash
# One GRPO step against one PPO step on the main job's model (docs/RESULTS.md, "GRPO against
# PPO"): the same rollouts (configs/tiny-grpo.toml's 24 questions × 8 answers), each run for
# STEPS steps on one device, with the mean seconds per step (steps 2.., from metrics.jsonl) and
# the peak resident memory of the process (/usr/bin/time -v). The critic is what GRPO saves.
#
#   bash scripts/grpo_vs_ppo_step.sh            # ~6 min on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
mgrpo="${CARGO_TARGET_DIR:-target}/release/mgrpo"
out="${OUT:-runs/grpo-vs-ppo}"
steps="${STEPS:-4}"
common=(--set max_steps="$steps" --set eval_steps=0 --set eval_limit=8 --set save_steps=0)

run() { # NAME CONFIG [SETS...]
  rm -rf "$out/$1"
  mkdir -p "$out/$1"
  /usr/bin/time -v "$mgrpo" train --config "$2" --out "$out/$1/run" "${common[@]}" "${@:3}" \
    >/dev/null 2>"$out/$1/log.txt"
  python3 - "$out/$1" <<'PY'
import json, re, sys
d = sys.argv[1]
rows = [json.loads(l) for l in open(f"{d}/run/metrics.jsonl")]
later = rows[1:] or rows
mean = lambda k: sum(r[k] for r in later) / len(later)
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{d}/log.txt").read())
print(f"{d.split('/')[-1]:<22} {mean('step_time'):7.1f} s/step  generation {mean('time/generation'):5.1f}"
      f"  scoring {mean('time/scoring'):5.1f}  update {mean('time/forward') + mean('time/backward') + mean('time/optimizer'):5.1f}"
      f"  peak RSS {int(rss.group(1)) / 1024:6.0f} MiB")
PY
}

run grpo configs/tiny-grpo.toml --set num_devices=1 --set gradient_accumulation_steps=2
run grpo-kl configs/tiny-grpo.toml --set num_devices=1 --set gradient_accumulation_steps=2 \
  --set beta=0.05
run ppo configs/tiny-ppo.toml
run ppo-4-epochs configs/tiny-ppo.toml --set num_ppo_epochs=4 --set num_mini_batches=1
