//! Parity with TRL's and transformers' own code: `tests/fixtures/trl/*.json`, written by
//! `scripts/trl_parity.py` from trl 1.16 and transformers 5 (config defaults, `trl.rewards`,
//! `Trainer.get_decay_parameter_names`, `AutoTokenizer`'s choice of chat template, and the
//! advantage and reward-statistics block of `GRPOTrainer`, run on fixed rewards, and
//! `GRPOTrainer._compute_loss` / `RLOOTrainer._compute_loss` with the model's forward mocked).
//! The tests need no Python.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use common::fixture;
use mgrpo::reward::{weighted_total, RewardSet};
use mgrpo::rl::advantage::{group_advantages, ScaleRewards};
use mgrpo::rl::loss::{grpo_loss, high_entropy_mask, LossInputs, LossMetrics, StepCounts};
use mgrpo::text::chat_template::{ChatTemplate, Message};
use mgrpo::train::TrainConfig;
use serde_json::Value;

fn data(name: &str) -> Value {
    let path = fixture(&format!("trl/{name}"));
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(v["versions"]["trl"].as_str().unwrap(), "1.16.0", "{name}");
    v["data"].clone()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

/// Every key we share with `GRPOConfig` defaults to TRL's value, and with `algorithm = "rloo"`
/// every key we share with `RLOOConfig`, but for the differences listed here (each also in
/// docs/training.md, "Where we differ from TRL").
#[test]
fn defaults_are_trls_but_the_listed_ones() {
    defaults_match("GRPOConfig", "");
    defaults_match("RLOOConfig", "algorithm = \"rloo\"\n");
}

fn defaults_match(trl_config: &str, toml: &str) {
    let trl = data("config_defaults.json");
    let trl = trl[trl_config].as_object().unwrap();
    let ours = TrainConfig::from_toml(
        &format!("dataset = \"d\"\n{toml}"),
        Path::new("run.toml"),
        &[],
    )
    .unwrap();
    let ours: toml::Table = toml::from_str(&ours.to_toml().unwrap()).unwrap();
    // ours ≠ TRL's on purpose; why, in docs/training.md
    let deliberate: BTreeMap<&str, &str> = [
        ("max_completion_length", "256, a laptop budget (TRL 512)"),
        (
            "bf16",
            "false: f32 unless asked (TRL's None resolves to bf16 on a GPU that has it)",
        ),
        (
            "gradient_checkpointing",
            "false: opt-in on the default CPU device (TRL true)",
        ),
    ]
    .into_iter()
    .collect();
    let mut differ = Vec::new();
    let mut differs = std::collections::BTreeSet::new();
    let mut shared = 0;
    for (key, ours_v) in &ours {
        let Some(trl_v) = trl.get(key) else { continue };
        shared += 1;
        let same = match (ours_v, trl_v) {
            (toml::Value::Float(a), Value::Number(b)) => close(*a, b.as_f64().unwrap(), 1e-12),
            (toml::Value::Integer(a), Value::Number(b)) => Some(*a as f64) == b.as_f64(),
            (toml::Value::Boolean(a), Value::Bool(b)) => a == b,
            (toml::Value::String(a), Value::String(b)) => a == b,
            // TRL's None for an option that is off (`min_p`, `eval_steps`) is our 0
            (toml::Value::Float(a), Value::Null) => *a == 0.0,
            (toml::Value::Integer(a), Value::Null) => *a == 0,
            // TRL's None for a dict of options is our empty table (`chat_template_kwargs`)
            (toml::Value::Table(t), Value::Null) => t.is_empty(),
            // a list of one is TRL's string (`report_to = "none"`)
            (toml::Value::Array(a), Value::String(b)) => {
                a.len() == 1 && a[0].as_str() == Some(b.as_str())
            }
            _ => false,
        };
        if !same {
            differs.insert(key.as_str());
        }
        if !same && !deliberate.contains_key(key.as_str()) {
            differ.push(format!("{key}: ours {ours_v}, TRL {trl_v}"));
        }
    }
    assert!(shared >= 30, "only {shared} keys shared with {trl_config}");
    let listed_but_equal: Vec<_> = deliberate
        .keys()
        .filter(|k| !differs.contains(*k))
        .collect();
    assert!(
        listed_but_equal.is_empty(),
        "listed as differing but equal to TRL's: {listed_but_equal:?}"
    );
    assert!(
        differ.is_empty(),
        "defaults that differ from TRL's: {differ:#?}"
    );
}

/// `trl.rewards.get_soft_overlong_punishment`, including caches larger than the budget.
#[test]
fn soft_overlong_punishment_is_trls() {
    let cases = data("soft_overlong.json");
    for c in cases.as_array().unwrap() {
        let (max, cache) = (c["max"].as_u64().unwrap(), c["cache"].as_u64().unwrap());
        for (len, want) in c["lengths"]
            .as_array()
            .unwrap()
            .iter()
            .zip(c["rewards"].as_array().unwrap())
        {
            let got = mgrpo::reward::soft_overlong(
                len.as_u64().unwrap() as usize,
                max as usize,
                cache as usize,
            );
            let want = want.as_f64().unwrap();
            assert!(
                close(got as f64, want, 1e-6),
                "max {max}, cache {cache}, length {len}: ours {got}, TRL {want}"
            );
        }
    }
}

/// A fixture number: a JSON number, or `"nan"` for NaN.
fn number(v: &Value) -> f64 {
    match v.as_str() {
        Some("nan") => f64::NAN,
        _ => v.as_f64().unwrap(),
    }
}

fn same(got: f32, want: f64, tol: f64) -> bool {
    (got.is_nan() && want.is_nan()) || (got as f64 - want).abs() < tol
}

/// GRPO's advantages and TRL's `reward`, `reward_std`, `frac_reward_zero_std` and
/// `rewards/<name>/mean`, from the same rewards (some of them a function's None) under each
/// `scale_rewards`; the totals are [`weighted_total`]'s, the statistics [`RewardSet::stats`]'
/// reductions. RLOO's half of the fixture is `algo::rloo::tests`.
#[test]
fn advantages_and_reward_statistics_are_trls() {
    let cases = data("reward_statistics.json");
    let mut n = 0;
    for c in cases.as_array().unwrap() {
        if c["trainer"] != "GRPOTrainer" {
            continue;
        }
        let weights: Vec<f32> = c["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| number(w) as f32)
            .collect();
        let per_func: Vec<Vec<f32>> = c["rewards_per_func"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|r| number(r) as f32)
                    .collect()
            })
            .collect();
        let rewards: Vec<f32> = per_func
            .iter()
            .map(|s| weighted_total(s, &weights))
            .collect();
        let scale = match c["scale_rewards"].as_str().unwrap() {
            "group" => ScaleRewards::Group,
            "batch" => ScaleRewards::Batch,
            _ => ScaleRewards::None,
        };
        let g = c["num_generations"].as_u64().unwrap() as usize;
        let a = group_advantages(&rewards, g, scale);
        let what = format!("{} / {:?}", c["name"], scale);
        for (got, want) in a.values.iter().zip(c["advantages"].as_array().unwrap()) {
            assert!(
                same(*got, number(want), 1e-5),
                "{what}: advantages {:?} vs TRL {}",
                a.values,
                c["advantages"]
            );
        }
        let funcs: Vec<String> = (0..weights.len()).map(|i| format!("f{i}")).collect();
        let stats = RewardSet::stats_of(&funcs, &per_func);
        for (i, want) in c["func_means"].as_array().unwrap().iter().enumerate() {
            let got = stats
                .get(&format!("rewards/f{i}/mean"))
                .copied()
                .unwrap_or(f32::NAN);
            assert!(
                same(got, number(want), 1e-6),
                "{what}: rewards/f{i}/mean ours {got}, TRL {want}"
            );
        }
        for (name, got, want) in [
            ("reward", a.reward_mean, &c["reward"]),
            ("reward_std", a.reward_std, &c["reward_std"]),
            (
                "frac_reward_zero_std",
                a.frac_zero_std,
                &c["frac_reward_zero_std"],
            ),
        ] {
            assert!(
                same(got, number(want), 1e-6),
                "{what}: {name} ours {got}, TRL {want}"
            );
        }
        n += 1;
    }
    assert_eq!(n, 24);
}

