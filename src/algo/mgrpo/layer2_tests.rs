//! Tests of MGRPO's layer 2 (`super`): the query, the selection and augmentation, the caps.

use super::*;
use crate::data::Problem;
use crate::generate::{Completion, FinishReason, GenerateStats};
use crate::reward::{reward_parts, RewardConfig, Turn2Grading};
use crate::rl::loss::{grpo_loss, LossInputs, LossParams, LossType};
use crate::rl::scripted::{problem, test_tokenizer, Scripted};
use crate::text::template::{Ask, PromptTemplate, Turn2};
use crate::text::tokenizer::Tokenizer;
use burn::prelude::*;

const GUIDE: &str = "Wait, let me double-check that.";

#[test]
fn query_is_question_response_and_guide_in_one_assistant_turn() {
    let tok = test_tokenizer();
    let t = PromptTemplate::builtin("qwen-math").unwrap();
    let Turn2 { text, ids, .. } = t
        .turn2(
            &tok,
            Ask::Question("What is 2+3?"),
            "2+3 = 6, so \\boxed{6}.",
            GUIDE,
        )
        .unwrap();
    assert_eq!(
        text,
        "<|im_start|>system\nPlease reason step by step, and put your final answer within \
         \\boxed{}.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n\
         <|im_start|>assistant\n2+3 = 6, so \\boxed{6}.\n\nWait, let me double-check that."
    );
    // ids from the Python `tokenizers` library on the same tokenizer.json: the layer-1
    // prompt's ids unchanged, then the response's, then "\n\n" + guide's — no <|im_end|>,
    // no new turn
    let prompt = tok.encode(&t.render("What is 2+3?")).unwrap();
    assert_eq!(prompt.len(), 78);
    assert_eq!(&ids[..78], &prompt[..]);
    assert_eq!(prompt[70..], [298, 268, 82, 290, 83, 256, 83, 198]);
    let response = [
        17, 10, 18, 262, 220, 21, 11, 260, 78, 220, 59, 287, 87, 288, 90, 21, 92, 13,
    ];
    let guide = [
        198, 198, 54, 64, 265, 11, 220, 272, 83, 277, 68, 220, 67, 292, 65, 272, 12, 66, 257, 66,
        74, 263, 71, 269, 13,
    ];
    assert_eq!(&ids[78..96], &response);
    assert_eq!(&ids[96..], &guide);
    assert!(!ids[78..].contains(&299), "no <|im_end|> inside the turn");
}

fn completion(tok: &Tokenizer, p: usize, s: usize, text: &str) -> Completion {
    let ids = tok.encode(text).unwrap();
    Completion {
        prompt_index: p,
        sample_index: s,
        logprobs: vec![0.0; ids.len()],
        model_logprobs: vec![0.0; ids.len()],
        ids,
        text: Some(text.into()),
        finish_reason: FinishReason::Eos,
    }
}

/// Two problems × three layer-1 answers, and a policy scripted per first answer:
/// call 0 is the selection (one correction each), call 1 the augmentation (H each).
fn scenario(tok: &Tokenizer) -> (Vec<Problem>, Rollout) {
    let problems = vec![problem("p0", "2+3?", "5"), problem("p1", "3+4?", "7")];
    let answers = [
        [r"\boxed{5}", r"\boxed{4}", r"\boxed{3}"],
        [r"\boxed{7}", r"\boxed{1}", r"\boxed{2}"],
    ];
    let t = PromptTemplate::builtin("plain").unwrap();
    let mut completions = Vec::new();
    let mut rewards = Vec::new();
    for (p, group) in answers.iter().enumerate() {
        for (s, a) in group.iter().enumerate() {
            completions.push(completion(tok, p, s, a));
            rewards.push(reward_parts(&problems[p], a, &RewardConfig::default()).unwrap());
        }
    }
    let prompts = problems
        .iter()
        .map(|p| tok.encode(&t.render(&p.question)).unwrap())
        .collect();
    let roll = Rollout {
        prompts,
        completions,
        rewards,
        stats: GenerateStats::default(),
    };
    (problems, roll)
}

