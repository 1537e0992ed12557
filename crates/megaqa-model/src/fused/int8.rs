//! Matrix multiply for Linear layers with int8 weights: weights quantised per output
//! channel (symmetric, [-127, 127]), activations per row (token) at run time to 12 bits
//! (symmetric, [-2047, 2047]) held in i16, i32 accumulation, and the two scales and the
//! bias applied once per output.
//!
//! Why 12-bit activations: with 8-bit ones the shipped model gave f32's answer for 617
//! of the 626 two-article questions, short of the 99% (620) the int8 issue asks; 12 bits
//! gave 622, as many as exact f32 activations did (621) (2026-11-29), so the weights'
//! rounding is what is left. The weights stay int8 (a quarter of f32's bytes), and on
//! the CPUs with VNNI the 16-bit products cost no more instructions than 8-bit ones
//! needed with AVX2.
//!
//! The inner products run on the best of three kernels the CPU has, all giving the same
//! integers: AVX-512 VNNI (`vpdpwssd`: 32 products of i16 pairs summed into i32 per
//! instruction), AVX2 (`vpmaddwd`, 16 at a time), or a portable loop. Weights are
//! widened from int8 as they are loaded. A product is at most 2047 x 127 and K is cut
//! into pieces of [`CHUNK`], so no i32 sum can overflow; the pieces add up in i64.

use burn::tensor::Tensor;
use rayon::prelude::*;

use crate::checkpoint::int8::quantize_row;

/// Rows are padded with zeros to a multiple of this, the AVX-512 step.
const STEP: usize = 32;

/// The largest activation magnitude: 12 bits.
const ACT_MAX: f32 = 2047.0;

/// Inputs summed in i32 before moving to i64: 8192 x 2047 x 127 < 2^31.
const CHUNK: usize = 8192;

/// A weight matrix `[out, in]` in int8, one scale per output.
#[derive(Clone, Debug)]
pub struct QuantizedMatrix {
    pub outputs: usize,
    pub inputs: usize,
    /// `outputs` rows of `padded(inputs)` values.
    values: Vec<i8>,
    scales: Vec<f32>,
}

fn padded(n: usize) -> usize {
    n.div_ceil(STEP) * STEP
}

impl QuantizedMatrix {
    /// From Burn's Linear layout: `weight` is `[inputs, outputs]` row-major.
    pub fn from_linear(weight: &[f32], inputs: usize, outputs: usize) -> Self {
        assert_eq!(weight.len(), inputs * outputs);
        Self::from_rows(inputs, outputs, |o| {
            (0..inputs).map(|i| weight[i * outputs + o]).collect()
        })
    }

    /// From each output's `inputs` weights, `row(o)` (PyTorch's `[out, in]` layout, as
    /// checkpoints store it): one row in f32 at a time.
    pub fn from_rows(inputs: usize, outputs: usize, row: impl Fn(usize) -> Vec<f32>) -> Self {
        let k = padded(inputs);
        let mut values = vec![0i8; outputs * k];
        let scales = values
            .chunks_exact_mut(k)
            .enumerate()
            .map(|(o, out)| quantize_row(&row(o), &mut out[..inputs]))
            .collect();
        Self {
            outputs,
            inputs,
            values,
            scales,
        }
    }

    /// Rows `ids` back in f32, one after another (an embedding lookup).
    pub fn rows(&self, ids: &[i64]) -> Vec<f32> {
        let k = padded(self.inputs);
        let mut out = Vec::with_capacity(ids.len() * self.inputs);
        for &id in ids {
            let r = id as usize;
            let s = self.scales[r];
            out.extend(
                self.values[r * k..r * k + self.inputs]
                    .iter()
                    .map(|&q| q as f32 * s),
            );
        }
        out
    }

    /// Bytes held: the int8 values and the f32 scales.
    pub fn bytes(&self) -> usize {
        self.values.len() + 4 * self.scales.len()
    }

