//! The network: embeddings, a stack of pre-LN (Megatron) or post-LN (BERT)
//! encoder layers, and the span head `Linear(hidden, 2)`. Read top to bottom, it is
//! the forward pass of `MegatronBertForQuestionAnswering` / `BertForQuestionAnswering`.

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, gelu_approximate, relu, softmax};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Bytes, DType, Device, Distribution, Int, Tensor, TensorData};

use crate::checkpoint::{LoadError, RawTensor, Weights};
use crate::config::{Activation, ModelConfig};
use crate::params::{ByName, MapByName};
use crate::profile::{Op, step};

#[derive(Module, Debug)]
pub struct Embeddings {
    pub word: Embedding,
    pub position: Embedding,
    pub token_type: Embedding,
    /// Post-LN (BERT) only: Megatron has no LayerNorm on the embeddings.
    pub ln: Option<LayerNorm>,
    /// The word embeddings in int8, a scale per row (`--precision int8`, CPU only);
    /// `word` is then empty.
    #[cfg(not(target_arch = "wasm32"))]
    #[module(skip)]
    pub word_int8: Option<std::sync::Arc<crate::fused::int8::QuantizedMatrix>>,
}

impl Embeddings {
    /// The word embeddings of `ids` (`[batch, seq]`).
    fn words(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(q) = &self.word_int8 {
            let [batch, seq] = ids.dims();
            let device = ids.device();
            let ids = ids.into_data().convert::<i64>();
            let ids = ids.as_slice::<i64>().expect("converted to i64");
            let values = TensorData::new(q.rows(ids), [batch, seq, q.inputs]);
            return Tensor::from_data(values, &device);
        }
        // Kept in 16 bits while the rest computes in f32 (`QaModel::from_weights_16bit`):
        // only the looked-up rows are widened (`cast` to the same type is a no-op).
        let compute = self.position.weight.val().dtype();
        self.word.forward(ids).cast(compute)
    }

    /// How many tokens the word embeddings have a row for.
    pub fn vocab_rows(&self) -> usize {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(q) = &self.word_int8 {
            return q.outputs;
        }
        self.word.weight.dims()[0]
    }
}

#[derive(Module, Debug)]
pub struct EncoderLayer {
    /// Pre-LN: before attention. Post-LN: after the attention residual add.
    pub ln1: LayerNorm,
    /// Q, K and V projections fused into one `[hidden, 3*hidden]` matmul.
    pub qkv: Linear,
    pub attn_out: Linear,
    /// Pre-LN: before the MLP. Post-LN: after the MLP residual add.
    pub ln2: LayerNorm,
    pub ffn_in: Linear,
    pub ffn_out: Linear,
    /// The four matmuls' weights in int8 (`QaModel::quantize_int8`, CPU only); the f32
    /// weights above are then empty.
    #[cfg(not(target_arch = "wasm32"))]
    #[module(skip)]
    pub int8: Option<std::sync::Arc<crate::fused::int8::Int8Layer>>,
}

/// Start and end logits for every token: `[batch, seq]` each.
pub struct SpanLogits {
    pub start: Tensor<2>,
    pub end: Tensor<2>,
}

#[derive(Module, Debug)]
pub struct QaModel {
    pub embeddings: Embeddings,
    pub layers: Vec<EncoderLayer>,
    /// Pre-LN (Megatron) only.
    pub final_ln: Option<LayerNorm>,
    pub qa: Linear,
    #[module(skip)]
    pub config: ModelConfig,
    /// Dropout probability, applied only while training (tensors on an autodiff
    /// device) and only when above 0; inference never drops anything.
    #[module(skip)]
    pub dropout: f64,
}

/// Inverted dropout, as `torch.nn.Dropout` in training mode: zero with probability
/// `p`, scale the rest by `1/(1-p)`. A no-op outside training.
fn dropout<const D: usize>(x: Tensor<D>, p: f64) -> Tensor<D> {
    if p <= 0.0 || !x.is_autodiff() {
        return x;
    }
    let keep = x.random_like(Distribution::Bernoulli(1.0 - p));
    x * keep * (1.0 / (1.0 - p))
}

