//! Chat templates from the checkpoint: `chat_template.jinja` when the directory has one (what
//! transformers reads first, and the only copy transformers 5 writes), else
//! `tokenizer_config.json`'s `chat_template` (Jinja),
//! rendered with minijinja the way transformers' `apply_chat_template(messages,
//! add_generation_prompt=True)` renders it: blocks trimmed and left-stripped, no trailing
//! newline kept, `bos_token` / `eos_token` defined, `raise_exception`, and Python's string
//! methods (`content.split('</think>')`, `.strip()`, ...).
//!
//! The trainer does not run Jinja per prompt: [`ChatTemplate::fill_strings`] renders the
//! conversations it needs once, with placeholder contents, and turns them into the
//! `{question}` / `{response}` / `{guide}` strings of a [`crate::text::template::PromptTemplate`].
//! It checks that the template puts a message's content in verbatim (two different
//! placeholders must give the same string), so filling gives exactly what Jinja would.

use std::path::{Path, PathBuf};

use minijinja::{Environment, ErrorKind};
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A compiled chat template with the special-token strings it may print.
pub struct ChatTemplate {
    env: Environment<'static>,
    /// Where it came from (a `tokenizer_config.json`), for messages.
    path: PathBuf,
    /// `path: chat_template`, for the allocation bound's message.
    what: String,
    bos_token: String,
    eos_token: String,
    /// Extra variables every render sees (TRL's `chat_template_kwargs`, e.g.
    /// `enable_thinking = false`).
    kwargs: minijinja::Value,
}

/// The strings of a prompt template, with `{question}`, `{response}` and `{guide}` where a
/// conversation's contents go (see [`ChatTemplate::fill_strings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillStrings {
    /// `[user: {question}]` and the generation prompt.
    pub layer1: String,
    /// `[user: {question}, assistant: {response}, user: {guide}]` and the generation prompt:
    /// a second turn as a new user message.
    pub new_turn: String,
}

/// A special token in `tokenizer_config.json`: a string, or an `AddedToken` object with
/// `content`.
fn token_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

/// The instructions one render may run (minijinja's fuel): a real template renders a
/// conversation in thousands; three nested `range(100000)` loops would run 10^15.
pub const MAX_FUEL: u64 = 20_000_000;
/// How deep macros, includes and nested blocks may go.
pub const MAX_DEPTH: usize = 100;
/// The largest single allocation a render may make (a prompt of 256 MiB is no prompt).
pub const MAX_ALLOCATION: usize = 256 << 20;

/// transformers' `{% generation %}` … `{% endgeneration %}` (it marks the assistant's tokens
/// for `return_assistant_tokens_mask` and renders its body unchanged) as a block minijinja
/// knows that does the same: `{% if true %}` … `{% endif %}`, whitespace control kept.
fn without_generation_tags(source: &str) -> String {
    static TAG: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let tag = TAG.get_or_init(|| {
        regex::Regex::new(r"\{%(-|\+)?\s*(end)?generation\s*(-|\+)?%\}")
            .unwrap_or_else(|_| unreachable!("a constant pattern"))
    });
    tag.replace_all(source, |c: &regex::Captures<'_>| {
        let (open, close) = (
            c.get(1).map_or("", |m| m.as_str()),
            c.get(3).map_or("", |m| m.as_str()),
        );
        let body = if c.get(2).is_some() {
            "endif"
        } else {
            "if true"
        };
        format!("{{%{open} {body} {close}%}}")
    })
    .into_owned()
}

