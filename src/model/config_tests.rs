//! Tests of `config.rs`: HF `config.json` parsing, validation and parameter counts.

use super::*;

fn parse(s: &str) -> Result<ModelConfig> {
    ModelConfig::from_json_str(s, Path::new("config.json"))
}

/// Llama 3.2's `rope_scaling`.
const LLAMA3: &str = r#"{"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}"#;

const BASE: &str = r#""vocab_size": 10, "hidden_size": 8, "intermediate_size": 12,
    "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1"#;

/// The parameter counts of the released checkpoints (`model.num_parameters()` in
/// transformers on Qwen2.5-0.5B, -1.5B, -3B and -7B).
#[test]
fn parameter_counts_match_the_released_models() {
    let c = |v, d, i, l, h, kv, tie| ModelConfig::new(v, d, i, l, h, kv, tie).num_params();
    assert_eq!(c(151936, 896, 4864, 24, 14, 2, true), 494_032_768);
    assert_eq!(c(151936, 1536, 8960, 28, 12, 2, true), 1_543_714_304);
    assert_eq!(c(151936, 2048, 11008, 36, 16, 2, true), 3_085_938_688);
    assert_eq!(c(152064, 3584, 18944, 28, 28, 4, false), 7_615_616_512);
}

/// Qwen3 and Llama: transformers' `num_parameters()` of Qwen3-0.6B (tied, head_dim 128 with
/// hidden 1024 and 16 heads), Qwen3-8B, Llama 3.2 1B, and a small Llama with every bias.
#[test]
fn parameter_counts_of_qwen3_and_llama() {
    let json =
        |model_type: &str, extra: &str, shape: (usize, usize, usize, usize, usize, usize)| {
            let (v, d, i, l, h, kv) = shape;
            format!(
                r#"{{"model_type": "{model_type}", "vocab_size": {v}, "hidden_size": {d},
            "intermediate_size": {i}, "num_hidden_layers": {l}, "num_attention_heads": {h},
            "num_key_value_heads": {kv}{extra}}}"#
            )
        };
    let count = |s: String| parse(&s).unwrap().num_params();
    let tied = r#", "tie_word_embeddings": true"#;
    let qwen3 = |extra: &str, shape| json("qwen3", &format!(r#", "head_dim": 128{extra}"#), shape);
    assert_eq!(
        count(qwen3(tied, (151936, 1024, 3072, 28, 16, 8))),
        596_049_920
    );
    assert_eq!(
        count(qwen3("", (151936, 4096, 12288, 36, 32, 8))),
        8_190_735_360
    );
    let llama = parse(&json(
        "llama",
        &format!(r#"{tied}, "rope_theta": 500000.0, "rope_scaling": {LLAMA3}"#),
        (128256, 2048, 8192, 16, 32, 8),
    ))
    .unwrap();
    assert_eq!(llama.num_params(), 1_235_814_400);
    assert_eq!(llama.family.causal_lm, "LlamaForCausalLM");
    assert_eq!(llama.rope_scaling.map(|s| s.factor), Some(32.0));
    let biased = r#", "attention_bias": true, "mlp_bias": true"#;
    assert_eq!(count(json("llama", biased, (100, 32, 48, 2, 4, 1))), 21_312);
}

/// A saved config reads back as the same config, family and RoPE scaling included, in both the
/// transformers-4 and -5 places.
#[test]
fn families_and_rope_scaling_roundtrip() {
    for (model_type, extra) in [
        (
            "qwen3",
            r#", "head_dim": 6, "attention_bias": true"#.to_string(),
        ),
        (
            "llama",
            format!(r#", "mlp_bias": true, "rope_scaling": {LLAMA3}"#),
        ),
        ("qwen2", String::new()),
    ] {
        let c = parse(&format!(
            r#"{{{BASE}, "model_type": "{model_type}"{extra}}}"#
        ))
        .unwrap();
        let saved = c.to_json("float32");
        assert_eq!(saved["model_type"], model_type);
        assert_eq!(saved["architectures"][0], c.family.causal_lm);
        let mut t5 = saved.clone();
        t5.as_object_mut().unwrap().remove("rope_scaling");
        let mut t4 = saved.clone();
        t4.as_object_mut().unwrap().remove("rope_parameters");
        for back in [saved, t4, t5] {
            let back = parse(&back.to_string()).unwrap();
            assert_eq!(
                (back.family, back.layout),
                (c.family, c.layout),
                "{model_type}"
            );
            assert_eq!(
                (back.head_dim, back.rope_scaling, back.rope_theta),
                (c.head_dim, c.rope_scaling, c.rope_theta),
                "{model_type}"
            );
        }
    }
}

#[test]
fn both_rope_styles() {
    let t4 = parse(&format!("{{{BASE}, \"rope_theta\": 500.0}}")).unwrap();
    let t5 = parse(&format!(
        "{{{BASE}, \"rope_parameters\": {{\"rope_theta\": 500.0, \"rope_type\": \"default\"}}}}"
    ))
    .unwrap();
    assert_eq!(t4.rope_theta, 500.0);
    assert_eq!(t5.rope_theta, 500.0);
    assert_eq!(t4.head_dim(), 4);
}

#[test]
fn errors_name_the_field() {
    let e = parse(r#"{"vocab_size": 10}"#).unwrap_err().to_string();
    assert!(
        e.contains("config.json") && e.contains("`hidden_size`"),
        "{e}"
    );
    let e = parse(&format!("{{{BASE}, \"use_sliding_window\": true}}"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("use_sliding_window"), "{e}");
    let e = parse(&format!(
        "{{{BASE}, \"rope_scaling\": {{\"rope_type\": \"yarn\"}}}}"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("yarn"), "{e}");
    let e = parse(&format!("{{{BASE}, \"eos_token_id\": \"x\"}}"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("eos_token_id"), "{e}");
}

/// Each bad value is reported as `config.json: key `KEY`: ...`, the key being the one at
/// fault, including values of the wrong type found by serde.
#[test]
fn every_error_names_its_key() {
    let cases = [
        (r#"{"vocab_size": 10}"#, "hidden_size", "intermediate_size"),
        (
            r#"{"vocab_size": 10, "hidden_size": "8", "intermediate_size": 12, "num_hidden_layers": 1, "num_attention_heads": 2}"#,
            "hidden_size",
            "string",
        ),
        (
            &format!("{{{BASE}, \"vocab_size\": -1}}"),
            "vocab_size",
            "-1",
        ),
        (
            &format!("{{{BASE}, \"vocab_size\": 0}}"),
            "vocab_size",
            "> 0",
        ),
        (
            &format!("{{{BASE}, \"num_key_value_heads\": 0}}"),
            "num_key_value_heads",
            "> 0",
        ),
        (
            &format!("{{{BASE}, \"num_key_value_heads\": 3}}"),
            "num_attention_heads",
            "3",
        ),
        (
            &format!("{{{BASE}, \"hidden_size\": 9}}"),
            "hidden_size",
            "multiple",
        ),
        (&format!("{{{BASE}, \"head_dim\": 7}}"), "head_dim", "even"),
        (
            &format!("{{{BASE}, \"layer_types\": [\"full_attention\", \"sliding_attention\"]}}"),
            "layer_types[1]",
            "sliding_attention",
        ),
        (
            &format!("{{{BASE}, \"partial_rotary_factor\": 0.5}}"),
            "partial_rotary_factor",
            "0.5",
        ),
        (
            &format!("{{{BASE}, \"rope_parameters\": {{\"rope_type\": \"llama3\", \"rope_theta\": 5e5}}}}"),
            "rope_parameters.factor",
            "missing",
        ),
        (
            &format!("{{{BASE}, \"rope_scaling\": {LLAMA3}, \"model_type\": \"llama\", \"attention_bias\": 1}}"),
            "attention_bias",
            "true or false",
        ),
        (
            &format!("{{{BASE}, \"rope_scaling\": {}}}", LLAMA3.replace("\"high_freq_factor\": 4.0", "\"high_freq_factor\": 1.0")),
            "rope_scaling.high_freq_factor",
            "greater than low_freq_factor",
        ),
        (
            &format!("{{{BASE}, \"rope_scaling\": {}}}", LLAMA3.replace("\"factor\": 32.0", "\"factor\": 0.5")),
            "rope_scaling.factor",
            ">= 1",
        ),
        (
            &format!("{{{BASE}, \"eos_token_id\": 99999}}"),
            "eos_token_id",
            "vocab_size 10",
        ),
        (
            &format!("{{{BASE}, \"eos_token_id\": [2, 10]}}"),
            "eos_token_id",
            "10 is not a token id",
        ),
        (
            &format!("{{{BASE}, \"bos_token_id\": 10}}"),
            "bos_token_id",
            "10",
        ),
        (
            &format!("{{{BASE}, \"rms_norm_eps\": -1.0}}"),
            "rms_norm_eps",
            "> 0",
        ),
        (
            &format!("{{{BASE}, \"tie_word_embeddings\": 1}}"),
            "tie_word_embeddings",
            "bool",
        ),
        (
            &format!("{{{BASE}, \"rope_scaling\": {{\"type\": \"linear\"}}}}"),
            "rope_scaling.rope_type",
            "linear",
        ),
        (
            &format!("{{{BASE}, \"rope_parameters\": 5}}"),
            "rope_parameters",
            "5",
        ),
        (
            &format!("{{{BASE}, \"model_type\": \"mixtral\"}}"),
            "model_type",
            "mixtral",
        ),
        (
            &format!("{{{BASE}, \"hidden_act\": \"gelu\"}}"),
            "hidden_act",
            "gelu",
        ),
        (
            &format!("{{{BASE}, \"bos_token_id\": [1, -2]}}"),
            "bos_token_id",
            "[1,-2]",
        ),
    ];
    for (json, key, detail) in cases {
        let e = parse(json).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("config.json: key `{key}`: ")) && e.contains(detail),
            "{json}: {e}"
        );
    }
    let e = parse("[1]").unwrap_err().to_string();
    assert!(e.contains("config.json") && e.contains("object"), "{e}");
    let c = parse(&format!(
        "{{{BASE}, \"rope_scaling\": null, \"bos_token_id\": null}}"
    ))
    .unwrap();
    assert_eq!((c.bos_token_id, c.rope_theta), (None, 10000.0));
}

#[test]
fn json_roundtrip_keeps_fields() {
    let c = parse(&format!(
        "{{{BASE}, \"eos_token_id\": [3, 4], \"custom\": 1}}"
    ))
    .unwrap();
    let back = parse(&c.to_json("float32").to_string()).unwrap();
    assert_eq!(back.eos_token_id, vec![3, 4]);
    assert_eq!(back.extra.get("custom"), Some(&Value::from(1)));
    assert_eq!(back.rope_theta, c.rope_theta);
}
