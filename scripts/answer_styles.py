#!/usr/bin/env python3
"""How each row of a laptop Table 2 answers in turn 1: bare (`\\boxed{…}` with no working, the
noisy teacher's shortcut) or worked, and how often each kind is right, by family (stdlib only).

    python3 scripts/answer_styles.py --export runs/table2 docs/table2   # keep what it needs
    python3 scripts/answer_styles.py docs/table2                        # the table

--export reads every <row>/seed<N>/eval/test.jsonl that `mgrpo eval` wrote (with the answers'
text) and writes <row>/seed<N>/styles.jsonl beside `mgrpo table2 --export`'s verdicts: one
line per problem, {"id", "bare": [one 0/1 per sample, in sample order]}. The table joins it
with the verdicts (<row>/seed<N>/eval/test.jsonl: family, turn1_correct) and pools seeds,
problems and samples (shares in percent).
"""
import json
import sys
from collections import defaultdict
from pathlib import Path

# the reader and the meaning of "bare" are headroom.py's (this file's directory is on sys.path)
from headroom import rows as read_jsonl, shortcut


def export(src, dst):
    files = sorted(Path(src).glob("*/seed*/eval/test.jsonl"))
    if not files:
        sys.exit(f"{src}: no <row>/seed<N>/eval/test.jsonl")
    for f in files:
        seed_dir = f.parent.parent
        out = Path(dst) / seed_dir.relative_to(src) / "styles.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        bare = {}
        for r in read_jsonl(f):
            flags = bare.setdefault(r["id"], {})
            flags[r.get("sample", 0)] = int(shortcut(r["turn1"]))
        lines = [
            json.dumps({"id": pid, "bare": [flags[k] for k in sorted(flags)]}, separators=(",", ":"))
            for pid, flags in bare.items()
        ]
        tmp = out.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(out)
    print(f"wrote styles for {len(files)} evaluations under {dst}")


def table(root):
    stats = defaultdict(lambda: defaultdict(list))
    seeds = defaultdict(set)
    for f in sorted(Path(root).glob("*/seed*/styles.jsonl")):
        row = f.parent.parent.name
        seeds[row].add(f.parent.name)
        bare = {r["id"]: r["bare"] for r in read_jsonl(f)}
        verdicts = f.parent / "eval" / "test.jsonl"
        for r in read_jsonl(verdicts):
            flags = bare.get(r["id"])
            k = r.get("sample", 0)
            if flags is None or k >= len(flags):
                sys.exit(f"{f}: no style for {r['id']} sample {k} of {verdicts}")
            b = bool(flags[k])
            for fam in (r.get("family", "all"), "all"):
                d = stats[(row, fam)]
                d["bare"].append(b)
                d["bare_ok" if b else "worked_ok"].append(r["turn1_correct"])
    if not stats:
        sys.exit(f"{root}: no <row>/seed<N>/styles.jsonl (run --export first)")
    pct = lambda v: f"{100 * sum(v) / len(v):.1f}" if v else "–"
    print("| row | family | seeds | answers | bare answers | Acc@t1 of bare | Acc@t1 of worked |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (row, fam) in sorted(stats, key=lambda k: (k[0], k[1] == "all", k[1])):
        d = stats[(row, fam)]
        print(f"| {row} | {fam} | {len(seeds[row])} | {len(d['bare'])} | {pct(d['bare'])} | "
              f"{pct(d['bare_ok'])} | {pct(d['worked_ok'])} |")


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "--export":
        export(a[1], a[2])
    elif len(a) == 1 and not a[0].startswith("-"):
        table(a[0])
    else:
        sys.exit(__doc__)
