use burn::tensor::{DType, Device};
use megaqa_model::{Batch, Checkpoint, LoadError, Logits, QaModel, TokenizerFiles};
use megaqa_text::windows::WindowError;
use megaqa_text::{
    DecodeConfig, Example, Prediction, QaTokenizer, Window, WindowConfig, WindowLogits, decode,
};
use web_time::Instant;

use crate::fingerprint::Fingerprint;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{0}: the checkpoint carries no tokenizer (vocab.txt or tokenizer.json)")]
    NoTokenizer(String),
    #[error("{origin}: tokenizer: {message}")]
    Tokenizer { origin: String, message: String },
    #[error(
        "{origin}: the tokenizer has {tokens} tokens but the model's embedding only {rows} rows"
    )]
    VocabMismatch {
        origin: String,
        tokens: usize,
        rows: usize,
    },
    #[error("{0}")]
    Input(#[from] WindowError),
    #[error("running the network: {0}")]
    Run(String),
}

/// Milliseconds spent in each stage of one question.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Timings {
    pub tokenize_ms: f64,
    pub network_ms: f64,
    pub decode_ms: f64,
}

/// One answered question, with the windows and logits it was decoded from.
#[derive(Debug, Clone)]
pub struct Answered {
    pub prediction: Prediction,
    pub windows: Vec<Window>,
    /// Per window: (start logits, end logits), one value per token of the window.
    pub logits: Vec<(Vec<f32>, Vec<f32>)>,
    pub timings: Timings,
}

/// How the engine pads the batches it runs. GPU backends compile kernels for the
/// tensor shapes they meet: in the browser on SwiftShader a question of a new token
/// length took 1.8-2.4 s against 0.9 s for a repeated one, while lengths rounded up
/// to multiples of 64 all ran in about 0.9 s once the first had compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shapes {
    /// Each batch padded to its longest window: the least work, one shape per length.
    #[default]
    Tight,
    /// Each batch padded to a multiple of `step` tokens (at most the window length).
    Buckets { step: usize },
}

impl Shapes {
    /// What GPU backends use (the CLI natively, the web app on WebGPU): 64-token
    /// buckets, measured above; padding is masked, so the answers are the same.
    pub const GPU: Shapes = Shapes::Buckets { step: 64 };
}

/// Questions cut into windows, ready to run.
struct Plan {
    /// Per question, its windows.
    windows: Vec<Vec<Window>>,
    tokenize_ms: f64,
}

impl Plan {
    /// Every window, longest first (with each one's place in question order), so that
    /// a batch pads its windows to a length near their own: a passage's last window
    /// and short passages no longer ride in batches padded to full windows.
    fn by_length(&self) -> (Vec<usize>, Vec<&Window>) {
        let flat: Vec<&Window> = self.windows.iter().flatten().collect();
        let mut order: Vec<usize> = (0..flat.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(flat[i].len()));
        let sorted = order.iter().map(|&i| flat[i]).collect();
        (order, sorted)
    }
}

/// A loaded model with its tokenizer, on one device.
pub struct Engine {
    pub model: QaModel,
    pub tokenizer: QaTokenizer,
    pub device: Device,
    pub decode: DecodeConfig,
    /// Where the model came from (path or name), for messages and exports.
    pub origin: String,
    /// sha256 of the checkpoint's weights and config as loaded (canonical form:
    /// [`Fingerprint`]); empty while an engine built `*_fingerprint_later` has not had it
    /// set.
    pub model_sha256: String,
    pub shapes: Shapes,
}

/// The tokenizer a checkpoint carries, making windows of the given geometry.
pub(crate) fn tokenizer_of(
    origin: &str,
    files: &TokenizerFiles,
    cfg: WindowConfig,
) -> Result<QaTokenizer, EngineError> {
    match files {
        TokenizerFiles::Vocab { vocab, lowercase } => {
            QaTokenizer::from_vocab(vocab, *lowercase, cfg)
        }
        TokenizerFiles::Json(json) => QaTokenizer::from_json(json, cfg),
    }
    .map_err(|e| EngineError::Tokenizer {
        origin: origin.into(),
        message: e.to_string(),
    })
}

