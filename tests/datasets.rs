//! Dataset loading: every format of `shared/data` detected from its fields and mapped to
//! {question, gold answer, id}; `--format` overrides; bad files name the file and line.

use std::path::PathBuf;

use mgrpo::data::{Dataset, DatasetFormat};
use mgrpo::reward::{reward, RewardConfig};
use mgrpo::text::template::PromptTemplate;

fn repo() -> PathBuf {
    std::env::var_os("MGRPO_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn data(file: &str) -> PathBuf {
    repo().join("tests/fixtures/data").join(file)
}

#[test]
fn every_format_is_detected_and_mapped() {
    let cases = [
        ("gsm8k_test.jsonl", DatasetFormat::Gsm8k, "line-1", "18"),
        (
            "math500_test.jsonl",
            DatasetFormat::Math,
            "test/precalculus/807.json",
            r"\left( 3, \frac{\pi}{2} \right)",
        ),
        ("minerva_head.jsonl", DatasetFormat::Minerva, "0", "1.6"),
        (
            "olympiadbench_head.jsonl",
            DatasetFormat::Olympiadbench,
            "1606",
            "2",
        ),
        ("aime24_head.jsonl", DatasetFormat::Aime, "60", "204"),
        ("amc23_head.jsonl", DatasetFormat::Amc, "0", "27"),
    ];
    for (file, format, id, gold) in cases {
        let d = Dataset::load(&data(file), None).unwrap();
        assert_eq!(d.format, format, "{file}");
        let p = &d.problems[0];
        assert_eq!(
            (p.id.as_str(), p.gold_answer.as_str()),
            (id, gold),
            "{file}"
        );
        assert!(!p.question.is_empty());
    }
    let gsm = Dataset::load(&data("gsm8k_test.jsonl"), None).unwrap();
    assert_eq!(gsm.len(), 1319);
    assert!(gsm.problems[0].question.starts_with("Janet"));
}

#[test]
fn prompts_and_rewards_per_dataset() {
    let d = Dataset::load(&data("amc23_head.jsonl"), None).unwrap();
    let t = PromptTemplate::builtin("qwen-math").unwrap();
    let prompts = d.prompts(&t).unwrap();
    assert_eq!(prompts.len(), 2);
    assert!(prompts[0].contains(&d.problems[0].question));
    assert!(prompts[0].ends_with("<|im_start|>assistant\n"));

    let cfg = RewardConfig::default();
    let reward = |p, text, cfg| reward(p, text, cfg).unwrap();
    let p = &d.problems[0];
    assert_eq!(
        reward(p, "They meet after 1.5 h, so \\boxed{27} miles.", &cfg),
        1.0
    );
    assert_eq!(reward(p, "\\boxed{28}", &cfg), 0.0);
    assert_eq!(
        reward(p, "They meet 27 miles from A.", &cfg),
        0.0,
        "no last-number fallback outside GSM8K"
    );
    let with_format = RewardConfig {
        funcs: vec!["accuracy".into(), "format".into()],
        weights: Some(vec![1.0, 0.1]),
        ..RewardConfig::default()
    };
    assert!((reward(p, "\\boxed{28}", &with_format) - 0.1).abs() < 1e-6);
    assert!((reward(p, "\\boxed{27}", &with_format) - 1.1).abs() < 1e-6);

    let gsm = Dataset::load(&data("gsm8k_test.jsonl"), None).unwrap();
    assert_eq!(
        reward(&gsm.problems[0], "She makes 9 * 2 = 18 dollars.", &cfg),
        1.0,
        "GSM8K last number"
    );
}

#[test]
fn format_override_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    // A generic question/answer file, detected as qa.
    let qa = write(
        "qa.jsonl",
        "{\"question\": \"1+1?\", \"answer\": \"2\"}\n{\"prompt\": \"2+2?\", \"gold\": 4}\n",
    );
    let d = Dataset::load(&qa, None).unwrap();
    assert_eq!(d.format, DatasetFormat::Qa);
    assert_eq!(d.problems[1].gold_answer, "4");
    assert_eq!(d.problems[1].id, "line-2");
    // --format forces a reading: AMC rows read as OlympiadBench lack `final_answer`.
    let e = Dataset::load(
        &data("amc23_head.jsonl"),
        Some(DatasetFormat::Olympiadbench),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("amc23_head.jsonl:1") && e.contains("`final_answer`"),
        "{e}"
    );
    let d = Dataset::load(&data("amc23_head.jsonl"), Some(DatasetFormat::Qa)).unwrap();
    assert_eq!(
        d.problems[0].gold_answer, "27.0",
        "qa keeps the answer as written"
    );
    // Bad JSON on line 2.
    let bad = write(
        "bad.jsonl",
        "{\"question\": \"q\", \"answer\": \"x #### 1\"}\n{oops\n",
    );
    let e = Dataset::load(&bad, None).unwrap_err().to_string();
    assert!(
        e.contains("bad.jsonl:2") && e.contains("invalid JSON"),
        "{e}"
    );
    // A GSM8K row without its #### line.
    let no_hash = write("nohash.jsonl", "{\"question\": \"q\", \"answer\": \"x #### 1\"}\n{\"question\": \"q\", \"answer\": \"x\"}\n");
    let e = Dataset::load(&no_hash, Some(DatasetFormat::Gsm8k))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nohash.jsonl:2") && e.contains("####"), "{e}");
    // Unknown fields, empty file, unknown format name.
    let odd = write("odd.jsonl", "{\"foo\": 1}\n");
    let e = Dataset::load(&odd, None).unwrap_err().to_string();
    assert!(
        e.contains("odd.jsonl:1") && e.contains("--format") && e.contains("foo"),
        "{e}"
    );
    let empty = write("empty.jsonl", "\n");
    assert!(Dataset::load(&empty, None)
        .unwrap_err()
        .to_string()
        .contains("empty"));
    assert!("gsm9k"
        .parse::<DatasetFormat>()
        .unwrap_err()
        .to_string()
        .contains("gsm8k"));
}

