//! `score` throughput on the bench-small shape (vocab 4096, hidden 256, 4 layers, 8 heads,
//! 2 KV heads, intermediate 704, tied head), batch 8 × 128 tokens, on each CPU backend compiled
//! in. The same measurement is `mgrpo bench score --device D`; transformers' side is
//! `scripts/bench_torch.py`.
//!
//!     cargo bench --bench score

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mgrpo::fused::FusedBackend;
use mgrpo::score::batch_logprobs;

fn bench_backend<B: FusedBackend>(c: &mut Criterion, name: &str) {
    let device = B::Device::default();
    let config = mgrpo::bench::shape("bench-small").expect("known shape");
    let (batch, seq) = (8, 128);
    let (model, padded) = mgrpo::bench::score_workload::<B>(
        &config,
        batch,
        seq,
        mgrpo::model::Precision::F32,
        &device,
    );
    let mut g = c.benchmark_group("score/bench-small/8x128");
    g.throughput(Throughput::Elements((batch * seq) as u64));
    g.sample_size(10);
    // Reading the result back synchronises the device before the clock stops.
    g.bench_function(name, |b| {
        b.iter(|| batch_logprobs(&model, &padded, &device).into_data())
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    #[cfg(feature = "ndarray")]
    bench_backend::<burn::backend::NdArray<f32>>(c, "ndarray");
    #[cfg(feature = "flex")]
    bench_backend::<burn::backend::Flex<f32>>(c, "flex");
    #[cfg(feature = "wgpu")]
    bench_backend::<burn::backend::Wgpu<f32, i32>>(c, "wgpu");
    let _ = c;
}

criterion_group!(score, benches);
criterion_main!(score);