impl Engine {
    /// Builds the network of a checkpoint on `device`.
    pub fn new(ckpt: Checkpoint, device: Device, dtype: DType) -> Result<Self, EngineError> {
        Self::fingerprinted(Self::new_fingerprint_later(ckpt, device, dtype))
    }

    /// [`Engine::new`] with its fingerprint still to compute: `model_sha256` is empty
    /// until [`Fingerprint`] is finished (the browser does it while the page is idle).
    pub fn new_fingerprint_later(
        ckpt: Checkpoint,
        device: Device,
        dtype: DType,
    ) -> Result<(Self, Fingerprint), EngineError> {
        Self::with_network(ckpt, device, |cfg, weights, device| {
            QaModel::from_weights(cfg, weights, device, dtype)
        })
    }

    /// [`Engine::new`] computing in f32 with the big matrices kept in the checkpoint's
    /// 16-bit type ([`QaModel::from_weights_16bit`]): f32's answers in about half the
    /// memory.
    pub fn new_16bit(ckpt: Checkpoint, device: Device) -> Result<Self, EngineError> {
        Self::fingerprinted(Self::new_16bit_fingerprint_later(ckpt, device))
    }

    /// [`Engine::new_16bit`] with its fingerprint still to compute.
    pub fn new_16bit_fingerprint_later(
        ckpt: Checkpoint,
        device: Device,
    ) -> Result<(Self, Fingerprint), EngineError> {
        Self::with_network(ckpt, device, QaModel::from_weights_16bit)
    }

