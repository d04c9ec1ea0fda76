//! Text in and out of the model: the tokenizer, the checkpoint's chat template (Jinja, as
//! transformers renders it) and the prompt templates a run wraps its problems in.

pub mod chat_template;
pub mod template;
pub mod tokenizer;

pub use chat_template::{ChatTemplate, Message};
pub use template::PromptTemplate;
pub use tokenizer::Tokenizer;
