//! Fine-tuning for extractive QA on SQuAD-format data, as HF `run_qa` and NeMo's
//! QA recipe do it: labelled windows, span cross-entropy, AdamW with linear
//! warmup and decay, global-norm clipping, dropout, optional mixed precision
//! (16-bit compute with f32 master weights and dynamic loss scaling), and
//! checkpoints that a killed run resumes from exactly.

pub mod export;
pub mod optim;
pub mod plot;
pub mod state;
pub mod step;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{DType, Device, Tensor};
use megaqa_model::device::supports_f16;
use megaqa_model::{Checkpoint, QaModel, RunDefaults, TokenizerFiles};
use megaqa_text::negatives::splitmix64;
use megaqa_text::scoring::evaluate;
use megaqa_text::{Dataset, TrainFeature, WindowConfig, train_features, with_negatives};
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::engine::{Engine, make_batch, tokenizer_of};
use optim::{AdamWConfig, AdamWState, AdamWStep, global_norm, linear_schedule};
use state::RunState;

/// Numeric precision of training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 everywhere.
    F32,
    /// f16 compute and f16 weights (updates rounded to f16), with loss scaling.
    F16,
    /// f16 compute, f32 master weights and optimizer state, with loss scaling.
    Mixed,
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            "mixed" => Ok(Self::Mixed),
            other => Err(format!(
                "unknown precision `{other}` (expected f32, f16 or mixed)"
            )),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Mixed => "mixed",
        })
    }
}

impl Precision {
    fn compute_dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::F16 | Self::Mixed => DType::F16,
        }
    }
}

/// The settings of a run (saved with every checkpoint; `--resume` reuses them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: u64,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub lr: f64,
    pub warmup_ratio: f64,
    pub adamw: AdamWConfig,
    pub max_grad_norm: f64,
    pub max_steps: Option<u64>,
    pub max_seq_len: usize,
    pub doc_stride: usize,
    pub precision: Precision,
    pub dropout: f64,
    pub seed: u64,
    /// Save a checkpoint every this many updates (and always at the end).
    pub save_every: u64,
    /// Report the loss every this many updates.
    pub log_every: u64,
    /// About this many unanswerable examples per answerable question, made from other
    /// paragraphs of the same article (`megaqa_text::negatives`).
    #[serde(default)]
    pub negatives: f64,
    /// The last this many articles of the training file are not trained on: after each
    /// epoch the null threshold is chosen on them (the official best-threshold search)
    /// and stored in the model as its default.
    #[serde(default)]
    pub holdout_articles: usize,
    /// Batches of windows of similar length (less padding): the seeded order is cut
    /// into chunks of 64 updates, each sorted by window length.
    #[serde(default)]
    pub group_by_length: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TrainConfig {
    /// The settings of NVIDIA's SQuAD v2.0 fine-tuning of Megatron-BERT 345M
    /// (2 epochs, batch 12, lr 3e-5) with HF's defaults for the rest; the CLI's defaults.
    pub const DEFAULT: Self = Self {
        epochs: 2,
        batch_size: 12,
        grad_accum: 1,
        lr: 3e-5,
        warmup_ratio: 0.0,
        adamw: AdamWConfig::DEFAULT,
        max_grad_norm: 1.0,
        max_steps: None,
        max_seq_len: 384,
        doc_stride: 128,
        precision: Precision::F32,
        dropout: 0.1,
        seed: 42,
        save_every: 500,
        log_every: 10,
        negatives: 0.0,
        holdout_articles: 0,
        group_by_length: false,
    };
}

