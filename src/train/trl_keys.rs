//! Keys of TRL's `GRPOConfig` that people set and mgrpo does not take, each refused by name
//! with the reason and what mgrpo does instead (an unknown key is otherwise refused without
//! one). The list is checked against TRL 1.16's fields (`tests/fixtures/trl`). A TRL key that is
//! ours under another name is renamed ([`rename_aliases`]).

use crate::error::KeyError;

/// `(TRL key, why it is refused)`; a key ending in `_` is a prefix (`vllm_`).
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "multi_objective_aggregation",
        "GDPO's \"normalize_then_sum\" is not implemented; mgrpo sums the weighted rewards, then \
         normalises the groups (TRL's default, \"sum_then_normalize\")",
    ),
    (
        "generation_kwargs",
        "sampling is set by temperature, top_p, top_k and min_p; other generation arguments \
         are not implemented",
    ),
    (
        "logging_steps",
        "every step is one line of metrics.jsonl (TRL averages logging_steps steps per line)",
    ),
    (
        "use_vllm",
        "there is no vLLM: rollouts decode in-process with the model's own KV cache",
    ),
    (
        "vllm_",
        "there is no vLLM: rollouts decode in-process with the model's own KV cache (with \
         bf16 = true they sample from a bf16 copy, and no importance-sampling correction for \
         that mismatch is applied yet)",
    ),
];

const STOPS_AT_EOS: &str = "generation stops at the model's end-of-sequence ids \
                            (generation_config.json, the config, the tokenizer)";

/// Keys of the `PPOConfig` of `trl.experimental.ppo` (up to trl 1.10; 1.16 has no PPO) that
/// `algorithm = "ppo"` does not take.
const PPO_UNSUPPORTED: &[(&str, &str)] = &[
    (
        "missing_eos_penalty",
        "not implemented; a completion cut at the budget gets the verifier's reward like any other \
         (mask_truncated_completions drops it from the loss)",
    ),
    ("stop_token", STOPS_AT_EOS),
    ("stop_token_id", STOPS_AT_EOS),
    ("response_length", "the completion budget is max_completion_length"),
    (
        "total_episodes",
        "a run is max_steps steps, or num_train_epochs passes over the dataset",
    ),
];

/// Loss types of TRL 1.16's `GRPOConfig` that mgrpo does not implement.
const LOSS_TYPES_UNSUPPORTED: &[&str] = &["sapo", "luspo", "vespo"];

/// TRL's keys that are ours under another name, renamed in `table`: `num_generations_eval`
/// (completions per evaluation problem) is `eval_samples`. Setting both names is an error.
pub(crate) fn rename_aliases(table: &mut toml::Table) -> std::result::Result<(), KeyError> {
    if let Some(n) = table.remove("num_generations_eval") {
        if table.contains_key("eval_samples") {
            return Err(KeyError::new(
                "num_generations_eval",
                "is TRL's name for eval_samples: set one of the two",
            ));
        }
        table.insert("eval_samples".into(), n);
    }
    Ok(())
}

/// The first key of `table` that is one of TRL's keys mgrpo refuses, as the error to give.
pub(crate) fn refuse_unsupported(table: &toml::Table) -> std::result::Result<(), String> {
    if let Some(t) = table.get("loss_type").and_then(toml::Value::as_str) {
        if LOSS_TYPES_UNSUPPORTED.contains(&t) {
            return Err(format!(
                "key `loss_type`: \"{t}\" is one of TRL 1.16's loss types mgrpo does not \
                 implement (it has grpo, bnpo, dr_grpo, dapo and cispo)"
            ));
        }
    }
    if let Some((key, why)) = PPO_UNSUPPORTED.iter().find(|(k, _)| table.contains_key(*k)) {
        return Err(format!(
            "key `{key}`: TRL's PPOConfig (trl.experimental.ppo) has it, mgrpo does not take \
             it: {why}"
        ));
    }
    for key in table.keys() {
        let hit = UNSUPPORTED.iter().find(|(k, _)| match k.strip_suffix('_') {
            Some(prefix) => key.starts_with(&format!("{prefix}_")),
            None => key == k,
        });
        if let Some((_, why)) = hit {
            return Err(format!(
                "key `{key}`: TRL's GRPOConfig has it, mgrpo does not take it: {why}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refused key is one of TRL 1.16's `GRPOConfig` fields (a prefix: some field starts
    /// with it), and none is a key mgrpo takes.
    #[test]
    fn refused_keys_are_trls() {
        let path = crate::test_repo().join("tests/fixtures/trl/config_defaults.json");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let trl = v["data"]["GRPOConfig"].as_object().unwrap();
        let ours: toml::Table = toml::from_str(
            &crate::train::TrainConfig::from_toml(
                "dataset = \"d\"\n",
                std::path::Path::new("run.toml"),
                &[],
            )
            .unwrap()
            .to_toml()
            .unwrap(),
        )
        .unwrap();
        for (key, _) in UNSUPPORTED {
            let known = match key.strip_suffix('_') {
                Some(p) => trl.keys().any(|k| k.starts_with(&format!("{p}_"))),
                None => trl.contains_key(*key),
            };
            assert!(known, "{key} is not a GRPOConfig field");
            assert!(!ours.contains_key(*key), "{key} is a key mgrpo takes");
        }
        let mut t = toml::Table::new();
        t.insert("vllm_importance_sampling_correction".into(), true.into());
        let e = refuse_unsupported(&t).unwrap_err();
        assert!(e.contains("`vllm_importance_sampling_correction`") && e.contains("vLLM"));
        // two of the refused loss types have settings of their own in TRL 1.16's config
        assert!(trl.contains_key("sapo_temperature_neg") && trl.contains_key("vespo_k_pos"));
        for (key, _) in PPO_UNSUPPORTED {
            assert!(!ours.contains_key(*key), "{key} is a key mgrpo takes");
            let mut t = toml::Table::new();
            t.insert((*key).into(), 1.into());
            assert!(refuse_unsupported(&t).unwrap_err().contains(key));
        }
        for lt in LOSS_TYPES_UNSUPPORTED {
            let mut t = toml::Table::new();
            t.insert("loss_type".into(), (*lt).into());
            assert!(refuse_unsupported(&t).unwrap_err().contains(lt));
        }
    }
}
