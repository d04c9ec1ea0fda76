//! Several processes (nodes) training one policy (the connections: `rl::mesh`).
//!
//! Every node runs `mgrpo train` with the same config and its own `node_rank`; node 0 listens
//! on `rendezvous` until the others have joined. A node's `num_devices` devices are ranks
//! `node_rank × num_devices + k` of the run's `num_nodes × num_devices`:
//! - **Rollouts.** Each rank generates its contiguous shard of the step's prompts (the samples
//!   keep their RNG streams, as on one node), then the nodes exchange them with one sum
//!   ([`gather_generation`]: every completion in its own slot of a zero buffer, so the sum is a
//!   gather), and every node holds the step's whole rollout, exactly as one process would.
//! - **Update.** Rank `r` runs micro-batches `r, r + world, …`; the gradients and statistics
//!   are summed locally, then over the nodes (`rl::reduce`, `rl::mesh`).
//!
//! Every node scores the whole rollout, writes its own run directory (checkpoints and
//! metrics, the same weights on every node) and resumes from it.

use crate::fused::FusedBackend;
use burn::prelude::*;

use super::reduce::Reducer;
use crate::error::{Error, Result};
use crate::fused::tensor::read_back;
use crate::generate::{Completion, FinishReason, GenerateStats, Generation};
use crate::text::tokenizer::Tokenizer;

/// This process's place among the nodes of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// `num_nodes`.
    pub count: usize,
    /// `node_rank`, 0-based.
    pub rank: usize,
}

