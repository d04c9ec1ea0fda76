#!/usr/bin/env python3
"""Make the transformers parity fixtures in tests/fixtures/.

Each fixture is a small random Qwen2, Qwen3 or Llama checkpoint written the way HF checkpoints are written
(config.json + safetensors with format=pt metadata), then loaded back with
`AutoModelForCausalLM.from_pretrained` -- which proves transformers reads that config style,
dtype and sharding -- and run on a few token rows to record the per-token log-probs
log p(x_t | x_<t), t >= 1, one row at a time (no padding) in float32 on CPU, and the greedy
continuations `generate(do_sample=False)` gives for a few prompts.

The weights are drawn so that logits are far from uniform (transformers' 0.02 init makes every
model look alike): matrices N(0, 1/fan_in), q/k/v biases N(0, 0.3^2), norm weights 1 + N(0, 0.2^2), an untied
lm_head N(0, 9/fan_in) and a tied embedding N(0, 0.16): mean entropy about half of uniform's.

Usage (from the repository root):
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r scripts/requirements.txt
    /tmp/venv/bin/python scripts/make_fixtures.py [NAME ...]   # every fixture, or those named
"""
import json
import os
import shutil
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")

# name, shape, weight dtype, config style, shards
FIXTURES = [
    dict(name="gqa2-tied-f32-t4", vocab=256, hidden=64, inter=160, layers=2, heads=4, kv=2,
         tied=True, dtype=torch.float32, style="t4", theta=10000.0, eps=1e-6, shards=1),
    dict(name="gqa4-untied-bf16-t5", vocab=300, hidden=64, inter=128, layers=2, heads=8, kv=2,
         tied=False, dtype=torch.bfloat16, style="t5", theta=1000000.0, eps=1e-6, shards=1),
    dict(name="mha-untied-f16-sharded", vocab=200, hidden=48, inter=96, layers=3, heads=4, kv=4,
         tied=False, dtype=torch.float16, style="t4", theta=10000.0, eps=1e-6, shards=3),
    dict(name="mqa-odd-tied-f32-t5", vocab=97, hidden=40, inter=72, layers=3, heads=5, kv=1,
         tied=True, dtype=torch.float32, style="t5", theta=500.0, eps=1e-5, shards=1),
    # Qwen3: q/k norms, an explicit head_dim other than hidden / heads (as in every release).
    dict(name="qwen3-headdim-tied-f32-t5", family="qwen3", vocab=300, hidden=48, inter=96,
         layers=2, heads=4, kv=2, head_dim=16, tied=True, dtype=torch.float32, style="t5",
         theta=1000000.0, eps=1e-6, shards=1, tokenizer=True),
    dict(name="qwen3-bias-untied-bf16-t4", family="qwen3", vocab=97, hidden=32, inter=64,
         layers=2, heads=2, kv=1, head_dim=24, tied=False, dtype=torch.bfloat16, style="t4",
         theta=10000.0, eps=1e-6, shards=1, attention_bias=True),
    # Llama 3.2-shaped: tied, `llama3` RoPE scaling whose original context (32) the rows and the
    # greedy continuations run past; head_dim 16 and theta 10^4 put a frequency in each band.
    dict(name="llama32-scaled-tied-f32-t4", family="llama", vocab=300, hidden=64, inter=128,
         layers=2, heads=4, kv=2, tied=True, dtype=torch.float32, style="t4", theta=10000.0,
         eps=1e-5, shards=1, tokenizer=True,
         llama3=dict(factor=4.0, low_freq_factor=1.0, high_freq_factor=4.0,
                     original_max_position_embeddings=32)),
    dict(name="llama-bias-untied-bf16-t5", family="llama", vocab=97, hidden=32, inter=48,
         layers=2, heads=4, kv=1, tied=False, dtype=torch.bfloat16, style="t5", theta=500.0,
         eps=1e-6, shards=1, attention_bias=True, mlp_bias=True),
]
# transformers' classes of each family.
FAMILY = {"qwen2": ("Qwen2ForCausalLM", Qwen2Config, Qwen2ForCausalLM),
          "qwen3": ("Qwen3ForCausalLM", Qwen3Config, Qwen3ForCausalLM),
          "llama": ("LlamaForCausalLM", LlamaConfig, LlamaForCausalLM)}
ROW_LENGTHS = [2, 7, 16, 41]
# Greedy continuations (transformers' generate, do_sample=False) of prompts of these lengths.
GREEDY_PROMPT_LENGTHS = [1, 6, 19]
GREEDY_NEW_TOKENS = 40

