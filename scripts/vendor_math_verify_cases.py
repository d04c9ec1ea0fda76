#!/usr/bin/env python3
"""Vendor Math-Verify's public regression cases as JSONL (tests/fixtures/math-verify/cases.jsonl).

    python3 scripts/vendor_math_verify_cases.py PATH/TO/Math-Verify [COMMIT]

Reads the `@pytest.mark.parametrize` tables of tests/test_all.py, test_numina_cases.py and
test_open_thoughts.py with Python's `ast` (no code of theirs is run or copied) and writes one row
per case: `gold`, `pred`, `expected` (their verdict), `group` (the test function), and the
grader settings that function passes (`match_types`, `precision`, `allow_set_relation_comp`).
Data only; Math-Verify is Apache-2.0 (huggingface/Math-Verify, file LICENCE).
"""

import ast
import json
import sys
from pathlib import Path

SKIPPED = []
FILES = ["tests/test_all.py", "tests/test_numina_cases.py", "tests/test_open_thoughts.py"]


def call_settings(fn):
    """The keyword arguments of the `compare_strings(...)` call in a test function."""
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "compare_strings":
            out = {}
            for kw in node.keywords:
                try:
                    out[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:
                    out[kw.arg] = ast.unparse(kw.value)  # a parameter name
            return out
    return None


def cases(path):
    tree = ast.parse(path.read_text())
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        settings = call_settings(fn)
        if settings is None:
            continue
        for dec in fn.decorator_list:
            if not (isinstance(dec, ast.Call) and ast.unparse(dec.func).endswith("parametrize")):
                continue
            names = [n.strip() for n in ast.literal_eval(dec.args[0]).split(",")]
            for node in dec.args[1].elts:
                try:
                    row = ast.literal_eval(node)
                except ValueError:
                    SKIPPED.append(f"{path.name}:{node.lineno} (not a literal)")
                    continue
                values = dict(zip(names, row))
                s = {k: values.get(v, v) if isinstance(v, str) else v for k, v in settings.items()}
                yield {
                    "gold": values["gold"],
                    "pred": values["pred"],
                    "expected": int(values["expected"]),
                    "group": fn.name,
                    "match_types": s.get("match_types", ["latex", "expr"]),
                    "precision": s.get("precision", 6),
                    "allow_set_relation_comp": s.get("allow_set_relation_comp", False),
                }


def main():
    root = Path(sys.argv[1])
    commit = sys.argv[2] if len(sys.argv) > 2 else "unknown"
    out = Path(__file__).resolve().parent.parent / "tests/fixtures/math-verify/cases.jsonl"
    rows = [r for f in FILES for r in cases(root / f)]
    with out.open("w") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} cases from huggingface/Math-Verify@{commit} -> {out}")
    for s in SKIPPED:
        print(f"skipped {s}")


if __name__ == "__main__":
    main()
