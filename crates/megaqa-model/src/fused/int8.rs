//! Matrix multiply for Linear layers with int8 weights: weights quantised per output
//! channel (symmetric, [-127, 127]), activations per row (token) at run time to 12 bits
//! (symmetric, [-2047, 2047]) held in i16, i32 accumulation, and the two scales and the
//! bias applied once per output.
//!
//! Why 12-bit activations: with 8-bit ones the shipped model gave f32's answer for 617
//! of the 626 two-article questions, short of the 99% (620) the int8 issue asks; 12 bits
//! gave 622 and exact f32 activations (emulated) 621 (2026-11-29), so what is left is
//! the weights' rounding. The weights stay int8 (a quarter of f32's bytes), and on
//! the CPUs with VNNI the 16-bit products cost no more instructions than 8-bit ones
//! needed with AVX2.
//!
//! The weights are kept in panels of 16 outputs, each pair of inputs' 16 x 2 weights
//! side by side, so that a kernel multiplies one activation pair (broadcast) by 16
//! outputs at once and accumulates each output in its own lane: no horizontal sums, and
//! the scales and bias go on 16 outputs at a time. The activations are laid out to
//! match: tiles of [`TILE_ROWS`] rows, each input pair's values of the tile's rows side
//! by side, so that a kernel reads one stream of activations rather than one per row
//! (on 2 Intel Xeon cores, one thread, the 345M window's matmul shapes went from
//! 220-270 to 285-295 GOP/s with 12 rows a tile this way rather than 8 read row by row,
//! 2026-11-30). The products run on the best of
//! three kernels the CPU has, all giving the same integers: AVX-512 VNNI (`vpdpwssd`,
//! 32 products of i16 pairs summed into i32 per instruction), AVX2 (`vpmaddwd`, 16 at a
//! time), or a portable loop. Weights are widened from int8 as they are loaded. A
//! product is at most 2047 x 127 and K is cut into pieces of [`CHUNK`], so no i32 sum
//! can overflow; the pieces add up in i64.

use burn::tensor::Tensor;
use rayon::prelude::*;

use super::math::{Lanes, simd_fn};
use crate::checkpoint::int8::{quantize_row, quantize_symmetric};

/// Rows are padded with zeros to a multiple of this, the AVX-512 step.
const STEP: usize = 32;

/// The largest activation magnitude: 12 bits.
const ACT_MAX: f32 = 2047.0;

/// Inputs summed in i32 before moving to i64: 8192 x 2047 x 127 < 2^31.
const CHUNK: usize = 8192;

/// Outputs per panel: one AVX-512 register of i32 sums.
const PANEL: usize = 16;

/// Activation rows a kernel call takes: with two panels, 24 AVX-512 registers of sums,
/// two of weights and one of the broadcast pair (of 32).
const TILE_ROWS: usize = 12;

