use super::*;
use crate::data::Problem;
use crate::reward::CommandSpec;
use crate::rl::scripted::problem;

fn config(funcs: &[&str]) -> RewardConfig {
    RewardConfig {
        funcs: funcs.iter().map(|s| s.to_string()).collect(),
        ..RewardConfig::default()
    }
}

fn sh(script: &str) -> CommandSpec {
    CommandSpec {
        command: vec!["sh".into(), "-c".into(), script.into()],
        timeout_s: 10.0,
    }
}

/// Token ids for the rows' completions (the first `n` for an `n`-token completion).
const IDS: [u32; 16] = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20];

fn rows<'a>(p: &'a Problem, texts: &[&'a str], tokens: &[usize]) -> Vec<RewardInput<'a>> {
    texts
        .iter()
        .zip(tokens)
        .map(|(t, &n)| RewardInput {
            problem: p,
            prompt: "Q\n",
            completion: t,
            completion_ids: &IDS[..n.min(IDS.len())],
            completion_tokens: n,
            max_completion_tokens: 10,
        })
        .collect()
}

/// total = Σ wᵢ·scoreᵢ; "correct" is the accuracy verdict, whatever the other rewards add.
#[test]
fn weighted_total_and_the_accuracy_judge() {
    let p = problem("p", "1+1?", "2");
    let mut c = config(&["accuracy", "format", "soft_overlong_punishment"]);
    c.weights = Some(vec![1.0, 0.25, 2.0]);
    c.soft_punish_cache = Some(4);
    let set = c.reward_set().unwrap();
    // 10-token budget, 4-token cache: free up to 6; 8 tokens → (6 − 8)/4 = −0.5
    let got = set
        .grade(&rows(&p, &["\\boxed{2}", "2", "\\boxed{3}"], &[8, 3, 10]))
        .unwrap();
    assert_eq!(got[0].scores, vec![1.0, 1.0, -0.5]);
    assert_eq!(got[0].total, 1.0 + 0.25 - 1.0);
    assert!(got[0].correct);
    assert_eq!(
        got[1].scores,
        vec![0.0, 0.0, 0.0],
        "no box, no anchor: no answer"
    );
    assert!(!got[1].correct);
    assert_eq!(got[2].scores, vec![0.0, 1.0, -1.0]);
    assert_eq!(got[2].total, 0.25 - 2.0);
    assert!(!got[2].correct && got[2].formatted);
    // mean and unbiased std per reward, under TRL's metric names
    let stats = set.stats(&got);
    assert_eq!(stats["rewards/accuracy/mean"], 1.0 / 3.0);
    let sd = ((4.0f32 / 9.0 + 2.0 / 9.0) / 2.0).sqrt(); // values 1, 0, 0: √(1/3)
    assert!((stats["rewards/accuracy/std"] - sd).abs() < 1e-6);
    assert_eq!(stats["rewards/soft_overlong_punishment/mean"], -0.5);
    assert_eq!(stats.len(), 6);
}

/// With `correct_threshold`, "correct" is the weighted total reaching it.
#[test]
fn a_threshold_decides_correct() {
    let p = problem("p", "q", "2");
    let mut c = config(&["accuracy", "format"]);
    c.correct_threshold = Some(1.5);
    let got = c
        .reward_set()
        .unwrap()
        .grade(&rows(&p, &["\\boxed{2}", "2 is the answer"], &[1, 1]))
        .unwrap();
    assert_eq!((got[0].total, got[0].correct), (2.0, true));
    // GSM8K-style last number is off for MATH problems: no answer at all
    assert_eq!((got[1].total, got[1].correct), (0.0, false));
}

/// An external command gets one JSON row per completion (the dataset's own fields included)
/// and its numbers come back in order.
#[test]
fn an_external_command_reads_rows_and_writes_numbers() {
    let mut p = problem("p7", "What is 3+4?", "7");
    p.fields.insert("length".into(), serde_json::json!(3));
    p.fields
        .insert("answer".into(), serde_json::json!("#### 7"));
    let mut c = config(&["echo_length"]);
    c.correct_threshold = Some(3.0);
    // each row's `length` field (the dataset's) plus its completion_length (ours), plus one
    // for each field as TRL hands it: the dataset's `answer` untouched, the question as
    // `prompt` (the dataset has no prompt column), `completion_ids`; and ours beside them
    let script = "python3 -c 'import json,sys\nfor l in sys.stdin:\n r=json.loads(l); print(r[\"length\"] + r[\"completion_length\"] + (r[\"answer\"] == \"#### 7\") + (r[\"gold_answer\"] == \"7\") + (r[\"prompt\"] == \"What is 3+4?\") + (r[\"prompt_text\"] == \"Q\\n\") + (len(r[\"completion_ids\"]) == r[\"completion_length\"]))'";
    c.commands.insert("echo_length".into(), sh(script));
    let set = c.reward_set().unwrap();
    assert_eq!(set.names(), vec!["echo_length"]);
    let got = set.grade(&rows(&p, &["a", "b"], &[0, 5])).unwrap();
    // 3 + tokens + 5 (before TRL's rows: `answer` was overwritten by the gold answer and
    // `prompt` was the templated text)
    assert_eq!(got[0].total, 8.0);
    assert_eq!(got[1].total, 13.0);
    assert!(got[0].correct && got[1].correct);
    // the row as the program reads it
    let row = super::super::command::row_json(&rows(&p, &["x"], &[2])[0]);
    assert_eq!(row["question"], "What is 3+4?");
    assert_eq!(row["id"], "p7");
    assert_eq!(row["max_completion_length"], 10);
    assert_eq!(row["completion_ids"], serde_json::json!([5, 6]));
    // a dataset with a prompt column: TRL's `prompts` are that column, and the dataset's own
    // `id` and `completion` columns: the id stays, the completion is the generated one
    p.fields
        .insert("prompt".into(), serde_json::json!("What is 2+3?"));
    p.fields.insert("id".into(), serde_json::json!(41));
    p.fields
        .insert("completion".into(), serde_json::json!("a reference"));
    let row = super::super::command::row_json(&rows(&p, &["x"], &[2])[0]);
    assert_eq!(row["prompt"], "What is 2+3?");
    assert_eq!(row["prompt_text"], "Q\n");
    assert_eq!(row["id"], 41);
    assert_eq!(row["completion"], "x");
}

fn err(c: &RewardConfig, n: usize) -> String {
    let p = problem("bad-7", "q", "1");
    let texts = vec!["x"; n];
    let tokens = vec![1; n];
    let e = c.reward_set().unwrap().grade(&rows(&p, &texts, &tokens));
    e.expect_err("an error").to_string()
}

/// Every way a command can fail is an error naming the reward (and the row, where there is
/// one); none hangs past its timeout.
#[test]
fn command_failures_name_the_reward_and_the_row() {
    let with = |spec: CommandSpec| {
        let mut c = config(&["mine"]);
        c.correct_threshold = Some(1.0);
        c.commands.insert("mine".into(), spec);
        c
    };
    let e = err(&with(sh("cat >/dev/null; echo 1; echo oops")), 2);
    assert!(e.starts_with("reward `mine`: "), "{e}");
    assert!(
        e.contains("line 2 (row 2, problem `bad-7`): `oops` is neither a finite number nor None"),
        "{e}"
    );
    let e = err(&with(sh("cat >/dev/null; echo 1")), 3);
    assert!(e.contains("wrote 1 lines for 3 rows"), "{e}");
    let e = err(&with(sh("cat >/dev/null; echo inf")), 1);
    assert!(
        e.contains("`inf` is neither a finite number nor None"),
        "{e}"
    );
    let e = err(
        &with(sh("echo 'Traceback: KeyError length' >&2; exit 3")),
        1,
    );
    assert!(
        e.contains("failed (exit status: 3)") && e.contains("KeyError length"),
        "{e}"
    );
    let slow = CommandSpec {
        timeout_s: 0.3,
        ..sh("sleep 5; echo 1")
    };
    let t = std::time::Instant::now();
    let e = err(&with(slow), 1);
    assert!(
        e.contains("did not finish 1 rows within timeout_s = 0.3 s"),
        "{e}"
    );
    assert!(
        t.elapsed().as_secs_f64() < 3.0,
        "the timeout was not enforced"
    );
    let missing = CommandSpec {
        command: vec!["/nonexistent/reward-program".into()],
        timeout_s: 1.0,
    };
    let e = err(&with(missing), 1);
    assert!(
        e.contains("cannot start `/nonexistent/reward-program`"),
        "{e}"
    );
    // a program that ignores its input still works (and is not killed by a closed pipe)
    let c = with(sh("for i in $(seq 2000); do echo 1; done"));
    let p = problem("p", "q", "1");
    let long = "y".repeat(10_000);
    let texts = vec![long.as_str(); 2000];
    let got = c
        .reward_set()
        .unwrap()
        .grade(&rows(&p, &texts, &vec![1; 2000]))
        .unwrap();
    assert_eq!(got.len(), 2000);
}

#[test]
fn bad_reward_keys_are_named() {
    let key = |c: RewardConfig| c.validate().unwrap_err().key;
    assert_eq!(key(config(&[])), "funcs");
    assert_eq!(key(config(&["accuracy", "accuracy"])), "funcs");
    assert_eq!(key(config(&["accuracy", "palindrome"])), "funcs");
    let mut c = config(&["accuracy", "format"]);
    c.weights = Some(vec![1.0]);
    assert_eq!(key(c.clone()), "weights");
    c.weights = Some(vec![1.0, f32::NAN]);
    assert_eq!(key(c), "weights");
    let mut c = config(&["accuracy"]);
    c.commands.insert("unused".into(), sh("echo 1"));
    assert_eq!(key(c), "commands.unused");
    let mut c = config(&["format"]);
    c.commands.insert("format".into(), sh("echo 1"));
    assert_eq!(key(c), "commands.format");
    let mut c = config(&["mine"]);
    c.commands.insert("mine".into(), sh("echo 1"));
    assert_eq!(
        key(c.clone()),
        "correct_threshold",
        "no accuracy, no threshold"
    );
    c.correct_threshold = Some(1.0);
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e20] {
        // 1e20 s passed validation and then panicked building its Duration
        c.commands.get_mut("mine").unwrap().timeout_s = bad;
        assert_eq!(key(c.clone()), "commands.mine.timeout_s", "{bad}");
    }
    c.commands.get_mut("mine").unwrap().command = vec![];
    assert_eq!(key(c), "commands.mine.command");
    assert_eq!(
        key(config(&["accuracy", "soft_overlong_punishment"])),
        "soft_punish_cache"
    );
    assert_eq!(
        key(config(&["accuracy", "coin"])),
        "coin_p",
        "coin without p"
    );
    let mut c = config(&["accuracy", "coin"]);
    c.coin_p = Some(1.5);
    assert_eq!(key(c.clone()), "coin_p", "p above 1");
    c.coin_p = Some(0.25);
    assert!(c.validate().is_ok());
    let mut c = config(&["accuracy"]);
    c.coin_p = Some(0.25);
    assert_eq!(key(c), "coin_p", "p without the coin");
    assert!(RewardConfig::default().validate().is_ok());
}

