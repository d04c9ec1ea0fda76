//! Prompt templates are data, not code: a template is a string with `{question}` (layer 1) and a
//! second one with `{question}`, `{response}` and `{guide}` (layer 2, the MGRPO correction
//! turn). The layer-2 text continues the **same assistant turn**: the model sees its own answer
//! followed by a guide phrase and keeps writing (the MGRPO paper, Table 1).

use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

/// A second-turn prompt: the layer-1 prompt, a first answer and a guide phrase (or an
/// instruction) in one assistant turn, tokenized.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn2 {
    pub text: String,
    pub ids: Vec<u32>,
    /// The turn so far (answer + guide), graded before a continuation under
    /// `turn2_graded_on = "turn"`.
    pub graded_prefix: String,
}

/// A named pair of prompt templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptTemplate {
    pub name: String,
    /// Layer-1 prompt: placeholders `{question}`.
    pub layer1: String,
    /// Layer-2 prompt: placeholders `{question}`, `{response}`, `{guide}`.
    pub layer2: String,
}

const QWEN_MATH: &str = "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n";
const R1: &str = "<|begin-of-sentence|><|User|>{question}<|Assistant|>";
const PLAIN: &str = "{question}\n";
const CHATML: &str = "<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n";

/// Names of the built-in templates.
pub const BUILTIN: &[&str] = &["qwen-math", "r1", "plain", "chatml"];

impl PromptTemplate {
    /// A built-in template: `qwen-math` (Qwen2.5-Math CoT ChatML), `r1` (base models, the
    /// paper's style), `plain` (the question and a newline), `chatml` (ChatML without a system
    /// turn: the shipped tiny model's).
    pub fn builtin(name: &str) -> Result<Self> {
        let layer1 = match name {
            "qwen-math" => QWEN_MATH,
            "r1" => R1,
            "plain" => PLAIN,
            "chatml" => CHATML,
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown template `{name}` (built-in: {})",
                    BUILTIN.join(", ")
                )))
            }
        };
        Ok(Self {
            name: name.to_string(),
            layer1: layer1.to_string(),
            layer2: format!("{layer1}{{response}}\n\n{{guide}}"),
        })
    }

    /// A user-defined template; checks that the placeholders are the allowed ones.
    pub fn custom(name: &str, layer1: &str, layer2: &str) -> Result<Self> {
        check_placeholders(layer1, &["question"], name, "layer1")?;
        check_placeholders(layer2, &["question", "response", "guide"], name, "layer2")?;
        Ok(Self {
            name: name.into(),
            layer1: layer1.into(),
            layer2: layer2.into(),
        })
    }

    /// The layer-1 prompt for `question`.
    pub fn render(&self, question: &str) -> String {
        fill(&self.layer1, &[("question", question)])
    }

    /// The layer-2 prompt and the assistant turn so far in it (the part after the layer-1
    /// prompt: the response and the guide), after which a second answer is graded.
    pub fn render_turn2(&self, question: &str, response: &str, guide: &str) -> (String, String) {
        let text = self.render_layer2(question, response, guide);
        let turn = text
            .strip_prefix(&self.render(question))
            .map_or_else(|| format!("{response}\n\n{guide}"), str::to_string);
        (text, turn)
    }

    /// The second-turn prompt for `question`, the model's `response` and a `guide` phrase:
    /// the `layer2` string, tokenized. MGRPO's queries, iGRPO's refinement prompts, the
    /// evaluation's turn 2 and STaR's revisions are all built here.
    pub fn turn2(
        &self,
        tokenizer: &Tokenizer,
        question: &str,
        response: &str,
        guide: &str,
    ) -> Result<Turn2> {
        let (text, graded_prefix) = self.render_turn2(question, response, guide);
        let ids = tokenizer.encode(&text)?;
        Ok(Turn2 {
            text,
            ids,
            graded_prefix,
        })
    }

    /// The layer-2 prompt: `question`, the model's own `response`, then `guide`.
    pub fn render_layer2(&self, question: &str, response: &str, guide: &str) -> String {
        fill(
            &self.layer2,
            &[
                ("question", question),
                ("response", response),
                ("guide", guide),
            ],
        )
    }
}

/// Replace `{name}` placeholders in one pass (substituted text is never re-scanned, so a
/// question that contains `{response}` stays as it is). Other braces are kept verbatim.
fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match vars
            .iter()
            .find(|(k, _)| after.starts_with(k) && after[k.len()..].starts_with('}'))
        {
            Some((k, v)) => {
                out.push_str(v);
                rest = &after[k.len() + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn check_placeholders(t: &str, allowed: &[&str], name: &str, which: &str) -> Result<()> {
    if !t.contains("{question}") {
        return Err(Error::Invalid(format!(
            "template `{name}`: {which} has no {{question}} placeholder"
        )));
    }
    for known in ["question", "response", "guide"] {
        if !allowed.contains(&known) && t.contains(&format!("{{{known}}}")) {
            return Err(Error::Invalid(format!(
                "template `{name}`: {which} may not use {{{known}}}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qwen_math_layer1_and_layer2() {
        let t = PromptTemplate::builtin("qwen-math").unwrap();
        let p = t.render("1+1?");
        assert!(p.starts_with("<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>"));
        assert!(p.ends_with("<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n"));
        let p2 = t.render_layer2(
            "1+1?",
            "It is \\boxed{3}.",
            "Wait, let me double-check that.",
        );
        assert_eq!(
            p2,
            format!("{p}It is \\boxed{{3}}.\n\nWait, let me double-check that.")
        );
    }

    #[test]
    fn substitution_is_single_pass() {
        let t = PromptTemplate::builtin("plain").unwrap();
        assert_eq!(t.render("a {response} b {x}"), "a {response} b {x}\n");
    }

    #[test]
    fn unknown_and_bad_templates() {
        let e = PromptTemplate::builtin("chatgpt").unwrap_err().to_string();
        assert!(e.contains("chatgpt") && e.contains("chatml"), "{e}");
        assert!(PromptTemplate::custom("x", "no placeholder", "{question}").is_err());
        assert!(PromptTemplate::custom("x", "{question}{guide}", "{question}").is_err());
        assert!(
            PromptTemplate::custom("x", "Q: {question}", "Q: {question} {response} {guide}")
                .is_ok()
        );
    }
}
