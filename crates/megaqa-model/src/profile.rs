//! Where a forward pass spends its time, by kind of operation (`megaqa bench
//! --profile`). The network wraps each of its steps in [`step`]; outside a profile that
//! is only the call. Inside one, the device is synchronised after each step so that
//! work a GPU queued is charged to the step that queued it. That makes a profiled pass
//! slower than a plain one on GPUs: the shares say where time goes, the plain
//! benchmark says how fast it is.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use burn::tensor::Device;

/// The kinds of step one forward pass is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// Word + position + token-type lookups and their sum (and, post-LN, their LayerNorm).
    Embeddings,
    LayerNorm,
    /// The fused Q/K/V projection (matmul + bias).
    QkvProjection,
    /// Scores, mask, softmax and the weighted sum of values, all heads.
    Attention,
    /// The attention output projection (matmul + bias).
    AttentionOutput,
    /// The MLP's first matmul (`hidden -> intermediate`).
    FfnIn,
    /// The MLP's activation (with its bias where the two are fused).
    Activation,
    /// The MLP's second matmul (`intermediate -> hidden`) + bias.
    FfnOut,
    /// The residual adds.
    Residual,
    /// The span head `Linear(hidden, 2)` and the split into start and end.
    SpanHead,
}

impl Op {
    pub const ALL: [Op; 10] = [
        Op::Embeddings,
        Op::LayerNorm,
        Op::QkvProjection,
        Op::Attention,
        Op::AttentionOutput,
        Op::FfnIn,
        Op::Activation,
        Op::FfnOut,
        Op::Residual,
        Op::SpanHead,
    ];

    /// A short name for tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Op::Embeddings => "embeddings",
            Op::LayerNorm => "layer_norm",
            Op::QkvProjection => "qkv_projection",
            Op::Attention => "attention",
            Op::AttentionOutput => "attention_output",
            Op::FfnIn => "ffn_in",
            Op::Activation => "activation",
            Op::FfnOut => "ffn_out",
            Op::Residual => "residual_add",
            Op::SpanHead => "span_head",
        }
    }
}

/// Time and number of calls per kind of step, summed over the profiled passes.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    pub ops: Vec<(Op, Duration, usize)>,
}

impl Profile {
    fn add(&mut self, op: Op, elapsed: Duration) {
        match self.ops.iter_mut().find(|(o, _, _)| *o == op) {
            Some((_, t, n)) => {
                *t += elapsed;
                *n += 1;
            }
            None => self.ops.push((op, elapsed, 1)),
        }
    }

    /// The sum over all steps.
    pub fn total(&self) -> Duration {
        self.ops.iter().map(|(_, t, _)| *t).sum()
    }

    /// Largest first.
    pub fn sorted(&self) -> Vec<(Op, Duration, usize)> {
        let mut ops = self.ops.clone();
        ops.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ops
    }
}

struct Recorder {
    device: Device,
    profile: Profile,
}

thread_local! {
    static ACTIVE: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

/// Runs `f` (forward passes on `device`, on this thread) and returns what it returned
/// with the time each kind of step took.
pub fn profile<T>(device: &Device, f: impl FnOnce() -> T) -> (T, Profile) {
    // Whatever was queued before belongs to nobody's step.
    let _ = device.sync();
    ACTIVE.with(|a| {
        *a.borrow_mut() = Some(Recorder {
            device: device.clone(),
            profile: Profile::default(),
        })
    });
    let out = f();
    let recorded = ACTIVE.with(|a| a.borrow_mut().take());
    (out, recorded.map(|r| r.profile).unwrap_or_default())
}

/// One step of the forward pass: `f()`, timed when a profile is being taken.
pub(crate) fn step<T>(op: Op, f: impl FnOnce() -> T) -> T {
    let device = ACTIVE.with(|a| a.borrow().as_ref().map(|r| r.device.clone()));
    let Some(device) = device else {
        return f();
    };
    let start = Instant::now();
    let out = f();
    let _ = device.sync();
    let elapsed = start.elapsed();
    ACTIVE.with(|a| {
        if let Some(r) = a.borrow_mut().as_mut() {
            r.profile.add(op, elapsed);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_recorded_only_inside_a_profile() {
        let device = Device::flex();
        assert_eq!(step(Op::Residual, || 2 + 2), 4);
        let (out, p) = profile(&device, || {
            step(Op::Residual, || ());
            step(Op::Residual, || ());
            step(Op::Attention, || 7)
        });
        assert_eq!(out, 7);
        let calls: Vec<_> = p.ops.iter().map(|(o, _, n)| (*o, *n)).collect();
        assert_eq!(calls, vec![(Op::Residual, 2), (Op::Attention, 1)]);
        // The recorder is gone afterwards.
        let (_, again) = profile(&device, || ());
        assert!(again.ops.is_empty());
        step(Op::LayerNorm, || ());
        assert!(again.ops.is_empty());
    }
}