    /// [`Engine::new`] on the CPU with the encoder's matmuls and the word embeddings in
    /// int8 ([`QaModel::from_weights_int8`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_int8(ckpt: Checkpoint, device: Device) -> Result<Self, EngineError> {
        Self::fingerprinted(Self::with_network(ckpt, device, QaModel::from_weights_int8))
    }

    fn fingerprinted(built: Result<(Self, Fingerprint), EngineError>) -> Result<Self, EngineError> {
        let (mut engine, fingerprint) = built?;
        engine.model_sha256 = fingerprint.finish()?;
        Ok(engine)
    }

    fn with_network(
        ckpt: Checkpoint,
        device: Device,
        build: impl FnOnce(
            &megaqa_model::ModelConfig,
            megaqa_model::checkpoint::Weights,
            &Device,
        ) -> Result<QaModel, LoadError>,
    ) -> Result<(Self, Fingerprint), EngineError> {
        let files = ckpt
            .tokenizer
            .as_ref()
            .ok_or_else(|| EngineError::NoTokenizer(ckpt.origin.clone()))?;
        // The geometry the model was trained at, and its own null threshold, when the
        // file carries them.
        let d = ckpt.defaults;
        let defaults = WindowConfig::default();
        let windows = WindowConfig {
            max_len: d.max_seq_len.unwrap_or(defaults.max_len),
            stride: d.doc_stride.unwrap_or(defaults.stride),
            ..defaults
        };
        let tokenizer = tokenizer_of(&ckpt.origin, files, windows)?;
        if tokenizer.vocab_size() > ckpt.config.vocab_size {
            return Err(EngineError::VocabMismatch {
                origin: ckpt.origin.clone(),
                tokens: tokenizer.vocab_size(),
                rows: ckpt.config.vocab_size,
            });
        }
        let fingerprint = Fingerprint::start(&ckpt);
        let origin = ckpt.origin.clone();
        let model = build(&ckpt.config, ckpt.weights, &device)?;
        let engine = Self {
            model,
            tokenizer,
            device,
            decode: DecodeConfig {
                null_threshold: d.null_threshold.unwrap_or(0.0),
                ..DecodeConfig::default()
            },
            origin,
            model_sha256: String::new(),
            shapes: Shapes::default(),
        };
        Ok((engine, fingerprint))
    }

    /// An engine over a network already built, with the window geometry of
    /// `tokenizer` and a null threshold of 0: training scores its weights as they are,
    /// without a copy of them. It has no fingerprint (`model_sha256` is empty): it
    /// writes no results file.
    pub fn from_network(model: QaModel, tokenizer: QaTokenizer, device: Device) -> Self {
        Self {
            model,
            tokenizer,
            device,
            decode: DecodeConfig::default(),
            origin: "the network in training".into(),
            model_sha256: String::new(),
            shapes: Shapes::default(),
        }
    }

    /// Windows for many questions, run through the network `batch_size` windows at a
    /// time (padded as [`Engine::shapes`] says), then decoded per question.
    pub fn answer_many(
        &self,
        items: &[(&str, &str)],
        batch_size: usize,
    ) -> Result<Vec<Answered>, EngineError> {
        let run = |batch: Batch| std::future::ready(self.model.run(&batch, &self.device));
        ready_now(self.answer_with(items, batch_size, run))
    }

    /// Same as [`Engine::answer_many`], reading logits asynchronously (WebGPU in the
    /// browser).
    pub async fn answer_many_async(
        &self,
        items: &[(&str, &str)],
        batch_size: usize,
    ) -> Result<Vec<Answered>, EngineError> {
        let run = |batch: Batch| async move { self.model.run_async(&batch, &self.device).await };
        self.answer_with(items, batch_size, run).await
    }

    /// Plan, run each batch through `run`, finish: the one path both of the above
    /// take. How a batch's logits come back is the only thing they differ in.
    async fn answer_with<F, Fut>(
        &self,
        items: &[(&str, &str)],
        batch_size: usize,
        run: F,
    ) -> Result<Vec<Answered>, EngineError>
    where
        F: Fn(Batch) -> Fut,
        Fut: Future<Output = Result<Logits, String>>,
    {
        let plan = self.plan(items)?;
        let t1 = Instant::now();
        let (order, sorted) = plan.by_length();
        let mut logits = Vec::with_capacity(sorted.len());
        for (chunk, batch) in self.batches(&sorted, batch_size) {
            let seq = batch.seq;
            let out = run(batch).await.map_err(EngineError::Run)?;
            split_logits(chunk, &out.start, &out.end, seq, &mut logits);
        }
        Ok(self.finish(
            items,
            plan,
            &order,
            logits,
            t1.elapsed().as_secs_f64() * 1e3,
        ))
    }

    /// Step one of answering: every question's windows.
    fn plan(&self, items: &[(&str, &str)]) -> Result<Plan, EngineError> {
        let t0 = Instant::now();
        let windows = self.tokenizer.windows_many(items)?;
        Ok(Plan {
            windows,
            tokenize_ms: t0.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// The last step: the logits, computed in `order` (see [`Plan::by_length`]), back
    /// in question order, and each question's decoded into its answer.
    fn finish(
        &self,
        items: &[(&str, &str)],
        plan: Plan,
        order: &[usize],
        logits: Vec<(Vec<f32>, Vec<f32>)>,
        network_ms: f64,
    ) -> Vec<Answered> {
        let n = items.len().max(1) as f64;
        let mut rest = unsort(order, logits).into_iter();
        items
            .iter()
            .zip(plan.windows)
            .map(|((_, context), ws)| {
                let t2 = Instant::now();
                let lg: Vec<(Vec<f32>, Vec<f32>)> = rest.by_ref().take(ws.len()).collect();
                let prediction = self.decode_one(context, &ws, &lg);
                Answered {
                    prediction,
                    windows: ws,
                    logits: lg,
                    timings: Timings {
                        tokenize_ms: plan.tokenize_ms / n,
                        network_ms: network_ms / n,
                        decode_ms: t2.elapsed().as_secs_f64() * 1e3,
                    },
                }
            })
            .collect()
    }

    /// Predictions for SQuAD examples, by id.
    pub fn predict_examples(
        &self,
        examples: &[Example],
        batch_size: usize,
    ) -> Result<Vec<(String, Prediction)>, EngineError> {
        let items: Vec<(&str, &str)> = examples
            .iter()
            .map(|e| (e.question.as_str(), &*e.context))
            .collect();
        Ok(examples
            .iter()
            .zip(self.answer_many(&items, batch_size)?)
            .map(|(e, a)| (e.id.clone(), a.prediction))
            .collect())
    }

    /// One question over one passage.
    pub fn ask(
        &self,
        question: &str,
        context: &str,
        batch_size: usize,
    ) -> Result<Answered, EngineError> {
        let mut a = self.answer_many(&[(question, context)], batch_size)?;
        Ok(a.remove(0))
    }

    /// Same as [`Engine::ask`], reading logits asynchronously (WebGPU in the browser).
    pub async fn ask_async(
        &self,
        question: &str,
        context: &str,
        batch_size: usize,
    ) -> Result<Answered, EngineError> {
        let mut a = self
            .answer_many_async(&[(question, context)], batch_size)
            .await?;
        Ok(a.remove(0))
    }

    /// The batches `windows` run in, padded as [`Engine::shapes`] says, each with
    /// the windows whose logits it yields.
    fn batches<'a, 'w>(
        &self,
        windows: &'a [&'w Window],
        batch_size: usize,
    ) -> impl Iterator<Item = (&'a [&'w Window], Batch)> {
        let max_len = self.tokenizer.window_config().max_len;
        let shapes = self.shapes;
        windows.chunks(batch_size.max(1)).map(move |chunk| {
            let longest = chunk.iter().map(|w| w.len()).max().unwrap_or(0);
            let seq = match shapes {
                Shapes::Tight => longest,
                Shapes::Buckets { step } => longest.next_multiple_of(step.max(1)).min(max_len),
            };
            (chunk, make_batch(chunk, seq))
        })
    }

    fn decode_one(
        &self,
        context: &str,
        windows: &[Window],
        logits: &[(Vec<f32>, Vec<f32>)],
    ) -> Prediction {
        let wl: Vec<WindowLogits> = windows
            .iter()
            .zip(logits)
            .map(|(w, (s, e))| WindowLogits {
                window: w,
                start: s,
                end: e,
            })
            .collect();
        decode(context, &wl, &self.decode).expect("every question has at least one window")
    }
}

