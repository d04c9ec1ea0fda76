#!/usr/bin/env python3
"""Make tests/fixtures/gqa2-tied-f32-t4/temperature.json: the log-probs a GRPO trainer must
train on when completions are sampled at temperature T.

TRL's GRPOTrainer computes the policy's, the old policy's and the reference model's per-token
log-probs as log_softmax(logits / T) -- the distribution the completions were drawn from. This
script loads the committed fixture checkpoint with transformers and records, for a few
(prompt, completion) rows, log_softmax(logits / T) of each completion token for T = 0.7 (and
T = 1.0, for contrast), one row at a time, in float32 on CPU.

Usage (from the repository root):
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r scripts/requirements.txt
    /tmp/venv/bin/python scripts/make_temperature_fixture.py
"""
import json
import os

import torch
import transformers
from transformers import AutoModelForCausalLM

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                       "gqa2-tied-f32-t4")
ROWS = [
    ([129, 35, 7], [80, 12, 200]),
    ([5], [9, 10, 11, 12]),
    ([250, 1, 2, 3, 4, 60], [77]),
]
TEMPERATURES = [0.7, 1.0]


def completion_logprobs(model, prompt, completion, temperature):
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logits = model(ids).logits.float()
    logp = torch.log_softmax(logits / temperature, dim=-1)
    # position j predicts token j + 1: the completion's tokens are predicted from len(prompt) - 1
    lp = logp[0, :-1].gather(-1, ids[0, 1:, None])[:, 0][len(prompt) - 1:]
    return [float(x) for x in lp]


def main():
    model = AutoModelForCausalLM.from_pretrained(FIXTURE, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    out = {
        "source": "scripts/make_temperature_fixture.py",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "rows": [
            {
                "prompt_ids": p,
                "completion_ids": c,
                "logprobs": {str(t): completion_logprobs(model, p, c, t) for t in TEMPERATURES},
            }
            for p, c in ROWS
        ],
    }
    with open(os.path.join(FIXTURE, "temperature.json"), "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
