#!/usr/bin/env python3
"""transformers' side of `mgrpo bench`: the same shape, batch, lengths and thread count, random
weights, median of timed iterations after warm-up. Prints one JSON line like `mgrpo bench`.

  score:    forward + log_softmax + gather of the next-token log-probs
  generate: `model.generate(do_sample=False)` with its KV cache, exactly --new-tokens new tokens
            (no EOS), end to end (prefill included), as `mgrpo bench generate`

  train:    forward + cross-entropy + backward + AdamW (fused) on --batch rows of --seq tokens;
            tokens/s and MFU (PaLM's FLOP count, as `mgrpo bench train`)

    python scripts/bench_torch.py --threads 2                          # bench-small, score 8 x 128
    python scripts/bench_torch.py generate --batch 8 --threads 2       # prompt 32, 128 new tokens
    # on a GPU: bf16 weights for score/generate; f32 master weights + bf16 autocast for train
    python scripts/bench_torch.py generate --device cuda --dtype bf16 --shape qwen2.5-0.5b \
        --batch 64 --prompt 256 --new-tokens 256
    python scripts/bench_torch.py train --device cuda --dtype bf16 --shape qwen2.5-0.5b --batch 8 --seq 1024
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
    "qwen2.5-1.5b": dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2, tie_word_embeddings=True),
}


def train_flops_per_token(c, seq):
    """PaLM's count, as Qwen2Config::train_flops_per_token: 6·N + 12·L·H·hd·seq, N the matmul
    parameters (layers and LM head, not the embedding lookup)."""
    d, hd = c.hidden_size, c.hidden_size // c.num_attention_heads
    q, kv = c.num_attention_heads * hd, c.num_key_value_heads * hd
    layer = (d * q + q) + 2 * (d * kv + kv) + q * d + 3 * d * c.intermediate_size + 2 * d
    n = c.num_hidden_layers * layer + c.vocab_size * d
    return 6 * n + 12 * c.num_hidden_layers * c.num_attention_heads * hd * seq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="?", default="score", choices=["score", "generate", "train"])
    ap.add_argument("--shape", default="bench-small", choices=sorted(SHAPES))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=32, help="generate: prompt tokens per row")
    ap.add_argument("--new-tokens", type=int, default=128, help="generate: new tokens per row")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="train: peak for MFU (H100 bf16 dense)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    a.label = f"torch-cpu-{a.threads}t-{a.attn}" if a.device == "cpu" else f"torch-{a.device}-{a.attn}"
    cfg = Qwen2Config(**SHAPES[a.shape], rope_theta=1e6, max_position_embeddings=32768)
    dtype = torch.bfloat16 if a.dtype == "bf16" and a.what != "train" else torch.float32
    model = Qwen2ForCausalLM._from_config(cfg, attn_implementation=a.attn, dtype=dtype).to(a.device).eval()
    if a.what == "generate":
        return bench_generate(a, model)
    if a.what == "train":
        return bench_train(a, model.train())
    ids = torch.randint(0, cfg.vocab_size, (a.batch, a.seq), device=a.device)
    mask = torch.ones_like(ids)

    def run():
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask).logits
            lp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None])
            return float(lp.sum())

    times = timed(run, a.warmup, a.iters)
    med = statistics.median(times)
    print(json.dumps({"bench": "score", "shape": a.shape, "device": a.label, "dtype": a.dtype,
                      "batch": a.batch, "seq": a.seq, "iters": a.iters, "torch": torch.__version__,
                      "tokens_per_s": a.batch * a.seq / med, "median_ms": med * 1e3, "min_ms": min(times) * 1e3}))


def timed(run, warmup, iters):
    """Wall times of `iters` calls of `run` after `warmup` untimed ones."""
    for _ in range(warmup):
        run()
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - t)
    return times


def bench_generate(a, model):
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    ids = torch.randint(0, model.config.vocab_size, (a.batch, a.prompt), device=a.device)
    mask = torch.ones_like(ids)

    def run():
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                 max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens)
        assert out.shape[1] == a.prompt + a.new_tokens
        return out

    times = timed(run, a.warmup, a.iters)
    med = statistics.median(times)
    print(json.dumps({"bench": "generate", "shape": a.shape, "device": a.label, "dtype": a.dtype,
                      "batch": a.batch, "prompt": a.prompt, "new_tokens": a.new_tokens, "iters": a.iters,
                      "torch": torch.__version__, "transformers": transformers.__version__,
                      "tokens_per_s": a.batch * a.new_tokens / med, "median_ms": med * 1e3,
                      "min_ms": min(times) * 1e3}))


def bench_train(a, model):
    """f32 master weights, bf16 autocast (with --dtype bf16), fused AdamW, global-norm clip 1."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, weight_decay=0.0,
                            fused=a.device != "cpu")
    ids = torch.randint(0, model.config.vocab_size, (a.batch, a.seq), device=a.device)
    use_bf16 = a.dtype == "bf16"

    def run():
        with torch.autocast(device_type="cuda" if a.device != "cpu" else "cpu",
                            dtype=torch.bfloat16, enabled=use_bf16):
            logits = model(input_ids=ids).logits[:, :-1].float()
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())  # synchronises

    times = timed(run, a.warmup, a.iters)
    med = statistics.median(times)
    tokens = a.batch * (a.seq - 1)
    fpt = train_flops_per_token(model.config, a.seq)
    peak = torch.cuda.max_memory_allocated() / 2**30 if a.device != "cpu" else None
    print(json.dumps({"bench": "train", "shape": a.shape, "device": a.label, "dtype": a.dtype,
                      "batch": a.batch, "seq": a.seq, "steps": a.iters, "torch": torch.__version__,
                      "step_s": med, "tokens_per_s": tokens / med, "flops_per_token": fpt,
                      "mfu": fpt * tokens / med / (a.peak_tflops * 1e12), "peak_mem_gib": peak}))


if __name__ == "__main__":
    main()