fn script(call: usize, prompt: &str, s: usize) -> String {
    let first = |a: &str| prompt.contains(&format!("{a}\n\n"));
    let out = match call {
        0 if first(r"\boxed{4}") => r"It is \boxed{5}.",
        0 if first(r"\boxed{5}") => "Yes, that is right.",
        0 if first(r"\boxed{7}") => r"No: \boxed{8}.",
        0 if first(r"\boxed{1}") => r"\boxed{7}",
        0 => "I cannot find the mistake.",
        1 if first(r"\boxed{4}") => [r"\boxed{5}", r"\boxed{5}", r"so \boxed{9}", r"\boxed{5}"][s],
        1 if first(r"\boxed{5}") => "Confirmed.",
        1 if first(r"\boxed{1}") => [r"\boxed{7}", r"\boxed{2}", r"\boxed{7}", r"\boxed{2}"][s],
        _ => panic!("unexpected call {call} on {prompt:?}"),
    };
    out.to_string()
}

fn params() -> Layer2Params {
    Layer2Params {
        guide_phrases: vec![GUIDE.into(), "Another thought: maybe I can".into()],
        augment_h: 4,
        max_queries: 0,
        on: Layer2On::All,
        scale_rewards: ScaleRewards::Group,
        mask_truncated: false,
        max_new_tokens: 16,
        context: 4096,
    }
}

/// `layer2` with the plain template, corrections graded as the whole turn and seed 7.
fn run_layer2(
    policy: &mut Scripted<'_>,
    tok: &Tokenizer,
    problems: &[&Problem],
    roll: &Rollout,
    p: &Layer2Params,
) -> Layer2 {
    let whole_turn = RewardConfig {
        turn2_graded_on: Turn2Grading::Turn,
        ..RewardConfig::default()
    };
    run_layer2_graded(policy, tok, problems, roll, p, &whole_turn)
}

fn run_layer2_graded(
    policy: &mut Scripted<'_>,
    tok: &Tokenizer,
    problems: &[&Problem],
    roll: &Rollout,
    p: &Layer2Params,
    reward: &RewardConfig,
) -> Layer2 {
    let t = PromptTemplate::builtin("plain").unwrap();
    let mut policy = Policy::new(policy, &t, tok, reward).unwrap();
    layer2(&mut policy, problems, roll, p, 7).unwrap()
}

