#!/usr/bin/env bash
# Seconds per step of the main job (configs/tiny-mgrpo.toml: MGRPO on the shipped model, two CPU
# threads) as it ran before the throughput work and with each part of it, alternately, ROUNDS
# times, STEPS steps each, evaluation off:
#   before   every operation composed of Burn ops (MGRPO_KERNELS=none), micro-batches in
#            rollout order (group_by_length=false), left-padded (padding_free=false)
#   kernels  the fused CPU kernels, rollout order, left-padded
#   grouped  the kernels and micro-batches grouped by length, left-padded
#   all      the kernels, grouped and packed (padding_free: the defaults)
# (VARIANTS="grouped all" runs only those.)
# Prints the median of steps 2.. of each variant (from metrics.jsonl: step_time, its stages and
# the padding fraction of the updates) and the speed-ups against `before`.
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
VARIANTS=${VARIANTS:-before kernels grouped all}
run() { # name, MGRPO_KERNELS, group_by_length, padding_free, round
  echo "[round $5] $1" >&2
  MGRPO_KERNELS=$2 "$MGRPO" train --config configs/tiny-mgrpo.toml --out "$OUT/$1-$5" \
    --set max_steps="$STEPS" --set eval_dataset= --set save_steps=1000 \
    --set group_by_length="$3" --set padding_free="$4" > /dev/null 2>&1
}
for r in $(seq "$ROUNDS"); do
  for v in $VARIANTS; do
    case $v in
      before) run before none false false "$r" ;;
      kernels) run kernels all false false "$r" ;;
      grouped) run grouped all true false "$r" ;;
      all) run all all true true "$r" ;;
      *) echo "unknown variant $v" >&2; exit 2 ;;
    esac
  done
done
python3 - "$OUT" <<'PY'
import glob, json, os, statistics, sys
keys = ["step_time", "time/generation", "time/scoring", "time/forward", "time/backward",
        "padding_fraction"]
res = {}
for d in sorted(glob.glob(os.path.join(sys.argv[1], "*-*"))):
    name = os.path.basename(d).rsplit("-", 1)[0]
    rows = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl"))][1:]
    res.setdefault(name, []).append({k: statistics.median(r[k] for r in rows) for k in keys})
print("| variant | " + " | ".join(keys) + " |")
print("|---|" + "---|" * len(keys))
med = {}
for name in ["before", "kernels", "grouped", "all"]:
    runs = res.get(name, [])
    if not runs:
        continue
    med[name] = {key: statistics.median(r[key] for r in runs) for key in keys}
    print(f"| {name} | " + " | ".join(f"{med[name][key]:.3f}" for key in keys) + " |")
for name in ["kernels", "grouped", "all"]:
    if "before" in med and name in med:
        print(f"steps per second, {name} vs before: "
              f"{med['before']['step_time'] / med[name]['step_time']:.2f}x")
PY
