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

use crate::checkpoint::int8::quantize_row as quantize_into;

impl QuantizedMatrix {
    /// From Burn's Linear layout: `weight` is `[inputs, outputs]` row-major.
    pub fn from_linear(weight: &[f32], inputs: usize, outputs: usize) -> Self {
        assert_eq!(weight.len(), inputs * outputs);
        let k = padded(inputs);
        let mut values = vec![0i8; outputs * k];
        let mut column = vec![0.0f32; inputs];
        let scales = values
            .chunks_exact_mut(k)
            .enumerate()
            .map(|(o, row)| {
                for (i, c) in column.iter_mut().enumerate() {
                    *c = weight[i * outputs + o];
                }
                quantize_into(&column, &mut row[..inputs])
            })
            .collect();
        Self {
            outputs,
            inputs,
            values,
            scales,
        }
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
            .map(|(q, row)| quantize_into(row, &mut q[..self.inputs]))
            .collect();
        let mut out = vec![0.0f32; rows * n];
        // Jobs own a panel of outputs whose weights stay in L1/L2 while every row
        // passes through it.
        let panel = (16384 / k).clamp(2, 64) & !1;
        let panels = n.div_ceil(panel);
        let dst = super::Shared(out.as_mut_ptr());
        (0..panels).into_par_iter().for_each(|p| {
            let o0 = p * panel;
            let o1 = (o0 + panel).min(n);
            for r in (0..rows).step_by(2) {
                let r1 = (r + 1).min(rows - 1);
                let (x0, x1) = (&xq[r * k..(r + 1) * k], &xq[r1 * k..(r1 + 1) * k]);
                let mut o = o0;
                while o < o1 {
                    let p1 = (o + 1).min(o1 - 1);
                    let (w0, w1) = (
                        &self.values[o * k..(o + 1) * k],
                        &self.values[p1 * k..(p1 + 1) * k],
                    );
                    let d = dot_2x2(x0, x1, w0, w1);
                    for (dr, row) in [(0, r), (1, r1)] {
                        for (dc, col) in [(0, o), (1, p1)] {
                            if (dr == 1 && r1 == r) || (dc == 1 && p1 == o) {
                                continue;
                            }
                            let v = d[dr * 2 + dc] as f32 * xs[row] * self.scales[col]
                                + bias.map_or(0.0, |b| b[col]);
                            // SAFETY: (row, col) is inside `out`, and only this job
                            // writes its panel's columns.
                            unsafe { *dst.at(row * n + col) = v };
                        }
                    }
                    o += 2;
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
    let bias = bias.map(|b| super::into_flex(b).to_contiguous());
    let bias = bias
        .as_ref()
        .map(|b| b.as_slice::<f32>().expect("an f32 bias"));
    let x = super::into_flex(x);
    let out = w.matmul(&super::row_major(&x), batch * seq, bias);
    Ok(super::from_flex(out, [batch, seq, w.outputs]))
}

/// The four inner products of two activation rows with two weight rows.
fn dot_2x2(x0: &[i8], x1: &[i8], w0: &[i8], w1: &[i8]) -> [i32; 4] {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected; the rows have the same length, a multiple of 32.
        return unsafe { avx2::dot_2x2(x0, x1, w0, w1) };
    }
    let dot = |a: &[i8], b: &[i8]| -> i32 {
        a.iter()
            .zip(b)
            .map(|(&a, &b)| i32::from(a) * i32::from(b))
            .sum()
    };
    [dot(x0, w0), dot(x0, w1), dot(x1, w0), dot(x1, w1)]
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_2x2(x0: &[i8], x1: &[i8], w0: &[i8], w1: &[i8]) -> [i32; 4] {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_si256(); 4];
        let load = |s: &[i8], i: usize| unsafe { _mm256_loadu_si256(s.as_ptr().add(i).cast()) };
        for i in (0..x0.len()).step_by(32) {
            let (a0, a1) = (load(x0, i), load(x1, i));
            let (b0, b1) = (load(w0, i), load(w1, i));
            let (m0, m1) = (_mm256_abs_epi8(a0), _mm256_abs_epi8(a1));
            let prod =
                |m, b, a| _mm256_madd_epi16(_mm256_maddubs_epi16(m, _mm256_sign_epi8(b, a)), ones);
            acc[0] = _mm256_add_epi32(acc[0], prod(m0, b0, a0));
            acc[1] = _mm256_add_epi32(acc[1], prod(m0, b1, a0));
            acc[2] = _mm256_add_epi32(acc[2], prod(m1, b0, a1));
            acc[3] = _mm256_add_epi32(acc[3], prod(m1, b1, a1));
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

    #[test]
    fn int8_matmul_is_close_to_f32_and_the_kernels_agree() {
        // Odd sizes: padding, a last row and a last output without a partner.
        let (rows, inputs, outputs) = (7, 75, 13);
        let w = pseudo_random(inputs * outputs, 1);
        let x = pseudo_random(rows * inputs, 2);
        let bias = pseudo_random(outputs, 3);
        let q = QuantizedMatrix::from_linear(&w, inputs, outputs);
        let got = q.matmul(&x, rows, Some(&bias));
        for r in 0..rows {
            for o in 0..outputs {
                let exact: f32 = (0..inputs)
                    .map(|i| x[r * inputs + i] * w[i * outputs + o])
                    .sum::<f32>()
                    + bias[o];
                // Two 8-bit roundings of values in [-1, 1] over 75 products.
                assert!((got[r * outputs + o] - exact).abs() < 0.05, "({r}, {o})");
            }
        }
        // The AVX2 path and the portable loop give the same integers.
        let a: Vec<i8> = (0..64).map(|i| (i * 37 % 255 - 127) as i8).collect();
        let b: Vec<i8> = (0..64).map(|i| (i * 91 % 255 - 127) as i8).collect();
        let want: i32 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| i32::from(x) * i32::from(y))
            .sum();
        assert_eq!(
            dot_2x2(&a, &b, &b, &a),
            [
                want,
                a.iter().map(|&v| i32::from(v).pow(2)).sum(),
                b.iter().map(|&v| i32::from(v).pow(2)).sum(),
                want
            ]
        );
    }

    #[test]
    #[ignore = "a timing, run by hand: cargo test --release -p megaqa-model int8_speed -- --ignored --nocapture"]
    fn int8_speed() {
        for (rows, inputs, outputs) in [(384, 1024, 3072), (384, 1024, 4096), (384, 4096, 1024)] {
            let w = pseudo_random(inputs * outputs, 1);
            let x = pseudo_random(rows * inputs, 2);
            let q = QuantizedMatrix::from_linear(&w, inputs, outputs);
            q.matmul(&x, rows, None);
            let t = std::time::Instant::now();
            for _ in 0..5 {
                std::hint::black_box(q.matmul(&x, rows, None));
            }
            let s = t.elapsed().as_secs_f64() / 5.0;
            println!(
                "{rows}x{inputs}x{outputs}: {:.2} ms, {:.0} GOP/s",
                s * 1e3,
                2.0 * (rows * inputs * outputs) as f64 / s / 1e9
            );
        }
    }
}
