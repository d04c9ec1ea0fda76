"""Make tests/fixtures/copy-task: a tiny random Qwen2 (transformers), a character-level
tokenizer (tokenizers) and a digit-copy dataset (GSM8K format: the answer is the question's
digit). The GRPO tests and configs/copy-grpo.toml train it: a random model answers right
~12 % of the time (one token of 16), a trained one almost always.

    python scripts/make_copy_task.py   # torch 2.9.0, transformers 5.x
"""

import json
import os

import torch
from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import Qwen2Config, Qwen2ForCausalLM

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "copy-task")
os.makedirs(OUT, exist_ok=True)

specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
chars = [str(d) for d in range(10)] + ["\n", " ", "#"]
vocab = {t: i for i, t in enumerate(specials + chars)}

tok = Tokenizer(WordLevel(vocab, unk_token="<|endoftext|>"))
tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
tok.decoder = decoders.Fuse()
tok.add_special_tokens(specials)
tok.save(os.path.join(OUT, "tokenizer.json"))

torch.manual_seed(0)
config = Qwen2Config(
    vocab_size=len(vocab),
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    tie_word_embeddings=True,
    rope_theta=10000.0,
    bos_token_id=0,
    eos_token_id=2,
)
model = Qwen2ForCausalLM(config).to(torch.float32)
model.save_pretrained(OUT, safe_serialization=True)
for extra in ["generation_config.json"]:
    p = os.path.join(OUT, extra)
    if os.path.exists(p):
        os.remove(p)

with open(os.path.join(OUT, "train.jsonl"), "w") as f:
    for i in range(60):
        d = i % 10
        f.write(json.dumps({"id": f"copy-{i}", "question": str(d), "answer": f"#### {d}"}) + "\n")
print("wrote", OUT, sorted(os.listdir(OUT)))
