//! AdamW as `torch.optim.AdamW` computes it, with HF's parameter groups (no weight
//! decay on biases and LayerNorm scales), global-norm gradient clipping as
//! `torch.nn.utils.clip_grad_norm_`, and the linear warmup/decay schedule of
//! `get_linear_schedule_with_warmup`.
//!
//! Why not burn-optim's AdamW: it clips each tensor by its own norm (PyTorch clips
//! by the norm of all gradients together), decays every parameter, and keys its
//! state by run-time parameter ids; here the state is keyed by canonical names so
//! that it is saved, resumed and compared with PyTorch by name.

use std::collections::BTreeMap;

use burn::module::Param;
use burn::tensor::Tensor;
use megaqa_model::params::MapByName;

/// Hyper-parameters of the update.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamWConfig {
    /// `torch.optim.AdamW`'s defaults with HF's weight decay.
    pub const DEFAULT: Self = Self {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
    };
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// First and second moments of one parameter, flattened, f32.
#[derive(Clone)]
pub struct Moments {
    pub m: Tensor<1>,
    pub v: Tensor<1>,
}

/// The optimizer state: moments by canonical parameter name, and the number of
/// updates taken (PyTorch's per-parameter `step`, the same for all here).
#[derive(Clone, Default)]
pub struct AdamWState {
    pub moments: BTreeMap<String, Moments>,
    pub updates: u64,
}

/// Learning rate for update number `step` (0-based): linear warmup from 0 over
/// `warmup` updates, then linear decay to 0 at `total`.
pub fn linear_schedule(base: f64, step: u64, warmup: u64, total: u64) -> f64 {
    if step < warmup {
        base * step as f64 / warmup.max(1) as f64
    } else {
        base * (total.saturating_sub(step) as f64 / total.saturating_sub(warmup).max(1) as f64)
    }
}

/// Global L2 norm of all gradients.
pub fn global_norm(grads: &BTreeMap<String, Tensor<1>>) -> Tensor<1> {
    let mut total: Option<Tensor<1>> = None;
    for g in grads.values() {
        let s = sum_in_rows(g.clone().square());
        total = Some(match total {
            None => s,
            Some(t) => t + s,
        });
    }
    total.map(|t| t.sqrt()).expect("a model has parameters")
}

/// The sum of a 1-D tensor, taken as rows of at most 1024 and then their sums, until
/// few enough are left for one reduction.
///
/// Why not `sum()`: with Burn 0.22.1's autotune on, wgpu (Mesa lavapipe, measured) sums
/// at most 262,144 elements of a longer axis, in `sum()` and in `sum_dim` alike (a
/// 978,816-element tensor of 139,831 ones summed to 37,448): the word embeddings'
/// gradient norm came out 0.3% low. Reductions over short rows are right.
fn sum_in_rows(t: Tensor<1>) -> Tensor<1> {
    const ROW: usize = 1024;
    let mut t = t;
    while t.dims()[0] > ROW * 16 {
        let n = t.dims()[0];
        let rows = n.div_ceil(ROW);
        if rows * ROW != n {
            let pad = Tensor::<1>::zeros([rows * ROW - n], &t.device()).cast(t.dtype());
            t = Tensor::cat(vec![t, pad], 0);
        }
        t = t.reshape([rows, ROW]).sum_dim(1).reshape([rows]);
    }
    t.sum()
}

/// The AdamW update of every parameter of a module, found by canonical name.
pub struct AdamWStep<'a> {
    pub config: AdamWConfig,
    pub lr: f64,
    /// Gradients by canonical name, flattened f32, already clipped and unscaled.
    pub grads: &'a BTreeMap<String, Tensor<1>>,
    pub state: &'a mut AdamWState,
    pub missing: Vec<String>,
}

impl MapByName for AdamWStep<'_> {
    fn param<const D: usize>(
        &mut self,
        name: String,
        _: bool,
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let Some(g) = self.grads.get(&name) else {
            self.missing.push(name);
            return param;
        };
        let c = self.config;
        let t = (self.state.updates + 1) as i32;
        let (id, value, mapper) = param.consume();
        let dims = value.dims();
        let n = g.dims()[0];
        let p = value.reshape([n]);
        let g = g.clone();
        let (m, v) = match self.state.moments.remove(&name) {
            Some(Moments { m, v }) => (
                m * c.beta1 + g.clone() * (1.0 - c.beta1),
                v * c.beta2 + g.square() * (1.0 - c.beta2),
            ),
            None => (g.clone() * (1.0 - c.beta1), g.square() * (1.0 - c.beta2)),
        };
        // torch: p *= 1 - lr*wd; p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)
        // Matrices decay; biases and LayerNorm scales (the 1-d parameters) do not, as
        // HF `Trainer` and NeMo group them.
        let decay = if D >= 2 { c.weight_decay } else { 0.0 };
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        let denom = v.clone().sqrt() * (1.0 / bc2.sqrt()) + c.eps;
        let p = p * (1.0 - self.lr * decay) - m.clone() / denom * (self.lr / bc1);
        self.state.moments.insert(name, Moments { m, v });
        Param::from_mapped_value(id, p.reshape(dims), mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        assert_eq!(linear_schedule(1.0, 0, 10, 100), 0.0);
        assert!((linear_schedule(1.0, 5, 10, 100) - 0.5).abs() < 1e-12);
        assert!((linear_schedule(1.0, 10, 10, 100) - 1.0).abs() < 1e-12);
        assert!((linear_schedule(1.0, 55, 10, 100) - 0.5).abs() < 1e-12);
        assert_eq!(linear_schedule(1.0, 100, 10, 100), 0.0);
        // No warmup: the first update uses the full rate.
        assert_eq!(linear_schedule(2.0, 0, 0, 4), 2.0);
    }
}
