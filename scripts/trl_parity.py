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
    # chat_template_kwargs: extra variables of the template, as TRL passes them through
    # apply_chat_template (Qwen3's enable_thinking, and a string of the user's own)
    out["kwargs_template"] = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% if greeting is defined %}{{ greeting }} {% endif %}"
        "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
    )
    out["kwargs"] = {"enable_thinking": False, "greeting": "Hello."}
    tok = transformers.AutoTokenizer.from_pretrained(d)
    tok.chat_template = out["kwargs_template"]
    out["kwargs_rendered"] = tok.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, **out["kwargs"]
    )
    out["kwargs_default_rendered"] = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return out


def method_block(method, first, last):
    """The lines of `method`'s source from the one starting `first` to the end of the one
    holding `last`, dedented to run as a module."""
    src = textwrap.dedent(inspect.getsource(method))
    start = src.index(first)
    end = src.index("\n", src.index(last))
    lines = src[start:end].split("\n")
    # the first line was cut at its text: dedent the rest as a whole
    indent = min(len(l) - len(l.lstrip()) for l in lines[1:] if l.strip())
    return "\n".join([lines[0]] + [l[indent:] for l in lines[1:]])


NAN = float("nan")

# (name, rewards per function per completion, num_generations); NaN is a function's None
REWARD_CASES = [
    ("two flat groups", [[1.0], [1.0], [0.0], [0.0]], 2),
    ("mixed groups", [[1.0], [0.0], [0.0], [0.0], [1.0], [1.0], [0.5], [0.0], [0.25]], 3),
    ("every reward equal", [[1.0], [1.0], [1.0], [1.0]], 2),
    ("one group", [[1.0], [0.0], [0.0], [1.0]], 4),
    ("weighted functions", [[1.0, 0.0], [0.0, -0.5], [1.0, -1.0], [0.0, 0.0]], 2),
    ("a None row", [[1.0], [NAN], [0.0], [0.5], [0.0], [1.0]], 3),
    ("functions abstaining in turn", [[1.0, NAN], [NAN, 0.5], [NAN, NAN], [0.0, 1.0], [0.5, NAN], [NAN, -1.0]], 3),
    ("one scored in a group, one group unscored", [[1.0], [NAN], [NAN], [NAN], [NAN], [NAN], [0.0], [1.0], [0.5]], 3),
]