/// The port of a `host:port` address, or why it is not one.
pub fn parse_port(address: &str) -> std::result::Result<u16, String> {
    let bad = |why: &str| format!("`{address}` {why} (expected host:port, e.g. 10.0.0.1:29500)");
    let (host, port) = address.rsplit_once(':').ok_or_else(|| bad("has no port"))?;
    if host.is_empty() || host.contains("://") || host.contains('/') {
        return Err(bad("is not a host name or IP address"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(bad("has no valid port")),
    }
}

/// With `local` devices per node: the ranks of the whole run and this process's first one
/// (`local`, 0 without other nodes).
pub fn ranks(nodes: Option<&Place>, local: usize) -> (usize, usize) {
    match nodes {
        Some(nodes) => (local * nodes.count, local * nodes.rank),
        None => (local, 0),
    }
}

/// Where every completion of a multi-node rollout goes in the gathered tensor.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Prompts of the whole rollout.
    pub prompts: usize,
    /// Completions per prompt.
    pub n: usize,
    /// Token budget per completion.
    pub max_new_tokens: usize,
}

/// Header: prompt tokens, generated tokens, failed devices.
const HEADER: usize = 3;
/// Per completion: present, its length, its finish reason, then ids and both log-probs.
const FIELDS: usize = 3;
/// Ids travel as f32: exact below 2^24.
const MAX_ID: u32 = 1 << 24;

impl Layout {
    fn slot(&self) -> usize {
        FIELDS + 3 * self.max_new_tokens
    }

    /// Values in the gathered tensor.
    pub fn size(&self) -> usize {
        HEADER + self.prompts * self.n * self.slot()
    }

    /// `generation` (a shard's, with prompt indices of the whole rollout) in its slots,
    /// zeros elsewhere; `failed` when this device's generation failed.
    pub fn encode(&self, generation: Option<&Generation>) -> Result<Vec<f32>> {
        let mut v = vec![0.0f32; self.size()];
        let Some(g) = generation else {
            v[2] = 1.0;
            return Ok(v);
        };
        v[0] = g.stats.prompt_tokens as f32;
        v[1] = g.stats.generated_tokens as f32;
        let slot = self.slot();
        for c in &g.completions {
            let k = c.prompt_index * self.n + c.sample_index;
            if c.prompt_index >= self.prompts
                || c.sample_index >= self.n
                || c.ids.len() > self.max_new_tokens
            {
                return Err(Error::Backend(format!(
                    "multi-node gather: completion {}/{} of {} tokens does not fit the layout",
                    c.prompt_index,
                    c.sample_index,
                    c.ids.len()
                )));
            }
            if let Some(&id) = c.ids.iter().find(|&&id| id >= MAX_ID) {
                return Err(Error::Backend(format!(
                    "multi-node gather: token id {id} is not exact in f32"
                )));
            }
            let at = HEADER + k * slot;
            let t = self.max_new_tokens;
            v[at] = 1.0;
            v[at + 1] = c.ids.len() as f32;
            v[at + 2] = match c.finish_reason {
                FinishReason::Eos => 0.0,
                FinishReason::Stop => 1.0,
                FinishReason::Length => 2.0,
            };
            let body = at + FIELDS;
            for (i, &id) in c.ids.iter().enumerate() {
                v[body + i] = id as f32;
            }
            v[body + t..body + t + c.logprobs.len()].copy_from_slice(&c.logprobs);
            v[body + 2 * t..body + 2 * t + c.model_logprobs.len()]
                .copy_from_slice(&c.model_logprobs);
        }
        Ok(v)
    }

    /// The whole rollout from the summed tensor (texts decoded again with `tokenizer`).
    pub fn decode(&self, v: &[f32], tokenizer: Option<&Tokenizer>) -> Result<Generation> {
        if v.len() != self.size() {
            return Err(Error::Backend("multi-node gather: wrong length".into()));
        }
        if v[2] > 0.0 {
            return Err(Error::Backend(
                "multi-node gather: another device's generation failed".into(),
            ));
        }
        let slot = self.slot();
        let t = self.max_new_tokens;
        let mut completions = Vec::with_capacity(self.prompts * self.n);
        for k in 0..self.prompts * self.n {
            let at = HEADER + k * slot;
            if v[at] != 1.0 {
                return Err(Error::Backend(format!(
                    "multi-node gather: completion {k} arrived {} times",
                    v[at]
                )));
            }
            let len = v[at + 1] as usize;
            let body = at + FIELDS;
            let ids: Vec<u32> = v[body..body + len].iter().map(|&x| x as u32).collect();
            let text = tokenizer.map(|tk| tk.decode(&ids, true)).transpose()?;
            completions.push(Completion {
                prompt_index: k / self.n,
                sample_index: k % self.n,
                text,
                finish_reason: match v[at + 2] as u32 {
                    0 => FinishReason::Eos,
                    1 => FinishReason::Stop,
                    _ => FinishReason::Length,
                },
                logprobs: v[body + t..body + t + len].to_vec(),
                model_logprobs: v[body + 2 * t..body + 2 * t + len].to_vec(),
                ids,
            });
        }
        Ok(Generation {
            completions,
            stats: GenerateStats {
                prompt_tokens: v[0] as usize,
                generated_tokens: v[1] as usize,
                ..GenerateStats::default()
            },
        })
    }
}

/// One device's part of a multi-node rollout: its shard (`Err` when its generation failed:
/// it still joins the sum, so no device waits forever) summed with every other device's.
/// Returns the whole rollout on device 0 of each node (`None` elsewhere), with this node's
/// wall times; the shard's error, if any, after the sum.
pub fn gather_generation<B: FusedBackend>(
    shard: Result<Generation>,
    layout: Layout,
    reducer: &Reducer<B>,
    tokenizer: Option<&Tokenizer>,
    device: &B::Device,
) -> Result<Option<Generation>> {
    let local = layout.encode(shard.as_ref().ok())?;
    let t = Tensor::<B, 1>::from_data(TensorData::new(local, [layout.size()]), device);
    let total = reducer.sum(t, "gathering the rollout")?;
    let stats = match shard {
        Err(e) => return Err(e),
        Ok(g) => g.stats,
    };
    if reducer.local != 0 {
        return Ok(None);
    }
    let v = read_back(total, "the gathered rollout")?;
    let mut all = layout.decode(&v, tokenizer)?;
    all.stats.prefill_secs = stats.prefill_secs;
    all.stats.decode_secs = stats.decode_secs;
    Ok(Some(all))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(p: usize, s: usize, ids: &[u32], reason: FinishReason) -> Completion {
        Completion {
            prompt_index: p,
            sample_index: s,
            ids: ids.to_vec(),
            text: None,
            finish_reason: reason,
            logprobs: ids.iter().map(|&i| -(i as f32) / 7.0).collect(),
            model_logprobs: ids.iter().map(|&i| -(i as f32) / 3.0).collect(),
        }
    }

    /// Two shards encoded apart and summed decode to the whole rollout, in prompt order.
    #[test]
    fn shards_sum_to_the_whole_rollout() {
        let layout = Layout {
            prompts: 3,
            n: 2,
            max_new_tokens: 4,
        };
        let shard = |cs: Vec<Completion>, p, g| Generation {
            completions: cs,
            stats: GenerateStats {
                prompt_tokens: p,
                generated_tokens: g,
                ..Default::default()
            },
        };
        let a = shard(
            vec![
                completion(0, 0, &[5, 6], FinishReason::Eos),
                completion(0, 1, &[7], FinishReason::Stop),
            ],
            4,
            3,
        );
        let b = shard(
            vec![
                completion(1, 0, &[1, 2, 3, 4], FinishReason::Length),
                completion(1, 1, &[], FinishReason::Eos),
                completion(2, 0, &[9], FinishReason::Eos),
                completion(2, 1, &[16_777_215], FinishReason::Eos),
            ],
            6,
            6,
        );
        let (ea, eb) = (
            layout.encode(Some(&a)).unwrap(),
            layout.encode(Some(&b)).unwrap(),
        );
        let sum: Vec<f32> = ea.iter().zip(&eb).map(|(x, y)| x + y).collect();
        let all = layout.decode(&sum, None).unwrap();
        let want: Vec<Completion> = a.completions.into_iter().chain(b.completions).collect();
        assert_eq!(all.completions.len(), want.len());
        for (got, want) in all.completions.iter().zip(&want) {
            assert_eq!(got.prompt_index, want.prompt_index);
            assert_eq!(got.sample_index, want.sample_index);
            assert_eq!(got.ids, want.ids);
            assert_eq!(got.finish_reason, want.finish_reason);
            assert_eq!(got.logprobs, want.logprobs);
            assert_eq!(got.model_logprobs, want.model_logprobs);
        }
        assert_eq!(
            (all.stats.prompt_tokens, all.stats.generated_tokens),
            (10, 9)
        );
        // a missing shard, a failed device, a too-long completion, an id f32 cannot hold
        assert!(layout.decode(&ea, None).is_err());
        let mut failed = layout.encode(None).unwrap();
        failed.iter_mut().zip(&sum).for_each(|(x, y)| *x += y);
        assert!(layout
            .decode(&failed, None)
            .unwrap_err()
            .to_string()
            .contains("failed"));
        let long = shard(
            vec![completion(0, 0, &[1, 2, 3, 4, 5], FinishReason::Length)],
            0,
            0,
        );
        assert!(layout.encode(Some(&long)).is_err());
        let big = shard(vec![completion(0, 0, &[1 << 24], FinishReason::Eos)], 0, 0);
        assert!(layout.encode(Some(&big)).is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_port("10.0.0.1:29500").unwrap(), 29500);
        assert_eq!(parse_port("localhost:1").unwrap(), 1);
        for bad in ["10.0.0.1", ":80", "h:0", "h:70000", "ws://h:80", "h:x"] {
            let e = parse_port(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }
}
