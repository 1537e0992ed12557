//! Fine-tuning for extractive QA on SQuAD-format data, as HF `run_qa` and NeMo's
//! QA recipe do it: labelled windows, span cross-entropy, AdamW with linear
//! warmup and decay, global-norm clipping, dropout, optional mixed precision
//! (16-bit compute with f32 master weights and dynamic loss scaling), and
//! checkpoints that a killed run resumes from exactly.

mod config;
mod data;
mod evaluate;
pub mod export;
pub mod optim;
pub mod plot;
mod scaling;
pub mod state;
pub mod step;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{DType, Device, Tensor};
use megaqa_model::{Checkpoint, QaModel, RunDefaults, TokenizerFiles};
use megaqa_text::{Dataset, TrainFeature};
use serde::Serialize;
use web_time::Instant;

pub use config::{Precision, TrainConfig};
pub use data::{LabelledBatch, epoch_order};
pub use scaling::LossScale;

use crate::engine::make_batch;
use megaqa_model::params::ByName;
use optim::{AdamWState, AdamWStep, global_norm, linear_schedule};
use state::RunState;

/// What one optimizer update did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Update {
    /// Mean loss over its micro-batches (scaled back).
    pub loss: f64,
    /// Global norm of the gradients, before clipping.
    pub grad_norm: f64,
    /// Windows it trained on.
    pub windows: usize,
    /// False when 16-bit gradients overflowed and the update was skipped.
    pub applied: bool,
}

/// What the loop reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Event {
    /// Every `log_every` updates: loss averaged since the last report.
    Step {
        step: u64,
        loss: f64,
        lr: f64,
        windows_per_s: f64,
        grad_norm: f64,
        loss_scale: f64,
    },
    /// An update skipped because 16-bit gradients overflowed (loss scale halved).
    Overflow { step: u64, loss_scale: f64 },
    /// The official SQuAD v2.0 figures on the evaluation file (`set` = "eval") or on
    /// the held-out training articles (`set` = "holdout", which also sets the model's
    /// null threshold to its `best_null_threshold`).
    Eval {
        set: &'static str,
        epoch: f64,
        step: u64,
        /// Time the evaluation took (not training time).
        seconds: f64,
        #[serde(flatten)]
        scores: serde_json::Map<String, serde_json::Value>,
    },
    /// A checkpoint was written.
    Saved { step: u64, dir: PathBuf },
}

/// A fine-tuning run.
pub struct Trainer {
    pub config: TrainConfig,
    /// Master weights, outside autodiff.
    pub model: QaModel,
    pub device: Device,
    ad_device: Device,
    tokenizer_files: Option<TokenizerFiles>,
    pub features: Vec<TrainFeature>,
    /// The held-out articles (with their negatives) that choose the null threshold.
    pub holdout: Option<Dataset>,
    /// The null threshold chosen on `holdout` so far, saved with the model.
    pub null_threshold: Option<f64>,
    pub optim: AdamWState,
    pub step: u64,
    scaling: LossScale,
    data_sha256: String,
    out: PathBuf,
    order: data::EpochOrder,
}

