//! The `mgrpo` command line, the edge of the crate: the one place that names a concrete Burn
//! backend (`--device` picks one of those compiled in by Cargo features). `main.rs` only calls
//! [`main`]. The subcommands' arguments and bodies are one file per command; shared here: the
//! parser and dispatch; `args.rs` the `--device` and `--dtype` flags and output writing.

mod args;
mod bench;
mod convert;
mod curves;
mod device;
mod eval;
mod generate;
mod score;
mod sft;
mod table2;
mod task;
mod train;
mod verify;

use anyhow::Result;
use clap::{Parser, Subcommand};

use bench::BenchArgs;
use convert::ConvertArgs;
use curves::CurvesArgs;
use device::DeviceSpec;
use eval::EvalArgs;
use generate::GenerateArgs;
use score::ScoreArgs;
use sft::SftArgs;
use table2::Table2Args;
use task::{InitArgs, TaskArgs};
use train::TrainArgs;
use verify::VerifyArgs;

use args::Trainable;

#[derive(Parser)]
#[command(
    name = "mgrpo",
    version,
    about = "GRPO / MGRPO / iGRPO trainer for Qwen2, Qwen3 and Llama models, on Burn"
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
    /// Throughput figures on a random model of a named shape: `score` (forward + log-softmax),
    /// `generate` (greedy decoding with the KV cache), `train` (forward + backward + AdamW:
    /// tokens/s and MFU) or `grpo` (whole GRPO steps: rollout, scoring and update).
    Bench(BenchArgs),
    /// Grade answers with the math verifier: `{"gold","pred"}` rows (--input), a model's
    /// predictions against a dataset (--dataset --predictions), or a dataset's own reference
    /// solutions (--dataset --self-check). One JSON verdict per line, a summary on stderr.
    Verify(VerifyArgs),
    /// Train a model with GRPO, MGRPO, iGRPO or PPO from a TOML config (keys follow TRL's
    /// GRPOConfig); with no flags, runs configs/tiny-mgrpo.toml.
    Train(TrainArgs),
    /// Two-turn self-correction evaluation: Acc@t1, Acc@t2, Δ, Δi→c, Δc→i per benchmark
    /// (the MGRPO paper's Table 2), and every problem's answers as JSONL.
    Eval(EvalArgs),
    /// Table 2 over seeds from `mgrpo eval`'s per-problem results: every cell with its 95 %
    /// interval (a bootstrap over problems and seeds) and the paper's claims as paired tests.
    Table2(Table2Args),
    /// Several runs' held-out evaluations against the step on one chart (PNG): Acc@t1 and
    /// Acc@t2, or Δi→c and Δc→i.
    Curves(CurvesArgs),
    /// Supervised fine-tuning on prompt/completion pairs, or the STaR baselines (a [star]
    /// table: sample, keep the verified solutions or the successful revisions, fine-tune).
    Sft(SftArgs),
    /// Write the laptop task: generated arithmetic word problems (train and held-out test
    /// splits) and the warm-start corpus with its self-correction traces.
    Task(TaskArgs),
    /// A new tiny Qwen2: a byte-level BPE tokenizer trained on a corpus, ChatML special tokens,
    /// weights initialised as transformers does (the shipped model before its warm start).
    Init(InitArgs),
}

/// glibc hands freed blocks above 128 KiB back to the kernel (`munmap`, heap trimming) and the
/// next step faults them in again, zeroed: a quarter of a CPU training step went to the kernel.
/// Keep them: blocks up to 32 MiB (glibc's largest threshold) come from the heap, and the heap
/// is trimmed only above 1 GiB of free space.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only changes allocator parameters; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

/// A write past the file-size limit (`ulimit -f`) returns `EFBIG`, which the writer reports
/// naming its destination (and cleans up after), instead of SIGXFSZ killing the process
/// silently with exit 153.
#[cfg(unix)]
fn write_errors_instead_of_sigxfsz() {
    // SAFETY: setting a signal's disposition to "ignore", before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

#[cfg(not(unix))]
fn write_errors_instead_of_sigxfsz() {}

/// The `mgrpo` binary: parse the command line, set up logging, run the command on the backend
/// `--device` names, and exit 1 on an error (128 + the signal for a run a signal stopped).
pub fn main() {
    keep_freed_memory();
    write_errors_instead_of_sigxfsz();
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
        // a run stopped by a signal exits as the signal would have (130 for Ctrl-C)
        let code = match e.downcast_ref::<crate::Error>() {
            Some(crate::Error::Interrupted { signal, .. }) => 128 + signal,
            _ => 1,
        };
        std::process::exit(code);
    }
}

