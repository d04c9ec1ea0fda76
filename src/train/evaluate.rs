//! Two-turn evaluation during training (`eval_dataset`, `eval_steps`): before the first step,
//! every `eval_steps` steps and after the last, the policy answers the held-out problems
//! (`eval/step-N.jsonl`, every problem's two answers) and the Table-2 row is appended to
//! `eval/metrics.jsonl`.

use crate::fused::FusedBackend;
use std::path::Path;

use super::config::TrainConfig;
use crate::data::{Dataset, Problem};
use crate::error::{Error, Result};
use crate::eval::{
    encode_prompts, eval_room, evaluate, write_results, EvalSettings, TwoTurnMetrics,
};
use crate::generate::{GenerateConfig, SamplingParams, StopStrings};
use crate::metrics::JsonlLog;
use crate::model::{CausalLm, ModelConfig};
use crate::rl::policy::Policy;
use crate::rl::rollout::ModelSampler;
use crate::text::template::PromptTemplate;
use crate::text::tokenizer::Tokenizer;

/// The held-out problems and their prompts.
pub struct EvalSet {
    pub problems: Vec<Problem>,
    pub prompts: Vec<Vec<u32>>,
}

impl EvalSet {
    /// `eval_dataset` (its first `eval_limit` problems), or `None` when the key is unset.
    pub fn load(
        cfg: &TrainConfig,
        template: &PromptTemplate,
        tokenizer: &Tokenizer,
        context: usize,
    ) -> Result<Option<Self>> {
        let Some(path) = &cfg.eval_dataset else {
            return Ok(None);
        };
        let format = cfg
            .eval_dataset_format
            .as_deref()
            .map(str::parse)
            .transpose()?;
        let dataset = Dataset::load(path, format)?;
        dataset.check_unique_ids()?;
        let mut problems = dataset.problems;
        if problems.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: no problems (key `eval_dataset`)",
                path.display()
            )));
        }
        problems.truncate(cfg.eval_limit.unwrap_or(usize::MAX));
        let room = eval_room(
            tokenizer,
            template,
            cfg.eval_turns,
            cfg.eval_max_new_tokens(),
            &cfg.eval_guide(),
            false,
        )?;
        let prompts = encode_prompts(&problems, template, tokenizer, room, context, path)?;
        Ok(Some(Self { problems, prompts }))
    }
}

/// What [`run_eval`] needs besides the model.
pub struct EvalContext<'a> {
    pub cfg: &'a TrainConfig,
    pub set: &'a EvalSet,
    pub template: &'a PromptTemplate,
    pub tokenizer: &'a Tokenizer,
    pub model_config: &'a ModelConfig,
    pub eos_ids: &'a [u32],
}

/// Evaluate `model` after `step` steps and record the results under `run/eval/`.
pub fn run_eval<B: FusedBackend>(
    ctx: &EvalContext<'_>,
    model: &CausalLm<B>,
    step: usize,
    run: &Path,
    device: &B::Device,
) -> Result<TwoTurnMetrics> {
    let cfg = ctx.cfg;
    let budget = cfg.eval_max_new_tokens();
    let sampler = ModelSampler {
        model,
        config: ctx.model_config,
        tokenizer: ctx.tokenizer,
        gen: GenerateConfig {
            sampling: SamplingParams {
                temperature: cfg.eval_temperature,
                top_p: cfg.top_p,
                top_k: cfg.top_k,
                min_p: cfg.min_p,
                repetition_penalty: cfg.repetition_penalty,
                ..SamplingParams::default()
            },
            batch_size: match cfg.decode_batch_size {
                0 => ctx.set.problems.len().max(1),
                n => n,
            },
            eos_ids: ctx.eos_ids.to_vec(),
            stop: StopStrings::default(),
            ..GenerateConfig::default()
        },
        device,
    };
    let settings = EvalSettings {
        turns: cfg.eval_turns,
        guide: cfg.eval_guide(),
        max_new_tokens: budget,
        seed: cfg.seed ^ 0xE7A1,
        samples: cfg.eval_samples,
        new_user_turn: false,
    };
    let problems: Vec<&Problem> = ctx.set.problems.iter().collect();
    let mut policy = Policy::new(sampler, ctx.template, ctx.tokenizer, &cfg.reward)?;
    let (results, m) = evaluate(&mut policy, &problems, ctx.set.prompts.clone(), &settings)?;
    let dir = run.join("eval");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    write_results(&dir.join(format!("step-{step}.jsonl")), &results)?;
    let mut row = serde_json::to_value(m).map_err(|e| Error::serialize("eval metrics", e))?;
    row["step"] = step.into();
    JsonlLog::new(dir.join("metrics.jsonl")).append(&row)?;
    tracing::info!(
        step,
        acc_t1 = m.acc_t1,
        acc_t2 = m.acc_t2,
        delta_i_to_c = m.delta_i_to_c,
        delta_c_to_i = m.delta_c_to_i,
        "eval"
    );
    Ok(m)
}

/// One line of `eval/metrics.jsonl`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct EvalRow {
    pub step: usize,
    #[serde(flatten)]
    pub m: TwoTurnMetrics,
}

/// A run's evaluations in step order (`eval/metrics.jsonl`); an error naming the file if the run
/// has none.
pub fn read_eval_log(run: &Path) -> Result<Vec<EvalRow>> {
    let log = JsonlLog::new(run.join("eval").join("metrics.jsonl"));
    if !log.path().is_file() {
        return Err(Error::Invalid(format!(
            "{}: no evaluations (a run with `eval_dataset` and `eval_steps` writes them)",
            log.path().display()
        )));
    }
    let mut rows: Vec<EvalRow> = log.read()?;
    rows.sort_by_key(|r| r.step);
    Ok(rows)
}

