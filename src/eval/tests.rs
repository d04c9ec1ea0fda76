use super::*;

#[test]
fn metrics_by_hand() {
    // 10 problems: 4 right→right, 2 wrong→right, 1 right→wrong, 3 wrong→wrong
    let mut v = vec![(true, true); 4];
    v.extend([(false, true); 2]);
    v.push((true, false));
    v.extend([(false, false); 3]);
    let m = TwoTurnMetrics::from_verdicts(&v);
    assert_eq!(m.n, 10);
    assert!((m.acc_t1 - 0.5).abs() < 1e-12);
    assert!((m.acc_t2 - 0.6).abs() < 1e-12);
    assert!((m.delta_i_to_c - 0.2).abs() < 1e-12);
    assert!((m.delta_c_to_i - 0.1).abs() < 1e-12);
    assert!((m.delta - 0.1).abs() < 1e-12);
    assert!((m.delta - (m.acc_t2 - m.acc_t1)).abs() < 1e-12);
    let t = table(&[("gsm8k".into(), m)], 2);
    assert!(
        t.contains("| gsm8k | 10 | 50.0 | 60.0 | 10.0 | 20.0 | 10.0 |"),
        "{t}"
    );
    // a drop: Δ negative
    let m = TwoTurnMetrics::from_verdicts(&[(true, false), (true, true), (false, false)]);
    assert!((m.delta + 1.0 / 3.0).abs() < 1e-12);
    assert!(table(&[("x".into(), m)], 2).contains("| -33.3 | 0.0 | 33.3 |"));
    // no problems: zeros, no NaN (checked below)
    let m = TwoTurnMetrics::from_verdicts(&[]);
    assert_eq!((m.n, m.acc_t1, m.delta), (0, 0.0, 0.0));
}

#[test]
fn two_turns_on_a_scripted_policy() {
    use crate::reward::RewardConfig;
    use crate::rl::scripted::{problem, test_tokenizer, Scripted};
    let tok = test_tokenizer();
    let problems = [
        problem("a", "1+1?", "2"),
        problem("b", "2+2?", "4"),
        problem("c", "3+3?", "6"),
        problem("d", "4+4?", "8"),
    ];
    let refs: Vec<&Problem> = problems.iter().collect();
    let t = PromptTemplate::builtin("plain").unwrap();
    let prompts: Vec<Vec<u32>> = refs
        .iter()
        .map(|p| tok.encode(&t.render(&p.question)).unwrap())
        .collect();
    // a: right, confirmed (right→right); b: wrong, fixed (i→c); c: right, broken (c→i);
    // d: wrong, unchanged
    let script = |call: usize, prompt: &str, _: usize| -> String {
        let q = &prompt[..4];
        match (call, q) {
            (0, "1+1?") => r"\boxed{2}",
            (0, "2+2?") => r"\boxed{5}",
            (0, "3+3?") => r"\boxed{6}",
            (0, _) => r"\boxed{9}",
            (1, "1+1?") => "Yes.",
            (1, "2+2?") => r"Oops: \boxed{4}",
            (1, "3+3?") => r"Hmm, \boxed{7}",
            (1, _) => "Still the same.",
            _ => panic!("a third turn"),
        }
        .to_string()
    };
    let mut scripted = Scripted::new(&tok, Box::new(script));
    let settings = EvalSettings {
        turns: 2,
        guide: INTRINSIC_INSTRUCTION.into(),
        max_new_tokens: 8,
        seed: 0,
        samples: 1,
        new_user_turn: false,
    };
    // graded on the continuation (the default): "Yes." gives no answer, so it is wrong
    let reward = RewardConfig::default();
    let mut policy = Policy::new(&mut scripted, &t, &tok, &reward).unwrap();
    let (results, m) = evaluate(&mut policy, &refs, prompts.clone(), &settings).unwrap();
    let verdicts = |results: &[ProblemResult]| -> Vec<(bool, bool)> {
        results
            .iter()
            .map(|r| (r.turn1_correct, r.turn2_correct))
            .collect()
    };
    assert_eq!(
        verdicts(&results),
        [(true, false), (false, true), (true, false), (false, false)]
    );
    assert_eq!(results[0].turn2_answer, None);
    assert_eq!((m.acc_t1, m.acc_t2), (0.5, 0.25));
    assert_eq!((m.delta_i_to_c, m.delta_c_to_i), (0.25, 0.5));
    // graded on the whole turn: "Yes." keeps the first answer
    let mut scripted = Scripted::new(&tok, Box::new(script));
    let whole_turn = RewardConfig {
        turn2_graded_on: crate::reward::Turn2Grading::Turn,
        ..RewardConfig::default()
    };
    let mut policy = Policy::new(&mut scripted, &t, &tok, &whole_turn).unwrap();
    let (results, m) = evaluate(&mut policy, &refs, prompts.clone(), &settings).unwrap();
    assert_eq!(
        scripted.calls[1].0[1],
        format!("2+2?\n\\boxed{{5}}\n\n{INTRINSIC_INSTRUCTION}")
    );
    assert_eq!(
        verdicts(&results),
        [(true, true), (false, true), (true, false), (false, false)]
    );
    assert_eq!(results[0].turn2_answer.as_deref(), Some("2"));
    assert_eq!(results[1].turn1_answer.as_deref(), Some("5"));
    assert_eq!(results[1].turn2_answer.as_deref(), Some("4"));
    assert_eq!(results[2].turn2.as_deref(), Some(r"Hmm, \boxed{7}"));
    assert_eq!((m.acc_t1, m.acc_t2, m.delta), (0.5, 0.5, 0.0));
    assert_eq!((m.delta_i_to_c, m.delta_c_to_i), (0.25, 0.25));
    // as a new user turn: the instruction after the closed first answer, and the second
    // answer is its own turn (graded alone even under `turn`: "Yes." states nothing)
    let mut scripted = Scripted::new(&tok, Box::new(script));
    let new_turn = EvalSettings {
        new_user_turn: true,
        ..settings.clone()
    };
    let mut policy = Policy::new(&mut scripted, &t, &tok, &whole_turn).unwrap();
    let (results, _) = evaluate(&mut policy, &refs, prompts.clone(), &new_turn).unwrap();
    assert_eq!(
        scripted.calls[1].0[1],
        format!("2+2?\n\\boxed{{5}}\n\n{INTRINSIC_INSTRUCTION}\n")
    );
    assert_eq!(
        verdicts(&results),
        [(true, false), (false, true), (true, false), (false, false)]
    );
    // one turn: no second call, t2 = t1
    let mut scripted = Scripted::new(&tok, Box::new(script));
    let one = EvalSettings {
        turns: 1,
        ..settings
    };
    let mut policy = Policy::new(&mut scripted, &t, &tok, &reward).unwrap();
    let (results, m) = evaluate(&mut policy, &refs, prompts, &one).unwrap();
    assert_eq!(scripted.calls.len(), 1);
    assert!(results.iter().all(|r| r.turn2.is_none()));
    assert_eq!((m.acc_t1, m.acc_t2, m.delta), (0.5, 0.5, 0.0));
}