impl QaModel {
    /// Final hidden states `[batch, seq, hidden]` for token ids, token types and an
    /// attention mask (1 = attend, 0 = padding), all `[batch, seq]`.
    pub fn encode(
        &self,
        input_ids: Tensor<2, Int>,
        token_types: Tensor<2, Int>,
        mask: Tensor<2, Int>,
    ) -> Tensor<3> {
        let cfg = &self.config;
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &device).reshape([1, seq]);
        let mut x = step(Op::Embeddings, || {
            let x = self.embeddings.words(input_ids)
                + self.embeddings.position.forward(positions)
                + self.embeddings.token_type.forward(token_types);
            match &self.embeddings.ln {
                Some(ln) => ln.forward(x),
                None => x,
            }
        });
        x = dropout(x, self.dropout);
        let mask = Mask {
            // true = masked out, broadcast over heads and query positions.
            masked: mask
                .clone()
                .equal_elem(0)
                .reshape([batch, 1, 1, seq])
                .expand([batch, cfg.num_heads, seq, seq]),
            keys: mask,
        };
        for layer in &self.layers {
            x = layer.forward(x, &mask, cfg, self.dropout);
        }
        match &self.final_ln {
            Some(ln) => step(Op::LayerNorm, || ln.forward(x)),
            None => x,
        }
    }

    /// Span logits for a batch of windows.
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_types: Tensor<2, Int>,
        mask: Tensor<2, Int>,
    ) -> SpanLogits {
        let hidden = self.encode(input_ids, token_types, mask);
        let [batch, seq, _] = hidden.dims();
        step(Op::SpanHead, || {
            let logits = self.qa.forward(hidden); // [batch, seq, 2]
            let mut parts = logits
                .chunk(2, 2)
                .into_iter()
                .map(|t| t.reshape([batch, seq]));
            let start = parts.next().expect("chunk(2) yields two parts");
            let end = parts.next().expect("chunk(2) yields two parts");
            SpanLogits { start, end }
        })
    }
}

/// An encoder layer's four matmuls.
#[derive(Clone, Copy)]
enum Proj {
    Qkv,
    AttnOut,
    FfnIn,
    FfnOut,
}

/// The attention mask in the two forms the kernels take.
struct Mask {
    /// `[batch, seq]`: 1 = a token, 0 = padding (the fused CPU kernel, native only).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    keys: Tensor<2, Int>,
    /// `[batch, heads, seq, seq]`, true = masked out (Burn's attention).
    masked: Tensor<4, Bool>,
}

impl EncoderLayer {
    fn forward(&self, x: Tensor<3>, mask: &Mask, cfg: &ModelConfig, p: f64) -> Tensor<3> {
        // Dropout sits where BERT and Megatron-BERT put it: on the attention
        // probabilities and on each sublayer's output before the residual add.
        let norm = |ln: &LayerNorm, x| step(Op::LayerNorm, || ln.forward(x));
        let add = |x, sub| step(Op::Residual, || x + dropout(sub, p));
        if cfg.pre_layer_norm {
            let x = add(x.clone(), self.attention(norm(&self.ln1, x), mask, cfg, p));
            add(x.clone(), self.mlp(norm(&self.ln2, x), cfg))
        } else {
            let x = norm(&self.ln1, add(x.clone(), self.attention(x, mask, cfg, p)));
            norm(&self.ln2, add(x.clone(), self.mlp(x, cfg)))
        }
    }

    fn attention(&self, x: Tensor<3>, mask: &Mask, cfg: &ModelConfig, p: f64) -> Tensor<3> {
        let qkv = step(Op::QkvProjection, || self.project(x, Proj::Qkv, true));
        let context = step(Op::Attention, || heads_attend(qkv, mask, cfg, p));
        step(Op::AttentionOutput, || {
            self.project(context, Proj::AttnOut, true)
        })
    }

