//! When a completion ends: at an end-of-sequence id, at a stop string, or at its token budget.
//!
//! The token that ends a completion stays in it (the EOS id, or the token that completed a stop
//! string), as in transformers' `generate` and TRL's completions: the policy must learn to emit
//! it, and the ids, log-probs and text stay aligned.

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

/// Why a completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// It emitted an end-of-sequence id.
    Eos,
    /// Its text came to contain a stop string.
    Stop,
    /// It used its whole token budget (`max_new_tokens`, or the room left below
    /// `max_position_embeddings`): the completion is truncated.
    Length,
}

/// Stop strings, checked on the decoded tail of a completion.
#[derive(Debug, Clone, Default)]
pub struct StopStrings {
    strings: Vec<String>,
    /// Tokens to decode from the end: enough to cover the longest string plus a partial
    /// UTF-8 character at the start of the window.
    window: usize,
}

impl StopStrings {
    /// Stop strings need a tokenizer to be checked; empty strings are refused.
    pub fn new(strings: Vec<String>, tokenizer: Option<&Tokenizer>) -> Result<Self> {
        if strings.is_empty() {
            return Ok(Self::default());
        }
        if strings.iter().any(String::is_empty) {
            return Err(Error::Invalid("a stop string is empty".into()));
        }
        if tokenizer.is_none() {
            return Err(Error::Invalid(
                "stop strings need tokenizer.json in the model directory".into(),
            ));
        }
        let longest = strings.iter().map(String::len).max().unwrap_or(0);
        Ok(Self {
            strings,
            window: longest + 4,
        })
    }

    /// Whether no stop string is set.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }

    /// Whether the completion `ids`, whose last token is new, now contains a stop string.
    /// Every token decodes to at least one byte, so a string of n bytes that ends in the new
    /// token lies within the last n tokens.
    pub fn hit(&self, ids: &[u32], tokenizer: &Tokenizer) -> Result<bool> {
        if self.strings.is_empty() {
            return Ok(false);
        }
        let tail = &ids[ids.len().saturating_sub(self.window)..];
        let text = tokenizer.decode(tail, false)?;
        Ok(self.strings.iter().any(|s| text.contains(s.as_str())))
    }
}

/// End-of-sequence ids for a model directory: `generation_config.json`'s `eos_token_id` (an id
/// or a list) if the file has one (transformers' `generate` reads it there), else `config.json`'s
/// (`config_eos`); plus the ChatML end-of-turn `<|im_end|>` and `<|endoftext|>` when the
/// tokenizer has them, so that a chat-templated turn ends even where the config names only
/// `<|endoftext|>` (the Qwen2.5 base and Math checkpoints).
pub fn eos_ids_from_model_dir(
    dir: &Path,
    config_eos: &[u32],
    tokenizer: Option<&Tokenizer>,
) -> Result<Vec<u32>> {
    let gen_path = dir.join("generation_config.json");
    let mut ids = config_eos.to_vec();
    if gen_path.is_file() {
        let text = std::fs::read_to_string(&gen_path).map_err(|e| Error::io(&gen_path, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::config(&gen_path, format!("invalid JSON: {e}")))?;
        if let Some(eos) = v.get("eos_token_id").filter(|e| !e.is_null()) {
            ids = parse_ids(eos).ok_or_else(|| {
                Error::config(&gen_path, "`eos_token_id` must be an id or a list of ids")
            })?;
        }
    }
    for special in ["<|im_end|>", "<|endoftext|>"] {
        if let Some(id) = tokenizer.and_then(|t| t.token_id(special)) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

fn parse_ids(v: &serde_json::Value) -> Option<Vec<u32>> {
    match v {
        serde_json::Value::Array(_) => crate::jsonl::token_ids(v),
        x => x
            .as_u64()
            .and_then(|x| u32::try_from(x).ok())
            .map(|id| vec![id]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eos_from_generation_config_then_config() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = [2];
        assert_eq!(
            eos_ids_from_model_dir(dir.path(), &cfg, None).unwrap(),
            vec![2]
        );
        assert!(eos_ids_from_model_dir(dir.path(), &[], None)
            .unwrap()
            .is_empty());
        let gen = dir.path().join("generation_config.json");
        std::fs::write(&gen, r#"{"eos_token_id": [151645, 151643]}"#).unwrap();
        assert_eq!(
            eos_ids_from_model_dir(dir.path(), &cfg, None).unwrap(),
            vec![151645, 151643]
        );
        std::fs::write(&gen, r#"{"eos_token_id": "x"}"#).unwrap();
        let e = eos_ids_from_model_dir(dir.path(), &cfg, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("generation_config.json") && e.contains("eos_token_id"),
            "{e}"
        );
    }

    /// The fixture tokenizer has `<|endoftext|>` = 297 and `<|im_end|>` = 299.
    #[test]
    fn chatml_end_of_turn_from_the_tokenizer() {
        let fixture = crate::test_repo().join("tests/fixtures/gqa4-untied-bf16-t5");
        let tok = Tokenizer::from_model_dir(&fixture).unwrap().unwrap();
        let ids = eos_ids_from_model_dir(&fixture, &[2, 299], Some(&tok)).unwrap();
        assert_eq!(ids, vec![2, 299, 297]);
    }

    #[test]
    fn stop_strings_need_a_tokenizer() {
        assert!(StopStrings::new(vec![], None).unwrap().is_empty());
        let e = StopStrings::new(vec!["\n\n".into()], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tokenizer"), "{e}");
    }
}
