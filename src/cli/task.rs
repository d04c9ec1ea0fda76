//! `mgrpo task`: write the laptop task's files (problem splits and the warm-start corpus), and
//! `mgrpo init`: a new tiny Qwen2 (a BPE tokenizer trained on a corpus, weights initialised as
//! transformers does). `scripts/make_tiny_model.sh` chains them with `mgrpo sft` to rebuild
//! `model/`.

use crate::fused::FusedBackend;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::data::arith::ArithConfig;
use crate::data::corpus::TeacherNoise;
use crate::data::task::{write_task, TaskSpec};
use crate::model::{save_model, CausalLm, ModelConfig, SaveOptions};
use crate::run::dest;
use crate::text::template::PromptTemplate;
use crate::text::template::PAPER_GUIDE_PHRASES;
use crate::text::tokenizer::Tokenizer;
use crate::Error;

use super::args::DeviceArg;

/// What `mgrpo task` writes into its `--out`.
const TASK_OUTPUT: dest::Kind = dest::Kind {
    command: "mgrpo task",
    what: "a task",
    marker: "test.jsonl",
    owns: |n| ["train.jsonl", "test.jsonl", "sft.jsonl"].contains(&n),
};

#[derive(Args)]
// "-1" is a value to check, not an unknown flag ("--temperature: must be ≥ 0")
#[command(allow_negative_numbers = true)]
pub struct TaskArgs {
    /// Directory for train.jsonl, test.jsonl and sft.jsonl (created if needed; one that holds
    /// a run or other files is refused, an earlier task only with --overwrite).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the task files in --out.
    #[arg(long)]
    pub overwrite: bool,
    /// Seed of every draw: the same seed and knobs give the same files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Problems in the RL train split.
    #[arg(long, default_value_t = 2000)]
    pub train: usize,
    /// Problems in the held-out test split.
    #[arg(long, default_value_t = 500)]
    pub test: usize,
    /// Problems appended to the held-out split (after its first --test ones), clear of the
    /// train split and the corpus, which stay exactly as without it: a bigger held-out split
    /// for a model trained on this task (the shipped model: --seed 0 and the defaults).
    #[arg(long, default_value_t = 0)]
    pub more_test: usize,
    /// Prompt/completion pairs in the warm-start corpus.
    #[arg(long, default_value_t = 20000)]
    pub sft: usize,
    /// Share of the corpus that is self-correction traces (attempt, guide phrase, check).
    #[arg(long, default_value_t = 0.08)]
    pub trace_share: f64,
    /// Share of the corpus's plain solutions that give only the boxed answer, no working (a
    /// noisy teacher: the model learns the shortcut's form, not its accuracy).
    #[arg(long, default_value_t = 0.0)]
    pub shortcut_share: f64,
    /// Share of the corpus's plain solutions with one slip carried through to a wrong answer
    /// (a noisy teacher).
    #[arg(long, default_value_t = 0.0)]
    pub slip_share: f64,
    /// Prompt template of the corpus (the model's template for training and evaluation).
    #[arg(long, default_value = "chatml")]
    pub template: String,
    /// Fewest steps of a `sum` problem.
    #[arg(long, default_value_t = 2)]
    pub min_steps: usize,
    /// Most steps of a `sum` problem.
    #[arg(long, default_value_t = 3)]
    pub max_steps: usize,
    /// Digits of a `sum` problem's numbers.
    #[arg(long, default_value_t = 2)]
    pub digits: u32,
    /// Probability that a `sum` step carries or borrows.
    #[arg(long, default_value_t = 0.5)]
    pub carry_rate: f64,
    /// Share of `linear` problems (a * x + b = c).
    #[arg(long, default_value_t = 0.4)]
    pub linear_share: f64,
}

pub fn task(a: TaskArgs) -> Result<()> {
    let spec = TaskSpec {
        config: ArithConfig {
            min_steps: a.min_steps,
            max_steps: a.max_steps,
            digits: a.digits,
            carry_rate: a.carry_rate,
            linear_share: a.linear_share,
            ..ArithConfig::default()
        },
        seed: a.seed,
        train: a.train,
        test: a.test,
        sft: a.sft,
        more_test: a.more_test,
        trace_share: a.trace_share,
        noise: TeacherNoise {
            shortcut: a.shortcut_share,
            slip: a.slip_share,
        },
        template: PromptTemplate::builtin(&a.template)?,
        guides: PAPER_GUIDE_PHRASES.iter().map(|s| s.to_string()).collect(),
    };
    // refused before any work: a run, other files, an earlier task without --overwrite
    let claim = dest::claim(&a.out, TASK_OUTPUT, a.overwrite, false)?;
    let earlier = match claim.replacing {
        true => dest::owned_files(&a.out, TASK_OUTPUT)?,
        false => Vec::new(),
    };
    // the generator's checks name config keys; here they came from flags
    let s = write_task(&spec, &a.out).map_err(|e| match e {
        crate::Error::ConfigKey {
            file: None,
            key,
            msg,
        } => crate::Error::arg(format!("--{}", key.replace('_', "-")), msg),
        e => e,
    })?;
    // what the earlier task had and this one does not write (a corpus, with --sft 0)
    let written = [
        ("test.jsonl", true),
        ("train.jsonl", s.train > 0),
        ("sft.jsonl", s.sft > 0),
    ];
    for f in earlier {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
        if !written
            .iter()
            .any(|(n, w)| *w && name.as_deref() == Some(*n))
        {
            std::fs::remove_file(&f).map_err(|e| crate::Error::io(&f, e))?;
        }
    }
    eprintln!(
        "wrote {} train, {} test problems and {} corpus pairs ({} traces, {} after a slip; {} \
         shortcut and {} slipped solutions) to {}",
        s.train,
        s.test,
        s.sft,
        s.traces,
        s.traces_after_slip,
        s.shortcuts,
        s.slipped_solutions,
        a.out.display()
    );
    Ok(())
}

