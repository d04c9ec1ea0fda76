#!/usr/bin/env python3
"""Try every subcommand of `mgrpo` with bad input, as a hostile user would, and count how each
attempt ends. Every case is a command that must fail; it is

  clear      exit status 1 or 2, the last stderr line an `error:` that names what is at fault
             (the file, line, key or flag the case lists), with no Debug-escaped text in it;
  unclear    it fails, but the message misses the name or is a Debug dump;
  panic      exit 101, 134 or a signal, or "panicked" on stderr;
  silent     exit 0;
  hang       still running at the case's timeout;

(round three, `hostile_round3.py`, adds cases that must succeed, bounded, and cases that must
succeed with a warning: see its header)

and separately a *leftover* when it leaves a temporary file (`.tmp-`) or the output it was
asked to write (nothing half-written may stay on disk).

    python3 scripts/hostile_inputs.py [--mgrpo target/release/mgrpo] [-v]

Standard library only. Each case runs in a fresh directory with copies of the copy-task
fixture; the run-integrity cases (corrupt checkpoints, cut histories) first train a few steps.
"""

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
CT = REPO / "tests/fixtures/copy-task"
CONFIG = REPO / "configs/copy-grpo.toml"
SFT_CONFIG = REPO / "configs/copy-sft.toml"


# --- fixtures a case can ask for --------------------------------------------------------------

def copy_model(d, name="m", config=None, tensor=None):
    """A copy of the copy-task model in d/name, with config.json keys replaced and, optionally,
    one tensor's values all set to a float (tensor = (key, value))."""
    dst = d / name
    shutil.copytree(CT, dst)
    if config:
        c = json.loads((dst / "config.json").read_text())
        c.update(config)
        (dst / "config.json").write_text(json.dumps(c))
    if tensor:
        key, value = tensor
        b = bytearray((dst / "model.safetensors").read_bytes())
        n = struct.unpack("<Q", b[:8])[0]
        start, end = json.loads(b[8:8 + n])[key]["data_offsets"]
        for i in range(8 + n + start, 8 + n + end, 4):
            b[i:i + 4] = struct.pack("<f", value)
        (dst / "model.safetensors").write_bytes(b)
    return str(dst)


def with_file(model, name, text=None, keep=None):
    """`model` with file `name` replaced by `text`, cut to its first `keep` bytes, or
    removed (neither given)."""
    p = Path(model, name)
    if text is not None:
        p.write_text(text)
    elif keep is not None:
        p.write_bytes(p.read_bytes()[:keep])
    else:
        p.unlink()
    return model


def write(d, name, text):
    p = d / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return str(p)


def trained_run(d, mgrpo, steps=4, stop=None):
    """A run of the copy task with checkpoints every 2 steps (stopped at `stop`)."""
    run = d / "run"
    cmd = [mgrpo, "train", "--config", str(CONFIG), "--out", str(run),
           "--set", f"max_steps={steps}", "--set", "save_steps=2"]
    if stop:
        cmd += ["--stop-after", str(stop)]
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)
    return run


# Commands that read run configs run from the repository (the configs' paths are relative to
# it, as in the README); their outputs go to OUT, the case's directory.
OUT = "@OUT@"


def train(*extra, out=OUT + "/out"):
    return ["train", "--config", str(CONFIG), "--out", out, *extra]


def sets(*kv):
    args = []
    for x in kv:
        args += ["--set", x]
    return args


# --- the cases: (subcommand, what, setup(d, mgrpo) -> argv, names, outputs) -------------------
# `names`: one of these must appear in the error; `outputs`: paths that must not exist after.

