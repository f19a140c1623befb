//! Dynamic loss scaling for f16 training, as PyTorch's GradScaler: the loss is multiplied
//! by the scale before the backward pass; a step whose gradients overflow is skipped and
//! the scale halved; after `growth` clean steps in a row it doubles. Both are exact, so a
//! scale that starts as a power of two stays one.

use crate::error::{Error, Result};

/// The loss scale below which a run stops: every step overflowed on the way down, so the
/// gradients are not finite at any scale (divergence, not f16 range).
pub const MIN_LOSS_SCALE: f32 = 1.0 / 16_777_216.0;

/// The schedule's state: the scale the next step runs at, and the clean steps since it
/// last changed (what a checkpoint records).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossScaler {
    scale: f32,
    good_steps: u32,
    growth: u32,
}

impl LossScaler {
    /// A schedule from `scale`, doubling after `growth` clean steps.
    pub fn new(scale: f32, growth: u32) -> Result<LossScaler> {
        if !in_range(scale) || growth == 0 {
            return Err(Error::InvalidOption {
                option: "loss scale".into(),
                message: format!(
                    "a loss scale of {scale} growing every {growth} steps: the scale must be \
                     finite and at least 2^-24, the interval at least 1"
                ),
            });
        }
        Ok(LossScaler {
            scale,
            good_steps: 0,
            growth,
        })
    }

    /// The scale the next step runs at.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// (scale, clean steps since it last changed), a checkpoint's record.
    pub fn state(&self) -> (f32, u32) {
        (self.scale, self.good_steps)
    }

    /// Restores a checkpoint's record.
    pub fn restore(&mut self, scale: f32, good_steps: u32) -> Result<()> {
        Self::check_recorded(scale)?;
        self.scale = scale;
        self.good_steps = good_steps;
        Ok(())
    }

    /// A checkpoint's recorded scale refused where no schedule could run at it (checked
    /// also where the run has no loss scaling).
    pub fn check_recorded(scale: f32) -> Result<()> {
        match in_range(scale) {
            true => Ok(()),
            false => Err(Error::Shape(format!(
                "a loss scale of {scale} is out of range"
            ))),
        }
    }

    /// After a step: halve on an overflow (`skipped`), double after `growth` clean steps;
    /// an error once the scale falls below [`MIN_LOSS_SCALE`].
    pub fn update(&mut self, skipped: bool) -> Result<()> {
        if skipped {
            self.good_steps = 0;
            self.scale *= 0.5;
            if self.scale < MIN_LOSS_SCALE {
                return Err(Error::Diverged(format!(
                    "every step overflowed down to a loss scale of {}: the gradients are \
                     not finite at any scale",
                    self.scale
                )));
            }
            return Ok(());
        }
        self.good_steps += 1;
        if self.good_steps >= self.growth {
            self.good_steps = 0;
            // At f32's largest power of two it stays.
            if (self.scale * 2.0).is_finite() {
                self.scale *= 2.0;
            }
        }
        Ok(())
    }
}

/// Whether a schedule can run at `scale`: finite and at least [`MIN_LOSS_SCALE`].
fn in_range(scale: f32) -> bool {
    scale.is_finite() && scale >= MIN_LOSS_SCALE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_on_an_overflow_and_doubles_after_the_growth_interval() {
        let mut s = LossScaler::new(65536.0, 3).unwrap();
        s.update(true).unwrap();
        assert_eq!(s.state(), (32768.0, 0));
        s.update(false).unwrap();
        s.update(false).unwrap();
        assert_eq!(s.state(), (32768.0, 2));
        // An overflow restarts the count.
        s.update(true).unwrap();
        assert_eq!(s.state(), (16384.0, 0));
        for _ in 0..3 {
            s.update(false).unwrap();
        }
        assert_eq!(s.state(), (32768.0, 0));
    }

    #[test]
    fn a_restored_schedule_continues_as_the_uninterrupted_one() {
        let steps = [
            false, true, false, false, false, true, false, false, false, false,
        ];
        let mut whole = LossScaler::new(1024.0, 2).unwrap();
        steps.iter().for_each(|&k| whole.update(k).unwrap());
        let mut first = LossScaler::new(1024.0, 2).unwrap();
        steps[..4].iter().for_each(|&k| first.update(k).unwrap());
        let (scale, good) = first.state();
        let mut resumed = LossScaler::new(1024.0, 2).unwrap();
        resumed.restore(scale, good).unwrap();
        steps[4..].iter().for_each(|&k| resumed.update(k).unwrap());
        assert_eq!(resumed, whole);
    }

    #[test]
    fn stops_below_the_smallest_scale_and_stays_finite_at_the_largest() {
        let mut s = LossScaler::new(MIN_LOSS_SCALE * 2.0, 1).unwrap();
        s.update(true).unwrap();
        assert_eq!(s.scale(), MIN_LOSS_SCALE);
        assert!(matches!(s.update(true), Err(Error::Diverged(_))));
        // 2^127 is f32's largest power of two: doubled it would be infinite.
        let mut s = LossScaler::new(2f32.powi(127), 1).unwrap();
        s.update(false).unwrap();
        assert_eq!(s.scale(), 2f32.powi(127));
    }

    #[test]
    fn refuses_scales_it_cannot_run_at() {
        assert!(LossScaler::new(f32::INFINITY, 1).is_err());
        assert!(LossScaler::new(0.0, 1).is_err());
        assert!(LossScaler::new(1.0, 0).is_err());
        let mut s = LossScaler::new(1.0, 1).unwrap();
        assert!(s.restore(f32::NAN, 0).is_err());
        assert_eq!(s.state(), (1.0, 0));
    }
}
