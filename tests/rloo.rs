//! `mgrpo train` with `algorithm = "rloo"` on the copy task (`configs/copy-rloo.toml`): RLOO
//! learns, logs TRL's `RLOOTrainer` names, trains on leave-one-out advantages of the logged
//! rewards, and its bad keys fail naming the key.

mod common;

use std::path::Path;

use common::{fails, jsonl, run_config};
use serde_json::Value;

const CONFIG: &str = "configs/copy-rloo.toml";

fn metrics(run: &Path) -> Vec<Value> {
    jsonl(&run.join("metrics.jsonl"))
}

fn mean(rows: &[Value], key: &str) -> f64 {
    rows.iter().map(|m| m[key].as_f64().unwrap()).sum::<f64>() / rows.len() as f64
}

#[test]
fn rloo_learns_the_copy_task() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let t = std::time::Instant::now();
    run_config("train", CONFIG, &run, &[]);
    assert!(t.elapsed().as_secs() < 60, "{:?}", t.elapsed());
    let m = metrics(&run);
    assert_eq!(m.len(), 60);
    let (first, last) = (mean(&m[..5], "reward"), mean(&m[m.len() - 5..], "reward"));
    assert!(first < 0.3, "starts too good: {first}");
    assert!(last > 0.8, "did not learn: {first} → {last}");
    // TRL's RLOOTrainer names; no other method's
    for key in [
        "reward",
        "reward_std",
        "frac_reward_zero_std",
        "kl",
        "entropy",
        "clip_ratio/low_mean",
        "clip_ratio/high_mean",
        "clip_ratio/region_mean",
        "completions/mean_length",
    ] {
        assert!(m[0].get(key).is_some(), "metrics.jsonl lacks `{key}`");
    }
    for key in ["layer2/queries", "objective/kl", "igrpo/draft_reward"] {
        assert!(m[0].get(key).is_none(), "metrics.jsonl has `{key}`");
    }
    // β = 0.05: the KL in the reward is measured, and grows as the policy leaves its start
    let kl = |r: &Value| r["kl"].as_f64().unwrap();
    assert_eq!(kl(&m[0]), 0.0);
    assert!(kl(&m[m.len() - 1]) > 0.1, "{}", kl(&m[m.len() - 1]));
}

/// With β = 0 every trained completion's advantage in `completions.jsonl` is its reward
/// minus the mean reward of the other 7 completions of its prompt (worked out here from the
/// logged rewards), and `normalize_advantages` whitens them over the step.
#[test]
fn advantages_are_leave_one_out() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, normalize) in [("plain", false), ("whitened", true)] {
        let run = tmp.path().join(name);
        let set = format!("normalize_advantages={normalize}");
        let extra = [
            "--set",
            "beta=0",
            "--set",
            "max_steps=3",
            "--set",
            "log_completions=true",
            "--set",
            &set,
        ];
        run_config("train", CONFIG, &run, &extra);
        let rows = jsonl(&run.join("completions.jsonl"));
        assert_eq!(rows.len(), 3 * 128);
        for step in rows.chunks(128) {
            let r: Vec<f64> = step.iter().map(|c| c["reward"].as_f64().unwrap()).collect();
            let mut want = Vec::new();
            for g in r.chunks(8) {
                let sum: f64 = g.iter().sum();
                want.extend(g.iter().map(|x| x - (sum - x) / 7.0));
            }
            if normalize {
                let m = want.iter().sum::<f64>() / 128.0;
                let var = want.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / 127.0;
                want = want.iter().map(|a| (a - m) / (var.sqrt() + 1e-4)).collect();
            }
            for (c, w) in step.iter().zip(&want) {
                let got = c["advantage"].as_f64().unwrap();
                assert!((got - w).abs() < 1e-4, "{name}: {got} vs {w}");
            }
        }
    }
}

#[test]
fn bad_rloo_keys_name_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let out = out.to_str().unwrap();
    for (set, key) in [
        ("reward_clip_range=[1.0, 0.0]", "reward_clip_range"),
        ("num_generations=1", "num_generations"),
        (
            "importance_sampling_level=\"sequence\"",
            "importance_sampling_level",
        ),
        ("normalize_advantages=\"yes\"", "normalize_advantages"),
    ] {
        let err = fails(&["train", "--config", CONFIG, "--out", out, "--set", set]);
        assert!(
            err.contains(key) && err.contains("copy-rloo.toml"),
            "{set}: {err}"
        );
        assert!(!Path::new(out).exists(), "{set}: wrote {out}");
    }
}