/// The random-reward control's set: `accuracy` at weight 0 beside the coin. The advantage
/// sees only the coin, while "correct" (Acc@t1, the logged accuracy) is still the verifier's.
#[test]
fn a_coin_control_trains_on_the_coin_and_judges_with_the_verifier() {
    let mut c = config(&["accuracy", "coin"]);
    c.weights = Some(vec![0.0, 1.0]);
    c.coin_p = Some(0.5);
    let set = c.reward_set().unwrap();
    let p = problem("q", "What is 2+3?", "5");
    let texts: Vec<String> = (0..64)
        .map(|i| format!("\\boxed{{{}}}", 5 + i % 2))
        .collect();
    let rows: Vec<_> = texts.iter().map(|t| RewardInput::text(&p, t)).collect();
    let parts = set.grade(&rows).unwrap();
    for (i, part) in parts.iter().enumerate() {
        assert_eq!(part.correct, i % 2 == 0, "row {i}");
        assert_eq!(part.total, part.scores[1], "row {i}: the total is the coin");
    }
    let ones = parts.iter().filter(|p| p.total == 1.0).count();
    assert!((16..=48).contains(&ones), "{ones} of 64 heads");
    // heads fall on right and wrong answers alike
    assert!(parts.iter().any(|p| p.correct && p.total == 0.0));
    assert!(parts.iter().any(|p| !p.correct && p.total == 1.0));
}

