#!/usr/bin/env python3
"""How reliable are the shipped task's turn-2 checks? Reads per-problem evaluation JSONL
(`mgrpo eval --out DIR` writes DIR/test.jsonl; `turn1`, `turn2`, `turn1_correct`,
`turn2_correct`) and measures the check procedure the warm start teaches (model/README.md):

    Check:
    87 + 36: 7 + 6 = 13, 8 + 3 + 1 = 12, so 123. right.
    123 + 72: 3 + 2 = 5, 2 + 7 = 9, 1 + 0 = 1, so 195. wrong.
    \\boxed{195}

  columns  share of column facts ("7 + 6 = 13", "9 - 1 - 3 = 5", "7 * 7 = 49") that are true
  steps    share of checked steps whose result ("so 123") is the true value of the step
  flags    of the problems whose first answer was wrong (right), the share whose check marks
           some step "wrong": the check's sensitivity (false-alarm rate)
  fixes    of the flagged wrong first answers, the share whose turn 2 ends right

    python3 scripts/check_anatomy.py runs/table2/start/seed*/eval/test.jsonl   # + their mean

Standard library only."""

import json
import re
import sys

STEP = re.compile(r"(\d+) ([-+*/]) (\d+): (.*), so (-?\d+)\. (right|wrong)")
LINEAR = re.compile(r"(\d+) \* (-?\d+) = (-?\d+), (-?\d+) ([-+]) (\d+) = (-?\d+)\. (right|wrong)")
FACT = re.compile(r"(\d+) ([-+*]) (\d+)(?: ([-+]) (\d+))? = (-?\d+)")


def true_fact(x, op, y, op2, z):
    v = x + y if op == "+" else x - y if op == "-" else x * y
    if op2:
        v = v + z if op2 == "+" else v - z
    return v


def check_lines(text):
    """(columns right, columns, steps right, steps, flagged) of one turn-2 text."""
    cols_ok = cols = steps_ok = steps = 0
    flagged = False
    for line in text.split("\n"):
        m = STEP.search(line)
        if m:
            a, op, b, facts, result, verdict = m.groups()
            a, b, result = int(a), int(b), int(result)
            true = {"+": a + b, "-": a - b, "*": a * b, "/": a // b if b else None}[op]
            steps += 1
            steps_ok += result == true
            for f in facts.split(", "):
                fm = FACT.fullmatch(f.strip())
                if fm:
                    x, o, y, o2, z, v = fm.groups()
                    cols += 1
                    cols_ok += true_fact(int(x), o, int(y), o2, int(z or 0)) == int(v)
            flagged |= verdict == "wrong"
            continue
        m = LINEAR.search(line)
        if m:
            a, x, ax, ax2, op, b, c, verdict = m.groups()
            steps += 1
            ok = int(a) * int(x) == int(ax) and int(ax2) == int(ax)
            ok = ok and (int(ax) + int(b) if op == "+" else int(ax) - int(b)) == int(c)
            steps_ok += ok
            flagged |= verdict == "wrong"
    return cols_ok, cols, steps_ok, steps, flagged


def anatomy(path):
    """The five shares of one evaluation file, in percent (None where undefined)."""
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    cols_ok = cols = steps_ok = steps = 0
    n = {True: 0, False: 0}
    flags = {True: 0, False: 0}
    fixed = 0
    for r in rows:
        c_ok, c, s_ok, s, flagged = check_lines(r.get("turn2") or "")
        cols_ok, cols, steps_ok, steps = cols_ok + c_ok, cols + c, steps_ok + s_ok, steps + s
        t1 = bool(r["turn1_correct"])
        n[t1] += 1
        flags[t1] += flagged
        if flagged and not t1 and r["turn2_correct"]:
            fixed += 1

    def pct(a, b):
        return 100 * a / b if b else None

    return len(rows), [
        pct(cols_ok, cols),
        pct(steps_ok, steps),
        pct(flags[False], n[False]),
        pct(flags[True], n[True]),
        pct(fixed, flags[False]),
    ]


NAMES = ["columns", "steps", "flags wrong t1", "flags right t1", "fixes"]


def line(label, shares):
    def fmt(v):
        return f"{v:5.1f} %" if v is not None else "    –"

    return f"{label}: " + " | ".join(f"{k} {fmt(v)}" for k, v in zip(NAMES, shares))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    per_file = []
    for path in sys.argv[1:]:
        n, shares = anatomy(path)
        per_file.append(shares)
        print(line(f"{path} ({n} problems)", shares))
    if len(per_file) > 1:
        means = []
        for i in range(len(NAMES)):
            vals = [s[i] for s in per_file if s[i] is not None]
            means.append(sum(vals) / len(vals) if vals else None)
        print(line(f"mean of {len(per_file)} files", means))


if __name__ == "__main__":
    main()