    /// One of the layer's matmuls, `x W (+ b)`: in int8 where the layer has int8
    /// weights (and the input is on the CPU), else through Burn.
    fn project(&self, x: Tensor<3>, which: Proj, with_bias: bool) -> Tensor<3> {
        let linear = match which {
            Proj::Qkv => &self.qkv,
            Proj::AttnOut => &self.attn_out,
            Proj::FfnIn => &self.ffn_in,
            Proj::FfnOut => &self.ffn_out,
        };
        let bias = linear.bias.as_ref().map(Param::val).filter(|_| with_bias);
        #[cfg(not(target_arch = "wasm32"))]
        let (x, bias) = match &self.int8 {
            Some(q) => {
                let w = match which {
                    Proj::Qkv => &q.qkv,
                    Proj::AttnOut => &q.attn_out,
                    Proj::FfnIn => &q.ffn_in,
                    Proj::FfnOut => &q.ffn_out,
                };
                match crate::fused::int8::linear(x, w, bias.clone()) {
                    Ok(y) => return y,
                    Err(x) => (x, bias),
                }
            }
            None => (x, bias),
        };
        // A weight kept in 16 bits under f32 compute (`QaModel::from_weights_16bit`) is
        // widened for this product only and dropped after it (`cast` to the same type
        // is a no-op).
        let weight = linear.weight.val().cast(x.dtype());
        #[cfg(not(target_arch = "wasm32"))]
        let x = match crate::fused::linear(x, weight.clone(), bias.clone()) {
            Ok(y) => return y,
            Err(x) => x,
        };
        burn::tensor::module::linear(x, weight, bias)
    }

    fn mlp(&self, x: Tensor<3>, cfg: &ModelConfig) -> Tensor<3> {
        let bias = self.ffn_in.bias.as_ref().map(Param::val);
        let h = step(Op::FfnIn, || self.project(x, Proj::FfnIn, false));
        let h = step(Op::Activation, || activate(h, bias, cfg.activation));
        step(Op::FfnOut, || self.project(h, Proj::FfnOut, true))
    }
}

/// Multi-head attention from the fused Q/K/V projection `[batch, seq, 3*hidden]` to
/// the heads' contexts side by side, `[batch, seq, hidden]`.
fn heads_attend(qkv: Tensor<3>, mask: &Mask, cfg: &ModelConfig, p: f64) -> Tensor<3> {
    #[cfg(not(target_arch = "wasm32"))]
    let qkv = match crate::fused::attention(qkv, &mask.keys, cfg.num_heads) {
        Ok(context) => return context,
        Err(qkv) => qkv,
    };
    let [batch, seq, width] = qkv.dims();
    let (heads, head_dim) = (cfg.num_heads, cfg.head_dim());
    let split = |t: Tensor<3>| t.reshape([batch, seq, heads, head_dim]).swap_dims(1, 2);
    let mut qkv = qkv.chunk(3, 2).into_iter().map(split);
    let (q, k, v) = (
        qkv.next().unwrap(),
        qkv.next().unwrap(),
        qkv.next().unwrap(),
    );
    let context = if p > 0.0 && q.is_autodiff() {
        // Training with dropout: the fused op has no dropout on the probabilities,
        // so spell attention out as the reference does.
        let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (head_dim as f64).sqrt());
        let scores = scores.mask_fill(mask.masked.clone(), f32::MIN);
        dropout(softmax(scores, 3), p).matmul(v)
    } else {
        attention(
            q,
            k,
            v,
            Some(mask.masked.clone()),
            None,
            AttentionModuleOptions::default(),
        )
    };
    context.swap_dims(1, 2).reshape([batch, seq, width / 3])
}

/// `activation(h + bias)`. On the CPU, exact GELU takes the bias along in one fused
/// pass; elsewhere the add is its own op, as inside `Linear`.
fn activate(h: Tensor<3>, bias: Option<Tensor<1>>, activation: Activation) -> Tensor<3> {
    #[cfg(not(target_arch = "wasm32"))]
    let (h, bias) = match (activation, bias) {
        (Activation::Gelu, Some(b)) => match crate::fused::bias_gelu(h, b.clone()) {
            Ok(y) => return y,
            Err(h) => (h, Some(b)),
        },
        (_, bias) => (h, bias),
    };
    let h = match bias {
        Some(b) => h + b.unsqueeze(),
        None => h,
    };
    match activation {
        // Training: spelled out with erf, because Burn 0.22's GPU backends
        // differentiate `gelu` as if it were the tanh approximation (their
        // `gelu_backward` is the default one), which put wgpu gradients 4e-4 off.
        Activation::Gelu if h.is_autodiff() => {
            h.clone() * ((h * std::f64::consts::FRAC_1_SQRT_2).erf() + 1.0) * 0.5
        }
        Activation::Gelu => gelu(h),
        Activation::GeluTanh => gelu_approximate(h),
        Activation::Relu => relu(h),
    }
}