#[test]
fn selection_keeps_the_corrected_and_augments_them_h_times() {
    let tok = test_tokenizer();
    let (problems, roll) = scenario(&tok);
    let refs: Vec<&Problem> = problems.iter().collect();
    let t = PromptTemplate::builtin("plain").unwrap();
    let mut policy = Scripted::new(&tok, Box::new(script));
    let l2 = run_layer2(&mut policy, &tok, &refs, &roll, &params());
    let s = l2.stats;
    assert_eq!(s.queries, 6);
    // kept: 4→5 (corrected), 5→"Yes" (a right answer confirmed), 1→7 (corrected);
    // dropped: 3 (uncorrected), 7→8 (broken), 2 (uncorrected)
    assert_eq!(s.kept, 3);
    assert_eq!((s.wrong_to_right, s.right_to_wrong), (2, 1));
    let kept_sources: Vec<usize> = l2.kept.iter().map(|&k| l2.queries[k].source).collect();
    assert_eq!(kept_sources, vec![0, 1, 4]);
    // exactly H samples per kept query, and only for the kept queries
    assert_eq!(policy.calls.len(), 2);
    assert_eq!(policy.calls[0].0.len(), 6);
    assert_eq!(policy.calls[0].1.n, 1);
    assert_eq!(policy.calls[1].0.len(), 3);
    assert_eq!(policy.calls[1].1.n, 4);
    let aug = l2.augmented.as_ref().unwrap();
    assert_eq!(aug.completions.len(), 12);
    // every query continues its answer after one of the guide phrases
    for q in &l2.queries {
        let a = roll.text(q.source);
        let prompt = t.render(&refs[roll.completions[q.source].prompt_index].question);
        assert!(
            q.text == format!("{prompt}{a}\n\n{GUIDE}")
                || q.text == format!("{prompt}{a}\n\nAnother thought: maybe I can"),
            "{:?}",
            q.text
        );
        assert_eq!(q.ids, tok.encode(&q.text).unwrap());
    }
    // the confirmed right answer's group is flat: counted, not trained
    assert_eq!((s.groups_with_signal, s.groups_zero_std), (2, 1));
    assert_eq!(l2.experience.samples.len(), 8);
    assert!((s.reward_mean - 9.0 / 12.0).abs() < 1e-6);
    assert!(s.generated_tokens > 0);

    // the layer-2 loss by hand. Group of "4": rewards [1, 1, 0, 1], mean 0.75, unbiased
    // std 0.5 → A = [0.25, 0.25, −0.75, 0.25] / 0.5001. Group of "1": [1, 0, 1, 0], mean
    // 0.5, std sqrt(1/3) → A = ±0.5 / (0.57735 + 1e-4). With π = π_old (r = 1) and β = 0,
    // dapo's loss is −Σ A_i·|o_i| / Σ |o_i|.
    let a = 0.25 / 0.5001;
    let b = 0.5 / (0.577_350_26 + 1e-4);
    let by_query: std::collections::HashMap<usize, Vec<f32>> =
        [(1, vec![a, a, -3.0 * a, a]), (4, vec![b, -b, b, -b])].into();
    let mut want_num = 0.0f64;
    let mut tokens = 0usize;
    let exp = &l2.experience;
    for smp in &exp.samples {
        let source = l2.queries[l2.kept[smp.prompt]].source;
        let want = by_query[&source][aug
            .completions
            .iter()
            .position(|c| c.prompt_index == smp.prompt && c.ids == smp.completion)
            .map(|i| aug.completions[i].sample_index)
            .unwrap()];
        assert!(
            (smp.advantage - want).abs() < 1e-6,
            "{} vs {want}",
            smp.advantage
        );
        want_num += (want * smp.completion.len() as f32) as f64;
        tokens += smp.completion.len();
    }
    let want = -(want_num / tokens as f64) as f32;
    type B = crate::TestBackend;
    let dev = Default::default();
    let t_max = exp
        .samples
        .iter()
        .map(|s| s.completion.len())
        .max()
        .unwrap();
    let n = exp.samples.len();
    let mut mask = vec![0.0f32; n * t_max];
    for (i, smp) in exp.samples.iter().enumerate() {
        for j in t_max - smp.completion.len()..t_max {
            mask[i * t_max + j] = 1.0;
        }
    }
    let zeros = Tensor::<B, 2>::zeros([n, t_max], &dev);
    let inputs = LossInputs {
        logps: zeros.clone(),
        old_logps: Some(zeros),
        ref_logps: None,
        advantages: Tensor::from_data(
            TensorData::new(exp.samples.iter().map(|s| s.advantage).collect(), [n]),
            &dev,
        ),
        mask: Tensor::from_data(TensorData::new(mask, [n, t_max]), &dev),
        entropy_mask: None,
    };
    let lp = LossParams {
        epsilon_low: 0.2,
        epsilon_high: 0.2,
        beta: 0.0,
        loss_type: LossType::Dapo,
        ..LossParams::default()
    };
    let (loss, _) = grpo_loss(inputs, &lp, &exp.counts(8, 16));
    let got = loss.into_scalar();
    assert!((got - want).abs() < 1e-6, "layer-2 loss {got} vs {want}");
    assert!(want.abs() > 1e-3, "the example must not be trivially zero");
}

