//! `ModelDir`: an HF model directory opened the one way every command needs it. First
//! `config.json` (validated), then `tokenizer.json` (optional: `generate` and `score` also take
//! token ids), then the end-of-sequence ids (from `generation_config.json`, the config and the
//! tokenizer). The weights are loaded last, by [`ModelDir::load`], so that a command checks its
//! other inputs against the config and the tokenizer before it spends time and memory on them.

use crate::fused::FusedBackend;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::{load_config, load_weights, CausalLm, ModelConfig, Precision};
use crate::text::tokenizer::Tokenizer;

/// An opened HF model directory: its config, tokenizer and end-of-sequence ids.
pub struct ModelDir {
    pub path: PathBuf,
    pub config: ModelConfig,
    /// `tokenizer.json`, when the directory has one.
    pub tokenizer: Option<Tokenizer>,
    /// Where generation stops (see [`eos_ids_from_model_dir`]).
    pub eos_ids: Vec<u32>,
}

impl ModelDir {
    /// Read the config, the tokenizer if there is one, and the end-of-sequence ids of `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let config = load_config(path)?;
        let tokenizer = Tokenizer::from_model_dir(path)?;
        let eos_ids = eos_ids_from_model_dir(path, &config.eos_token_id, tokenizer.as_ref())?;
        Ok(Self {
            path: path.to_path_buf(),
            config,
            tokenizer,
            eos_ids,
        })
    }

    /// The tokenizer, or an error naming the missing `tokenizer.json` and `why` it is needed.
    pub fn tokenizer(&self, why: &str) -> Result<&Tokenizer> {
        self.tokenizer
            .as_ref()
            .ok_or_else(|| Self::no_tokenizer(&self.path, why))
    }

    /// The config, the tokenizer and the end-of-sequence ids, for a command that cannot work
    /// without the tokenizer (`why` says what it is for, in the error when it is missing).
    pub fn with_tokenizer(self, why: &str) -> Result<(ModelConfig, Tokenizer, Vec<u32>)> {
        match self.tokenizer {
            Some(tokenizer) => Ok((self.config, tokenizer, self.eos_ids)),
            None => Err(Self::no_tokenizer(&self.path, why)),
        }
    }

    /// The error for a model directory `dir` without the `tokenizer.json` that `why` needs.
    fn no_tokenizer(dir: &Path, why: &str) -> Error {
        Error::checkpoint(dir.join("tokenizer.json"), format!("missing ({why})"))
    }

    /// The weights onto `device`, in `precision`.
    pub fn load<B: FusedBackend>(
        &self,
        precision: Precision,
        device: &B::Device,
    ) -> Result<CausalLm<B>> {
        Ok(load_weights(&self.path, &self.config, device)?.to_precision(precision))
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
        serde_json::Value::Array(_) => crate::run::jsonl::token_ids(v),
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
    fn a_missing_tokenizer_is_named_with_the_reason() {
        let fixture = crate::test_repo().join("tests/fixtures/gqa4-untied-bf16-t5");
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(fixture.join("config.json"), dir.path().join("config.json")).unwrap();
        let opened = ModelDir::open(dir.path()).unwrap();
        let e = opened
            .tokenizer("evaluation decodes answers")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("tokenizer.json") && e.contains("evaluation decodes answers"),
            "{e}"
        );
        let e = ModelDir::open(dir.path())
            .unwrap()
            .with_tokenizer("SFT tokenizes text")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("tokenizer.json") && e.contains("SFT"), "{e}");
        let e = ModelDir::open(&dir.path().join("absent"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("absent") && e.contains("not a directory"), "{e}");
    }
}
