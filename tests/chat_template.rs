//! Chat templates from the checkpoint, rendered with minijinja, against transformers'
//! `apply_chat_template(..., add_generation_prompt=True)` on the real templates of
//! Qwen2.5-Instruct, Qwen2.5-Math-Instruct and DeepSeek-R1-Distill-Qwen
//! (`tests/fixtures/chat-templates`, made by `scripts/make_chat_template_fixtures.py`).

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{fails, fixture, mgrpo, repo};
use mgrpo::text::chat_template::{ChatTemplate, Message};
use mgrpo::text::template::{Ask, PromptTemplate};
use serde_json::Value;

fn cases() -> Vec<Value> {
    let path = fixture("chat-templates/expected.json");
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn template(c: &Value) -> ChatTemplate {
    let name = c["template"].as_str().unwrap();
    let path = fixture(&format!("chat-templates/{name}.jinja"));
    let source = std::fs::read_to_string(&path).unwrap();
    ChatTemplate::new(
        source,
        c["bos_token"].as_str().unwrap().into(),
        c["eos_token"].as_str().unwrap().into(),
        &path,
    )
    .unwrap()
}

fn messages(c: &Value) -> Vec<Message> {
    c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Message::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect()
}

#[test]
fn renders_as_transformers_does() {
    let cases = cases();
    assert_eq!(cases.len(), 12);
    for c in &cases {
        let got = template(c).render(&messages(c), true).unwrap();
        assert_eq!(
            got,
            c["rendered"].as_str().unwrap(),
            "{} / {}",
            c["template"],
            c["conversation"]
        );
    }
}

/// The prompt template built from a chat template gives transformers' prompt for any question
/// (layer 1, with the template's default system prompt or a given one) and for a second user
/// turn; layer 2 continues the assistant turn the generation prompt opened.
#[test]
fn prompt_templates_from_a_chat_template() {
    for c in &cases() {
        let msgs = messages(c);
        let want = c["rendered"].as_str().unwrap();
        let chat = Arc::new(template(c));
        let system = msgs
            .iter()
            .find(|m| m.role == "system")
            .map(|m| m.content.as_str());
        let t = PromptTemplate::from_chat(chat, system).unwrap();
        let user: Vec<&Message> = msgs.iter().filter(|m| m.role == "user").collect();
        let question = &user[0].content;
        match c["conversation"].as_str().unwrap() {
            "second_user_turn" => {
                let answer = &msgs[1].content;
                let got = t
                    .render_new_turn(Ask::Question(question), answer, &user[1].content)
                    .unwrap();
                assert_eq!(got, want, "{}", c["template"]);
                // the same history as a conversational prompt (TRL's format)
                let got = t.render_ask(Ask::Conversation(&msgs)).unwrap();
                assert_eq!(got, want, "{}", c["template"]);
                let first = &msgs[..msgs.len() - 2];
                let got = t
                    .render_new_turn(Ask::Conversation(first), answer, &user[1].content)
                    .unwrap();
                assert_eq!(got, want, "{}", c["template"]);
            }
            _ => {
                assert_eq!(t.render(question), want, "{}", c["template"]);
                let got = t.render_ask(Ask::Conversation(&msgs)).unwrap();
                assert_eq!(got, want, "{} as a conversation", c["template"]);
                let (text, turn) = t
                    .render_turn2(Ask::Conversation(&msgs), "It is 5.", "Wait.")
                    .unwrap();
                assert_eq!(
                    (text.as_str(), turn.as_str()),
                    (
                        format!("{want}It is 5.\n\nWait.").as_str(),
                        "It is 5.\n\nWait."
                    )
                );
                assert_eq!(
                    t.render_layer2(question, "It is 5.", "Wait."),
                    format!("{want}It is 5.\n\nWait."),
                );
            }
        }
    }
}

/// A template that rewrites what it is given cannot become fill strings; a broken one names
/// the file, the key and the line.
#[test]
fn unusable_templates_are_refused_by_name() {
    let p = Path::new("tokenizer_config.json");
    let t = |src: &str| ChatTemplate::new(src.into(), "<s>".into(), "</s>".into(), p);
    let strip = t("{% for m in messages %}{{ m.content | upper }}{% endfor %}").unwrap();
    let e = PromptTemplate::from_chat(Arc::new(strip), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tokenizer_config.json: key `chat_template`: cannot be used"),
        "{e}"
    );
    let e = t("{% for m in messages %}{{ m.content }")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("tokenizer_config.json: key `chat_template`: "),
        "{e}"
    );
    let raise = t("{{ raise_exception('only user and assistant roles') }}").unwrap();
    let e = raise.render(&[], true).unwrap_err().to_string();
    assert!(e.contains("only user and assistant roles"), "{e}");
}

/// `template = "checkpoint"` end to end: the copy-task model with a ChatML chat template in its
/// `tokenizer_config.json` trains; without one, a one-line error names the file and the key.
#[test]
fn a_run_prompts_with_the_checkpoints_template() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    std::fs::create_dir(&model).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(
            repo().join("tests/fixtures/copy-task").join(f),
            model.join(f),
        )
        .unwrap();
    }
    let config = "configs/copy-grpo.toml";
    let out = tmp.path().join("run");
    let sets = |model: &Path| {
        vec![
            "train".to_string(),
            "--config".into(),
            config.into(),
            "--out".into(),
            out.to_str().unwrap().into(),
            "--set".into(),
            "template=checkpoint".into(),
            "--set".into(),
            format!("model={}", model.display()),
            "--set".into(),
            "max_steps=2".into(),
            "--set".into(),
            "max_prompt_length=48".into(),
        ]
    };
    let args = sets(&model);
    let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        e.contains("tokenizer_config.json") && e.contains("chat_template"),
        "{e}"
    );
    assert!(!out.exists());
    let chatml = "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    let cfg = serde_json::json!({"chat_template": chatml, "eos_token": "<|im_end|>"});
    std::fs::write(model.join("tokenizer_config.json"), cfg.to_string()).unwrap();
    let o = mgrpo(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // the same prompt as the built-in ChatML template (same ids → same greedy text and
    // log-probs)
    let generate = |template: &str| {
        let o = mgrpo(&[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--template",
            template,
            "--prompt",
            "3",
            "--max-new-tokens",
            "2",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    assert_eq!(generate("checkpoint"), generate("chatml"));
    let mut args = sets(&model);
    args.extend(["--set".into(), "system_prompt=Copy.".into()]);
    args[4] = tmp.path().join("run2").to_str().unwrap().into();
    let o = mgrpo(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // a system prompt needs the checkpoint's template
    let e = fails(&["train", "--config", config, "--set", "system_prompt=x"]);
    assert!(e.contains("key `system_prompt`"), "{e}");
}

/// The built-in `qwen-math` template is Qwen2.5-Math-Instruct's chat template, in both forms
/// (layer 1 and a second turn as a new user message).
#[test]
fn the_builtin_qwen_math_template_is_the_checkpoints() {
    let t = PromptTemplate::builtin("qwen-math").unwrap();
    for c in cases()
        .iter()
        .filter(|c| c["template"] == "qwen2.5-math-instruct")
    {
        let msgs = messages(c);
        let want = c["rendered"].as_str().unwrap();
        match c["conversation"].as_str().unwrap() {
            "user" => assert_eq!(t.render(&msgs[0].content), want),
            "second_user_turn" => assert_eq!(
                t.render_new_turn(
                    Ask::Question(&msgs[0].content),
                    &msgs[1].content,
                    &msgs[2].content
                )
                .unwrap(),
                want
            ),
            _ => {}
        }
    }
}
