//! A scripted [`Sampler`] for tests: completions chosen by a function of the call number, the
//! prompt's text and the sample index, so MGRPO's selection, iGRPO's choice of draft and the
//! two-turn evaluation can be checked on outcomes fixed in advance.

use super::rollout::{Draw, Sampler};
use crate::error::Result;
use crate::generate::{Completion, FinishReason, GenerateStats, Generation};
use crate::text::tokenizer::Tokenizer;

/// `(call, prompt text, sample index) → completion text`.
pub type Script<'a> = Box<dyn FnMut(usize, &str, usize) -> String + 'a>;

pub struct Scripted<'a> {
    pub tokenizer: &'a Tokenizer,
    pub script: Script<'a>,
    /// The prompts (decoded) and draw of every call so far.
    pub calls: Vec<(Vec<String>, Draw)>,
}

impl<'a> Scripted<'a> {
    pub fn new(tokenizer: &'a Tokenizer, script: Script<'a>) -> Self {
        Self {
            tokenizer,
            script,
            calls: Vec::new(),
        }
    }
}

impl Sampler for Scripted<'_> {
    fn sample(&mut self, prompts: &[Vec<u32>], draw: Draw) -> Result<Generation> {
        let call = self.calls.len();
        let mut texts = Vec::with_capacity(prompts.len());
        let mut completions = Vec::new();
        for (p, ids) in prompts.iter().enumerate() {
            let prompt = self.tokenizer.decode(ids, false)?;
            for s in 0..draw.n {
                let text = (self.script)(call, &prompt, s);
                let ids = self.tokenizer.encode(&text)?;
                completions.push(Completion {
                    prompt_index: p,
                    sample_index: s,
                    logprobs: vec![0.0; ids.len()],
                    model_logprobs: vec![0.0; ids.len()],
                    ids,
                    text: Some(text),
                    finish_reason: FinishReason::Eos,
                });
            }
            texts.push(prompt);
        }
        self.calls.push((texts, draw));
        Ok(Generation {
            completions,
            stats: GenerateStats::default(),
        })
    }
}

/// The byte-level BPE tokenizer of a test fixture (round-trips any text).
pub fn test_tokenizer() -> Tokenizer {
    let path = crate::test_repo().join("tests/fixtures/gqa4-untied-bf16-t5/tokenizer.json");
    Tokenizer::load(&path).unwrap()
}

/// A MATH-style problem whose answer is `gold`.
pub fn problem(id: &str, question: &str, gold: &str) -> crate::data::Problem {
    crate::data::Problem {
        id: id.into(),
        question: question.into(),
        conversation: None,
        gold_answer: gold.into(),
        solution: None,
        format: crate::data::DatasetFormat::Math,
        fields: serde_json::Map::new(),
    }
}