/// Two samples per problem: turn 1 draws each problem twice, each draw is continued once,
/// the lines come problem by problem with their sample index, and the metrics are the
/// per-problem means (a: right then wrong at t1, both fixed or kept; b: both wrong, one
/// fixed).
#[test]
fn several_samples_per_problem() {
    use crate::reward::RewardConfig;
    use crate::rl::scripted::{problem, test_tokenizer, Scripted};
    let tok = test_tokenizer();
    let problems = [problem("a", "1+1?", "2"), problem("b", "2+2?", "4")];
    let refs: Vec<&Problem> = problems.iter().collect();
    let t = PromptTemplate::builtin("plain").unwrap();
    let prompts: Vec<Vec<u32>> = refs
        .iter()
        .map(|p| tok.encode(&t.render(&p.question)).unwrap())
        .collect();
    let script = |call: usize, prompt: &str, sample: usize| -> String {
        match (call, &prompt[..4], sample) {
            (0, "1+1?", 0) => r"\boxed{2}",
            (0, "1+1?", _) => r"\boxed{3}",
            (0, _, _) => r"\boxed{5}",
            // turn 2 sees its own first answer
            (1, "1+1?", _) => r"\boxed{2}",
            (1, _, _) => r"\boxed{4}",
            _ => panic!("a third turn"),
        }
        .to_string()
    };
    let mut scripted = Scripted::new(&tok, Box::new(script));
    let settings = EvalSettings {
        turns: 2,
        guide: "Check.".into(),
        max_new_tokens: 8,
        seed: 0,
        samples: 2,
        new_user_turn: false,
    };
    let reward = RewardConfig::default();
    let mut policy = Policy::new(&mut scripted, &t, &tok, &reward).unwrap();
    let (results, m) = evaluate(&mut policy, &refs, prompts, &settings).unwrap();
    let lines: Vec<(&str, Option<usize>, bool, bool)> = results
        .iter()
        .map(|r| (r.id.as_str(), r.sample, r.turn1_correct, r.turn2_correct))
        .collect();
    assert_eq!(
        lines,
        [
            ("a", Some(0), true, true),
            ("a", Some(1), false, true),
            ("b", Some(0), false, true),
            ("b", Some(1), false, true),
        ]
    );
    // turn 1: n = 2 per prompt; turn 2: one continuation of each of the 4 first answers
    assert_eq!((scripted.calls[0].1.n, scripted.calls[0].0.len()), (2, 2));
    assert_eq!((scripted.calls[1].1.n, scripted.calls[1].0.len()), (1, 4));
    assert!(scripted.calls[1].0[1].contains(r"\boxed{3}"));
    assert_eq!((m.n, m.samples), (2, 2));
    // Acc@t1: a ½, b 0 → ¼; Acc@t2: 1; Δi→c: a ½, b 1 → ¾
    assert_eq!((m.acc_t1, m.acc_t2, m.delta_i_to_c), (0.25, 1.0, 0.75));
}

/// The recorded answer is found the way the grader found it: under `extraction =
/// last_math`, an unmarked `$2$` is both graded right and recorded.
#[test]
fn recorded_answers_follow_the_extraction_policy() {
    use crate::reward::RewardConfig;
    use crate::rl::scripted::{problem, test_tokenizer, Scripted};
    use crate::verify::Extraction;
    let tok = test_tokenizer();
    let problems = [problem("a", "1+1?", "2")];
    let refs: Vec<&Problem> = problems.iter().collect();
    let t = PromptTemplate::builtin("plain").unwrap();
    let prompts = vec![tok.encode(&t.render("1+1?")).unwrap()];
    let settings = EvalSettings {
        turns: 1,
        guide: String::new(),
        max_new_tokens: 8,
        seed: 0,
        samples: 1,
        new_user_turn: false,
    };
    let mut reward = RewardConfig::default();
    reward.policy.extraction = Some(Extraction::LastMath);
    let script = |_: usize, _: &str, _: usize| "So it is $2$.".to_string();
    let mut scripted = Scripted::new(&tok, Box::new(script));
    let mut policy = Policy::new(&mut scripted, &t, &tok, &reward).unwrap();
    let (results, _) = evaluate(&mut policy, &refs, prompts, &settings).unwrap();
    assert!(results[0].turn1_correct);
    assert_eq!(results[0].turn1_answer.as_deref(), Some("2"));
}
