//! One forward and backward pass: the span loss of a batch and the gradients of
//! every parameter by canonical name.
//!
//! The master weights live outside autodiff. Each pass builds a working copy on
//! the autodiff device in the compute dtype (f32, or f16 for mixed precision), so
//! no graph outlives a pass and the master weights stay f32.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::activation::log_softmax;
use burn::tensor::{DType, Device, Gradients, Int, Tensor, TensorData};
use megaqa_model::QaModel;
use megaqa_model::params::{ByName, VisitByName};

use super::LabelledBatch;

/// Mean cross-entropy of the start and of the end positions, averaged: the loss of
/// `BertForQuestionAnswering` / `MegatronBertForQuestionAnswering`.
pub fn span_loss(start: Tensor<2>, end: Tensor<2>, targets: (&[i64], &[i64])) -> Tensor<1> {
    let device = start.device();
    let [batch, _] = start.dims();
    let ce = |logits: Tensor<2>, t: &[i64]| {
        let idx = Tensor::<2, Int>::from_data(TensorData::new(t.to_vec(), [batch, 1]), &device);
        // In f32 whatever the compute dtype: log-sum-exp in f16 loses the loss's digits.
        let logp = log_softmax(logits.cast(DType::F32), 1);
        logp.gather(1, idx).mean().neg()
    };
    (ce(start, targets.0) + ce(end, targets.1)) * 0.5
}

/// Copies the master weights onto the autodiff device in `dtype`, tracking gradients.
struct Working {
    dtype: DType,
}

impl ModuleMapper for Working {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let t = param.val().cast(self.dtype).autodiff().require_grad();
        Param::from_tensor(t)
    }
}

/// Reads every parameter's gradient, f32 and flattened, into a map by name.
struct Collect<'a> {
    grads: &'a Gradients,
    scale: f64,
    out: &'a mut BTreeMap<String, Tensor<1>>,
}

impl VisitByName for Collect<'_> {
    fn param<const D: usize>(&mut self, name: String, _: bool, param: &Param<Tensor<D>>) {
        let Some(g) = param.val().grad(self.grads) else {
            return;
        };
        let dims = g.dims();
        let n = g.shape().num_elements();
        let mut g = g.cast(DType::F32).reshape([n]) * self.scale;
        if name == "embeddings.word" {
            // HF builds the word embedding with `padding_idx=pad_token_id`: the [PAD]
            // row (id 0, what batches are padded with) never receives a gradient.
            let h = dims[D - 1];
            g = g.slice_fill(0..h, 0.0);
        }
        let sum = match self.out.remove(&name) {
            Some(prev) => prev + g,
            None => g,
        };
        self.out.insert(name, sum);
    }
}

/// How a pass runs: where, in what dtype, with what dropout and loss scaling.
pub struct Pass<'a> {
    /// An autodiff device.
    pub device: &'a Device,
    pub dtype: DType,
    pub dropout: f64,
    /// What the loss is multiplied by before backward (1 in f32).
    pub loss_scale: f64,
    /// What each gradient is multiplied by as it is added (1 / micro-batches).
    pub grad_factor: f64,
}

/// Runs `batch` through a working copy of `master` on the pass's device,
/// backpropagates `loss * loss_scale`, and adds `grad * grad_factor` of every
/// parameter into `grads` (f32, on the inner device). Returns the batch's loss
/// (unscaled), read back to the host.
pub fn forward_backward(
    master: &QaModel,
    pass: &Pass,
    batch: &LabelledBatch,
    grads: &mut BTreeMap<String, Tensor<1>>,
) -> Result<f64, String> {
    let Pass {
        device,
        dtype,
        dropout,
        loss_scale,
        grad_factor,
    } = *pass;
    let targets = (&batch.starts[..], &batch.ends[..]);
    let batch = &batch.batch;
    batch.validate(master)?;
    let mut working = master.clone().map(&mut Working { dtype });
    working.dropout = dropout;
    let [ids, types, mask] = batch.tensors(device);
    let out = working.forward(ids, types, mask);
    let loss = span_loss(out.start, out.end, targets);
    let loss_value = loss
        .clone()
        .into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .map_err(|e| format!("reading the loss: {e:?}"))?[0];
    let backward = if loss_scale == 1.0 {
        loss.backward()
    } else {
        (loss * loss_scale).backward()
    };
    working.visit(&mut ByName::new(Collect {
        grads: &backward,
        scale: grad_factor / loss_scale,
        out: grads,
    }));
    Ok(loss_value)
}
