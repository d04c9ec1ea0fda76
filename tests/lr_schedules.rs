//! Learning-rate schedules against transformers' `get_scheduler` with
//! `scheduler_specific_kwargs` (`tests/fixtures/trl/schedules.json`, from
//! `scripts/trl_parity.py`): a config that sets `lr_scheduler_type` and `lr_scheduler_kwargs`
//! as a TRL user would gives transformers' learning rate at every optimizer step.

mod common;

use std::path::Path;

use mgrpo::train::TrainConfig;
use serde_json::Value;

fn config(toml: &str) -> Result<TrainConfig, String> {
    TrainConfig::from_toml(
        &format!("dataset = \"d\"\n{toml}"),
        Path::new("run.toml"),
        &[],
    )
    .map_err(|e| e.to_string())
}

#[test]
fn every_schedule_is_transformers() {
    let path = common::fixture("trl/schedules.json");
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let cases = v["data"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    for c in cases {
        let kwargs: Vec<String> = c["kwargs"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        let toml = format!(
            "learning_rate = 1e-3\nlr_scheduler_type = {}\nwarmup_steps = {}\n\
             lr_scheduler_kwargs = {{ {} }}\n",
            c["type"],
            c["warmup_steps"],
            kwargs.join(", ")
        );
        let cfg = config(&toml).unwrap_or_else(|e| panic!("{toml}: {e}"));
        let s = cfg
            .optim
            .schedule(c["total"].as_u64().unwrap() as usize)
            .unwrap();
        for (step, want) in c["lrs"].as_array().unwrap().iter().enumerate() {
            let want = want.as_f64().unwrap();
            let got = s.lr(step);
            assert!(
                (got - want).abs() <= 1e-12 + 1e-9 * want.abs(),
                "{toml}step {step}: ours {got}, transformers {want}"
            );
        }
    }
}

/// Arguments a schedule does not take, and transformers' own refusals, name the key.
#[test]
fn bad_kwargs_name_the_key() {
    for (toml, want) in [
        (
            "lr_scheduler_type = \"linear\"\nlr_scheduler_kwargs = { num_cycles = 2 }",
            "lr_scheduler_kwargs.num_cycles",
        ),
        (
            "lr_scheduler_type = \"cosine\"\nlr_scheduler_kwargs = { min_lr = 1e-7 }",
            "lr_scheduler_kwargs.min_lr",
        ),
        ("lr_scheduler_type = \"cosine_with_min_lr\"", "needs min_lr or min_lr_rate"),
        (
            "lr_scheduler_type = \"cosine_with_min_lr\"\n\
             lr_scheduler_kwargs = { min_lr = 1e-7, min_lr_rate = 0.1 }",
            "not both",
        ),
        (
            "lr_scheduler_type = \"cosine_with_restarts\"\nlr_scheduler_kwargs = { num_cycles = 1.5 }",
            "lr_scheduler_kwargs.num_cycles",
        ),
        (
            "learning_rate = 1e-6\nlr_scheduler_type = \"polynomial\"\n\
             lr_scheduler_kwargs = { lr_end = 1e-5 }",
            "lr_scheduler_kwargs.lr_end",
        ),
        (
            "lr_scheduler_type = \"cosine\"\nlr_scheduler_kwargs = { num_cycles = \"many\" }",
            "must be a finite number",
        ),
    ] {
        let e = config(toml).expect_err(toml);
        assert!(e.contains(want), "{toml}: {e}");
    }
}