#[derive(Args)]
// "-1" is a value to check, not an unknown flag ("--temperature: must be ≥ 0")
#[command(allow_negative_numbers = true)]
pub struct InitArgs {
    /// JSONL corpus to train the tokenizer on (`prompt`+`completion`, or `question`+`solution`
    /// rows; repeatable).
    #[arg(long, required = true)]
    pub corpus: Vec<PathBuf>,
    /// The new model directory (must not exist).
    #[arg(long)]
    pub out: PathBuf,
    /// Vocabulary size, the byte alphabet and the three ChatML special tokens included.
    #[arg(long, default_value_t = 512)]
    pub vocab_size: usize,
    /// Width of the residual stream.
    #[arg(long, default_value_t = 128)]
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    #[arg(long, default_value_t = 512)]
    pub intermediate_size: usize,
    /// Decoder layers.
    #[arg(long, default_value_t = 4)]
    pub num_hidden_layers: usize,
    /// Query heads (head size: hidden size / heads).
    #[arg(long, default_value_t = 4)]
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention).
    #[arg(long, default_value_t = 2)]
    pub num_key_value_heads: usize,
    /// Context length in tokens.
    #[arg(long, default_value_t = 512)]
    pub max_position_embeddings: usize,
    /// RoPE base frequency.
    #[arg(long, default_value_t = 10000.0)]
    pub rope_theta: f64,
    /// Seed of the weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub device: DeviceArg,
}

const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

pub fn init<B: FusedBackend>(a: InitArgs, device: &B::Device) -> Result<()> {
    if a.out.exists() {
        bail!("--out {}: already exists", a.out.display());
    }
    let min_vocab = Tokenizer::min_bpe_vocab(SPECIALS.len());
    if a.vocab_size < min_vocab {
        bail!(
            "--vocab-size: {} is below the byte alphabet and the special tokens ({min_vocab})",
            a.vocab_size
        );
    }
    // The shape, checked before any work (the vocabulary size is the tokenizer's, below).
    let mut config = ModelConfig::new(
        a.vocab_size,
        a.hidden_size,
        a.intermediate_size,
        a.num_hidden_layers,
        a.num_attention_heads,
        a.num_key_value_heads,
        true,
    );
    config.max_position_embeddings = a.max_position_embeddings;
    config.rope_theta = a.rope_theta;
    config
        .validate()
        .map_err(|e| Error::arg(format!("--{}", e.key.replace('_', "-")), e.msg))?;
    let mut texts = Vec::new();
    for path in &a.corpus {
        for (line, row) in crate::run::jsonl::read_objects(path)? {
            let field = |k: &str| row.get(k).and_then(|v| v.as_str());
            let text = match (field("prompt"), field("completion")) {
                (Some(p), Some(c)) => format!("{p}{c}"),
                _ => match (field("question"), field("solution")) {
                    (Some(q), Some(s)) => format!("{q}\n{s}"),
                    _ => bail!(
                        "{}:{line}: need string fields prompt+completion or question+solution",
                        path.display()
                    ),
                },
            };
            texts.push(text);
        }
    }
    let json = Tokenizer::train_bpe(&texts, a.vocab_size, &SPECIALS)?;
    let staging = tempfile_dir(&a.out)?;
    let result = (|| -> Result<()> {
        let tok_path = staging.join("tokenizer.json");
        std::fs::write(&tok_path, &json)
            .with_context(|| format!("writing {}", tok_path.display()))?;
        let tok = Tokenizer::load(&tok_path)?;
        let id = |t: &str| {
            tok.token_id(t)
                .context("the trained tokenizer lacks a special token")
        };
        let (eos, pad) = (id("<|im_end|>")?, id("<|endoftext|>")?);
        let tok_config = serde_json::json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "model_max_length": a.max_position_embeddings,
            "chat_template": "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
        });
        std::fs::write(
            staging.join("tokenizer_config.json"),
            serde_json::to_string_pretty(&tok_config)?,
        )?;
        config.vocab_size = tok.vocab_size();
        config.eos_token_id = vec![eos];
        config.extra.insert("pad_token_id".into(), pad.into());
        config.extra.insert("initializer_range".into(), 0.02.into());
        let model = CausalLm::<B>::init(&config, a.seed, device);
        let opts = SaveOptions {
            side_files_from: Some(staging.clone()),
            ..SaveOptions::default()
        };
        save_model(&model, &config, &a.out, &opts)?;
        eprintln!(
            "initialised a {:.2} M-parameter Qwen2 (vocab {}, hidden {}, {} layers) in {}",
            config.num_params() as f64 / 1e6,
            config.vocab_size,
            config.hidden_size,
            config.num_hidden_layers,
            a.out.display()
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// A fresh staging directory next to `out`.
fn tempfile_dir(out: &std::path::Path) -> Result<PathBuf> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(parent)?;
    let dir = parent.join(format!(".init-staging-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
