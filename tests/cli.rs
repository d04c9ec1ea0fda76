//! The `mgrpo` binary: `score` on every fixture and CPU backend against transformers, and
//! bad input giving a one-line error, a non-zero exit and no panic.

mod common;

use std::path::Path;

use common::*;

fn write_jsonl(dir: &Path, name: &str, lines: &[String]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p.to_string_lossy().into_owned()
}

fn parse_logprobs(stdout: &[u8]) -> Vec<Vec<f32>> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| floats(&serde_json::from_str::<serde_json::Value>(l).unwrap()["logprobs"]))
        .collect()
}

#[test]
fn score_matches_transformers_on_every_fixture_and_cpu_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let mut devices = vec!["cpu"];
    if cfg!(feature = "ndarray") {
        devices.push("ndarray");
    }
    if cfg!(feature = "flex") {
        devices.push("flex");
    }
    for name in FIXTURES {
        let rows = id_rows(name);
        let lines: Vec<String> = rows
            .iter()
            .map(|(i, _)| serde_json::json!({ "input_ids": i }).to_string())
            .collect();
        let input = write_jsonl(tmp.path(), &format!("{name}.jsonl"), &lines);
        let model = fixture(name);
        for dev in &devices {
            for bs in ["1", "3"] {
                let out = mgrpo(&[
                    "score",
                    "--model",
                    model.to_str().unwrap(),
                    "--input",
                    &input,
                    "--device",
                    dev,
                    "--batch-size",
                    bs,
                ]);
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let got = parse_logprobs(&out.stdout);
                assert_eq!(got.len(), rows.len());
                for (g, (_, want)) in got.iter().zip(&rows) {
                    let d = max_abs_diff(g, want);
                    assert!(d <= 1e-4, "{name} on {dev}, batch {bs}: {d}");
                }
            }
        }
    }
}

