#!/usr/bin/env python3
"""Mean ± std over seeds of the runs scripts/laptop_table2.sh left in RUN_DIR (default
runs/table2): one Markdown row per method, in percent, plus the wall time of a run.

    python3 scripts/table2_summary.py [RUN_DIR]

Standard library only. The std is the sample standard deviation (n - 1) over the seeds."""

import json
import statistics
import sys
from pathlib import Path

ROWS = [
    ("start", "Start model (warm-started SFT)"),
    ("intrinsic", "Intrinsic self-correction (prompt only)"),
    ("star", "STaR"),
    ("star-external", "STaR with external prompts"),
    ("ppo", "PPO (one round)"),
    ("grpo", "GRPO (one round)"),
    ("mgrpo", "MGRPO"),
    ("igrpo", "iGRPO"),
]
KEYS = ["acc_t1", "acc_t2", "delta", "delta_i_to_c", "delta_c_to_i"]


def fmt(xs, scale=100.0, digits=1):
    xs = [scale * x for x in xs]
    mean = statistics.mean(xs)
    if len(xs) < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(xs):.{digits}f}"


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/table2")
    print("| Method | seeds | Acc@t1 | Acc@t2 | Δ(t1,t2) | Δi→c | Δc→i | wall time (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for key, name in ROWS:
        seeds = sorted((root / key).glob("seed*/eval/summary.json"))
        if not seeds:
            continue
        metrics = [json.loads(p.read_text())["rows"][0]["metrics"] for p in seeds]
        walls = [float((p.parent.parent / "wall_s").read_text()) for p in seeds]
        cells = [fmt([m[k] for m in metrics]) for k in KEYS]
        print(f"| {name} | {len(seeds)} | " + " | ".join(cells) + f" | {fmt(walls, 1.0, 0)} |")


if __name__ == "__main__":
    main()