    /// `x W + bias` for `x` of `rows x inputs` (row-major): the activations are
    /// quantised per row to 12 bits, multiplied by the int8 weights and scaled back.
    pub fn matmul(&self, x: &[f32], rows: usize, bias: Option<&[f32]>) -> Vec<f32> {
        let (k, n) = (padded(self.inputs), self.outputs);
        assert_eq!(x.len(), rows * self.inputs);
        let mut xq = vec![0i16; rows * k];
        let xs: Vec<f32> = xq
            .par_chunks_mut(k)
            .zip(x.par_chunks(self.inputs))
            .map(|(q, row)| quantize_activations(row, &mut q[..self.inputs]))
            .collect();
        let mut out = vec![0.0f32; rows * n];
        let kernel = Kernel::detect();
        // Each job takes a block of rows (in L2 while it runs) against a panel of
        // outputs, 4 at a time (their weights in L1) against 4 rows at a time.
        let row_block = (131_072 / k).clamp(4, 128) & !3;
        let panel = ((65_536 / k).clamp(4, 256) & !3).min(n.next_multiple_of(4));
        let (row_blocks, panels) = (rows.div_ceil(row_block), n.div_ceil(panel));
        let dst = super::Shared(out.as_mut_ptr());
        (0..row_blocks * panels).into_par_iter().for_each(|job| {
            let (rb, pn) = (job / panels, job % panels);
            let (r_end, o_end) = (((rb + 1) * row_block).min(rows), ((pn + 1) * panel).min(n));
            for o in (pn * panel..o_end).step_by(4) {
                // Past the last output or row, repeat it: computed, never written.
                let cols = [o, o + 1, o + 2, o + 3].map(|c| c.min(n - 1));
                for r in (rb * row_block..r_end).step_by(4) {
                    let rs = [r, r + 1, r + 2, r + 3].map(|r| r.min(rows - 1));
                    let mut d = [0i64; 16];
                    for from in (0..k).step_by(CHUNK) {
                        let to = (from + CHUNK).min(k);
                        let x = rs.map(|r| &xq[r * k + from..r * k + to]);
                        let w = cols.map(|c| &self.values[c * k + from..c * k + to]);
                        for (d, part) in d.iter_mut().zip(kernel.dot_4x4(x, w)) {
                            *d += i64::from(part);
                        }
                    }
                    for (i, &row) in rs.iter().enumerate() {
                        if row != r + i {
                            continue;
                        }
                        for (j, &col) in cols.iter().enumerate() {
                            if col != o + j {
                                continue;
                            }
                            let v = d[i * 4 + j] as f32 * xs[row] * self.scales[col]
                                + bias.map_or(0.0, |b| b[col]);
                            // SAFETY: (row, col) is inside `out`, and only this job
                            // writes its block of rows and panel of outputs.
                            unsafe { *dst.at(row * n + col) = v };
                        }
                    }
                }
            }
        });
        out
    }
}

/// The int8 weights of one encoder layer's four matmuls (`--precision int8`).
#[derive(Clone, Debug)]
pub struct Int8Layer {
    pub qkv: QuantizedMatrix,
    pub attn_out: QuantizedMatrix,
    pub ffn_in: QuantizedMatrix,
    pub ffn_out: QuantizedMatrix,
}

impl Int8Layer {
    pub fn bytes(&self) -> usize {
        [&self.qkv, &self.attn_out, &self.ffn_in, &self.ffn_out]
            .iter()
            .map(|m| m.bytes())
            .sum()
    }
}

/// `x W (+ bias)` through the int8 weights, for `x` of `[batch, seq, inputs]` on the
/// flex device. `Err` gives `x` back where the kernel does not apply.
pub fn linear(
    x: Tensor<3>,
    w: &QuantizedMatrix,
    bias: Option<Tensor<1>>,
) -> Result<Tensor<3>, Tensor<3>> {
    if !super::applies(&x) {
        return Err(x);
    }
    let [batch, seq, inputs] = x.dims();
    assert_eq!(
        inputs, w.inputs,
        "int8 linear of {} inputs given {inputs}",
        w.inputs
    );
    let bias = bias.map(super::into_flex);
    let bias = bias.as_ref().map(super::row_major);
    let x = super::into_flex(x);
    let out = w.matmul(&super::row_major(&x), batch * seq, bias.as_deref());
    Ok(super::from_flex(out, [batch, seq, w.outputs]))
}

