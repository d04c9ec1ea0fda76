//! `mgrpo train` end to end on the copy-task fixture (a tiny random Qwen2 learning to copy a
//! digit, `scripts/make_copy_task.py`): it learns, it resumes bit-identically, and bad configs
//! and data fail with one clear line and nothing written.

mod common;

use std::path::Path;

use common::{fails, jsonl, mgrpo, run_config, step_values as values};
use serde_json::Value;

const CONFIG: &str = "configs/copy-grpo.toml";

fn train(out: &Path, extra: &[&str]) -> std::process::Output {
    run_config("train", CONFIG, out, extra)
}

fn metrics(run: &Path) -> Vec<Value> {
    jsonl(&run.join("metrics.jsonl"))
}

fn mean(rows: &[Value], key: &str) -> f64 {
    rows.iter().map(|m| m[key].as_f64().unwrap()).sum::<f64>() / rows.len() as f64
}

#[test]
fn grpo_learns_the_copy_task() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let t = std::time::Instant::now();
    train(&run, &[]);
    let m = metrics(&run);
    assert_eq!(m.len(), 80);
    let (first, last) = (mean(&m[..5], "reward"), mean(&m[m.len() - 5..], "reward"));
    assert!(first < 0.3, "starts too good: {first}");
    assert!(last > 0.8, "did not learn: {first} → {last}");
    assert!(t.elapsed().as_secs() < 120);
    // every metric TRL users look for, under TRL's name
    for key in [
        "reward",
        "reward_std",
        "frac_reward_zero_std",
        "completions/mean_length",
        "completions/clipped_ratio",
        "kl",
        "entropy",
        "clip_ratio/low_mean",
        "clip_ratio/high_mean",
        "loss",
        "grad_norm",
        "learning_rate",
        "padding_fraction",
        "shared_prompt_fraction",
    ]
    .iter()
    .chain(mgrpo::metrics::TIMING_KEYS)
    {
        assert!(m[0].get(key).is_some(), "metrics.jsonl lacks `{key}`");
    }
    let padding = mean(&m, "padding_fraction");
    assert!((0.0..0.5).contains(&padding), "padding fraction {padding}");
    // each micro-batch holds several completions of a prompt: their prompt is computed once
    let shared = mean(&m, "shared_prompt_fraction");
    assert!(
        (0.05..0.95).contains(&shared),
        "shared prompt fraction {shared}"
    );
    // warmup 2 then constant: lr 0, 5e-3, 1e-2, ...
    let lr: Vec<f64> = m[..3]
        .iter()
        .map(|x| x["learning_rate"].as_f64().unwrap())
        .collect();
    assert_eq!(lr, vec![0.0, 0.005, 0.01]);
    for f in [
        "config.resolved.toml",
        "reward.png",
        "accuracy.png",
        "kl.png",
        "model/config.json",
        "model/model.safetensors",
        "model/tokenizer.json",
        "checkpoints/step-000080/trainer_state.json",
        "checkpoints/step-000080/optimizer.bin",
    ] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    // the trained model generates the right digit greedily
    let o = mgrpo(&[
        "generate",
        "--model",
        run.join("model").to_str().unwrap(),
        "--prompt",
        "7\n",
        "--temperature",
        "0",
        "--max-new-tokens",
        "2",
    ]);
    let line: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(line["text"].as_str().unwrap().contains('7'), "{line}");
}

/// `ref_model_sync_steps` counts optimizer steps, as TRL's `global_step`: with two updates per
/// rollout and a sync every 2, one rollout (two optimizer steps) already moves the reference;
/// a run that syncs every 1000 keeps the start model's.
#[test]
fn reference_syncs_count_optimizer_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = |every: &str| {
        let run = tmp.path().join(format!("sync-{every}"));
        let sync = format!("ref_model_sync_steps={every}");
        train(
            &run,
            &[
                "--set",
                "sync_ref_model=true",
                "--set",
                &sync,
                "--set",
                "beta=0.04",
                "--set",
                "num_iterations=2",
                "--set",
                "max_steps=1",
                "--set",
                "save_steps=1",
            ],
        );
        std::fs::read(run.join("checkpoints/step-000001/reference/model.safetensors")).unwrap()
    };
    assert_ne!(reference("2"), reference("1000"));
}

