"""Fixtures from TRL's and transformers' own code, for tests/trl_parity.rs.

Every value here comes from calling the library (trl 1.16, transformers 5), not from a copy of
its formulas: the config defaults of `GRPOConfig` and `RLOOConfig`, the reward functions of
`trl.rewards`, transformers' `Trainer.get_decay_parameter_names` on a Qwen2 of the shipped
model's shape, the chat template `AutoTokenizer` picks when a checkpoint has two, and the
advantage and reward-statistics block of `GRPOTrainer._generate_and_score_completions` — taken
from the method's source with `inspect` and run on fixed rewards, so a TRL change shows up as
a fixture change.

    python3 -m venv .venv && .venv/bin/pip install "trl==1.16.*"
    .venv/bin/python scripts/trl_parity.py      # writes tests/fixtures/trl/*.json

The tests never need Python: the fixtures are committed.
"""

import dataclasses
import inspect
import json
import math
import os
import shutil
import tempfile
import textwrap
import types

import torch
import transformers
import trl
from trl.rewards import get_soft_overlong_punishment
from trl.trainer.utils import nanstd

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "tests", "fixtures", "trl")


def jsonable(v):
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return str(v)
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    return str(v)


def config_defaults():
    """Every field of GRPOConfig and RLOOConfig with its declared default."""
    out = {}
    for cls in (trl.GRPOConfig, trl.RLOOConfig):
        fields = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                fields[f.name] = jsonable(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                fields[f.name] = jsonable(f.default_factory())
        out[cls.__name__] = fields
    return out


def soft_overlong():
    """get_soft_overlong_punishment over budgets, caches (some larger than the budget) and lengths."""
    cases = []
    for max_len, cache in [(100, 20), (10, 20), (10, 10), (64, 16), (100, 0), (5, 50)]:
        f = get_soft_overlong_punishment(max_completion_len=max_len, soft_punish_cache=cache)
        lengths = sorted({0, 1, 5, max_len - cache, max_len - cache + 1, max_len - 1, max_len, max_len + 1} - {-1})
        lengths = [n for n in lengths if n >= 0]
        rewards = f([[1] * n for n in lengths])
        cases.append({"max": max_len, "cache": cache, "lengths": lengths, "rewards": rewards})
    return cases


def decay_parameter_names():
    """The parameters transformers' Trainer decays, on a Qwen2 of the shipped model's shape
    (biased q/k/v, RMSNorms, tied embeddings), and on an untied one."""
    with open(os.path.join(REPO, "model", "config.json")) as f:
        config = json.load(f)
    out = {}
    for tied in (True, False):
        cfg = transformers.Qwen2Config(**{**config, "tie_word_embeddings": tied})
        model = transformers.Qwen2ForCausalLM(cfg)
        args = transformers.TrainingArguments(output_dir=tempfile.mkdtemp(), report_to=[])
        trainer = transformers.Trainer(model=model, args=args)
        names = [n for n, _ in model.named_parameters()]
        decayed = set(trainer.get_decay_parameter_names(model))
        out["tied" if tied else "untied"] = {
            "parameters": {n: list(p.shape) for n, p in model.named_parameters()},
            "decayed": [n for n in names if n in decayed],
        }
    return out


def chat_template_source():
    """Which copy AutoTokenizer uses when a checkpoint has chat_template.jinja and a (different)
    chat_template in tokenizer_config.json, and when it has only the .jinja file."""
    model = os.path.join(REPO, "model")
    in_config = "{% for m in messages %}CONFIG {{ m['content'] }}\n{% endfor %}"
    in_jinja = "{% for m in messages %}JINJA {{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    messages = [{"role": "user", "content": "What is 2+3?"}]
    out = {"messages": messages, "in_config": in_config, "in_jinja": in_jinja}
    for case in ("both", "jinja_only"):
        d = tempfile.mkdtemp()
        shutil.copy(os.path.join(model, "tokenizer.json"), d)
        with open(os.path.join(model, "tokenizer_config.json")) as f:
            tc = json.load(f)
        tc.pop("chat_template", None)
        if case == "both":
            tc["chat_template"] = in_config
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump(tc, f)
        with open(os.path.join(d, "chat_template.jinja"), "w") as f:
            f.write(in_jinja)
        tok = transformers.AutoTokenizer.from_pretrained(d)
        out[case] = tok.apply_chat_template(messages, tokenize=False)
        out["eos_token"] = tok.eos_token
    return out


def reward_statistics():
    """GRPOTrainer's advantage and reward-statistics code, run on fixed rewards.

    The block from `unscorable_mask = ...` to the `frac_reward_zero_std` metric is cut out of
    `_generate_and_score_completions` and executed with a stand-in `self` that holds only the
    attributes it reads."""
    src = textwrap.dedent(inspect.getsource(trl.GRPOTrainer._generate_and_score_completions))
    start = src.index("unscorable_mask = ")
    end = src.index('self._metrics[mode]["frac_reward_zero_std"]')
    end = src.index("\n", end)
    block = textwrap.dedent(src[start:end])
    # the block is indented as one level of the method body: dedent it as a whole
    lines = block.split("\n")
    indent = min(len(l) - len(l.lstrip()) for l in lines[1:] if l.strip())
    block = "\n".join([lines[0]] + [l[indent:] for l in lines[1:]])
    cases = []
    inputs = [
        ("two flat groups", [[1.0], [1.0], [0.0], [0.0]], 2),
        ("mixed groups", [[1.0], [0.0], [0.0], [0.0], [1.0], [1.0], [0.5], [0.0], [0.25]], 3),
        ("every reward equal", [[1.0], [1.0], [1.0], [1.0]], 2),
        ("one group", [[1.0], [0.0], [0.0], [1.0]], 4),
        ("weighted functions", [[1.0, 0.0], [0.0, -0.5], [1.0, -1.0], [0.0, 0.0]], 2),
    ]
    for name, rewards, g in inputs:
        for scale in ("group", "batch", "none"):
            funcs = len(rewards[0])
            weights = [1.0] * funcs if funcs == 1 else [1.0, 0.5]
            metrics = {"train": {}}
            from collections import defaultdict

            metrics = {"train": defaultdict(list)}
            self = types.SimpleNamespace(
                multi_objective_aggregation="sum_then_normalize",
                scale_rewards=scale,
                reward_weights=torch.tensor(weights),
                accelerator=types.SimpleNamespace(process_index=0),
                reward_func_names=[f"f{i}" for i in range(funcs)],
                _metrics=metrics,
            )
            scope = {
                "self": self,
                "torch": torch,
                "nanstd": nanstd,
                "rewards_per_func": torch.tensor(rewards, dtype=torch.float32),
                "num_generations": g,
                "prompts": [None] * len(rewards),
                "mode": "train",
                "device": "cpu",
            }
            exec(block, scope)
            cases.append(
                {
                    "name": name,
                    "scale_rewards": scale,
                    "num_generations": g,
                    "rewards_per_func": rewards,
                    "weights": weights,
                    "advantages": scope["all_process_advantages"].tolist(),
                    "reward": metrics["train"]["reward"][0],
                    "reward_std": metrics["train"]["reward_std"][0],
                    "frac_reward_zero_std": metrics["train"]["frac_reward_zero_std"][0],
                }
            )
    return cases


def main():
    os.makedirs(OUT, exist_ok=True)
    fixtures = {
        "config_defaults.json": config_defaults(),
        "soft_overlong.json": soft_overlong(),
        "decay_parameters.json": decay_parameter_names(),
        "chat_template_source.json": chat_template_source(),
        "reward_statistics.json": reward_statistics(),
    }
    versions = {"trl": trl.__version__, "transformers": transformers.__version__, "torch": torch.__version__}
    for name, value in fixtures.items():
        with open(os.path.join(OUT, name), "w") as f:
            json.dump({"made_by": "scripts/trl_parity.py", "versions": versions, "data": value}, f, indent=1)
            f.write("\n")
        print("wrote", os.path.join("tests", "fixtures", "trl", name))


if __name__ == "__main__":
    main()
