//! Fused CPU kernels for inference on Burn's flex backend, reached through Burn's
//! backend extension point (`Tensor::try_into_primitive::<Flex>`), not a fork of Burn.
//!
//! `megaqa bench --profile` on the 345M shape (one 384-token window, 2026-11-28) showed
//! two steps far slower than their arithmetic: flex's GELU calls libm's scalar `erff`
//! on one thread (139 ms a window), and its attention runs a scalar `exp` over every
//! score and copies Q, K and V out of the projection first (368 ms for 14.5 GFLOP).
//! Here:
//! - [`linear`]: `x W + b` as one gemm call into rows that already hold the bias;
//! - [`bias_gelu`]: the MLP's bias add and exact-erf GELU in one pass, 8 lanes wide
//!   (AVX2) and on every core;
//! - [`attention`]: scores, key mask and softmax per head, reading Q, K and V in place
//!   from the `[batch, seq, 3*hidden]` projection and writing the context straight into
//!   `[batch, seq, hidden]` rows, so no head is copied or transposed.
//!
//! - [`int8`]: the int8 matmul behind `--precision int8`.
//!
//! Each returns `Err` with its input where it does not apply (another backend, autodiff,
//! a dtype other than f32, or `MEGAQA_FUSED=off`); the network then takes Burn's own
//! ops, so GPUs, the browser and training are unchanged.

// `Err` hands the caller's tensor back (a few hundred bytes of handle) so that Burn's
// ops can take it: boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use burn::backend::Flex;
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use burn_flex::FlexTensor;
use gemm::{Parallelism, gemm};
use rayon::prelude::*;

pub mod int8;
mod math;

pub use math::{erf, exp};

/// Whether the kernels run for a tensor: f32 inference on the flex device, unless
/// `MEGAQA_FUSED=off` asks for Burn's own ops (to compare, or to rule the kernels out).
fn applies<const D: usize>(t: &Tensor<D>) -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let on = *ON.get_or_init(|| std::env::var("MEGAQA_FUSED").map_or(true, |v| v != "off"));
    on && t.dtype() == DType::F32 && !t.is_autodiff() && t.device() == Device::flex()
}

fn into_flex<const D: usize>(t: Tensor<D>) -> FlexTensor {
    t.try_into_primitive::<Flex>()
        .expect("applies() checked the device")
}

fn from_flex<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    // The vector becomes the tensor's storage as it is.
    Tensor::from_data(TensorData::new(values, shape), &Device::flex())
}

/// The values of a tensor in row-major order, borrowed when it is already laid out so
/// (a fresh matmul output always is).
fn row_major(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) if t.is_contiguous() => std::borrow::Cow::Borrowed(s),
        _ => std::borrow::Cow::Owned(t.to_contiguous().as_slice::<f32>().unwrap().to_vec()),
    }
}

/// A bias's values, checked to fit rows of `width`.
fn bias_values(bias: Tensor<1>, width: usize) -> Vec<f32> {
    let bias = into_flex(bias);
    let values = row_major(&bias).into_owned();
    assert_eq!(
        values.len(),
        width,
        "bias of {} for rows of {width}",
        values.len()
    );
    values
}

/// `gelu(h + bias)` with exact erf, `bias` broadcast over the last dimension. `Err(h)`
/// where the fused kernel does not apply.
pub fn bias_gelu<const D: usize>(h: Tensor<D>, bias: Tensor<1>) -> Result<Tensor<D>, Tensor<D>> {
    if !applies(&h) || !applies(&bias) {
        return Err(h);
    }
    let dims = h.dims();
    let width = dims[D - 1];
    let bias = bias_values(bias, width);
    let mut h = into_flex(h);
    let rows_per_job = (16384 / width).max(1);
    let run = |values: &mut [f32]| {
        values
            .par_chunks_mut(rows_per_job * width)
            .for_each(|chunk| math::bias_gelu_rows(chunk, &bias));
    };
    // A matmul's output is ours alone: rewrite it in place.
    if h.is_unique() && h.is_contiguous() && h.layout().start_offset() == 0 {
        let n = h.layout().num_elements();
        run(&mut h.storage_mut::<f32>()[..n]);
        return Ok(Tensor::from_primitive::<Flex>(h));
    }
    let mut values = row_major(&h).into_owned();
    run(&mut values);
    Ok(from_flex(values, dims))
}

