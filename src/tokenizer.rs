//! `tokenizer.json` through the `tokenizers` crate.
//!
//! Special tokens come from the tokenizer itself (`<|endoftext|>`, `<|im_start|>`,
//! `<|im_end|>` for Qwen2.5) and are recognised in text, so a rendered chat template encodes to
//! the same ids as transformers' `apply_chat_template`. A model directory without
//! `tokenizer.json` still works for id-level commands; text-level ones say the file is missing.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A loaded `tokenizer.json`.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
}

impl Tokenizer {
    /// Load `path` (a `tokenizer.json`).
    pub fn load(path: &Path) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| Error::Tokenizer {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        Ok(Self {
            inner,
            path: path.to_path_buf(),
        })
    }

    /// `dir/tokenizer.json` if the file exists, `None` otherwise (errors if it exists but is bad).
    pub fn from_model_dir(dir: &Path) -> Result<Option<Self>> {
        let p = dir.join("tokenizer.json");
        if p.is_file() {
            Self::load(&p).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Encode `text` without adding special tokens (special tokens written in the text, such as
    /// `<|im_start|>`, are recognised).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| self.err(format!("encoding failed: {e}")))
    }

    /// Decode ids to text, skipping special tokens if asked.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| self.err(format!("decoding failed: {e}")))
    }

    /// The id of a token, if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The path this tokenizer was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, msg: String) -> Error {
        Error::Tokenizer {
            path: self.path.clone(),
            msg,
        }
    }
}
