#!/usr/bin/env python3
"""transformers' own bf16 error on our parity fixtures: each fixture model in bfloat16 (weights
and activations; transformers keeps RMSNorm and softmax in f32, as we do) scores the fixture
rows, compared with the f32 log-probs in expected.json. This is the yardstick for the bf16
tolerance of tests/parity.rs (README, "GPU").

    python scripts/bf16_reference.py [--device cuda]
"""
import argparse
import json
import pathlib

import torch
from transformers import AutoModelForCausalLM

FIXTURES = ["gqa2-tied-f32-t4", "gqa4-untied-bf16-t5", "mha-untied-f16-sharded", "mqa-odd-tied-f32-t5"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    root = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
    worst, total, n = 0.0, 0.0, 0
    for name in FIXTURES:
        exp = json.loads((root / name / "expected.json").read_text())
        model = AutoModelForCausalLM.from_pretrained(root / name, dtype=torch.bfloat16).to(a.device).eval()
        for row in exp["rows"]:
            ids = torch.tensor([row["input_ids"]], device=a.device)
            with torch.no_grad():
                logits = model(input_ids=ids).logits[0, :-1].float()
            lp = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None])[:, 0].cpu()
            d = (lp - torch.tensor(row["logprobs"])).abs()
            worst, total, n = max(worst, float(d.max())), total + float(d.sum()), n + d.numel()
    print(json.dumps({"transformers_bf16_vs_f32": {"max": worst, "mean": total / n, "tokens": n},
                      "device": a.device, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
