//! The KV cache: every layer's keys and values of the tokens seen so far, preallocated for the
//! batch's longest sequence so that memory does not grow per token.
//!
//! It is a plain value passed explicitly to [`super::CausalLm::forward_cached`]; the
//! model layers hold no state. Rows are left-padded: row `r`'s first `pad_lens[r]` slots hold
//! padding (masked as keys), everything after is real.

use crate::fused::FusedBackend;
use burn::prelude::*;
use burn::tensor::DType;

use super::config::ModelConfig;

/// Keys and values of one decoder layer.
///
/// # Shapes
/// - `k`, `v`: `[batch, kv_heads, capacity, head_dim]`; slots `len..capacity` are unused.
#[derive(Debug, Clone)]
pub struct LayerKv<B: Backend> {
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
}

impl<B: FusedBackend> LayerKv<B> {
    /// Write `k_new`/`v_new` (`[batch, kv_heads, s, head_dim]`) at slots `offset..offset + s`
    /// and return the updated cache with the keys and values of slots `0..keys` (`keys` ≥
    /// `offset + s`: the slots after the written ones are masked; see
    /// [`KvCache::bucketed`]). Taking `self` by value leaves the buffers uniquely owned, so CPU
    /// backends write in place.
    pub fn append(
        self,
        offset: usize,
        k_new: Tensor<B, 4>,
        v_new: Tensor<B, 4>,
        keys: usize,
    ) -> (Self, Tensor<B, 4>, Tensor<B, 4>) {
        let [b, kvh, s, hd] = k_new.dims();
        let end = offset + s;
        let k = B::fused_cache_write(self.k, offset, k_new);
        let v = B::fused_cache_write(self.v, offset, v_new);
        let keys = keys.max(end);
        let k_all = k.clone().slice([0..b, 0..kvh, 0..keys, 0..hd]);
        let v_all = v.clone().slice([0..b, 0..kvh, 0..keys, 0..hd]);
        (Self { k, v }, k_all, v_all)
    }
}

/// The whole model's cache for one batch of rows.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    layers: Vec<LayerKv<B>>,
    /// Padding slots at the front of each row.
    pad_lens: Vec<usize>,
    /// Filled slots (the same for every row).
    len: usize,
    capacity: usize,
    /// Attention reads the cache in length buckets ([`bucket_len`]).
    bucketed: bool,
}

/// The bucket a key length `n` falls in: `n` rounded up to a multiple of
/// `max(64, next_power_of_two(n) / 16)` — at most 63 masked slots up to 1024 keys, at most
/// 12.5 % beyond, with eight lengths per doubling: a decode of any length runs a bounded set of
/// attention shapes (32 up to 4096 keys).
pub fn bucket_len(n: usize) -> usize {
    let g = (n.next_power_of_two() / 16).max(64);
    n.div_ceil(g) * g
}

impl<B: FusedBackend> KvCache<B> {
    /// An empty cache for `pad_lens.len()` rows of up to `capacity` tokens (prompt + new), in
    /// `dtype` (the model's activation dtype).
    pub fn new(
        config: &ModelConfig,
        pad_lens: Vec<usize>,
        capacity: usize,
        dtype: DType,
        device: &B::Device,
    ) -> Self {
        let shape = [
            pad_lens.len(),
            config.num_key_value_heads,
            capacity,
            config.head_dim(),
        ];
        let layers = (0..config.num_hidden_layers)
            .map(|_| LayerKv {
                k: Tensor::zeros(shape, (device, dtype)),
                v: Tensor::zeros(shape, (device, dtype)),
            })
            .collect();
        Self {
            layers,
            pad_lens,
            len: 0,
            capacity,
            bucketed: false,
        }
    }

    /// [`Self::new`], but attention reads the cache in length buckets: keys `0..bucket_len(len)`
    /// with the unfilled ones masked, and the capacity rounded up to a bucket. A decode then
    /// runs a bounded set of shapes, so a GPU backend compiles and autotunes a bounded set of
    /// kernels instead of new ones for every length; the extra keys cost a little compute.
    pub fn bucketed(
        config: &ModelConfig,
        pad_lens: Vec<usize>,
        capacity: usize,
        dtype: DType,
        device: &B::Device,
    ) -> Self {
        let mut cache = Self::new(config, pad_lens, bucket_len(capacity), dtype, device);
        cache.bucketed = true;
        cache
    }

