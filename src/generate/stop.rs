//! When a completion ends: at an end-of-sequence id, at a stop string, or at its token budget.
//!
//! The token that ends a completion stays in it (the EOS id, or the token that completed a stop
//! string), as in transformers' `generate` and TRL's completions: the policy must learn to emit
//! it, and the ids, log-probs and text stay aligned.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::text::tokenizer::Tokenizer;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_need_a_tokenizer() {
        assert!(StopStrings::new(vec![], None).unwrap().is_empty());
        let e = StopStrings::new(vec!["\n\n".into()], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tokenizer"), "{e}");
    }
}
