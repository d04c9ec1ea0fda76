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
    /// The most bytes of text one token can stand for, bounded from above by the longest
    /// token string (byte-level BPE writes one character per byte; SentencePiece's `▁` and
    /// byte tokens are longer than what they decode to): a text of `n` bytes is at least
    /// `n / max_token_bytes()` tokens, known before tokenizing it.
    pub fn max_token_bytes(&self) -> usize {
        self.inner
            .get_vocab(true)
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(1)
            .max(1)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The path this tokenizer was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The smallest vocabulary [`Tokenizer::train_bpe`] accepts: the 256-byte alphabet and the
    /// special tokens.
    pub fn min_bpe_vocab(specials: usize) -> usize {
        tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet().len() + specials
    }

    /// Train a byte-level BPE tokenizer on `texts` (the shipped tiny model's): digits split
    /// one per token (so arithmetic sees aligned digits), GPT-2's pre-split and byte alphabet
    /// as in Qwen2 (any text encodes, none is unknown), merges learnt until `vocab_size`, and
    /// `specials` added as special tokens (recognised in text, skipped when decoding). Returns
    /// the `tokenizer.json` text.
    pub fn train_bpe(texts: &[String], vocab_size: usize, specials: &[&str]) -> Result<String> {
        use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
        use tokenizers::models::TrainerWrapper;
        use tokenizers::pre_tokenizers::byte_level::ByteLevel;
        use tokenizers::pre_tokenizers::digits::Digits;
        use tokenizers::pre_tokenizers::sequence::Sequence;
        use tokenizers::AddedToken;
        let err = |msg: String| Error::Invalid(format!("training the tokenizer: {msg}"));
        let min = Self::min_bpe_vocab(specials.len());
        if vocab_size < min {
            return Err(err(format!(
                "vocab_size {vocab_size} is below the byte alphabet and special tokens ({min})"
            )));
        }
        let added: Vec<AddedToken> = specials
            .iter()
            .map(|t| AddedToken::from(t.to_string(), true))
            .collect();
        let mut trainer = TrainerWrapper::BpeTrainer(
            BpeTrainerBuilder::new()
                .vocab_size(vocab_size)
                .min_frequency(2)
                .show_progress(false)
                .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
                .special_tokens(added.clone())
                .build(),
        );
        let mut tok = tokenizers::Tokenizer::new(BPE::default());
        tok.with_pre_tokenizer(Some(Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ])));
        tok.with_decoder(Some(ByteLevel::default()));
        tok.train(&mut trainer, texts.iter())
            .map_err(|e| err(e.to_string()))?;
        tok.add_special_tokens(&added);
        tok.to_string(true).map_err(|e| err(e.to_string()))
    }

    fn err(&self, msg: String) -> Error {
        Error::Tokenizer {
            path: self.path.clone(),
            msg,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trained_tokenizer_splits_digits_and_round_trips() {
        let texts: Vec<String> = (0..200)
            .map(|i| {
                format!(
                    "Mia has {} coins. She gets {} more.\n\\boxed{{{}}}",
                    i,
                    i * 7,
                    i * 8
                )
            })
            .collect();
        let json = Tokenizer::train_bpe(
            &texts,
            300,
            &["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        std::fs::write(&path, json).unwrap();
        let tok = Tokenizer::load(&path).unwrap();
        assert!(tok.vocab_size() <= 300, "{}", tok.vocab_size());
        let text = "<|im_start|>user\nMia has 1234 coins. ünï<|im_end|>";
        let ids = tok.encode(text).unwrap();
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
        assert_eq!(ids[0], tok.token_id("<|im_start|>").unwrap());
        let digits = tok.encode("1234").unwrap();
        assert_eq!(digits.len(), 4);
        // learnt merges: a frequent word is one token
        assert_eq!(tok.encode(" coins").unwrap().len(), 1);
        assert!(Tokenizer::train_bpe(&texts, 100, &[]).is_err());
    }
}