# The fixture that also gets a tokenizer (a byte-level BPE with Qwen2's pre-tokenizer and the
# ChatML special tokens, trained here on a few math sentences to fit its 300-token vocabulary).
TOKENIZER_FIXTURE = "gqa4-untied-bf16-t5"
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
CORPUS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "How many clips did Natalia sell altogether in April and May? The answer is \\boxed{72}.",
    "Please reason step by step, and put your final answer within \\boxed{}.",
    "Wait, let me double-check that. 48 / 2 = 24, and 48 + 24 = 72. So the answer is 72.",
    "Find the integer x with 3x + 5 = 20. Substituting x = 5: 3*5 + 5 = 20. Correct.",
]
# The qwen-math template of src/text/template.rs (layer 1).
QWEN_MATH = ("<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
             "<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n")
TEXT_ROWS = [
    ("qwen-math", "What is 48 + 24?", "48 + 24 = 72. The answer is \\boxed{72}."),
    ("qwen-math", "Find x with 3x + 5 = 20.", "x = 5"),
    ("qwen-math", "Ünïcödé √2 ≈ 1.414?", ""),
    (None, "Natalia sold 48 clips.", " Then she sold half as many."),
    (None, "x", "y"),
]
ENCODE_CASES = [
    "Natalia sold clips to 48 of her friends.",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "  spaces   and\ttabs\n\nnew lines 1,000,000 and 3.14159",
    "Ünïcödé √2 ≈ 1.414, π, ∞ — \\frac{1}{2}",
]


def make_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=297, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    tok.add_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    assert tok.get_vocab_size() <= 300, tok.get_vocab_size()
    return tok


def hf_config(f):
    family = f.get("family", "qwen2")
    cfg = {
        "architectures": [FAMILY[family][0]],
        "model_type": family,
        "vocab_size": f["vocab"],
        "hidden_size": f["hidden"],
        "intermediate_size": f["inter"],
        "num_hidden_layers": f["layers"],
        "num_attention_heads": f["heads"],
        "num_key_value_heads": f["kv"],
        "max_position_embeddings": 128,
        "rms_norm_eps": f["eps"],
        "tie_word_embeddings": f["tied"],
        "hidden_act": "silu",
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[f["dtype"]],
    }
    if family != "llama":
        cfg.update(use_sliding_window=False, sliding_window=None, max_window_layers=f["layers"])
    if family == "qwen3" or "head_dim" in f:
        cfg["head_dim"] = f.get("head_dim", f["hidden"] // f["heads"])
    if family in ("qwen3", "llama"):
        cfg["attention_bias"] = f.get("attention_bias", False)
    if family == "llama":
        cfg["mlp_bias"] = f.get("mlp_bias", False)
    scaling = dict(rope_type="llama3", **f["llama3"]) if "llama3" in f else None
    if f["style"] == "t4":  # transformers 4.x / every Qwen2.5 and Llama 3 release
        cfg["rope_theta"] = f["theta"]
        cfg["rope_scaling"] = scaling
    else:  # transformers 5.x
        cfg["rope_parameters"] = dict(scaling or {"rope_type": "default"}, rope_theta=f["theta"])
    return cfg


def random_weights(model, tied):
    g = torch.Generator().manual_seed(1234)
    sd = {}
    for name, p in model.state_dict().items():
        if tied and name == "lm_head.weight":
            continue
        if name.endswith("norm.weight"):
            t = 1.0 + 0.2 * torch.randn(p.shape, generator=g)
        elif name.endswith(".bias"):
            t = 0.3 * torch.randn(p.shape, generator=g)
        elif name == "model.embed_tokens.weight":
            t = (0.4 if tied else 1.0) * torch.randn(p.shape, generator=g)
        elif name == "lm_head.weight":  # logit std ~3
            t = 3.0 * torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5
        else:  # Linear [out, in]
            t = torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5
        sd[name] = t.contiguous()
    return sd


def save(sd, out_dir, dtype, shards):
    sd = {k: v.to(dtype).contiguous() for k, v in sd.items()}
    if shards == 1:
        save_file(sd, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
        return
    keys = sorted(sd)
    weight_map, total = {}, 0
    for i in range(shards):
        part = keys[i::shards]
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        save_file({k: sd[k] for k in part}, os.path.join(out_dir, fname), metadata={"format": "pt"})
        for k in part:
            weight_map[k] = fname
            total += sd[k].numel() * sd[k].element_size()
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as fh:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, fh, indent=2)


def greedy_cases(model, vocab, prompts):
    """transformers' greedy continuation of each prompt, one at a time (no padding), stopping at
    the config's eos_token_id or after GREEDY_NEW_TOKENS. `min_margin` is the smallest gap
    between the best and second-best logit over the steps: how close a float32 tie came."""
    cases = []
    for p_ids in prompts:
        ids = torch.tensor([p_ids])
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=GREEDY_NEW_TOKENS, output_scores=True,
                                 return_dict_in_generate=True, pad_token_id=0)
        new = out.sequences[0, len(p_ids):].tolist()
        margin = min(float(s[0].topk(2).values[0] - s[0].topk(2).values[1]) for s in out.scores)
        cases.append({"prompt_ids": p_ids, "completion_ids": new,
                      "eos": bool(new and new[-1] == model.config.eos_token_id),
                      "min_margin": margin})
    return cases