/// A weight matrix `[out, in]` in int8, one scale per output.
#[derive(Clone, Debug)]
pub struct QuantizedMatrix {
    pub outputs: usize,
    pub inputs: usize,
    /// Panels of [`PANEL`] outputs (the last padded with zero weights), each `k` inputs
    /// deep: input pair `t`'s weights for the panel's outputs at `32 t` as `w[o][2t],
    /// w[o][2t+1]` for o in order. See [`QuantizedMatrix::row_positions`].
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
        let mut m = Self {
            outputs,
            inputs,
            values: vec![0i8; outputs.div_ceil(PANEL) * PANEL * k],
            scales: Vec::with_capacity(outputs),
        };
        let mut q = vec![0i8; inputs];
        for o in 0..outputs {
            m.scales.push(quantize_row(&row(o), &mut q));
            for (at, &v) in Self::row_positions(inputs, o).zip(&q) {
                m.values[at] = v;
            }
        }
        m
    }

    /// Where output `o`'s weights for inputs 0, 1, ... `inputs - 1` are kept in
    /// `values`: every other pair of its panel, from its lane on.
    fn row_positions(inputs: usize, o: usize) -> impl Iterator<Item = usize> {
        let k = padded(inputs);
        let (panel, lane) = ((o / PANEL) * k * PANEL, (o % PANEL) * 2);
        (0..inputs).map(move |i| panel + (i & !1) * PANEL + lane + (i & 1))
    }

    /// Rows `ids` back in f32, one after another (an embedding lookup).
    pub fn rows(&self, ids: &[i64]) -> Vec<f32> {
        let mut out = Vec::with_capacity(ids.len() * self.inputs);
        for &id in ids {
            let r = id as usize;
            let s = self.scales[r];
            out.extend(Self::row_positions(self.inputs, r).map(|at| self.values[at] as f32 * s));
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
        self.matmul_with(Kernel::detect(), x, rows, bias)
    }

    /// [`QuantizedMatrix::matmul`] on the kernel given (one the CPU has).
    fn matmul_with(
        &self,
        kernel: Kernel,
        x: &[f32],
        rows: usize,
        bias: Option<&[f32]>,
    ) -> Vec<f32> {
        let (k, n) = (padded(self.inputs), self.outputs);
        assert_eq!(x.len(), rows * self.inputs);
        let (xp, xs) = pack_activations(x, rows, self.inputs, k);
        let zeros;
        let bias = match bias {
            Some(b) => b,
            None => {
                zeros = vec![0.0f32; n];
                &zeros
            }
        };
        // Every element is written below exactly once, so the output is not zeroed
        // first (for MiniLM's batch of 32 x 256 tokens that is 50 MB a matmul).
        let mut out: Vec<f32> = Vec::with_capacity(rows * n);
        let panels = n.div_ceil(PANEL);
        // A tile's activations: `TILE_ROWS` values (i32 pairs) per input pair.
        let tile_len = k / 2 * TILE_ROWS;
        // Each job takes a block of tiles (their activations in L2 while it runs)
        // against a group of panels (each pair's weights stay in L2 across the rows).
        let block = (262_144 / (2 * k) / TILE_ROWS).clamp(1, 256 / TILE_ROWS);
        // Panels go in pairs, so a group is an even number of them.
        let group = 8;
        let tiles = rows.div_ceil(TILE_ROWS);
        let (blocks, groups) = (tiles.div_ceil(block), panels.div_ceil(group));
        let jobs = Jobs {
            m: self,
            xp: &xp,
            xs: &xs,
            bias,
            dst: super::Shared(out.as_mut_ptr()),
            kernel,
            rows,
            k,
            panels,
            tiles,
            tile_len,
            block,
            group,
        };
        // Rayon hands each thread a run of neighbouring jobs, so their order says what
        // a thread keeps in L2 and what it reads again: group by group, all the weights
        // are read once and the activations once per group; block by block, the other
        // way round. The order that reads fewer bytes: by group for the 345M window's
        // FFN-out (4 MB of weights x 16 blocks against 3 MB of activations x 8 groups),
        // by block for its other matmuls and for batches of many windows.
        let (weight_bytes, activation_bytes) = (self.values.len(), size_of_val(xp.as_slice()));
        let by_group = weight_bytes * blocks > activation_bytes * groups;
        (0..blocks * groups).into_par_iter().for_each(|job| {
            let (g, b) = if by_group {
                (job / blocks, job % blocks)
            } else {
                (job % groups, job / groups)
            };
            jobs.run(g, b);
        });
        // SAFETY: the jobs wrote all rows x n elements (each row of each panel).
        unsafe { out.set_len(rows * n) };
        out
    }
}

/// One matmul's jobs: what [`QuantizedMatrix::matmul`] hands each of them.
struct Jobs<'a> {
    m: &'a QuantizedMatrix,
    xp: &'a [i32],
    xs: &'a [f32],
    bias: &'a [f32],
    dst: super::Shared,
    kernel: Kernel,
    rows: usize,
    k: usize,
    panels: usize,
    tiles: usize,
    tile_len: usize,
    block: usize,
    group: usize,
}