fn jinja_error(path: &Path, e: &minijinja::Error) -> Error {
    let mut msg = e.to_string();
    if e.kind() == ErrorKind::OutOfFuel {
        msg = format!(
            "rendering ran more than {MAX_FUEL} instructions (minijinja's fuel), far beyond a \
             chat template's thousands: a template that does not end"
        );
    }
    if let Some(line) = e.line() {
        msg = format!("line {line} of the template: {msg}");
    }
    Error::ConfigKey {
        file: Some(path.to_path_buf()),
        key: "chat_template".into(),
        msg,
    }
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// The checkpoint's chat template: `dir/chat_template.jinja` if it exists (transformers'
    /// `from_pretrained` lets that file override the config's copy), else the `chat_template`
    /// of `dir/tokenizer_config.json` (a string, or transformers' list of named templates, of
    /// which `default` is used). The special tokens come from `tokenizer_config.json`.
    pub fn from_model_dir(dir: &Path) -> Result<Self> {
        let jinja = dir.join("chat_template.jinja");
        let path = dir.join("tokenizer_config.json");
        let config: Option<Value> = match std::fs::read_to_string(&path) {
            Ok(text) => Some(serde_json::from_str(&text).map_err(|e| Error::Config {
                path: path.clone(),
                msg: format!("not JSON: {e}"),
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&path, e)),
        };
        let key_error = |msg: &str| Error::ConfigKey {
            file: Some(path.clone()),
            key: "chat_template".into(),
            msg: msg.into(),
        };
        let (source, from) = if jinja.is_file() {
            let source = std::fs::read_to_string(&jinja).map_err(|e| Error::io(&jinja, e))?;
            (source, &jinja)
        } else {
            let Some(config) = &config else {
                return Err(key_error(
                    "missing: the file does not exist, nor chat_template.jinja (template = \
                     \"checkpoint\" reads the model's chat template from one of them)",
                ));
            };
            let source = match config.get("chat_template") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(named)) => named
                    .iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                    .and_then(|t| t.get("template").and_then(Value::as_str))
                    .ok_or_else(|| key_error("a list of templates without one named `default`"))?
                    .to_string(),
                Some(_) => return Err(key_error("must be a string")),
                None => {
                    return Err(key_error(
                        "missing: this checkpoint has no chat template (use a built-in \
                         `template`)",
                    ))
                }
            };
            (source, &path)
        };
        let token = |key: &str| token_string(config.as_ref().and_then(|c| c.get(key)));
        Self::new(source, token("bos_token"), token("eos_token"), from)
    }

    /// Compile `source`; `path` names it in errors.
    pub fn new(source: String, bos_token: String, eos_token: String, path: &Path) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(false);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        // a template is a program from the checkpoint: bounded in instructions and depth
        env.set_fuel(Some(MAX_FUEL));
        env.set_recursion_limit(MAX_DEPTH);
        env.add_template_owned("chat_template", without_generation_tags(&source))
            .map_err(|e| jinja_error(path, &e))?;
        Ok(Self {
            env,
            what: format!("{}: chat_template", path.display()),
            path: path.to_path_buf(),
            bos_token,
            eos_token,
            kwargs: minijinja::Value::from_serialize(toml::Table::new()),
        })
    }

    /// This template with `kwargs` as extra variables of every render (TRL's and
    /// `apply_chat_template`'s `chat_template_kwargs`). The messages, `add_generation_prompt`
    /// and the special tokens cannot be overridden: a key of theirs is an error.
    pub fn with_kwargs(mut self, kwargs: &toml::Table) -> Result<Self> {
        const OWN: [&str; 4] = [
            "messages",
            "add_generation_prompt",
            "bos_token",
            "eos_token",
        ];
        if let Some(k) = kwargs.keys().find(|k| OWN.contains(&k.as_str())) {
            return Err(Error::Invalid(format!(
                "key `chat_template_kwargs.{k}`: set by mgrpo itself, it cannot be overridden"
            )));
        }
        self.kwargs = minijinja::Value::from_serialize(kwargs);
        Ok(self)
    }

    /// Render `messages`, with the assistant's generation prompt when asked.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let t = self
            .env
            .get_template("chat_template")
            .map_err(|e| jinja_error(&self.path, &e))?;
        let _bound = crate::run::alloc_bound::Bound::new(MAX_ALLOCATION, &self.what);
        t.render(minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token,
            eos_token => self.eos_token,
            ..self.kwargs.clone()
        })
        .map_err(|e| jinja_error(&self.path, &e))
    }

    /// The prompt strings of this template, with `system` as the system message (none: the
    /// template's own default). Errors when the template changes a message's content (the
    /// strings could not reproduce it) or its own text holds a placeholder.
    pub fn fill_strings(&self, system: Option<&str>) -> Result<FillStrings> {
        let conversation = |q: &str, r: &str, g: &str, turns: usize| {
            let mut m: Vec<Message> = system
                .map(|s| Message::new("system", s))
                .into_iter()
                .collect();
            m.push(Message::new("user", q));
            if turns == 2 {
                m.push(Message::new("assistant", r));
                m.push(Message::new("user", g));
            }
            m
        };
        // two sets of placeholder contents: a template that puts contents in verbatim gives
        // the same string once each is replaced by its `{name}`
        let sets = [
            ["\u{1}Q\u{1}", "\u{1}R\u{1}", "\u{1}G\u{1}"],
            ["\u{2}qq\u{2}", "\u{2}rr\u{2}", "\u{2}gg\u{2}"],
        ];
        let mut out = Vec::new();
        for turns in [1, 2] {
            let mut strings = Vec::new();
            for [q, r, g] in sets {
                let text = self.render(&conversation(q, r, g, turns), true)?;
                for name in ["{question}", "{response}", "{guide}"] {
                    if text.contains(name) {
                        return Err(self.unusable(&format!("its text contains `{name}`")));
                    }
                }
                strings.push(
                    text.replace(q, "{question}")
                        .replace(r, "{response}")
                        .replace(g, "{guide}"),
                );
            }
            let filled = &strings[0];
            let wanted = if turns == 1 { 1 } else { 3 };
            let placed = ["{question}", "{response}", "{guide}"]
                .iter()
                .take(wanted)
                .all(|p| filled.matches(p).count() == 1);
            if strings[0] != strings[1] || !placed {
                return Err(
                    self.unusable("it does not put each message's content in verbatim, once")
                );
            }
            out.push(filled.clone());
        }
        let new_turn = out.pop().unwrap_or_default();
        let layer1 = out.pop().unwrap_or_default();
        Ok(FillStrings { layer1, new_turn })
    }

    fn unusable(&self, why: &str) -> Error {
        Error::ConfigKey {
            file: Some(self.path.clone()),
            key: "chat_template".into(),
            msg: format!("cannot be used as a prompt template: {why}"),
        }
    }
}