impl QaModel {
    /// The network `cfg` describes with every parameter still uninitialised (Burn's
    /// lazy init: nothing is allocated or drawn until a parameter is read). Loading
    /// fills it by visiting it ([`Fill`]); its parameters' paths and shapes are also
    /// what `params::checkpoint_shapes` derives the checkpoint's names and shapes from.
    pub(crate) fn skeleton(cfg: &ModelConfig, device: &Device) -> Self {
        let h = cfg.hidden_size;
        let embedding = |rows| EmbeddingConfig::new(rows, h).init(device);
        let layer_norm = || {
            LayerNormConfig::new(h)
                .with_epsilon(cfg.layer_norm_eps)
                .init(device)
        };
        let linear = |d_in, d_out| LinearConfig::new(d_in, d_out).init(device);
        QaModel {
            embeddings: Embeddings {
                word: embedding(cfg.vocab_size),
                position: embedding(cfg.max_position_embeddings),
                token_type: embedding(cfg.type_vocab_size),
                ln: (!cfg.pre_layer_norm).then(layer_norm),
                #[cfg(not(target_arch = "wasm32"))]
                word_int8: None,
            },
            layers: (0..cfg.num_layers)
                .map(|_| EncoderLayer {
                    ln1: layer_norm(),
                    qkv: linear(h, 3 * h),
                    attn_out: linear(h, h),
                    ln2: layer_norm(),
                    ffn_in: linear(h, cfg.intermediate_size),
                    ffn_out: linear(cfg.intermediate_size, h),
                    #[cfg(not(target_arch = "wasm32"))]
                    int8: None,
                })
                .collect(),
            final_ln: cfg.pre_layer_norm.then(layer_norm),
            qa: linear(h, 2),
            config: cfg.clone(),
            dropout: 0.0,
        }
    }

    /// Builds the network from checked weights (see `Checkpoint`). A missing QA head
    /// is drawn fresh (N(0, 0.02)), so that a pretrained encoder can be fine-tuned.
    /// Tensors still in their file ([`RawTensor::load`]) are read here, one at a time;
    /// a read that fails is the error.
    pub fn from_weights(
        cfg: &ModelConfig,
        weights: Weights,
        device: &Device,
        dtype: DType,
    ) -> Result<Self, LoadError> {
        Self::filled(cfg, device, Fill::new(weights, device, dtype))
    }

    fn filled(cfg: &ModelConfig, device: &Device, fill: Fill) -> Result<Self, LoadError> {
        let mut fill = ByName::new(fill);
        let model = Self::skeleton(cfg, device).map(&mut fill);
        fill.inner.failed.map_or(Ok(model), Err)
    }

    /// [`QaModel::from_weights`] computing in f32, with the encoder's matmul weights and
    /// the word embeddings (most of the bytes) kept in the checkpoint's 16-bit type
    /// (f16 or bf16) and widened to f32 one matrix at a time while it is multiplied:
    /// the same answers as f32 from the same file (widening 16 bits is exact), in
    /// about half the memory, for a little more time per batch. For a big model on a
    /// CPU with little memory (the browser's wasm: 4 GB in all). Matrices stored in
    /// other types are read as f32, as `from_weights` reads them.
    pub fn from_weights_16bit(
        cfg: &ModelConfig,
        weights: Weights,
        device: &Device,
    ) -> Result<Self, LoadError> {
        let mut fill = Fill::new(weights, device, DType::F32);
        fill.keep_16bit = true;
        Self::filled(cfg, device, fill)
    }

    /// A network of the given shape with random weights (for tests and benchmarks).
    pub fn random(cfg: &ModelConfig, device: &Device, dtype: DType, seed: u64) -> Self {
        device.seed(seed);
        Self::from_weights(cfg, Weights::new(), device, dtype)
            .expect("no weights to read: all drawn")
    }
}

