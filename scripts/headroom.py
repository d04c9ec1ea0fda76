#!/usr/bin/env python3
"""Headroom of a start model, by family, from `mgrpo eval` answer files (stdlib only).

    python3 scripts/headroom.py GREEDY.jsonl T07.jsonl T10x8.jsonl

GREEDY: `--temperature 0 --turns 1`; T07: `--temperature 0.7 --turns 2`; T10x8:
`--temperature 1 --turns 1 --samples 8`. Prints one markdown row per family and one for all:
greedy Acc@t1, Acc@t1 and Acc@t2 at T 0.7, pass@1/2/4/8 at T 1 (the unbiased estimator of
Chen et al. 2021 from the 8 samples), and the share of first answers that are a bare
`\\boxed{…}` with no working (the noisy teacher's shortcut), with Acc@t1 of those and of the
worked answers. scripts/headroom.sh runs the three
evaluations and this.
"""
import json
import sys
from collections import defaultdict
from math import comb


def rows(path):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not JSON ({e})")


def shortcut(text):
    return text.lstrip().startswith("\\boxed")


def pass_at(n, c, k):
    """P(at least one of k draws without replacement from n samples, c right, is right)."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def main(greedy, t07, t10):
    fam = defaultdict(lambda: defaultdict(list))
    for r in rows(greedy):
        for f in (r["family"], "all"):
            fam[f]["greedy"].append(r["turn1_correct"])
    for r in rows(t07):
        for f in (r["family"], "all"):
            fam[f]["t1"].append(r["turn1_correct"])
            fam[f]["t2"].append(r.get("turn2_correct", False))
            fam[f]["short"].append(shortcut(r["turn1"]))
            fam[f]["short_ok" if shortcut(r["turn1"]) else "work_ok"].append(r["turn1_correct"])
    samples = defaultdict(list)
    family = {}
    for r in rows(t10):
        samples[r["id"]].append(r["turn1_correct"])
        family[r["id"]] = r["family"]
    ks = (1, 2, 4, 8)
    for pid, v in samples.items():
        for f in (family[pid], "all"):
            for k in ks:
                if k <= len(v):
                    fam[f][f"pass@{k}"].append(pass_at(len(v), sum(v), k))
    pct = lambda v: f"{100 * sum(v) / len(v):.1f}" if v else "–"
    head = ["family", "N", "greedy", "T0.7 Acc@t1", "T0.7 Acc@t2", "shortcut share (T0.7)"]
    head += ["Acc@t1 of shortcuts (T0.7)", "Acc@t1 of worked answers (T0.7)"]
    head += [f"pass@{k} (T1)" for k in ks]
    print("| " + " | ".join(head) + " |")
    print("|---" + "|---:" * (len(head) - 1) + "|")
    for f in sorted(fam, key=lambda x: (x == "all", x)):
        d = fam[f]
        cells = [f, str(len(d["t1"])), pct(d["greedy"]), pct(d["t1"]), pct(d["t2"]), pct(d["short"])]
        cells += [pct(d["short_ok"]), pct(d["work_ok"])]
        cells += [pct(d[f"pass@{k}"]) for k in ks]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
