//! Checkpoints: `RUN/checkpoints/step-NNNNNN/` with the model in HF layout (`model/`), the
//! optimizer state (`optimizer.bin`), the reference model when `sync_ref_model` has moved it
//! (`reference/`, HF layout), PPO's critic (`value.bin`, `value_optimizer.bin`, written by
//! `critic.rs`) and the trainer state (`trainer_state.json`: step,
//! scheduler step, data position, RNG seed, counters), and last `manifest.json` with every
//! file's sha256 (`manifest.rs`). Each is written under a temporary name and renamed when
//! complete, so a kill at any instant leaves the last complete one intact; on resume the
//! manifest is checked, and the trainer state against the directory's name, before anything is
//! loaded.

use crate::fused::FusedAutodiffBackend;
use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use serde::{Deserialize, Serialize};

use super::critic::Critic;
use super::manifest::{verify_manifest, write_manifest};
use crate::error::{Error, Result};
use crate::model::lora::LoraConfig;
use crate::model::{load_adapter, save_adapter};
use crate::model::{load_model, save_model, CausalLm, ModelConfig, SaveOptions};
use crate::rl::optim::{load_optimizer, save_optimizer, PolicyOptimizer};
use crate::run::fsutil::{replace_dir, write_atomic};

/// Everything besides the weights and the optimizer that a resumed run needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Steps completed.
    pub step: usize,
    /// Steps the run was planned for.
    pub total_steps: usize,
    /// Optimizer updates attempted (the scheduler's step).
    pub optimizer_steps: usize,
    /// Problems drawn so far (the data position); the epoch is `data_position / rows`.
    pub data_position: usize,
    pub epoch: usize,
    /// The run's seed. Each step's sampler streams are derived from (seed, step) and each
    /// epoch's shuffle from (seed, epoch), so these numbers are the complete RNG state.
    pub seed: u64,
    /// Completion tokens generated so far.
    pub num_tokens: u64,
    /// Non-finite steps in a row at the end of `step`.
    pub nonfinite_in_a_row: usize,
}

const STATE: &str = "trainer_state.json";
const MODEL: &str = "model";
const OPTIMIZER: &str = "optimizer";
/// With `sync_ref_model`: the reference, which is no longer the start model.
const REFERENCE: &str = "reference";
/// With LoRA: the adapter (PEFT layout) instead of the model, whose base is frozen.
const ADAPTER: &str = "adapter";

/// How a LoRA run's checkpoints hold the model: the adapter, over the frozen base.
#[derive(Debug, Clone, Copy)]
pub struct LoraCheckpoint<'a> {
    pub config: &'a LoraConfig,
    pub base: &'a Path,
    pub seed: u64,
}

fn checkpoints(run: &Path) -> PathBuf {
    run.join("checkpoints")
}

/// Where and how a run's checkpoints are written.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointSpec<'a> {
    pub run: &'a Path,
    /// The model's config (written with the weights).
    pub config: &'a ModelConfig,
    /// The model directory whose side files (tokenizer, generation config) are copied.
    pub side_files_from: &'a Path,
    /// Keep at most this many checkpoints (`save_total_limit`).
    pub limit: Option<usize>,
    pub lora: Option<LoraCheckpoint<'a>>,
}