/// Symmetric 12-bit quantisation of one row of activations into `out`: returns the
/// scale that multiplies the integers back (0 for a row of zeros, NaN for a row that
/// is not finite, which then gives NaN outputs rather than numbers).
fn quantize_activations(row: &[f32], out: &mut [i16]) -> f32 {
    let max = row.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if !max.is_finite() || row.iter().any(|x| x.is_nan()) {
        out.fill(0);
        return f32::NAN;
    }
    if max == 0.0 {
        out.fill(0);
        return 0.0;
    }
    let inv = ACT_MAX / max;
    for (q, x) in out.iter_mut().zip(row) {
        *q = (x * inv).round() as i16;
    }
    max / ACT_MAX
}

/// Which inner-product kernel runs: the best the CPU has.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
}

impl Kernel {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vnni")
            {
                return Self::Avx512Vnni;
            }
            if std::is_x86_feature_detected!("avx2") {
                return Self::Avx2;
            }
        }
        Self::Portable
    }

    /// Every kernel this CPU can run (for tests that hold them to the portable one).
    #[cfg(test)]
    fn available() -> Vec<Self> {
        let mut all = vec![Self::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                all.push(Self::Avx2);
            }
            if Self::detect() == Self::Avx512Vnni {
                all.push(Self::Avx512Vnni);
            }
        }
        all
    }

    /// The sixteen inner products of four activation rows with four weight rows,
    /// row-major. Rows have one length, a multiple of [`STEP`] and at most [`CHUNK`],
    /// and hold values within +-2047 (activations) and +-127 (weights).
    fn dot_4x4(self, x: [&[i16]; 4], w: [&[i8]; 4]) -> [i32; 16] {
        debug_assert!(x[0].len() % STEP == 0 && x[0].len() <= CHUNK);
        match self {
            Self::Portable => portable_dot_4x4(x, w),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => {
                // SAFETY: AVX2 was detected; the rows' length is a multiple of 16.
                let (a, b) = unsafe {
                    (
                        avx2::dot_2x4([x[0], x[1]], w),
                        avx2::dot_2x4([x[2], x[3]], w),
                    )
                };
                std::array::from_fn(|i| if i < 8 { a[i] } else { b[i - 8] })
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512 F, BW and VNNI were detected; the rows' length is a
            // multiple of 32.
            Self::Avx512Vnni => unsafe { avx512::dot_4x4(x, w) },
        }
    }
}

