#!/usr/bin/env python3
"""transformers' side of `mgrpo bench score`: the same shape, batch, sequence length and thread
count, random weights, forward + log_softmax + gather of the next-token log-probs, median of
timed iterations after warm-up. Prints one JSON line like `mgrpo bench`.

    python scripts/bench_torch.py --threads 2            # bench-small, batch 8 x 128
"""
import argparse
import json
import statistics
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

SHAPES = {
    "bench-small": dict(vocab_size=4096, hidden_size=256, intermediate_size=704, num_hidden_layers=4,
                        num_attention_heads=8, num_key_value_heads=2, tie_word_embeddings=True),
    "qwen2.5-0.5b": dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="bench-small", choices=sorted(SHAPES))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = Qwen2Config(**SHAPES[a.shape], rope_theta=1e6, max_position_embeddings=32768)
    model = Qwen2ForCausalLM._from_config(cfg, attn_implementation=a.attn, dtype=torch.float32).eval()
    ids = torch.randint(0, cfg.vocab_size, (a.batch, a.seq))
    mask = torch.ones_like(ids)

    def run():
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask).logits
            lp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None])
            return float(lp.sum())

    for _ in range(a.warmup):
        run()
    times = []
    for _ in range(a.iters):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(json.dumps({"bench": "score", "shape": a.shape, "device": f"torch-cpu-{a.threads}t-{a.attn}",
                      "batch": a.batch, "seq": a.seq, "iters": a.iters, "torch": torch.__version__,
                      "tokens_per_s": a.batch * a.seq / med, "median_ms": med * 1e3, "min_ms": min(times) * 1e3}))


if __name__ == "__main__":
    main()