/// Parquet shards as the Hub stores them (`scripts/make_parquet_fixtures.py`): a glob of the
/// train shards (snappy and zstd) gives the JSONL's first 16 problems in order, named by shard
/// and row; the directory gives every shard; bad files are named.
#[test]
fn parquet_shards_read_as_their_jsonl() {
    let jsonl = Dataset::load(&data("gsm8k_train.jsonl"), None).unwrap();
    let shards = Dataset::load(&data("parquet/gsm8k/data/train-*.parquet"), None).unwrap();
    assert_eq!(shards.format, DatasetFormat::Gsm8k);
    assert_eq!(shards.len(), 16);
    for (i, (p, want)) in shards.problems.iter().zip(&jsonl.problems).enumerate() {
        assert_eq!(
            (&p.question, &p.gold_answer, &p.solution, &p.fields),
            (
                &want.question,
                &want.gold_answer,
                &want.solution,
                &want.fields
            ),
            "row {i}"
        );
        let shard = if i < 8 { "00000" } else { "00001" };
        assert_eq!(
            p.id,
            format!("train-{shard}-of-00002.parquet:row-{}", i % 8 + 1)
        );
    }
    let all = Dataset::load(&data("parquet/gsm8k/data"), None).unwrap();
    assert_eq!(all.len(), 20, "test shard + two train shards");
    let one = Dataset::load(
        &data("parquet/gsm8k/data/test-00000-of-00001.parquet"),
        None,
    )
    .unwrap();
    assert_eq!(one.problems[3].id, "row-4");

    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("train.parquet");
    std::fs::write(&fake, "{\"question\": \"1+1\", \"answer\": \"#### 2\"}\n").unwrap();
    let e = Dataset::load(&fake, None).unwrap_err().to_string();
    assert!(e.contains("train.parquet") && e.contains("Parquet"), "{e}");
    let e = Dataset::load(&tmp.path().join("validation-*.parquet"), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("validation-*.parquet") && e.contains("no file matches"),
        "{e}"
    );
    let e = Dataset::load(tmp.path(), None).unwrap_err().to_string();
    assert!(
        e.contains("train.parquet"),
        "a directory reads its shards: {e}"
    );
}