#[test]
fn layer2_on_and_the_query_cap() {
    let tok = test_tokenizer();
    let (problems, roll) = scenario(&tok);
    let refs: Vec<&Problem> = problems.iter().collect();
    let run = |p: Layer2Params| {
        let mut policy = Scripted::new(&tok, Box::new(script));
        run_layer2(&mut policy, &tok, &refs, &roll, &p)
    };
    let wrong = run(Layer2Params {
        on: Layer2On::Wrong,
        ..params()
    });
    let sources: Vec<usize> = wrong.queries.iter().map(|q| q.source).collect();
    assert_eq!(sources, vec![1, 2, 4, 5]);
    let right = run(Layer2Params {
        on: Layer2On::Right,
        ..params()
    });
    let sources: Vec<usize> = right.queries.iter().map(|q| q.source).collect();
    assert_eq!(sources, vec![0, 3]);
    let capped = run(Layer2Params {
        max_queries: 2,
        ..params()
    });
    assert_eq!(capped.stats.queries, 2);
    // a context too small for any correction: every query dropped and counted
    let tight = run(Layer2Params {
        context: 10,
        ..params()
    });
    assert_eq!((tight.stats.queries, tight.stats.too_long), (6, 6));
    assert!(tight.experience.samples.is_empty());
    // nothing corrected: no augmentation call, empty experience
    let mut policy = Scripted::new(&tok, Box::new(|_, _, _| "no idea".to_string()));
    let none = run_layer2(&mut policy, &tok, &refs, &roll, &params());
    // graded as the whole turn, the two right first answers stay right when the correction
    // adds no answer; graded on the correction alone (the default), none is right
    assert_eq!(none.stats.kept, 2);
    let mut policy = Scripted::new(&tok, Box::new(|_, _, _| "no idea".to_string()));
    let strict = run_layer2_graded(
        &mut policy,
        &tok,
        &refs,
        &roll,
        &params(),
        &RewardConfig::default(),
    );
    assert_eq!((strict.stats.kept, strict.stats.right_to_wrong), (0, 2));
    // the scenario's "Yes" confirms without restating: not kept when graded on its own
    let mut policy = Scripted::new(&tok, Box::new(script));
    let strict = run_layer2_graded(
        &mut policy,
        &tok,
        &refs,
        &roll,
        &params(),
        &RewardConfig::default(),
    );
    assert_eq!(strict.stats.kept, 2);
    let mut policy = Scripted::new(&tok, Box::new(|_, _, _| r"\boxed{0}".to_string()));
    let broken = run_layer2(&mut policy, &tok, &refs, &roll, &params());
    assert_eq!((broken.stats.kept, broken.stats.right_to_wrong), (0, 2));
    assert_eq!(
        policy.calls.len(),
        1,
        "no augmentation when nothing is kept"
    );
    assert!(broken.experience.samples.is_empty());
}

/// Layer 2's selection judges a correction with the run's reward set: by default the
/// `accuracy` verdict; with `correct_threshold`, the weighted total reaching it (here: a right
/// answer that is also boxed).
#[test]
fn selection_uses_the_reward_sets_notion_of_correct() {
    let tok = test_tokenizer();
    let (problems, roll) = scenario(&tok);
    let refs: Vec<&Problem> = problems.iter().collect();
    let boxed_and_right = RewardConfig {
        funcs: vec!["accuracy".into(), "format".into()],
        correct_threshold: Some(2.0),
        ..RewardConfig::default()
    };
    let kept = |reply: &'static str, reward: &RewardConfig| {
        let mut policy = Scripted::new(&tok, Box::new(move |_, _, _| reply.to_string()));
        run_layer2_graded(&mut policy, &tok, &refs, &roll, &params(), reward)
            .stats
            .kept
    };
    // "the answer is 5" is right for p0's three queries, unboxed
    assert_eq!(kept("So the answer is 5.", &RewardConfig::default()), 3);
    assert_eq!(kept("So the answer is 5.", &boxed_and_right), 0);
    assert_eq!(kept(r"So \boxed{5}.", &boxed_and_right), 3);
}
