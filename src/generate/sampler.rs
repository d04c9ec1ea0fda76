//! Choosing the next token from one row of logits: greedy, or sampling with temperature, top-k,
//! top-p and min-p, combinable, applied in transformers' order (temperature → top-k → top-p →
//! min-p). Runs on the host on f32 logits with f64 accumulation.
//!
//! Besides the token it returns two log-probs: under the distribution it was drawn from (after
//! temperature and filtering, renormalised; 0 for greedy, a point mass) and under the model
//! itself (temperature 1, nothing filtered), which is what GRPO's ratios use.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::KeyError;

/// Sampling knobs (names as in transformers / TRL).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingParams {
    /// 0 = greedy (argmax); otherwise logits are divided by it.
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens (ties at the boundary kept); 0 = off.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p`; 1 = off.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` × the most likely one; 0 = off.
    pub min_p: f32,
    /// transformers' repetition penalty (CTRL's): before anything else, the logit of every
    /// token already in the prompt or the completion is divided by it when positive and
    /// multiplied by it when negative; 1 = off. It shapes what is drawn only: the model's own
    /// log-probs, which the trainer uses, are the unpenalised ones.
    #[serde(default = "no_penalty")]
    pub repetition_penalty: f32,
    /// Where the token is drawn: on the device for accelerators, on the host for host-memory
    /// backends (`auto`), or forced (`host`, `device`).
    #[serde(default)]
    pub sample_on: super::device_sampler::SampleOn,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            sample_on: Default::default(),
        }
    }
}

fn no_penalty() -> f32 {
    1.0
}

impl SamplingParams {
    /// Argmax decoding.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// Whether this is argmax decoding.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// Check the ranges; the error names the offending knob.
    pub fn validate(&self) -> std::result::Result<(), KeyError> {
        let bad = |what: &str, v: f32, range: &str| {
            Err(KeyError::new(what, format!("must be {range}, got {v}")))
        };
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad("temperature", self.temperature, "≥ 0 (0 = greedy)");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", self.top_p, "in (0, 1]");
        }
        if !(self.min_p >= 0.0 && self.min_p < 1.0) {
            return bad("min_p", self.min_p, "in [0, 1)");
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return bad(
                "repetition_penalty",
                self.repetition_penalty,
                "a finite number > 0 (1 = off)",
            );
        }
        Ok(())
    }
}

/// A chosen token and its log-probs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampled {
    pub token: u32,
    /// Log-prob under the distribution the token was drawn from (0 for greedy).
    pub logprob: f32,
    /// Log-prob under the model: `log_softmax(logits)[token]`.
    pub model_logprob: f32,
}

/// Index of the largest logit (the first one on ties, as `torch.argmax`). NaN never wins.
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] || logits[best].is_nan() {
            best = i;
        }
    }
    best
}

/// `log Σ exp(x)` in f64.
pub fn log_sum_exp(logits: &[f32]) -> f64 {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    if !m.is_finite() {
        return m;
    }
    m + logits
        .iter()
        .map(|&x| (x as f64 - m).exp())
        .sum::<f64>()
        .ln()
}

