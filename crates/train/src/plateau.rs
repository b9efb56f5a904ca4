//! ReduceLROnPlateau (Keras, PyTorch): multiply the learning rate by `factor` when the monitored
//! validation value (lower is better) has not improved for `patience` epochs.

/// The schedule's settings and state.
#[derive(Debug, Clone, PartialEq)]
pub struct ReduceLrOnPlateau {
    /// Factor applied to the learning rate on a plateau (0 = no schedule).
    pub factor: f64,
    /// Epochs without improvement before a cut.
    pub patience: usize,
    /// Smallest decrease that counts as an improvement.
    pub min_delta: f64,
    /// The learning rate is never cut below this.
    pub min_lr: f64,
    /// Best value so far (infinite before the first epoch).
    pub best: f64,
    /// Epochs since the last improvement or cut.
    pub wait: usize,
}

impl ReduceLrOnPlateau {
    /// A schedule that has seen no epoch yet.
    pub fn new(factor: f64, patience: usize, min_delta: f64, min_lr: f64) -> Self {
        ReduceLrOnPlateau { factor, patience, min_delta, min_lr, best: f64::INFINITY, wait: 0 }
    }

    /// Records this epoch's `value` and returns the learning rate for the next epoch, given the
    /// current `lr`; after a cut the wait starts again.
    pub fn update(&mut self, value: f64, lr: f64) -> f64 {
        if self.factor.is_nan() || self.factor <= 0.0 {
            return lr;
        }
        if value < self.best - self.min_delta {
            self.best = value;
            self.wait = 0;
            return lr;
        }
        self.wait += 1;
        if self.wait < self.patience {
            return lr;
        }
        self.wait = 0;
        (lr * self.factor).max(self.min_lr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_after_patience_epochs_without_improvement_down_to_the_floor() {
        let mut p = ReduceLrOnPlateau::new(0.5, 2, 0.0, 0.2);
        let mut lr = 1.0;
        let mut lrs = Vec::new();
        for value in [1.0, 1.0, 1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1] {
            lr = p.update(value, lr);
            lrs.push(lr);
        }
        assert_eq!(lrs, [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2]);
    }

    #[test]
    fn factor_zero_is_off() {
        let mut p = ReduceLrOnPlateau::new(0.0, 1, 0.0, 0.0);
        assert!((0..10).all(|_| p.update(1.0, 0.1) == 0.1));
    }
}
