#!/usr/bin/env bash
# mgrpo against its peers on the same CPU cores, alternately in one invocation, on bench-small
# (vocab 4096, hidden 256, 4 layers, 8/2 heads, MLP 704, tied), 2 threads:
#   score     8 × 128 tokens            vs PyTorch eager (transformers forward + log-softmax)
#   train     8 × 128, fwd + bwd + AdamW vs PyTorch eager
#   gen-b8    greedy, batch 8, prompt 32, 128 new   vs transformers `generate`
#   gen-b32   the same at batch 32
#   grpo      8 prompts × G 8, 64 new   vs TRL `GRPOTrainer` (HF generation; skipped without trl)
# Each pair runs ROUNDS times (ours, peer, ours, peer, …); the table gives each side's median and
# the ratio (> 1: we are faster). Raw JSON lines go to $OUT/raw.jsonl.
#
#   PY=/path/to/venv/bin/python ROUNDS=2 bash scripts/bench_vs_peers.sh
#   (pip install -r scripts/requirements.txt; pip install trl for the grpo row)
#   ONLY="score train" bash scripts/bench_vs_peers.sh     # a subset
#   MGRPO=/path/to/other/mgrpo bash scripts/bench_vs_peers.sh   # another build of ours
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
ROUNDS=${ROUNDS:-2}
ONLY=${ONLY:-"score train gen-b8 gen-b32 grpo"}
OUT=${OUT:-runs/bench-vs-peers}
MGRPO=${MGRPO:-./target/release/mgrpo}
export OMP_NUM_THREADS=2 RAYON_NUM_THREADS=2
mkdir -p "$OUT"
[ -x "$MGRPO" ] || cargo build --release
: > "$OUT/raw.jsonl"

row() { # name, ours..., --, peer...
  local name=$1; shift
  local ours=() peer=() seen=0
  for a in "$@"; do
    if [ "$a" = "--" ]; then seen=1; elif [ $seen = 0 ]; then ours+=("$a"); else peer+=("$a"); fi
  done
  for r in $(seq "$ROUNDS"); do
    echo "[$name round $r] ours" >&2
    "${ours[@]}" 2>/dev/null | tail -n 1 | sed "s/^{/{\"row\":\"$name\",\"side\":\"ours\",/" >> "$OUT/raw.jsonl"
    echo "[$name round $r] peer" >&2
    "${peer[@]}" 2>/dev/null | tail -n 1 | sed "s/^{/{\"row\":\"$name\",\"side\":\"peer\",/" >> "$OUT/raw.jsonl"
  done
}

for w in $ONLY; do
  case $w in
    score) row score "$MGRPO" bench score --iters 20 -- \
             "$PY" scripts/bench_torch.py score --threads 2 --iters 20 ;;
    train) row train "$MGRPO" bench train --iters 10 -- \
             "$PY" scripts/bench_torch.py train --threads 2 --iters 10 ;;
    gen-b8) row gen-b8 "$MGRPO" bench generate --batch 8 --iters 3 --warmup 1 -- \
             "$PY" scripts/bench_torch.py generate --batch 8 --threads 2 --iters 3 --warmup 1 ;;
    gen-b32) row gen-b32 "$MGRPO" bench generate --batch 32 --iters 3 --warmup 1 -- \
             "$PY" scripts/bench_torch.py generate --batch 32 --threads 2 --iters 3 --warmup 1 ;;
    grpo)
      if "$PY" -c "import trl" 2>/dev/null; then
        row grpo "$MGRPO" bench grpo --batch 8 --generations 8 --prompt 32 --new-tokens 64 --warmup 1 --iters 4 -- \
          "$PY" scripts/bench_trl_grpo.py --steps 5
      else
        echo "grpo: trl is not installed for $PY; skipped" >&2
      fi ;;
    *) echo "unknown row $w" >&2; exit 2 ;;
  esac
done

"$PY" - "$OUT/raw.jsonl" <<'EOF'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    # throughput where there is one (higher is better), else seconds per step (lower is better)
    v = r.get("tokens_per_s") or r.get("step_s")
    if v is None:
        continue
    rows.setdefault(r["row"], {"ours": [], "peer": [], "unit": "tok/s" if "tokens_per_s" in r else "s/step"})
    rows[r["row"]][r["side"]].append(v)
print("| work | unit | mgrpo (runs) | peer (runs) | ratio, ours vs peer |")
print("|---|---|---|---|---|")
for name, r in rows.items():
    if not r["ours"] or not r["peer"]:
        continue
    o, p = statistics.median(r["ours"]), statistics.median(r["peer"])
    ratio = o / p if r["unit"] == "tok/s" else p / o
    fmt = lambda xs: ", ".join(f"{x:.0f}" if r["unit"] == "tok/s" else f"{x:.2f}" for x in xs)
    print(f"| {name} | {r['unit']} | {fmt(r['ours'])} | {fmt(r['peer'])} | {ratio:.2f}× |")
EOF