/// The filtered, renormalised sampling distribution as `(token, probability)` pairs, most likely
/// first. Panics never; an all-`-inf` row gives the argmax with probability 1.
pub fn filtered_distribution(logits: &[f32], params: &SamplingParams) -> Vec<(u32, f64)> {
    if params.is_greedy() || logits.is_empty() {
        return vec![(argmax(logits) as u32, 1.0)];
    }
    let t = params.temperature as f64;
    let mut cands: Vec<(u32, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &x)| (i as u32, x as f64 / t))
        .filter(|(_, x)| !x.is_nan())
        .collect();
    // top-k: keep everything at least as large as the k-th largest scaled logit.
    if params.top_k > 0 && params.top_k < cands.len() {
        let k = params.top_k;
        let (_, kth, _) = cands.select_nth_unstable_by(k - 1, |a, b| desc(a.1, b.1));
        let threshold = kth.1;
        cands.retain(|c| c.1 >= threshold);
    }
    // softmax over the survivors
    let m = cands.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return vec![(argmax(logits) as u32, 1.0)];
    }
    for c in &mut cands {
        c.1 = (c.1 - m).exp();
    }
    let z: f64 = cands.iter().map(|c| c.1).sum();
    for c in &mut cands {
        c.1 /= z;
    }
    // top-p: most likely first, keep a token while the mass before it is below top_p. A heap
    // pops only as many tokens as the nucleus holds (O(V + n log V), not a full sort).
    let mut kept: Vec<(u32, f64)> = if params.top_p < 1.0 {
        let mut heap: BinaryHeap<ByProb> = cands.into_iter().map(ByProb).collect();
        let mut kept = Vec::new();
        let mut before = 0.0;
        while let Some(ByProb(c)) = heap.pop() {
            if before >= params.top_p as f64 {
                break;
            }
            before += c.1;
            kept.push(c);
        }
        kept
    } else {
        cands.sort_by(|a, b| desc(a.1, b.1).then(a.0.cmp(&b.0)));
        cands
    };
    // min-p: relative to the most likely survivor.
    if params.min_p > 0.0 {
        let threshold = kept[0].1 * params.min_p as f64;
        kept.retain(|c| c.1 >= threshold);
    }
    let z: f64 = kept.iter().map(|c| c.1).sum();
    for c in &mut kept {
        c.1 /= z;
    }
    kept
}

/// transformers' `RepetitionPenaltyLogitsProcessor` on one row: every token of `seen` (the
/// prompt and the completion so far; repeats count once) has its logit divided by `penalty`
/// when positive, multiplied by it otherwise.
pub fn penalise_repeats(logits: &mut [f32], seen: impl IntoIterator<Item = u32>, penalty: f32) {
    let mut done = std::collections::HashSet::new();
    for t in seen {
        let Some(x) = logits.get_mut(t as usize) else {
            continue;
        };
        if done.insert(t) {
            *x = if *x < 0.0 { *x * penalty } else { *x / penalty };
        }
    }
}

/// [`sample`] from `logits` penalised for the `seen` tokens ([`penalise_repeats`]); the model's
/// log-prob is the unpenalised logits'.
pub fn sample_penalised(
    logits: &[f32],
    seen: impl IntoIterator<Item = u32>,
    params: &SamplingParams,
    rng: &mut impl Rng,
) -> Sampled {
    let mut penalised = logits.to_vec();
    penalise_repeats(&mut penalised, seen, params.repetition_penalty);
    let mut s = sample(&penalised, params, rng);
    s.model_logprob = (logits[s.token as usize] as f64 - log_sum_exp(logits)) as f32;
    s
}

/// Pick the next token from `logits` (one row, f32) with `rng`.
pub fn sample(logits: &[f32], params: &SamplingParams, rng: &mut impl Rng) -> Sampled {
    if !params.is_greedy() && params.top_k == 0 && params.top_p >= 1.0 && params.min_p == 0.0 {
        return sample_unfiltered(logits, params.temperature, rng);
    }
    let lse = log_sum_exp(logits);
    let model_lp = |t: u32| (logits[t as usize] as f64 - lse) as f32;
    if params.is_greedy() {
        let token = argmax(logits) as u32;
        return Sampled {
            token,
            logprob: 0.0,
            model_logprob: model_lp(token),
        };
    }
    let dist = filtered_distribution(logits, params);
    let u: f64 = rng.random();
    let mut acc = 0.0;
    let mut chosen = dist[dist.len() - 1];
    for &c in &dist {
        acc += c.1;
        if u < acc {
            chosen = c;
            break;
        }
    }
    Sampled {
        token: chosen.0,
        logprob: chosen.1.ln() as f32,
        model_logprob: model_lp(chosen.0),
    }
}

