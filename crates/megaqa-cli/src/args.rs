//! Command-line arguments. Scripts depend on these names: keep them.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use megaqa::model::device::DeviceKind;
use megaqa::train::{Precision, TrainConfig};

#[derive(Parser)]
#[command(
    name = "megaqa",
    version,
    about = "Extractive question answering (SQuAD v2) with Megatron-BERT and BERT checkpoints"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Answer one question over a passage, or over documents (--docs, --index).
    Ask(AskArgs),
    /// Index documents once for `ask --index` (large collections).
    Index(IndexArgs),
    /// Answer every question of a SQuAD file; writes predictions.json, null_odds.json, nbest.json.
    Predict(PredictArgs),
    /// Score predictions with the official SQuAD v2.0 evaluation.
    Evaluate(EvaluateArgs),
    /// Compare two devices (or one device and an exported results file) on a SQuAD file.
    Parity(ParityArgs),
    /// Write one self-contained file (weights + config + vocab) for the web app and fast loading.
    Convert(ConvertArgs),
    /// Measure load time, windows/s, tokens/s and peak memory.
    Bench(BenchArgs),
    /// Fine-tune on SQuAD-format data; DIR then works as `--model DIR` everywhere.
    Train(TrainArgs),
}

/// Numeric precision of inference: the dtype of the network's weights and compute
/// (a model file's dtype is only how it is stored).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Compute {
    #[default]
    F32,
    F16,
    Bf16,
    /// The encoder's matmul weights in int8 (per output channel), activations
    /// quantised per token at run time, f32 elsewhere. CPU only.
    Int8,
}

impl Compute {
    pub fn dtype(self) -> burn::tensor::DType {
        match self {
            Compute::F32 | Compute::Int8 => burn::tensor::DType::F32,
            Compute::F16 => burn::tensor::DType::F16,
            Compute::Bf16 => burn::tensor::DType::BF16,
        }
    }
}

impl std::fmt::Display for Compute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compute::F32 => "f32",
            Compute::F16 => "f16",
            Compute::Bf16 => "bf16",
            Compute::Int8 => "int8",
        })
    }
}

#[derive(Args, Clone)]
pub struct ModelArgs {
    /// A Hugging Face directory, a .nemo archive, or a file made by `megaqa convert`.
    #[arg(long)]
    pub model: PathBuf,
    /// cpu, wgpu, or cuda (where built with it). Default: the best one available.
    #[arg(long)]
    pub device: Option<DeviceKind>,
    /// Weights and compute in f32, f16 or bf16 (a device without it says so).
    #[arg(long, value_enum, default_value_t = Compute::F32)]
    pub precision: Compute,
    #[command(flatten)]
    pub defaults: DefaultsArgs,
}

/// How the model runs: what its file stores (`megaqa train` saves its window geometry
/// and null threshold), unless these say otherwise.
#[derive(Args, Clone, Copy, Default)]
pub struct DefaultsArgs {
    /// Answer "" when null_odds is above this (SQuAD v2 threshold). Default: the
    /// threshold stored in the model by `megaqa train`, else 0.
    #[arg(long, allow_negative_numbers = true)]
    pub null_threshold: Option<f64>,
    /// Tokens per window, special tokens included. Default: the model's, else 384.
    #[arg(long)]
    pub max_seq_len: Option<usize>,
    /// Context tokens shared by consecutive windows. Default: the model's, else 128.
    #[arg(long)]
    pub doc_stride: Option<usize>,
}

