//! `megaqa bench`: load time, windows/s, tokens/s, peak memory.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use burn::tensor::{DType, Device};
use megaqa::model::profile::Profile;
use megaqa::model::{Batch, Checkpoint, ModelConfig, QaModel};
use megaqa::train::{LabelledBatch, Precision, TrainConfig, Trainer};
use serde_json::json;

use crate::args::{BenchArgs, BenchPrecision, Compute, RandomPreset};
use crate::shared::{compute_dtype, open_device, peak_rss_mb};

/// Training's precision for `--train`, or inference's dtype.
enum Mode {
    Train(Precision),
    Infer(Compute),
}

fn mode(a: &BenchArgs) -> Result<Mode> {
    Ok(match (a.train, a.precision) {
        (true, BenchPrecision::F32) => Mode::Train(Precision::F32),
        (true, BenchPrecision::F16) => Mode::Train(Precision::F16),
        (true, BenchPrecision::Mixed) => Mode::Train(Precision::Mixed),
        (true, BenchPrecision::Bf16) => {
            anyhow::bail!("--precision bf16: training takes f32, f16 or mixed")
        }
        (false, BenchPrecision::F32) => Mode::Infer(Compute::F32),
        (false, BenchPrecision::F16) => Mode::Infer(Compute::F16),
        (false, BenchPrecision::Bf16) => Mode::Infer(Compute::Bf16),
        (false, BenchPrecision::Int8) => Mode::Infer(Compute::Int8),
        (true, BenchPrecision::Int8) => {
            anyhow::bail!("--precision int8 is for inference; training takes f32, f16 or mixed")
        }
        (false, BenchPrecision::Mixed) => {
            anyhow::bail!("--precision mixed is for --train; inference takes f32, f16 or bf16")
        }
    })
}