#[test]
fn resume_is_bit_identical() {
    // β > 0 (reference model, moved towards the policy every 3 steps) and two updates per
    // rollout (old log-probs), so every piece of state is exercised; a checkpoint every 5
    // steps, the last one (step 5) after the reference's first sync.
    let sets = [
        "--set",
        "sync_ref_model=true",
        "--set",
        "ref_model_sync_steps=3",
        "--set",
        "max_steps=12",
        "--set",
        "save_steps=5",
        "--set",
        "beta=0.04",
        "--set",
        "num_iterations=2",
        "--set",
        "loss_type=grpo",
        "--set",
        "log_completions=true",
    ];
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    train(&a, &sets);
    let mut args = sets.to_vec();
    args.extend(["--stop-after", "7"]);
    let o = train(&b, &args);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
    assert!(
        !b.join("model").exists(),
        "an interrupted run has no final model"
    );
    // a kill after step 7's metrics but before its checkpoint finished: the checkpoint of step
    // 7 is half-written (a temporary directory) and metrics.jsonl runs ahead of step 5
    let ckpts = b.join("checkpoints");
    std::fs::rename(ckpts.join("step-000007"), ckpts.join(".tmp-step-000007")).unwrap();
    assert_eq!(metrics(&b).len(), 7);
    let o = mgrpo(&["train", "--resume", b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    assert_eq!(values(&a), values(&b), "metrics differ after resuming");
    let kl: f64 = values(&a).iter().map(|m| m["kl"].as_f64().unwrap()).sum();
    assert!(kl > 0.0, "β > 0 must report a KL");
    common::assert_same_files(
        &a,
        &b,
        &["model/model.safetensors", "completions.jsonl"],
        "",
    );
}

/// The loss menu end to end: CISPO with GSPO's sequence-level ratios and the high-entropy token
/// mask, and two-sided clipping, each train a few steps to finite numbers; only a `cispo` run
/// logs TRL's `cispo_clip_ratio`.
#[test]
fn the_loss_menu_trains() {
    let tmp = tempfile::tempdir().unwrap();
    let menus: [(&str, &[&str]); 2] = [
        (
            "cispo",
            &[
                "loss_type=cispo",
                "epsilon_high=5.0",
                "importance_sampling_level=sequence",
                "top_entropy_quantile=0.5",
                "num_iterations=2",
            ],
        ),
        ("delta", &["delta=1.5", "num_iterations=2", "beta=0.04"]),
    ];
    for (name, sets) in menus {
        let run = tmp.path().join(name);
        let mut args = vec!["--set", "max_steps=3"];
        for s in sets {
            args.extend(["--set", s]);
        }
        let o = train(&run, &args);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let rows = metrics(&run);
        assert_eq!(rows.len(), 3, "{name}");
        for m in &rows {
            assert!(m["loss"].as_f64().unwrap().is_finite(), "{name}: {m}");
            assert!(m["grad_norm"].as_f64().unwrap().is_finite(), "{name}: {m}");
            assert_eq!(m.get("cispo_clip_ratio").is_some(), name == "cispo", "{m}");
        }
    }
}

/// bf16 (activations in bf16 on f32 master weights, bf16 rollouts, β > 0 so the bf16 reference
/// runs too) learns the task as f32 does, and the saved model keeps f32 weights.
#[test]
fn bf16_training_learns() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    train(&run, &["--set", "bf16=true", "--set", "beta=0.01"]);
    let m = metrics(&run);
    let (first, last) = (mean(&m[..5], "reward"), mean(&m[m.len() - 5..], "reward"));
    assert!(
        first < 0.3 && last > 0.8,
        "bf16 did not learn: {first} → {last}"
    );
    assert!(m.iter().all(|x| x["loss"].as_f64().unwrap().is_finite()));
    // not silently f32: the bf16 run's numbers differ from the f32 run's
    let f32_run = tmp.path().join("f32");
    train(&f32_run, &["--set", "beta=0.01", "--set", "max_steps=3"]);
    let kl = |rows: &[Value]| rows[1]["kl"].as_f64().unwrap();
    assert_ne!(kl(&m), kl(&metrics(&f32_run)));
    let bytes = std::fs::read(run.join("model/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (name, t) in st.tensors() {
        assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
    }
}

/// Burn's balanced checkpointing (memory-bound operations recomputed in the backward pass)
/// changes memory, not the math: the same metrics, step for step.
#[test]
fn gradient_checkpointing_changes_nothing_but_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let sets = ["--set", "max_steps=10", "--set", "beta=0.04"];
    train(&a, &sets);
    let mut with = sets.to_vec();
    with.extend(["--set", "gradient_checkpointing=true"]);
    train(&b, &with);
    let (plain, checkpointed) = (values(&a), values(&b));
    for k in ["reward", "loss", "grad_norm", "kl", "entropy"] {
        assert!(plain[0].get(k).is_some(), "{k}");
    }
    // `values` leaves out the timing keys
    assert_eq!(plain, checkpointed);
}

/// The memory estimate is printed at start-up; a run that cannot fit the declared device
/// memory fails before anything is loaded or written.
#[test]
fn memory_estimate_printed_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let o = train(&run, &["--set", "max_steps=1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("memory estimate") && err.contains("GiB"),
        "{err}"
    );
    let tight = tmp.path().join("tight");
    let msg = fails(&[
        "train",
        "--config",
        CONFIG,
        "--out",
        tight.to_str().unwrap(),
        "--set",
        "device_memory_gib=0.00001",
    ]);
    assert!(
        msg.contains("needs about") && msg.contains("per_device_train_batch_size"),
        "{msg}"
    );
    assert!(!tight.exists(), "nothing may be written");
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn bad_configs_and_data_fail_clearly_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = d.join("out");
    let out_s = out.to_str().unwrap();
    let base = std::fs::read_to_string(CONFIG).unwrap();
    let typo = write(d, "typo.toml", &format!("{base}\nnum_generaitons = 4\n"));
    let three = write(
        d,
        "three.jsonl",
        &"{\"question\": \"1\", \"answer\": \"#### 1\"}\n".repeat(3),
    );
    let empty = write(d, "empty.jsonl", "");
    for (args, needle) in [
        (vec!["--config", &typo], "num_generaitons"),
        (
            vec!["--config", CONFIG, "--set", "lerning_rate=1"],
            "lerning_rate",
        ),
        (vec!["--config", CONFIG, "--set", "loss_type=ppo"], "ppo"),
        (
            vec!["--config", CONFIG, "--set", &format!("dataset={three}")],
            "fewer than the 16 prompts",
        ),
        (
            vec!["--config", CONFIG, "--set", &format!("dataset={empty}")],
            "empty",
        ),
        (
            vec!["--config", CONFIG, "--set", "max_completion_length=64"],
            "max_position_embeddings 64",
        ),
        (
            vec![
                "--config",
                CONFIG,
                "--set",
                "max_completion_length=63",
                "--set",
                "max_prompt_length=10",
            ],
            "exceed the model's context 64",
        ),
        (
            vec!["--config", CONFIG, "--set", "max_prompt_length=1"],
            "exceed max_prompt_length 1",
        ),
        (vec!["--config", "configs/nope.toml"], "nope.toml"),
        (
            vec!["--resume", d.to_str().unwrap()],
            "config.resolved.toml",
        ),
    ] {
        let mut a = vec!["train", "--out", out_s];
        if args[0] == "--resume" {
            a = vec!["train"];
        }
        a.extend(args.iter().map(|s| &**s));
        let err = fails(&a);
        assert!(
            err.contains(needle),
            "{a:?}: {err:?} should mention {needle:?}"
        );
        assert!(!out.exists(), "{a:?} wrote {out_s}");
    }

    // a directory that already holds a run is not overwritten
    let run = d.join("run");
    let run_s = run.to_str().unwrap();
    train(&run, &["--set", "max_steps=1"]);
    let err = fails(&["train", "--config", CONFIG, "--out", run_s]);
    assert!(err.contains("--resume"), "{err}");

    // non-finite steps: skipped and logged with their step, then the run stops. At lr 2.5e8
    // the weights grow until step 18's backward pass overflows (loss finite, grad_norm NaN)
    // while the forward passes stay finite, with the kernels and with the compositions alike
    // (a far larger lr overflows the forward pass first, which stops decoding instead).
    let o = mgrpo(&[
        "train",
        "--config",
        CONFIG,
        "--out",
        out_s,
        "--set",
        "learning_rate=2.5e8",
        "--set",
        "max_grad_norm=0",
        "--set",
        "max_nonfinite_steps=2",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("update skipped") && err.contains("step=18"),
        "{err}"
    );
    let last = err.trim().lines().last().unwrap();
    assert!(
        last.contains("step 19: 2 non-finite steps in a row"),
        "{last}"
    );
    let m = metrics(&out);
    assert_eq!(m.len(), 19);
    assert_eq!(m[17]["skipped"], true);
}

#[test]
fn every_shipped_config_parses() {
    for e in std::fs::read_dir("configs").unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            // `mgrpo sft` configs (SFT and the STaR baselines) have their own keys
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let err = if name.contains("sft") || name.contains("star") {
                mgrpo::train::sft::SftConfig::load(&p, &[]).err()
            } else {
                mgrpo::train::TrainConfig::load(&p, &[]).err()
            };
            assert!(err.is_none(), "{}: {}", p.display(), err.unwrap());
        }
    }
}

