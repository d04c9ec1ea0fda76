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

    python3 scripts/check_anatomy.py runs/table2/start/seed0/eval/test.jsonl ...

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
        return f"{100 * a / b:5.1f} %" if b else "    –"

    print(
        f"{path}: {len(rows)} problems | columns {pct(cols_ok, cols)} of {cols} | "
        f"steps {pct(steps_ok, steps)} of {steps} | flags wrong t1 {pct(flags[False], n[False])}"
        f" right t1 {pct(flags[True], n[True])} | fixes {pct(fixed, flags[False])}"
    )


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        anatomy(path)


if __name__ == "__main__":
    main()
