//! Dynamic loss scaling for 16-bit training: the loss is multiplied by the scale
//! before backward so that small gradients survive f16; an update whose gradients
//! overflow is skipped and the scale halved; after 2000 good updates it doubles.

use super::Precision;

/// The loss scale and the good updates since it last changed (saved with the run).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossScale {
    pub scale: f64,
    pub good_steps: u64,
}

impl LossScale {
    /// Good updates after which the scale doubles.
    const GROW_AFTER: u64 = 2000;

    /// 1 in f32 (no scaling), 2^16 in 16-bit precisions.
    pub fn new(p: Precision) -> Self {
        let scale = match p {
            Precision::F32 => 1.0,
            Precision::F16 | Precision::Mixed => 65536.0,
        };
        Self {
            scale,
            good_steps: 0,
        }
    }

    /// The gradients overflowed: the update is skipped and the scale halved.
    pub fn overflowed(&mut self) {
        self.scale = (self.scale / 2.0).max(1.0);
        self.good_steps = 0;
    }

    /// An update was applied.
    pub fn applied(&mut self, p: Precision) {
        if p == Precision::F32 {
            return;
        }
        self.good_steps += 1;
        if self.good_steps >= Self::GROW_AFTER {
            self.scale *= 2.0;
            self.good_steps = 0;
        }
    }
}
