//! Hostile inputs, round three: what a careless or hostile user does, each refused by name
//! with nothing destroyed (`scripts/hostile_inputs.py` surveys the same families).

mod common;

use common::fails;

const CONFIG: &str = "configs/copy-grpo.toml";

/// An `--output` that is the file the command reads is refused before any work, the input
/// intact (the atomic write used to replace it); an evaluation set whose ids repeat is refused
/// when the run starts, naming the id (it used to fail only at the end of training).
#[test]
fn inputs_are_never_replaced_and_evaluation_ids_are_unique() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs = tmp.path().join("pairs.jsonl");
    let text = "{\"gold\": \"2\", \"pred\": \"\\\\boxed{2}\"}\n";
    std::fs::write(&pairs, text).unwrap();
    let p = pairs.to_str().unwrap();
    let e = fails(&["verify", "--input", p, "--output", p]);
    assert!(e.contains("--output") && e.contains("--input"), "{e}");
    let ids = tmp.path().join("ids.jsonl");
    std::fs::write(&ids, "{\"input_ids\": [1, 2, 3]}\n").unwrap();
    let i = ids.to_str().unwrap();
    let model = common::fixture("copy-task");
    let m = model.to_str().unwrap();
    let e = fails(&["score", "--model", m, "--input", i, "--output", i]);
    assert!(e.contains("--input"), "{e}");
    let e = fails(&["generate", "--model", m, "--input", i, "--output", i]);
    assert!(e.contains("--input"), "{e}");
    assert_eq!(std::fs::read_to_string(&pairs).unwrap(), text);
    assert_eq!(
        std::fs::read_to_string(&ids).unwrap(),
        "{\"input_ids\": [1, 2, 3]}\n"
    );

    let eval = tmp.path().join("eval.jsonl");
    let row = |id: &str, q: &str| {
        format!("{{\"id\": \"{id}\", \"question\": \"{q}\", \"answer\": \"#### {q}\"}}\n")
    };
    std::fs::write(&eval, row("a", "1") + &row("b", "2") + &row("a", "3")).unwrap();
    let out = tmp.path().join("run");
    let set = format!("eval_dataset=\"{}\"", eval.display());
    let e = fails(&[
        "train",
        "--config",
        CONFIG,
        "--out",
        out.to_str().unwrap(),
        "--set",
        &set,
    ]);
    assert!(
        e.contains("eval.jsonl") && e.contains("`a` appears twice"),
        "{e}"
    );
    assert!(!out.join("metrics.jsonl").exists());
}

/// The last stderr line of a run that must fail with exit status 1 (earlier lines may be
/// warnings or the memory estimate), checked for a panic.
fn last_error(args: &[&str]) -> String {
    let o = common::mgrpo(args);
    let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    let last = err.lines().last().unwrap_or("").to_string();
    assert!(last.starts_with("error: "), "{args:?}: {err}");
    last
}

/// [`last_error`] of `train --config CONFIG --out OUT --set KEY=VALUE…`.
fn train_error(out: &std::path::Path, sets: &[&str]) -> String {
    let mut args = vec!["train", "--config", CONFIG, "--out", out.to_str().unwrap()];
    for kv in sets {
        args.extend(["--set", kv]);
    }
    last_error(&args)
}

/// Reward programs run in their own process group: a terminal's Ctrl-C (SIGINT to the
/// foreground group) reaches mgrpo alone, which finishes the step, the program's batch
/// included, and checkpoints it (the program used to die with mgrpo's group: exit 1, the step
/// lost). Endless output is cut at the cap with a named error (it used to be buffered whole).
#[test]
fn reward_programs_are_bounded_and_shielded_from_ctrl_c() {
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let mark = tmp.path().join("started");
    let program = format!(
        "reward.commands.slow.command=['sh', '-c', 'touch {}; sleep 1; while read -r l; do echo 1; done']",
        mark.display()
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mgrpo"))
        .args(["train", "--config", CONFIG, "--out", run.to_str().unwrap()])
        .args(["--set", "max_steps=4", "--set", "save_steps=100"])
        .args([
            "--set",
            "reward.funcs=['accuracy', 'slow']",
            "--set",
            &program,
        ])
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !mark.exists() {
        assert!(t.elapsed().as_secs() < 60, "the reward program never ran");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // what a terminal does on Ctrl-C: SIGINT to the whole foreground group
    let pgid = child.id() as i32;
    assert_eq!(unsafe { libc::killpg(pgid, libc::SIGINT) }, 0);
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        run.join("checkpoints/step-000001/manifest.json").is_file(),
        "{err}"
    );

    let e = train_error(
        &tmp.path().join("yes"),
        &[
            "reward.funcs=['accuracy', 'chatty']",
            "reward.commands.chatty.command=['yes', '1']",
        ],
    );
    assert!(
        e.contains("reward `chatty`") && e.contains("wrote more than"),
        "{e}"
    );
    // finite rewards whose weighted sum overflows f32 are refused, not logged as null
    let e = train_error(
        &tmp.path().join("big"),
        &[
            "reward.funcs=['accuracy', 'big']",
            "reward.commands.big.command=['sh', '-c', 'while read -r l; do echo 3e38; done']",
        ],
    );
    assert!(e.contains("reward `big`") && e.contains("beyond"), "{e}");
}

/// A model copy whose `chat_template.jinja` is `source`.
fn with_template(dir: &std::path::Path, name: &str, source: &str) -> String {
    let model = common::fixture("copy-task");
    let dst = dir.join(name);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&model).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
    std::fs::write(dst.join("chat_template.jinja"), source).unwrap();
    dst.to_str().unwrap().to_string()
}