impl Jobs<'_> {
    /// Job `(g, b)`: the panels of group `g` against the tiles of block `b`, in the
    /// build of [`Jobs::body`] for the kernel's instructions. The kernel call is inlined
    /// into it, and the sums' conversion, scaling and bias (a tenth of the matmul's time
    /// when they were compiled for SSE2: `perf`, 2026-11-30) run 16 lanes wide too. The
    /// builds give the same bits: the same operations in the same order, never fused.
    fn run(&self, g: usize, b: usize) {
        match self.kernel {
            Kernel::Portable => self.body(g, b),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the kernel was chosen where the CPU has these features.
            Kernel::Avx2 => unsafe { self.avx2(g, b) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Kernel::Avx512Vnni => unsafe { self.avx512(g, b) },
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2(&self, g: usize, b: usize) {
        self.body(g, b)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn avx512(&self, g: usize, b: usize) {
        self.body(g, b)
    }

    #[inline(always)]
    fn body(&self, g: usize, b: usize) {
        let (m, xp, xs, bias, dst, kernel) =
            (self.m, self.xp, self.xs, self.bias, self.dst, self.kernel);
        let (rows, k, n, panels, tiles) = (self.rows, self.k, m.outputs, self.panels, self.tiles);
        let (tile_len, block, group) = (self.tile_len, self.block, self.group);
        let p_end = ((g + 1) * group).min(panels);
        for p in (g * group..p_end).step_by(2) {
            // Past the last panel, repeat it: computed, never written.
            let ps = [p, (p + 1).min(panels - 1)];
            for tile in b * block..((b + 1) * block).min(tiles) {
                let x = &xp[tile * tile_len..(tile + 1) * tile_len];
                let part = |from: usize, to: usize| {
                    let w = ps.map(|p| &m.values[(p * k + from) * PANEL..(p * k + to) * PANEL]);
                    kernel.tile(&x[from / 2 * TILE_ROWS..to / 2 * TILE_ROWS], w)
                };
                // One piece of K needs no i64 (all of the project's models).
                let d: [[f32; PANEL]; 2 * TILE_ROWS] = if k <= CHUNK {
                    part(0, k).map(|d| d.map(|v| v as f32))
                } else {
                    let mut d = [[0i64; PANEL]; 2 * TILE_ROWS];
                    for from in (0..k).step_by(CHUNK) {
                        for (d, part) in d.iter_mut().zip(part(from, (from + CHUNK).min(k))) {
                            for (d, part) in d.iter_mut().zip(part) {
                                *d += i64::from(part);
                            }
                        }
                    }
                    d.map(|d| d.map(|v| v as f32))
                };
                // The tile's rows past the last (zeros) are computed, never written.
                for i in 0..TILE_ROWS.min(rows - tile * TILE_ROWS) {
                    let row = tile * TILE_ROWS + i;
                    for (h, &panel) in ps.iter().enumerate() {
                        if h > 0 && panel == ps[0] {
                            continue;
                        }
                        let o = panel * PANEL;
                        let width = PANEL.min(n - o);
                        let (scales, bias) = (&m.scales[o..o + width], &bias[o..o + width]);
                        let (x_scale, dst) = (xs[row], dst.at(row * n + o));
                        for (j, ((d, s), b)) in
                            d[i * 2 + h].iter().zip(scales).zip(bias).enumerate()
                        {
                            // SAFETY: row < rows and o + j < n: inside `out`'s
                            // capacity, and only this job writes its rows of its
                            // panels. Written through the pointer, never read: the
                            // memory is not initialised before.
                            unsafe { dst.add(j).write(d * (x_scale * s) + b) };
                        }
                    }
                }
            }
        }
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
    let bias = bias.map(|b| super::bias_values(b, w.outputs));
    let x = super::into_flex(x);
    let out = w.matmul(&super::row_major(&x), batch * seq, bias.as_deref());
    Ok(super::from_flex(out, [batch, seq, w.outputs]))
}

/// The rows of `x` (`rows x inputs`) quantised to 12 bits and laid out for the kernels:
/// tile `t`'s input pair `i` of its row `r` at `(t * k / 2 + i) * TILE_ROWS + r`, both
/// values in one i32 (the first in the low half, as a little-endian load of the two
/// i16s reads them), inputs past `inputs` and rows past `rows` zero. With the rows'
/// scales (0 past `rows`).
fn pack_activations(x: &[f32], rows: usize, inputs: usize, k: usize) -> (Vec<i32>, Vec<f32>) {
    let tiles = rows.div_ceil(TILE_ROWS);
    let mut packed = vec![0i32; tiles * k / 2 * TILE_ROWS];
    let mut scales = vec![0.0f32; tiles * TILE_ROWS];
    packed
        .par_chunks_mut(k / 2 * TILE_ROWS)
        .zip(scales.par_chunks_mut(TILE_ROWS))
        .enumerate()
        // A row buffer per rayon split, not per tile: `q[inputs..]` is never written,
        // so it stays zero.
        .for_each_init(
            || vec![0i16; k],
            |q, (tile, (packed, scales))| {
                for (r, scale) in scales.iter_mut().enumerate() {
                    let row = tile * TILE_ROWS + r;
                    if row >= rows {
                        break;
                    }
                    *scale = quantize_activations(
                        &x[row * inputs..(row + 1) * inputs],
                        &mut q[..inputs],
                    );
                    for (i, pair) in q.chunks_exact(2).enumerate() {
                        packed[i * TILE_ROWS + r] = pair_of(pair[0], pair[1]);
                    }
                }
            },
        );
    (packed, scales)
}

/// Two i16s in one i32, the first in the low half.
fn pair_of(first: i16, second: i16) -> i32 {
    (u32::from(first as u16) | (u32::from(second as u16) << 16)) as i32
}

simd_fn! {
    /// Symmetric 12-bit quantisation of one row of activations into `out`: returns the
    /// scale that multiplies the integers back (0 for a row of zeros, NaN for a row that
    /// is not finite, which then gives NaN outputs rather than numbers).
    fn quantize_activations / quantize_activations_with(row: &[f32], out: &mut [i16]) -> f32 {
        quantize_symmetric(row, out, ACT_MAX, |v| v as i16)
    }
}

/// The name of the int8 kernel this process runs (`avx512-vnni`, `avx2` or
/// `portable`), for `megaqa bench`.
pub fn kernel_name() -> &'static str {
    match Kernel::detect() {
        Kernel::Portable => "portable",
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => "avx2",
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512Vnni => "avx512-vnni",
    }
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
    /// The best kernel the CPU has, or a slower one it also has that
    /// `MEGAQA_INT8_KERNEL=avx2|portable` asks for (to time what a CPU without AVX-512
    /// or AVX2 would get; the integers are the same).
    fn detect() -> Self {
        static CHOSEN: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *CHOSEN.get_or_init(|| {
            let best = Self::best();
            match std::env::var("MEGAQA_INT8_KERNEL").as_deref() {
                Ok("portable") => Self::Portable,
                #[cfg(target_arch = "x86_64")]
                Ok("avx2") if best != Self::Portable => Self::Avx2,
                _ => best,
            }
        })
    }

    fn best() -> Self {
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
            if Self::best() == Self::Avx512Vnni {
                all.push(Self::Avx512Vnni);
            }
        }
        all
    }

    /// A tile's `TILE_ROWS` activation rows (packed: each input pair's `TILE_ROWS`
    /// pairs side by side, see [`pack_activations`]) by two panels of weights: for row
    /// `r` and panel `h`, `[r * 2 + h]` holds the panel's 16 inner products. The rows
    /// hold a multiple of [`STEP`] inputs and at most [`CHUNK`], with values within
    /// +-2047; each panel slice holds that many inputs' weights (16 bytes per input),
    /// within +-127.
    fn tile(self, x: &[i32], w: [&[i8]; 2]) -> [[i32; PANEL]; 2 * TILE_ROWS] {
        let inputs = x.len() / TILE_ROWS * 2;
        debug_assert!(x.len().is_multiple_of(TILE_ROWS));
        debug_assert!(inputs.is_multiple_of(STEP) && inputs <= CHUNK);
        debug_assert!(w.iter().all(|w| w.len() == inputs * PANEL));
        match self {
            Self::Portable => portable_tile(x, w),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2 was detected; lengths as above.
            Self::Avx2 => unsafe { avx2::tile(x, w) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512 F, BW and VNNI were detected; lengths as above.
            Self::Avx512Vnni => unsafe { avx512::tile(x, w) },
        }
    }
}

fn portable_tile(x: &[i32], w: [&[i8]; 2]) -> [[i32; PANEL]; 2 * TILE_ROWS] {
    std::array::from_fn(|rh| {
        let (r, w) = (rh / 2, w[rh % 2]);
        std::array::from_fn(|j| {
            x.chunks_exact(TILE_ROWS)
                .zip(w.chunks_exact(2 * PANEL))
                .map(|(pairs, b)| {
                    let (first, second) = (pairs[r] as i16, (pairs[r] >> 16) as i16);
                    i32::from(first) * i32::from(b[2 * j])
                        + i32::from(second) * i32::from(b[2 * j + 1])
                })
                .sum()
        })
    })
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{PANEL, TILE_ROWS};
    use std::arch::x86_64::*;

    /// Four rows at a time by one panel (two registers of 8 outputs), an input pair a
    /// step: the pair is broadcast and `vpmaddwd` adds its two products per output.
    #[target_feature(enable = "avx2")]
    pub unsafe fn tile(x: &[i32], w: [&[i8]; 2]) -> [[i32; PANEL]; 2 * TILE_ROWS] {
        let mut out = [[0i32; PANEL]; 2 * TILE_ROWS];
        for (h, w) in w.iter().enumerate() {
            for r0 in (0..TILE_ROWS).step_by(4) {
                let mut acc = [_mm256_setzero_si256(); 8];
                for (t, pairs) in x.chunks_exact(TILE_ROWS).enumerate() {
                    // SAFETY: 32 t + 32 <= w.len() (the caller's lengths).
                    let (lo, hi) = unsafe {
                        let p = w.as_ptr().add(32 * t);
                        (
                            _mm256_cvtepi8_epi16(_mm_loadu_si128(p.cast())),
                            _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(16).cast())),
                        )
                    };
                    for r in 0..4 {
                        let a = _mm256_set1_epi32(pairs[r0 + r]);
                        acc[2 * r] = _mm256_add_epi32(acc[2 * r], _mm256_madd_epi16(a, lo));
                        acc[2 * r + 1] = _mm256_add_epi32(acc[2 * r + 1], _mm256_madd_epi16(a, hi));
                    }
                }
                for r in 0..4 {
                    let dst = &mut out[(r0 + r) * 2 + h];
                    unsafe {
                        _mm256_storeu_si256(dst.as_mut_ptr().cast(), acc[2 * r]);
                        _mm256_storeu_si256(dst.as_mut_ptr().add(8).cast(), acc[2 * r + 1]);
                    }
                }
            }
        }
        out
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{PANEL, TILE_ROWS};
    use std::arch::x86_64::*;

    /// All the tile's rows by two panels, an input pair a step: each panel's 32 weight
    /// bytes are widened to i16 once, and `vpdpwssd` adds the broadcast pair's two
    /// products to each of the 16 outputs.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn tile(x: &[i32], w: [&[i8]; 2]) -> [[i32; PANEL]; 2 * TILE_ROWS] {
        let mut acc = [_mm512_setzero_si512(); 2 * TILE_ROWS];
        for (t, pairs) in x.chunks_exact(TILE_ROWS).enumerate() {
            // SAFETY: 32 t + 32 <= w.len() (the caller's lengths).
            let b = w.map(|w| unsafe {
                _mm512_cvtepi8_epi16(_mm256_loadu_si256(w.as_ptr().add(32 * t).cast()))
            });
            for (r, &pair) in pairs.iter().enumerate() {
                let a = _mm512_set1_epi32(pair);
                acc[2 * r] = _mm512_dpwssd_epi32(acc[2 * r], a, b[0]);
                acc[2 * r + 1] = _mm512_dpwssd_epi32(acc[2 * r + 1], a, b[1]);
            }
        }
        let mut out = [[0i32; PANEL]; 2 * TILE_ROWS];
        for (o, a) in out.iter_mut().zip(acc) {
            unsafe { _mm512_storeu_si512(o.as_mut_ptr().cast(), a) };
        }
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

    /// Odd sizes: padding, a last row and outputs without a full tile; then several
    /// panels of outputs, several blocks of rows, and more inputs than one i32 chunk.
    const ODD_SIZES: [(usize, usize, usize); 4] =
        [(7, 75, 13), (9, 4100, 13), (131, 40, 6), (3, 8300, 5)];

    #[test]
    fn int8_matmul_is_close_to_f32() {
        for (rows, inputs, outputs) in ODD_SIZES {
            check(rows, inputs, outputs);
        }
    }

    /// Each kernel's whole matmul (its inner products, and the scaling and bias compiled
    /// for its instructions) gives the portable one's floats to the bit.
    #[test]
    fn every_kernel_gives_the_same_matmul() {
        for (rows, inputs, outputs) in ODD_SIZES {
            let q =
                QuantizedMatrix::from_linear(&pseudo_random(inputs * outputs, 5), inputs, outputs);
            let (x, bias) = (pseudo_random(rows * inputs, 6), pseudo_random(outputs, 7));
            let bits = |kernel| -> Vec<u32> {
                let y = q.matmul_with(kernel, &x, rows, Some(&bias));
                y.into_iter().map(f32::to_bits).collect()
            };
            let portable = bits(Kernel::Portable);
            for kernel in Kernel::available() {
                assert_eq!(
                    bits(kernel),
                    portable,
                    "{kernel:?}, {rows}x{inputs}x{outputs}"
                );
            }
        }
    }

    /// Integer rows with a +-127 in each quantise to themselves (scale 1), so every
    /// kernel's sums can be held to plain dot products, with the extremes (+-2047 by
    /// +-127) side by side.
    #[test]
    fn every_kernel_gives_the_exact_inner_products() {
        let (inputs, outputs) = (192, 2 * PANEL);
        // `rows` rows of values in [-m, m], each holding -m and m.
        let pattern = |rows: usize, m: i32, every: usize, a: usize, b: usize| -> Vec<Vec<i32>> {
            (0..rows)
                .map(|r| {
                    (0..inputs)
                        .map(|i| match (i + r) % every {
                            0 => -m,
                            1 => m,
                            _ => ((i * a + r * b) % (2 * m as usize + 1)) as i32 - m,
                        })
                        .collect()
                })
                .collect()
        };
        let w: Vec<Vec<i8>> = pattern(outputs, 127, 17, 29, 7)
            .into_iter()
            .map(|r| r.into_iter().map(|v| v as i8).collect())
            .collect();
        let m = QuantizedMatrix::from_rows(inputs, outputs, |o| {
            w[o].iter().map(|&v| f32::from(v)).collect()
        });
        assert!(m.scales.iter().all(|&s| s == 1.0));
        let x: Vec<Vec<i16>> = pattern(TILE_ROWS, 2047, 13, 53, 101)
            .into_iter()
            .map(|r| r.into_iter().map(|v| v as i16).collect())
            .collect();
        let dot = |x: &[i16], w: &[i8]| -> i32 {
            x.iter()
                .zip(w)
                .map(|(&x, &w)| i32::from(x) * i32::from(w))
                .sum()
        };
        let want: [[i32; PANEL]; 2 * TILE_ROWS] = std::array::from_fn(|rh| {
            std::array::from_fn(|j| dot(&x[rh / 2], &w[(rh % 2) * PANEL + j]))
        });
        let k = padded(inputs);
        let packed: Vec<i32> = (0..k / 2)
            .flat_map(|i| {
                let x = &x;
                (0..TILE_ROWS).map(move |r| {
                    let at = |i: usize| x[r].get(i).copied().unwrap_or(0);
                    pair_of(at(2 * i), at(2 * i + 1))
                })
            })
            .collect();
        let panels = [&m.values[..k * PANEL], &m.values[k * PANEL..]];
        for kernel in Kernel::available() {
            assert_eq!(kernel.tile(&packed, panels), want, "{kernel:?}");
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            assert!(
                Kernel::available().len() > 1,
                "this CPU's fast kernel was not tested"
            );
        }
    }

    /// The quantiser compiled for each instruction set this CPU has gives the baseline
    /// build's integers and scale: odd lengths, exact halves after scaling, a row of
    /// zeros, a NaN and an infinity.
    #[test]
    fn every_activation_quantiser_gives_the_same_integers() {
        let mut rows: Vec<Vec<f32>> = [1usize, 15, 16, 17, 75, 384, 1031]
            .iter()
            .enumerate()
            .map(|(seed, &n)| {
                pseudo_random(n, seed as u32 + 10)
                    .iter()
                    .map(|v| v * 7.5)
                    .collect()
            })
            .collect();
        // Largest 2047: then k / 2 lands on k + 0.5 (ties) once scaled.
        rows.push(
            (0..40)
                .map(|i| if i == 0 { 2047.0 } else { i as f32 - 20.5 })
                .collect(),
        );
        rows.push(vec![0.0; 33]);
        rows.push(vec![1.0, f32::NAN, 2.0]);
        rows.push(vec![1.0, 2.0, f32::NEG_INFINITY, 0.5]);
        for row in &rows {
            let mut want = vec![7i16; row.len()];
            let scale = quantize_activations_with(Lanes::Baseline, row, &mut want);
            for lanes in [Lanes::Avx2, Lanes::Auto] {
                let mut got = vec![7i16; row.len()];
                let got_scale = quantize_activations_with(lanes, row, &mut got);
                assert_eq!(got, want, "{lanes:?}, {} values", row.len());
                assert_eq!(
                    got_scale.to_bits(),
                    scale.to_bits(),
                    "{lanes:?}, {} values",
                    row.len()
                );
            }
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