def main():
    torch.manual_seed(0)
    only = set(sys.argv[1:])
    for f in FIXTURES:
        if only and f["name"] not in only:
            continue
        out = os.path.join(ROOT, f["name"])
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        cfg = hf_config(f)
        with open(os.path.join(out, "config.json"), "w") as fh:
            json.dump(cfg, fh, indent=2)
        _, config_class, model_class = FAMILY[f.get("family", "qwen2")]
        skeleton = model_class(config_class(**{k: v for k, v in cfg.items() if k != "rope_parameters"}))
        save(random_weights(skeleton, f["tied"]), out, f["dtype"], f["shards"])

        # The reference: transformers loading what we wrote, in float32.
        model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager")
        model.eval()
        assert abs(model.config.rope_parameters["rope_theta"] - f["theta"]) < 1e-9
        assert type(model).__name__ == cfg["architectures"][0]
        if "llama3" in f:
            assert model.config.rope_parameters["rope_type"] == "llama3"
            old = f["llama3"]["original_max_position_embeddings"]
            assert max(ROW_LENGTHS) > old and max(GREEDY_PROMPT_LENGTHS) + GREEDY_NEW_TOKENS > old
        g = torch.Generator().manual_seed(99)
        rows = []
        entropies = []
        for n in ROW_LENGTHS:
            ids = torch.randint(0, f["vocab"], (1, n), generator=g)
            with torch.no_grad():
                logits = model(ids).logits.float()
            logp = torch.log_softmax(logits, dim=-1)
            entropies.append(float(-(logp.exp() * logp).sum(-1).mean()))
            lp = logp[0, :-1].gather(-1, ids[0, 1:, None])[:, 0]
            rows.append({"input_ids": ids[0].tolist(), "logprobs": [float(x) for x in lp]})
        greedy = greedy_cases(model, f["vocab"], [
            torch.randint(0, f["vocab"], (n,), generator=g).tolist() for n in GREEDY_PROMPT_LENGTHS])
        if f.get("tokenizer"):  # the same vocabulary as TOKENIZER_FIXTURE's
            shutil.copy(os.path.join(ROOT, TOKENIZER_FIXTURE, "tokenizer.json"), out)
        if f["name"] == TOKENIZER_FIXTURE:
            tok = make_tokenizer()
            tok.save(os.path.join(out, "tokenizer.json"))
            text_rows = []
            for template, prompt, completion in TEXT_ROWS:
                rendered = QWEN_MATH.replace("{question}", prompt) if template else prompt
                p_ids = tok.encode(rendered, add_special_tokens=False).ids
                c_ids = tok.encode(completion, add_special_tokens=False).ids
                ids = torch.tensor([p_ids + c_ids])
                with torch.no_grad():
                    logp = torch.log_softmax(model(ids).logits.float(), dim=-1)
                lp = logp[0, :-1].gather(-1, ids[0, 1:, None])[:, 0][len(p_ids) - 1:]
                text_rows.append({"template": template, "prompt": prompt, "completion": completion,
                                  "prompt_ids": p_ids, "completion_ids": c_ids,
                                  "logprobs": [float(x) for x in lp]})
            encode_cases = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in ENCODE_CASES]
            text_greedy = greedy_cases(model, f["vocab"], [text_rows[0]["prompt_ids"]])
            for case in text_greedy:
                case["prompt"] = TEXT_ROWS[0][1]
                case["text"] = tok.decode(case["completion_ids"], skip_special_tokens=True)
            greedy += text_greedy
        expected = {
            "source": "scripts/make_fixtures.py",
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "mean_entropy_nats": sum(entropies) / len(entropies),
            "uniform_entropy_nats": float(torch.log(torch.tensor(float(f["vocab"])))),
            "rows": rows,
            "greedy": greedy,
        }
        if f["name"] == TOKENIZER_FIXTURE:
            expected["text_rows"] = text_rows
            expected["encode_cases"] = encode_cases
        with open(os.path.join(out, "expected.json"), "w") as fh:
            json.dump(expected, fh)
        print(f"{f['name']}: mean entropy {expected['mean_entropy_nats']:.2f} nats "
              f"(uniform {expected['uniform_entropy_nats']:.2f})")


if __name__ == "__main__":
    main()