/// Save a checkpoint of step `state.step` as `spec` says (with `reference` when it is
/// synchronised with the policy, and PPO's `critic`).
pub fn save_checkpoint<B: FusedAutodiffBackend>(
    spec: &CheckpointSpec<'_>,
    state: &TrainerState,
    model: &CausalLm<B>,
    optim: &PolicyOptimizer<B>,
    reference: Option<&CausalLm<B::InnerBackend>>,
    critic: Option<&Critic<B>>,
) -> Result<PathBuf> {
    let CheckpointSpec {
        run,
        config,
        side_files_from,
        limit,
        lora,
    } = *spec;
    let root = checkpoints(run);
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    let dest = root.join(format!("step-{:06}", state.step));
    let tmp = root.join(format!(".tmp-step-{:06}", state.step));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    let opts = SaveOptions {
        side_files_from: Some(side_files_from.to_path_buf()),
        ..SaveOptions::default()
    };
    let written = (|| {
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        match lora {
            Some(l) => save_adapter(&model.valid(), l.config, l.base, &tmp.join(ADAPTER))?,
            None => save_model(&model.valid(), config, &tmp.join(MODEL), &opts)?,
        }
        save_optimizer(optim, model, &tmp.join(OPTIMIZER))?;
        if let Some(reference) = reference {
            save_model(reference, config, &tmp.join(REFERENCE), &opts)?;
        }
        if let Some(critic) = critic {
            critic.save(&tmp)?;
        }
        let json = serde_json::to_string_pretty(state)
            .map_err(|e| Error::serialize("the trainer state", e))?;
        write_atomic(&tmp.join(STATE), json.as_bytes())?;
        write_manifest(&tmp)?;
        replace_dir(&tmp, &dest)
    })();
    if written.is_err() {
        // a full disk: nothing half-written stays behind (the last complete checkpoint does)
        let _ = std::fs::remove_dir_all(&tmp);
    }
    written?;
    if let Some(limit) = limit {
        let all = list(run)?;
        for (_, old) in all.iter().take(all.len().saturating_sub(limit)) {
            std::fs::remove_dir_all(old).map_err(|e| Error::io(old, e))?;
        }
    }
    Ok(dest)
}

/// Complete checkpoints of `run`, oldest first (temporary directories are ignored).
pub fn list(run: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let root = checkpoints(run);
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|e| Error::io(&root, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(step) = name
            .strip_prefix("step-")
            .and_then(|s| s.parse::<usize>().ok())
        {
            if e.path().join(STATE).is_file() {
                out.push((step, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A loaded checkpoint.
pub struct Restored<B: FusedAutodiffBackend> {
    pub dir: PathBuf,
    pub state: TrainerState,
    pub model: CausalLm<B>,
    pub optim: PolicyOptimizer<B>,
    /// The synchronised reference, when the checkpoint has one.
    pub reference: Option<CausalLm<B::InnerBackend>>,
}

/// Load the latest complete checkpoint of `run`, or say there is none.
pub fn restore_latest<B: FusedAutodiffBackend>(
    run: &Path,
    optim: PolicyOptimizer<B>,
    lora: Option<LoraCheckpoint<'_>>,
    device: &B::Device,
) -> Result<Restored<B>> {
    let mut all = list(run)?;
    let Some((step, dir)) = all.pop() else {
        return Err(Error::arg(
            format!("--resume {}", run.display()),
            format!("no complete checkpoint in {}", checkpoints(run).display()),
        ));
    };
    // a corrupt checkpoint is refused, naming the file and the one to fall back on
    let offer = |e: Error| match all.last() {
        Some((_, previous)) => Error::Invalid(format!(
            "{e}; to resume from the previous checkpoint instead, delete {} (then --resume {} \
             takes {})",
            dir.display(),
            run.display(),
            previous.display()
        )),
        None => e,
    };
    if !verify_manifest(&dir).map_err(offer)? {
        tracing::warn!(checkpoint = %dir.display(), "no manifest (an older checkpoint): not verified");
    }
    let state_path = dir.join(STATE);
    let text = std::fs::read_to_string(&state_path).map_err(|e| Error::io(&state_path, e))?;
    let state: TrainerState =
        serde_json::from_str(&text).map_err(|e| Error::checkpoint(&state_path, e.to_string()))?;
    if state.step != step {
        return Err(offer(Error::checkpoint(
            &state_path,
            format!("says step {} in the directory of step {step}", state.step),
        )));
    }
    let model = match lora {
        Some(l) => {
            let (_, base) = load_model::<B>(l.base, device)?;
            load_adapter(
                base.with_lora(l.config, l.seed, device),
                &dir.join(ADAPTER),
                device,
            )?
        }
        None => load_model::<B>(&dir.join(MODEL), device)?.1,
    };
    let optim = load_optimizer(optim, &model, &dir.join(OPTIMIZER), device)?;
    let reference = match dir.join(REFERENCE) {
        r if r.is_dir() => Some(load_model::<B::InnerBackend>(&r, device)?.1),
        _ => None,
    };
    Ok(Restored {
        dir,
        state,
        model,
        optim,
        reference,
    })
}