/// `x W + bias` for `x` of `[batch, seq, inputs]` and Burn's Linear weight `W`
/// (`[inputs, outputs]`), as one gemm call that adds its product into an output already
/// holding the bias rows. Burn's `linear` gives the same values but writes the product
/// to a fresh tensor and then adds the bias in a second pass over another fresh one:
/// on the 345M shape that made the QKV projection run at 146 GFLOP/s where gemm alone
/// does ~245 (2026-11-29). `Err(x)` where the kernel does not apply.
pub fn linear(
    x: Tensor<3>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Result<Tensor<3>, Tensor<3>> {
    if !applies(&x) || !applies(&weight) || bias.as_ref().is_some_and(|b| !applies(b)) {
        return Err(x);
    }
    let [batch, seq, inputs] = x.dims();
    let [w_inputs, outputs] = weight.dims();
    assert_eq!(
        w_inputs, inputs,
        "linear of {w_inputs} inputs given {inputs}"
    );
    let rows = batch * seq;
    let x = into_flex(x);
    let x = row_major(&x);
    let w = into_flex(weight);
    let (w_rs, w_cs) = (w.layout().strides()[0], w.layout().strides()[1]);
    let w = &w.storage::<f32>()[w.layout().start_offset()..];
    let mut out = vec![0.0f32; rows * outputs];
    let read_dst = match bias {
        Some(bias) => {
            let bias = bias_values(bias, outputs);
            out.par_chunks_mut(outputs)
                .for_each(|row| row.copy_from_slice(&bias));
            true
        }
        None => false,
    };
    // SAFETY: `out` is rows x outputs row-major, `x` rows x inputs row-major, and `w`
    // holds `inputs x outputs` values at the strides its layout gives.
    unsafe {
        gemm(
            rows,
            outputs,
            inputs,
            out.as_mut_ptr(),
            1,
            outputs as isize,
            read_dst,
            x.as_ptr(),
            1,
            inputs as isize,
            w.as_ptr(),
            w_cs,
            w_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::Rayon(0),
        );
    }
    Ok(from_flex(out, [batch, seq, outputs]))
}

/// A raw pointer that rayon jobs may share because each writes its own elements.
#[derive(Clone, Copy)]
struct Shared(*mut f32);
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// A method, not `.0`: a closure that named the field would capture the bare
    /// pointer, which is not `Send`.
    fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// Multi-head self-attention from the fused projection `qkv` (`[batch, seq, 3*hidden]`,
/// Q then K then V, heads in order within each) with `mask` (`[batch, seq]`, 0 =
/// padding, never attended to). Returns the heads' contexts side by side,
/// `[batch, seq, hidden]`: what `softmax(QK^T/sqrt(d) + mask) V` gives after the heads
/// are put back together. `Err` gives `qkv` back where the kernel does not apply.
pub fn attention(
    qkv: Tensor<3>,
    mask: &Tensor<2, Int>,
    heads: usize,
) -> Result<Tensor<3>, Tensor<3>> {
    if !applies(&qkv) {
        return Err(qkv);
    }
    let [batch, seq, width] = qkv.dims();
    let hidden = width / 3;
    let head_dim = hidden / heads;
    assert_eq!(
        head_dim * heads * 3,
        width,
        "qkv width {width} for {heads} heads"
    );
    // 0 where a key may be attended to, -inf where it is padding.
    let key_bias: Vec<f32> = mask
        .to_data()
        .convert::<i64>()
        .iter::<i64>()
        .map(|m| if m == 0 { f32::NEG_INFINITY } else { 0.0 })
        .collect();
    let qkv = into_flex(qkv);
    let qkv = row_major(&qkv);
    let mut out = vec![0.0f32; batch * seq * hidden];
    let dst = Shared(out.as_mut_ptr());
    let scale = 1.0 / (head_dim as f32).sqrt();
    (0..batch * heads).into_par_iter().for_each_init(
        || vec![0.0f32; seq * seq],
        |scores, job| {
            let (b, h) = (job / heads, job % heads);
            let rows = &qkv[b * seq * width..(b + 1) * seq * width];
            let q = rows[h * head_dim..].as_ptr();
            let k = rows[hidden + h * head_dim..].as_ptr();
            let v = rows[2 * hidden + h * head_dim..].as_ptr();
            let bias = &key_bias[b * seq..(b + 1) * seq];
            let width = width as isize;
            // SAFETY: every pointer is within its buffer for the strides given (rows of
            // `width`, `head_dim` columns from the head's offset), and each job writes
            // only its own head's columns of its own batch rows of `out`.
            unsafe {
                // scores[i][j] = scale * q_i . k_j
                gemm(
                    seq,
                    seq,
                    head_dim,
                    scores.as_mut_ptr(),
                    1,
                    seq as isize,
                    false,
                    q,
                    1,
                    width,
                    k,
                    width,
                    1,
                    0.0,
                    scale,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
                for row in scores.chunks_exact_mut(seq) {
                    math::masked_softmax(row, bias);
                }
                let o = dst.at(b * seq * hidden + h * head_dim);
                // context_i = sum_j p_ij v_j
                gemm(
                    seq,
                    head_dim,
                    seq,
                    o,
                    1,
                    hidden as isize,
                    false,
                    scores.as_ptr(),
                    1,
                    seq as isize,
                    v,
                    1,
                    width,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
        },
    );
    Ok(from_flex(out, [batch, seq, hidden]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::activation::{gelu, softmax};
    use burn::tensor::{Bool, Distribution};

    fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        let (a, b) = (a.into_data(), b.into_data());
        a.iter::<f32>()
            .zip(b.iter::<f32>())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn bias_gelu_matches_burns_gelu() {
        let device = Device::flex();
        let h = Tensor::<3>::random([2, 5, 37], Distribution::Normal(0.0, 3.0), &device);
        let bias = Tensor::<1>::random([37], Distribution::Normal(0.0, 1.0), &device);
        let expected = gelu(h.clone() + bias.clone().unsqueeze());
        // A shared tensor (h is still held) takes the copying path, a fresh one the
        // in-place path: both must agree with Burn.
        let shared = bias_gelu(h.clone(), bias.clone()).ok().unwrap();
        assert!(max_diff(shared, expected.clone()) < 2e-6);
        let fresh = bias_gelu(h.clone() * 1.0, bias).ok().unwrap();
        assert!(max_diff(fresh, expected) < 2e-6);
    }

    #[test]
    fn attention_matches_the_spelled_out_reference() {
        let device = Device::flex();
        let (batch, seq, heads, head_dim) = (2, 19, 3, 8);
        let hidden = heads * head_dim;
        let qkv = Tensor::<3>::random(
            [batch, seq, 3 * hidden],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        // The second window is padded after 11 tokens.
        let mask = Tensor::<2, Int>::from_data(
            TensorData::new(
                (0..batch * seq)
                    .map(|i| i64::from(i < seq || i % seq < 11))
                    .collect::<Vec<_>>(),
                [batch, seq],
            ),
            &device,
        );
        let split = |t: Tensor<3>| t.reshape([batch, seq, heads, head_dim]).swap_dims(1, 2);
        let mut parts = qkv.clone().chunk(3, 2).into_iter().map(split);
        let (q, k, v) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let masked: Tensor<4, Bool> = mask
            .clone()
            .equal_elem(0)
            .reshape([batch, 1, 1, seq])
            .expand([batch, heads, seq, seq]);
        let scores = q.matmul(k.swap_dims(2, 3)) / (head_dim as f64).sqrt();
        let expected = softmax(scores.mask_fill(masked, f32::NEG_INFINITY), 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([batch, seq, hidden]);
        let got = attention(qkv, &mask, heads).ok().unwrap();
        assert!(max_diff(got, expected) < 1e-5);
    }

    #[test]
    fn linear_matches_burns_linear() {
        let device = Device::flex();
        let x = Tensor::<3>::random([2, 7, 33], Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<2>::random([33, 20], Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<1>::random([20], Distribution::Normal(0.0, 1.0), &device);
        let with_bias = burn::tensor::module::linear(x.clone(), w.clone(), Some(b.clone()));
        let got = linear(x.clone(), w.clone(), Some(b)).ok().unwrap();
        assert!(max_diff(got, with_bias) < 1e-5);
        let without = burn::tensor::module::linear(x.clone(), w.clone(), None);
        assert!(
            max_diff(
                linear(x.clone(), w.clone(), None).ok().unwrap(),
                without.clone()
            ) < 1e-5
        );
        // A weight that is a transposed view is read through its strides.
        let wt = w.clone().transpose().into_data();
        let view = Tensor::<2>::from_data(wt, &device).transpose();
        assert!(max_diff(linear(x, view, None).ok().unwrap(), without) < 1e-5);
    }

    #[test]
    fn other_dtypes_are_left_to_burn() {
        let device = Device::flex();
        let h = Tensor::<2>::ones([2, 4], (&device, DType::F16));
        let bias = Tensor::<1>::zeros([4], (&device, DType::F16));
        assert!(bias_gelu(h, bias).is_err());
    }
}