/// Fills a [`QaModel::skeleton`]'s parameters, visiting Burn's module paths: each takes
/// the checkpoint tensor of its canonical name (`params::canonical`), moved out of the
/// map so that its memory goes as soon as the network has it. A parameter the weights
/// lack (only the span head: `canonicalize` checks the rest) is drawn as
/// `BertPreTrainedModel._init_weights` draws it: N(0, 0.02) for matrices, ones for
/// LayerNorm scales, zeros for biases.
struct Fill<'a> {
    weights: Weights,
    device: &'a Device,
    dtype: DType,
    /// Set by [`QaModel::from_weights_16bit`]: the matrices `is_int8` names keep a
    /// 16-bit checkpoint type instead of `dtype`.
    keep_16bit: bool,
    /// Set for `--precision int8`: the encoder's matmul weights and the word embeddings
    /// are quantised here straight from the checkpoint's rows (by canonical name), and
    /// the network gets an empty f32 matrix in their place.
    #[cfg(not(target_arch = "wasm32"))]
    int8: Option<std::collections::BTreeMap<String, crate::fused::int8::QuantizedMatrix>>,
    /// The first tensor that could not be read from its file (the network gets zeros
    /// in its place, and the build fails with this).
    failed: Option<LoadError>,
}

impl<'a> Fill<'a> {
    fn new(weights: Weights, device: &'a Device, dtype: DType) -> Self {
        Fill {
            weights,
            device,
            dtype,
            keep_16bit: false,
            #[cfg(not(target_arch = "wasm32"))]
            int8: None,
            failed: None,
        }
    }

    /// `raw` with its bytes in memory, read from its file if they are not; `None`
    /// (the failure kept) if that read fails.
    fn load(&mut self, name: &str, raw: RawTensor) -> Option<RawTensor> {
        raw.load().map_err(|message| self.fail(name, message)).ok()
    }

    fn fail(&mut self, name: &str, message: String) {
        self.failed.get_or_insert(LoadError::Unreadable {
            tensor: name.into(),
            message,
        });
    }

    /// The checkpoint tensor `raw` (PyTorch layout) in Burn's layout.
    fn tensor<const D: usize>(
        &mut self,
        name: String,
        raw: RawTensor,
        transposed: bool,
    ) -> Tensor<D> {
        let mut shape: [usize; D] = raw.shape.clone().try_into().unwrap_or_else(|_| {
            panic!("canonicalize checks `{name}` against the network's {D}-d parameter")
        });
        // What stands in for a tensor that could not be read (the build then fails).
        let mut unread = shape;
        if transposed && D == 2 {
            unread.swap(0, 1);
        }
        // Burn's layout with no rows, for a matrix kept in int8: `[0, out]` for a
        // Linear, `[0, hidden]` for an embedding.
        #[cfg(not(target_arch = "wasm32"))]
        if self.int8.is_some() && crate::checkpoint::int8::is_int8(&name, &shape) {
            let Some(raw) = self.load(&name, raw) else {
                return Tensor::zeros(unread, self.device);
            };
            let int8 = self.int8.as_mut().expect("checked");
            let (rows, cols) = (shape[0], shape[1]);
            let q = crate::fused::int8::QuantizedMatrix::from_rows(cols, rows, |r| {
                raw.f32_range(r * cols..(r + 1) * cols).unwrap_or_default()
            });
            int8.insert(name, q);
            let mut empty = [0; D];
            empty[D - 1] = if transposed { rows } else { cols };
            return Tensor::zeros(empty, self.device);
        }
        let stored_16bit = match raw.dtype {
            crate::checkpoint::DType::F16 => Some(DType::F16),
            crate::checkpoint::DType::BF16 => Some(DType::BF16),
            _ => None,
        };
        // Kept in 16 bits under f32 compute, or a 16-bit network (f16 on a GPU) from a
        // file of the same type: moved as they are, never widened to f32 and narrowed
        // again (the same values, in a third of the memory on the way).
        let kept = self.keep_16bit && crate::checkpoint::int8::is_int8(&name, &shape);
        if (kept || stored_16bit == Some(self.dtype))
            && let Some(dtype) = stored_16bit
        {
            let Some(raw) = self.load(&name, raw) else {
                return Tensor::zeros(unread, self.device);
            };
            return self.tensor_16bit(raw, shape, transposed, dtype);
        }
        let mut values = match raw.read_f32() {
            Ok(v) => v.unwrap_or_default(),
            Err(message) => {
                self.fail(&name, message);
                return Tensor::zeros(unread, self.device);
            }
        };
        if let (true, [rows, cols]) = (transposed, shape.as_slice()) {
            values = crate::params::transpose(&values, *rows, *cols);
            shape.swap(0, 1);
        }
        self.upload(TensorData::new(values, shape), self.dtype)
    }

