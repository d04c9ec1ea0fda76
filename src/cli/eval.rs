//! `mgrpo eval`: the two-turn self-correction evaluation (the MGRPO paper's Table 2).

use crate::fused::FusedBackend;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

use crate::data::Dataset;
use crate::eval::{
    encode_prompts, eval_room, evaluate, table, write_results, EvalSettings, TwoTurnMetrics,
    INTRINSIC_INSTRUCTION,
};
use crate::generate::{GenerateConfig, SamplingParams, StopStrings};
use crate::model::dir::ModelDir;
use crate::reward::{RewardConfig, Turn2Grading};
use crate::rl::policy::Policy;
use crate::rl::rollout::ModelSampler;
use crate::run::dest;
use crate::run::fsutil::write_atomic;
use crate::text::template::PromptTemplate;
use crate::text::template::PAPER_GUIDE_PHRASES;

use super::args::{DeviceArg, DtypeArg};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Baseline {
    /// Intrinsic self-correction: the first answer's turn is closed and the paper's
    /// instruction to find and correct mistakes comes as a new user turn (Huang et al.,
    /// SCoRe); turn 2 is a new assistant turn.
    Intrinsic,
    /// The same instruction inside the assistant's own turn, after the first answer, where a
    /// guide phrase would go (this repository's first variant; kept for comparison).
    IntrinsicInTurn,
}