def cases():
    c = []

    def case(cmd, what, setup, names, outputs=(), expect="fail", timeout=300):
        c.append((cmd, what, setup, names, list(outputs), expect, timeout))

    ids = lambda d: write(d, "in.jsonl", '{"input_ids": [1, 2, 3]}\n')
    # score
    case("score", "missing input file", lambda d, m: ["score", "--model", str(CT), "--input", "nope.jsonl"], ["nope.jsonl"])
    case("score", "invalid JSON on line 2", lambda d, m: ["score", "--model", str(CT), "--input", write(d, "b.jsonl", '{"input_ids": [1, 2]}\n{oops\n')], ["b.jsonl:2"])
    case("score", "token id beyond the vocabulary", lambda d, m: ["score", "--model", str(CT), "--input", write(d, "b.jsonl", '{"input_ids": [1, 99999]}\n')], ["b.jsonl:1"])
    case("score", "negative token id", lambda d, m: ["score", "--model", str(CT), "--input", write(d, "b.jsonl", '{"input_ids": [1, -2]}\n')], ["b.jsonl:1"])
    case("score", "row with neither ids nor text", lambda d, m: ["score", "--model", str(CT), "--input", write(d, "b.jsonl", '{"prompt": "1"}\n')], ["b.jsonl:1", "completion"])
    case("score", "row that is not an object", lambda d, m: ["score", "--model", str(CT), "--input", write(d, "b.jsonl", '[1, 2]\n')], ["b.jsonl:1"])
    case("score", "row longer than the context", lambda d, m: ["score", "--model", str(CT), "--input", write(d, "b.jsonl", json.dumps({"input_ids": [1] * 5000}) + "\n")], ["b.jsonl:1"])
    case("score", "model directory missing", lambda d, m: ["score", "--model", "nomodel", "--input", ids(d)], ["nomodel"])
    case("score", "config.json not JSON", lambda d, m: ["score", "--model", with_file(copy_model(d), "config.json", "{"), "--input", ids(d)], ["config.json"])
    case("score", "config key of the wrong type", lambda d, m: ["score", "--model", copy_model(d, config={"hidden_size": "wide"}), "--input", ids(d)], ["hidden_size"])
    case("score", "config size zero", lambda d, m: ["score", "--model", copy_model(d, config={"num_attention_heads": 0}), "--input", ids(d)], ["num_attention_heads"])
    case("score", "heads not dividing hidden", lambda d, m: ["score", "--model", copy_model(d, config={"num_attention_heads": 5}), "--input", ids(d)], ["num_attention_heads"])
    case("score", "weights truncated", lambda d, m: ["score", "--model", with_file(copy_model(d), "model.safetensors", keep=3000), "--input", ids(d)], ["model.safetensors"])
    case("score", "weights of the wrong shape", lambda d, m: ["score", "--model", copy_model(d, config={"hidden_size": 64, "intermediate_size": 64}), "--input", ids(d)], ["shape"])
    case("score", "NaN weights", lambda d, m: ["score", "--model", copy_model(d, tensor=("model.norm.weight", float("nan"))), "--input", ids(d)], ["model.norm.weight"])
    case("score", "overflowing weights", lambda d, m: ["score", "--model", copy_model(d, tensor=("model.layers.0.mlp.up_proj.weight", 3e38)), "--input", ids(d)], ["in.jsonl:1"])
    case("score", "tokenizer.json broken, text rows", lambda d, m: ["score", "--model", with_file(copy_model(d), "tokenizer.json", "{"), "--input", write(d, "t.jsonl", '{"prompt": "1", "completion": "1"}\n')], ["tokenizer"])
    case("score", "--batch-size 0", lambda d, m: ["score", "--model", str(CT), "--input", ids(d), "--batch-size", "0"], ["--batch-size"])
    case("score", "--device tpu", lambda d, m: ["score", "--model", str(CT), "--input", ids(d), "--device", "tpu"], ["tpu"])
    case("score", "--dtype f8", lambda d, m: ["score", "--model", str(CT), "--input", ids(d), "--dtype", "f8"], ["f8"])
    case("score", "unknown template", lambda d, m: ["score", "--model", str(CT), "--input", ids(d), "--template", "nosuch"], ["nosuch"])
    case("score", "--output into a missing directory", lambda d, m: ["score", "--model", str(CT), "--input", ids(d), "--output", "no/such/dir/o.jsonl"], ["o.jsonl"])

    # generate
    g = lambda *a: ["generate", "--model", str(CT), "--prompt", "1", *a]
    case("generate", "--max-new-tokens 0", lambda d, m: g("--max-new-tokens", "0"), ["--max-new-tokens"])
    case("generate", "--max-new-tokens -3", lambda d, m: g("--max-new-tokens", "-3"), ["--max-new-tokens"])
    case("generate", "--temperature -1", lambda d, m: g("--temperature", "-1"), ["--temperature"])
    case("generate", "--temperature nan", lambda d, m: g("--temperature", "nan"), ["--temperature"])
    case("generate", "--top-p 0", lambda d, m: g("--top-p", "0"), ["--top-p"])
    case("generate", "--top-p 1.5", lambda d, m: g("--top-p", "1.5"), ["--top-p"])
    case("generate", "--min-p 1", lambda d, m: g("--min-p", "1"), ["--min-p"])
    case("generate", "--num-return-sequences 0", lambda d, m: g("--num-return-sequences", "0"), ["--num-return-sequences"])
    case("generate", "--batch-size 0", lambda d, m: g("--batch-size", "0"), ["--batch-size"])
    case("generate", "prompt longer than the context", lambda d, m: g() [:4] + ["1" * 600], ["context", "max_position_embeddings", "--prompt"])
    case("generate", "empty prompt", lambda d, m: ["generate", "--model", str(CT), "--prompt", ""], ["--prompt"])
    case("generate", "--input row without a prompt", lambda d, m: ["generate", "--model", str(CT), "--input", write(d, "p.jsonl", '{"question": "1"}\n')], ["p.jsonl:1"])
    case("generate", "--input missing", lambda d, m: ["generate", "--model", str(CT), "--input", "nope.jsonl"], ["nope.jsonl"])
    case("generate", "eos_token_id out of vocabulary", lambda d, m: ["generate", "--model", copy_model(d, config={"eos_token_id": 99999}), "--prompt", "1"], ["eos_token_id"])
    case("generate", "bos_token_id out of vocabulary", lambda d, m: ["generate", "--model", copy_model(d, config={"bos_token_id": -1}), "--prompt", "1"], ["bos_token_id"])
    case("generate", "NaN weights", lambda d, m: ["generate", "--model", copy_model(d, tensor=("model.embed_tokens.weight", float("inf"))), "--prompt", "1"], ["model.embed_tokens.weight"])
    case("generate", "overflowing forward pass", lambda d, m: ["generate", "--model", copy_model(d, tensor=("model.layers.0.mlp.up_proj.weight", 3e38)), "--prompt", "1", "--output", "o.jsonl"], ["non-finite logits"], ["o.jsonl"])
    case("generate", "unknown stop-string syntax: empty --stop", lambda d, m: g("--stop", ""), ["--stop"])
    case("generate", "text prompt, no tokenizer", lambda d, m: ["generate", "--model", with_file(copy_model(d), "tokenizer.json"), "--prompt", "1"], ["tokenizer"])

    # convert
    cv = lambda *a: ["convert", "--model", str(CT), *a]
    case("convert", "--dtype f16", lambda d, m: cv("--out", "o", "--dtype", "f16"), ["f16"], ["o"])
    case("convert", "--out exists", lambda d, m: cv("--out", (lambda p: (p.mkdir(), str(p))[1])(d / "exists")), ["exists"])
    case("convert", "source missing", lambda d, m: ["convert", "--model", "nomodel", "--out", "o"], ["nomodel"], ["o"])
    case("convert", "--max-shard-bytes 0", lambda d, m: cv("--out", "o", "--max-shard-bytes", "0"), ["--max-shard-bytes"], ["o"])
    case("convert", "NaN weights", lambda d, m: ["convert", "--model", copy_model(d, tensor=("model.norm.weight", float("nan"))), "--out", "o"], ["model.norm.weight"], ["o"])
    case("convert", "num_hidden_layers 0", lambda d, m: ["convert", "--model", copy_model(d, config={"num_hidden_layers": 0}), "--out", "o"], ["num_hidden_layers"], ["o"])

    # bench
    case("bench", "unknown shape", lambda d, m: ["bench", "score", "--shape", "huge"], ["huge"])
    case("bench", "unknown work", lambda d, m: ["bench", "sing"], ["sing"])
    case("bench", "--iters 0", lambda d, m: ["bench", "score", "--iters", "0"], ["--iters"])
    case("bench", "--batch 0", lambda d, m: ["bench", "score", "--batch", "0"], ["--batch"])
    case("bench", "--hbm-tbps -1", lambda d, m: ["bench", "generate", "--hbm-tbps", "-1"], ["--hbm-tbps"])
    case("bench", "--seq beyond the context", lambda d, m: ["bench", "train", "--seq", "100000"], ["--seq"])

    # verify
    case("verify", "--input missing", lambda d, m: ["verify", "--input", "nope.jsonl"], ["nope.jsonl"])
    case("verify", "invalid JSON", lambda d, m: ["verify", "--input", write(d, "v.jsonl", '{"gold": "1", "pred": "1"}\n{\n')], ["v.jsonl:2"])
    case("verify", "row without gold", lambda d, m: ["verify", "--input", write(d, "v.jsonl", '{"pred": "1"}\n')], ["v.jsonl:1"])
    case("verify", "gold that is a number", lambda d, m: ["verify", "--input", write(d, "v.jsonl", '{"gold": 1, "pred": "1"}\n')], ["v.jsonl:1"])
    case("verify", "unknown policy key", lambda d, m: ["verify", "--input", write(d, "v.jsonl", '{"gold": "1", "pred": "1"}\n'), "--policy", "bogus=1"], ["bogus"])
    case("verify", "bad policy value", lambda d, m: ["verify", "--input", write(d, "v.jsonl", '{"gold": "1", "pred": "1"}\n'), "--policy", "percent=weird"], ["percent"])
    case("verify", "dataset missing", lambda d, m: ["verify", "--dataset", "nope.jsonl", "--self-check"], ["nope.jsonl"])
    case("verify", "dataset of unknown format", lambda d, m: ["verify", "--dataset", write(d, "ds.jsonl", '{"x": 1}\n'), "--self-check"], ["ds.jsonl"])
    case("verify", "--format bogus", lambda d, m: ["verify", "--dataset", str(CT / "train.jsonl"), "--format", "bogus", "--self-check"], ["bogus"])
    case("verify", "empty dataset", lambda d, m: ["verify", "--dataset", write(d, "e.jsonl", ""), "--self-check"], ["e.jsonl"])
    case("verify", "prediction for an unknown id", lambda d, m: ["verify", "--dataset", str(CT / "train.jsonl"), "--predictions", write(d, "p.jsonl", '{"id": "nope", "completion": "1"}\n')], ["p.jsonl:1"])
    case("verify", "prediction without text", lambda d, m: ["verify", "--dataset", str(CT / "train.jsonl"), "--predictions", write(d, "p.jsonl", '{"id": "copy-1"}\n')], ["p.jsonl:1"])
    case("verify", "--output into a missing directory", lambda d, m: ["verify", "--input", write(d, "v.jsonl", '{"gold": "1", "pred": "1"}\n'), "--output", "no/dir/o.jsonl"], ["o.jsonl"])

    # train: the config
    case("train", "config missing", lambda d, m: ["train", "--config", "nope.toml", "--out", OUT + "/out"], ["nope.toml"], ["out"])
    case("train", "TOML syntax error", lambda d, m: ["train", "--config", write(d, "c.toml", "model = \n"), "--out", OUT + "/out"], ["c.toml: TOML parse error at line 1"], ["out"])
    case("train", "unknown key", lambda d, m: train(*sets("learning_rat=1e-3")), ["learning_rat"], ["out"])
    case("train", "key of the wrong type", lambda d, m: train(*sets("max_steps=many")), ["max_steps"], ["out"])
    case("train", "--set without =", lambda d, m: train("--set", "beta"), ["beta"], ["out"])
    case("train", "learning_rate < 0", lambda d, m: train(*sets("learning_rate=-1")), ["learning_rate"], ["out"])
    case("train", "num_generations 1", lambda d, m: train(*sets("num_generations=1")), ["num_generations"], ["out"])
    case("train", "beta < 0", lambda d, m: train(*sets("beta=-0.1")), ["beta"], ["out"])
    case("train", "epsilon < 0", lambda d, m: train(*sets("epsilon=-0.2")), ["epsilon"], ["out"])
    case("train", "unknown loss_type", lambda d, m: train(*sets("loss_type='nope'")), ["loss_type"], ["out"])
    case("train", "unknown algorithm", lambda d, m: train(*sets("algorithm='ppo2'")), ["algorithm"], ["out"])
    case("train", "unknown scheduler", lambda d, m: train(*sets("lr_scheduler_type='zigzag'")), ["lr_scheduler_type"], ["out"])
    case("train", "max_steps 0", lambda d, m: train(*sets("max_steps=0")), ["max_steps"], ["out"])
    case("train", "max_completion_length 0", lambda d, m: train(*sets("max_completion_length=0")), ["max_completion_length"], ["out"])
    case("train", "batch not a multiple of G", lambda d, m: train(*sets("per_device_train_batch_size=7")), ["per_device_train_batch_size", "num_generations"], ["out"])
    case("train", "temperature < 0", lambda d, m: train(*sets("temperature=-1")), ["temperature"], ["out"])
    case("train", "top_p 0", lambda d, m: train(*sets("top_p=0")), ["top_p"], ["out"])
    case("train", "unknown template", lambda d, m: train(*sets("template='nosuch'")), ["nosuch", "template"], ["out"])
    case("train", "unknown reward function", lambda d, m: train(*sets("reward.funcs=['nosuch']")), ["nosuch"], ["out"])
    case("train", "reward weights of the wrong length", lambda d, m: train(*sets("reward.funcs=['accuracy']", "reward.weights=[1, 2]")), ["weights"], ["out"])
    case("train", "reward command that fails", lambda d, m: train(*sets("reward.funcs=['x']", "reward.correct_threshold=1", "reward.commands.x.command=['false']")), ["reward `x`"], ["out/model"])
    case("train", "model missing", lambda d, m: train(*sets("model='nomodel'")), ["nomodel"], ["out"])
    case("train", "model with NaN weights", lambda d, m: train(*sets(f"model='{copy_model(d, tensor=('model.norm.weight', float('nan')))}'")), ["model.norm.weight"], ["out"])
    case("train", "dataset missing", lambda d, m: train(*sets("dataset='nope.jsonl'")), ["nope.jsonl"], ["out"])
    case("train", "dataset with a bad line", lambda d, m: train(*sets(f"dataset='{write(d, 'ds.jsonl', json.dumps({'question': '1', 'answer': '#### 1'}) + chr(10) + '{' + chr(10))}'")), ["ds.jsonl:2"], ["out"])
    case("train", "empty dataset", lambda d, m: train(*sets(f"dataset='{write(d, 'e.jsonl', '')}'")), ["e.jsonl"], ["out"])
    case("train", "dataset without answers", lambda d, m: train(*sets(f"dataset='{write(d, 'q.jsonl', json.dumps({'question': '1'}) + chr(10))}'")), ["q.jsonl"], ["out"])
    case("train", "eval_dataset missing", lambda d, m: train(*sets("eval_dataset='nope.jsonl'")), ["nope.jsonl"], ["out"])
    case("train", "device memory too small", lambda d, m: train(*sets("device_memory_gib=0.0000001")), ["device_memory_gib"], ["out"])
    case("train", "--stop-after 0", lambda d, m: train("--stop-after", "0"), ["--stop-after"], ["out"])
    case("train", "--stop-after past the end", lambda d, m: train("--stop-after", "1000"), ["--stop-after"], ["out"])
    case("train", "--device cuda without the feature", lambda d, m: train("--device", "cuda"), ["cuda"], ["out"])

    # train: the run directory
    case("train", "--resume of a missing directory", lambda d, m: ["train", "--resume", "nodir"], ["nodir"])
    case("train", "--resume of a directory with no run", lambda d, m: ["train", "--resume", (lambda p: (p.mkdir(), str(p))[1])(d / "empty")], ["config.resolved.toml"])
    case("train", "new run into a directory that holds one", lambda d, m: train(out=str(trained_run(d, m))), ["already holds a run"])

    def corrupt(d, m, f):
        run = trained_run(d, m)
        f(run / "checkpoints/step-000004")
        return ["train", "--resume", str(run)]

    def flip(p):
        b = bytearray(p.read_bytes())
        for i in range(len(b) // 2, len(b) // 2 + 64):
            b[i] ^= 0xA5
        p.write_bytes(b)

    def edit_state(key, value):
        def f(ck):
            s = json.loads((ck / "trainer_state.json").read_text())
            s[key] = value
            (ck / "trainer_state.json").write_text(json.dumps(s))
        return f

    case("train", "flipped bytes in optimizer.bin", lambda d, m: corrupt(d, m, lambda ck: flip(ck / "optimizer.bin")), ["optimizer.bin"])
    case("train", "flipped bytes in the weights", lambda d, m: corrupt(d, m, lambda ck: flip(ck / "model/model.safetensors")), ["model.safetensors"])
    case("train", "trainer_state step 999", lambda d, m: corrupt(d, m, edit_state("step", 999)), ["trainer_state.json"])
    case("train", "data_position 1e15", lambda d, m: corrupt(d, m, edit_state("data_position", 10**15)), ["trainer_state.json"])
    case("train", "trainer_state not JSON", lambda d, m: corrupt(d, m, lambda ck: (ck / "trainer_state.json").write_text("{")), ["trainer_state.json"])
    case("train", "weights deleted", lambda d, m: corrupt(d, m, lambda ck: os.remove(ck / "model/model.safetensors")), ["model.safetensors"])
    case("train", "old checkpoint, optimizer.bin truncated", lambda d, m: corrupt(d, m, lambda ck: (os.remove(ck / "manifest.json"), (ck / "optimizer.bin").write_bytes((ck / "optimizer.bin").read_bytes()[:100]))), ["optimizer.bin"])
    case("train", "manifest not JSON", lambda d, m: corrupt(d, m, lambda ck: (ck / "manifest.json").write_text("[")), ["manifest.json"])

    def cut_metrics(d, m, keep):
        run = trained_run(d, m, steps=6, stop=4)
        lines = (run / "metrics.jsonl").read_text().splitlines()[:keep]
        (run / "metrics.jsonl").write_text("".join(x + "\n" for x in lines))
        return ["train", "--resume", str(run)]

    case("train", "metrics.jsonl cut", lambda d, m: cut_metrics(d, m, 2), ["metrics.jsonl"])
    case("train", "metrics.jsonl emptied", lambda d, m: cut_metrics(d, m, 0), ["metrics.jsonl"])
    case("train", "--stop-after behind the checkpoint", lambda d, m: ["train", "--resume", str(trained_run(d, m, steps=6, stop=4)), "--stop-after", "2"], ["--stop-after"])

    # eval
    ev = lambda *a: ["eval", "--model", str(CT), "--data", str(CT / "train.jsonl"), *a]
    case("eval", "--data missing", lambda d, m: ["eval", "--model", str(CT), "--data", "nope.jsonl"], ["nope.jsonl"])
    case("eval", "--model missing", lambda d, m: ["eval", "--model", "nomodel", "--data", str(CT / "train.jsonl")], ["nomodel"])
    case("eval", "--turns 3", lambda d, m: ev("--turns", "3"), ["--turns"])
    case("eval", "--temperature -1", lambda d, m: ev("--temperature", "-1"), ["--temperature"])
    case("eval", "--top-p 2", lambda d, m: ev("--top-p", "2"), ["--top-p"])
    case("eval", "--limit 0", lambda d, m: ev("--limit", "0"), ["--limit"])
    case("eval", "--max-new-tokens 0", lambda d, m: ev("--max-new-tokens", "0"), ["--max-new-tokens"])
    case("eval", "--batch-size 0", lambda d, m: ev("--batch-size", "0"), ["--batch-size"])
    case("eval", "unknown baseline", lambda d, m: ev("--baseline", "nosuch"), ["nosuch"])
    case("eval", "unknown template", lambda d, m: ev("--template", "nosuch"), ["nosuch"])
    case("eval", "data with a bad line", lambda d, m: ["eval", "--model", str(CT), "--data", write(d, "ds.jsonl", '{"question": "1", "answer": "#### 1"}\n{\n'), "--out", "o"], ["ds.jsonl:2"], ["o"])
    case("eval", "--format bogus", lambda d, m: ev("--format", "bogus"), ["bogus"])

    # sft
    sft = lambda *a: ["sft", "--config", str(SFT_CONFIG), "--out", OUT + "/out", *a]
    case("sft", "config missing", lambda d, m: ["sft", "--config", "nope.toml", "--out", OUT + "/out"], ["nope.toml"], ["out"])
    case("sft", "unknown key", lambda d, m: sft(*sets("learnin_rate=1")), ["learnin_rate"], ["out"])
    case("sft", "learning_rate < 0", lambda d, m: sft(*sets("learning_rate=-1")), ["learning_rate"], ["out"])
    case("sft", "dataset missing", lambda d, m: sft(*sets("dataset='nope.jsonl'")), ["nope.jsonl"], ["out"])
    case("sft", "row without completion", lambda d, m: sft(*sets(f"dataset='{write(d, 's.jsonl', json.dumps({'prompt': '1'}) + chr(10))}'")), ["s.jsonl:1"], ["out"])
    case("sft", "example beyond max_length", lambda d, m: sft(*sets(f"dataset='{write(d, 's.jsonl', json.dumps({'prompt': '1', 'completion': '1' * 600}) + chr(10))}'")), ["s.jsonl"], ["out"])
    case("sft", "per_device_train_batch_size 0", lambda d, m: sft(*sets("per_device_train_batch_size=0")), ["per_device_train_batch_size"], ["out"])
    case("sft", "model missing", lambda d, m: sft(*sets("model='nomodel'")), ["nomodel"], ["out"])

    # task
    case("task", "--carry-rate 1.5", lambda d, m: ["task", "--out", "o", "--carry-rate", "1.5"], ["--carry-rate"], ["o"])
    case("task", "--trace-share -0.1", lambda d, m: ["task", "--out", "o", "--trace-share", "-0.1"], ["--trace-share"], ["o"])
    case("task", "--digits 0", lambda d, m: ["task", "--out", "o", "--digits", "0"], ["digits"], ["o"])
    case("task", "--min-steps above --max-steps", lambda d, m: ["task", "--out", "o", "--min-steps", "5", "--max-steps", "2"], ["steps"], ["o"])
    case("task", "unknown template", lambda d, m: ["task", "--out", "o", "--template", "nosuch"], ["nosuch"], ["o"])

    # init
    ini = lambda *a: ["init", "--corpus", str(CT / "sft.jsonl"), "--out", "o", *a]
    case("init", "--hidden-size 0", lambda d, m: ini("--hidden-size", "0"), ["--hidden-size"], ["o"])
    case("init", "--num-hidden-layers 0", lambda d, m: ini("--num-hidden-layers", "0"), ["--num-hidden-layers"], ["o"])
    case("init", "heads not dividing hidden", lambda d, m: ini("--num-attention-heads", "5"), ["--hidden-size: 128 is not a multiple of num_attention_heads 5"], ["o"])
    case("init", "kv heads not dividing heads", lambda d, m: ini("--num-key-value-heads", "3"), ["--num-attention-heads: 4 is not a multiple of num_key_value_heads 3"], ["o"])
    case("init", "vocabulary below the byte alphabet", lambda d, m: ini("--vocab-size", "100"), ["--vocab-size"], ["o"])
    case("init", "--rope-theta -1", lambda d, m: ini("--rope-theta", "-1"), ["--rope-theta"], ["o"])
    case("init", "corpus missing", lambda d, m: ["init", "--corpus", "nope.jsonl", "--out", "o"], ["nope.jsonl"], ["o"])
    case("init", "--out exists", lambda d, m: ["init", "--corpus", str(CT / "sft.jsonl"), "--out", (lambda p: (p.mkdir(), str(p))[1])(d / "exists")], ["exists"])

    # round three (issue 49): planted links, replaced inputs, unbounded sizes and timeouts
    def planted_lock(d, m):
        (d / "victim").write_text("precious\n")
        (d / "out").mkdir()
        os.symlink(d / "victim", d / "out" / ".lock")
        return train("--set", "max_steps=1")
    case("train", "RUN/.lock planted as a link to another file", planted_lock, [".lock"])
    case("train", "RUN/.lock planted as a dangling link", lambda d, m: ((d / "out").mkdir(), os.symlink(d / "nothing", d / "out" / ".lock"), train())[2], [".lock"], ["nothing"])
    dup = lambda d: write(d, "ev.jsonl", '{"id": "a", "question": "1", "answer": "#### 1"}\n{"id": "a", "question": "2", "answer": "#### 2"}\n')
    case("train", "evaluation set with a repeated id", lambda d, m: train(*sets(f'eval_dataset="{dup(d)}"')), ["`a` appears twice"], ["out/metrics.jsonl"])
    reward_cfg = lambda d, t: write(d, "r.toml", f'model = "{CT}"\ndataset = "{CT / "train.jsonl"}"\ntemplate = "plain"\nmax_completion_length = 1\nmax_steps = 1\n[reward]\nfuncs = ["accuracy", "mine"]\n[reward.commands.mine]\ncommand = ["echo", "1"]\ntimeout_s = {t}\n')
    case("train", "reward timeout_s = 1e20", lambda d, m: ["train", "--config", reward_cfg(d, "1e20"), "--out", str(d / "o")], ["commands.mine.timeout_s"], ["o"])
    case("train", "reward timeout_s = inf", lambda d, m: ["train", "--config", reward_cfg(d, "inf"), "--out", str(d / "o")], ["commands.mine.timeout_s"], ["o"])
    case("task", "--test 10^17", lambda d, m: ["task", "--out", "o", "--test", "100000000000000000"], ["--test"], ["o"])
    case("task", "--sft 2^64 - 1", lambda d, m: ["task", "--out", "o", "--sft", "18446744073709551615"], ["--sft"], ["o"])
    case("task", "--train 10^9", lambda d, m: ["task", "--out", "o", "--train", "1000000000"], ["--train"], ["o"])
    same = lambda d: write(d, "same.jsonl", '{"input_ids": [1, 2, 3]}\n')
    case("verify", "--output is the --input", lambda d, m: (lambda f: ["verify", "--input", f, "--output", f])(write(d, "p.jsonl", '{"gold": "2", "pred": "2"}\n')), ["--output"])
    case("verify", "--output is the --dataset", lambda d, m: (lambda f: ["verify", "--dataset", f, "--self-check", "--output", f])(write(d, "ds.jsonl", '{"question": "1", "answer": "#### 1"}\n')), ["--dataset"])
    case("score", "--output is the --input", lambda d, m: (lambda f: ["score", "--model", str(CT), "--input", f, "--output", f])(same(d)), ["--input"])
    case("generate", "--output is the --input", lambda d, m: (lambda f: ["generate", "--model", str(CT), "--input", f, "--output", f])(same(d)), ["--input"])

    import hostile_round3
    hostile_round3.add_cases(case, {
        "CT": CT, "CONFIG": CONFIG, "SFT_CONFIG": SFT_CONFIG, "OUT": OUT, "REPO": REPO,
        "copy_model": copy_model, "with_file": with_file, "write": write, "train": train,
        "sets": sets, "trained_run": trained_run})
    return c


def leftovers(d, outputs):
    found = [str(p.relative_to(d)) for p in d.rglob("*") if ".tmp-" in p.name]
    found += [o for o in outputs if (d / o).exists()]
    return found


def classify(proc, names, expect="fail"):
    err = proc.stderr.strip()
    lines = err.splitlines()
    if proc.returncode < 0 or proc.returncode in (101, 134) or "panicked" in err:
        return "panic", lines[-1] if lines else ""
    if expect == "ok":
        return ("clear" if proc.returncode == 0 else "unclear"), lines[-1] if lines else ""
    if expect == "warn":
        said = next((x for x in lines if any(n in x for n in names)), None)
        if proc.returncode == 0 and said:
            return "clear", said
        return ("silent" if proc.returncode == 0 else "unclear"), lines[-1] if lines else ""
    if proc.returncode == 0:
        return "silent", lines[-1] if lines else ""
    # the message: from the `error:` line on (warnings and progress come before it; a TOML
    # error quotes the offending line after it)
    start = next((i for i, x in enumerate(lines) if x.startswith("error:")), None)
    if start is None:
        return "unclear", lines[-1] if lines else ""
    message = "\n".join(lines[start:])
    dumped = any(s in message for s in ('\\"', "Os {", "Unknown(", "kind: "))
    kind = "clear" if any(n in message for n in names) and not dumped else "unclear"
    return kind, lines[start]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mgrpo", default=str(REPO / "target/release/mgrpo"))
    ap.add_argument("-v", "--verbose", action="store_true", help="print every case's message")
    ap.add_argument("--only", help="run only the cases whose description contains this")
    a = ap.parse_args()
    mgrpo = str(Path(a.mgrpo).resolve())
    tally = {}
    bad = []
    for cmd, what, setup, names, outputs, expect, timeout in cases():
        if a.only and a.only not in what:
            continue
        with tempfile.TemporaryDirectory() as t:
            d = Path(t)
            argv = [x.replace(OUT, str(d)) for x in setup(d, mgrpo)]
            cwd = REPO if cmd in ("train", "sft") else d
            try:
                proc = subprocess.run([mgrpo, *argv], cwd=cwd, capture_output=True, text=True,
                                      errors="replace", timeout=timeout)
                kind, line = classify(proc, names, expect)
            except subprocess.TimeoutExpired:
                kind, line = "hang", f"still running after {timeout} s"
            # a case that must succeed leaves its outputs; only temporary files count
            left = leftovers(d, outputs if expect == "fail" else [])
        row = tally.setdefault(cmd, {"cases": 0, "clear": 0, "unclear": 0, "panic": 0, "silent": 0, "hang": 0, "leftovers": 0})
        row["cases"] += 1
        row[kind] += 1
        row["leftovers"] += bool(left)
        if kind != "clear" or left:
            bad.append((cmd, what, kind, line, left))
        if a.verbose:
            print(f"{kind:8} {cmd:9} {what}: {line}" + (f"  LEFT {left}" if left else ""))
    cols = ["cases", "clear", "unclear", "panic", "silent", "hang", "leftovers"]
    print("| subcommand | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    total = {k: 0 for k in cols}
    for cmd, row in tally.items():
        print(f"| {cmd} | " + " | ".join(str(row[k]) for k in cols) + " |")
        for k in cols:
            total[k] += row[k]
    print("| **all** | " + " | ".join(f"**{total[k]}**" for k in cols) + " |")
    for cmd, what, kind, line, left in bad:
        print(f"- {kind}: {cmd} ({what}): {line}" + (f" — left {left}" if left else ""))
    sys.exit(0 if not bad else 1)


if __name__ == "__main__":
    main()
