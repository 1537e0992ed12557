//! What the commands share: device choice, model loading, atomic files.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::tensor::DType;
use megaqa::model::Checkpoint;
use megaqa::model::device::{self, DeviceKind, Opened};
use megaqa::{Engine, Shapes};

use crate::args::{Compute, DefaultsArgs};

/// Opens the named device, or the best available one, and says which on stderr.
pub fn open_device(kind: Option<DeviceKind>) -> Result<Opened> {
    let opened = match kind {
        Some(kind) => device::open_named(kind).map_err(anyhow::Error::msg)?,
        None => {
            let o = device::best();
            eprintln!(
                "megaqa: using device {} (pick one with --device cpu|wgpu|cuda)",
                o.name
            );
            o
        }
    };
    if let Some(notice) = device::tuning::notice() {
        eprintln!("megaqa: warning: {notice}");
    }
    Ok(opened)
}

/// Windows per network call when `--batch-size` is not given. CPU: 8, measured with the
/// shipped model over the two-article dev file (2026-11-30, 2 Intel Xeon cores: 39-46
/// windows/s at 8, 42-44 at 4, 40-42 at 16, 37-38 at 32; the 345M shape gains 5% from 1 to
/// 8). GPUs: 32, from the H100 figures of issue 12 (345M, 384 tokens: 28 ms a window at
/// batch 8, 24 ms at 32); `scripts/device-check-squad.sh` measures it on a lent GPU.
pub fn batch_size(asked: Option<usize>, opened: &Opened) -> usize {
    asked.unwrap_or(match opened.kind {
        DeviceKind::Cpu => 8,
        DeviceKind::Wgpu | DeviceKind::Cuda => 32,
    })
}

/// The engine for the model at `path`, running as its file says unless `overrides` say
/// otherwise.
pub fn load_engine(
    path: &Path,
    opened: &Opened,
    overrides: DefaultsArgs,
    precision: Compute,
) -> Result<Engine> {
    let dtype = compute_dtype(opened, precision)?;
    if !path.exists() {
        bail!("{}: no such file or directory", path.display());
    }
    let mut ckpt = Checkpoint::open(path)?;
    if let Some(n) = overrides.max_seq_len {
        let most = ckpt.config.max_position_embeddings;
        if n > most {
            bail!(
                "--max-seq-len {n}: {} has {most} position embeddings, so windows hold at most {most} tokens",
                path.display()
            );
        }
        ckpt.defaults.max_seq_len = Some(n);
    }
    if let Some(n) = overrides.doc_stride {
        ckpt.defaults.doc_stride = Some(n);
    }
    if let Some(t) = overrides.null_threshold {
        ckpt.defaults.null_threshold = Some(t);
    }
    if !ckpt.has_qa_head() {
        eprintln!(
            "megaqa: warning: {} has no QA head (qa_outputs / classifier.mlp.layer0); it was initialised at random, so answers are meaningless until the model is fine-tuned",
            path.display()
        );
    }
    let mut engine = if precision == Compute::Int8 {
        Engine::new_int8(ckpt, opened.device.clone())?
    } else {
        Engine::new(ckpt, opened.device.clone(), dtype)?
    };
    if opened.kind != DeviceKind::Cpu {
        // GPU backends tune and compile per tensor shape: bucketed lengths meet a
        // handful of shapes instead of one per window length.
        engine.shapes = Shapes::GPU;
    }
    Ok(engine)
}

/// The dtype of `precision`, if the device computes in it.
pub fn compute_dtype(opened: &Opened, precision: Compute) -> Result<DType> {
    if precision == Compute::Int8 && opened.kind != DeviceKind::Cpu {
        bail!(
            "--precision int8: runs on the CPU only (--device cpu); {} computes in f32, f16 or bf16",
            opened.name
        );
    }
    let dtype = precision.dtype();
    if !opened.device.supports_dtype(dtype) {
        bail!(
            "--precision {precision}: {} does not compute in {precision}; use --precision f32",
            opened.name
        );
    }
    Ok(dtype)
}

/// Writes `bytes` to `path` atomically (temp file + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    megaqa::text::output::write_atomic(path, bytes)
        .with_context(|| format!("{}: cannot write", path.display()))
}

pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

/// Peak resident memory of this process in MB (10^6 bytes, as every size megaqa prints;
/// Linux; NaN elsewhere).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib * 1024.0 / 1e6)
}
