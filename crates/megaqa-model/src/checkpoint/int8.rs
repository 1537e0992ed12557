//! int8 weights in the converted format (`megaqa convert --dtype int8`): each encoder
//! matmul weight (`layers.N.{qkv,attn_out,ffn_in,ffn_out}.weight`, `[out, in]`) is
//! stored as int8 with an f32 scale per output row beside it (`<name>.scale`, `[out]`);
//! everything else in f16. Readers turn them back into f32, and `--precision int8`
//! quantises those rows again, which gives back exactly the stored integers (each row's
//! largest magnitude is 127 x its scale).

use std::collections::BTreeMap;

use super::{DType, LoadError, RawTensor};

/// Symmetric int8 of one row into `out`: returns the scale that multiplies the
/// integers back (0 for a row of zeros; NaN when the row holds a NaN or infinity).
pub fn quantize_row(row: &[f32], out: &mut [i8]) -> f32 {
    quantize_symmetric(row, out, 127.0, |v| v as i8)
}

/// Symmetric quantisation of one row into `out`, `levels` steps either side of zero
/// (`narrow` takes each rounded value, within +-`levels`, from i32 into the integer
/// type): returns the scale that multiplies the integers back (0 for a row of zeros;
/// NaN, with `out` zeroed, when the row holds a NaN or infinity). Written so that the
/// compiler vectorises it for whichever instructions its caller enables (the int8
/// matmul quantises activations with it under AVX2 and AVX-512): the largest magnitude
/// is kept in 16 lanes by compare-and-select (what `vmaxps` does), a value that is not
/// finite is caught by a compare, and values round by [`round_half_away`] and convert
/// to i32 unchecked (`f32::round` and saturating casts stayed scalar: quantising took a
/// fifth of an int8 matmul's time on 2 Intel Xeon cores, perf, 2026-11-30; now ~5%).
/// Every build gives the same integers.
#[inline(always)]
pub fn quantize_symmetric<T: Copy + Default>(
    row: &[f32],
    out: &mut [T],
    levels: f32,
    narrow: impl Fn(i32) -> T,
) -> f32 {
    let mut lanes = [0.0f32; 16];
    let mut bad = false;
    let chunks = row.chunks_exact(16);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (m, x) in lanes.iter_mut().zip(chunk) {
            let a = x.abs();
            bad |= !a.is_finite();
            *m = if a > *m { a } else { *m };
        }
    }
    for (m, x) in lanes.iter_mut().zip(rest) {
        let a = x.abs();
        bad |= !a.is_finite();
        *m = if a > *m { a } else { *m };
    }
    let max = lanes.iter().fold(0.0f32, |m, &a| if a > m { a } else { m });
    if bad {
        out.fill(T::default());
        return f32::NAN;
    }
    if max == 0.0 {
        out.fill(T::default());
        return 0.0;
    }
    let inv = levels / max;
    for (q, x) in out.iter_mut().zip(row) {
        // SAFETY: `x * inv` is finite (the row is) and within +-`levels` (rounding
        // aside), far inside i32. `as i32` would saturate value by value in scalar code.
        *q = narrow(unsafe { round_half_away(x * inv).to_int_unchecked::<i32>() });
    }
    max / levels
}

/// `v.round()` (halves away from zero) in operations that vectorise: `f32::round` has
/// no x86 instruction, so it stayed a call to libm's `roundf` per value. `trunc` is one
/// instruction and `v - trunc(v)` is exact, so this is `round` to the bit.
#[inline(always)]
fn round_half_away(v: f32) -> f32 {
    let t = v.trunc();
    if (v - t).abs() >= 0.5 {
        t + 1.0f32.copysign(v)
    } else {
        t
    }
}

/// Whether a canonical tensor is stored in int8: the encoder's matmul weights and the
/// word embeddings (a row per token; half of a small model's bytes).
pub fn is_int8(name: &str, shape: &[usize]) -> bool {
    shape.len() == 2
        && (name == "embeddings.word"
            || name.starts_with("layers.")
                && ["qkv", "attn_out", "ffn_in", "ffn_out"]
                    .iter()
                    .any(|m| name.ends_with(&format!(".{m}.weight"))))
}

