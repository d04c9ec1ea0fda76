//! Run integrity on the copy-task fixture: one writer per run directory, checkpoints that
//! prove themselves, a history that must be whole to continue, and a run that cannot learn
//! saying so.

mod common;

use std::path::Path;

use common::{fails, jsonl, mgrpo, run_config};
use serde_json::Value;

const CONFIG: &str = "configs/copy-grpo.toml";

fn train(out: &Path, extra: &[&str]) -> std::process::Output {
    run_config("train", CONFIG, out, extra)
}

fn metrics(run: &Path) -> Vec<Value> {
    jsonl(&run.join("metrics.jsonl"))
}

/// One writer per run directory: while a run is live, `--resume` on it and a second run into
/// it fail at once, naming the live process; once it is gone (killed: no clean exit), the lock
/// is free again and the run resumes.
#[test]
fn a_live_run_directory_has_one_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let run_s = run.to_str().unwrap();
    let mut live = std::process::Command::new(env!("CARGO_BIN_EXE_mgrpo"))
        .args(["train", "--config", CONFIG, "--out", run_s])
        .args(["--set", "max_steps=1000000", "--set", "save_steps=2"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !run
        .join("checkpoints/step-000002/trainer_state.json")
        .is_file()
    {
        assert!(
            t.elapsed().as_secs() < 60,
            "the live run never checkpointed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let holder = format!("in use by process {}", live.id());
    let e = fails(&["train", "--resume", run_s]);
    assert!(e.contains(&holder), "{e}");
    let o = mgrpo(&[
        "train",
        "--config",
        CONFIG,
        "--out",
        run_s,
        "--set",
        "max_steps=2",
    ]);
    assert!(!o.status.success());
    let lines_before = metrics(&run).len();
    live.kill().unwrap();
    live.wait().unwrap();
    assert!(
        metrics(&run).len() >= lines_before,
        "the refused runs wrote nothing"
    );
    // free again: a `--stop-after` behind the checkpoint is refused for what it is
    let e = fails(&["train", "--resume", run_s, "--stop-after", "1"]);
    assert!(
        e.contains("--stop-after 1: must be after the run's current step"),
        "{e}"
    );
    let e = fails(&[
        "train",
        "--config",
        CONFIG,
        "--out",
        tmp.path().join("x").to_str().unwrap(),
        "--stop-after",
        "0",
    ]);
    assert!(e.contains("--stop-after 0"), "{e}");
    assert!(!tmp.path().join("x").exists(), "nothing written");
}

/// Checkpoints prove themselves: flipped bytes in `optimizer.bin`, an edited
/// `trainer_state.json` or a missing weight file are refused on resume, naming the file and
/// offering the previous checkpoint; with the bad one deleted, the run resumes from that one.
#[test]
fn corrupt_checkpoints_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let run_s = run.to_str().unwrap();
    train(
        &run,
        &[
            "--set",
            "max_steps=8",
            "--set",
            "save_steps=2",
            "--stop-after",
            "6",
        ],
    );
    let ckpt = run.join("checkpoints/step-000006");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(ckpt.join("manifest.json")).unwrap()).unwrap();
    for f in [
        "trainer_state.json",
        "optimizer.bin",
        "model/model.safetensors",
    ] {
        assert!(manifest["sha256"][f].is_string(), "{f} not in the manifest");
    }
    let pristine = |f: &str| std::fs::read(ckpt.join(f)).unwrap();
    let (opt, state) = (pristine("optimizer.bin"), pristine("trainer_state.json"));

    let mut flipped = opt.clone();
    let mid = flipped.len() / 2;
    for b in &mut flipped[mid..mid + 64] {
        *b ^= 0xA5;
    }
    std::fs::write(ckpt.join("optimizer.bin"), &flipped).unwrap();
    let e = fails(&["train", "--resume", run_s]);
    assert!(e.contains("optimizer.bin: corrupt"), "{e}");
    assert!(
        e.contains("step-000004"),
        "offers the previous checkpoint: {e}"
    );
    // an older checkpoint (no manifest) with a truncated optimizer.bin: Burn's recorder
    // error used to come out Debug-escaped, three levels deep
    let manifest_text = pristine("manifest.json");
    std::fs::remove_file(ckpt.join("manifest.json")).unwrap();
    std::fs::write(ckpt.join("optimizer.bin"), &opt[..opt.len() / 3]).unwrap();
    let o = mgrpo(&["train", "--resume", run_s]);
    let err = String::from_utf8_lossy(&o.stderr);
    let e = err.lines().last().unwrap_or_default();
    assert!(!o.status.success() && err.contains("no manifest"), "{err}");
    assert!(
        e.contains(
            "step-000006/optimizer.bin: cannot read the optimizer state: the file ends \
             early (truncated)"
        ) && !e.contains('\\'),
        "{e}"
    );
    std::fs::write(ckpt.join("manifest.json"), manifest_text).unwrap();
    std::fs::write(ckpt.join("optimizer.bin"), &opt).unwrap();

    let edited = String::from_utf8(state.clone())
        .unwrap()
        .replace("\"step\": 6", "\"step\": 999");
    std::fs::write(ckpt.join("trainer_state.json"), edited).unwrap();
    let e = fails(&["train", "--resume", run_s]);
    assert!(e.contains("trainer_state.json: corrupt"), "{e}");
    std::fs::write(ckpt.join("trainer_state.json"), &state).unwrap();

    std::fs::remove_file(ckpt.join("model/model.safetensors")).unwrap();
    let e = fails(&["train", "--resume", run_s]);
    assert!(e.contains("model.safetensors: missing"), "{e}");

    // the offered fallback: delete the bad checkpoint, resume from step 4
    std::fs::remove_dir_all(&ckpt).unwrap();
    let o = mgrpo(&["train", "--resume", run_s]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(metrics(&run).len(), 8);
}

/// The history must be whole to continue it: a deleted or cut `metrics.jsonl` is refused on
/// resume (it used to restart the curves at the checkpoint silently). A run killed before its
/// first step leaves a step-0 evaluation behind; the next run into the directory redoes it
/// instead of appending a second step-0 line.
#[test]
fn resume_needs_the_whole_history() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let run_s = run.to_str().unwrap();
    train(
        &run,
        &[
            "--set",
            "max_steps=6",
            "--set",
            "save_steps=2",
            "--stop-after",
            "4",
        ],
    );
    let path = run.join("metrics.jsonl");
    let whole = std::fs::read_to_string(&path).unwrap();
    let cut: String = whole.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, cut).unwrap();
    let e = fails(&["train", "--resume", run_s]);
    assert!(
        e.contains("metrics.jsonl") && e.contains("holds 2 step lines") && e.contains("1..=4"),
        "{e}"
    );
    std::fs::remove_file(&path).unwrap();
    let e = fails(&["train", "--resume", run_s]);
    assert!(e.contains("holds 0 step lines"), "{e}");
    std::fs::write(&path, &whole).unwrap();
    let o = mgrpo(&["train", "--resume", run_s]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(metrics(&run).len(), 6);

    // killed before step 1: only config.resolved.toml and a step-0 evaluation are left
    let early = tmp.path().join("early");
    let data = "tests/fixtures/copy-task/train.jsonl";
    let eval_data = format!("eval_dataset={data}");
    let with_eval = [
        "--set",
        &eval_data,
        "--set",
        "eval_limit=4",
        "--set",
        "eval_turns=1",
        "--set",
        "eval_max_new_tokens=2",
    ];
    let mut args = vec!["--set", "max_steps=1"];
    args.extend(with_eval);
    train(&early, &args);
    let eval = early.join("eval/metrics.jsonl");
    let step0: String = std::fs::read_to_string(&eval)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    std::fs::remove_dir_all(early.join("checkpoints")).unwrap();
    std::fs::remove_dir_all(early.join("model")).unwrap();
    std::fs::remove_file(early.join("metrics.jsonl")).unwrap();
    std::fs::write(&eval, format!("{step0}\n")).unwrap();
    train(&early, &args);
    let steps: Vec<u64> = jsonl(&eval)
        .iter()
        .map(|m| m["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, vec![0, 1], "one step-0 line");
}

/// A run that cannot learn says so: answers the verifier cannot find (here: a task whose gold
/// answers no completion states) give reward 0 step after step, and after 10 such steps a
/// warning names the likely causes (it used to train at 0.000 in silence). A run that learns
/// gets no such warning.
#[test]
fn a_reward_stuck_at_zero_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let stuck = train(
        &tmp.path().join("stuck"),
        &[
            "--set",
            "dataset=tests/fixtures/copy-task/palindrome.jsonl",
            "--set",
            "dataset_format=qa",
            "--set",
            "max_steps=12",
        ],
    );
    let err = String::from_utf8_lossy(&stuck.stderr);
    assert!(
        err.contains("reward 0 for 10 steps in a row (through step 10)") && err.contains("format"),
        "{err}"
    );
    let fine = train(&tmp.path().join("fine"), &["--set", "max_steps=12"]);
    assert!(!String::from_utf8_lossy(&fine.stderr).contains("reward 0 for"));
    // each run states the answer extraction its reward used: the format's default
    for (run, extraction) in [("stuck", "anchored"), ("fine", "last_number")] {
        let resolved =
            std::fs::read_to_string(tmp.path().join(run).join("config.resolved.toml")).unwrap();
        assert!(
            resolved.contains(&format!("extraction = \"{extraction}\"")),
            "{run}: {resolved}"
        );
    }
}

/// `mgrpo` under a file-size limit, as a shell's `ulimit -f` sets it (SIGXFSZ at its default,
/// which kills: mgrpo ignores it itself, so that writes past the limit fail as on a full disk,
/// EFBIG instead of ENOSPC, and are reported; it used to die with exit 153 and no message).
#[cfg(target_os = "linux")]
fn with_size_limit(args: &[&str], bytes: u64) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mgrpo"));
    cmd.args(args);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_DFL);
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

/// Every file in `dir`, recursively, relative to it.
fn files_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(
                files_in(&p)
                    .into_iter()
                    .map(|f| format!("{}/{f}", e.file_name().to_string_lossy())),
            );
        } else {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

/// Writes that fail (a full disk) leave no temporary file behind and name the file they were
/// writing: `verify --output` (it used to leave `.NAME.tmp-PID`) and a checkpoint mid-save
/// (the half-written `checkpoints/.tmp-step-N` goes; the run's last complete checkpoint stays).
/// What a killed `convert` left (`.NAME.tmp-PID` of a process that is gone) is removed by the
/// next write of that name; a live writer's is not touched.
#[cfg(target_os = "linux")]
#[test]
fn failed_and_killed_writes_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let rows: String = (0..200)
        .map(|i| format!("{{\"gold\": \"{i}\", \"pred\": \"\\\\boxed{{{i}}}\"}}\n"))
        .collect();
    let input = tmp.path().join("rows.jsonl");
    std::fs::write(&input, rows).unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let verdicts = out.join("verdicts.jsonl");
    let args = [
        "verify",
        "--input",
        input.to_str().unwrap(),
        "--output",
        verdicts.to_str().unwrap(),
    ];
    let o = with_size_limit(&args, 4096);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(&format!("{}: File too large", verdicts.display())),
        "{err}"
    );
    assert_eq!(files_in(&out), Vec::<String>::new());

    // a checkpoint that does not fit: optimizer.bin is ~150 KB
    let run = tmp.path().join("run");
    let run_s = run.to_str().unwrap();
    let args = [
        "train",
        "--config",
        CONFIG,
        "--out",
        run_s,
        "--set",
        "max_steps=4",
        "--set",
        "save_steps=2",
    ];
    let o = with_size_limit(&args, 100_000);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    let last = err.lines().last().unwrap();
    assert!(
        last.contains("optimizer.bin") && !last.contains('\\'),
        "{last}"
    );
    let left: Vec<String> = files_in(&run)
        .into_iter()
        .filter(|f| f.contains("tmp"))
        .collect();
    assert_eq!(left, Vec::<String>::new());

    // a killed convert's temporary directory, and a live one's
    let dead = {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        c.wait().unwrap();
        c.id()
    };
    let dest = tmp.path().join("converted");
    let orphan = tmp.path().join(format!(".converted.tmp-{dead}"));
    let live = tmp
        .path()
        .join(format!(".converted.tmp-{}", std::process::id()));
    for d in [&orphan, &live] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("model.safetensors"), "partial").unwrap();
    }
    let o = mgrpo(&[
        "convert",
        "--model",
        "tests/fixtures/copy-task",
        "--out",
        dest.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!orphan.exists(), "the killed convert's directory stays");
    assert!(live.exists(), "a live writer's directory was removed");
}

