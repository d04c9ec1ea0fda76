//! The `mgrpo` command line. This is the only place that names a concrete Burn backend:
//! `--device` picks one of those compiled in by Cargo features.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::prelude::Backend;
use clap::{Args, Parser, Subcommand};

use mgrpo::data::{Dataset, DatasetFormat};
use mgrpo::device::DeviceSpec;
use mgrpo::generate::input::{prepare_prompts, read_prompts, PromptRow, PromptSource};
use mgrpo::generate::{eos_ids_from_model_dir, GenerateConfig, SamplingParams, StopStrings};
use mgrpo::grade::{grade_pairs, grade_predictions, self_check, Summary};
use mgrpo::model::{load_model, save_model, Qwen2Config, SaveDtype, SaveOptions};
use mgrpo::reward::Policy;
use mgrpo::score::{prepare_rows, read_score_input, score_rows};
use mgrpo::template::PromptTemplate;
use mgrpo::tokenizer::Tokenizer;

#[derive(Parser)]
#[command(
    name = "mgrpo",
    version,
    about = "GRPO / MGRPO / iGRPO trainer for Qwen2 models, on Burn"
)]
struct Cli {
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Per-token log-probs log p(x_t | x_<t) of given sequences, one JSON line per input line.
    Score(ScoreArgs),
    /// Batched generation with the KV cache: completions of prompts, one JSON line each.
    Generate(GenerateArgs),
    /// Load an HF model directory and save it again in HF layout (F32 or BF16, sharded).
    Convert(ConvertArgs),
    /// Throughput figures on a random model of a named shape: `score` (forward + log-softmax)
    /// or `generate` (greedy decoding with the KV cache).
    Bench(BenchArgs),
    /// Grade answers with the math verifier: `{"gold","pred"}` rows (--input), a model's
    /// predictions against a dataset (--dataset --predictions), or a dataset's own reference
    /// solutions (--dataset --self-check). One JSON verdict per line, a summary on stderr.
    Verify(VerifyArgs),
    /// Train a model with GRPO from a TOML config (keys follow TRL's GRPOConfig); with no
    /// flags, runs configs/tiny-mgrpo.toml.
    Train(TrainArgs),
}

#[derive(Args)]
struct TrainArgs {
    /// The run config (TOML). Default: configs/tiny-mgrpo.toml.
    #[arg(long, conflicts_with = "resume")]
    config: Option<PathBuf>,
    /// Override a config key (repeatable): --set learning_rate=1e-5 --set loss_type=grpo.
    #[arg(long = "set", value_name = "KEY=VALUE", conflicts_with = "resume")]
    set: Vec<String>,
    /// Continue the run in this directory from its last checkpoint, with its
    /// config.resolved.toml.
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// The run directory (default: the config's output_dir, else runs/<config name>).
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Stop after this step, checkpointing it (continue later with --resume).
    #[arg(long, value_name = "STEP")]
    stop_after: Option<usize>,
    #[command(flatten)]
    device: DeviceArg,
}

fn train<B: burn::tensor::backend::AutodiffBackend>(
    a: TrainArgs,
    device: &B::Device,
) -> Result<()> {
    use mgrpo::train::{default_run_dir, TrainConfig, TrainOptions};
    let opts = match &a.resume {
        Some(run) => {
            let path = run.join("config.resolved.toml");
            if !path.is_file() {
                bail!("--resume {}: no config.resolved.toml there", run.display());
            }
            TrainOptions {
                config: TrainConfig::load(&path, &[])?,
                run_dir: run.clone(),
                resume: true,
                stop_after: a.stop_after,
            }
        }
        None => {
            let path = a
                .config
                .clone()
                .unwrap_or_else(|| PathBuf::from("configs/tiny-mgrpo.toml"));
            let config = TrainConfig::load(&path, &a.set)?;
            let run_dir = a
                .out
                .clone()
                .or_else(|| config.output_dir.clone())
                .unwrap_or_else(|| default_run_dir(&path));
            TrainOptions {
                config,
                run_dir,
                resume: false,
                stop_after: a.stop_after,
            }
        }
    };
    let s = mgrpo::train::train::<B>(&opts, device)?;
    match (&s.final_model, &s.last) {
        (Some(model), Some(m)) => eprintln!(
            "trained {} steps: reward {:.3}, accuracy {:.3}; model in {}, metrics and plots in {}",
            s.steps_done,
            m.reward,
            m.accuracy,
            model.display(),
            s.run_dir.display()
        ),
        _ => eprintln!(
            "stopped after step {} of {}; continue with: mgrpo train --resume {}",
            s.steps_done,
            s.total_steps,
            s.run_dir.display()
        ),
    }
    Ok(())
}