/// A `[rows, cols]` f32 matrix as int8 rows and their scales; `Err` names a row that is
/// not finite.
pub fn quantize(values: &[f32], rows: usize, cols: usize) -> Result<(Vec<i8>, Vec<f32>), usize> {
    let mut q = vec![0i8; rows * cols];
    let mut scales = Vec::with_capacity(rows);
    for (r, (row, out)) in values
        .chunks_exact(cols)
        .zip(q.chunks_exact_mut(cols))
        .enumerate()
    {
        let s = quantize_row(row, out);
        if s.is_nan() {
            return Err(r);
        }
        scales.push(s);
    }
    Ok((q, scales))
}

/// Gives every int8 tensor its scales (removing `<name>.scale`), checked, so that it
/// reads as f32 values ([`RawTensor::to_f32`]) one tensor at a time.
pub fn attach_scales(
    origin: &str,
    tensors: &mut BTreeMap<String, RawTensor>,
) -> Result<(), LoadError> {
    let int8: Vec<String> = tensors
        .iter()
        .filter(|(_, t)| t.dtype == DType::I8)
        .map(|(n, _)| n.clone())
        .collect();
    for name in int8 {
        let bad = |why: String| LoadError::invalid(origin, format!("tensor `{name}`: {why}"));
        let t = tensors[&name].clone();
        let [rows, cols] = t.shape[..] else {
            return Err(bad(format!(
                "int8 of shape {:?}; only matrices are",
                t.shape
            )));
        };
        let scale_name = format!("{name}.scale");
        let scale = tensors
            .remove(&scale_name)
            .ok_or_else(|| bad(format!("int8 without its scales `{scale_name}`")))?;
        if scale.shape != [rows] {
            return Err(bad(format!(
                "int8 of shape [{rows}, {cols}] needs scales of shape [{rows}], `{scale_name}` has {:?}",
                scale.shape
            )));
        }
        let scales = scale
            .to_f32()
            .ok_or_else(|| bad(format!("`{scale_name}` is {:?}, not float", scale.dtype)))?;
        if let Some(r) = scales.iter().position(|s| !s.is_finite() || *s < 0.0) {
            return Err(bad(format!(
                "`{scale_name}` row {r} is {} (scales are finite and not negative)",
                scales[r]
            )));
        }
        tensors.insert(name, t.with_row_scales(scales));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requantising_dequantised_rows_gives_the_same_integers() {
        let values: Vec<f32> = (0..6 * 40)
            .map(|i| ((i * 7919) % 1000) as f32 / 300.0 - 1.6)
            .collect();
        let (q, s) = quantize(&values, 6, 40).unwrap();
        let back: Vec<f32> = q
            .chunks(40)
            .zip(&s)
            .flat_map(|(r, &s)| r.iter().map(move |&v| v as f32 * s))
            .collect();
        let (q2, s2) = quantize(&back, 6, 40).unwrap();
        assert_eq!(q, q2);
        for (a, b) in s.iter().zip(&s2) {
            assert!((a - b).abs() <= a * 1e-6);
        }
        assert_eq!(quantize(&[0.0, f32::NAN, 1.0, 2.0], 2, 2), Err(0));
    }

    /// Halves, the values either side of them, and a sweep of the range the
    /// quantisers use: the same as `f32::round`, to the bit.
    #[test]
    fn round_half_away_is_round() {
        let mut values = vec![0.0f32, -0.0, 0.5, -0.5, 1.5, -2.5, 2047.5, -126.5];
        for h in [0.5f32, 1.5, 2.5, 126.5, 2046.5] {
            for v in [h, -h] {
                values.extend([v.next_down(), v.next_up()]);
            }
        }
        values.extend((0..200_000).map(|i| (i as f32 - 100_000.0) * 0.020_47));
        for v in values {
            assert_eq!(round_half_away(v).to_bits(), v.round().to_bits(), "{v}");
        }
    }
}
