//! Dataset loading: every format of `shared/data` detected from its fields and mapped to
//! {question, gold answer, id}; `--format` overrides; bad files name the file and line.

use std::path::PathBuf;

use mgrpo::data::{Dataset, DatasetFormat};
use mgrpo::reward::{reward, RewardConfig};
use mgrpo::text::template::PromptTemplate;

fn data(file: &str) -> PathBuf {
    std::env::var_os("MGRPO_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("tests/fixtures/data")
        .join(file)
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
    let prompts = d.prompts(&t);
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
