#!/usr/bin/env python3
"""Prove that PEFT loads the LoRA adapter `mgrpo train` writes, and gets our merged model.

Trains each base model with LoRA for a few steps (`lora_r = 4` on three projections; by
default the copy-task fixture (Qwen2), the Qwen3 and the Llama fixtures), then loads the base +
`<run>/adapter` with `peft.PeftModel.from_pretrained` and compares its logits on a few prompts
with transformers' logits of `<run>/model` (the adapter merged by mgrpo). Exits non-zero when
they differ by more than 1e-5 relative to the largest logit (float32 rounding of a merged
weight against the adapter's separate product), or when the adapter changes nothing.

    cargo build --release && python scripts/check_peft_adapter.py [BASE_DIR ...]
"""
import os
import subprocess
import sys
import tempfile

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BASES = [os.path.join(ROOT, "tests/fixtures", name) for name in
         ["copy-task", "qwen3-headdim-tied-f32-t5", "llama32-scaled-tied-f32-t4"]]
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release/mgrpo")


def main():
    ok = True
    for base_dir in sys.argv[1:] or BASES:
        ok &= check(base_dir)
    sys.exit(0 if ok else 1)


def check(base_dir):
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        subprocess.run(
            [
                BIN,
                "train",
                "--config",
                os.path.join(ROOT, "configs/copy-grpo.toml"),
                "--out",
                run,
                "--set", "max_steps=8",
                "--set", f'model="{os.path.abspath(base_dir)}"',
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
            base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
            plain = base(ids).logits.clone()
            peft = PeftModel.from_pretrained(base, os.path.join(run, "adapter")).eval()
            ours = AutoModelForCausalLM.from_pretrained(
                os.path.join(run, "model"), dtype=torch.float32
            ).eval()
            a, b = peft(ids).logits, ours(ids).logits
        diff = (a - b).abs().max().item()
        moved = (a - plain).abs().max().item()
        name = os.path.basename(base_dir)
        tol = 1e-5 * max(1.0, b.abs().max().item())
        print(f"{name}: PEFT (base + adapter) vs mgrpo's merged model: max |Δlogit| = {diff:.3g} (tolerance {tol:.2g}); "
              f"the adapter moves the logits by up to {moved:.3g}")
        return diff <= tol and moved >= 1e-4


if __name__ == "__main__":
    main()