/// `chat_template_kwargs` as a TRL user writes it reach the chat template as transformers'
/// `apply_chat_template(..., **chat_template_kwargs)` passes them (Qwen3's `enable_thinking`
/// and a variable of the user's own); without them the template renders as before.
#[test]
fn chat_template_kwargs_are_transformers() {
    let c = data("chat_template_source.json");
    let messages: Vec<Message> = c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Message::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    let cfg = TrainConfig::from_toml(
        "dataset = \"d\"\ntemplate = \"checkpoint\"\n\
         chat_template_kwargs = { enable_thinking = false, greeting = \"Hello.\" }\n",
        Path::new("run.toml"),
        &[],
    )
    .unwrap();
    let source = c["kwargs_template"].as_str().unwrap().to_string();
    let plain = ChatTemplate::new(source, String::new(), String::new(), Path::new("t")).unwrap();
    assert_eq!(
        plain.render(&messages, true).unwrap(),
        c["kwargs_default_rendered"].as_str().unwrap()
    );
    let with = plain.with_kwargs(&cfg.chat_template_kwargs).unwrap();
    assert_eq!(
        with.render(&messages, true).unwrap(),
        c["kwargs_rendered"].as_str().unwrap()
    );
    // they belong to the model's chat template: with a built-in template they are refused
    let e = TrainConfig::from_toml(
        "dataset = \"d\"\nchat_template_kwargs = { enable_thinking = false }\n",
        Path::new("run.toml"),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("chat_template_kwargs") && e.contains("checkpoint"),
        "{e}"
    );
    let mut own = toml::Table::new();
    own.insert("messages".into(), 1.into());
    let plain =
        ChatTemplate::new("x".into(), String::new(), String::new(), Path::new("t")).unwrap();
    let e = plain.with_kwargs(&own).unwrap_err().to_string();
    assert!(e.contains("chat_template_kwargs.messages"), "{e}");
}

