#!/usr/bin/env python3
"""Grade a labelled JSONL with HF Math-Verify and with `mgrpo verify`, side by side.

Each row needs a gold answer (`gold`), a completion (`completion` or `pred`) and a label
(`correct`, `expected` or `label`: true/false or 1/0); an optional `extraction` (anchored,
last_math, last_number) picks mgrpo's extraction policy for that row (default: last_math,
`mgrpo verify --input`'s own default). Prints each grader's agreement with the labels (with
95 % Wilson intervals), how often each is right where the other is wrong, and every row on
which the two disagree.

    pip install math-verify            # 0.9.0 was used for the figures in the docs
    cargo build --release
    python3 scripts/compare_math_verify.py tests/fixtures/verify/completions.jsonl

Math-Verify parses the gold with its default extraction (LaTeX and plain expressions), the way
TRL's and open-r1's accuracy rewards call it; a bare gold answer (no `$`, `\\boxed`, `\\(` or
`\\[`) is wrapped in `$…$` first, as its README does. Extra arguments after the file are passed
to `mgrpo verify` (for example `--policy decimal_approximations=true`).
"""
import json
import math
import os
import subprocess
import sys
import tempfile

from math_verify import parse, verify


def label_of(row, line):
    for key in ("correct", "expected", "label"):
        if key in row:
            v = row[key]
            if isinstance(v, bool):
                return v
            if v in (0, 1):
                return bool(v)
            sys.exit(f"line {line}: `{key}` must be true/false or 1/0, got {v!r}")
    sys.exit(f"line {line}: no label (correct, expected or label)")


def wilson(k, n, z=1.96):
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (100 * (c - h), 100 * (c + h))


def math_verify_grade(gold, pred):
    bare = not any(m in gold for m in ("$", "\\boxed", "\\(", "\\["))
    try:
        g = parse(f"${gold}$" if bare else gold)
        p = parse(pred)
        return bool(verify(g, p)), (str(p[1]) if len(p) > 1 else str(p[0]) if p else None)
    except Exception as e:  # Math-Verify raises on some inputs; count it as wrong
        return False, f"error: {type(e).__name__}"


def mgrpo_grade(rows, extraction, binary, extra):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for r in rows:
            f.write(json.dumps({"gold": r["gold"], "pred": r["pred"]}) + "\n")
        path = f.name
    try:
        cmd = [binary, "verify", "--input", path, "--policy", f"extraction={extraction}", *extra]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
        return [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
    finally:
        os.unlink(path)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    path, extra = sys.argv[1], sys.argv[2:]
    binary = os.environ.get("MGRPO", "target/release/mgrpo")
    rows = []
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{i}: not JSON: {e}")
            pred = r.get("completion", r.get("pred"))
            if not isinstance(r.get("gold"), str) or not isinstance(pred, str):
                sys.exit(f"{path}:{i}: needs string fields `gold` and `completion` (or `pred`)")
            rows.append(dict(line=i, gold=r["gold"], pred=pred, label=label_of(r, i),
                             extraction=r.get("extraction", "last_math")))
    ours = [None] * len(rows)
    for extraction in sorted({r["extraction"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["extraction"] == extraction]
        for i, v in zip(idx, mgrpo_grade([rows[i] for i in idx], extraction, binary, extra)):
            ours[i] = v
    theirs = [math_verify_grade(r["gold"], r["pred"]) for r in rows]
    n = len(rows)
    ok_ours = sum(o["correct"] == r["label"] for o, r in zip(ours, rows))
    ok_theirs = sum(t[0] == r["label"] for t, r in zip(theirs, rows))
    only_ours = sum(o["correct"] == r["label"] != t[0] for o, t, r in zip(ours, theirs, rows))
    only_theirs = sum(t[0] == r["label"] != o["correct"] for o, t, r in zip(ours, theirs, rows))
    print(f"{path}: {n} labelled rows")
    for name, k in (("mgrpo", ok_ours), ("Math-Verify", ok_theirs)):
        lo, hi = wilson(k, n)
        print(f"  {name:<12} agrees with the labels on {k}/{n} = {100 * k / n:.1f} % "
              f"(95 % CI {lo:.1f}-{hi:.1f})")
    print(f"  right where the other is wrong: mgrpo {only_ours}, Math-Verify {only_theirs}")
    print("\nrows where the two disagree:")
    for o, t, r in zip(ours, theirs, rows):
        if o["correct"] != t[0]:
            print(f"- line {r['line']} (label {r['label']}): mgrpo {o['correct']} "
                  f"(answer {o.get('pred_answer')!r}), Math-Verify {t[0]} (parsed {t[1]!r}); "
                  f"gold {r['gold']!r}")


if __name__ == "__main__":
    main()
