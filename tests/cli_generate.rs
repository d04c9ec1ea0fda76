//! `mgrpo generate` and `mgrpo bench generate` through the binary: greedy output equal to
//! transformers' on the fixtures, the JSONL fields, `--output`, and bad input giving a one-line
//! error, a non-zero exit and no panic.

mod common;

use common::*;

fn succeeds(args: &[&str]) -> Vec<serde_json::Value> {
    let out = mgrpo(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Greedy from an `input_ids` file, on both CPU backends, equals transformers' continuations
/// (EOS from config.json); the text prompt of the tokenizer fixture goes through --prompt and
/// the qwen-math template.
#[test]
fn greedy_matches_transformers() {
    let tmp = tempfile::tempdir().unwrap();
    for name in FIXTURES {
        let cases = expected(name)["greedy"].as_array().unwrap().clone();
        let id_cases: Vec<_> = cases.iter().filter(|c| c.get("text").is_none()).collect();
        let input = tmp.path().join(format!("{name}.jsonl"));
        let lines: Vec<String> = id_cases
            .iter()
            .map(|c| serde_json::json!({ "input_ids": c["prompt_ids"] }).to_string())
            .collect();
        std::fs::write(&input, lines.join("\n") + "\n").unwrap();
        for device in ["cpu", "ndarray"] {
            let dir = fixture(name);
            let rows = succeeds(&[
                "generate",
                "--model",
                dir.to_str().unwrap(),
                "--input",
                input.to_str().unwrap(),
                "--temperature",
                "0",
                "--max-new-tokens",
                "40",
                "--batch-size",
                "2",
                "--device",
                device,
            ]);
            assert_eq!(rows.len(), id_cases.len());
            for (i, (row, case)) in rows.iter().zip(&id_cases).enumerate() {
                assert_eq!(row["index"], i);
                assert_eq!(row["sample"], 0);
                assert_eq!(
                    row["completion_ids"], case["completion_ids"],
                    "{name} {device}"
                );
                let n = case["completion_ids"].as_array().unwrap().len();
                assert_eq!(row["logprobs"].as_array().unwrap().len(), n);
                assert_eq!(row["model_logprobs"].as_array().unwrap().len(), n);
                let eos = case["eos"].as_bool().unwrap();
                assert_eq!(row["truncated"], !eos);
                assert_eq!(row["finish_reason"], if eos { "eos" } else { "length" });
                let has_tokenizer = fixture(name).join("tokenizer.json").is_file();
                assert_eq!(
                    row["text"].is_string(),
                    has_tokenizer,
                    "text iff a tokenizer"
                );
            }
        }
    }
    let name = TOKENIZER_FIXTURE;
    let case = text_greedy_case();
    let out = tmp.path().join("out.jsonl");
    let none = succeeds(&[
        "generate",
        "--model",
        fixture(name).to_str().unwrap(),
        "--prompt",
        case["prompt"].as_str().unwrap(),
        "--template",
        "qwen-math",
        "--temperature",
        "0",
        "--max-new-tokens",
        "40",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(none.is_empty(), "--output: nothing on stdout");
    let row: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&out).unwrap().trim()).unwrap();
    assert_eq!(row["completion_ids"], case["completion_ids"]);
    assert_eq!(row["text"], case["text"]);
}

/// G samples per prompt, seeded: reproducible, G rows per prompt in order.
#[test]
fn sampling_rows_and_seeds() {
    let dir = fixture("gqa2-tied-f32-t4");
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("p.jsonl");
    std::fs::write(&input, "{\"input_ids\": [5, 6, 7]}\n{\"input_ids\": [9]}\n").unwrap();
    let run_on = |seed: &str, sample_on: &str| {
        succeeds(&[
            "generate",
            "--sample-on",
            sample_on,
            "--model",
            dir.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--num-return-sequences",
            "3",
            "--max-new-tokens",
            "12",
            "--top-p",
            "0.9",
            "--top-k",
            "40",
            "--min-p",
            "0.02",
            "--seed",
            seed,
        ])
    };
    let run = |seed: &str| run_on(seed, "auto");
    let a = run("4");
    let idx: Vec<(u64, u64)> = a
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["sample"].as_u64().unwrap()))
        .collect();
    assert_eq!(idx, vec![(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]);
    assert_eq!(a, run("4"));
    assert_ne!(a, run("5"));
    // on the CPU `auto` samples on the host; drawing on the device reproduces itself too
    assert_eq!(a, run_on("4", "host"));
    let d = run_on("4", "device");
    assert_eq!(d.len(), 6);
    assert_eq!(d, run_on("4", "device"));
    let out = mgrpo(&[
        "generate",
        "--sample-on",
        "gpu",
        "--model",
        dir.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--sample-on"),
        "{err}"
    );
}

#[test]
fn bad_input_gives_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = fixture(TOKENIZER_FIXTURE);
    let tok = tok.to_str().unwrap();
    let plain = fixture("gqa2-tied-f32-t4");
    let plain = plain.to_str().unwrap();
    let file = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let long = file(
        "long.jsonl",
        &format!(
            "{{\"input_ids\": [1]}}\n{{\"input_ids\": {:?}}}\n",
            vec![3; 128]
        ),
    );
    let bad_json = file("bad.jsonl", "{\"prompt\": \"a\"}\n{\"prompt\": \n");
    let empty = file("empty.jsonl", "{\"input_ids\": []}\n");
    let oov = file("oov.jsonl", "{\"input_ids\": [1, 256]}\n");
    let out = tmp.path().join("out.jsonl");
    let out = out.to_str().unwrap();
    #[rustfmt::skip]
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--model", tok, "--prompt", ""], "--prompt: the prompt is empty"),
        (vec!["--model", tok, "--prompt", "x", "--template", "nope"], "unknown template `nope`"),
        (vec!["--model", tok, "--prompt", "x", "--top-p", "1.5"], "--top-p must be in (0, 1], got 1.5"),
        (vec!["--model", tok, "--prompt", "x", "--temperature=-1"], "--temperature must be"),
        (vec!["--model", tok, "--prompt", "x", "--min-p", "1"], "--min-p must be"),
        (vec!["--model", tok, "--prompt", "x", "--batch-size", "0"], "--batch-size"),
        (vec!["--model", tok, "--prompt", "x", "--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
        (vec!["--model", tok, "--prompt", "x", "--stop", ""], "stop string is empty"),
        (vec!["--model", plain, "--prompt", "x"], "needs tokenizer.json"),
        (vec!["--model", plain, "--input", &long], "long.jsonl:2: 128 prompt tokens leave no room below max_position_embeddings 128"),
        (vec!["--model", tok, "--input", &bad_json], "bad.jsonl:2: invalid JSON"),
        (vec!["--model", plain, "--input", &empty, "--output", out], "empty.jsonl:1: the prompt is empty"),
        (vec!["--model", plain, "--input", &oov], "oov.jsonl:1: token id 256 is out of range"),
        (vec!["--model", "/nonexistent", "--prompt", "x"], "/nonexistent"),
        (vec!["--model", plain, "--prompt", "x", "--device", "nope"], "unknown --device"),
    ];
    for (args, needle) in cases {
        let mut full = vec!["generate"];
        full.extend(&args);
        let e = fails(&full);
        assert!(e.contains(needle), "{args:?}: {e}");
    }
    assert!(
        !std::path::Path::new(out).exists(),
        "failed run wrote --output"
    );
    // neither --prompt nor --input
    let e = mgrpo(&["generate", "--model", plain]);
    assert!(!e.status.success());
}

#[test]
fn bench_generate_prints_a_json_line() {
    let out = mgrpo(&[
        "bench",
        "generate",
        "--batch",
        "2",
        "--prompt",
        "4",
        "--new-tokens",
        "3",
        "--warmup",
        "0",
        "--iters",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["new_tokens"], 3);
    assert!(v["tokens_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["first_run_ms"].as_f64().unwrap() > 0.0);
    assert!(v["step_ms_late"].as_f64().unwrap() > 0.0);
    assert_eq!(v["kv_buckets"], false); // auto: off on the CPU
}
