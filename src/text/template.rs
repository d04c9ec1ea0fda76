//! Prompt templates are data, not code: a template is a string with `{question}` (layer 1) and a
//! second one with `{question}`, `{response}` and `{guide}` (layer 2, the MGRPO correction
//! turn). The layer-2 text continues the **same assistant turn**: the model sees its own answer
//! followed by a guide phrase and keeps writing (the MGRPO paper, Table 1). A third string puts
//! the second turn in a **new user message** (`{question}`, `{response}`, `{guide}` = the
//! instruction), as Huang et al. and SCoRe ask for intrinsic self-correction.
//!
//! `template = "checkpoint"` takes the strings from the model's own chat template
//! (`tokenizer_config.json`, rendered as transformers renders it: [`crate::text::chat_template`]).

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::text::chat_template::{ChatTemplate, Message};
use crate::text::tokenizer::Tokenizer;

/// The paper's seven guide phrases (the default `[mgrpo] guide_phrases`; the evaluation's turn-2 phrase is the first).
pub const PAPER_GUIDE_PHRASES: [&str; 7] = [
    "Where might I have gone wrong this time? Let me double-check carefully.",
    "Wait, let me double-check that.",
    "Wait a minute, let me make sure I didn't make a mistake.",
    "Hmm, let me think if there's another way to approach this problem.",
    "Wait, maybe I can think about it like this:",
    "Another thought: maybe I can",
    "But wait, let me just make sure I didn't miss anything in the original problem.",
];

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

