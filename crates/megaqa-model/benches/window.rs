//! One 384-token window through the full Megatron-BERT 345M shape (random weights)
//! on the CPU: ms per window and peak resident memory against the weights' size.
//!
//! `cargo bench -p megaqa-model --bench window` (scripts/bench-cpu.sh runs PyTorch
//! eager on the same shape in the same run and prints the ratio).
//! Env: MEGAQA_BENCH_RUNS (default 5), MEGAQA_BENCH_SEQ (default 384).

use std::time::Instant;

use burn::module::Module;
use burn::tensor::{DType, Device};
use megaqa_model::{Batch, ModelConfig, QaModel};

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let runs: usize = std::env::var("MEGAQA_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let seq: usize = std::env::var("MEGAQA_BENCH_SEQ")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(384);
    let cfg = ModelConfig::megatron_345m();
    let dev = Device::flex();
    let t0 = Instant::now();
    let model = QaModel::random(&cfg, &dev, DType::F32, 7);
    let params = model.num_params();
    let build_s = t0.elapsed().as_secs_f64();
    let batch = Batch::synthetic(1, seq, 30522);
    model.run(&batch, &dev).unwrap(); // warm-up
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        model.run(&batch, &dev).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let weights_mb = params as f64 * 4.0 / (1024.0 * 1024.0);
    let peak = peak_rss_mb();
    println!(
        "{{\"impl\": \"megaqa-burn-flex\", \"seq\": {seq}, \"params\": {params}, \"build_s\": {build_s:.2}, \"ms_per_window_median\": {:.1}, \"ms_per_window_min\": {:.1}, \"peak_rss_mb\": {peak:.0}, \"weights_mb\": {weights_mb:.0}, \"peak_over_weights\": {:.2}}}",
        times[times.len() / 2],
        times[0],
        peak / weights_mb
    );
}
