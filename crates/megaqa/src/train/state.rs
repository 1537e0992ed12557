//! Training checkpoints in the output directory:
//! - `megaqa.safetensors`: the model in the converted format (config and vocab in
//!   its metadata), so that the directory opens with `--model DIR`;
//! - `optimizer-STEP.safetensors`: AdamW moments by name, and the run's state
//!   (step, loss scale, settings, data digest) in its metadata.
//!
//! Each file is written to a temporary name and renamed. The optimizer file comes
//! first and is named by its step; the model file names the step it belongs to;
//! older optimizer files are deleted only after the model file is in place. A run
//! killed at any moment leaves a model and a matching optimizer file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use megaqa_model::checkpoint::{TRAINED_FILE, safetensors};
use megaqa_model::{Checkpoint, TokenizerFiles};
use megaqa_text::output::write_atomic;
use serde::{Deserialize, Serialize};

use super::TrainConfig;
use super::optim::{AdamWState, Moments};

const STEP_KEY: &str = "megaqa.train_step";
const STATE_KEY: &str = "megaqa.train_state";

/// Everything besides tensors that a resumed run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Steps done, skipped ones included (the schedule and the data order follow it).
    pub step: u64,
    /// AdamW updates done (its bias correction counts these): fewer than `step`
    /// when 16-bit gradients overflowed and updates were skipped.
    pub updates: u64,
    pub loss_scale: f64,
    /// Updates since the loss scale last changed.
    pub good_steps: u64,
    pub config: TrainConfig,
    /// sha256 of the training file: resuming on other data is refused.
    pub data_sha256: String,
}

fn optimizer_file(dir: &Path, step: u64) -> PathBuf {
    dir.join(format!("optimizer-{step}.safetensors"))
}

/// Writes model and optimizer state for `state.step`.
pub fn save(
    dir: &Path,
    model: &Checkpoint,
    f16_weights: bool,
    optim: &AdamWState,
    state: &RunState,
) -> Result<(), String> {
    let io = |path: &Path, e: std::io::Error| format!("{}: {e}", path.display());
    let state_json = serde_json::to_string(state).map_err(|e| e.to_string())?;
    // Moments, flat f32.
    let mut data: Vec<safetensors::Entry> = Vec::new();
    for (name, Moments { m, v }) in &optim.moments {
        for (kind, t) in [("m", m), ("v", v)] {
            let values = t
                .clone()
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| format!("reading optimizer state of {name}: {e:?}"))?;
            let bytes = safetensors::le_bytes(&values, f32::to_le_bytes);
            data.push((
                format!("{kind}.{name}"),
                ::safetensors::Dtype::F32,
                vec![values.len()],
                bytes,
            ));
        }
    }
    let meta = std::collections::HashMap::from([(STATE_KEY.to_string(), state_json)]);
    let bytes = safetensors::write(&data, meta)?;
    let opt_path = optimizer_file(dir, state.step);
    write_atomic(&opt_path, &bytes).map_err(|e| io(&opt_path, e))?;

    let model_bytes = model
        .to_converted_bytes_with(f16_weights, &[(STEP_KEY, state.step.to_string())])
        .map_err(|e| e.to_string())?;
    let model_path = dir.join(TRAINED_FILE);
    write_atomic(&model_path, &model_bytes).map_err(|e| io(&model_path, e))?;

    for old in optimizer_steps(dir)
        .into_iter()
        .filter(|s| *s != state.step)
    {
        let _ = std::fs::remove_file(optimizer_file(dir, old));
    }
    Ok(())
}

/// Steps of the optimizer files in `dir`.
fn optimizer_steps(dir: &Path) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("optimizer-")?
                .strip_suffix(".safetensors")?
                .parse()
                .ok()
        })
        .collect()
}

/// The step of the training checkpoint in `dir`, if it holds one.
pub fn saved_step(dir: &Path) -> Result<Option<u64>, String> {
    let path = dir.join(TRAINED_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    // The header only: `--resume` reads the weights once, in `load`.
    let step = safetensors::read_metadata(&path)?
        .get(STEP_KEY)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            format!(
                "{}: not written by `megaqa train` (no `{STEP_KEY}` in its metadata)",
                path.display()
            )
        })?;
    Ok(Some(step))
}

/// A checkpoint read back for `--resume`.
pub struct Resumed {
    pub model: Checkpoint,
    pub optim: AdamWState,
    pub state: RunState,
}

/// Reads the model and the optimizer state of the last checkpoint in `dir`.
pub fn load(dir: &Path, device: &Device) -> Result<Resumed, String> {
    let step = saved_step(dir)?.ok_or_else(|| {
        format!(
            "{}: no training checkpoint ({TRAINED_FILE}) to resume from",
            dir.display()
        )
    })?;
    let opt_path = optimizer_file(dir, step);
    let bytes = std::fs::read(&opt_path).map_err(|e| {
        format!(
            "{}: {e} (the model in {} is from step {step}; its optimizer state is missing)",
            opt_path.display(),
            dir.display()
        )
    })?;
    let file = safetensors::read(bytes).map_err(|e| format!("{}: {e}", opt_path.display()))?;
    let state: RunState = file
        .metadata
        .get(STATE_KEY)
        .ok_or_else(|| format!("{}: no `{STATE_KEY}` in its metadata", opt_path.display()))
        .and_then(|s| {
            serde_json::from_str(s)
                .map_err(|e| format!("{}: `{STATE_KEY}`: {e}", opt_path.display()))
        })?;
    let mut moments: BTreeMap<String, Moments> = BTreeMap::new();
    let mut halves: BTreeMap<String, (Option<Tensor<1>>, Option<Tensor<1>>)> = BTreeMap::new();
    for (key, raw) in file.tensors {
        let values = raw
            .to_f32()
            .ok_or_else(|| format!("{}: tensor `{key}` is not float", opt_path.display()))?;
        let n = values.len();
        let t = Tensor::<1>::from_data(TensorData::new(values, [n]), device);
        match key.split_once('.') {
            Some(("m", name)) => halves.entry(name.to_string()).or_default().0 = Some(t),
            Some(("v", name)) => halves.entry(name.to_string()).or_default().1 = Some(t),
            _ => {
                return Err(format!("{}: unexpected tensor `{key}`", opt_path.display()));
            }
        }
    }
    for (name, pair) in halves {
        match pair {
            (Some(m), Some(v)) => {
                moments.insert(name, Moments { m, v });
            }
            _ => {
                return Err(format!(
                    "{}: `{name}` lacks its first or second moment",
                    opt_path.display()
                ));
            }
        }
    }
    let model = Checkpoint::open(dir.join(TRAINED_FILE)).map_err(|e| e.to_string())?;
    Ok(Resumed {
        model,
        optim: AdamWState {
            moments,
            updates: state.updates,
        },
        state,
    })
}

/// A checkpoint of `weights` with the base model's config and tokenizer and the run's defaults.
pub fn checkpoint_of(
    origin: &str,
    config: &megaqa_model::ModelConfig,
    tokenizer: Option<TokenizerFiles>,
    weights: megaqa_model::checkpoint::Weights,
    defaults: megaqa_model::RunDefaults,
) -> Checkpoint {
    Checkpoint {
        origin: origin.into(),
        format: megaqa_model::checkpoint::Format::Megaqa,
        config: config.clone(),
        weights,
        tokenizer,
        defaults,
    }
}
