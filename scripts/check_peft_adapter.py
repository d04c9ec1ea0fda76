#!/usr/bin/env python3
"""Prove that PEFT loads the LoRA adapter `mgrpo train` writes, and gets our merged model.

Trains the copy-task fixture with LoRA for a few steps (`lora_r = 4` on three projections),
then loads `tests/fixtures/copy-task` + `<run>/adapter` with `peft.PeftModel.from_pretrained`
and compares its logits on a few prompts with transformers' logits of `<run>/model` (the
adapter merged by mgrpo). Exits non-zero when they differ by more than 1e-5, or when the
adapter changes nothing.

    cargo build --release && python scripts/check_peft_adapter.py
"""
import os
import subprocess
import sys
import tempfile

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BASE = os.path.join(ROOT, "tests/fixtures/copy-task")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        subprocess.run(
            [
                os.path.join(ROOT, "target/release/mgrpo"),
                "train",
                "--config",
                os.path.join(ROOT, "configs/copy-grpo.toml"),
                "--out",
                run,
                "--set", "max_steps=8",
                "--set", "lora_r=4",
                "--set", "lora_alpha=8",
                "--set", "learning_rate=0.05",
                "--set", 'lora_target_modules=["q_proj", "v_proj", "down_proj"]',
            ],
            check=True,
            cwd=ROOT,
        )
        ids = torch.tensor([[3, 7, 1, 4, 2], [5, 5, 9, 0, 8]])
        with torch.no_grad():
            base = AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.float32).eval()
            plain = base(ids).logits.clone()
            peft = PeftModel.from_pretrained(base, os.path.join(run, "adapter")).eval()
            ours = AutoModelForCausalLM.from_pretrained(
                os.path.join(run, "model"), dtype=torch.float32
            ).eval()
            a, b = peft(ids).logits, ours(ids).logits
        diff = (a - b).abs().max().item()
        moved = (a - plain).abs().max().item()
        print(f"PEFT (base + adapter) vs mgrpo's merged model: max |Δlogit| = {diff:.3g}")
        print(f"the adapter moves the logits by up to {moved:.3g}")
        if diff > 1e-5 or moved < 1e-4:
            sys.exit(1)


if __name__ == "__main__":
    main()
