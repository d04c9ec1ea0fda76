//! Choosing the next token of every row being decoded: greedy on the device, sampled on the
//! device or the host, with the repetition penalty on the host.

use burn::prelude::*;
use burn::tensor::DType;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::device_sampler::{sample_on_device, DeviceDraw};
use super::sampler::{sample, sample_penalised, Sampled, SamplingParams};
use super::Row;
use crate::error::{Error, Result};
use crate::fused::FusedBackend;

/// The next token of every active row from `logits` (`[n, vocab]`). Greedy decoding reduces on
/// the device and reads back two numbers per row; sampling draws on the device with a uniform
/// from each row's RNG (`device_sampler`) when `on_device`, else reads the logits back and
/// draws on the host. A repetition penalty (which needs each row's tokens) is applied on the
/// host, greedy or not.
pub(super) fn pick_tokens<B: FusedBackend>(
    logits: Tensor<B, 2>,
    params: &SamplingParams,
    on_device: bool,
    rows: &mut [Row],
    active: &[usize],
    prompts: &[Vec<u32>],
) -> Result<Vec<Sampled>> {
    let logits = logits.cast(DType::F32);
    let [n, vocab] = logits.dims();
    let penalty = params.repetition_penalty != 1.0;
    if params.is_greedy() && !penalty {
        let argmax = logits.clone().argmax(1); // [n, 1]
                                               // log p(argmax), by the fused log-softmax + gather (no [n, vocab] exponentials)
        let lp = crate::fused::token_logprobs(logits.unsqueeze_dim(1), argmax.clone(), false);
        let tokens = read_ints(argmax)?;
        let lps = read_floats(lp.logprobs)?;
        if let Some(i) = lps.iter().position(|lp| lp.is_nan()) {
            return Err(nonfinite_logits(active[i]));
        }
        return Ok(tokens
            .into_iter()
            .zip(lps)
            .map(|(t, lp)| Sampled {
                token: t as u32,
                logprob: 0.0,
                model_logprob: lp,
            })
            .collect());
    }
    if on_device && !penalty {
        let uniforms = || {
            active
                .iter()
                .map(|&r| rows[r].rng.random::<f64>())
                .collect()
        };
        match sample_on_device(logits.clone(), params, uniforms)? {
            DeviceDraw::Picks(picks) => return Ok(picks),
            DeviceDraw::Broken(i) => return Err(nonfinite_logits(active[i])),
            DeviceDraw::AllMasked => {} // the host's rule for a row with no finite logit
        }
    }
    let host = read_floats(logits)?;
    // -inf is an impossible token; NaN or +inf is a broken forward pass
    if let Some(at) = host.iter().position(|x| x.is_nan() || *x == f32::INFINITY) {
        return Err(nonfinite_logits(active[at / vocab]));
    }
    // each row's prompt and completion so far, for the repetition penalty
    let seen: Option<Vec<Vec<u32>>> = penalty.then(|| {
        active
            .iter()
            .map(|&r| {
                let row = &rows[r];
                let prompt = prompts[row.prompt_index].iter();
                prompt.chain(&row.ids).copied().collect()
            })
            .collect()
    });
    // the rows draw in parallel (the f64 filters and exponentials of a row are ~1/4 of a CPU
    // decode step): each from its own stream, so the draws do not depend on the split
    let mut slots: Vec<Option<&mut ChaCha8Rng>> =
        rows.iter_mut().map(|r| Some(&mut r.rng)).collect();
    let rngs: Vec<&mut ChaCha8Rng> = active.iter().filter_map(|&r| slots[r].take()).collect();
    debug_assert_eq!(rngs.len(), n, "active rows are distinct");
    if let Some(seen) = seen {
        return Ok(host
            .par_chunks(vocab.max(1))
            .zip(rngs)
            .zip(seen)
            .map(|((logits, rng), seen)| sample_penalised(logits, seen, params, rng))
            .collect());
    }
    Ok(host
        .par_chunks(vocab.max(1))
        .zip(rngs)
        .map(|(logits, rng)| sample(logits, params, rng))
        .collect())
}

/// Logits with NaN or +inf: text sampled from them would be noise with null log-probs.
fn nonfinite_logits(row: usize) -> Error {
    Error::Invalid(format!(
        "non-finite logits (NaN or +inf) while decoding row {row}: the forward pass overflowed \
         (in bf16, try f32) or the weights are not finite"
    ))
}

fn read_floats<B: FusedBackend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>> {
    crate::fused::tensor::read_back(t, "logits")
}

fn read_ints<B: FusedBackend, const D: usize>(t: Tensor<B, D, Int>) -> Result<Vec<i64>> {
    crate::fused::tensor::read_back_ints(t, "token ids")
}