#[test]
fn score_text_rows_with_template_and_output_file() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = expected(TOKENIZER_FIXTURE);
    let rows: Vec<&serde_json::Value> = exp["text_rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["template"] == "qwen-math")
        .collect();
    let lines: Vec<String> = rows
        .iter()
        .map(|r| {
            serde_json::json!({"prompt": r["prompt"], "completion": r["completion"]}).to_string()
        })
        .collect();
    let input = write_jsonl(tmp.path(), "text.jsonl", &lines);
    let output = tmp.path().join("out.jsonl");
    let model = fixture(TOKENIZER_FIXTURE);
    let out = mgrpo(&[
        "score",
        "--model",
        model.to_str().unwrap(),
        "--input",
        &input,
        "--template",
        "qwen-math",
        "--output",
        output.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = parse_logprobs(&std::fs::read(&output).unwrap());
    for (g, r) in got.iter().zip(&rows) {
        let want = floats(&r["logprobs"]);
        assert_eq!(g.len(), want.len(), "one log-prob per completion token");
        assert!(max_abs_diff(g, &want) <= 1e-4);
    }
}

#[test]
fn bad_input_gives_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let tied = fixture("gqa2-tied-f32-t4");
    let tied = tied.to_str().unwrap();
    let with_tok = fixture(TOKENIZER_FIXTURE);
    let with_tok = with_tok.to_str().unwrap();
    let good = write_jsonl(t, "good.jsonl", &[r#"{"input_ids": [1, 2, 3]}"#.into()]);

    let bad_json = write_jsonl(
        t,
        "bad.jsonl",
        &[r#"{"input_ids": [1, 2]}"#.into(), "{not json".into()],
    );
    let e = fails(&["score", "--model", tied, "--input", &bad_json]);
    assert!(
        e.contains("bad.jsonl:2") && e.contains("invalid JSON"),
        "{e}"
    );

    // One-row files: (file, model, row, what the error must mention besides `file:1`).
    let long = serde_json::json!({ "input_ids": (0..129).map(|i| i % 200).collect::<Vec<u32>>() });
    let cases: &[(&str, &str, String, &[&str])] = &[
        (
            "oov.jsonl",
            tied,
            r#"{"input_ids": [1, 256]}"#.into(),
            &["256", "vocab_size"],
        ),
        (
            "empty.jsonl",
            tied,
            r#"{"input_ids": []}"#.into(),
            &["empty"],
        ),
        (
            "long.jsonl",
            tied,
            long.to_string(),
            &["max_position_embeddings"],
        ),
        (
            "text.jsonl",
            tied,
            r#"{"prompt": "a", "completion": "b"}"#.into(),
            &["tokenizer.json"],
        ),
        (
            "noprompt.jsonl",
            with_tok,
            r#"{"prompt": "", "completion": "b"}"#.into(),
            &["prompt"],
        ),
        (
            "missing.jsonl",
            with_tok,
            r#"{"prompt": "a"}"#.into(),
            &["`completion`"],
        ),
    ];
    for (file, model, row, needles) in cases {
        let input = write_jsonl(t, file, std::slice::from_ref(row));
        let e = fails(&["score", "--model", model, "--input", &input]);
        assert!(e.contains(&format!("{file}:1")), "{e}");
        for n in *needles {
            assert!(e.contains(n), "{e}");
        }
    }
    let oov = t.join("oov.jsonl").to_string_lossy().into_owned();
    let text = t.join("text.jsonl").to_string_lossy().into_owned();

    let e = fails(&[
        "score",
        "--model",
        with_tok,
        "--input",
        &text,
        "--template",
        "chatgpt",
    ]);
    assert!(e.contains("chatgpt"), "{e}");
    let e = fails(&[
        "score",
        "--model",
        tied,
        "--input",
        &t.join("nope.jsonl").to_string_lossy(),
    ]);
    assert!(e.contains("nope.jsonl"), "{e}");
    let e = fails(&[
        "score",
        "--model",
        &t.join("nomodel").to_string_lossy(),
        "--input",
        &good,
    ]);
    assert!(e.contains("nomodel"), "{e}");
    let e = fails(&[
        "score", "--model", tied, "--input", &good, "--device", "tpu",
    ]);
    assert!(e.contains("tpu"), "{e}");
    #[cfg(not(feature = "cuda"))]
    {
        let e = fails(&[
            "score", "--model", tied, "--input", &good, "--device", "cuda:0",
        ]);
        assert!(e.contains("--features cuda"), "{e}");
    }
    #[cfg(not(feature = "tch"))]
    {
        let e = fails(&[
            "score", "--model", tied, "--input", &good, "--device", "tch",
        ]);
        assert!(e.contains("--features tch"), "{e}");
    }

    // A failed --output leaves nothing behind.
    let out = t.join("never.jsonl");
    fails(&[
        "score",
        "--model",
        tied,
        "--input",
        &oov,
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(!out.exists());
}

#[test]
fn convert_round_trip_and_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixture(TOKENIZER_FIXTURE);
    let out = tmp.path().join("bf16");
    let run = mgrpo(&[
        "convert",
        "--model",
        src.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--dtype",
        "bf16",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.join("model.safetensors").is_file() && out.join("tokenizer.json").is_file());
    let e = fails(&[
        "convert",
        "--model",
        src.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        e.contains("already holds a model") && e.contains("--overwrite"),
        "{e}"
    );
    let e = fails(&[
        "convert",
        "--model",
        src.to_str().unwrap(),
        "--out",
        tmp.path().join("x").to_str().unwrap(),
        "--dtype",
        "int8",
    ]);
    assert!(e.contains("int8"), "{e}");
    assert!(!tmp.path().join("x").exists());
}

#[test]
fn bench_prints_a_json_line() {
    let out = mgrpo(&[
        "bench", "score", "--batch", "1", "--seq", "8", "--warmup", "0", "--iters", "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["tokens_per_s"].as_f64().unwrap() > 0.0);
}

/// `--dtype bf16` scores in bf16 (within the bf16 tolerance of tests/parity.rs, and not
/// identical to f32); an unknown dtype is a one-line error.
#[test]
fn score_in_bf16() {
    let tmp = tempfile::tempdir().unwrap();
    let name = FIXTURES[0];
    let rows = id_rows(name);
    let lines: Vec<String> = rows
        .iter()
        .map(|(i, _)| serde_json::json!({ "input_ids": i }).to_string())
        .collect();
    let input = write_jsonl(tmp.path(), "rows.jsonl", &lines);
    let model = fixture(name);
    let model = model.to_str().unwrap();
    let out = mgrpo(&[
        "score", "--model", model, "--input", &input, "--dtype", "bf16",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = parse_logprobs(&out.stdout);
    let worst = got
        .iter()
        .zip(&rows)
        .map(|(g, (_, want))| max_abs_diff(g, want))
        .fold(0.0f32, f32::max);
    assert!(worst > 1e-5 && worst <= 0.25, "bf16 max difference {worst}");
    let e = fails(&[
        "score", "--model", model, "--input", &input, "--dtype", "fp8",
    ]);
    assert!(e.contains("--dtype") && e.contains("bf16"), "{e}");
}

/// A negative number is a value to check, not an unknown flag: every error names the flag
/// (`--temperature -1` used to get clap's "unexpected argument '-1' found"). Bench figures
/// that would be silently meaningless (0 iterations, a zero roofline) or abort the process
/// (a row longer than the shape's context) are refused, as are out-of-range task rates.
#[test]
fn negative_and_out_of_range_values_name_their_flag() {
    let model = "tests/fixtures/copy-task";
    let gen = |flag: &'static str, v: &'static str| {
        vec!["generate", "--model", model, "--prompt", "1", flag, v]
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (gen("--temperature", "-1"), "--temperature must be ≥ 0"),
        (gen("--top-p", "-0.5"), "--top-p must be in (0, 1]"),
        (gen("--min-p", "-1"), "--min-p must be in [0, 1)"),
        (
            vec![
                "eval",
                "--model",
                model,
                "--data",
                "x",
                "--temperature",
                "-2",
            ],
            "--temperature must be ≥ 0",
        ),
        (
            vec!["bench", "score", "--iters", "0"],
            "--iters: must be ≥ 1",
        ),
        (
            vec!["bench", "generate", "--hbm-tbps", "-1"],
            "--hbm-tbps: must be > 0, got -1",
        ),
        (
            vec!["bench", "train", "--peak-tflops", "0"],
            "--peak-tflops: must be > 0",
        ),
        (
            vec!["bench", "score", "--seq", "100000"],
            "--seq: 100000 tokens per row exceed the bench-small shape's context of 32768",
        ),
        (
            vec!["task", "--out", "never-written", "--carry-rate", "-0.5"],
            "--carry-rate: must be in [0, 1]",
        ),
    ];
    for (args, want) in cases {
        let e = fails(&args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    assert!(!Path::new("never-written").exists());
    // what clap itself refuses still names the flag
    for (args, flag) in [
        (
            gen("--max-new-tokens", "-3"),
            "'--max-new-tokens <MAX_NEW_TOKENS>'",
        ),
        (vec!["train", "--stop-after", "-1"], "'--stop-after <STEP>'"),
    ] {
        let o = mgrpo(&args);
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(e.contains("invalid value '-") && e.contains(flag), "{e}");
    }
}