/// A checkpoint's chat template is a program: bounded in instructions (three nested
/// `range(100000)` loops used to hang), in depth, and in the size of one allocation (string
/// doubling used to abort); `macro`, `break` and transformers' `generation` render.
#[test]
fn chat_templates_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let gen = |model: &str| {
        [
            "generate",
            "--model",
            model,
            "--prompt",
            "1",
            "--template",
            "checkpoint",
            "--max-new-tokens",
            "1",
        ]
        .map(String::from)
    };
    let cases = [
        ("loops", "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}x{% endfor %}{% endfor %}{% endfor %}", "fuel"),
        ("doubling", "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}", "one allocation"),
        ("recursion", "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "recursion"),
    ];
    for (name, source, says) in cases {
        let model = with_template(tmp.path(), name, source);
        let t = std::time::Instant::now();
        let args = gen(&model);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let e = last_error(&args);
        assert!(
            e.contains("chat_template") && e.contains(says),
            "{name}: {e}"
        );
        assert!(t.elapsed().as_secs() < 30, "{name}: {:?}", t.elapsed());
    }
    let ok = "{% macro say(m) %}<{{ m.role }}>{{ m.content }}{% endmacro %}{% for m in messages %}\
              {% if loop.index > 3 %}{% break %}{% endif %}{% generation %}{{ say(m) }}{% endgeneration %}\
              {% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";
    let model = with_template(tmp.path(), "fine", ok);
    let args = gen(&model);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = common::mgrpo(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Commands that write refuse a run directory and files they did not write, and replace an
/// earlier output of their own only with `--overwrite` (`convert --out RUN --overwrite` used
/// to delete a run; `eval --out RUN` could overwrite its metrics; `task --out` replaced
/// splits; `train --out .` would have replaced the shipped model at the end).
#[test]
fn commands_never_write_over_a_run_or_other_files() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    common::run_config(
        "train",
        CONFIG,
        &run,
        &["--set", "max_steps=2", "--set", "save_steps=2"],
    );
    let before = std::fs::read(run.join("metrics.jsonl")).unwrap();
    let model = common::fixture("copy-task");
    let m = model.to_str().unwrap();
    let data = model.join("train.jsonl");
    let e = fails(&["convert", "--model", m, "--out", r, "--overwrite"]);
    assert!(e.contains("holds a training run"), "{e}");
    let e = fails(&[
        "eval",
        "--model",
        m,
        "--data",
        data.to_str().unwrap(),
        "--out",
        r,
    ]);
    assert!(e.contains("holds a training run"), "{e}");
    let e = fails(&[
        "task", "--out", r, "--train", "10", "--test", "10", "--sft", "0",
    ]);
    assert!(e.contains("holds a training run"), "{e}");
    assert_eq!(std::fs::read(run.join("metrics.jsonl")).unwrap(), before);
    assert!(run.join("checkpoints/step-000002").is_dir());

    // someone else's directory, even with --overwrite; a new run beside other files
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("thesis.tex"), "mine").unwrap();
    let d = docs.to_str().unwrap();
    let e = fails(&["convert", "--model", m, "--out", d, "--overwrite"]);
    assert!(e.contains("thesis.tex"), "{e}");
    let e = fails(&["train", "--config", CONFIG, "--out", d]);
    assert!(e.contains("thesis.tex"), "{e}");
    assert_eq!(
        std::fs::read_to_string(docs.join("thesis.tex")).unwrap(),
        "mine"
    );

    // an earlier task: only with --overwrite
    let task = tmp.path().join("task");
    let t = task.to_str().unwrap();
    let small = ["--train", "10", "--test", "10", "--sft", "0"];
    let mut args = vec!["task", "--out", t];
    args.extend(small);
    assert!(common::mgrpo(&args).status.success());
    let e = fails(&args);
    assert!(e.contains("--overwrite"), "{e}");
    args.push("--overwrite");
    assert!(common::mgrpo(&args).status.success());
}