    /// `data` as a tensor of `dtype` on the device. In a browser, a big tensor goes to the
    /// GPU in pieces of 4 MB of rows ([`upload_in_pieces`]): Chromium kept a
    /// shared-memory region the size of each big `writeBuffer` mapped in the tab (365 MB
    /// of them for a 345M model; 108 MB in 4 MB pieces).
    fn upload<const D: usize>(&self, data: TensorData, dtype: DType) -> Tensor<D> {
        let in_browser_gpu = cfg!(target_arch = "wasm32") && *self.device != Device::flex();
        let piece = if in_browser_gpu { 4 << 20 } else { usize::MAX };
        upload_in_pieces(data, self.device, dtype, piece)
    }

    /// A 16-bit checkpoint tensor as a tensor of the same type, in Burn's layout: its
    /// bytes are moved (a Linear's transposed), never widened, and held once (with a
    /// Linear's second copy while it is transposed): the word embeddings are the first
    /// tensor filled, while all the rest of the checkpoint is still held. They go to
    /// Burn as they are: `TensorData::from_bytes_vec` would copy them once more, into
    /// memory aligned for any type, and on wasm, whose memory never shrinks, that copy
    /// of the 62.5 MB word embeddings stayed in the tab. (Allocators align every block
    /// for at least 8 bytes, more than 16-bit values need.)
    fn tensor_16bit<const D: usize>(
        &self,
        raw: RawTensor,
        mut shape: [usize; D],
        transposed: bool,
        dtype: DType,
    ) -> Tensor<D> {
        let bytes = raw.into_bytes();
        let bytes = match (transposed, shape.as_slice()) {
            (true, &[rows, cols]) => {
                shape.swap(0, 1);
                // Each value is 2 bytes: transposed as such, never widened.
                Bytes::from_elems(crate::params::transpose(
                    bytes.as_chunks::<2>().0,
                    rows,
                    cols,
                ))
            }
            _ => Bytes::from_elems(bytes),
        };
        self.upload(TensorData::from_bytes(bytes, shape, dtype), dtype)
    }

    fn random<const D: usize>(&self, name: &str, shape: [usize; D]) -> Tensor<D> {
        let t = if D >= 2 {
            Tensor::random(shape, Distribution::Normal(0.0, 0.02), self.device)
        } else if name.ends_with(".weight") {
            // The only 1-d weights are LayerNorm scales.
            Tensor::ones(shape, self.device)
        } else {
            Tensor::zeros(shape, self.device)
        };
        Tensor::<D>::cast(t, self.dtype)
    }
}

/// `data` as a tensor of `dtype` on `device`, sent in pieces of rows of at most
/// `piece` bytes (one row at least), each put in place on the device; whole when it
/// fits in one piece or has fewer than two rows.
pub fn upload_in_pieces<const D: usize>(
    data: TensorData,
    device: &Device,
    dtype: DType,
    piece: usize,
) -> Tensor<D> {
    let bytes = data.as_bytes().len();
    let rows = data.shape().first().copied().unwrap_or(0);
    if bytes <= piece || rows < 2 {
        return Tensor::from_data(data, (device, dtype));
    }
    let row_bytes = bytes / rows;
    let per_piece = (piece / row_bytes).max(1);
    let shape: [usize; D] = data.shape().to_vec().try_into().expect("D dimensions");
    let mut tensor = Tensor::<D>::empty(shape, (device, dtype));
    for start in (0..rows).step_by(per_piece) {
        let end = rows.min(start + per_piece);
        let mut piece_shape = shape;
        piece_shape[0] = end - start;
        let part = TensorData::from_bytes_vec(
            data.as_bytes()[start * row_bytes..end * row_bytes].to_vec(),
            piece_shape,
            data.dtype(),
        );
        let part = Tensor::<D>::from_data(part, (device, dtype));
        tensor = tensor.slice_assign(burn::tensor::s![start..end], part);
    }
    tensor
}