/// Data parallelism (`num_devices`, the host sum in device order; on the CPU the replicas share
/// the one device): two devices with one micro-batch each train exactly like one device with
/// two micro-batches — the same rollouts (each sample keeps its RNG stream), the same summed
/// gradient, the same step. GRPO with a KL reference and MGRPO (whose layer 2 goes through
/// the split sampler too).
#[test]
fn two_devices_train_like_one_with_twice_the_accumulation() {
    let tmp = tempfile::tempdir().unwrap();
    for (config, sets) in [
        (CONFIG, vec!["max_steps=6", "beta=0.04"]),
        ("configs/copy-mgrpo.toml", vec!["max_steps=3"]),
    ] {
        let name = Path::new(config).file_stem().unwrap().to_str().unwrap();
        let (one, two) = (
            tmp.path().join(format!("{name}-1")),
            tmp.path().join(format!("{name}-2")),
        );
        let args = |extra: &[&str]| -> Vec<String> {
            sets.iter()
                .chain(extra)
                .flat_map(|s| ["--set".to_string(), s.to_string()])
                .collect()
        };
        let a = args(&["gradient_accumulation_steps=2"]);
        let b = args(&["gradient_accumulation_steps=1", "num_devices=2"]);
        run_config(
            "train",
            config,
            &one,
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let o = run_config(
            "train",
            config,
            &two,
            &b.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("data parallel over"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let (x, y) = (values(&one), values(&two));
        assert_eq!(x.len(), y.len());
        for (p, q) in x.iter().zip(&y) {
            for (k, v) in p.as_object().unwrap() {
                // the samples are cut into micro-batches differently (sorted and cut on one
                // device, dealt to two), so different rows share a micro-batch's prompts
                if k == "shared_prompt_fraction" {
                    continue;
                }
                match (v.as_f64(), q[k].as_f64()) {
                    (Some(a), Some(b)) => assert!(
                        (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                        "{name} step {}: {k} {a} vs {b}",
                        p["step"]
                    ),
                    _ => assert_eq!(v, &q[k], "{name}: {k}"),
                }
            }
        }
        assert!(mean(&x, "grad_norm") > 0.0);
    }
}

/// LoRA (`lora_r > 0`): only the adapters train — the merged final model differs from the
/// base in the targeted projections alone —, the adapter is written in PEFT's layout, the
/// checkpoints hold the adapter instead of the model, a resumed run is bit-identical, and a
/// target that is not a projection is refused naming the key.
#[test]
fn lora_trains_the_adapters_alone_and_resumes() {
    let sets = [
        "--set",
        "max_steps=6",
        "--set",
        "save_steps=3",
        "--set",
        "lora_r=4",
        "--set",
        "lora_alpha=8",
        "--set",
        r#"lora_target_modules=["q_proj", "v_proj", "down_proj"]"#,
        "--set",
        "learning_rate=0.05",
    ];
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    train(&a, &sets);
    let mut args = sets.to_vec();
    args.extend(["--stop-after", "3"]);
    train(&b, &args);
    let ckpt = b.join("checkpoints/step-000003");
    assert!(ckpt.join("adapter/adapter_model.safetensors").is_file());
    assert!(
        !ckpt.join("model").exists(),
        "a LoRA checkpoint holds the adapter only"
    );
    let o = mgrpo(&["train", "--resume", b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(values(&a), values(&b), "metrics differ after resuming");
    common::assert_same_files(
        &a,
        &b,
        &[
            "model/model.safetensors",
            "adapter/adapter_model.safetensors",
        ],
        "",
    );

    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(a.join("adapter/adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["r"], 4);
    assert_eq!(config["target_modules"][2], "down_proj");
    let read = |p: &Path| std::fs::read(p).unwrap();
    let (base, tuned) = (
        read(Path::new("tests/fixtures/copy-task/model.safetensors")),
        read(&a.join("model/model.safetensors")),
    );
    let (base, tuned) = (
        safetensors::SafeTensors::deserialize(&base).unwrap(),
        safetensors::SafeTensors::deserialize(&tuned).unwrap(),
    );
    let mut changed = Vec::new();
    for (name, t) in tuned.tensors() {
        if base.tensor(&name).unwrap().data() != t.data() {
            changed.push(name);
        }
    }
    changed.sort();
    let want: Vec<String> = (0..2)
        .flat_map(|i| {
            [
                format!("model.layers.{i}.mlp.down_proj.weight"),
                format!("model.layers.{i}.self_attn.q_proj.weight"),
                format!("model.layers.{i}.self_attn.v_proj.weight"),
            ]
        })
        .collect();
    assert_eq!(changed, want);

    // bf16 stores the frozen base in bf16 (no f32 master copy); the merged model is still
    // the f32 base plus the adapter
    let c = tmp.path().join("bf16");
    let mut args = sets.to_vec();
    args.extend(["--set", "bf16=true", "--set", "max_steps=2"]);
    train(&c, &args);
    let tuned = read(&c.join("model/model.safetensors"));
    let tuned = safetensors::SafeTensors::deserialize(&tuned).unwrap();
    for (name, t) in tuned.tensors() {
        if !want.contains(&name) {
            assert_eq!(base.tensor(&name).unwrap().data(), t.data(), "{name}");
        }
    }

    let bad = tmp.path().join("bad");
    let msg = fails(&[
        "train",
        "--config",
        CONFIG,
        "--out",
        bad.to_str().unwrap(),
        "--set",
        "lora_r=4",
        "--set",
        r#"lora_target_modules=["lm_head"]"#,
    ]);
    assert!(
        msg.contains("lora_target_modules") && msg.contains("lm_head"),
        "{msg}"
    );
    assert!(!bad.exists());
}

/// `steps_per_generation`: one rollout of twice the completions feeds two optimizer steps on
/// disjoint slices, the second against the old log-probs of the rollout's policy (TRL's
/// buffered generation). TRL's `generation_batch_size` says the same; `steps_per_generation` =
/// `gradient_accumulation_steps` is the default.
#[test]
fn one_rollout_feeds_several_optimizer_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, sets: &[&str]| {
        let dir = tmp.path().join(name);
        let mut args = vec!["--set", "max_steps=20", "--set", "save_steps=20"];
        for s in sets {
            args.extend(["--set", s]);
        }
        train(&dir, &args);
        dir
    };
    // copy-grpo: 64 completions per micro-batch, 2 micro-batches per optimizer step
    let spg = run("spg", &["steps_per_generation=4"]);
    let gbs = run("gbs", &["generation_batch_size=256"]);
    assert_eq!(
        values(&spg),
        values(&gbs),
        "the same setting in TRL's two units"
    );
    let state: Value = serde_json::from_slice(
        &std::fs::read(spg.join("checkpoints/step-000020/trainer_state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["optimizer_steps"], 40, "two updates per rollout");
    assert_eq!(
        state["data_position"],
        20 * 32,
        "32 prompts × 8 per rollout"
    );
    let m = metrics(&spg);
    // the second update of each rollout sees ratios ≠ 1 (old log-probs of the rollout policy)
    let clipped: f64 = m
        .iter()
        .map(|r| r["clip_ratio/region_mean"].as_f64().unwrap())
        .sum();
    assert!(clipped > 0.0, "no ratio ever left the clip range");
    let (first, last) = (mean(&m[..3], "reward"), mean(&m[m.len() - 3..], "reward"));
    assert!(last > first + 0.3, "did not learn: {first} → {last}");
    // the default is one optimizer step per rollout
    let a = run("default", &["max_steps=3"]);
    let b = run("explicit", &["max_steps=3", "steps_per_generation=2"]);
    assert_eq!(values(&a), values(&b));
}
