"""Round three of `hostile_inputs.py` (issue 49): checkpoints, chat templates, reward programs,
run directories, datasets and sizes, as a careless or hostile user meets them. Imported by
`hostile_inputs.py`; each case is `case(cmd, what, setup, names, outputs, expect=..., timeout=...)`
with `expect` one of

  "fail"   (default) a clear `error:` naming one of `names`;
  "ok"     exit 0 within the timeout (a bounded program, a legitimate template);
  "warn"   exit 0 and a stderr line naming one of `names` (a silent change made visible).

Standard library only.
"""

import json
import os
import subprocess
from pathlib import Path


def add_cases(case, h):
    CT, CONFIG, OUT = h["CT"], h["CONFIG"], h["OUT"]
    copy_model, write, train, sets, trained_run = (
        h["copy_model"], h["write"], h["train"], h["sets"], h["trained_run"])
    ids = lambda d: write(d, "in.jsonl", '{"input_ids": [1, 2, 3]}\n')
    mkdir = lambda p: (p.mkdir(parents=True, exist_ok=True), str(p))[1]

    # --- checkpoints: config.json sizes and types, before anything is allocated ----------
    sizes = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
             "num_attention_heads", "num_key_value_heads", "max_position_embeddings"]
    for key in sizes:
        for label, value in [("10^12", 10**12), ("-1", -1), ("1.5", 1.5), ("a string", "big")]:
            case("score", f"config.json {key} = {label}",
                 lambda d, m, key=key, value=value: ["score", "--model", copy_model(d, config={key: value}), "--input", ids(d)],
                 [key])
    case("score", "config.json head_dim = 10^9", lambda d, m: ["score", "--model", copy_model(d, config={"head_dim": 10**9}), "--input", ids(d)], ["head_dim"])
    case("score", "f32 weights larger than the machine", lambda d, m: ["score", "--model", copy_model(d, config={"vocab_size": 4_000_000, "hidden_size": 65536, "num_attention_heads": 512, "num_key_value_heads": 512}), "--input", ids(d)], ["config.json"])
    case("generate", "f32 weights larger than the machine", lambda d, m: ["generate", "--model", copy_model(d, config={"vocab_size": 4_000_000, "hidden_size": 65536, "num_attention_heads": 512, "num_key_value_heads": 512}), "--prompt", "1"], ["config.json"])
    case("convert", "f32 weights larger than the machine", lambda d, m: ["convert", "--model", copy_model(d, config={"vocab_size": 4_000_000, "hidden_size": 65536, "num_attention_heads": 512, "num_key_value_heads": 512}), "--out", "o"], ["config.json"], ["o"])
    case("train", "model larger than the machine", lambda d, m: train(*sets(f"model='{copy_model(d, config={'vocab_size': 4_000_000, 'hidden_size': 65536, 'num_attention_heads': 512, 'num_key_value_heads': 512})}'")), ["config.json", "needs about"], ["out"])
    case("score", "rope_theta -1", lambda d, m: ["score", "--model", copy_model(d, config={"rope_theta": -1}), "--input", ids(d)], ["rope_theta"])
    case("score", "rms_norm_eps -1", lambda d, m: ["score", "--model", copy_model(d, config={"rms_norm_eps": -1}), "--input", ids(d)], ["rms_norm_eps"])
    case("score", "tie_word_embeddings a string", lambda d, m: ["score", "--model", copy_model(d, config={"tie_word_embeddings": "yes"}), "--input", ids(d)], ["tie_word_embeddings"])
    case("score", "model_type gpt2", lambda d, m: ["score", "--model", copy_model(d, config={"model_type": "gpt2"}), "--input", ids(d)], ["model_type"])
    case("score", "rope_scaling yarn", lambda d, m: ["score", "--model", copy_model(d, config={"rope_scaling": {"rope_type": "yarn", "factor": 4}}), "--input", ids(d)], ["rope"])
    case("score", "config.json a list", lambda d, m: ["score", "--model", h["with_file"](copy_model(d), "config.json", "[1, 2]"), "--input", ids(d)], ["config.json"])
    case("score", "model.safetensors empty", lambda d, m: ["score", "--model", h["with_file"](copy_model(d), "model.safetensors", ""), "--input", ids(d)], ["model.safetensors"])
    case("score", "model.safetensors a directory", lambda d, m: ["score", "--model", (lambda p: (os.remove(Path(p, "model.safetensors")), os.mkdir(Path(p, "model.safetensors")), p)[2])(copy_model(d)), "--input", ids(d)], ["model.safetensors"])

    # --- chat templates: bounded in instructions, depth and allocation -------------------
    def template_model(d, source):
        return h["with_file"](copy_model(d), "chat_template.jinja", source)
    bad_templates = [
        ("three nested range(100000) loops", "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}x{% endfor %}{% endfor %}{% endfor %}", ["fuel"]),
        ("two nested range(100000) loops", "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", ["fuel"]),
        ("string doubling", "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}", ["one allocation"]),
        ("string doubling with ~", "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}", ["one allocation"]),
        ("list doubling", "{% set ns = namespace(s=[1]) %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}", ["fuel", "one allocation", "chat_template"]),
        ("string times 10^12", "{{ 'x' * 1000000000000 }}", ["chat_template"]),
        ("infinite macro recursion", "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", ["recursion"]),
        ("mutual macro recursion", "{% macro f(n) %}{{ g(n) }}{% endmacro %}{% macro g(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", ["chat_template"]),
        ("recursive loop without end", "{% for m in [[1]] recursive %}{{ loop([m]) }}{% endfor %}", ["chat_template"]),
        ("range(10^12)", "{% for i in range(1000000000000) %}{% endfor %}", ["chat_template"]),
        ("syntax error", "{% for m in messages %}", ["chat_template"]),
        ("unknown filter", "{{ messages|nosuchfilter }}", ["chat_template"]),
        ("raise_exception", "{{ raise_exception('no system role') }}", ["no system role"]),
        ("include without a loader", "{% include 'other.jinja' %}", ["chat_template"]),
        ("extends without a loader", "{% extends 'base.jinja' %}", ["chat_template"]),
        ("content not put in", "{% for m in messages %}<{{ m.role }}>{% endfor %}", ["chat_template"]),
        ("content put in twice", "{% for m in messages %}{{ m.content }}{{ m.content }}{% endfor %}", ["chat_template"]),
        ("nested 200 deep", "{% for a in [1] %}" * 200 + "x" + "{% endfor %}" * 200, ["chat_template"]),
    ]
    for what, source, names in bad_templates:
        case("generate", f"chat template: {what}", lambda d, m, s=source: ["generate", "--model", template_model(d, s), "--prompt", "1", "--template", "checkpoint", "--max-new-tokens", "1"], names, timeout=60)
    for what, source, names in bad_templates[:4] + bad_templates[6:7]:
        case("train", f"chat template: {what}", lambda d, m, s=source: train(*sets(f"model='{template_model(d, s)}'", "template='checkpoint'")), names, ["out"], timeout=60)
        case("eval", f"chat template: {what}", lambda d, m, s=source: ["eval", "--model", template_model(d, s), "--data", str(CT / "train.jsonl"), "--template", "checkpoint", "--out", "o"], names, ["o"], timeout=60)
    good = [
        ("macro", "{% macro say(m) %}<{{ m.role }}>{{ m.content }}{% endmacro %}{% for m in messages %}{{ say(m) }}{% endfor %}{% if add_generation_prompt %}<a>{% endif %}"),
        ("break", "{% for m in messages %}{% if loop.index > 4 %}{% break %}{% endif %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}<a>{% endif %}"),
        ("continue", "{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}<a>{% endif %}"),
        ("generation", "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}{% endfor %}{% if add_generation_prompt %}<a>{% endif %}"),
        ("generation with whitespace control", "{% for m in messages %}{%- generation -%}\n{{ m.content }}\n{%- endgeneration -%}{% endfor %}{% if add_generation_prompt %}<a>{% endif %}"),
        ("loop.previtem", "{% for m in messages %}{% if loop.previtem %}|{% endif %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}<a>{% endif %}"),
    ]
    for what, source in good:
        case("generate", f"chat template with {what} renders", lambda d, m, s=source: ["generate", "--model", template_model(d, s), "--prompt", "1", "--template", "checkpoint", "--max-new-tokens", "1"], [], expect="ok", timeout=60)

    # --- reward programs ----------------------------------------------------------------
    def reward(d, command, timeout=10, weight=None, extra=""):
        w = f"weights = [1.0, {weight}]\n" if weight is not None else ""
        return ["train", "--config", write(d, "r.toml", f'model = "{CT}"\ndataset = "{CT / "train.jsonl"}"\ntemplate = "plain"\nmax_completion_length = 1\nmax_steps = 1\nnum_generations = 2\nper_device_train_batch_size = 4\n{extra}[reward]\nfuncs = ["accuracy", "mine"]\n{w}[reward.commands.mine]\ncommand = {json.dumps(command)}\ntimeout_s = {timeout}\n'), "--out", str(d / "o")]
    each = lambda line: ["sh", "-c", f"while read -r l; do echo {line}; done"]
    rewards = [
        ("program missing", ["/nonexistent/reward"], 10, ["reward `mine`"]),
        ("empty command", [], 10, ["command"]),
        ("too few lines", ["sh", "-c", "cat > /dev/null; echo 1"], 10, ["reward `mine`"]),
        ("too many lines", ["sh", "-c", "while read -r l; do echo 1; echo 1; done"], 10, ["reward `mine`"]),
        ("not a number", each("yes"), 10, ["reward `mine`"]),
        ("inf", each("inf"), 10, ["reward `mine`"]),
        ("1e39 (beyond f32)", each("1e39"), 10, ["reward `mine`"]),
        ("3e38 (weighted sum overflows)", each("3e38"), 10, ["reward `mine`"]),
        ("1e16 (beyond the reward bound)", each("1e16"), 10, ["reward `mine`"]),
        ("exits 1 with a traceback", ["sh", "-c", "echo 'ValueError: bad row' >&2; exit 1"], 10, ["ValueError"]),
        ("killed by a signal", ["sh", "-c", "kill -9 $$"], 10, ["reward `mine`"]),
        ("timeout with a grandchild", ["sh", "-c", "sleep 100 & wait"], 1, ["timeout_s"]),
        ("endless stdout (yes 1)", ["yes", "1"], 30, ["wrote more than"]),
        ("endless stderr", ["sh", "-c", "yes oops >&2"], 1, ["timeout_s"]),
        ("a setsid child holding stdout", ["sh", "-c", "setsid sleep 30 & sleep 0.3; while read -r l; do echo 1; done"], 20, ["holds its stdout"]),
        ("binary garbage", ["sh", "-c", "cat > /dev/null; head -c 4096 /dev/urandom"], 10, ["reward `mine`"]),
        ("nothing at all", ["sh", "-c", "cat > /dev/null"], 10, ["reward `mine`"]),
        ("timeout_s 0", each("1"), 0, ["timeout_s"]),
        ("timeout_s -1", each("1"), -1, ["timeout_s"]),
        ("timeout_s nan", each("1"), "nan", ["timeout_s"]),
        ("timeout_s a string", each("1"), '"soon"', ["timeout_s"]),
    ]
    for what, command, timeout, names in rewards:
        case("train", f"reward program: {what}", lambda d, m, c=command, t=timeout: reward(d, c, t), names, ["o/model"], timeout=90)
    case("train", "reward weight 1e30", lambda d, m: reward(d, each("1"), 10, weight="1e30"), ["reward `mine`"], ["o/model"])
    case("train", "reward command not a list", lambda d, m: ["train", "--config", write(d, "r.toml", f'model = "{CT}"\ndataset = "{CT / "train.jsonl"}"\n[reward]\nfuncs = ["mine"]\ncorrect_threshold = 1\n[reward.commands.mine]\ncommand = "python3 r.py"\n'), "--out", str(d / "o")], ["command"], ["o"])
    case("train", "reward program: a child left running is killed, the run goes on", lambda d, m: reward(d, ["sh", "-c", "sleep 30 & while read -r l; do echo 1; done"], 20), [], expect="ok", timeout=60)
    case("train", "reward program: CRLF line ends", lambda d, m: reward(d, ["sh", "-c", "while read -r l; do printf '0.5\\r\\n'; done"], 10), [], expect="ok", timeout=60)

    # --- run directories: no command destroys a run or another's files ------------------
    def run_dir(d, m):
        return str(trained_run(d, m, steps=2))
    def foreign(d):
        p = d / "mine"
        p.mkdir()
        (p / "thesis.tex").write_text("mine")
        return str(p)
    def earlier_eval(d):
        p = d / "ev"
        p.mkdir()
        (p / "summary.json").write_text("{}")
        (p / "train.jsonl").write_text("")
        return str(p)
    def earlier_task(d):
        p = d / "tk"
        p.mkdir()
        for n in ["train.jsonl", "test.jsonl"]:
            (p / n).write_text("{}\n")
        return str(p)
    ev = lambda out, *a: ["eval", "--model", str(CT), "--data", str(CT / "train.jsonl"), "--out", out, *a]
    tk = lambda out, *a: ["task", "--out", out, "--train", "10", "--test", "10", "--sft", "0", *a]
    case("convert", "--out a run, --overwrite", lambda d, m: ["convert", "--model", str(CT), "--out", run_dir(d, m), "--overwrite"], ["holds a training run"])
    case("convert", "--out a run", lambda d, m: ["convert", "--model", str(CT), "--out", run_dir(d, m)], ["holds a training run"])
    case("convert", "--out someone's directory, --overwrite", lambda d, m: ["convert", "--model", str(CT), "--out", foreign(d), "--overwrite"], ["thesis.tex"])
    case("convert", "--out a file, --overwrite", lambda d, m: ["convert", "--model", str(CT), "--out", write(d, "f.txt", "mine"), "--overwrite"], ["not a directory"])
    case("convert", "--out a link, --overwrite", lambda d, m: (os.symlink(foreign(d), d / "link"), ["convert", "--model", str(CT), "--out", str(d / "link"), "--overwrite"])[1], ["symbolic link"])
    case("convert", "--out a run's checkpoints", lambda d, m: ["convert", "--model", str(CT), "--out", run_dir(d, m) + "/checkpoints", "--overwrite"], ["checkpoints"])
    case("eval", "--out a run", lambda d, m: ev(run_dir(d, m)), ["holds a training run"])
    case("eval", "--out a run, --overwrite", lambda d, m: ev(run_dir(d, m), "--overwrite"), ["holds a training run"])
    case("eval", "--out someone's directory", lambda d, m: ev(foreign(d)), ["thesis.tex"])
    case("eval", "--out an earlier evaluation", lambda d, m: ev(earlier_eval(d)), ["--overwrite"])
    case("eval", "--out a file", lambda d, m: ev(write(d, "f.txt", "mine")), ["not a directory"])
    case("task", "--out a run", lambda d, m: tk(run_dir(d, m)), ["holds a training run"])
    case("task", "--out a run, --overwrite", lambda d, m: tk(run_dir(d, m), "--overwrite"), ["holds a training run"])
    case("task", "--out someone's directory", lambda d, m: tk(foreign(d), "--overwrite"), ["thesis.tex"])
    case("task", "--out an earlier task", lambda d, m: tk(earlier_task(d)), ["--overwrite"])
    case("task", "--out a file", lambda d, m: tk(write(d, "f.txt", "mine")), ["not a directory"])
    case("train", "--out someone's directory", lambda d, m: train(out=foreign(d)), ["thesis.tex"])
    case("train", "--out a directory holding a model", lambda d, m: train(out=str(Path(copy_model(d)).parent)), ["m"])
    case("train", "--out a file", lambda d, m: train(out=write(d, "f.txt", "mine")), ["f.txt"])
    case("sft", "--out someone's directory", lambda d, m: ["sft", "--config", str(h["SFT_CONFIG"]), "--out", foreign(d)], ["thesis.tex"])

    def resume_after(d, m, edit):
        run = trained_run(d, m, steps=4, stop=2)
        edit(run)
        return ["train", "--resume", str(run)]
    def edit_config(key, old, new):
        def f(run):
            p = run / "config.resolved.toml"
            p.write_text(p.read_text().replace(f"{key} = {old}", f"{key} = {new}"))
        return f
    case("train", "--resume after the seed was edited", lambda d, m: resume_after(d, m, edit_config("seed", "0", "7")), ["seed"])
    case("train", "--resume after learning_rate was edited", lambda d, m: resume_after(d, m, lambda run: (run / "config.resolved.toml").write_text((run / "config.resolved.toml").read_text().replace("learning_rate =", "learning_rate = 0.5 #"))), ["learning_rate"])
    def changed_data(d, m):
        data = d / "ds.jsonl"
        data.write_text((CT / "train.jsonl").read_text())
        run = d / "run"
        subprocess.run([m, "train", "--config", str(CONFIG), "--out", str(run), "--set", "max_steps=4", "--set", "save_steps=2", "--set", f"dataset='{data}'", "--stop-after", "2"], check=True, capture_output=True, cwd=h["REPO"])
        data.write_text(data.read_text().replace("#### 1\"", "#### 2\"", 1))
        return ["train", "--resume", str(run)]
    case("train", "--resume after the dataset changed", changed_data, ["ds.jsonl"])
    case("train", "--resume with another config on the command line", lambda d, m: (trained_run(d, m, steps=4, stop=2), train("--set", "max_steps=4", "--set", "save_steps=2", "--set", "seed=3", "--resume", out=str(d / "run")))[1], ["seed"])
    case("train", "--resume RUN with --config", lambda d, m: ["train", "--resume", str(trained_run(d, m, steps=4, stop=2)), "--config", str(CONFIG)], ["--config"])
    case("train", "--resume of a run killed before its config", lambda d, m: ["train", "--resume", (lambda p: (p.mkdir(), (p / ".lock").write_text(""), str(p))[2])(d / "early")], ["config.resolved.toml"])
    case("train", "identity.json not JSON", lambda d, m: resume_after(d, m, lambda run: (run / "identity.json").write_text("{")), ["identity.json"])
    case("train", "config.resolved.toml deleted from a run", lambda d, m: resume_after(d, m, lambda run: os.remove(run / "config.resolved.toml")), ["config.resolved.toml"])
    case("train", "RUN/.lock a directory", lambda d, m: (mkdir(d / "out" / ".lock"), train())[1], [".lock"])
    case("train", "RUN/.lock a FIFO", lambda d, m: (mkdir(d / "out"), os.mkfifo(d / "out" / ".lock"), train())[2], [".lock"], timeout=60)
    # (the link is read, then replaced by a file of the run's own: its target is never written)
    case("train", "metrics.jsonl planted as a link is replaced, not written through", lambda d, m: resume_after(d, m, lambda run: (os.rename(run / "metrics.jsonl", d / "elsewhere.jsonl"), os.symlink(d / "elsewhere.jsonl", run / "metrics.jsonl"))), [], expect="ok")
    case("train", "start-or-continue of a run killed before its config", lambda d, m: (mkdir(d / "out"), (d / "out" / ".lock").write_text(""), train("--set", "max_steps=1", "--resume"))[2], [], expect="ok")

    # --- datasets ---------------------------------------------------------------------
    ds = lambda d, text, name="ds.jsonl": write(d, name, text)
    vds = lambda path: ["verify", "--dataset", path, "--self-check"]
    case("verify", "a 17 MiB line", lambda d, m: vds(ds(d, json.dumps({"question": "1" * (17 << 20), "answer": "#### 1"}) + "\n")), ["ds.jsonl:1"])
    case("train", "a 17 MiB line", lambda d, m: train(*sets(f"dataset='{ds(d, json.dumps({'question': '1' * (17 << 20), 'answer': '#### 1'}) + chr(10))}'")), ["ds.jsonl:1"], ["out"])
    case("train", "a prompt too long by its bytes alone", lambda d, m: train(*sets(f"dataset='{ds(d, (CT / 'train.jsonl').read_text() + json.dumps({'question': '12 ' * 400000, 'answer': '#### 1'}) + chr(10))}'", "max_prompt_length=8")), ["bytes"], ["out"])
    case("verify", "gold of 500 digits", lambda d, m: vds(ds(d, json.dumps({"question": "q", "answer": "#### " + "9" * 500}) + "\n")), ["ds.jsonl:1"])
    case("verify", "gold of 2000 characters", lambda d, m: vds(ds(d, json.dumps({"question": "q", "answer": "x" * 2000}) + "\n")), ["ds.jsonl:1"])
    case("train", "gold of 500 digits", lambda d, m: train(*sets(f"dataset='{ds(d, json.dumps({'question': 'q', 'answer': '#### ' + '9' * 500}) + chr(10))}'")), ["ds.jsonl:1"], ["out"])
    case("eval", "gold of 500 digits", lambda d, m: ["eval", "--model", str(CT), "--data", ds(d, json.dumps({"question": "q", "answer": "#### " + "9" * 500}) + "\n"), "--out", "o"], ["ds.jsonl:1"], ["o"])
    case("verify", "numeric answer switches the format", lambda d, m: ["verify", "--dataset", ds(d, '{"id": "a", "question": "1", "answer": 7}\n'), "--predictions", write(d, "p.jsonl", '{"id": "a", "completion": "7"}\n')], ["`answer` is a number"], expect="warn")
    case("train", "numeric answer switches the format", lambda d, m: train(*sets(f"dataset='{ds(d, ''.join(json.dumps({'question': str(i), 'answer': i}) + chr(10) for i in range(64)))}'", "max_steps=1")), ["`answer` is a number"], expect="warn")
    case("verify", "invalid UTF-8", lambda d, m: vds((lambda p: (p.write_bytes(b'{"question": "\xff", "answer": "#### 1"}\n'), str(p))[1])(d / "ds.jsonl")), ["ds.jsonl"])
    case("verify", "a NUL byte line", lambda d, m: vds(ds(d, '{"question": "1", "answer": "#### 1"}\n\0\n')), ["ds.jsonl:2"])
    case("verify", "only blank lines", lambda d, m: vds(ds(d, "\n\n\n")), ["ds.jsonl"])
    case("verify", "a directory without rows", lambda d, m: vds(mkdir(d / "empty")), ["empty"])
    case("verify", "a glob matching nothing", lambda d, m: vds(str(d / "train-*.parquet")), ["train-*.parquet"])
    case("verify", "a fake parquet file", lambda d, m: vds(ds(d, "not parquet", "x.parquet")), ["x.parquet"])
    case("verify", "answer null", lambda d, m: vds(ds(d, '{"question": "1", "answer": null}\n')), ["ds.jsonl:1"])
    case("verify", "conversation with an unknown role", lambda d, m: vds(ds(d, '{"prompt": [{"role": "wizard", "content": "1"}], "answer": "1"}\n')), ["ds.jsonl:1"])
    case("verify", "conversation ending with the assistant", lambda d, m: vds(ds(d, '{"prompt": [{"role": "user", "content": "1"}, {"role": "assistant", "content": "2"}], "answer": "1"}\n')), ["ds.jsonl:1"])
    case("train", "a dataset that is a directory of non-row files", lambda d, m: train(*sets(f"dataset='{(lambda p: ((p / 'notes.txt').write_text('x'), str(p))[1])(Path(mkdir(d / 'dsdir')))}'")), ["dsdir"], ["out"])
    case("train", "CRLF line endings", lambda d, m: train(*sets(f"dataset='{ds(d, (CT / 'train.jsonl').read_text().replace(chr(10), chr(13) + chr(10)))}'", "max_steps=1")), [], expect="ok")

    # --- sizes on the command line and in configs, checked before allocating -----------
    big = [
        ("num_generations = 1e9", ["num_generations=1000000000", "per_device_train_batch_size=1000000000"], ["num_generations"]),
        ("per_device_train_batch_size = 2^40", ["per_device_train_batch_size=1099511627776"], ["per_device_train_batch_size", "needs about"]),
        ("max_completion_length = 1e9", ["max_completion_length=1000000000"], ["max_completion_length"]),
        ("max_steps = 2^64", ["max_steps=18446744073709551616"], ["max_steps"]),
        ("eval_limit = 0", ["eval_limit=0"], ["eval_limit"]),
        ("num_iterations = 1e9", ["num_iterations=1000000000"], ["num_iterations"]),
        ("gradient_accumulation_steps = 1e12", ["gradient_accumulation_steps=1000000000000"], ["gradient_accumulation_steps"]),
        ("max_grad_norm = -1", ["max_grad_norm=-1"], ["max_grad_norm"]),
        ("seed = -1", ["seed=-1"], ["seed"]),
    ]
    for what, kv, names in big:
        case("train", what, lambda d, m, kv=kv: train(*sets(*kv)), names, ["out"], timeout=120)
    # maxima, not sizes: a huge one is a run like any other
    for what, kv in [("max_prompt_length = 1e12", "max_prompt_length=1000000000000"),
                     ("decode_batch_size = 1e12", "decode_batch_size=1000000000000"),
                     ("save_steps = 0 (no periodic checkpoint)", "save_steps=0")]:
        case("train", what, lambda d, m, kv=kv: train(*sets(kv, "max_steps=1")), [], expect="ok", timeout=120)
    cli_sizes = [
        ("generate", "--num-return-sequences 1e9", ["generate", "--model", str(CT), "--prompt", "1", "--num-return-sequences", "1000000000"], ["--num-return-sequences"]),
        ("eval", "--samples 1e9", ["eval", "--model", str(CT), "--data", str(CT / "train.jsonl"), "--samples", "1000000000"], ["--samples"]),
        ("eval", "--max-new-tokens 1e12", ["eval", "--model", str(CT), "--data", str(CT / "train.jsonl"), "--max-new-tokens", "1000000000000", "--out", "o"], ["--max-new-tokens", "context"]),
        ("bench", "--batch 1e9", ["bench", "score", "--batch", "1000000000"], ["--batch"]),
        ("bench", "--iters 1e15", ["bench", "score", "--iters", "1000000000000000"], ["--iters"]),
        ("init", "--hidden-size 1e9", ["init", "--corpus", str(CT / "sft.jsonl"), "--out", "o", "--hidden-size", "1000000000"], ["--hidden-size", "hidden_size"]),
        ("init", "--vocab-size 1e9", ["init", "--corpus", str(CT / "sft.jsonl"), "--out", "o", "--vocab-size", "1000000000"], ["--vocab-size", "vocab_size"]),
        ("init", "--num-hidden-layers 1e6", ["init", "--corpus", str(CT / "sft.jsonl"), "--out", "o", "--num-hidden-layers", "1000000"], ["--num-hidden-layers", "num_hidden_layers"]),
        ("task", "--digits 1e9", ["task", "--out", "o", "--digits", "1000000000"], ["digits"]),
        ("task", "--max-steps 1e9", ["task", "--out", "o", "--max-steps", "1000000000"], ["steps"]),
    ]
    maxima = [
        ("generate", "--max-new-tokens 1e12 (a maximum)", ["generate", "--model", str(CT), "--prompt", "1", "--max-new-tokens", "1000000000000"]),
        ("generate", "--batch-size 1e12 (a maximum)", ["generate", "--model", str(CT), "--prompt", "1", "--batch-size", "1000000000000"]),
        ("score", "--batch-size 1e12 (a maximum)", ["score", "--model", str(CT), "--input", "@IDS@", "--batch-size", "1000000000000"]),
        ("eval", "--batch-size 1e12 (a maximum)", ["eval", "--model", str(CT), "--data", str(CT / "train.jsonl"), "--template", "plain", "--turns", "1", "--max-new-tokens", "1", "--batch-size", "1000000000000", "--out", "o"]),
    ]
    for cmd, what, argv in maxima:
        case(cmd, what, lambda d, m, argv=argv: [ids(d) if a == "@IDS@" else a for a in argv], [], expect="ok", timeout=120)
    for cmd, what, argv, names in cli_sizes:
        outputs = ["o"] if "o" in argv else []
        case(cmd, what, lambda d, m, argv=argv: [ids(d) if a == "@IDS@" else a for a in argv], names, outputs, timeout=120)