/// Parse `--device` and run `cmd` on the chosen backend.
fn dispatch(cmd: Command) -> Result<()> {
    // The verifier and the task files need no model, hence no backend.
    let cmd = match cmd {
        Command::Verify(a) => return verify::verify(a),
        Command::Task(a) => return task::task(a),
        Command::Table2(a) => return table2::table2(a),
        Command::Curves(a) => return curves::curves(a),
        cmd => cmd,
    };
    let spec: DeviceSpec = match &cmd {
        Command::Score(a) => &a.device.device,
        Command::Generate(a) => &a.device.device,
        Command::Convert(a) => &a.device.device,
        Command::Bench(a) => &a.device.device,
        Command::Train(a) => &a.device.device,
        Command::Eval(a) => &a.device.device,
        Command::Sft(a) => &a.device.device,
        Command::Init(a) => &a.device.device,
        Command::Verify(_) | Command::Task(_) | Command::Table2(_) | Command::Curves(_) => "cpu",
    }
    .parse()?;
    match spec {
        // `cpu` is flex: several times faster than ndarray at decoding (docs/benchmarks.md).
        #[cfg(all(feature = "flex", not(feature = "nccl")))]
        DeviceSpec::Cpu | DeviceSpec::Flex => {
            run::<burn::backend::Flex<f32>>(cmd, Default::default())
        }
        #[cfg(all(not(feature = "flex"), feature = "ndarray", not(feature = "nccl")))]
        DeviceSpec::Cpu => run::<burn::backend::NdArray<f32>>(cmd, Default::default()),
        #[cfg(all(feature = "ndarray", not(feature = "nccl")))]
        DeviceSpec::NdArray => run::<burn::backend::NdArray<f32>>(cmd, Default::default()),
        #[cfg(feature = "wgpu")]
        DeviceSpec::Wgpu => run::<burn::backend::Wgpu<f32, i32>>(cmd, Default::default()),
        #[cfg(feature = "cuda")]
        DeviceSpec::Cuda(index) => {
            #[cfg(feature = "nccl")]
            crate::rl::reduce::register_native_all_reduce::<burn::backend::Cuda<f32, i32>>(
                nccl_all_reduce,
            );
            run::<burn::backend::Cuda<f32, i32>>(cmd, burn::backend::cuda::CudaDevice { index })
        }
        #[cfg(all(feature = "tch", not(feature = "nccl")))]
        DeviceSpec::TchCpu => {
            run::<burn::backend::LibTorch<f32>>(cmd, burn::backend::libtorch::LibTorchDevice::Cpu)
        }
        #[cfg(all(feature = "tch", not(feature = "nccl")))]
        DeviceSpec::TchCuda(n) => run::<burn::backend::LibTorch<f32>>(
            cmd,
            burn::backend::libtorch::LibTorchDevice::Cuda(n),
        ),
        #[allow(unreachable_patterns)]
        other => Err(other.not_compiled().into()),
    }
}

/// Data parallelism on several GPUs of one machine sums with NCCL (Burn's `distributed`
/// feature, NCCL through cudarc), not through host memory.
#[cfg(feature = "nccl")]
fn nccl_all_reduce(
    t: burn::tensor::ops::FloatTensor<burn::backend::Cuda<f32, i32>>,
    ids: Vec<burn::tensor::backend::DeviceId>,
) -> burn::tensor::ops::FloatTensor<burn::backend::Cuda<f32, i32>> {
    use burn::tensor::backend::distributed::{DistributedBackend, ReduceOperation};
    <burn::backend::Cuda<f32, i32> as DistributedBackend>::all_reduce(t, ReduceOperation::Sum, ids)
        .resolve()
}

fn run<B: Trainable>(cmd: Command, device: B::Device) -> Result<()> {
    match cmd {
        Command::Score(a) => score::score::<B>(a, &device),
        Command::Generate(a) => generate::generate::<B>(a, &device),
        Command::Convert(a) => convert::convert::<B>(a, &device),
        Command::Bench(a) => bench::bench::<B>(a, &device),
        Command::Verify(a) => verify::verify(a),
        Command::Train(a) => train::train::<B>(a, &device),
        Command::Eval(a) => eval::eval::<B>(a, &device),
        Command::Sft(a) => sft::sft::<burn::backend::Autodiff<B>>(a, &device),
        Command::Task(a) => task::task(a),
        Command::Table2(a) => table2::table2(a),
        Command::Curves(a) => curves::curves(a),
        Command::Init(a) => task::init::<B>(a, &device),
    }
}