impl Trainer {
    /// Starts a run from a checkpoint (a QA model, or an encoder whose QA head is
    /// drawn at random). `train` must have passed `check_answer_spans`.
    pub fn new(
        ckpt: Checkpoint,
        device: Device,
        config: TrainConfig,
        train: &Dataset,
        data_sha256: String,
        out: &Path,
    ) -> Result<Self, String> {
        config.validate()?;
        config.precision.check(&device)?;
        // Seeded before the network is built: a missing QA head is drawn at random.
        device.seed(config.seed);
        let (features, holdout) =
            data::features_of(&ckpt.origin, ckpt.tokenizer.as_ref(), &config, train)?;
        let tokenizer_files = ckpt.tokenizer.clone();
        let model = QaModel::from_weights(&ckpt.config, ckpt.weights, &device, DType::F32)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            tokenizer_files,
            features,
            holdout,
            data_sha256,
            out: out.to_path_buf(),
            ..Self::for_model(model, device, config)?
        })
    }

    /// A run over a given network with no data of its own, driven through
    /// [`Trainer::update_batches`] (benchmarks).
    pub fn for_model(model: QaModel, device: Device, config: TrainConfig) -> Result<Self, String> {
        config.validate()?;
        config.precision.check(&device)?;
        Ok(Self {
            scaling: LossScale::new(config.precision),
            config,
            model,
            ad_device: device.clone().autodiff(),
            device,
            tokenizer_files: None,
            features: vec![],
            holdout: None,
            null_threshold: None,
            optim: AdamWState::default(),
            step: 0,
            data_sha256: String::new(),
            out: PathBuf::new(),
            order: data::EpochOrder::default(),
        })
    }

    /// Continues the run saved in `out`, with its saved settings.
    pub fn resume(
        out: &Path,
        device: Device,
        train: &Dataset,
        data_sha256: String,
    ) -> Result<Self, String> {
        let r = state::load(out, &device)?;
        if r.state.data_sha256 != data_sha256 {
            return Err(format!(
                "{}: the run was trained on a different --train file (sha256 {} before, {} now)",
                out.display(),
                r.state.data_sha256,
                data_sha256
            ));
        }
        let config = r.state.config.clone();
        let (features, holdout) =
            data::features_of(&r.model.origin, r.model.tokenizer.as_ref(), &config, train)?;
        let tokenizer_files = r.model.tokenizer.clone();
        let null_threshold = r.model.defaults.null_threshold;
        let model = QaModel::from_weights(&r.model.config, r.model.weights, &device, DType::F32)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            tokenizer_files,
            features,
            holdout,
            null_threshold,
            optim: r.optim,
            step: r.state.step,
            scaling: LossScale {
                scale: r.state.loss_scale,
                good_steps: r.state.good_steps,
            },
            data_sha256,
            out: out.to_path_buf(),
            ..Self::for_model(model, device, config)?
        })
    }

    /// Optimizer updates per epoch.
    pub fn steps_per_epoch(&self) -> u64 {
        let per_update = self.config.batch_size * self.config.grad_accum;
        self.features.len().div_ceil(per_update).max(1) as u64
    }

    /// Optimizer updates in the whole run.
    pub fn total_steps(&self) -> u64 {
        let full = self.config.epochs * self.steps_per_epoch();
        self.config.max_steps.unwrap_or(full)
    }

    /// One optimizer update: forward/backward over its micro-batches, unscale,
    /// clip, AdamW.
    pub fn update(&mut self) -> Result<Update, String> {
        let mbs = self.micro_batches(self.step);
        self.update_on(&mbs)
    }

    /// The micro-batches (feature indices) of update `step`.
    fn micro_batches(&mut self, step: u64) -> Vec<Vec<usize>> {
        let per_epoch = self.steps_per_epoch();
        self.order
            .micro_batches(&self.features, &self.config, per_epoch, step)
    }

    /// [`Trainer::update`] on given micro-batches of feature indices.
    pub fn update_on(&mut self, mbs: &[Vec<usize>]) -> Result<Update, String> {
        let batches: Vec<LabelledBatch> = mbs
            .iter()
            .map(|mb| {
                let feats: Vec<&TrainFeature> = mb.iter().map(|&i| &self.features[i]).collect();
                let refs: Vec<&megaqa_text::Window> = feats.iter().map(|f| &f.window).collect();
                LabelledBatch {
                    batch: make_batch(&refs, 0),
                    starts: feats.iter().map(|f| f.start as i64).collect(),
                    ends: feats.iter().map(|f| f.end as i64).collect(),
                }
            })
            .collect();
        self.update_batches(&batches)
    }

    /// One optimizer update over micro-batches of windows with their labels.
    pub fn update_batches(&mut self, mbs: &[LabelledBatch]) -> Result<Update, String> {
        let step = self.step;
        let dtype = self.config.precision.compute_dtype();
        let mut grads: BTreeMap<String, Tensor<1>> = BTreeMap::new();
        let (mut loss_sum, mut windows) = (0.0, 0usize);
        for (k, mb) in mbs.iter().enumerate() {
            // Dropout masks depend only on (seed, update, micro-batch): a resumed run
            // draws the same ones.
            self.ad_device.seed(
                self.config
                    .seed
                    .wrapping_mul(1_000_003)
                    .wrapping_add(step * 1024 + k as u64),
            );
            let pass = step::Pass {
                device: &self.ad_device,
                dtype,
                dropout: self.config.dropout,
                loss_scale: self.scaling.scale,
                grad_factor: 1.0 / mbs.len() as f64,
            };
            let loss = step::forward_backward(&self.model, &pass, mb, &mut grads)?;
            loss_sum += loss;
            windows += mb.batch.batch;
        }
        let loss = loss_sum / mbs.len() as f64;
        let norm = scalar(global_norm(&grads))?;
        if !norm.is_finite() || !loss.is_finite() {
            if self.config.precision == Precision::F32 {
                return Err(format!(
                    "step {}: the loss or the gradients are not finite (loss {loss}, gradient norm {norm}); try a lower --lr",
                    step + 1
                ));
            }
            self.scaling.overflowed();
            self.step += 1;
            return Ok(Update {
                loss,
                grad_norm: norm,
                windows,
                applied: false,
            });
        }
        if self.config.max_grad_norm > 0.0 {
            let coef = (self.config.max_grad_norm / (norm + 1e-6)).min(1.0);
            if coef < 1.0 {
                for g in grads.values_mut() {
                    *g = g.clone() * coef;
                }
            }
        }
        let lr = self.lr_at(step);
        let mut mapper = ByName::new(AdamWStep {
            config: self.config.adamw,
            lr,
            grads: &grads,
            state: &mut self.optim,
            missing: vec![],
        });
        // Cloning shares the tensors; the old ones go once the update has read them.
        let model = self.model.clone();
        let mut model = model.map(&mut mapper);
        if let Some(name) = mapper.inner.missing.first() {
            return Err(format!("no gradient reached parameter {name}"));
        }
        self.optim.updates += 1;
        if self.config.precision == Precision::F16 {
            model = model.map(&mut RoundF16);
        }
        self.model = model;
        self.scaling.applied(self.config.precision);
        self.step += 1;
        Ok(Update {
            loss,
            grad_norm: norm,
            windows,
            applied: true,
        })
    }

    /// Learning rate of step `step` (0-based) of the schedule.
    fn lr_at(&self, step: u64) -> f64 {
        let total = self.total_steps();
        let warmup = (self.config.warmup_ratio * total as f64).ceil() as u64;
        linear_schedule(self.config.lr, step, warmup, total)
    }

    /// Learning rate of the update just taken.
    pub fn current_lr(&self) -> f64 {
        self.lr_at(self.step.saturating_sub(1))
    }

    /// The master weights as a checkpoint (with the tokenizer it was trained with, the
    /// window geometry it was trained at and the null threshold chosen so far).
    pub fn checkpoint(&self) -> Result<Checkpoint, String> {
        Ok(state::checkpoint_of(
            &self.out.display().to_string(),
            &self.model.config,
            self.tokenizer_files.clone(),
            self.model.to_weights()?,
            RunDefaults {
                null_threshold: self.null_threshold,
                max_seq_len: Some(self.config.max_seq_len),
                doc_stride: Some(self.config.doc_stride),
            },
        ))
    }

    /// Writes the checkpoint for the current step.
    pub fn save(&self) -> Result<(), String> {
        std::fs::create_dir_all(&self.out).map_err(|e| format!("{}: {e}", self.out.display()))?;
        state::save(
            &self.out,
            &self.checkpoint()?,
            self.config.precision == Precision::F16,
            &self.optim,
            &RunState {
                step: self.step,
                updates: self.optim.updates,
                loss_scale: self.scaling.scale,
                good_steps: self.scaling.good_steps,
                config: self.config.clone(),
                data_sha256: self.data_sha256.clone(),
            },
        )
    }

    /// Trains to the end, reporting progress through `on`. Saves every
    /// `save_every` updates and at the end; evaluates on `eval` after each epoch.
    pub fn run(
        &mut self,
        eval: Option<&Dataset>,
        on: &mut dyn FnMut(&Event) -> Result<(), String>,
    ) -> Result<(), String> {
        let total = self.total_steps();
        let spe = self.steps_per_epoch();
        let (mut loss_acc, mut n_acc, mut windows_acc) = (0.0, 0u64, 0usize);
        let mut since = Instant::now();
        if total == 0 {
            // `--max-steps 0`: no update; the model as it is gets its null threshold
            // from the held-out articles and is saved (a model trained elsewhere on
            // this run's data, calibrated the same way).
            self.evaluate_round(eval, on)?;
            self.save()?;
            return on(&Event::Saved {
                step: self.step,
                dir: self.out.clone(),
            });
        }
        while self.step < total {
            let u = self.update()?;
            loss_acc += u.loss;
            n_acc += 1;
            windows_acc += u.windows;
            if !u.applied {
                on(&Event::Overflow {
                    step: self.step,
                    loss_scale: self.scaling.scale,
                })?;
            }
            if self.step.is_multiple_of(self.config.log_every) || self.step == total {
                let secs = since.elapsed().as_secs_f64().max(1e-9);
                on(&Event::Step {
                    step: self.step,
                    loss: loss_acc / n_acc as f64,
                    lr: self.current_lr(),
                    windows_per_s: windows_acc as f64 / secs,
                    grad_norm: u.grad_norm,
                    loss_scale: self.scaling.scale,
                })?;
                (loss_acc, n_acc, windows_acc) = (0.0, 0, 0);
                since = Instant::now();
            }
            if self.step.is_multiple_of(spe) || self.step == total {
                self.evaluate_round(eval, on)?;
                since = Instant::now();
            }
            if self.step.is_multiple_of(self.config.save_every) || self.step == total {
                self.save()?;
                on(&Event::Saved {
                    step: self.step,
                    dir: self.out.clone(),
                })?;
                since = Instant::now();
            }
        }
        Ok(())
    }
}

fn scalar(t: Tensor<1>) -> Result<f64, String> {
    Ok(t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .map_err(|e| format!("{e:?}"))?[0])
}

/// Rounds master weights to f16 (`--precision f16`).
struct RoundF16;

impl burn::module::ModuleMapper for RoundF16 {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        param.map(|t| t.cast(DType::F16).cast(DType::F32))
    }
}
