"""One GRPO step of TRL's GRPOTrainer on CPU, on the workload of `mgrpo bench grpo`:
the bench-small Qwen2 shape (vocab 4096, hidden 256, 4 layers, 8 heads, 2 KV heads,
intermediate 704, tied head) with random weights, 8 prompts of 32 random tokens × G 8
completions of 64 new tokens (HF generation, no vLLM; EOS never sampled, as in ours),
random 0/1 rewards, β 0, one update per rollout, 2 threads.

    python scripts/bench_trl_grpo.py [--steps 4]     # trl 1.16, torch 2.9
    target/release/mgrpo bench grpo --batch 8 --generations 8 --prompt 32 --new-tokens 64

On a GPU (bf16 autocast on f32 weights, as `mgrpo bench grpo --dtype bf16`):

    python3 scripts/bench_trl_grpo.py --device cuda --bf16 --shape qwen2.5-0.5b --new-tokens 256
    mgrpo bench grpo --device cuda --dtype bf16 --shape qwen2.5-0.5b --batch 8 --generations 8 \
        --prompt 32 --new-tokens 256

Prints one JSON line: median seconds per step (steps after the first), TRL's version.
"""

import argparse
import json
import random
import statistics
import tempfile
import time

import torch


from datasets import Dataset  # noqa: E402
from tokenizers import Tokenizer, pre_tokenizers  # noqa: E402
from tokenizers.models import WordLevel  # noqa: E402
from transformers import (  # noqa: E402
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    TrainerCallback,
)
import trl  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=4)
p.add_argument("--prompts", type=int, default=8)
p.add_argument("--generations", type=int, default=8)
p.add_argument("--prompt-len", type=int, default=32)
p.add_argument("--new-tokens", type=int, default=64)
p.add_argument("--shape", default="bench-small", choices=["bench-small", "qwen2.5-0.5b", "qwen2.5-1.5b"])
p.add_argument("--device", default="cpu")
p.add_argument("--bf16", action="store_true")
a = p.parse_args()
if a.device == "cpu":
    torch.set_num_threads(2)

SHAPES = {
    "bench-small": dict(vocab_size=4096, hidden_size=256, intermediate_size=704, num_hidden_layers=4,
                        num_attention_heads=8, num_key_value_heads=2),
    "qwen2.5-0.5b": dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2),
    "qwen2.5-1.5b": dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2),
}
V = SHAPES[a.shape]["vocab_size"]
# A word-level tokenizer whose every token is one word "tN": a prompt of 32 words is 32 tokens.
vocab = {f"t{i}": i for i in range(V)}
core = Tokenizer(WordLevel(vocab, unk_token="t0"))
core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="t0", eos_token="t1")
tok.padding_side = "left"

torch.manual_seed(0)
config = Qwen2Config(
    **SHAPES[a.shape], tie_word_embeddings=True,
    max_position_embeddings=4096, eos_token_id=None, pad_token_id=0,
)
model = Qwen2ForCausalLM(config).float()

rng = random.Random(0)
rows = [{"prompt": " ".join(f"t{rng.randrange(2, V)}" for _ in range(a.prompt_len))}
        for _ in range(a.prompts * (a.steps + 1))]
data = Dataset.from_list(rows)


def reward(completions, **kw):
    return [float(rng.random() < 0.5) for _ in completions]


times = []


class Timer(TrainerCallback):
    def on_step_begin(self, args, state, control, **kw):
        self.t = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        times.append(time.perf_counter() - self.t)


with tempfile.TemporaryDirectory() as out:
    args = GRPOConfig(
        output_dir=out,
        per_device_train_batch_size=a.prompts * a.generations,
        gradient_accumulation_steps=1,
        num_generations=a.generations,
        max_completion_length=a.new_tokens,
        temperature=1.0,
        beta=0.0,
        num_iterations=1,
        learning_rate=1e-6,
        max_steps=a.steps,
        use_cpu=a.device == "cpu",
        bf16=a.bf16,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        seed=0,
        shuffle_dataset=False,
        generation_kwargs={"min_new_tokens": a.new_tokens},
    )
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args,
                          train_dataset=data, processing_class=tok, callbacks=[Timer()])
    trainer.train()

print(json.dumps({
    "bench": "grpo", "impl": f"trl {trl.__version__}, torch {torch.__version__}",
    "shape": a.shape, "device": a.device, "bf16": a.bf16,
    "threads": torch.get_num_threads(), "steps": len(times) - 1,
    "step_s": statistics.median(times[1:]), "first_step_s": times[0],
    "all_steps_s": times,
}))