/// Plain temperature sampling (no top-k/top-p/min-p, GRPO's default): one pass of exps in
/// index order and a walk to the drawn mass — no sort and no candidate list, which cost 12 % of
/// a GRPO step's time on the bench-small shape (vocabulary 4096). At temperature 1 the model's
/// log-sum-exp comes from the same pass.
fn sample_unfiltered(logits: &[f32], temperature: f32, rng: &mut impl Rng) -> Sampled {
    let m = logits
        .iter()
        .copied()
        .filter(|x| !x.is_nan())
        .fold(f32::NEG_INFINITY, f32::max) as f64;
    if !m.is_finite() {
        let token = argmax(logits);
        let lse = log_sum_exp(logits);
        return Sampled {
            token: token as u32,
            logprob: 0.0,
            model_logprob: (logits[token] as f64 - lse) as f32,
        };
    }
    let inv_t = 1.0 / temperature as f64;
    let weights: Vec<f64> = logits
        .iter()
        .map(|&x| {
            if x.is_nan() {
                0.0
            } else {
                ((x as f64 - m) * inv_t).exp()
            }
        })
        .collect();
    let z: f64 = weights.iter().sum();
    let target = rng.random::<f64>() * z;
    let mut acc = 0.0;
    let mut token = argmax(logits);
    for (i, &w) in weights.iter().enumerate() {
        acc += w;
        if w > 0.0 && target < acc {
            token = i;
            break;
        }
    }
    let lse = if temperature == 1.0 {
        m + z.ln()
    } else {
        log_sum_exp(logits)
    };
    Sampled {
        token: token as u32,
        logprob: (weights[token] / z).ln() as f32,
        model_logprob: (logits[token] as f64 - lse) as f32,
    }
}

/// Descending order of probabilities / logits.
fn desc(a: f64, b: f64) -> Ordering {
    b.partial_cmp(&a).unwrap_or(Ordering::Equal)
}

/// Max-heap order: higher probability first, then the lower token id.
struct ByProb((u32, f64));