    /// How many key slots attention reads when `total` are filled.
    fn keys(&self, total: usize) -> usize {
        if self.bucketed {
            bucket_len(total).min(self.capacity).max(total)
        } else {
            total
        }
    }

    /// Filled slots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots allocated per row.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Rows in the cache.
    pub fn batch(&self) -> usize {
        self.pad_lens.len()
    }

    /// Padding slots at the front of each row.
    pub fn pad_lens(&self) -> &[usize] {
        &self.pad_lens
    }

    /// Bytes held by the keys and values of all layers.
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| 2 * l.k.shape().num_elements() * l.k.dtype().size())
            .sum()
    }

    /// Keep (and reorder, or repeat) the rows `rows` of the batch: the cache of row `rows[i]`
    /// becomes row `i`. Used to drop finished rows and to give each of G samples a copy of its
    /// prompt's prefill.
    pub fn select_rows(&mut self, rows: &[usize]) {
        if let Some(first) = self.layers.first() {
            let idx = index_tensor::<B>(rows, &first.k.device());
            for layer in &mut self.layers {
                layer.k = layer.k.clone().select(0, idx.clone());
                layer.v = layer.v.clone().select(0, idx.clone());
            }
        }
        self.pad_lens = rows.iter().map(|&r| self.pad_lens[r]).collect();
    }

    /// Take the layer caches out (to thread them through the layers by value) with the slot
    /// offset at which the next tokens go; give them back with [`Self::put_layers`].
    pub(crate) fn take_layers(&mut self) -> (Vec<LayerKv<B>>, usize) {
        (std::mem::take(&mut self.layers), self.len)
    }

    /// Put the layer caches back after `s` more slots were written.
    pub(crate) fn put_layers(&mut self, layers: Vec<LayerKv<B>>, s: usize) {
        self.layers = layers;
        self.len += s;
    }

    /// The attention mask for `s` new queries at slots `len..len + s` against keys
    /// `0..keys` (`len + s`, or its bucket): a key is masked (`true`) when it lies after the
    /// query (causal, which covers the unfilled slots of a bucket) or is padding — except that
    /// a padding query sees itself, so that no row is fully masked.
    ///
    /// # Shapes
    /// - returns `[batch, 1, s, keys]`
    pub fn mask(&self, s: usize, device: &B::Device) -> Tensor<B, 4, Bool> {
        let total = self.keys(self.len + s);
        let b = self.batch();
        let mut data = Vec::with_capacity(b * s * total);
        for &pad in &self.pad_lens {
            for i in 0..s {
                let q = self.len + i;
                data.extend((0..total).map(|j| j > q || (j < pad && j != q)));
            }
        }
        Tensor::from_data(TensorData::new(data, [b, 1, s, total]), device)
    }
}