/// A batch of windows padded to the longest of them, and to at least `min_seq` tokens.
pub(crate) fn make_batch(windows: &[&Window], min_seq: usize) -> Batch {
    let seq = windows
        .iter()
        .map(|w| w.len())
        .max()
        .unwrap_or(0)
        .max(min_seq);
    let mut batch = Batch {
        batch: windows.len(),
        seq,
        input_ids: vec![],
        token_types: vec![],
        mask: vec![],
    };
    for w in windows {
        let (ids, types, mask) = w.padded(seq);
        batch.input_ids.extend(ids);
        batch.token_types.extend(types);
        batch.mask.extend(mask);
    }
    batch
}

/// The value of a future whose every `await` is complete when first polled: the
/// blocking path of [`Engine::answer_with`], where each batch's logits are read
/// synchronously, needs no executor.
fn ready_now<T>(f: impl Future<Output = T>) -> T {
    let mut f = std::pin::pin!(f);
    match f
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("the blocking path awaits only ready futures"),
    }
}

/// Items computed in `order` (see [`Plan::by_length`]) put back in question order.
fn unsort<T>(order: &[usize], sorted: Vec<T>) -> Vec<T> {
    let mut slots: Vec<Option<T>> = (0..sorted.len()).map(|_| None).collect();
    for (&i, x) in order.iter().zip(sorted) {
        slots[i] = Some(x);
    }
    slots
        .into_iter()
        .map(|x| x.expect("a permutation"))
        .collect()
}

