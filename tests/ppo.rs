//! `mgrpo train` with `algorithm = "ppo"` on the copy task (`configs/copy-ppo.toml`): PPO
//! learns and logs TRL's PPO metrics, writes its critic in HF layout, starts a critic from
//! `value_model_path`, resumes bit-identically (with LoRA too), and bad PPO keys fail naming
//! the key with nothing written.

mod common;

use std::path::Path;

use common::{fails, jsonl, mgrpo, run_config, step_values};
use serde_json::Value;

const CONFIG: &str = "configs/copy-ppo.toml";

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
fn ppo_learns_the_copy_task() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let t = std::time::Instant::now();
    train(&run, &[]);
    assert!(t.elapsed().as_secs() < 60, "{:?}", t.elapsed());
    let m = metrics(&run);
    assert_eq!(m.len(), 30);
    let (first, last) = (mean(&m[..5], "reward"), mean(&m[m.len() - 5..], "reward"));
    assert!(first < 0.3, "starts too good: {first}");
    assert!(last > 0.8, "did not learn: {first} → {last}");
    // TRL's PPOTrainer names
    for key in [
        "objective/kl",
        "objective/entropy",
        "objective/non_score_reward",
        "objective/rlhf_reward",
        "objective/scores",
        "policy/approxkl_avg",
        "policy/clipfrac_avg",
        "policy/entropy_avg",
        "loss/policy_avg",
        "loss/value_avg",
        "val/clipfrac_avg",
        "val/vpred",
        "val/error",
        "val/ratio",
        "value_learning_rate",
    ] {
        assert!(m[0].get(key).is_some(), "metrics.jsonl lacks `{key}`");
    }
    // the KL penalty is on (kl_coef 0.05): the policy moves away from the reference, and the
    // rlhf reward is the score plus the penalty
    let kl = m[m.len() - 1]["objective/kl"].as_f64().unwrap();
    assert!(kl > 0.1, "{kl}");
    for row in &m {
        let (s, p, r) = (
            row["objective/scores"].as_f64().unwrap(),
            row["objective/non_score_reward"].as_f64().unwrap(),
            row["objective/rlhf_reward"].as_f64().unwrap(),
        );
        assert!((s + p - r).abs() < 1e-5, "{row}");
    }
    // the critic learns the success rate: its predictions follow the reward up
    let (v0, v1) = (
        mean(&m[..3], "val/vpred"),
        mean(&m[m.len() - 5..], "val/vpred"),
    );
    assert!(v0 < 0.3 && v1 > 0.6, "val/vpred {v0} → {v1}");
    // 4 epochs × 2 mini-batches: 8 optimizer steps per step
    let state =
        std::fs::read_to_string(run.join("checkpoints/step-000030/trainer_state.json")).unwrap();
    let state: Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["optimizer_steps"], 240);
    for f in [
        "checkpoints/step-000030/value.bin",
        "checkpoints/step-000030/value_optimizer.bin",
        "value/model.safetensors",
        "value/tokenizer.json",
        "model/model.safetensors",
    ] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    // the critic in transformers' layout: a one-label sequence classifier
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("value/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["architectures"][0], "Qwen2ForSequenceClassification");
    assert_eq!(config["id2label"].as_object().unwrap().len(), 1);
    let bytes = std::fs::read(run.join("value/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("score.weight").unwrap().shape(), &[1, 32]);
    assert!(st.tensor("lm_head.weight").is_err());
    // the trained policy copies the digit greedily
    let o = mgrpo(&[
        "generate",
        "--model",
        run.join("model").to_str().unwrap(),
        "--prompt",
        "4\n",
        "--temperature",
        "0",
        "--max-new-tokens",
        "1",
    ]);
    let line: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(line["text"].as_str().unwrap().contains('4'), "{line}");

    // one completion per prompt (TRL's PPO setting: the critic needs no group)
    let single = tmp.path().join("single");
    let sets = [
        "num_generations=1",
        "per_device_train_batch_size=16",
        "max_steps=2",
    ];
    let args: Vec<&str> = sets.iter().flat_map(|s| ["--set", s]).collect();
    train(&single, &args);
    assert_eq!(metrics(&single).len(), 2);

    // `value_model_path`: the trained critic starts a new run with its values (~0.8 for most
    // digits: the trained policy's success rate); a causal LM starts one with a fresh head
    // (values near 0). The critic's learning rate is ~0, so the step's mean prediction is
    // the loaded critic's.
    for (path, high) in [
        (run.join("value"), true),
        (Path::new("tests/fixtures/copy-task").to_path_buf(), false),
    ] {
        let again = tmp.path().join(if high { "from-value" } else { "from-lm" });
        let set = format!("value_model_path={}", path.display());
        let still = "value_learning_rate=1e-12";
        train(
            &again,
            &["--set", &set, "--set", "max_steps=1", "--set", still],
        );
        let vpred = metrics(&again)[0]["val/vpred"].as_f64().unwrap();
        let trained = vpred.abs() > 0.2;
        assert!(
            trained == high && (high || vpred.abs() < 0.1),
            "{}: val/vpred {vpred}",
            path.display()
        );
    }
}

#[test]
fn ppo_resume_is_bit_identical() {
    // the KL penalty with k3 (a reference model), whitened rewards, a checkpoint every 3 steps;
    // then the same with LoRA on the policy and the critic
    let base = [
        "--set",
        "max_steps=8",
        "--set",
        "save_steps=3",
        "--set",
        "kl_coef=0.1",
        "--set",
        "kl_estimator=k3",
        "--set",
        "whiten_rewards=true",
        "--set",
        "log_completions=true",
    ];
    let lora = [
        "--set",
        "lora_r=4",
        "--set",
        "lora_alpha=8",
        "--set",
        "learning_rate=5e-2",
    ];
    for with_lora in [false, true] {
        let mut sets = base.to_vec();
        if with_lora {
            sets.extend(lora);
        }
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        train(&a, &sets);
        let mut args = sets.clone();
        args.extend(["--stop-after", "5"]);
        train(&b, &args);
        assert!(
            !b.join("value").exists(),
            "an interrupted run has no final critic"
        );
        let o = mgrpo(&["train", "--resume", b.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            step_values(&a),
            step_values(&b),
            "lora {with_lora}: metrics differ after resuming"
        );
        common::assert_same_files(
            &a,
            &b,
            &[
                "model/model.safetensors",
                "value/model.safetensors",
                "completions.jsonl",
            ],
            &format!("lora {with_lora}: "),
        );
        let kl: f64 = step_values(&a)
            .iter()
            .map(|m| m["objective/kl"].as_f64().unwrap())
            .sum();
        assert!(kl > 0.0);
    }
}

#[test]
fn bad_ppo_keys_fail_clearly_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let out_s = out.to_str().unwrap();
    let missing = tmp.path().join("nowhere");
    let not_a_model = format!("value_model_path={}", tmp.path().display());
    let nowhere = format!("value_model_path={}", missing.display());
    for (set, needle) in [
        ("cliprange=0", "`cliprange`"),
        ("cliprange_value=-1", "`cliprange_value`"),
        ("vf_coef=0", "`vf_coef`"),
        ("gamma=1.5", "`gamma`"),
        ("lam=-0.1", "`lam`"),
        ("num_ppo_epochs=0", "`num_ppo_epochs`"),
        ("num_mini_batches=0", "`num_mini_batches`"),
        ("num_mini_batches=1000", "1..=128"),
        ("kl_coef=-1", "`kl_coef`"),
        ("value_learning_rate=0", "`value_learning_rate`"),
        ("kl_estimator=k2", "kl_estimator"),
        ("beta=0.1", "`beta`"),
        ("num_iterations=2", "num_ppo_epochs"),
        ("num_devices=2", "one device"),
        (&nowhere, "nowhere"),
        (&not_a_model, "config.json"),
    ] {
        let err = fails(&["train", "--config", CONFIG, "--out", out_s, "--set", set]);
        assert!(
            err.contains(needle),
            "{set}: {err:?} should mention {needle:?}"
        );
        assert!(!out.exists(), "{set} wrote {out_s}");
    }
}