/// TRL's None: a command's `None`/`null`/`nan` line leaves the row unscored by it. The total is
/// the weighted sum of the scores given (`nansum`), NaN when none was; the per-function
/// statistics are over the rows each function scored, and a function that scored none has none.
#[test]
fn none_is_no_opinion() {
    let p = problem("p", "1+1?", "2");
    let mut c = config(&["accuracy", "mine", "theirs"]);
    c.weights = Some(vec![0.0, 1.0, 0.5]);
    c.correct_threshold = Some(0.5);
    c.commands.insert(
        "mine".into(),
        sh("cat >/dev/null; printf 'None\\n1\\nnull\\n'"),
    );
    c.commands.insert(
        "theirs".into(),
        sh("cat >/dev/null; printf '2\\nNaN\\nnone\\n'"),
    );
    let set = c.reward_set().unwrap();
    let got = set
        .grade(&rows(&p, &["\\boxed{2}", "x", "\\boxed{3}"], &[3, 1, 3]))
        .unwrap();
    assert!(got[0].scores[1].is_nan() && got[0].scores[2] == 2.0);
    assert_eq!(got[0].total, 1.0, "0·1 + 0.5·2, mine abstaining");
    assert_eq!(got[1].total, 1.0);
    // accuracy (weight 0) scored the third row, so it has a total: 0
    assert_eq!(got[2].total, 0.0);
    let stats = set.stats(&got);
    assert_eq!(stats["rewards/mine/mean"], 1.0);
    assert_eq!(stats["rewards/mine/std"], 0.0);
    assert_eq!(stats["rewards/theirs/mean"], 2.0);
    // without accuracy, a row nobody scored has no reward at all
    let mut c = config(&["mine"]);
    c.correct_threshold = Some(0.5);
    c.commands
        .insert("mine".into(), sh("cat >/dev/null; printf 'None\\nNone\\n'"));
    let got = c
        .reward_set()
        .unwrap()
        .grade(&rows(&p, &["a", "b"], &[1, 1]))
        .unwrap();
    assert!(got.iter().all(|g| g.total.is_nan() && !g.correct));
    let stats = c.reward_set().unwrap().stats(&got);
    assert!(!stats.contains_key("rewards/mine/mean"), "{stats:?}");
    assert!(weighted_total(&[f32::NAN, f32::NAN], &[1.0, 1.0]).is_nan());
    assert_eq!(weighted_total(&[f32::NAN, 3.0], &[1.0, 0.5]), 1.5);
}