#[derive(Args)]
#[command(group(ArgGroup::new("source").required(true).args(["context", "context_file", "docs", "index"])))]
pub struct AskArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The passage to search.
    #[arg(long)]
    pub context: Option<String>,
    /// Read the passage from a file.
    #[arg(long)]
    pub context_file: Option<PathBuf>,
    /// Documents to search first (.txt, .md, SQuAD .json; folders are read recursively).
    #[arg(long, num_args = 1..)]
    pub docs: Vec<PathBuf>,
    /// An index made by `megaqa index` (its documents are read again and checked).
    #[arg(long)]
    pub index: Option<PathBuf>,
    /// With --docs or --index: how many passages BM25 retrieves for the reader.
    #[arg(long, default_value_t = 10)]
    pub passages: usize,
    #[arg(long)]
    pub question: String,
    /// How many alternatives to list (the n-best list holds up to 20).
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct IndexArgs {
    /// Documents (.txt, .md, SQuAD .json; folders are read recursively).
    #[arg(long, num_args = 1.., required = true)]
    pub docs: Vec<PathBuf>,
    /// The index file to write.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A SQuAD v2.0 JSON file (official nested or HF flat format).
    #[arg(long)]
    pub data: PathBuf,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Windows per network call. Default: the device's (8 on the CPU, 32 on a GPU).
    #[arg(long, value_parser = at_least_one)]
    pub batch_size: Option<usize>,
    /// Open-collection evaluation: ignore each question's paragraph and read the passages
    /// BM25 retrieves from these documents instead; also writes retrieval.json.
    #[arg(long, num_args = 1.., conflicts_with = "index")]
    pub docs: Vec<PathBuf>,
    /// Same as --docs, from an index made by `megaqa index`.
    #[arg(long)]
    pub index: Option<PathBuf>,
    /// With --docs or --index: passages read per question.
    #[arg(long, default_value_t = 10)]
    pub passages: usize,
}