impl MapByName for Fill<'_> {
    fn param<const D: usize>(
        &mut self,
        name: String,
        transposed: bool,
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let tensor = match self.weights.remove(&name) {
            Some(raw) => self.tensor(name, raw, transposed),
            None => self.random(&name, param.lazy_shape().dims()),
        };
        Param::from_tensor(tensor)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl QaModel {
    /// Moves the encoder's matmul weights (per output channel) and the word embeddings
    /// (per token) to symmetric int8 for CPU inference: about a quarter of their f32
    /// bytes. Position and type embeddings, LayerNorms, biases and the span head stay
    /// f32. Returns the bytes of the int8 weights.
    pub fn quantize_int8(&mut self) -> usize {
        use crate::fused::int8::QuantizedMatrix;
        let word = &mut self.embeddings.word.weight;
        let [rows, hidden] = word.dims();
        let device = word.device();
        let values = word.val().into_data().convert::<f32>();
        let values = values.as_slice::<f32>().expect("converted to f32");
        let q = QuantizedMatrix::from_rows(hidden, rows, |r| {
            values[r * hidden..(r + 1) * hidden].to_vec()
        });
        *word = Param::from_tensor(Tensor::zeros([0, hidden], &device));
        let bytes = q.bytes();
        self.embeddings.word_int8 = Some(std::sync::Arc::new(q));
        bytes
            + self
                .layers
                .iter_mut()
                .map(EncoderLayer::quantize_int8)
                .sum::<usize>()
    }

    /// [`QaModel::from_weights`] with the encoder's matmuls and the word embeddings in
    /// int8 (the rest f32), quantised from the checkpoint's rows one row at a time
    /// while the rest of it is still held: no f32 copy of them is ever made, so loading
    /// peaks near the checkpoint's size rather than at the f32 network's.
    pub fn from_weights_int8(
        cfg: &ModelConfig,
        weights: Weights,
        device: &Device,
    ) -> Result<Self, LoadError> {
        use crate::fused::int8::Int8Layer;
        let mut fill = ByName::new(Fill::new(weights, device, DType::F32));
        fill.inner.int8 = Some(Default::default());
        let mut model = Self::skeleton(cfg, device).map(&mut fill);
        if let Some(e) = fill.inner.failed {
            return Err(e);
        }
        let mut quantized = fill.inner.int8.unwrap_or_default();
        let mut take = |name: &str| {
            quantized
                .remove(name)
                .expect("Fill quantises every encoder matmul and the word embeddings")
        };
        for (i, layer) in model.layers.iter_mut().enumerate() {
            let mut matmul = |m: &str| take(&format!("layers.{i}.{m}.weight"));
            let int8 = Int8Layer {
                qkv: matmul("qkv"),
                attn_out: matmul("attn_out"),
                ffn_in: matmul("ffn_in"),
                ffn_out: matmul("ffn_out"),
            };
            layer.int8 = Some(std::sync::Arc::new(int8));
        }
        model.embeddings.word_int8 = Some(std::sync::Arc::new(take("embeddings.word")));
        Ok(model)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl EncoderLayer {
    /// This layer's four matmuls in int8 ([`QaModel::quantize_int8`]).
    fn quantize_int8(&mut self) -> usize {
        use crate::fused::int8::{Int8Layer, QuantizedMatrix};
        let take = |l: &mut Linear| {
            let [inputs, outputs] = l.weight.dims();
            let device = l.weight.device();
            let values = l.weight.val().into_data().convert::<f32>();
            let q =
                QuantizedMatrix::from_linear(values.as_slice::<f32>().unwrap(), inputs, outputs);
            // The f32 matrix goes; nothing reads it while `int8` is set.
            l.weight = Param::from_tensor(Tensor::zeros([0, outputs], &device));
            q
        };
        let q = Int8Layer {
            qkv: take(&mut self.qkv),
            attn_out: take(&mut self.attn_out),
            ffn_in: take(&mut self.ffn_in),
            ffn_out: take(&mut self.ffn_out),
        };
        let bytes = q.bytes();
        self.int8 = Some(std::sync::Arc::new(q));
        bytes
    }
}
