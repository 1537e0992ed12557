//! Branch-free `exp` and `erf` that LLVM turns into vector code, and the row loops
//! that use them. libm's `expf`/`erff` are function calls per element, which keeps
//! every loop around them scalar.

/// Which build of a [`simd_fn!`] function runs: the widest the CPU has (`Auto`), or one
/// named, for the tests that hold the builds to each other. A build the CPU lacks falls
/// back to the next narrower one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Only the tests name a narrower build.
#[cfg_attr(not(test), allow(dead_code))]
pub enum Lanes {
    Auto,
    Avx2,
    Baseline,
}

/// Defines `fn $name` three times over one body: compiled for AVX-512 F + BW (LLVM then
/// vectorises its loops 16 lanes wide, with 32 registers, so the polynomials' constants
/// stay in registers), for AVX2 + FMA (8 lanes) and as built (SSE2 on x86-64: 4 lanes),
/// and picks the first the CPU has. The body is a plain `#[inline(always)]` function so
/// that it is compiled inside each build with that build's features. The builds give
/// the same bits: Rust never fuses a multiply and an add by itself, and every reduction
/// in the bodies spells out its order. `$name` + `_with` takes a [`Lanes`] to pick one.
macro_rules! simd_fn {
    (
        $(#[$doc:meta])*
        $vis:vis fn $name:ident / $with:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            $with(Lanes::Auto, $($arg),*)
        }

        /// The same, in the build `lanes` names (or the next narrower the CPU has).
        $vis fn $with(lanes: Lanes, $($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                let avx2_ok = std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma");
                let avx512_ok = std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw");
                if lanes == Lanes::Auto && avx2_ok && avx512_ok {
                    // SAFETY: the features were just detected.
                    return unsafe { avx512($($arg),*) };
                }
                if lanes != Lanes::Baseline && avx2_ok {
                    // SAFETY: the features were just detected.
                    return unsafe { avx2($($arg),*) };
                }
            }
            let _ = lanes;
            body($($arg),*)
        }
    };
}
pub(crate) use simd_fn;

/// `e^x` to about 1 ulp (Cephes' `expf`: `2^n * e^r` with `|r| <= ln2/2` and a degree-6
/// polynomial); 0 below -87.3, where f32 runs out of normal numbers, and for -inf.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that `x - n ln2` loses nothing.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 * 2^23 rounds to the nearest integer in any rounding-free vector code.
    const ROUND: f32 = 12_582_912.0;
    // Above 88.37, 2^n would be 2^128 (infinity): the result saturates at e^88.37.
    let xc = x.clamp(-87.3, 88.37);
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    // n as an integer, read from t's low mantissa bits: a float-to-int `as` would
    // saturate and keep the loop scalar.
    let n_int = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    let two_n = f32::from_bits(((n_int + 127) as u32) << 23);
    if x < -87.3 { 0.0 } else { y * two_n }
}

/// `erf(x)` within 5e-7 of the exact value: the rational approximation on [-4, 4] that
/// Eigen and XLA use for f32 (beyond 4, erf is 1 to f32 precision).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = -2.726_142_3e-10_f32;
    let p = p * x2 + 2.770_681_4e-8;
    let p = p * x2 - 2.101_024e-6;
    let p = p * x2 - 5.692_506_4e-5;
    let p = p * x2 - 7.349_906_3e-4;
    let p = p * x2 - 2.954_600_1e-3;
    let p = p * x2 - 1.609_603_3e-2;
    let q = -1.456_607_2e-5_f32;
    let q = q * x2 - 2.133_740_6e-4;
    let q = q * x2 - 1.682_827e-3;
    let q = q * x2 - 7.373_329e-3;
    let q = q * x2 - 1.426_474e-2;
    x * p / q
}

