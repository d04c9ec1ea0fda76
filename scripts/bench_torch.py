#!/usr/bin/env python3
"""transformers' side of `mgrpo bench`: the same shape, batch, lengths and thread count, random
weights, median of timed iterations after warm-up. Prints one JSON line like `mgrpo bench`.

  score:    forward + log_softmax + gather of the next-token log-probs
  generate: `model.generate(do_sample=False)` with its KV cache, exactly --new-tokens new tokens
            (no EOS), end to end (prefill included), as `mgrpo bench generate`

    python scripts/bench_torch.py --threads 2                          # bench-small, score 8 x 128
    python scripts/bench_torch.py generate --batch 8 --threads 2       # prompt 32, 128 new tokens
"""
import argparse
import json
import statistics
import time

import torch
import transformers
from transformers import Qwen2Config, Qwen2ForCausalLM

SHAPES = {
    "bench-small": dict(vocab_size=4096, hidden_size=256, intermediate_size=704, num_hidden_layers=4,
                        num_attention_heads=8, num_key_value_heads=2, tie_word_embeddings=True),
    "qwen2.5-0.5b": dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="?", default="score", choices=["score", "generate"])
    ap.add_argument("--shape", default="bench-small", choices=sorted(SHAPES))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=32, help="generate: prompt tokens per row")
    ap.add_argument("--new-tokens", type=int, default=128, help="generate: new tokens per row")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = Qwen2Config(**SHAPES[a.shape], rope_theta=1e6, max_position_embeddings=32768)
    model = Qwen2ForCausalLM._from_config(cfg, attn_implementation=a.attn, dtype=torch.float32).eval()
    if a.what == "generate":
        return bench_generate(a, model)
    ids = torch.randint(0, cfg.vocab_size, (a.batch, a.seq))
    mask = torch.ones_like(ids)

    def run():
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask).logits
            lp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None])
            return float(lp.sum())

    times = timed(run, a.warmup, a.iters)
    med = statistics.median(times)
    print(json.dumps({"bench": "score", "shape": a.shape, "device": f"torch-cpu-{a.threads}t-{a.attn}",
                      "batch": a.batch, "seq": a.seq, "iters": a.iters, "torch": torch.__version__,
                      "tokens_per_s": a.batch * a.seq / med, "median_ms": med * 1e3, "min_ms": min(times) * 1e3}))


def timed(run, warmup, iters):
    """Wall times of `iters` calls of `run` after `warmup` untimed ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return times


def bench_generate(a, model):
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    ids = torch.randint(0, model.config.vocab_size, (a.batch, a.prompt))
    mask = torch.ones_like(ids)

    def run():
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                 max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens)
        assert out.shape[1] == a.prompt + a.new_tokens
        return out

    times = timed(run, a.warmup, a.iters)
    med = statistics.median(times)
    print(json.dumps({"bench": "generate", "shape": a.shape, "device": f"torch-cpu-{a.threads}t-{a.attn}",
                      "batch": a.batch, "prompt": a.prompt, "new_tokens": a.new_tokens, "iters": a.iters,
                      "torch": torch.__version__, "transformers": transformers.__version__,
                      "tokens_per_s": a.batch * a.new_tokens / med, "median_ms": med * 1e3,
                      "min_ms": min(times) * 1e3}))


if __name__ == "__main__":
    main()