pub fn run(a: BenchArgs) -> Result<ExitCode> {
    let mode = mode(&a)?;
    let opened = open_device(a.device)?;
    // Training keeps f32 master weights (its compute dtype is the trainer's business).
    let dtype = match mode {
        Mode::Infer(p) => compute_dtype(&opened, p)?,
        Mode::Train(_) => DType::F32,
    };
    let t0 = Instant::now();
    let mut model = match (&a.model, a.random) {
        (_, Some(RandomPreset::Megatron345m)) => {
            QaModel::random(&ModelConfig::megatron_345m(), &opened.device, dtype, 7)
        }
        (Some(path), None) => {
            let ckpt = Checkpoint::open(path)?;
            QaModel::from_weights(&ckpt.config, ckpt.weights, &opened.device, dtype)?
        }
        (None, None) => anyhow::bail!("give --model PATH or --random megatron-345m"),
    };
    let int8_mb = match mode {
        Mode::Infer(Compute::Int8) => Some(model.quantize_int8() as f64 / 1e6),
        _ => None,
    };
    opened.device.sync().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let load_s = t0.elapsed().as_secs_f64();
    let cfg = &model.config;
    if a.seq_len == 0 || a.seq_len > cfg.max_position_embeddings {
        anyhow::bail!(
            "--seq-len must be between 1 and the model's {} positions",
            cfg.max_position_embeddings
        );
    }
    let (b, s) = (a.batch_size.max(1), a.seq_len);
    let batch = Batch::synthetic(b, s, cfg.vocab_size.min(30522));
    // The first call pays kernel compilation and, on GPUs, autotuning (unless this
    // device's tuning cache has the shapes already): reported apart as first_ms.
    let mut first_ms = None;
    let mut profile = None;
    let times = if let Mode::Train(precision) = mode {
        time_training(model, &opened.device, batch, precision, a.runs)?
    } else {
        let t = Instant::now();
        model
            .run(&batch, &opened.device)
            .map_err(anyhow::Error::msg)?;
        first_ms = Some(t.elapsed().as_secs_f64() * 1e3);
        let mut times = Vec::new();
        for _ in 0..a.runs.max(1) {
            let t = Instant::now();
            model
                .run(&batch, &opened.device)
                .map_err(anyhow::Error::msg)?;
            times.push(t.elapsed().as_secs_f64());
        }
        if a.profile {
            // Separate passes, so that the profile's synchronising does not touch the
            // timed ones.
            let (done, p) = megaqa::model::profile::profile(&opened.device, || {
                (0..times.len()).try_for_each(|_| model.run(&batch, &opened.device).map(drop))
            });
            done.map_err(anyhow::Error::msg)?;
            profile = Some((p, times.len()));
        }
        times
    };
    let mut times = times;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let mut out = json!({
        "device": opened.name,
        "mode": if a.train { "train" } else { "inference" },
        "seq_len": s,
        "batch_size": b,
        "runs": times.len(),
        "load_s": load_s,
        "windows_per_s": b as f64 / median,
        "tokens_per_s": (b * s) as f64 / median,
        "ms_per_batch": median * 1e3,
        "first_ms": first_ms,
        "precision": precision_name(&mode),
        "peak_rss_mb": peak_rss_mb(),
        "int8_weights_mb": int8_mb,
        "int8_kernel": int8_mb.map(|_| megaqa::model::fused::int8::kernel_name()),
    });
    if let Some((p, passes)) = &profile {
        out["profile"] = profile_json(p, *passes, median);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("device        {}", opened.name);
        if a.train {
            println!("mode          training updates ({})", precision_name(&mode));
        } else {
            println!("mode          inference ({})", precision_name(&mode));
        }
        println!("load          {load_s:.2} s");
        if let Some(first_ms) = first_ms {
            println!("first call    {first_ms:.1} ms (compiling, and tuning on GPUs)");
        }
        println!(
            "batch         {b} x {s} tokens, median of {} runs: {:.1} ms",
            times.len(),
            median * 1e3
        );
        println!(
            "throughput    {:.2} windows/s, {:.0} tokens/s",
            b as f64 / median,
            (b * s) as f64 / median
        );
        println!("peak memory   {:.0} MB resident", peak_rss_mb());
        if let Some(mb) = int8_mb {
            println!(
                "int8 weights  {mb:.0} MB (the encoder's matmuls and the word embeddings; the f32 ones are freed)"
            );
            println!(
                "int8 kernel   {} (MEGAQA_INT8_KERNEL=avx2|portable picks a slower one)",
                megaqa::model::fused::int8::kernel_name()
            );
        }
        if let Some((p, passes)) = &profile {
            print_profile(p, *passes, median);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn precision_name(mode: &Mode) -> String {
    match mode {
        Mode::Train(p) => p.to_string(),
        Mode::Infer(p) => p.to_string(),
    }
}

/// Seconds per training update (forward, backward, AdamW) on `batch`, after one warm-up.
fn time_training(
    model: QaModel,
    device: &Device,
    batch: Batch,
    precision: Precision,
    runs: usize,
) -> Result<Vec<f64>> {
    let config = TrainConfig {
        precision,
        ..TrainConfig::default()
    };
    let mut trainer =
        Trainer::for_model(model, device.clone(), config).map_err(anyhow::Error::msg)?;
    // Answers somewhere in each window, as real features have them.
    let labelled = [LabelledBatch {
        starts: (0..batch.batch)
            .map(|i| (i * 7 % batch.seq) as i64)
            .collect(),
        ends: (0..batch.batch)
            .map(|i| ((i * 7 + 3) % batch.seq) as i64)
            .collect(),
        batch,
    }];
    let mut times = Vec::new();
    for run in 0..=runs.max(1) {
        let t = Instant::now();
        trainer
            .update_batches(&labelled)
            .map_err(anyhow::Error::msg)?;
        if run > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(times)
}

/// Milliseconds per pass for each kind of step, largest first; what the steps do not
/// cover (turning the batch into tensors, the mask, reading the logits back); and the
/// sum of both, which the shares divide.
fn profile_rows(
    p: &Profile,
    passes: usize,
    median_s: f64,
) -> (Vec<(&'static str, f64, usize)>, f64, f64) {
    let per_pass = |d: std::time::Duration| d.as_secs_f64() * 1e3 / passes as f64;
    let rows: Vec<_> = p
        .sorted()
        .into_iter()
        .map(|(op, t, calls)| (op.name(), per_pass(t), calls / passes))
        .collect();
    let outside = (median_s * 1e3 - per_pass(p.total())).max(0.0);
    let total = rows.iter().map(|r| r.1).sum::<f64>() + outside;
    (rows, outside, total)
}

fn profile_json(p: &Profile, passes: usize, median_s: f64) -> serde_json::Value {
    let (rows, outside, total) = profile_rows(p, passes, median_s);
    let rows: Vec<_> = rows
        .into_iter()
        .map(|(op, ms, calls)| json!({"op": op, "ms": ms, "share": ms / total, "calls": calls}))
        .collect();
    json!({"passes": passes, "steps": rows, "outside_steps_ms": outside})
}

fn print_profile(p: &Profile, passes: usize, median_s: f64) {
    let (rows, outside, total) = profile_rows(p, passes, median_s);
    println!("profile       per pass, mean of {passes} (each step synchronised):");
    for (op, ms, calls) in rows {
        println!(
            "  {op:<18} {ms:>9.1} ms {:>5.1}%  ({calls} calls)",
            100.0 * ms / total
        );
    }
    println!(
        "  {:<18} {outside:>9.1} ms {:>5.1}%  (inputs, mask, reading logits back)",
        "outside steps",
        100.0 * outside / total
    );
}