#[derive(Args)]
struct VerifyArgs {
    /// JSONL of {"gold": "...", "pred": "..."} rows (pred: a full completion).
    #[arg(long, conflicts_with_all = ["dataset", "predictions", "self_check"])]
    input: Option<PathBuf>,
    /// A dataset (GSM8K, MATH, Minerva, OlympiadBench, AIME, AMC or question/answer JSONL).
    #[arg(long, required_unless_present = "input")]
    dataset: Option<PathBuf>,
    /// The dataset's format when it cannot be detected from the fields.
    #[arg(long, requires = "dataset", value_parser = parse_format)]
    format: Option<DatasetFormat>,
    /// JSONL of completions ({"completion"|"text"|"pred", and "id" or "index"}) to grade.
    #[arg(long, requires = "dataset", required_unless_present_any = ["input", "self_check"])]
    predictions: Option<PathBuf>,
    /// Grade the dataset's reference solutions against its gold answers.
    #[arg(long, requires = "dataset", conflicts_with = "predictions")]
    self_check: bool,
    /// Grader policy KEY=VALUE (repeatable): percent=either|ignore|fraction,
    /// decimal_approximations, require_reduced_fractions, strip_assignment, ordered_lists.
    #[arg(long = "policy", value_name = "KEY=VALUE")]
    policy: Vec<String>,
    /// Print only the rows graded incorrect.
    #[arg(long)]
    only_wrong: bool,
    /// Write the verdicts here (atomically) instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
}

fn parse_format(s: &str) -> std::result::Result<DatasetFormat, String> {
    s.parse().map_err(|e: mgrpo::Error| e.to_string())
}

fn verify(a: VerifyArgs) -> Result<()> {
    let policy = Policy::default().with_settings(&a.policy)?;
    let rows = match (&a.input, &a.dataset) {
        (Some(input), _) => grade_pairs(input, &policy)?,
        (None, Some(data)) => {
            let dataset = Dataset::load(data, a.format)?;
            match &a.predictions {
                Some(p) => grade_predictions(&dataset, p, &policy)?,
                None => self_check(&dataset, &policy),
            }
        }
        (None, None) => bail!("give --input, or --dataset with --predictions or --self-check"),
    };
    let mut out = String::new();
    for r in rows.iter().filter(|r| !a.only_wrong || !r.correct) {
        out.push_str(&serde_json::to_string(r)?);
        out.push('\n');
    }
    emit(a.output.as_deref(), &out)?;
    eprintln!("{}", Summary::of(&rows).line());
    Ok(())
}