#[derive(Args)]
pub struct EvaluateArgs {
    #[arg(long)]
    pub data: PathBuf,
    /// predictions.json: {id: answer text}.
    #[arg(long)]
    pub predictions: PathBuf,
    /// null_odds.json or any {id: probability of no answer}.
    #[arg(long)]
    pub na_prob_file: Option<PathBuf>,
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub na_prob_thresh: f64,
    /// Print the official keys as JSON only.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ParityArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// The questions (SQuAD file). Not needed with --against a file that carries its passages.
    #[arg(long, required_unless_present = "against")]
    pub data: Option<PathBuf>,
    #[arg(long)]
    pub device_a: DeviceKind,
    /// The second device; not needed with --against.
    #[arg(long, required_unless_present = "against")]
    pub device_b: Option<DeviceKind>,
    /// A results file exported by the web app or by `--export` on another machine.
    #[arg(long, conflicts_with = "device_b")]
    pub against: Option<PathBuf>,
    /// Largest allowed |difference| of any logit.
    #[arg(long, default_value_t = 1e-3)]
    pub tolerance: f32,
    /// Also write device A's results, for `--against` elsewhere.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Windows per network call. Default: each device's (8 on the CPU, 32 on a GPU).
    #[arg(long, value_parser = at_least_one)]
    pub batch_size: Option<usize>,
    /// Device A's weights and compute: f32, f16 or bf16.
    #[arg(long, value_enum, default_value_t = Compute::F32)]
    pub precision: Compute,
    /// Device B's (default: --precision): `--device-a cpu --precision f16 --device-b cpu
    /// --precision-b f32` measures what 16 bits change.
    #[arg(long, value_enum)]
    pub precision_b: Option<Compute>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DtypeArg {
    F32,
    F16,
    /// The encoder's matmul weights in int8 (a scale per output row), the rest f16.
    Int8,
}

#[derive(Args)]
pub struct ConvertArgs {
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: DtypeArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchPrecision {
    F32,
    F16,
    Bf16,
    Int8,
    Mixed,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RandomPreset {
    #[value(name = "megatron-345m")]
    Megatron345m,
}

#[derive(Args)]
pub struct BenchArgs {
    #[arg(long, conflicts_with = "random", required_unless_present = "random")]
    pub model: Option<PathBuf>,
    /// A model of a known shape with random weights (no checkpoint needed).
    #[arg(long, value_enum)]
    pub random: Option<RandomPreset>,
    #[arg(long)]
    pub device: Option<DeviceKind>,
    #[arg(long, default_value_t = 384)]
    pub seq_len: usize,
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,
    /// Timed runs after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Time training updates (forward, backward, AdamW) instead of inference.
    #[arg(long)]
    pub train: bool,
    /// Inference: f32, f16 or bf16. With --train: f32, f16 or mixed.
    #[arg(long, value_enum, default_value_t = BenchPrecision::F32)]
    pub precision: BenchPrecision,
    /// Also time each kind of step (matmuls, attention, activation, LayerNorm...) over
    /// `--runs` more passes and print where the time goes.
    #[arg(long, conflicts_with = "train")]
    pub profile: bool,
    #[arg(long)]
    pub json: bool,
}

/// `megaqa train`'s defaults are the library's (`TrainConfig::default`), not copies.
const DEFAULT: TrainConfig = TrainConfig::DEFAULT;

#[derive(Args)]
pub struct TrainArgs {
    /// A QA checkpoint, or a pretrained encoder without a QA head (any format `--model` reads).
    #[arg(long)]
    pub model: PathBuf,
    /// SQuAD-format training data (nested, flat or JSON lines).
    #[arg(long)]
    pub train: PathBuf,
    /// Output directory: checkpoints, metrics.jsonl, loss.svg.
    #[arg(long)]
    pub out: PathBuf,
    /// Scored with the official SQuAD v2.0 metrics after every epoch.
    #[arg(long)]
    pub eval: Option<PathBuf>,
    #[arg(long, default_value_t = DEFAULT.epochs)]
    pub epochs: u64,
    /// Windows per micro-batch.
    #[arg(long, default_value_t = DEFAULT.batch_size)]
    pub batch_size: usize,
    /// Micro-batches per optimizer update.
    #[arg(long, default_value_t = DEFAULT.grad_accum)]
    pub grad_accum: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = DEFAULT.lr)]
    pub lr: f64,
    /// Share of updates spent warming the learning rate up from 0.
    #[arg(long, default_value_t = DEFAULT.warmup_ratio)]
    pub warmup_ratio: f64,
    /// AdamW weight decay (not applied to biases and LayerNorm scales).
    #[arg(long, default_value_t = DEFAULT.adamw.weight_decay)]
    pub weight_decay: f64,
    /// Clip the global gradient norm to this (0: no clipping).
    #[arg(long, default_value_t = DEFAULT.max_grad_norm)]
    pub max_grad_norm: f64,
    /// Stop after this many updates (overrides --epochs). 0: no update; the model
    /// only gets its null threshold from --holdout-articles and is saved (a model
    /// trained elsewhere on this run's data, calibrated the way a run is).
    #[arg(long)]
    pub max_steps: Option<u64>,
    #[arg(long, default_value_t = DEFAULT.max_seq_len)]
    pub max_seq_len: usize,
    #[arg(long, default_value_t = DEFAULT.doc_stride)]
    pub doc_stride: usize,
    /// f32, f16 (16-bit weights and compute) or mixed (16-bit compute, f32 master weights).
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
    #[arg(long, default_value_t = DEFAULT.dropout)]
    pub dropout: f64,
    #[arg(long, default_value_t = DEFAULT.seed)]
    pub seed: u64,
    /// cpu, wgpu, or cuda (where built with it). Default: the best one available.
    #[arg(long)]
    pub device: Option<DeviceKind>,
    /// Save a checkpoint every N updates (and at the end).
    #[arg(long, default_value_t = DEFAULT.save_every)]
    pub save_every: u64,
    /// Log the loss every N updates.
    #[arg(long, default_value_t = DEFAULT.log_every)]
    pub log_every: u64,
    /// About this many unanswerable examples per answerable question: the question
    /// over another paragraph of its article (the one sharing the most words first).
    #[arg(long, default_value_t = DEFAULT.negatives, allow_negative_numbers = true)]
    pub negatives: f64,
    /// About this many (at most 1) unanswerable examples per answerable question made by
    /// swapping a name or number of the question for one its paragraph lacks, over its
    /// own paragraph: harder negatives, like SQuAD 2.0's own.
    #[arg(long, default_value_t = DEFAULT.swap_negatives, allow_negative_numbers = true)]
    pub swap_negatives: f64,
    /// Train on all but the last N articles of --train; on those N, choose the null
    /// threshold after each epoch and store it in the model as its default.
    #[arg(long, default_value_t = DEFAULT.holdout_articles)]
    pub holdout_articles: usize,
    /// Batch windows of similar length together (less padding, faster).
    #[arg(long)]
    pub group_by_length: bool,
    /// Continue the run saved in --out (with its saved settings).
    #[arg(long)]
    pub resume: bool,
    /// Write the run's labelled windows, update order, learning rates and initial QA
    /// head to this safetensors file and train nothing (for the PyTorch recipe in
    /// tests/reference/train_squad_reference.py).
    #[arg(long, conflicts_with = "resume")]
    pub export: Option<PathBuf>,
}

/// `--batch-size`: a whole number of windows, at least one (0 is an error, not 1).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("a batch holds at least 1 window".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e} (a whole number of windows)")),
    }
}