/// What a first prompt asks: a question, filled into the template's text, or a conversation
/// (TRL's conversational format), which the model's chat template renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask<'a> {
    Question(&'a str),
    Conversation(&'a [Message]),
}

/// A named set of prompt templates.
#[derive(Debug, Clone)]
pub struct PromptTemplate {
    pub name: String,
    /// Layer-1 prompt: placeholders `{question}`.
    pub layer1: String,
    /// Layer-2 prompt: placeholders `{question}`, `{response}`, `{guide}`.
    pub layer2: String,
    /// The second turn as a new user message after the first answer: placeholders
    /// `{question}`, `{response}`, `{guide}` (the user's instruction).
    pub new_turn: String,
    /// The chat template behind a `checkpoint` template, and its system message: a new user
    /// turn is rendered by it (a template may rewrite an assistant message, as R1's drops what
    /// precedes `</think>`).
    chat: Option<(Arc<ChatTemplate>, Option<String>)>,
}

const QWEN_MATH: &str = "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n";
const R1: &str = "<|begin-of-sentence|><|User|>{question}<|Assistant|>";
const PLAIN: &str = "{question}\n";
const CHATML: &str = "<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n";

/// Names of the built-in templates.
pub const BUILTIN: &[&str] = &["qwen-math", "r1", "plain", "chatml"];

/// The template name that reads the model's own chat template.
pub const CHECKPOINT: &str = "checkpoint";

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
        let new_turn = match name {
            "r1" => format!("{layer1}{{response}}<|end-of-sentence|><|User|>{{guide}}<|Assistant|>"),
            "plain" => "{question}\n{response}\n\n{guide}\n".to_string(),
            _ => format!(
                "{layer1}{{response}}<|im_end|>\n<|im_start|>user\n{{guide}}<|im_end|>\n<|im_start|>assistant\n"
            ),
        };
        Ok(Self {
            name: name.to_string(),
            layer1: layer1.to_string(),
            layer2: format!("{layer1}{{response}}\n\n{{guide}}"),
            new_turn,
            chat: None,
        })
    }

    /// The template a run or command names: a built-in, or `checkpoint` — the chat template of
    /// `model_dir/tokenizer_config.json`, with `system_prompt` as its system message (none: the
    /// template's default). A system prompt with a built-in is an error (theirs are fixed).
    pub fn load(name: &str, model_dir: &Path, system_prompt: Option<&str>) -> Result<Self> {
        Self::load_with(name, model_dir, system_prompt, &toml::Table::new())
    }

    /// [`Self::load`] with extra variables for the chat template (`chat_template_kwargs`),
    /// which need `checkpoint` too.
    pub fn load_with(
        name: &str,
        model_dir: &Path,
        system_prompt: Option<&str>,
        kwargs: &toml::Table,
    ) -> Result<Self> {
        if name != CHECKPOINT {
            if system_prompt.is_some() || !kwargs.is_empty() {
                return Err(Error::Invalid(format!(
                    "a system prompt or chat_template_kwargs need template = \"{CHECKPOINT}\" \
                     (template `{name}` has its own text)"
                )));
            }
            return Self::builtin(name);
        }
        let chat = ChatTemplate::from_model_dir(model_dir)?.with_kwargs(kwargs)?;
        Self::from_chat(Arc::new(chat), system_prompt)
    }

    /// The strings of a chat template (see [`ChatTemplate::fill_strings`]); layer 2 continues
    /// the assistant turn that the generation prompt opens.
    pub fn from_chat(chat: Arc<ChatTemplate>, system_prompt: Option<&str>) -> Result<Self> {
        let strings = chat.fill_strings(system_prompt)?;
        Ok(Self {
            name: CHECKPOINT.into(),
            layer2: format!("{}{{response}}\n\n{{guide}}", strings.layer1),
            layer1: strings.layer1,
            new_turn: strings.new_turn,
            chat: Some((chat, system_prompt.map(str::to_string))),
        })
    }

    /// A user-defined template; checks that the placeholders are the allowed ones. The new
    /// user turn is layer 2's text followed by the instruction on a new line.
    pub fn custom(name: &str, layer1: &str, layer2: &str) -> Result<Self> {
        check_placeholders(layer1, &["question"], name, "layer1")?;
        check_placeholders(layer2, &["question", "response", "guide"], name, "layer2")?;
        Ok(Self {
            name: name.into(),
            layer1: layer1.into(),
            layer2: layer2.into(),
            new_turn: format!("{layer2}\n"),
            chat: None,
        })
    }

    /// Whether this is the model's chat template (which alone renders conversations).
    pub fn is_chat(&self) -> bool {
        self.chat.is_some()
    }

    /// The layer-1 prompt of `ask`.
    pub fn render_ask(&self, ask: Ask<'_>) -> Result<String> {
        match ask {
            Ask::Question(q) => Ok(self.render(q)),
            Ask::Conversation(messages) => {
                let (chat, messages) = self.conversation(messages)?;
                chat.render(&messages, true)
            }
        }
    }

    /// The chat template and the messages of a conversation, the configured system prompt (if
    /// any) in place of the conversation's own.
    fn conversation(&self, messages: &[Message]) -> Result<(&ChatTemplate, Vec<Message>)> {
        let Some((chat, system)) = &self.chat else {
            return Err(Error::Invalid(format!(
                "template `{}` cannot render a conversation (`prompt` as a list of messages): \
                 set template = \"{CHECKPOINT}\"",
                self.name
            )));
        };
        let mut out: Vec<Message> = system.iter().map(|s| Message::new("system", s)).collect();
        let skip = match system {
            Some(_) => messages.iter().take_while(|m| m.role == "system").count(),
            None => 0,
        };
        out.extend_from_slice(&messages[skip..]);
        Ok((chat, out))
    }

    /// The second turn as a new user message: what `ask` asked, the model's `response`, then
    /// the user's `instruction`, and the generation prompt.
    pub fn render_new_turn(
        &self,
        ask: Ask<'_>,
        response: &str,
        instruction: &str,
    ) -> Result<String> {
        let single;
        let messages = match ask {
            Ask::Conversation(messages) => messages,
            Ask::Question(q) if self.chat.is_some() => {
                single = [Message::new("user", q)];
                &single[..]
            }
            Ask::Question(q) => {
                let vars = [
                    ("question", q),
                    ("response", response),
                    ("guide", instruction),
                ];
                return Ok(fill(&self.new_turn, &vars));
            }
        };
        let (chat, mut m) = self.conversation(messages)?;
        m.extend([
            Message::new("assistant", response),
            Message::new("user", instruction),
        ]);
        chat.render(&m, true)
    }

    /// The layer-1 prompt for `question`.
    pub fn render(&self, question: &str) -> String {
        fill(&self.layer1, &[("question", question)])
    }

    /// The layer-2 prompt and the assistant turn so far in it (the part after the layer-1
    /// prompt: the response and the guide), after which a second answer is graded. A
    /// conversation's layer 2 continues its rendered prompt as a chat template's does.
    pub fn render_turn2(
        &self,
        ask: Ask<'_>,
        response: &str,
        guide: &str,
    ) -> Result<(String, String)> {
        let question = match ask {
            Ask::Question(q) => q,
            Ask::Conversation(_) => {
                let turn = format!("{response}\n\n{guide}");
                return Ok((format!("{}{turn}", self.render_ask(ask)?), turn));
            }
        };
        let text = self.render_layer2(question, response, guide);
        let turn = text
            .strip_prefix(&self.render(question))
            .map_or_else(|| format!("{response}\n\n{guide}"), str::to_string);
        Ok((text, turn))
    }

    /// The second-turn prompt for `question`, the model's `response` and a `guide` phrase:
    /// the `layer2` string, tokenized. MGRPO's queries, iGRPO's refinement prompts, the
    /// evaluation's turn 2 and STaR's revisions are all built here.
    pub fn turn2(
        &self,
        tokenizer: &Tokenizer,
        ask: Ask<'_>,
        response: &str,
        guide: &str,
    ) -> Result<Turn2> {
        let (text, graded_prefix) = self.render_turn2(ask, response, guide)?;
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
