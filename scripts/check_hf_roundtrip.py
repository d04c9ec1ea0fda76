#!/usr/bin/env python3
"""Prove that transformers reloads what mgrpo saves, and gets the same numbers.

For every transformers fixture in tests/fixtures (the directories with an expected.json): `mgrpo convert` it to F32 and to BF16, load each saved
directory with `AutoModelForCausalLM.from_pretrained`, and compare
  (1) its logits with transformers' logits on the source directory (F32: must be identical;
      BF16: identical to the source weights rounded to bf16 by torch), and
  (2) its per-token log-probs with `mgrpo score` on the saved directory (|diff| <= 1e-4).
Prints the largest differences and exits non-zero on failure.

    cargo build --release && /tmp/venv/bin/python scripts/check_hf_roundtrip.py
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
from transformers import AutoModelForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def logits(model_dir, rows, cast_bf16=False):
    m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    if cast_bf16:
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(p.to(torch.bfloat16).float())
    out = []
    with torch.no_grad():
        for ids in rows:
            out.append(m(torch.tensor([ids])).logits[0].float())
    return out


def main():
    ap = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap.add_argument("--bin", default=os.path.join(target, "release", "mgrpo"))
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    fixtures_dir = os.path.join(ROOT, "tests", "fixtures")
    worst_logits, worst_lp, ok = 0.0, 0.0, True
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(os.listdir(fixtures_dir)):
            src = os.path.join(fixtures_dir, name)
            if not os.path.isfile(os.path.join(src, "config.json")) or not os.path.isfile(
                    os.path.join(src, "expected.json")):
                continue  # not a transformers fixture (copy-task/, data/, chat-templates/)
            rows = [r["input_ids"] for r in json.load(open(os.path.join(src, "expected.json")))["rows"]]
            inp = os.path.join(tmp, f"{name}.jsonl")
            with open(inp, "w") as fh:
                fh.writelines(json.dumps({"input_ids": r}) + "\n" for r in rows)
            for dtype in ["f32", "bf16"]:
                out = os.path.join(tmp, f"{name}-{dtype}")
                subprocess.run([a.bin, "convert", "--model", src, "--out", out, "--dtype", dtype,
                                "--device", a.device], check=True)
                ref = logits(src, rows, cast_bf16=(dtype == "bf16"))
                got = logits(out, rows)
                d_logits = max(float((x - y).abs().max()) for x, y in zip(ref, got))
                ours = subprocess.run([a.bin, "score", "--model", out, "--input", inp, "--device", a.device],
                                      check=True, capture_output=True, text=True).stdout.splitlines()
                d_lp = 0.0
                for ids, lg, line in zip(rows, got, ours):
                    hf = torch.log_softmax(lg, -1)[:-1].gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]
                    d_lp = max(d_lp, float((hf - torch.tensor(json.loads(line)["logprobs"])).abs().max()))
                print(f"{name:28s} {dtype:5s} max|logits saved - source| = {d_logits:.3g}   "
                      f"max|logprob transformers - mgrpo| = {d_lp:.3g}")
                worst_logits, worst_lp = max(worst_logits, d_logits), max(worst_lp, d_lp)
                ok &= d_logits == 0.0 and d_lp <= 1e-4
    print(f"worst: logits {worst_logits:.3g}, log-probs {worst_lp:.3g} -> {'OK' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
