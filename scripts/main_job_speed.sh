#!/usr/bin/env bash
# Seconds per step of the main job (configs/tiny-mgrpo.toml: MGRPO on the shipped model, two CPU
# threads) with the fused CPU kernels and with every operation composed of Burn ops
# (MGRPO_KERNELS=none: the trainer as it ran before the kernels), alternately, ROUNDS times,
# STEPS steps each, evaluation off. Prints the median of steps 2.. of each run (from
# metrics.jsonl: step_time and its stages) and the ratio.
#
#   bash scripts/main_job_speed.sh              # STEPS=8 ROUNDS=2
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-8}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-runs/main-job-speed}
MGRPO=${MGRPO:-./target/release/mgrpo}
[ -x "$MGRPO" ] || cargo build --release
rm -rf "$OUT"
for r in $(seq "$ROUNDS"); do
  for k in none all; do
    echo "[round $r] kernels: $k" >&2
    MGRPO_KERNELS=$k "$MGRPO" train --config configs/tiny-mgrpo.toml --out "$OUT/$k-$r" \
      --set max_steps="$STEPS" --set eval_dataset= --set save_steps=1000 > /dev/null 2>&1
  done
done
python3 - "$OUT" <<'EOF'
import glob, json, os, statistics, sys
keys = ["step_time", "time/generation", "time/scoring", "time/forward", "time/backward"]
res = {}
for d in sorted(glob.glob(os.path.join(sys.argv[1], "*-*"))):
    kernels = os.path.basename(d).rsplit("-", 1)[0]
    rows = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl"))][1:]
    res.setdefault(kernels, []).append({k: statistics.median(r[k] for r in rows) for k in keys})
print("| kernels | " + " | ".join(keys) + " |")
print("|---|" + "---|" * len(keys))
med = {}
for k, runs in res.items():
    med[k] = {key: statistics.median(r[key] for r in runs) for key in keys}
    print(f"| {k} | " + " | ".join(f"{med[k][key]:.2f}" for key in keys) + " |")
if "none" in med and "all" in med:
    print(f"\nsteps per second, kernels vs none: {med['none']['step_time'] / med['all']['step_time']:.2f}x")
EOF
