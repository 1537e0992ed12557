//! int8 x int8 -> i32 matrix multiply for Linear layers: weights quantised per output
//! channel (symmetric, [-127, 127]), activations per row (token) at run time, i32
//! accumulation, and the two scales and the bias applied once per output.
//!
//! With AVX2 the inner product runs 32 pairs per instruction: `vpmaddubsw` multiplies
//! unsigned by signed bytes, so each activation's sign is moved onto the weight
//! (`vpsignb`) and its magnitude used unsigned: |x| * sign(w, x) = x * w exactly, and two
//! products of at most 127 * 127 cannot saturate the i16 pair sum. Elsewhere a portable
//! loop gives the same integers.

use burn::tensor::Tensor;
use rayon::prelude::*;

use crate::checkpoint::int8::quantize_row;

/// Rows are padded with zeros to a multiple of this, the AVX2 step.
const STEP: usize = 32;

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
    /// quantised per row, multiplied in int8 and scaled back.
    pub fn matmul(&self, x: &[f32], rows: usize, bias: Option<&[f32]>) -> Vec<f32> {
        let (k, n) = (padded(self.inputs), self.outputs);
        assert_eq!(x.len(), rows * self.inputs);
        let mut xq = vec![0i8; rows * k];
        let xs: Vec<f32> = xq
            .par_chunks_mut(k)
            .zip(x.par_chunks(self.inputs))
            .map(|(q, row)| quantize_row(row, &mut q[..self.inputs]))
            .collect();
        let mut out = vec![0.0f32; rows * n];
        // Each job takes a block of rows (in L2 while it runs) against a panel of
        // outputs, 4 at a time (their weights in L1) against 2 rows at a time.
        let row_block = (131_072 / k).clamp(2, 128) & !1;
        let panel = ((65_536 / k).clamp(4, 256) & !3).min(n.next_multiple_of(4));
        let (row_blocks, panels) = (rows.div_ceil(row_block), n.div_ceil(panel));
        let dst = super::Shared(out.as_mut_ptr());
        (0..row_blocks * panels).into_par_iter().for_each(|job| {
            let (rb, pn) = (job / panels, job % panels);
            let (r_end, o_end) = (((rb + 1) * row_block).min(rows), ((pn + 1) * panel).min(n));
            for o in (pn * panel..o_end).step_by(4) {
                // Past the last output, repeat it: computed, never written.
                let cols = [o, o + 1, o + 2, o + 3].map(|c| c.min(n - 1));
                let w = cols.map(|c| &self.values[c * k..(c + 1) * k]);
                for r in (rb * row_block..r_end).step_by(2) {
                    let rs = [r, (r + 1).min(rows - 1)];
                    let x = rs.map(|r| &xq[r * k..(r + 1) * k]);
                    let d = dot_2x4(x, w);
                    for (i, &row) in rs.iter().enumerate() {
                        if i > 0 && row == rs[0] {
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

/// The eight inner products of two activation rows with four weight rows, row-major.
fn dot_2x4(x: [&[i8]; 2], w: [&[i8]; 4]) -> [i32; 8] {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected; the rows have the same length, a multiple of 32.
        return unsafe { avx2::dot_2x4(x, w) };
    }
    portable_dot_2x4(x, w)
}

fn portable_dot_2x4(x: [&[i8]; 2], w: [&[i8]; 4]) -> [i32; 8] {
    let dot = |a: &[i8], b: &[i8]| -> i32 {
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

    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_2x4(x: [&[i8]; 2], w: [&[i8]; 4]) -> [i32; 8] {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_si256(); 8];
        let load = |s: &[i8], i: usize| unsafe { _mm256_loadu_si256(s.as_ptr().add(i).cast()) };
        for i in (0..x[0].len()).step_by(32) {
            let (a0, a1) = (load(x[0], i), load(x[1], i));
            let (m0, m1) = (_mm256_abs_epi8(a0), _mm256_abs_epi8(a1));
            for j in 0..4 {
                let b = load(w[j], i);
                let p0 = _mm256_maddubs_epi16(m0, _mm256_sign_epi8(b, a0));
                let p1 = _mm256_maddubs_epi16(m1, _mm256_sign_epi8(b, a1));
                acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(p0, ones));
                acc[4 + j] = _mm256_add_epi32(acc[4 + j], _mm256_madd_epi16(p1, ones));
            }
        }
        acc.map(|v| {
            let mut lanes = [0i32; 8];
            unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) };
            lanes.iter().sum()
        })
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
        // panels of outputs, then several blocks of rows.
        for (rows, inputs, outputs) in [(7, 75, 13), (9, 4100, 13), (131, 40, 6)] {
            check(rows, inputs, outputs);
        }
        // The kernel's integers are exact.
        let a: Vec<i8> = (0..64).map(|i| (i * 37 % 255 - 127) as i8).collect();
        let b: Vec<i8> = (0..64).map(|i| (i * 91 % 255 - 127) as i8).collect();
        let want: i32 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| i32::from(x) * i32::from(y))
            .sum();
        let (aa, bb): (i32, i32) = (
            a.iter().map(|&v| i32::from(v).pow(2)).sum(),
            b.iter().map(|&v| i32::from(v).pow(2)).sum(),
        );
        assert_eq!(
            dot_2x4([&a, &b], [&b, &a, &a, &b]),
            [want, aa, aa, want, bb, want, want, bb]
        );
        // Whichever kernel ran, the portable loop agrees on rows of every sign.
        let rows: Vec<Vec<i8>> = (0..6)
            .map(|s| {
                (0..96)
                    .map(|i| ((i * 53 + s * 101) % 255 - 127) as i8)
                    .collect()
            })
            .collect();
        let x = [rows[0].as_slice(), &rows[1]];
        let w = [rows[2].as_slice(), &rows[3], &rows[4], &rows[5]];
        assert_eq!(dot_2x4(x, w), portable_dot_2x4(x, w));
    }
}