fn split_logits(
    windows: &[&Window],
    start: &[f32],
    end: &[f32],
    seq: usize,
    out: &mut Vec<(Vec<f32>, Vec<f32>)>,
) {
    for (i, w) in windows.iter().enumerate() {
        let r = i * seq..i * seq + w.len();
        out.push((start[r.clone()].to_vec(), end[r].to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tiny fixture model. The path is read when the test runs, not compiled in: a
    /// test binary reused from a build in another checkout must not look there.
    fn tiny() -> String {
        let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        format!("{root}/../../tests/fixtures/models/megatron-tiny")
    }

    fn engine(shapes: Shapes) -> Engine {
        let dir = tiny();
        let mut e =
            Engine::new(Checkpoint::open(dir).unwrap(), Device::flex(), DType::F32).unwrap();
        e.shapes = shapes;
        e
    }

    #[test]
    fn buckets_round_lengths_up_to_their_step_and_stop_at_the_window_length() {
        let e = engine(Shapes::Buckets { step: 64 });
        let long = "word ".repeat(1000);
        for (context, want) in [
            ("Paris.", vec![64]),
            (long.as_str(), vec![384, 384, 384, 256]),
        ] {
            let windows = e.tokenizer.windows("Where?", context).unwrap();
            let refs: Vec<&Window> = windows.iter().collect();
            let seqs: Vec<usize> = e.batches(&refs, 1).map(|(_, b)| b.seq).collect();
            assert_eq!(
                seqs,
                want,
                "{:?}",
                windows.iter().map(Window::len).collect::<Vec<_>>()
            );
        }
        let tight = engine(Shapes::Tight);
        assert_eq!(tight.decode.null_threshold, 0.0, "no stored threshold: 0");
        let windows = tight.tokenizer.windows("Where?", "Paris.").unwrap();
        let refs: Vec<&Window> = windows.iter().collect();
        assert_eq!(
            tight.batches(&refs, 1).next().unwrap().1.seq,
            windows[0].len()
        );
    }

    /// What `megaqa train` stores with a model (its window geometry and the null
    /// threshold chosen on held-out data) is how the engine runs it: evaluation during
    /// training and every command see the geometry the model was trained at.
    #[test]
    fn a_model_runs_with_the_geometry_and_threshold_it_carries() {
        let dir = tiny();
        let mut ckpt = Checkpoint::open(dir).unwrap();
        ckpt.defaults = megaqa_model::RunDefaults {
            null_threshold: Some(-1.5),
            max_seq_len: Some(256),
            doc_stride: Some(64),
        };
        let bytes = ckpt.to_converted_bytes(false).unwrap();
        let ckpt = Checkpoint::from_bytes("m", "m.safetensors", bytes).unwrap();
        let e = Engine::new(ckpt, Device::flex(), DType::F32).unwrap();
        assert_eq!(e.decode.null_threshold, -1.5);
        let c = e.tokenizer.window_config();
        assert_eq!((c.max_len, c.stride), (256, 64));
        let long = "word ".repeat(1000);
        let windows = e.tokenizer.windows("Where?", &long).unwrap();
        assert!(windows.iter().all(|w| w.len() <= 256));
        assert_eq!(windows[0].len(), 256);
    }

    /// Windows run longest first (less padding) and come back in question order: many
    /// questions of mixed lengths answered together equal each answered alone.
    #[test]
    fn windows_sorted_by_length_come_back_to_their_questions() {
        let e = engine(Shapes::Tight);
        let long = "The river runs north past the mill. ".repeat(60);
        let items = [
            ("Where does the river run?", long.as_str()),
            ("Who built it?", "Anna built the bridge in 1901."),
            ("What runs past the mill?", long.as_str()),
            ("When?", "In 1901."),
        ];
        let plan = e.plan(&items).unwrap();
        let (order, sorted) = plan.by_length();
        assert!(sorted.windows(2).all(|w| w[0].len() >= w[1].len()));
        assert_ne!(
            order,
            (0..order.len()).collect::<Vec<_>>(),
            "the order changed"
        );
        let together = e.answer_many(&items, 3).unwrap();
        for ((q, c), t) in items.iter().zip(&together) {
            let alone = e.ask(q, c, 3).unwrap();
            assert_eq!(t.prediction.text(), alone.prediction.text(), "{q}");
            for ((a, b), (x, y)) in t.logits.iter().zip(&alone.logits) {
                let d = a
                    .iter()
                    .chain(b)
                    .zip(x.iter().chain(y))
                    .map(|(u, v)| (u - v).abs());
                assert!(d.fold(0f32, f32::max) < 1e-4, "{q}");
            }
        }
    }
}
