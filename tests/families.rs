//! Qwen3 and Llama through the same commands as Qwen2 (the fixtures of
//! `scripts/make_fixtures.py`, made by transformers; their log-probs and greedy continuations
//! are checked in `parity.rs` and `generate.rs` with the others): every method trains, a LoRA
//! run resumes bit-identically, and what is saved names the family as transformers expects.

mod common;

use std::path::Path;

use common::{fixture, jsonl, mgrpo, run_config, step_values};
use serde_json::Value;

/// A Qwen3 (q/k norms, head_dim 16 with hidden 48 and 4 heads, tied) and a Llama 3.2-shaped
/// model (tied, `llama3` RoPE scaling), each with the fixtures' tokenizer, and the
/// architecture their saved `config.json` must name.
const MODELS: [(&str, &str); 2] = [
    ("qwen3-headdim-tied-f32-t5", "Qwen3ForCausalLM"),
    ("llama32-scaled-tied-f32-t4", "LlamaForCausalLM"),
];

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn model_key(name: &str) -> String {
    format!("model=\"{}\"", fixture(name).display())
}

/// GRPO with LoRA on every projection and β > 0, stopped after step 2 and resumed: the same
/// metrics, model and adapter as the uninterrupted run; the adapter in PEFT's layout, the
/// merged model under the family's architecture.
#[test]
fn lora_grpo_resumes_bit_identically_on_qwen3_and_llama() {
    for (name, architecture) in MODELS {
        let model = model_key(name);
        let sets = [
            "--set",
            &model,
            "--set",
            "max_steps=4",
            "--set",
            "save_steps=2",
            "--set",
            "max_completion_length=3",
            "--set",
            "beta=0.04",
            "--set",
            "lora_r=4",
            "--set",
            "lora_alpha=8",
            "--set",
            r#"lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]"#,
            "--set",
            "learning_rate=0.05",
        ];
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        run_config("train", "configs/copy-grpo.toml", &a, &sets);
        let mut args = sets.to_vec();
        args.extend(["--stop-after", "2"]);
        run_config("train", "configs/copy-grpo.toml", &b, &args);
        let o = mgrpo(&["train", "--resume", b.to_str().unwrap()]);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            step_values(&a),
            step_values(&b),
            "{name}: metrics differ after resuming"
        );
        common::assert_same_files(
            &a,
            &b,
            &[
                "model/model.safetensors",
                "adapter/adapter_model.safetensors",
            ],
            &format!("{name}: "),
        );
        let m = jsonl(&a.join("metrics.jsonl"));
        assert!(
            m.iter().all(|s| s["loss"].as_f64().unwrap().is_finite()),
            "{name}"
        );
        assert!(
            m.iter().any(|s| s["kl"].as_f64().unwrap() > 0.0),
            "{name}: β > 0, no KL"
        );
        let config = json(&a.join("model/config.json"));
        assert_eq!(config["architectures"][0], architecture, "{name}");
        let adapter = json(&a.join("adapter/adapter_config.json"));
        assert_eq!(
            adapter["target_modules"].as_array().unwrap().len(),
            7,
            "{name}"
        );
        // the merged model loads back, and every targeted projection moved
        let st = std::fs::read(a.join("model/model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&st).unwrap();
        let base = std::fs::read(fixture(name).join("model.safetensors")).unwrap();
        let base = safetensors::SafeTensors::deserialize(&base).unwrap();
        for proj in ["self_attn.o_proj", "mlp.gate_proj"] {
            let key = format!("model.layers.1.{proj}.weight");
            assert_ne!(
                st.tensor(&key).unwrap().data(),
                base.tensor(&key).unwrap().data(),
                "{name}: {key}"
            );
        }
    }
}

/// MGRPO, iGRPO and PPO (with its critic) train a few steps on each family; PPO's critic is
/// saved as the family's sequence classifier.
#[test]
fn every_method_trains_on_qwen3_and_llama() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, architecture) in MODELS {
        let model = model_key(name);
        for method in ["mgrpo", "igrpo", "ppo"] {
            let run = tmp.path().join(format!("{method}-{name}"));
            let config = format!("configs/copy-{method}.toml");
            let sets = [
                "--set",
                &model,
                "--set",
                "max_steps=2",
                "--set",
                "save_steps=2",
            ];
            run_config("train", &config, &run, &sets);
            let m = jsonl(&run.join("metrics.jsonl"));
            assert_eq!(m.len(), 2, "{method} on {name}");
            assert!(
                m.iter()
                    .all(|s| s["loss"].as_f64().is_some_and(f64::is_finite)),
                "{method} on {name}: {m:?}"
            );
            let saved = json(&run.join("model/config.json"));
            assert_eq!(
                saved["architectures"][0], architecture,
                "{method} on {name}"
            );
            if method == "ppo" {
                let critic = json(&run.join("value/config.json"));
                let head = architecture.replace("CausalLM", "SequenceClassification");
                assert_eq!(critic["architectures"][0], head.as_str(), "{name}");
            }
        }
    }
}

/// `convert` keeps the family (architecture, RoPE scaling, head_dim, biases), and the converted
/// directory generates what the source does.
#[test]
fn convert_keeps_the_family() {
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "qwen3-headdim-tied-f32-t5",
        "qwen3-bias-untied-bf16-t4",
        "llama32-scaled-tied-f32-t4",
        "llama-bias-untied-bf16-t5",
    ] {
        let out = tmp.path().join(name);
        let src = fixture(name);
        let o = mgrpo(&[
            "convert",
            "--model",
            src.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--dtype",
            "f32",
        ]);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let (before, after) = (
            json(&src.join("config.json")),
            json(&out.join("config.json")),
        );
        for key in ["architectures", "model_type", "attention_bias", "mlp_bias"] {
            assert_eq!(before.get(key), after.get(key), "{name}: {key}");
        }
        if let Some(scaling) = before.get("rope_scaling").filter(|s| !s.is_null()) {
            assert_eq!(&after["rope_scaling"], scaling, "{name}");
            assert_eq!(after["rope_parameters"]["rope_type"], "llama3", "{name}");
        }
        if let Some(head_dim) = before.get("head_dim") {
            assert_eq!(&after["head_dim"], head_dim, "{name}");
        }
        let prompts = tmp.path().join("prompts.jsonl");
        std::fs::write(
            &prompts,
            "{\"input_ids\": [5, 17, 42, 8]}\n{\"input_ids\": [3]}\n",
        )
        .unwrap();
        let generate = |dir: &Path| {
            let o = mgrpo(&[
                "generate",
                "--model",
                dir.to_str().unwrap(),
                "--input",
                prompts.to_str().unwrap(),
                "--temperature",
                "0",
                "--max-new-tokens",
                "12",
            ]);
            assert!(
                o.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            o.stdout
        };
        assert_eq!(generate(&src), generate(&out), "{name}");
    }
}