#[derive(Args)]
struct DeviceArg {
    /// Backend and device: cpu, ndarray, flex, wgpu, cuda[:N], tch[:cpu|:cuda:N].
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(Args)]
struct ScoreArgs {
    /// HF model directory (config.json, safetensors, optional tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// JSONL: {"input_ids": [...]} or {"prompt": "...", "completion": "..."} per line.
    #[arg(long)]
    input: PathBuf,
    /// Rows per forward pass (rows are grouped by length; output keeps input order).
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Apply this prompt template (qwen-math, r1, plain) to the `prompt` of text rows.
    #[arg(long)]
    template: Option<String>,
    /// Write the JSONL here instead of stdout (written whole, then renamed into place).
    #[arg(long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("prompts").required(true).args(["prompt", "input"])))]
struct GenerateArgs {
    /// HF model directory (config.json, safetensors, tokenizer.json for text prompts).
    #[arg(long)]
    model: PathBuf,
    /// One text prompt (through --template if given).
    #[arg(long)]
    prompt: Option<String>,
    /// JSONL of prompts: {"prompt": "..."} or {"input_ids": [...]} per line.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Apply this prompt template (qwen-math, r1, plain) to text prompts.
    #[arg(long)]
    template: Option<String>,
    /// Token budget per completion (also capped by max_position_embeddings).
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// Sampling temperature; 0 = greedy.
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Nucleus sampling: keep the most likely tokens up to this much probability (1 = off).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Keep only the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Drop tokens less likely than min_p × the most likely one (0 = off).
    #[arg(long, default_value_t = 0.0)]
    min_p: f32,
    /// Completions per prompt (they share the prompt's prefill).
    #[arg(long, default_value_t = 1)]
    num_return_sequences: usize,
    /// Seed of the sampler (each completion has its own stream; batch size does not matter).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sequences decoded together (prompts × num-return-sequences).
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Stop a completion when its text contains this string (repeatable; the string is kept).
    #[arg(long = "stop")]
    stop: Vec<String>,
    /// Do not stop at end-of-sequence ids (generation_config.json / config.json, and the
    /// tokenizer's <|im_end|> / <|endoftext|>).
    #[arg(long)]
    ignore_eos: bool,
    /// Write the JSONL here instead of stdout (written whole, then renamed into place).
    #[arg(long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Args)]
struct ConvertArgs {
    /// Source HF model directory.
    #[arg(long)]
    model: PathBuf,
    /// Destination directory (must not exist unless --overwrite).
    #[arg(long)]
    out: PathBuf,
    /// Weight dtype to write: f32 or bf16.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Shard the weights above this many bytes per file.
    #[arg(long, default_value_t = 5_000_000_000)]
    max_shard_bytes: usize,
    /// Replace --out if it exists.
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    device: DeviceArg,
}

#[derive(Args)]
struct BenchArgs {
    /// What to measure: score or generate.
    #[arg(default_value = "score")]
    what: String,
    /// Model shape: bench-small (vocab 4096, hidden 256, 4 layers, 8/2 heads) or qwen2.5-0.5b.
    #[arg(long, default_value = "bench-small")]
    shape: String,
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// score: tokens per row.
    #[arg(long, default_value_t = 128)]
    seq: usize,
    /// generate: prompt tokens per row.
    #[arg(long, default_value_t = 32)]
    prompt: usize,
    /// generate: new tokens per row (greedy, no EOS).
    #[arg(long, default_value_t = 128)]
    new_tokens: usize,
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    #[arg(long, default_value_t = 20)]
    iters: usize,
    #[command(flatten)]
    device: DeviceArg,
}

fn main() {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = dispatch(cli.command) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Parse `--device` and run `cmd` on the chosen backend.
fn dispatch(cmd: Command) -> Result<()> {
    let spec: DeviceSpec = match &cmd {
        Command::Score(a) => &a.device.device,
        Command::Generate(a) => &a.device.device,
        Command::Convert(a) => &a.device.device,
        Command::Bench(a) => &a.device.device,
        Command::Train(a) => &a.device.device,
        // The verifier needs no model: any backend will do.
        Command::Verify(_) => "cpu",
    }
    .parse()?;
    match spec {
        // `cpu` is flex: several times faster than ndarray at decoding (README, "Benchmarks").
        #[cfg(feature = "flex")]
        DeviceSpec::Cpu | DeviceSpec::Flex => {
            run::<burn::backend::Flex<f32>>(cmd, Default::default())
        }
        #[cfg(all(not(feature = "flex"), feature = "ndarray"))]
        DeviceSpec::Cpu => run::<burn::backend::NdArray<f32>>(cmd, Default::default()),
        #[cfg(feature = "ndarray")]
        DeviceSpec::NdArray => run::<burn::backend::NdArray<f32>>(cmd, Default::default()),
        #[cfg(feature = "wgpu")]
        DeviceSpec::Wgpu => run::<burn::backend::Wgpu<f32, i32>>(cmd, Default::default()),
        #[cfg(feature = "cuda")]
        DeviceSpec::Cuda(index) => {
            run::<burn::backend::Cuda<f32, i32>>(cmd, burn::backend::cuda::CudaDevice { index })
        }
        #[cfg(feature = "tch")]
        DeviceSpec::TchCpu => {
            run::<burn::backend::LibTorch<f32>>(cmd, burn::backend::libtorch::LibTorchDevice::Cpu)
        }
        #[cfg(feature = "tch")]
        DeviceSpec::TchCuda(n) => run::<burn::backend::LibTorch<f32>>(
            cmd,
            burn::backend::libtorch::LibTorchDevice::Cuda(n),
        ),
        #[allow(unreachable_patterns)]
        other => Err(other.not_compiled().into()),
    }
}

fn run<B: Backend>(cmd: Command, device: B::Device) -> Result<()> {
    match cmd {
        Command::Score(a) => score::<B>(a, &device),
        Command::Generate(a) => generate::<B>(a, &device),
        Command::Convert(a) => convert::<B>(a, &device),
        Command::Bench(a) => bench::<B>(a, &device),
        Command::Verify(a) => verify(a),
        Command::Train(a) => train::<burn::backend::Autodiff<B>>(a, &device),
    }
}

fn score<B: Backend>(a: ScoreArgs, device: &B::Device) -> Result<()> {
    if a.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let template = a
        .template
        .as_deref()
        .map(PromptTemplate::builtin)
        .transpose()?;
    let rows = read_score_input(&a.input)?;
    let (config, model) = load_model::<B>(&a.model, device)?;
    let tokenizer = Tokenizer::from_model_dir(&a.model)?;
    let prepared = prepare_rows(
        &rows,
        &a.input,
        tokenizer.as_ref(),
        template.as_ref(),
        config.vocab_size,
        config.max_position_embeddings,
    )?;
    let ids: Vec<Vec<u32>> = prepared.iter().map(|p| p.ids.clone()).collect();
    let logprobs = score_rows(&model, &ids, a.batch_size, device)?;
    let mut out = String::new();
    for (lp, p) in logprobs.iter().zip(&prepared) {
        let tail = &lp[lp.len() - p.n_report.min(lp.len())..];
        out.push_str(&serde_json::json!({ "logprobs": tail }).to_string());
        out.push('\n');
    }
    emit(a.output.as_deref(), &out)
}

/// Write `out` to `path` atomically, or to stdout.
fn emit(path: Option<&Path>, out: &str) -> Result<()> {
    match path {
        Some(path) => write_atomic(path, out.as_bytes()),
        None => {
            use std::io::Write;
            std::io::stdout()
                .lock()
                .write_all(out.as_bytes())
                .context("writing to stdout")
        }
    }
}

fn generate<B: Backend>(a: GenerateArgs, device: &B::Device) -> Result<()> {
    let sampling = SamplingParams {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        min_p: a.min_p,
    };
    sampling
        .validate()
        .map_err(|e| anyhow::anyhow!("--{}", e.to_string().replace('_', "-")))?;
    if a.batch_size == 0 || a.num_return_sequences == 0 {
        bail!("--batch-size and --num-return-sequences must be at least 1");
    }
    let template = a
        .template
        .as_deref()
        .map(PromptTemplate::builtin)
        .transpose()?;
    let (rows, source) = match (&a.prompt, &a.input) {
        (Some(p), _) => (vec![(1, PromptRow::Text(p.clone()))], PromptSource::Arg),
        (None, Some(path)) => (read_prompts(path)?, PromptSource::File(path.clone())),
        (None, None) => bail!("give --prompt or --input"),
    };
    let config = Qwen2Config::load(&a.model.join("config.json"))?;
    let tokenizer = Tokenizer::from_model_dir(&a.model)?;
    let prompts = prepare_prompts(
        &rows,
        &source,
        tokenizer.as_ref(),
        template.as_ref(),
        &config,
    )?;
    let gen = GenerateConfig {
        max_new_tokens: a.max_new_tokens,
        sampling,
        num_return_sequences: a.num_return_sequences,
        seed: a.seed,
        batch_size: a.batch_size,
        eos_ids: if a.ignore_eos {
            Vec::new()
        } else {
            eos_ids_from_model_dir(&a.model, &config.eos_token_id, tokenizer.as_ref())?
        },
        stop: StopStrings::new(a.stop, tokenizer.as_ref())?,
    };
    let (config, model) = load_model::<B>(&a.model, device)?;
    let out =
        mgrpo::generate::generate(&model, &config, &prompts, &gen, tokenizer.as_ref(), device)?;
    let mut text = String::new();
    for c in &out.completions {
        let line = serde_json::json!({
            "index": c.prompt_index,
            "sample": c.sample_index,
            "completion_ids": c.ids,
            "text": c.text,
            "truncated": c.truncated(),
            "finish_reason": c.finish_reason,
            "logprobs": c.logprobs,
            "model_logprobs": c.model_logprobs,
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    emit(a.output.as_deref(), &text)?;
    let s = &out.stats;
    eprintln!(
        "{} completions, {} tokens generated from {} prompt tokens in {:.2} s \
         (prefill {:.2} s, decode {:.2} s, {:.0} tokens/s)",
        out.completions.len(),
        s.generated_tokens,
        s.prompt_tokens,
        s.prefill_secs + s.decode_secs,
        s.prefill_secs,
        s.decode_secs,
        s.generated_tokens as f64 / (s.prefill_secs + s.decode_secs).max(1e-9),
    );
    Ok(())
}

fn convert<B: Backend>(a: ConvertArgs, device: &B::Device) -> Result<()> {
    let dtype = SaveDtype::parse(&a.dtype)?;
    let (config, model) = load_model::<B>(&a.model, device)?;
    let opts = SaveOptions {
        dtype,
        max_shard_bytes: a.max_shard_bytes,
        side_files_from: Some(a.model.clone()),
        overwrite: a.overwrite,
    };
    save_model(&model, &config, &a.out, &opts)?;
    eprintln!(
        "saved {} ({}) to {}",
        a.model.display(),
        a.dtype,
        a.out.display()
    );
    Ok(())
}

fn bench<B: Backend>(a: BenchArgs, device: &B::Device) -> Result<()> {
    let config = mgrpo::bench::shape(&a.shape)?;
    if a.what == "generate" {
        if a.batch == 0 || a.prompt == 0 || a.new_tokens == 0 {
            bail!("--batch, --prompt and --new-tokens must be at least 1");
        }
        let r = mgrpo::bench::bench_generate::<B>(
            &config,
            a.batch,
            a.prompt,
            a.new_tokens,
            a.warmup,
            a.iters,
            device,
        )?;
        let line = serde_json::json!({
            "bench": "generate", "shape": a.shape, "device": a.device.device,
            "batch": r.batch, "prompt": r.prompt, "new_tokens": r.new_tokens, "iters": r.iters,
            "tokens_per_s": r.tokens_per_s, "decode_tokens_per_s": r.decode_tokens_per_s,
            "median_ms": r.median_ms, "min_ms": r.min_ms,
        });
        println!("{line}");
        return Ok(());
    }
    if a.what != "score" {
        bail!("unknown benchmark `{}` (known: score, generate)", a.what);
    }
    if a.batch == 0 || a.seq < 2 {
        bail!("--batch must be ≥ 1 and --seq ≥ 2");
    }
    let r = mgrpo::bench::bench_score::<B>(&config, a.batch, a.seq, a.warmup, a.iters, device);
    let line = serde_json::json!({
        "bench": "score", "shape": a.shape, "device": a.device.device,
        "batch": r.batch, "seq": r.seq, "iters": r.iters,
        "tokens_per_s": r.tokens_per_s, "median_ms": r.median_ms, "min_ms": r.min_ms,
    });
    println!("{line}");
    Ok(())
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// failure never leaves a half-written file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .context("--output has no file name")?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}