simd_fn! {
    /// `gelu(x + bias)` over rows of `bias.len()` values, in place.
    pub fn bias_gelu_rows / bias_gelu_rows_with(values: &mut [f32], bias: &[f32]) {
        for row in values.chunks_exact_mut(bias.len()) {
            for (x, b) in row.iter_mut().zip(bias) {
                let v = *x + b;
                *x = 0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
    }
}

simd_fn! {
    /// `softmax(row + bias)` in place, where `bias` is 0 or -inf per column. A row whose
    /// every column is masked becomes zeros rather than NaN.
    pub fn masked_softmax / masked_softmax_with(row: &mut [f32], bias: &[f32]) {
        // Eight running maxima and sums, so that the loops vectorise without reordering
        // a float reduction behind the compiler's back.
        let mut lanes = [f32::NEG_INFINITY; 8];
        let mut chunks = row.chunks_exact_mut(8);
        let mut bias_chunks = bias.chunks_exact(8);
        for (c, b) in (&mut chunks).zip(&mut bias_chunks) {
            for i in 0..8 {
                c[i] += b[i];
                lanes[i] = if c[i] > lanes[i] { c[i] } else { lanes[i] };
            }
        }
        for (x, b) in chunks.into_remainder().iter_mut().zip(bias_chunks.remainder()) {
            *x += b;
            lanes[0] = if *x > lanes[0] { *x } else { lanes[0] };
        }
        let max = lanes.into_iter().fold(f32::NEG_INFINITY, f32::max);
        if max == f32::NEG_INFINITY {
            row.fill(0.0);
            return;
        }
        for x in row.iter_mut() {
            *x = exp(*x - max);
        }
        let mut sums = [0.0f32; 8];
        let mut chunks = row.chunks_exact(8);
        for c in &mut chunks {
            for i in 0..8 {
                sums[i] += c[i];
            }
        }
        let rest: f32 = chunks.remainder().iter().sum();
        let inv = 1.0 / (sums.iter().sum::<f32>() + rest);
        for x in row.iter_mut() {
            *x *= inv;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(lo: f32, hi: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| lo + (hi - lo) * i as f32 / n as f32)
    }

    #[test]
    fn exp_is_within_two_ulp_of_std() {
        for x in grid(-87.0, 88.0, 200_000) {
            let (got, want) = (exp(x), x.exp());
            assert!(
                ((got - want) / want).abs() < 2.5e-7,
                "exp({x}) = {got}, std says {want}"
            );
        }
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn erf_is_within_5e_7_of_libm() {
        for x in grid(-6.0, 6.0, 200_000) {
            let (got, want) = (erf(x), libm_erf(x as f64) as f32);
            assert!(
                (got - want).abs() < 5e-7,
                "erf({x}) = {got}, libm says {want}"
            );
        }
    }

    /// erf in f64 from its continued series, good to 1e-12 on [-6, 6]: the test's own
    /// reference, independent of the code under test.
    fn libm_erf(x: f64) -> f64 {
        // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)) converges slowly for
        // large |x|; use erfc's continued fraction there.
        if x.abs() < 3.0 {
            let (mut term, mut sum, mut n) = (x, x, 0.0);
            while term.abs() > 1e-17 {
                n += 1.0;
                term *= -x * x / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let z = x.abs();
            let mut f = z;
            for k in (1..60).rev() {
                f = z + (k as f64 / 2.0) / f;
            }
            let erfc = (-z * z).exp() / (std::f64::consts::PI.sqrt() * f);
            x.signum() * (1.0 - erfc)
        }
    }

    /// Rows of every length the loops split differently (under and over 8 and 16
    /// lanes, remainders), with masked columns, ties, large and tiny values.
    fn rows() -> impl Iterator<Item = (Vec<f32>, Vec<f32>)> {
        [1usize, 7, 8, 15, 16, 17, 33, 384, 385]
            .into_iter()
            .map(|n| {
                let row = (0..n)
                    .map(|i| match i % 11 {
                        0 => 0.0,
                        1 => 95.0,
                        2 => -120.0,
                        _ => ((i * 7919) as f32 * 0.013).sin() * 12.0,
                    })
                    .collect();
                let bias = (0..n)
                    .map(|i| if i % 5 == 4 { f32::NEG_INFINITY } else { 0.0 })
                    .collect();
                (row, bias)
            })
    }

    /// The softmax's sums spelled out one value at a time, in the order the kernel
    /// promises (eight running sums over whole groups of 8 columns, then the rest), as
    /// bits: no build may have reordered anything.
    fn softmax_in_its_order(row: &[f32], bias: &[f32]) -> Vec<u32> {
        let x: Vec<f32> = row.iter().zip(bias).map(|(x, b)| x + b).collect();
        let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if max == f32::NEG_INFINITY {
            return vec![0; row.len()];
        }
        let e: Vec<f32> = x.iter().map(|&v| exp(v - max)).collect();
        let whole = e.len() / 8 * 8;
        let mut sums = [0.0f32; 8];
        for (i, v) in e[..whole].iter().enumerate() {
            sums[i % 8] += v;
        }
        let mut total = 0.0f32;
        for s in sums {
            total += s;
        }
        let mut rest = 0.0f32;
        for v in &e[whole..] {
            rest += v;
        }
        let inv = 1.0 / (total + rest);
        e.iter().map(|v| (v * inv).to_bits()).collect()
    }

    #[test]
    fn every_build_gives_the_same_bits() {
        for (row, bias) in rows() {
            let run = |lanes: Lanes| {
                let mut soft = row.clone();
                masked_softmax_with(lanes, &mut soft, &bias);
                let gelu_bias: Vec<f32> = bias.iter().map(|b| b.max(-0.5)).collect();
                let mut gelu = row.clone();
                bias_gelu_rows_with(lanes, &mut gelu, &gelu_bias);
                let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
                (bits(soft), bits(gelu))
            };
            let baseline = run(Lanes::Baseline);
            assert_eq!(
                baseline.0,
                softmax_in_its_order(&row, &bias),
                "{} columns",
                row.len()
            );
            assert_eq!(run(Lanes::Avx2), baseline, "AVX2, {} columns", row.len());
            assert_eq!(run(Lanes::Auto), baseline, "widest, {} columns", row.len());
        }
    }

    #[test]
    fn masked_softmax_sums_to_one_and_ignores_masked_columns() {
        let mut row: Vec<f32> = (0..21).map(|i| (i as f32 * 0.37).sin() * 5.0).collect();
        let bias: Vec<f32> = (0..21)
            .map(|i| if i % 4 == 3 { f32::NEG_INFINITY } else { 0.0 })
            .collect();
        let logits = row.clone();
        masked_softmax(&mut row, &bias);
        let kept: Vec<usize> = (0..21).filter(|i| i % 4 != 3).collect();
        let max = kept.iter().map(|&i| logits[i]).fold(f32::MIN, f32::max);
        let total: f64 = kept.iter().map(|&i| ((logits[i] - max) as f64).exp()).sum();
        for i in 0..21 {
            let want = if i % 4 == 3 {
                0.0
            } else {
                (((logits[i] - max) as f64).exp() / total) as f32
            };
            assert!(
                (row[i] - want).abs() < 1e-6,
                "column {i}: {} vs {want}",
                row[i]
            );
        }
        let mut all_masked = vec![1.0; 5];
        masked_softmax(&mut all_masked, &[f32::NEG_INFINITY; 5]);
        assert_eq!(all_masked, vec![0.0; 5]);
    }
}