impl PartialEq for ByProb {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for ByProb {}
impl PartialOrd for ByProb {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByProb {
    fn cmp(&self, other: &Self) -> Ordering {
        desc(other.0 .1, self.0 .1).then(other.0 .0.cmp(&self.0 .0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Probabilities 0.4, 0.3, 0.2, 0.1 (logits are their logs).
    fn logits() -> Vec<f32> {
        [0.4f32, 0.3, 0.2, 0.1].iter().map(|p| p.ln()).collect()
    }

    fn params(temperature: f32, top_k: usize, top_p: f32, min_p: f32) -> SamplingParams {
        SamplingParams {
            temperature,
            top_k,
            top_p,
            min_p,
            ..SamplingParams::default()
        }
    }

    fn probs(d: &[(u32, f64)]) -> Vec<(u32, f64)> {
        d.iter()
            .map(|&(t, p)| (t, (p * 1e6).round() / 1e6))
            .collect()
    }

    #[test]
    fn filters_keep_exactly_what_they_must() {
        let l = logits();
        // nothing filtered
        assert_eq!(
            probs(&filtered_distribution(&l, &params(1.0, 0, 1.0, 0.0))),
            vec![(0, 0.4), (1, 0.3), (2, 0.2), (3, 0.1)]
        );
        // top-k 2 → 0.4/0.7, 0.3/0.7
        assert_eq!(
            probs(&filtered_distribution(&l, &params(1.0, 2, 1.0, 0.0))),
            vec![(0, 0.571429), (1, 0.428571)]
        );
        // top-p 0.7: 0.4 (mass before 0 < 0.7), 0.3 (0.4 < 0.7), not 0.2 (0.7 ≥ 0.7)
        assert_eq!(
            probs(&filtered_distribution(&l, &params(1.0, 0, 0.7, 0.0))),
            vec![(0, 0.571429), (1, 0.428571)]
        );
        // top-p 0.71 keeps the third token too
        assert_eq!(
            filtered_distribution(&l, &params(1.0, 0, 0.71, 0.0)).len(),
            3
        );
        // top-p tiny keeps the single most likely token
        assert_eq!(
            filtered_distribution(&l, &params(1.0, 0, 1e-6, 0.0)),
            vec![(0, 1.0)]
        );
        // min-p 0.45: threshold 0.18 → 0.4, 0.3, 0.2 kept
        assert_eq!(
            probs(&filtered_distribution(&l, &params(1.0, 0, 1.0, 0.45))),
            vec![(0, 0.444444), (1, 0.333333), (2, 0.222222)]
        );
        // combined: top-k 3 (0.4, 0.3, 0.2 → 4/9, 3/9, 2/9), then min-p 0.6 (threshold 4/15)
        assert_eq!(
            probs(&filtered_distribution(&l, &params(1.0, 3, 1.0, 0.6))),
            vec![(0, 0.571429), (1, 0.428571)]
        );
        // temperature 0.5 squares the probabilities: 16, 9, 4, 1 over 30
        assert_eq!(
            probs(&filtered_distribution(&l, &params(0.5, 0, 1.0, 0.0))),
            vec![(0, 0.533333), (1, 0.3), (2, 0.133333), (3, 0.033333)]
        );
    }

    #[test]
    fn top_k_keeps_ties_at_the_boundary() {
        let l = [1.0f32, 3.0, 2.0, 2.0, 0.0];
        let d = filtered_distribution(&l, &params(1.0, 2, 1.0, 0.0));
        let mut tokens: Vec<u32> = d.iter().map(|c| c.0).collect();
        tokens.sort();
        assert_eq!(tokens, vec![1, 2, 3]);
    }

    #[test]
    fn greedy_is_argmax_with_model_logprob() {
        let l = logits();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let s = sample(&l, &SamplingParams::greedy(), &mut rng);
        assert_eq!(s.token, 0);
        assert_eq!(s.logprob, 0.0);
        assert!((s.model_logprob - 0.4f32.ln()).abs() < 1e-6);
        assert_eq!(argmax(&[1.0, 5.0, 5.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 1.0]), 1);
    }

    /// Pearson's chi-square of 200 000 draws against the filtered distribution. With 3 degrees
    /// of freedom the 0.999 quantile is 16.27: a correct sampler fails this once in a thousand
    /// seeds, and the seed is fixed. A sampler off by 1 % in one cell (Δ = 2 000 draws on 80 000)
    /// gives χ² ≈ 50.
    #[test]
    fn empirical_frequencies_match_the_filtered_distribution() {
        let l = logits();
        for p in [
            params(1.0, 0, 1.0, 0.0),
            params(0.7, 0, 1.0, 0.0),
            params(1.3, 0, 0.95, 0.0),
            params(1.0, 3, 1.0, 0.0),
            params(1.0, 0, 1.0, 0.3),
        ] {
            let dist = filtered_distribution(&l, &p);
            let mut rng = ChaCha8Rng::seed_from_u64(1234);
            let n = 200_000;
            let mut counts = [0usize; 4];
            for _ in 0..n {
                let s = sample(&l, &p, &mut rng);
                counts[s.token as usize] += 1;
                let q = dist.iter().find(|c| c.0 == s.token).unwrap().1;
                assert!((s.logprob as f64 - q.ln()).abs() < 1e-6);
            }
            let mut chi2 = 0.0;
            for &(t, q) in &dist {
                let e = q * n as f64;
                chi2 += (counts[t as usize] as f64 - e).powi(2) / e;
            }
            let excluded: usize = (0..4u32)
                .filter(|t| !dist.iter().any(|c| c.0 == *t))
                .map(|t| counts[t as usize])
                .sum();
            assert_eq!(excluded, 0, "{p:?}: filtered-out tokens were drawn");
            // critical value for len-1 degrees of freedom at 0.999
            let crit = [0.0, 10.83, 13.82, 16.27][dist.len() - 1];
            assert!(chi2 < crit, "{p:?}: chi² {chi2:.2} ≥ {crit} ({counts:?})");
        }
    }

    #[test]
    fn validation_names_the_knob() {
        let e = params(1.0, 0, 1.5, 0.0).validate().unwrap_err().to_string();
        assert!(e.contains("top_p") && e.contains("1.5"), "{e}");
        let e = params(-1.0, 0, 1.0, 0.0)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("temperature"), "{e}");
        let e = params(1.0, 0, 1.0, 1.0).validate().unwrap_err().to_string();
        assert!(e.contains("min_p"), "{e}");
        assert!(SamplingParams::default().validate().is_ok());
    }
}
