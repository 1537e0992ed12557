//! The CPU kernels alone, at the 345M shape's sizes (one 384-token window) and the
//! shipped MiniLM's (a batch of 32 x 256 tokens): the int8 matmul of each encoder matmul
//! (activations quantised inside) and fused attention.
//!
//! `cargo bench -p megaqa-model --bench kernels`. Env: MEGAQA_BENCH_RUNS (default 10).

use std::time::Instant;

use burn::tensor::{Device, Distribution, Int, Tensor};
use megaqa_model::fused::attention;
use megaqa_model::fused::int8::QuantizedMatrix;

fn time(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..runs {
        f();
    }
    t.elapsed().as_secs_f64() / runs as f64
}

fn main() {
    let runs: usize = std::env::var("MEGAQA_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let rows = 384;
    // The 345M shape's one window, then the shipped MiniLM's batch of 32 x 256 tokens.
    for (name, rows, inputs, outputs) in [
        ("qkv", rows, 1024, 3072),
        ("attn_out", rows, 1024, 1024),
        ("ffn_in", rows, 1024, 4096),
        ("ffn_out", rows, 4096, 1024),
        ("minilm qkv", 8192, 384, 1152),
        ("minilm ffn_in", 8192, 384, 1536),
        ("minilm ffn_out", 8192, 1536, 384),
    ] {
        // Any values will do for speed: a fixed pattern in [-1, 1].
        let pattern = |n: usize, k: usize| -> Vec<f32> {
            (0..n)
                .map(|i| ((i * k) % 2001) as f32 / 1000.0 - 1.0)
                .collect()
        };
        let q = QuantizedMatrix::from_linear(&pattern(inputs * outputs, 7919), inputs, outputs);
        let x = pattern(rows * inputs, 104_729);
        let s = time(runs, || {
            std::hint::black_box(q.matmul(&x, rows, None));
        });
        println!(
            "{{\"kernel\": \"int8 {name}\", \"shape\": [{rows}, {inputs}, {outputs}], \"ms\": {:.3}, \"gop_per_s\": {:.0}}}",
            s * 1e3,
            2.0 * (rows * inputs * outputs) as f64 / s / 1e9
        );
    }
    let device = Device::flex();
    let qkv = Tensor::<3>::random([1, rows, 3 * 1024], Distribution::Normal(0.0, 1.0), &device);
    let mask = Tensor::<2, Int>::ones([1, rows], &device);
    let s = time(runs, || {
        std::hint::black_box(attention(qkv.clone(), &mask, 16).ok());
    });
    println!(
        "{{\"kernel\": \"attention (16 heads of 64)\", \"shape\": [1, {rows}, 3072], \"ms\": {:.3}, \"gflop_per_s\": {:.0}}}",
        s * 1e3,
        4.0 * (rows * rows * 1024) as f64 / s / 1e9
    );
}