fn portable_dot_4x4(x: [&[i16]; 4], w: [&[i8]; 4]) -> [i32; 16] {
    let dot = |a: &[i16], b: &[i8]| -> i32 {
        a.iter()
            .zip(b)
            .map(|(&a, &b)| i32::from(a) * i32::from(b))
            .sum()
    };
    std::array::from_fn(|i| dot(x[i / 4], w[i % 4]))
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Two activation rows by four weight rows, 16 inputs a step: each weight is widened
    /// to i16 as it is loaded, and `vpmaddwd` sums pairs of products into i32.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_2x4(x: [&[i16]; 2], w: [&[i8]; 4]) -> [i32; 8] {
        let mut acc = [_mm256_setzero_si256(); 8];
        for i in (0..x[0].len()).step_by(16) {
            // SAFETY: i + 16 <= len for every row (the caller's multiple of 16).
            let (a0, a1) = unsafe {
                (
                    _mm256_loadu_si256(x[0].as_ptr().add(i).cast()),
                    _mm256_loadu_si256(x[1].as_ptr().add(i).cast()),
                )
            };
            for j in 0..4 {
                let b =
                    unsafe { _mm256_cvtepi8_epi16(_mm_loadu_si128(w[j].as_ptr().add(i).cast())) };
                acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(a0, b));
                acc[4 + j] = _mm256_add_epi32(acc[4 + j], _mm256_madd_epi16(a1, b));
            }
        }
        acc.map(|v| {
            let mut lanes = [0i32; 8];
            unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) };
            lanes.iter().sum()
        })
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// Four activation rows by four weight rows, 32 inputs a step: each weight row's 32
    /// bytes are widened to i16 once and `vpdpwssd` adds the four rows' pair products.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn dot_4x4(x: [&[i16]; 4], w: [&[i8]; 4]) -> [i32; 16] {
        let mut acc = [_mm512_setzero_si512(); 16];
        for i in (0..x[0].len()).step_by(32) {
            // SAFETY: i + 32 <= len for every row (the caller's multiple of 32).
            let a = x.map(|r| unsafe { _mm512_loadu_si512(r.as_ptr().add(i).cast()) });
            for j in 0..4 {
                let b = unsafe {
                    _mm512_cvtepi8_epi16(_mm256_loadu_si256(w[j].as_ptr().add(i).cast()))
                };
                for r in 0..4 {
                    acc[r * 4 + j] = _mm512_dpwssd_epi32(acc[r * 4 + j], a[r], b);
                }
            }
        }
        // Sixteen horizontal sums at once: pairs of accumulators are interleaved and
        // added (32-bit, then 64-bit halves), leaving each 128-bit lane of `u[g]` with
        // accumulators 4g..4g+3's partial sums over that lane; two rounds of swapping
        // lanes between vectors and adding finish them, in order.
        let pair32 =
            |a, b| _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
        let pair64 =
            |a, b| _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
        let lanes = |a, b| {
            _mm512_add_epi32(
                _mm512_shuffle_i32x4::<0x88>(a, b),
                _mm512_shuffle_i32x4::<0xDD>(a, b),
            )
        };
        let u: [__m512i; 4] = std::array::from_fn(|g| {
            let a = &acc[g * 4..g * 4 + 4];
            pair64(pair32(a[0], a[1]), pair32(a[2], a[3]))
        });
        let total = lanes(lanes(u[0], u[1]), lanes(u[2], u[3]));
        let mut out = [0i32; 16];
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), total) };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }

    /// The int8 product against f32's on pseudo-random values in [-1, 1].
    fn check(rows: usize, inputs: usize, outputs: usize) {
        let w = pseudo_random(inputs * outputs, 1);
        let x = pseudo_random(rows * inputs, 2);
        let bias = pseudo_random(outputs, 3);
        let q = QuantizedMatrix::from_linear(&w, inputs, outputs);
        let got = q.matmul(&x, rows, Some(&bias));
        // Two roundings of 1/254 per product add up like a random walk.
        let tolerance = 0.006 * (inputs as f32).sqrt();
        for r in 0..rows {
            for o in 0..outputs {
                let exact: f32 = (0..inputs)
                    .map(|i| x[r * inputs + i] * w[i * outputs + o])
                    .sum::<f32>()
                    + bias[o];
                let d = (got[r * outputs + o] - exact).abs();
                assert!(
                    d < tolerance,
                    "{rows}x{inputs}x{outputs} ({r}, {o}): off by {d}"
                );
            }
        }
    }

    /// Quantised from PyTorch's rows or from Burn's columns, the same matrix; and
    /// `rows` reads rows back within half a scale step (the int8 embedding lookup).
    #[test]
    fn rows_and_columns_quantise_alike_and_rows_read_back() {
        let (inputs, outputs) = (45, 7);
        let w = pseudo_random(inputs * outputs, 4);
        let row = |o: usize| -> Vec<f32> { (0..inputs).map(|i| w[i * outputs + o]).collect() };
        let a = QuantizedMatrix::from_linear(&w, inputs, outputs);
        let b = QuantizedMatrix::from_rows(inputs, outputs, row);
        assert_eq!((&a.values, &a.scales), (&b.values, &b.scales));
        let ids = [6i64, 0, 3, 3];
        let got = b.rows(&ids);
        assert_eq!(got.len(), ids.len() * inputs);
        for (&id, back) in ids.iter().zip(got.chunks(inputs)) {
            let want = row(id as usize);
            let step = b.scales[id as usize];
            for (x, y) in want.iter().zip(back) {
                assert!((x - y).abs() <= step * 0.5 + 1e-7, "row {id}: {x} vs {y}");
            }
        }
    }

    #[test]
    fn int8_matmul_is_close_to_f32_and_the_kernels_agree() {
        // Odd sizes: padding, a last row and outputs without a full tile; then several
        // panels of outputs, several blocks of rows, and more inputs than one i32 chunk.
        for (rows, inputs, outputs) in [(7, 75, 13), (9, 4100, 13), (131, 40, 6), (3, 8300, 5)] {
            check(rows, inputs, outputs);
        }
        // The kernels' integers are exact.
        let a: Vec<i16> = (0..64).map(|i| (i * 37 % 4095 - 2047) as i16).collect();
        let b: Vec<i8> = (0..64).map(|i| (i * 91 % 255 - 127) as i8).collect();
        let c: Vec<i16> = b.iter().map(|&v| i16::from(v)).collect();
        let d: Vec<i8> = (0..64).map(|i| (i * 13 % 255 - 127) as i8).collect();
        let dot = |x: &[i16], y: &[i8]| -> i32 {
            x.iter()
                .zip(y)
                .map(|(&x, &y)| i32::from(x) * i32::from(y))
                .sum()
        };
        let (ab, ad, cb, cd) = (dot(&a, &b), dot(&a, &d), dot(&c, &b), dot(&c, &d));
        for kernel in Kernel::available() {
            assert_eq!(
                kernel.dot_4x4([&a, &c, &a, &a], [&b, &d, &d, &b]),
                [
                    ab, ad, ad, ab, cb, cd, cd, cb, ab, ad, ad, ab, ab, ad, ad, ab
                ],
                "{kernel:?}"
            );
        }
        // Every kernel this CPU has gives the portable loop's integers on rows of every
        // sign over several steps, with the extremes (+-2047 by +-127) side by side.
        let x: Vec<Vec<i16>> = (0..4)
            .map(|s| {
                (0..192)
                    .map(|i| match (i + s) % 17 {
                        0 => -2047,
                        1 => 2047,
                        _ => ((i * 53 + s * 101) % 4095 - 2047) as i16,
                    })
                    .collect()
            })
            .collect();
        let w: Vec<Vec<i8>> = (0..4)
            .map(|s| {
                (0..192)
                    .map(|i| match (i + s) % 17 {
                        0 => -127,
                        1 => 127,
                        _ => ((i * 29 + s * 7) % 255 - 127) as i8,
                    })
                    .collect()
            })
            .collect();
        let x = [x[0].as_slice(), &x[1], &x[2], &x[3]];
        let w = [w[0].as_slice(), &w[1], &w[2], &w[3]];
        let want = portable_dot_4x4(x, w);
        for kernel in Kernel::available() {
            assert_eq!(kernel.dot_4x4(x, w), want, "{kernel:?}");
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            assert!(
                Kernel::available().len() > 1,
                "this CPU's fast kernel was not tested"
            );
        }
    }

    /// With weights that int8 holds exactly, only the activations round: within half a
    /// 12-bit step per product. Each 0.3 in a row whose largest value is 1 rounds the
    /// same way (to 614/2047; to 38/127 in 8 bits), so 8-bit activations would be off
    /// by 299 x 0.1/127 = 0.24 here, past the bound of 299 x 0.5/2047 = 0.073.
    #[test]
    fn activations_keep_12_bits() {
        let (inputs, outputs) = (300, 2);
        let w = vec![1.0f32; inputs * outputs];
        let x: Vec<f32> = (0..inputs)
            .map(|i| if i == 0 { 1.0 } else { 0.3 })
            .collect();
        let got = QuantizedMatrix::from_linear(&w, inputs, outputs).matmul(&x, 1, None);
        let exact = 1.0 + 0.3 * (inputs - 1) as f32;
        let bound = (inputs - 1) as f32 * 0.5 / 2047.0;
        for (o, v) in got.iter().enumerate() {
            let d = (v - exact).abs();
            assert!(d <= bound, "output {o}: off by {d}, bound {bound}");
        }
    }
}