impl Baseline {
    fn name(self) -> &'static str {
        match self {
            Baseline::Intrinsic => "intrinsic",
            Baseline::IntrinsicInTurn => "intrinsic-in-turn",
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Turn2GradedOn {
    Continuation,
    Turn,
}

#[derive(Args)]
// "-1" is a value to check, not an unknown flag ("--temperature: must be ≥ 0")
#[command(allow_negative_numbers = true)]
pub struct EvalArgs {
    /// HF model directory (config.json, safetensors, tokenizer.json), or a hub id
    /// `ORG/NAME[@REVISION]` in the local Hugging Face cache (nothing is downloaded).
    #[arg(long)]
    pub model: PathBuf,
    /// Problems (JSONL, any format `mgrpo verify` reads); repeat for one table row per file.
    #[arg(long, required = true)]
    pub data: Vec<PathBuf>,
    /// The files' format when it cannot be detected (gsm8k, math, qa, ...).
    #[arg(long)]
    pub format: Option<String>,
    /// 1: answer once (Acc@t1); 2: then continue after a guide phrase (Table 2).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub turns: u8,
    /// The turn-2 guide phrase [default: the paper's first, "Where might I have gone wrong
    /// this time? Let me double-check carefully."].
    #[arg(long, conflicts_with = "baseline")]
    pub guide: Option<String>,
    /// Evaluate a baseline instead of a guide phrase.
    #[arg(long, value_enum)]
    pub baseline: Option<Baseline>,
    /// What turn 2 is graded on: its continuation's own final answer (none = wrong), or the
    /// whole assistant turn (the last answer given, so saying nothing keeps turn 1's).
    #[arg(long, value_enum, default_value = "continuation")]
    pub turn2_graded_on: Turn2GradedOn,
    /// Prompt template: qwen-math, r1, plain, chatml, or checkpoint (the model's chat template).
    #[arg(long, default_value = "qwen-math")]
    pub template: String,
    /// Sampling temperature of both turns (the paper: 0.7); 0 = greedy.
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    /// Nucleus sampling (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Token budget of each turn.
    #[arg(long, default_value_t = 512)]
    pub max_new_tokens: usize,
    /// Evaluate the first N problems of each file.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Two-turn samples per problem: each problem's first answer is drawn N times and each
    /// continued once; every metric is the mean over problems of the per-problem mean, and
    /// the per-problem JSONL has one line per sample (`sample` 0…N−1).
    #[arg(long, default_value_t = 1)]
    pub samples: usize,
    /// Sequences decoded together.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Where to write <data name>.jsonl (every problem's answers and verdicts), table.md and
    /// summary.json [default: runs/eval/<hub id>, or runs/eval/<parent>_<name> of the model
    /// directory: runs/eval/r1_model for runs/r1/model]. A directory holding a run or files
    /// eval did not write is refused; an earlier evaluation only with --overwrite.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the earlier evaluation in --out (its files are removed first).
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub device: DeviceArg,
    #[command(flatten)]
    pub dtype: DtypeArg,
}

/// What `mgrpo eval` writes into its `--out`.
const EVAL_OUTPUT: dest::Kind = dest::Kind {
    command: "mgrpo eval",
    what: "an evaluation",
    marker: "summary.json",
    owns: |n| n.ends_with(".jsonl") || n == "table.md" || n == "summary.json",
};

/// `runs/eval/NAME`: a hub id's `ORG_NAME[_REV]`, a directory's parent and own name
/// (`runs/r1/model` → `r1_model`: every trained model is called `model`).
fn default_out(model: &Path, model_dir: &Path) -> PathBuf {
    let name = if model_dir != model {
        model.to_string_lossy().replace(['/', '@'], "_")
    } else {
        let full = model.canonicalize().unwrap_or_else(|_| model.to_path_buf());
        let part = |p: Option<&Path>| {
            p.and_then(Path::file_name)
                .map(|s| s.to_string_lossy().into_owned())
        };
        match (part(full.parent()), part(Some(&full))) {
            (Some(parent), Some(own)) => format!("{parent}_{own}"),
            (None, Some(own)) => own,
            _ => "model".into(),
        }
    };
    PathBuf::from("runs").join("eval").join(name)
}

/// A table row's name: the file's stem, or its path when two files share a stem.
fn names(paths: &[PathBuf]) -> Vec<String> {
    let stem = |p: &PathBuf| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    paths
        .iter()
        .map(|p| {
            let dup = paths.iter().filter(|q| stem(q) == stem(p)).count() > 1;
            if dup {
                p.display().to_string()
            } else {
                stem(p)
            }
        })
        .collect()
}

pub fn eval<B: FusedBackend>(a: EvalArgs, device: &B::Device) -> Result<()> {
    let reward = RewardConfig {
        turn2_graded_on: match a.turn2_graded_on {
            Turn2GradedOn::Continuation => Turn2Grading::Continuation,
            Turn2GradedOn::Turn => Turn2Grading::Turn,
        },
        ..RewardConfig::default()
    };
    let sampling = SamplingParams {
        temperature: a.temperature,
        top_p: a.top_p,
        ..SamplingParams::default()
    };
    sampling
        .validate()
        .map_err(|e| anyhow::anyhow!("--{} {}", e.key.replace('_', "-"), e.msg))?;
    if a.batch_size == 0 || a.max_new_tokens == 0 || a.limit == Some(0) || a.samples == 0 {
        bail!("--batch-size, --max-new-tokens, --limit and --samples must be at least 1");
    }
    if a.samples > 1024 {
        bail!("--samples: at most 1024 (got {})", a.samples);
    }
    let turns = a.turns as usize;
    let guide = match (a.baseline, &a.guide) {
        (Some(_), _) => INTRINSIC_INSTRUCTION.to_string(),
        (None, Some(g)) => g.clone(),
        (None, None) => PAPER_GUIDE_PHRASES[0].to_string(),
    };
    let model_dir = crate::model::hub::locate(&a.model)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| default_out(&a.model, &model_dir));
    // refused before any work: a run, someone else's files, an earlier evaluation
    drop(dest::claim(&out, EVAL_OUTPUT, a.overwrite, false)?);
    let template = PromptTemplate::load(&a.template, &model_dir, None)?;
    let dir = ModelDir::open(&model_dir)?;
    let (config, tokenizer) = (&dir.config, dir.tokenizer("evaluation decodes answers")?);
    let format = a.format.as_deref().map(str::parse).transpose()?;
    // every file is read and checked before anything is generated or written
    // intrinsic self-correction asks in a new user turn (Huang et al.; SCoRe)
    let new_user_turn = a.baseline == Some(Baseline::Intrinsic);
    let room = eval_room(
        tokenizer,
        &template,
        turns,
        a.max_new_tokens,
        &guide,
        new_user_turn,
    )?;
    let mut loaded = Vec::new();
    for path in &a.data {
        let dataset = Dataset::load(path, format)?;
        dataset.check_template(&template)?;
        dataset.check_unique_ids()?;
        let mut problems = dataset.problems;
        if problems.is_empty() {
            bail!("{}: no problems", path.display());
        }
        problems.truncate(a.limit.unwrap_or(usize::MAX));
        loaded.push((path, problems));
    }
    let mut sets = Vec::new();
    for (path, problems) in loaded {
        let prompts = encode_prompts(
            &problems,
            &template,
            tokenizer,
            room,
            config.max_position_embeddings,
            path,
        )?;
        sets.push((problems, prompts));
    }
    let model = dir.load::<B>(a.dtype.precision()?, device)?;
    let sampler = ModelSampler {
        model: &model,
        config,
        tokenizer,
        gen: GenerateConfig {
            sampling,
            batch_size: a.batch_size,
            eos_ids: dir.eos_ids.clone(),
            stop: StopStrings::default(),
            ..GenerateConfig::default()
        },
        device,
    };
    let settings = EvalSettings {
        turns,
        guide: guide.clone(),
        max_new_tokens: a.max_new_tokens,
        seed: a.seed,
        samples: a.samples,
        new_user_turn,
    };
    let mut policy = Policy::new(sampler, &template, tokenizer, &reward)?;
    let names = names(&a.data);
    let mut rows: Vec<(String, TwoTurnMetrics)> = Vec::new();
    let mut outputs = Vec::new();
    for ((problems, prompts), name) in sets.into_iter().zip(&names) {
        let refs: Vec<_> = problems.iter().collect();
        let (results, m) = evaluate(&mut policy, &refs, prompts, &settings)?;
        eprintln!(
            "{name}: {} problems, Acc@t1 {:.1} %, Acc@t2 {:.1} %",
            m.n,
            100.0 * m.acc_t1,
            100.0 * m.acc_t2
        );
        rows.push((name.clone(), m));
        outputs.push(results);
    }
    let text = table(&rows, turns);
    print!("{text}");

    // one writer per directory (created here); an earlier evaluation's files go first
    let claim = dest::claim(&out, EVAL_OUTPUT, a.overwrite, true)?;
    if claim.replacing {
        for f in dest::owned_files(&out, EVAL_OUTPUT)? {
            std::fs::remove_file(&f).map_err(|e| crate::Error::io(&f, e))?;
        }
    }
    for ((name, _), results) in rows.iter().zip(&outputs) {
        let file = name.replace(['/', '\\'], "_");
        write_results(&out.join(format!("{file}.jsonl")), results)?;
    }
    write_atomic(&out.join("table.md"), text.as_bytes())?;
    let summary = serde_json::json!({
        "model": a.model,
        "turns": turns,
        "guide": if turns == 2 { Some(&guide) } else { None },
        "baseline": a.baseline.map(Baseline::name),
        // where the guide or instruction of turn 2 stands
        "turn2_after": if turns < 2 { None } else if new_user_turn { Some("a new user turn") } else { Some("the first answer, in the same assistant turn") },
        "template": a.template,
        "temperature": a.temperature,
        "max_new_tokens": a.max_new_tokens,
        "seed": a.seed,
        "samples": a.samples,
        "rows": rows.iter().map(|(n, m)| serde_json::json!({"benchmark": n, "metrics": m})).collect::<Vec<_>>(),
    });
    write_atomic(
        &out.join("summary.json"),
        format!("{:#}\n", summary).as_bytes(),
    )?;
    eprintln!("answers and verdicts in {}", out.display());
    Ok(())
}