/// `--resume` continues only the run that was started: an edited seed, another config on the
/// command line or a changed dataset file is refused by name (it used to continue silently);
/// the start command with `--resume` added starts a run that never wrote its config.
#[test]
fn resume_checks_what_the_run_started_with() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("ds.jsonl");
    std::fs::copy(common::fixture("copy-task").join("train.jsonl"), &data).unwrap();
    let run = tmp.path().join("run");
    let set_data = format!("dataset='{}'", data.display());
    let start = |extra: &[&str]| {
        let mut a = vec!["train", "--config", CONFIG, "--out", run.to_str().unwrap()];
        a.extend([
            "--set",
            "max_steps=4",
            "--set",
            "save_steps=2",
            "--set",
            &set_data,
        ]);
        a.extend(extra);
        common::mgrpo(&a)
    };
    let o = start(&["--resume", "--stop-after", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e = last_error(&[
        "train",
        "--config",
        CONFIG,
        "--out",
        run.to_str().unwrap(),
        "--set",
        "max_steps=4",
        "--set",
        "save_steps=2",
        "--set",
        &set_data,
        "--set",
        "seed=7",
        "--resume",
    ]);
    assert!(
        e.contains("another config") && e.contains("seed: 0 → 7"),
        "{e}"
    );
    let config = run.join("config.resolved.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("seed = 0", "seed = 9")).unwrap();
    let e = last_error(&["train", "--resume", run.to_str().unwrap()]);
    assert!(
        e.contains("edited since the run started") && e.contains("seed"),
        "{e}"
    );
    std::fs::write(&config, &text).unwrap();
    let rows = std::fs::read_to_string(&data).unwrap();
    std::fs::write(&data, rows.replacen("\"answer\"", "\"answer\" ", 1)).unwrap();
    let e = last_error(&["train", "--resume", run.to_str().unwrap()]);
    assert!(
        e.contains("ds.jsonl") && e.contains("changed since the run started"),
        "{e}"
    );
    std::fs::write(&data, &rows).unwrap();
    let o = start(&["--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(common::jsonl(&run.join("metrics.jsonl")).len(), 4);
}

/// Sizes are checked before the allocation they imply, naming the key: a model larger than
/// the machine (a sparse safetensors file matching its config passed every check and aborted),
/// `num_generations = 1e9` (allocated after printing 14 TiB), a dataset line of 17 MiB, a gold
/// beyond the verifier's caps (accepted, never matched).
#[test]
fn allocations_are_checked_before_they_are_made() {
    let tmp = tempfile::tempdir().unwrap();
    let (_keep, model) = common::copy_fixture("copy-task");
    let path = model.join("config.json");
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    c["vocab_size"] = 4_000_000.into();
    c["hidden_size"] = 65_536.into();
    c["num_attention_heads"] = 512.into();
    c["num_key_value_heads"] = 512.into();
    std::fs::write(&path, c.to_string()).unwrap();
    // the weights as the sweep made them: a sparse file whose header declares an embedding of
    // that size (1 TB of f32, a few bytes on disk), valid to every check but the memory
    let size: u64 = 4_000_000 * 65_536 * 4;
    let header = format!(
        "{{\"model.embed_tokens.weight\":{{\"dtype\":\"F32\",\"shape\":[4000000,65536],\
         \"data_offsets\":[0,{size}]}}}}"
    );
    let weights = model.join("model.safetensors");
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    std::fs::write(&weights, &bytes).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&weights)
        .unwrap();
    f.set_len(bytes.len() as u64 + size).unwrap();
    let ids = tmp.path().join("ids.jsonl");
    std::fs::write(&ids, "{\"input_ids\": [1, 2]}\n").unwrap();
    let e = fails(&[
        "score",
        "--model",
        model.to_str().unwrap(),
        "--input",
        ids.to_str().unwrap(),
    ]);
    assert!(e.contains("config.json") && e.contains("vocab_size"), "{e}");

    let out = tmp.path().join("o");
    let e = train_error(
        &out,
        &[
            "num_generations=1000000000",
            "per_device_train_batch_size=1000000000",
        ],
    );
    assert!(
        e.contains("needs about") && e.contains("num_generations"),
        "{e}"
    );
    assert!(!out.join("metrics.jsonl").exists());

    // one dataset row, refused by `verify --dataset` naming its line and the bound
    let refused = |name: &str, question: &str, answer: &str, says: &str| {
        let path = tmp.path().join(name);
        let row = serde_json::json!({"question": question, "answer": answer});
        std::fs::write(&path, format!("{row}\n")).unwrap();
        let e = fails(&[
            "verify",
            "--dataset",
            path.to_str().unwrap(),
            "--self-check",
        ]);
        assert!(e.contains(&format!("{name}:1")) && e.contains(says), "{e}");
    };
    refused("long.jsonl", &"1".repeat(17 << 20), "#### 1", "16 MiB");
    refused(
        "gold.jsonl",
        "q",
        &format!("#### {}", "9".repeat(500)),
        "500 digits",
    );
}