def reward_statistics():
    """GRPOTrainer's and RLOOTrainer's advantage and reward-statistics code, run on fixed
    rewards (NaN: a function's None).

    The block from `unscorable_mask = ...` to the `frac_reward_zero_std` metric is cut out of
    `_generate_and_score_completions` and executed with a stand-in `self` that holds only the
    attributes it reads."""
    from collections import defaultdict

    grpo = method_block(
        trl.GRPOTrainer._generate_and_score_completions, "unscorable_mask = ", 'self._metrics[mode]["frac_reward_zero_std"]'
    )
    rloo = method_block(
        trl.RLOOTrainer._generate_and_score_completions, "unscorable_mask = ", 'self._metrics[mode]["frac_reward_zero_std"]'
    )
    cases = []
    for name, rewards, g in REWARD_CASES:
        funcs = len(rewards[0])
        weights = [1.0] * funcs if funcs == 1 else [1.0, 0.5]
        runs = [("GRPOTrainer", grpo, scale, None) for scale in ("group", "batch", "none")]
        runs += [("RLOOTrainer", rloo, None, normalize) for normalize in (False, True)]
        for trainer, block, scale, normalize in runs:
            metrics = {"train": defaultdict(list)}
            self = types.SimpleNamespace(
                multi_objective_aggregation="sum_then_normalize",
                scale_rewards=scale,
                normalize_advantages=normalize,
                reward_clip_range=None,
                beta=0.0,
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
            m = metrics["train"]
            cases.append(
                {
                    "trainer": trainer,
                    "name": name,
                    "scale_rewards": scale,
                    "normalize_advantages": normalize,
                    "num_generations": g,
                    "rewards_per_func": rewards,
                    "weights": weights,
                    "advantages": scope["all_process_advantages"].tolist(),
                    "reward": m["reward"][0],
                    "reward_std": m["reward_std"][0],
                    "frac_reward_zero_std": m["frac_reward_zero_std"][0],
                    "func_means": [m[f"rewards/f{i}/mean"][0] for i in range(funcs)],
                }
            )
    return cases


def loss_inputs(seed, lengths, advantages, shifts):
    """Fixed log-probs, reference log-probs, entropies and a mask with the given completion
    lengths (a length of 0 is a completion masked out whole), in a window of 5. Row i's old
    log-probs are its log-probs minus `shifts[i]` plus noise, so its ratios are about
    exp(shifts[i]) — some above, some below the clip range."""
    g = torch.Generator().manual_seed(seed)
    rows, cols = len(lengths), 5
    logps = -torch.rand(rows, cols, generator=g) * 2.0 - 0.05
    noise = (torch.rand(rows, cols, generator=g) - 0.5) * 0.6
    old = logps - torch.tensor(shifts).unsqueeze(1) + noise
    ref = logps + (torch.rand(rows, cols, generator=g) - 0.5) * 1.5
    entropies = torch.rand(rows, cols, generator=g) * 3.0
    mask = torch.tensor([[1.0 if j < n else 0.0 for j in range(cols)] for n in lengths])
    advantages = torch.tensor(advantages)
    return {"logps": logps, "old": old, "ref": ref, "entropies": entropies, "advantages": advantages, "mask": mask}


def fake_accelerator():
    return types.SimpleNamespace(
        num_processes=1,
        gather=lambda t: t,
        gather_for_metrics=lambda t: t,
        reduce=lambda t, reduction="sum": t,
        pad_across_processes=lambda t, dim=0, pad_index=0: t,
    )


def run_compute_loss(cls, attrs, args, x, inputs):
    """`cls._compute_loss` on a stand-in trainer whose model returns `x["logps"]` (as a leaf
    that collects the gradient) and `x["entropies"]`; returns the loss, d loss / d logps and
    the metrics it logged."""
    from collections import defaultdict

    logps = x["logps"].clone().requires_grad_(True)
    self = object.__new__(cls)
    self.__dict__.update(
        accelerator=fake_accelerator(),
        model=types.SimpleNamespace(training=True),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        aux_loss_enabled=False,
        _entropy_bonus_enabled=False,
        use_vllm=False,
        vllm_importance_sampling_correction=False,
        off_policy_mask_threshold=None,
        current_gradient_accumulation_steps=1,
        args=types.SimpleNamespace(steps_per_generation=1, use_bias_correction_kl=False, **args),
        **attrs,
    )
    self._get_per_token_logps_and_entropies = lambda *a, **k: (logps, x["entropies"], None)
    rows, cols = x["mask"].shape
    base = {
        "prompt_ids": torch.zeros(rows, 1, dtype=torch.long),
        "prompt_mask": torch.ones(rows, 1, dtype=torch.long),
        "completion_ids": torch.zeros(rows, cols, dtype=torch.long),
        "completion_mask": x["mask"],
        "advantages": x["advantages"],
    }
    loss = cls._compute_loss(self, None, {**base, **inputs})
    loss.backward()
    metrics = {k: v[0] for k, v in self._metrics["train"].items()}
    return loss.item(), logps.grad.tolist(), metrics


def compute_loss():
    """GRPOTrainer._compute_loss and RLOOTrainer._compute_loss themselves, with the model's
    forward mocked: every loss type, token and sequence ratios, β, δ and the high-entropy mask,
    on four completions of lengths 5, 2, 0 (masked out whole) and 3."""
    cases = []
    x = loss_inputs(7, [5, 2, 0, 3], [0.9, -1.3, 0.5, -0.6], [0.35, -0.4, 0.0, 0.1])
    for loss_type in ("grpo", "bnpo", "dr_grpo", "dapo", "cispo"):
        for level in ("token", "sequence"):
            for beta in (0.0, 0.04):
                for delta in (None, 1.1):
                    for quantile in (1.0, 0.5):
                        if (delta is not None or quantile < 1.0) and (beta > 0.0 or level == "sequence"):
                            continue
                        attrs = dict(
                            loss_type=loss_type,
                            importance_sampling_level=level,
                            beta=beta,
                            epsilon_low=0.2,
                            epsilon_high=0.28 if loss_type != "cispo" else 1.05,
                            top_entropy_quantile=quantile,
                            max_completion_length=6,
                        )
                        inputs = {
                            "old_per_token_logps": x["old"],
                            "ref_per_token_logps": x["ref"],
                            "num_items_in_batch": x["mask"].sum(),
                        }
                        loss, grad, metrics = run_compute_loss(trl.GRPOTrainer, attrs, {"delta": delta}, x, inputs)
                        cases.append({"trainer": "GRPOTrainer", **attrs, "delta": delta, "loss": loss, "grad": grad, "metrics": metrics})
    # RLOO: one ratio per completion (its summed log-ratio), no KL term, a mean over completions
    y = loss_inputs(11, [5, 3, 1, 4], [0.8, -1.1, 0.3, -0.4], [0.2, -0.25, 0.1, 0.05])
    for eps_high in (0.2, 0.28):
        attrs = dict(epsilon_low=0.2, epsilon_high=eps_high)
        old = (y["old"] * y["mask"]).sum(1)
        loss, grad, metrics = run_compute_loss(trl.RLOOTrainer, attrs, {}, y, {"old_logps": old})
        cases.append({"trainer": "RLOOTrainer", **attrs, "loss_type": "rloo", "loss": loss, "grad": grad, "metrics": metrics})
    return {
        "inputs": {k: v.tolist() for k, v in x.items()},
        "rloo_inputs": {k: v.tolist() for k, v in y.items()},
        "cases": cases,
    }


TRL_PPO_VERSION = "1.9.0"


def trl_ppo_source():
    """trl 1.9's `trl/experimental/ppo/ppo_trainer.py` and `trl/experimental/utils.py`, read
    from its wheel (1.16 ships no PPO): `pip download trl==1.9.0 --no-deps`."""
    import subprocess
    import sys
    import zipfile

    d = tempfile.mkdtemp()
    subprocess.run(
        [sys.executable, "-m", "pip", "download", f"trl=={TRL_PPO_VERSION}", "--no-deps", "-q", "-d", d],
        check=True,
    )
    (wheel,) = [f for f in os.listdir(d) if f.endswith(".whl")]
    with zipfile.ZipFile(os.path.join(d, wheel)) as z:
        trainer = z.read("trl/experimental/ppo/ppo_trainer.py").decode()
        utils = z.read("trl/experimental/utils.py").decode()
    return trainer, utils


def functions(source, names):
    """The top-level functions `names` of a module's source, as code to exec."""
    import ast

    tree = ast.parse(source)
    return "\n\n".join(
        ast.get_source_segment(source, node)
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name in names
    )


def ppo_advantages():
    """The reward, GAE and whitening block of trl 1.9's `PPOTrainer.train` (from
    `response_idxs = ...` to the masked advantages), cut out of its source and run on fixed
    log-probs, values and scores, for three layouts of the same completions:
    - `cut`: no EOS, every completion at the budget (no padding): the score's slot is the last
      token in TRL's layout and in ours;
    - `pad_is_eos`: EOS then padding with pad == eos (Qwen2.5 base): TRL puts the score on the
      EOS slot, and leaves EOS out of the policy's tokens, its KL and the whitening;
    - `pad_is_not_eos`: EOS then padding with pad != eos: TRL puts the score one slot past EOS."""
    trainer, utils = trl_ppo_source()
    src = trainer[trainer.index("response_idxs = torch.arange"):]
    src = src[: src.index("\n", src.index("advantages = torch.masked_fill(advantages, padding_mask, 0)"))]
    lines = src.split("\n")
    indent = min(len(l) - len(l.lstrip()) for l in lines[1:] if l.strip())
    block = "\n".join([lines[0]] + [l[indent:] for l in lines[1:]])
    helpers = functions(trainer, {"masked_mean", "masked_var", "masked_whiten"}) + "\n\n" + functions(
        utils, {"first_true_indices"}
    )
    scope = {"torch": torch, "INVALID_LOGPROB": 1.0, "empty_cache": lambda: None}
    exec(helpers, scope)
    g = torch.Generator().manual_seed(5)
    n, t = 3, 6
    logprobs = -torch.rand(n, t, generator=g) * 2.0 - 0.1
    ref_logprobs = logprobs + (torch.rand(n, t, generator=g) - 0.5) * 0.6
    values = torch.rand(n, t, generator=g) - 0.3
    scores = torch.tensor([1.0, 0.0, 0.5])
    tokens, eos, pad = 7, 2, 0
    cases = []
    for layout, lengths, pad_id in [("cut", [6, 6, 6], pad), ("pad_is_eos", [4, 2, 6], eos), ("pad_is_not_eos", [4, 2, 6], pad)]:
        responses = torch.full((n, t), tokens)
        for i, length in enumerate(lengths):
            if length < t:  # `length` tokens, then EOS, then padding
                responses[i, length] = eos
                responses[i, length + 1 :] = pad_id
        for kl_estimator in ("k1", "k3"):
            for whiten_rewards in (False, True):
                args = types.SimpleNamespace(
                    kl_coef=0.05, kl_estimator=kl_estimator, whiten_rewards=whiten_rewards, gamma=1.0, lam=0.95
                )
                postprocessed = responses.clone()
                sequence_lengths = scope["first_true_indices"](postprocessed == pad_id) - 1
                local = dict(
                    scope,
                    args=args,
                    responses=responses,
                    sequence_lengths=sequence_lengths,
                    logprobs=logprobs.clone(),
                    ref_logprobs=ref_logprobs.clone(),
                    values=values.clone(),
                    scores=scores.clone(),
                )
                exec(block, local)
                cases.append(
                    {
                        "layout": layout,
                        "completion_tokens": lengths,
                        "kl_estimator": kl_estimator,
                        "whiten_rewards": whiten_rewards,
                        "policy_mask": (~local["padding_mask"]).float().tolist(),
                        "value_mask": (~local["padding_mask_p1"]).float().tolist(),
                        "rewards": local["rewards"].tolist(),
                        "advantages": local["advantages"].tolist(),
                        "returns": local["returns"].tolist(),
                    }
                )
    return {
        "trl_version": TRL_PPO_VERSION,
        "gamma": 1.0,
        "lam": 0.95,
        "kl_coef": 0.05,
        "logps": logprobs.tolist(),
        "ref_logps": ref_logprobs.tolist(),
        "values": values.tolist(),
        "scores": scores.tolist(),
        "cases": cases,
    }


def repetition_penalty():
    """transformers' repetition penalty: its logits processor on fixed logits, and greedy
    `generate` of the shipped model with and without it (the penalty changes the text)."""
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

    g = torch.Generator().manual_seed(3)
    scores = torch.randn(2, 12, generator=g) * 2.0
    input_ids = torch.tensor([[1, 3, 3, 7, 11], [0, 5, 2, 2, 9]])
    processed = RepetitionPenaltyLogitsProcessor(penalty=1.7)(input_ids, scores.clone())
    model_dir = os.path.join(REPO, "model")
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    model.eval()
    texts = [
        "<|im_start|>user\nWhat is 17 + 25?<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>user\nA box holds 6 eggs. How many eggs are in 9 boxes?<|im_end|>\n<|im_start|>assistant\n",
    ]
    eos = model.generation_config.eos_token_id
    eos = eos if isinstance(eos, list) else [eos]
    greedy = []
    for text in texts:
        ids = tok(text, return_tensors="pt").input_ids
        row = {"prompt_ids": ids[0].tolist()}
        for name, penalty in (("plain", 1.0), ("penalised", 1.3)):
            with torch.no_grad():
                out = model.generate(
                    ids, do_sample=False, max_new_tokens=40, repetition_penalty=penalty, eos_token_id=eos, pad_token_id=eos[0]
                )
            row[name] = out[0, ids.shape[1] :].tolist()
        greedy.append(row)
    return {
        "penalty": 1.7,
        "scores": scores.tolist(),
        "input_ids": input_ids.tolist(),
        "processed": processed.tolist(),
        "generate_penalty": 1.3,
        "eos_token_id": eos,
        "greedy": greedy,
    }


SCHEDULES = [
    ("linear", {}, 10, 2),
    ("cosine", {}, 12, 3),
    ("cosine", {"num_cycles": 1.5}, 12, 3),
    ("cosine_with_min_lr", {"min_lr": 1e-4}, 12, 3),
    ("cosine_with_min_lr", {"min_lr_rate": 0.2, "num_cycles": 0.75}, 12, 0),
    ("cosine_with_restarts", {"num_cycles": 3}, 15, 3),
    ("polynomial", {"lr_end": 1e-5, "power": 2.0}, 10, 2),
    ("constant_with_warmup", {}, 8, 3),
]


def schedules():
    """transformers' `get_scheduler` with `scheduler_specific_kwargs` (TRL's
    `lr_scheduler_kwargs`): the learning rate of every optimizer step, a peak of 1e-3."""
    out = []
    for name, kwargs, total, warmup in SCHEDULES:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
        sched = transformers.get_scheduler(
            name, opt, num_warmup_steps=warmup, num_training_steps=total, scheduler_specific_kwargs=kwargs
        )
        lrs = [1e-3 * sched.lr_lambdas[0](step) for step in range(total + 3)]
        out.append({"type": name, "kwargs": kwargs, "total": total, "warmup_steps": warmup, "lrs": lrs})
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    fixtures = {
        "config_defaults.json": config_defaults(),
        "soft_overlong.json": soft_overlong(),
        "decay_parameters.json": decay_parameter_names(),
        "chat_template_source.json": chat_template_source(),
        "reward_statistics.json": reward_statistics(),
        "compute_loss.json": compute_loss(),
        "ppo_advantages.json": ppo_advantages(),
        "repetition_penalty.json": repetition_penalty(),
        "schedules.json": schedules(),
    }
    versions = {"trl": trl.__version__, "transformers": transformers.__version__, "torch": torch.__version__}
    for name, value in fixtures.items():
        with open(os.path.join(OUT, name), "w") as f:
            json.dump({"made_by": "scripts/trl_parity.py", "versions": versions, "data": jsonable(value)}, f, indent=1)
            f.write("\n")
        print("wrote", os.path.join("tests", "fixtures", "trl", name))


if __name__ == "__main__":
    main()
