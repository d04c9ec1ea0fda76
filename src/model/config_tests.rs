//! Tests of `config.rs`: HF `config.json` parsing, validation and parameter counts.

use super::*;

fn parse(s: &str) -> Result<Qwen2Config> {
    Qwen2Config::from_json_str(s, Path::new("config.json"))
}

const BASE: &str = r#""vocab_size": 10, "hidden_size": 8, "intermediate_size": 12,
    "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1"#;

/// The parameter counts of the released checkpoints (`model.num_parameters()` in
/// transformers on Qwen2.5-0.5B, -1.5B, -3B and -7B).
#[test]
fn parameter_counts_match_the_released_models() {
    let c = |v, d, i, l, h, kv, tie| Qwen2Config::new(v, d, i, l, h, kv, tie).num_params();
    assert_eq!(c(151936, 896, 4864, 24, 14, 2, true), 494_032_768);
    assert_eq!(c(151936, 1536, 8960, 28, 12, 2, true), 1_543_714_304);
    assert_eq!(c(151936, 2048, 11008, 36, 16, 2, true), 3_085_938_688);
    assert_eq!(c(152064, 3584, 18944, 28, 28, 4, false), 7_615_616_512);
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
        (&format!("{{{BASE}, \"head_dim\": 8}}"), "head_dim", "8"),
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
            &format!("{{{BASE}, \"model_type\": \"llama\"}}"),
            "model_type",
            "llama",
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