impl TrainConfig {
    fn validate(&self) -> Result<(), String> {
        let bad = |m: &str| Err(format!("training settings: {m}"));
        if self.batch_size == 0 || self.grad_accum == 0 {
            return bad("--batch-size and --grad-accum must be at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("--lr must be a positive number");
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return bad("--warmup-ratio must be in [0, 1)");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("--dropout must be in [0, 1)");
        }
        if self.epochs == 0 && self.max_steps.is_none() {
            return bad("--epochs must be at least 1");
        }
        if self.save_every == 0 || self.log_every == 0 {
            return bad("--save-every and --log-every must be at least 1");
        }
        if !(self.negatives >= 0.0 && self.negatives.is_finite()) {
            return bad(&format!(
                "--negatives must be a number of at least 0, not {}",
                self.negatives
            ));
        }
        self.windows()
            .validate()
            .map_err(|m| format!("training settings: {m}"))
    }

    fn windows(&self) -> WindowConfig {
        WindowConfig {
            max_len: self.max_seq_len,
            stride: self.doc_stride,
            ..WindowConfig::default()
        }
    }
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

/// Windows with the token positions of their answers.
pub struct LabelledBatch {
    pub batch: megaqa_model::Batch,
    pub starts: Vec<i64>,
    pub ends: Vec<i64>,
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
    loss_scale: f64,
    good_steps: u64,
    data_sha256: String,
    out: PathBuf,
}

/// Deterministic permutation of `0..n` for one epoch (splitmix64 driving
/// Fisher-Yates): the same on every platform and every build, so that a resumed
/// run sees the same order an uninterrupted one would.
pub fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut state = seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
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
        check_precision(&device, config.precision)?;
        // Seeded before the network is built: a missing QA head is drawn at random.
        device.seed(config.seed);
        let (features, holdout) =
            features_of(&ckpt.origin, ckpt.tokenizer.as_ref(), &config, train)?;
        let tokenizer_files = ckpt.tokenizer.clone();
        let model = QaModel::from_weights(&ckpt.config, ckpt.weights, &device, DType::F32);
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
        check_precision(&device, config.precision)?;
        Ok(Self {
            loss_scale: initial_loss_scale(config.precision),
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
            good_steps: 0,
            data_sha256: String::new(),
            out: PathBuf::new(),
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
            features_of(&r.model.origin, r.model.tokenizer.as_ref(), &config, train)?;
        let tokenizer_files = r.model.tokenizer.clone();
        let null_threshold = r.model.defaults.null_threshold;
        let model = QaModel::from_weights(&r.model.config, r.model.weights, &device, DType::F32);
        Ok(Self {
            tokenizer_files,
            features,
            holdout,
            null_threshold,
            optim: r.optim,
            step: r.state.step,
            loss_scale: r.state.loss_scale,
            good_steps: r.state.good_steps,
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

    /// The micro-batches (feature indices) of update `step`.
    fn micro_batches(&self, step: u64) -> Vec<Vec<usize>> {
        let spe = self.steps_per_epoch();
        let (epoch, j) = (step / spe, (step % spe) as usize);
        let (b, a) = (self.config.batch_size, self.config.grad_accum);
        let mut order = epoch_order(self.features.len(), self.config.seed, epoch);
        if self.config.group_by_length {
            for chunk in order.chunks_mut(b * a * 64) {
                chunk.sort_by_key(|&i| std::cmp::Reverse(self.features[i].window.len()));
            }
        }
        (0..a)
            .map(|k| {
                let from = ((j * a + k) * b).min(order.len());
                let to = (from + b).min(order.len());
                order[from..to].to_vec()
            })
            .filter(|mb| !mb.is_empty())
            .collect()
    }

    /// One optimizer update: forward/backward over its micro-batches, unscale,
    /// clip, AdamW. Returns (mean loss, gradient norm, windows, updated?).
    pub fn update(&mut self) -> Result<(f64, f64, usize, bool), String> {
        self.update_on(&self.micro_batches(self.step))
    }

    /// [`Trainer::update`] on given micro-batches of feature indices.
    pub fn update_on(&mut self, mbs: &[Vec<usize>]) -> Result<(f64, f64, usize, bool), String> {
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
    pub fn update_batches(
        &mut self,
        mbs: &[LabelledBatch],
    ) -> Result<(f64, f64, usize, bool), String> {
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
            let out = step::forward_backward(
                &self.model,
                &self.ad_device,
                dtype,
                self.config.dropout,
                &mb.batch,
                (&mb.starts, &mb.ends),
                self.loss_scale,
                1.0 / mbs.len() as f64,
                &mut grads,
            )?;
            loss_sum += out.loss;
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
            // Dynamic loss scaling: skip the update, halve the scale.
            self.loss_scale = (self.loss_scale / 2.0).max(1.0);
            self.good_steps = 0;
            self.step += 1;
            return Ok((loss, norm, windows, false));
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
        let mut mapper = AdamWStep {
            config: self.config.adamw,
            lr,
            grads: &grads,
            state: &mut self.optim,
            path: Default::default(),
            missing: vec![],
        };
        // Cloning shares the tensors; the old ones go once the update has read them.
        let model = self.model.clone();
        let mut model = model.map(&mut mapper);
        if let Some(name) = mapper.missing.first() {
            return Err(format!("no gradient reached parameter {name}"));
        }
        self.optim.updates += 1;
        if self.config.precision == Precision::F16 {
            model = model.map(&mut RoundF16);
        }
        self.model = model;
        if self.config.precision != Precision::F32 {
            self.good_steps += 1;
            if self.good_steps >= 2000 {
                self.loss_scale *= 2.0;
                self.good_steps = 0;
            }
        }
        self.step += 1;
        Ok((loss, norm, windows, true))
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
                loss_scale: self.loss_scale,
                good_steps: self.good_steps,
                config: self.config.clone(),
                data_sha256: self.data_sha256.clone(),
            },
        )
    }

    /// Official SQuAD v2.0 scores of the current weights on `data`.
    pub fn evaluate(
        &self,
        data: &Dataset,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        let engine = Engine::new(self.checkpoint()?, self.device.clone(), DType::F32)
            .map_err(|e| e.to_string())?;
        let preds = engine
            .predict_examples(&data.examples, self.config.batch_size)
            .map_err(|e| e.to_string())?;
        let texts: Vec<(String, String)> = preds
            .iter()
            .map(|(id, p)| (id.clone(), p.text().to_string()))
            .collect();
        let odds: Vec<(String, f64)> = preds
            .iter()
            .map(|(id, p)| (id.clone(), p.null_odds))
            .collect();
        let mut scores = evaluate(data, &texts, Some(&odds), 1.0).map_err(|e| e.to_string())?;
        // A model early in training (or trained on little data) often lets the null
        // answer win everywhere. The official best-threshold search, run over the best
        // span of every question with its null odds as the score, says which
        // `--null-threshold` would have scored best here, and what F1 it gets.
        let forced: Vec<(String, String)> = preds
            .iter()
            .map(|(id, p)| (id.clone(), p.best_span.text.clone()))
            .collect();
        let search =
            evaluate(data, &forced, Some(&odds), f64::INFINITY).map_err(|e| e.to_string())?;
        for (from, to) in [
            ("best_f1_thresh", "best_null_threshold"),
            ("best_f1", "f1_at_best_null_threshold"),
        ] {
            if let Some(v) = search.get(from) {
                scores.insert(to.into(), v.clone());
            }
        }
        // The official search reports 0 when answering nothing at all scores best
        // (its sweep starts there with threshold 0, meant for probabilities in [0, 1]);
        // for null odds that means "below every question's odds".
        let unanswerable = data.examples.iter().filter(|e| e.is_impossible()).count();
        let all_null = 100.0 * unanswerable as f64 / data.examples.len().max(1) as f64;
        if search.get("best_f1").and_then(serde_json::Value::as_f64) == Some(all_null) {
            let lowest = odds.iter().map(|(_, o)| *o).fold(f64::INFINITY, f64::min);
            if lowest.is_finite() {
                scores.insert("best_null_threshold".into(), (lowest - 1.0).into());
            }
        }
        Ok(scores)
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
            let (loss, norm, windows, updated) = self.update()?;
            loss_acc += loss;
            n_acc += 1;
            windows_acc += windows;
            if !updated {
                on(&Event::Overflow {
                    step: self.step,
                    loss_scale: self.loss_scale,
                })?;
            }
            if self.step.is_multiple_of(self.config.log_every) || self.step == total {
                let secs = since.elapsed().as_secs_f64().max(1e-9);
                on(&Event::Step {
                    step: self.step,
                    loss: loss_acc / n_acc as f64,
                    lr: self.current_lr(),
                    windows_per_s: windows_acc as f64 / secs,
                    grad_norm: norm,
                    loss_scale: self.loss_scale,
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

    /// Chooses the null threshold on the held-out articles (first, so that the
    /// evaluation decodes with it), then scores `eval`, reporting both.
    fn evaluate_round(
        &mut self,
        eval: Option<&Dataset>,
        on: &mut dyn FnMut(&Event) -> Result<(), String>,
    ) -> Result<(), String> {
        let spe = self.steps_per_epoch();
        let holdout = self.holdout.take();
        for (set, data) in [("holdout", holdout.as_ref()), ("eval", eval)] {
            let Some(data) = data else { continue };
            let t0 = Instant::now();
            let scores = self.evaluate(data)?;
            if set == "holdout" {
                self.null_threshold = scores
                    .get("best_null_threshold")
                    .and_then(serde_json::Value::as_f64);
            }
            on(&Event::Eval {
                set,
                epoch: self.step as f64 / spe as f64,
                step: self.step,
                seconds: t0.elapsed().as_secs_f64(),
                scores,
            })?;
        }
        self.holdout = holdout;
        Ok(())
    }
}

fn initial_loss_scale(p: Precision) -> f64 {
    match p {
        Precision::F32 => 1.0,
        Precision::F16 | Precision::Mixed => 65536.0,
    }
}

fn check_precision(device: &Device, p: Precision) -> Result<(), String> {
    if p != Precision::F32 && !supports_f16(device) {
        return Err(format!(
            "--precision {}: this device has no f16 support; use --precision f32",
            match p {
                Precision::F16 => "f16",
                _ => "mixed",
            }
        ));
    }
    Ok(())
}

/// The labelled windows to train on (negatives included) and the held-out articles.
fn features_of(
    origin: &str,
    files: Option<&TokenizerFiles>,
    config: &TrainConfig,
    data: &Dataset,
) -> Result<(Vec<TrainFeature>, Option<Dataset>), String> {
    let files = files.ok_or_else(|| {
        format!("{origin}: the checkpoint carries no tokenizer (vocab.txt or tokenizer.json)")
    })?;
    let articles = data.titles().len();
    if config.holdout_articles >= articles {
        return Err(format!(
            "{}: --holdout-articles {} leaves none of its {articles} articles to train on",
            data.file, config.holdout_articles
        ));
    }
    let (train, holdout) = data.split_last_articles(config.holdout_articles);
    let negatives = |d: &Dataset| with_negatives(&d.examples, config.negatives, config.seed);
    let examples = negatives(&train);
    let tokenizer = tokenizer_of(origin, files, config.windows()).map_err(|e| e.to_string())?;
    let features = train_features(&tokenizer, &examples)
        .map_err(|(i, e)| format!("{}: {}: {e}", data.file, examples[i].path))?;
    if features.is_empty() {
        return Err(format!("{}: no questions to train on", data.file));
    }
    let holdout = (config.holdout_articles > 0).then(|| Dataset {
        examples: negatives(&holdout),
        ..holdout
    });
    Ok((features, holdout))
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