/// A copy of the copy-task model with every value of tensor `key` set to `value`.
fn patched_model(dir: &Path, key: &str, value: f32) -> String {
    let src = Path::new("tests/fixtures/copy-task");
    std::fs::create_dir_all(dir).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let mut bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let offsets = &header[key]["data_offsets"];
    let (a, b) = (
        8 + n + offsets[0].as_u64().unwrap() as usize,
        8 + n + offsets[1].as_u64().unwrap() as usize,
    );
    for c in bytes[a..b].chunks_exact_mut(4) {
        c.copy_from_slice(&value.to_le_bytes());
    }
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
    dir.to_str().unwrap().to_string()
}

/// Weights that are not finite are refused when loaded, naming the tensor (they used to
/// generate text with `null` log-probs and exit 0); finite weights whose forward pass
/// overflows stop decoding with an error instead of sampling from NaN logits.
#[test]
fn non_finite_weights_and_logits_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let nan = patched_model(&tmp.path().join("nan"), "model.norm.weight", f32::NAN);
    for cmd in [
        vec!["generate", "--model", &nan, "--prompt", "1"],
        vec![
            "score",
            "--model",
            &nan,
            "--input",
            "tests/fixtures/copy-task/sft.jsonl",
        ],
        vec![
            "train",
            "--config",
            CONFIG,
            "--set",
            &format!("model={nan}"),
        ],
    ] {
        let mut cmd = cmd.clone();
        let out = tmp.path().join("out");
        let out = out.to_str().unwrap();
        if cmd[0] == "train" {
            cmd.extend(["--out", out]);
        }
        let e = fails(&cmd);
        assert!(
            e.contains("model.safetensors")
                && e.contains("tensor `model.norm.weight` holds 32 non-finite value(s)"),
            "{cmd:?}: {e}"
        );
        assert!(!Path::new(out).exists(), "{cmd:?} wrote its run");
    }
    let huge = patched_model(
        &tmp.path().join("huge"),
        "model.layers.0.mlp.up_proj.weight",
        3e38,
    );
    for temperature in ["0", "1"] {
        let e = fails(&[
            "generate",
            "--model",
            &huge,
            "--prompt",
            "1",
            "--temperature",
            temperature,
        ]);
        assert!(e.contains("non-finite logits"), "{e}");
    }
    let e = fails(&[
        "score",
        "--model",
        &huge,
        "--input",
        "tests/fixtures/copy-task/sft.jsonl",
    ]);
    assert!(e.contains("sft.jsonl:1: the log-probs are NaN"), "{e}");
}