/// The per-problem results of the evaluation after `step` steps.
fn step_results(run: &Path, step: usize) -> std::path::PathBuf {
    run.join("eval").join(format!("step-{step}.jsonl"))
}

/// The run's Table 2 from `eval/metrics.jsonl`: one row per evaluation, the first labelled as
/// the start model and the last as the trained one, then the last against the first problem
/// by problem (paired intervals). Written to `results.md`, with `eval.png` (Acc@t1 and Acc@t2
/// against the step) and `eval_corrections.png` (Δi→c and Δc→i); `None` when the run had no
/// evaluation.
pub fn eval_report(run: &Path, algorithm: &str, turns: usize) -> Result<Option<String>> {
    let log = JsonlLog::new(run.join("eval").join("metrics.jsonl"));
    if !log.path().is_file() {
        return Ok(None);
    }
    let rows: Vec<EvalRow> = log.read()?;
    let Some(last) = rows.last().map(|r| r.step) else {
        return Ok(None);
    };
    let named: Vec<(String, TwoTurnMetrics)> = rows
        .iter()
        .map(|r| {
            let name = match r.step {
                0 => "start model (step 0)".to_string(),
                s if s == last => format!("after {algorithm} (step {s})"),
                s => format!("step {s}"),
            };
            (name, r.m)
        })
        .collect();
    let table = crate::eval::table(&named, turns);
    let curve = |f: fn(&TwoTurnMetrics) -> f64| -> Vec<(f64, f64)> {
        rows.iter().map(|r| (r.step as f64, f(&r.m))).collect()
    };
    let mut series = vec![crate::metrics::plot::Series {
        name: "Acc@t1",
        color: [31, 119, 180],
        points: curve(|m| m.acc_t1),
    }];
    if turns >= 2 {
        series.push(crate::metrics::plot::Series {
            name: "Acc@t2",
            color: [255, 127, 14],
            points: curve(|m| m.acc_t2),
        });
    }
    crate::metrics::plot::line_chart(
        &run.join("eval.png"),
        "Held-out accuracy",
        "fraction right",
        &series,
    )?;
    let mut table = table;
    if turns >= 2 {
        crate::metrics::plot::line_chart(
            &run.join("eval_corrections.png"),
            "Held-out turn 2: fixed (Δi→c) and broken (Δc→i) answers",
            "fraction of problems",
            &[
                crate::metrics::plot::Series {
                    name: "Δi→c",
                    color: [44, 160, 44],
                    points: curve(|m| m.delta_i_to_c),
                },
                crate::metrics::plot::Series {
                    name: "Δc→i",
                    color: [214, 39, 40],
                    points: curve(|m| m.delta_c_to_i),
                },
            ],
        )?;
    }
    let (first, end) = (step_results(run, rows[0].step), step_results(run, last));
    if last != rows[0].step && first.is_file() && end.is_file() {
        let before = crate::table2::Verdicts::read(&first)?;
        let after = crate::table2::Verdicts::read(&end)?;
        let changes = crate::table2::paired_changes(&before, &after)?;
        let verdict = crate::table2::learning_verdict(&before, &after, turns >= 2)?;
        table.push_str(&format!(
            "\nStep {last} against step {}, problem by problem: each value with its 95 % \
             interval, and the paired change (a paired t interval over the {} problems):\n\n{changes}\n{verdict}\n",
            rows[0].step,
            before.ids.len()
        ));
    }
    crate::run::fsutil::write_atomic(&run.join("results.md"), table.as_bytes())?;
    Ok(Some(table))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-run evaluation reserves exactly what turn 2 needs: both answers' budgets and the
    /// guide as the tokenizer counts it. A long guide (far more than 32 tokens) in a context
    /// one token too small is refused, naming the problem, rather than loaded and then cut
    /// short at the end of the context.
    #[test]
    fn a_long_eval_guide_keeps_the_full_turn2_budget() {
        let fixture = crate::test_repo().join("tests/fixtures/gqa4-untied-bf16-t5");
        let tokenizer = Tokenizer::load(&fixture.join("tokenizer.json")).unwrap();
        let template = PromptTemplate::builtin("plain").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("eval.jsonl");
        std::fs::write(
            &data,
            "{\"id\": \"p1\", \"question\": \"1+1\", \"answer\": \"2\"}\n",
        )
        .unwrap();
        let guide = "Please check every step of the answer above once more, carefully, and \
                     if you find a mistake, correct it and give the final answer again."
            .repeat(3);
        let cfg = TrainConfig {
            eval_dataset: Some(data.clone()),
            eval_turns: 2,
            eval_max_new_tokens: Some(16),
            eval_guide: Some(guide.clone()),
            ..TrainConfig::default()
        };
        let prompt = tokenizer.encode(&template.render("1+1")).unwrap().len();
        let guide_tokens = tokenizer.encode(&format!("\n\n{guide}")).unwrap().len();
        assert!(guide_tokens > 32, "{guide_tokens}");
        let exact = prompt + 2 * 16 + guide_tokens;
        let set = EvalSet::load(&cfg, &template, &tokenizer, exact)
            .unwrap()
            .unwrap();
        assert_eq!(set.prompts[0].len(), prompt);
        let e = EvalSet::load(&cfg, &template, &tokenizer, exact - 1)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("eval.jsonl") && e.contains("`p1`"), "{e}");
    }
}
