//! Hostile inputs, round three: what a careless or hostile user does, each refused by name
//! with nothing destroyed (`scripts/hostile_inputs.py` surveys the same families).

mod common;

use common::fails;

const CONFIG: &str = "configs/copy-grpo.toml";

/// An `--output` that is the file the command reads is refused before any work, the input
/// intact (the atomic write used to replace it); an evaluation set whose ids repeat is refused
/// when the run starts, naming the id (it used to fail only at the end of training).
#[test]
fn inputs_are_never_replaced_and_evaluation_ids_are_unique() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs = tmp.path().join("pairs.jsonl");
    let text = "{\"gold\": \"2\", \"pred\": \"\\\\boxed{2}\"}\n";
    std::fs::write(&pairs, text).unwrap();
    let p = pairs.to_str().unwrap();
    let e = fails(&["verify", "--input", p, "--output", p]);
    assert!(e.contains("--output") && e.contains("--input"), "{e}");
    let ids = tmp.path().join("ids.jsonl");
    std::fs::write(&ids, "{\"input_ids\": [1, 2, 3]}\n").unwrap();
    let i = ids.to_str().unwrap();
    let model = common::fixture("copy-task");
    let m = model.to_str().unwrap();
    let e = fails(&["score", "--model", m, "--input", i, "--output", i]);
    assert!(e.contains("--input"), "{e}");
    let e = fails(&["generate", "--model", m, "--input", i, "--output", i]);
    assert!(e.contains("--input"), "{e}");
    assert_eq!(std::fs::read_to_string(&pairs).unwrap(), text);
    assert_eq!(
        std::fs::read_to_string(&ids).unwrap(),
        "{\"input_ids\": [1, 2, 3]}\n"
    );

    let eval = tmp.path().join("eval.jsonl");
    let row = |id: &str, q: &str| {
        format!("{{\"id\": \"{id}\", \"question\": \"{q}\", \"answer\": \"#### {q}\"}}\n")
    };
    std::fs::write(&eval, row("a", "1") + &row("b", "2") + &row("a", "3")).unwrap();
    let out = tmp.path().join("run");
    let set = format!("eval_dataset=\"{}\"", eval.display());
    let e = fails(&[
        "train",
        "--config",
        CONFIG,
        "--out",
        out.to_str().unwrap(),
        "--set",
        &set,
    ]);
    assert!(
        e.contains("eval.jsonl") && e.contains("`a` appears twice"),
        "{e}"
    );
    assert!(!out.join("metrics.jsonl").exists());
}