/// AutoTokenizer reads `chat_template.jinja` over `tokenizer_config.json`'s copy, and a
/// checkpoint with only the `.jinja` file has a chat template.
#[test]
fn chat_template_jinja_wins_as_in_transformers() {
    let c = data("chat_template_source.json");
    let model = common::repo().join("model");
    let messages: Vec<Message> = c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Message::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    for case in ["both", "jinja_only"] {
        let dir = tempfile::tempdir().unwrap();
        let mut tc: serde_json::Map<String, Value> =
            serde_json::from_slice(&std::fs::read(model.join("tokenizer_config.json")).unwrap())
                .unwrap();
        tc.remove("chat_template");
        if case == "both" {
            tc.insert("chat_template".into(), c["in_config"].clone());
        }
        std::fs::write(
            dir.path().join("tokenizer_config.json"),
            serde_json::to_vec(&tc).unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("chat_template.jinja"),
            c["in_jinja"].as_str().unwrap(),
        )
        .unwrap();
        let t = ChatTemplate::from_model_dir(dir.path()).unwrap();
        let got = t.render(&messages, false).unwrap();
        assert_eq!(got, c[case].as_str().unwrap(), "{case}");
    }
}

/// transformers' `Trainer` decays every parameter but biases and norm weights; ours decays the
/// matrices, which in Qwen2 are exactly the parameters it decays.
#[test]
fn weight_decay_spares_what_transformers_spares() {
    let c = data("decay_parameters.json");
    for tied in ["tied", "untied"] {
        let params = c[tied]["parameters"].as_object().unwrap();
        let decayed: Vec<&str> = c[tied]["decayed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(decayed.len() > 10 && decayed.len() < params.len(), "{tied}");
        for (name, shape) in params {
            let matrix = shape.as_array().unwrap().len() >= 2;
            assert_eq!(
                matrix,
                decayed.contains(&name.as_str()),
                "{tied}: {name} {shape}"
            );
        }
    }
}

type B = burn::backend::NdArray<f32>;
type AB = burn::backend::Autodiff<B>;

fn matrix(v: &Value) -> (Vec<f32>, [usize; 2]) {
    let rows = v.as_array().unwrap();
    let flat: Vec<f32> = rows.iter().flat_map(common::floats).collect();
    let shape = [rows.len(), flat.len() / rows.len()];
    (flat, shape)
}

fn tensor2(v: &Value) -> Tensor<AB, 2> {
    let (flat, shape) = matrix(v);
    Tensor::from_data(TensorData::new(flat, shape), &Default::default())
}

/// The TOML a TRL user would write for a `_compute_loss` case of the fixture.
fn loss_config(c: &Value) -> String {
    let f = |k: &str| c[k].as_f64().unwrap();
    if c["trainer"] == "RLOOTrainer" {
        return format!(
            "algorithm = \"rloo\"\nepsilon = {}\nepsilon_high = {}\n",
            f("epsilon_low"),
            f("epsilon_high")
        );
    }
    let mut toml = format!(
        "loss_type = \"{}\"\nimportance_sampling_level = \"{}\"\nbeta = {}\nepsilon = {}\n\
         epsilon_high = {}\ntop_entropy_quantile = {}\nmax_completion_length = {}\n",
        c["loss_type"].as_str().unwrap(),
        c["importance_sampling_level"].as_str().unwrap(),
        f("beta"),
        f("epsilon_low"),
        f("epsilon_high"),
        f("top_entropy_quantile"),
        c["max_completion_length"].as_u64().unwrap(),
    );
    if let Some(delta) = c["delta"].as_f64() {
        toml += &format!("delta = {delta}\n");
    }
    toml
}

/// `GRPOTrainer._compute_loss` and `RLOOTrainer._compute_loss` themselves, with the model's
/// forward mocked (`scripts/trl_parity.py`): for each case the config a TRL user would write,
/// through [`TrainConfig::loss_params`] and [`grpo_loss`], gives TRL's loss, its gradient
/// with respect to every log-prob, and TRL's `kl`, `clip_ratio/*` and `cispo_clip_ratio`.
#[test]
fn compute_loss_is_trls() {
    let d = data("compute_loss.json");
    let cases = d["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 37);
    for c in cases {
        let toml = loss_config(c);
        let cfg = TrainConfig::from_toml(&format!("dataset = \"d\"\n{toml}"), Path::new("t"), &[])
            .unwrap_or_else(|e| panic!("{toml}: {e}"));
        let rloo = c["trainer"] == "RLOOTrainer";
        let x = &d[if rloo { "rloo_inputs" } else { "inputs" }];
        let (mask, [n, t]) = matrix(&x["mask"]);
        let quantile = c["top_entropy_quantile"].as_f64().unwrap_or(1.0) as f32;
        let entropy_mask = (quantile < 1.0).then(|| {
            let (h, shape) = matrix(&x["entropies"]);
            let keep = high_entropy_mask(&h, &mask, quantile);
            Tensor::from_data(TensorData::new(keep, shape), &Default::default())
        });
        let logps = tensor2(&x["logps"]).require_grad();
        let params = cfg.loss_params();
        let inputs = LossInputs {
            logps: logps.clone(),
            old_logps: Some(tensor2(&x["old"])),
            ref_logps: Some(tensor2(&x["ref"])),
            advantages: Tensor::from_data(
                TensorData::new(common::floats(&x["advantages"]), [n]),
                &Default::default(),
            ),
            mask: tensor2(&x["mask"]),
            entropy_mask,
        };
        let tokens = mask.iter().sum::<f32>();
        let counts = StepCounts {
            sequences: n,
            tokens: tokens as f64,
            micro_batches: 1,
            max_completion_length: c["max_completion_length"].as_u64().unwrap_or(0) as usize,
        };
        let (loss, sums) = grpo_loss(inputs, &params, &counts);
        let grads = loss.backward();
        let grad = logps
            .grad(&grads)
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let value = loss.into_data().to_vec::<f32>().unwrap()[0];
        let sums: Vec<f32> = sums.sums.into_data().to_vec().unwrap();
        let m = LossMetrics::from_sums(&sums.try_into().unwrap());
        let name = format!("{} [{}]", c["trainer"], toml.replace('\n', "; "));
        let (want_grad, _) = matrix(&c["grad"]);
        let want = c["loss"].as_f64().unwrap();
        // a row masked out whole adds TRL's −A to RLOO's loss value, but no gradient
        if !rloo || mask.chunks(t).all(|r| r.iter().any(|m| *m > 0.0)) {
            assert!(
                close(value as f64, want, 1e-6),
                "{name}: loss ours {value}, TRL {want}"
            );
        }
        for (i, (g, w)) in grad.iter().zip(&want_grad).enumerate() {
            assert!(
                close(*g as f64, *w as f64, 1e-5),
                "{name}: d/d logp[{i}] ours {g}, TRL {w}"
            );
        }
        let metric = |k: &str| c["metrics"][k].as_f64();
        let mut expect = vec![];
        if let Some(kl) = metric("kl") {
            expect.push(("kl", m.kl, kl));
        }
        if let Some(r) = metric("cispo_clip_ratio") {
            expect.push(("cispo_clip_ratio", m.clip_high, r));
        } else {
            expect.push((
                "clip_ratio/low_mean",
                m.clip_low,
                metric("clip_ratio/low_mean").unwrap(),
            ));
            expect.push((
                "clip_ratio/high_mean",
                m.clip_high,
                metric("clip_ratio/high_mean").unwrap(),
            ));
            expect.push((
                "clip_ratio/region_mean",
                m.clip_region,
                metric("clip_ratio/region_mean").unwrap(),
            ));
        }
        for (k, ours, trl) in expect {
            assert!(
                close(ours as f64, trl, 1e-6),
                "{name}: {k} ours {ours}, TRL {trl}"
            );
        }
    }
}