/// `rows` as a 1-d index tensor on `device` (for `select` on the batch axis).
pub fn index_tensor<B: FusedBackend>(rows: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    Tensor::from_data(
        TensorData::new(rows.iter().map(|&r| r as i64).collect(), [rows.len()]),
        device,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestBackend;

    fn config() -> ModelConfig {
        ModelConfig::new(16, 8, 16, 2, 2, 1, true)
    }

    #[test]
    fn append_writes_and_returns_the_filled_prefix() {
        let dev = Default::default();
        let mut cache = KvCache::<TestBackend>::new(&config(), vec![0, 1], 5, DType::F32, &dev);
        assert_eq!(cache.bytes(), 2 * 2 * (2 * 5 * 4) * 4);
        let ones = Tensor::<TestBackend, 4>::ones([2, 1, 2, 4], &dev);
        let (mut layers, offset) = cache.take_layers();
        assert_eq!(offset, 0);
        let l0 = layers.remove(0);
        let (l0, k, v) = l0.append(offset, ones.clone(), ones.clone() * 2.0, 0);
        assert_eq!(k.dims(), [2, 1, 2, 4]);
        assert_eq!(v.into_data().to_vec::<f32>().unwrap(), vec![2.0; 16]);
        layers.insert(0, l0);
        cache.put_layers(layers, 2);
        let (mut layers, offset) = cache.take_layers();
        assert_eq!(offset, 2);
        let (_, k, _) = layers.remove(0).append(offset, ones.clone() * 3.0, ones, 0);
        let k: Vec<f32> = k.into_data().to_vec().unwrap();
        assert_eq!(k.len(), 2 * 4 * 4);
        assert_eq!(&k[..16], [[1.0; 8], [3.0; 8]].concat());
    }

    /// Buckets: multiples of 64 up to 1024, then of a sixteenth of the next power of two; a
    /// bucketed cache reads keys up to the bucket, the unfilled ones masked by causality.
    #[test]
    fn buckets_bound_the_key_lengths() {
        let want = [
            (1, 64),
            (64, 64),
            (65, 128),
            (513, 576),
            (1000, 1024),
            (1025, 1152),
        ];
        for (n, b) in want {
            assert_eq!(bucket_len(n), b, "{n}");
        }
        let shapes: std::collections::BTreeSet<usize> = (1..=4096).map(bucket_len).collect();
        assert_eq!(shapes.len(), 16 + 8 + 8);
        let dev = Default::default();
        let mut cache =
            KvCache::<TestBackend>::bucketed(&config(), vec![0, 1], 70, DType::F32, &dev);
        assert_eq!(cache.capacity(), 128);
        let (layers, _) = cache.take_layers();
        cache.put_layers(layers, 3);
        let mask = cache.mask(1, &dev);
        assert_eq!(mask.dims(), [2, 1, 1, 64]);
        let m: Vec<bool> = mask.into_data().to_vec().unwrap();
        // row 0 sees slots 0..=3; row 1 skips its padding slot 0
        assert_eq!(&m[..5], [false, false, false, false, true]);
        assert_eq!(&m[64..69], [true, false, false, false, true]);
        assert!(m[4..64].iter().all(|&x| x) && m[68..].iter().all(|&x| x));
        let ones = Tensor::<TestBackend, 4>::ones([2, 1, 1, 4], &dev);
        let (mut layers, offset) = cache.take_layers();
        let (_, k, _) = layers.remove(0).append(offset, ones.clone(), ones, 64);
        assert_eq!(k.dims(), [2, 1, 64, 4]);
    }

    /// Row 0 unpadded, row 1 with one padding slot; 2 slots filled, 1 new query at slot 2.
    #[test]
    fn mask_is_causal_and_hides_padding_keys() {
        let dev = Default::default();
        let mut cache = KvCache::<TestBackend>::new(&config(), vec![0, 1], 4, DType::F32, &dev);
        let prefill: Vec<bool> = cache.mask(2, &dev).into_data().to_vec().unwrap();
        #[rustfmt::skip]
        assert_eq!(prefill, vec![
            false, true,  // row 0, query 0
            false, false, // row 0, query 1
            false, true,  // row 1, query 0 (padding: sees only itself)
            true, false,  // row 1, query 1 (real: padding key hidden)
        ]);
        cache.len = 2;
        let decode: Vec<bool> = cache.mask(1, &dev).into_data().to_vec().unwrap();
        assert_eq!(decode, vec![false, false, false, true, false, false]);
    }

    #[test]
    fn select_rows_reorders_and_repeats() {
        let dev = Default::default();
        let mut cache = KvCache::<TestBackend>::new(&config(), vec![0, 3], 4, DType::F32, &dev);
        let k = Tensor::<TestBackend, 1, Int>::arange(0..2, &dev)
            .float()
            .reshape([2, 1, 1, 1])
            .expand([2, 1, 1, 4]);
        let (mut layers, offset) = cache.take_layers();
        let (l1, _, _) = layers.remove(1).append(offset, k.clone(), k, 0);
        layers.push(l1);
        cache.put_layers(layers, 1);
        cache.select_rows(&[1, 1, 0]);
        assert_eq!(cache.pad_lens(), &[3, 3, 0]);
        let (mut layers, offset) = cache.take_layers();
        let z = Tensor::<TestBackend, 4>::zeros([3, 1, 1, 4], &dev);
        let (_, k, _) = layers.remove(1).append(offset, z.clone(), z, 0);
        let k: Vec<f32> = k.into_data().to_vec().unwrap();
        assert_eq!(
            k.iter().step_by(8).copied().collect::<Vec<_>>(),
            vec![1.0, 1.0, 0.0]
        );
    }
}