/// TRL's conversational format, in JSONL and in Parquet: `prompt` a list of messages, rendered
/// by the model's chat template exactly as transformers' `apply_chat_template` does; a
/// configured system prompt replaces the conversation's; a built-in template is refused.
#[test]
fn conversational_prompts_render_as_transformers() {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data("conversational_prompts.json")).unwrap(),
    )
    .unwrap();
    let want: Vec<&str> = expected["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let model = repo().join("model");
    let chat = PromptTemplate::load("checkpoint", &model, None).unwrap();
    for file in ["conversational.jsonl", "conversational.parquet"] {
        let d = Dataset::load(&data(file), None).unwrap();
        assert_eq!(d.format, DatasetFormat::Qa, "{file}");
        assert_eq!(d.len(), 32);
        let p = &d.problems[1];
        let conversation = p.conversation.as_ref().unwrap();
        assert_eq!(p.question, conversation.last().unwrap().content);
        assert_eq!(d.prompts(&chat).unwrap(), want, "{file}");
        let e = d
            .check_template(&PromptTemplate::builtin("qwen-math").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(file) && e.contains("template = \"checkpoint\""),
            "{e}"
        );
        let brief = PromptTemplate::load("checkpoint", &model, Some("Be brief.")).unwrap();
        let prompts = d.prompts(&brief).unwrap();
        assert!(prompts[0].contains("Be brief.") && !prompts[0].contains("Answer with"));
        assert!(prompts[1].contains("Be brief."));
        assert_eq!(prompts[0].matches("<|im_start|>system").count(), 1);
    }
    // a run on the Parquet file trains on its conversations (the prompts are `prompts()`'s)
    let ids: Vec<String> = Dataset::load(&data("conversational.parquet"), None)
        .unwrap()
        .problems
        .iter()
        .map(|p| p.id.clone())
        .collect();
    let run = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_mgrpo"))
        .current_dir(repo())
        .args(["train", "--config", "configs/tiny-grpo.toml", "--out"])
        .arg(run.path().join("run"))
        .args([
            "--set",
            "dataset=\"tests/fixtures/data/conversational.parquet\"",
        ])
        .args([
            "--set",
            "template=\"checkpoint\"",
            "--set",
            "eval_dataset=\"\"",
        ])
        .args(["--set", "max_steps=1", "--set", "max_completion_length=8"])
        .args([
            "--set",
            "per_device_train_batch_size=16",
            "--set",
            "num_generations=4",
        ])
        .args(["--set", "log_completions=true", "--set", "num_devices=1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = std::fs::read_to_string(run.path().join("run/completions.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 16);
    for r in &rows {
        let id = r["problem"].as_str().unwrap();
        assert!(ids.iter().any(|i| i == id), "{id}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.jsonl");
    for (row, want) in [
        (
            r#"{"prompt": [{"role": "tool", "content": "x"}], "answer": "1"}"#,
            "prompt[0]",
        ),
        (
            r#"{"prompt": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}], "answer": "1"}"#,
            "end with the user's message",
        ),
        (
            r#"{"prompt": [{"role": "user", "content": [{"type": "image"}]}], "answer": "1"}"#,
            "text parts",
        ),
        (r#"{"prompt": [], "answer": "1"}"#, "empty"),
    ] {
        std::fs::write(&bad, format!("{row}\n")).unwrap();
        let e = Dataset::load(&bad, None).unwrap_err().to_string();
        assert!(e.contains("bad.jsonl:1") && e.contains(want), "{e}");
    }
    std::fs::write(
        &bad,
        r#"{"prompt": [{"role": "user", "content": [{"type": "text", "text": "What is "}, {"type": "text", "text": "2+2?"}]}], "answer": "4"}"#,
    )
    .unwrap();
    let d = Dataset::load(&bad, None).unwrap();
    assert_eq!(d.problems[0].question, "What is 2+2?");
}
