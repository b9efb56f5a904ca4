//! Early stopping on a monitored validation value (lower is better), as Keras's `EarlyStopping`
//! and burn-train's `early_stopping.rs`.

/// What [`EarlyStopping::update`] decided about an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The value improved on the best by more than `min_delta`: this epoch is the new best.
    Improved,
    /// No improvement, but fewer than `patience` epochs without one.
    Waiting,
    /// `patience` epochs without improvement: stop training.
    Stop,
}

/// Tracks the best monitored value and how long it has not improved.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    /// Stop after this many epochs without improvement (0 = never stop).
    pub patience: usize,
    /// Smallest decrease that counts as an improvement.
    pub min_delta: f64,
    /// Best value so far (infinite before the first epoch).
    pub best: f64,
    /// Epoch of the best value (0 before the first improvement).
    pub best_epoch: usize,
    /// Epochs since the last improvement.
    pub wait: usize,
}

impl EarlyStopping {
    /// A tracker that has seen no epoch yet.
    pub fn new(patience: usize, min_delta: f64) -> Self {
        EarlyStopping { patience, min_delta, best: f64::INFINITY, best_epoch: 0, wait: 0 }
    }

    /// Records `value` of `epoch` and says whether it improved, or whether training should stop.
    pub fn update(&mut self, epoch: usize, value: f64) -> Verdict {
        if value < self.best - self.min_delta {
            self.best = value;
            self.best_epoch = epoch;
            self.wait = 0;
            Verdict::Improved
        } else {
            self.wait += 1;
            if self.patience > 0 && self.wait >= self.patience { Verdict::Stop } else { Verdict::Waiting }
        }
    }

    /// The best value seen, if any epoch improved.
    pub fn best(&self) -> Option<f64> {
        self.best.is_finite().then_some(self.best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_after_patience_epochs_without_an_improvement_larger_than_min_delta() {
        let mut s = EarlyStopping::new(2, 0.1);
        assert_eq!(s.best(), None);
        assert_eq!(s.update(1, 1.0), Verdict::Improved);
        assert_eq!(s.update(2, 0.95), Verdict::Waiting, "within min_delta");
        assert_eq!(s.update(3, 0.5), Verdict::Improved, "an improvement resets the wait");
        assert_eq!(s.update(4, 0.6), Verdict::Waiting);
        assert_eq!(s.update(5, 0.45), Verdict::Stop);
        assert_eq!((s.best(), s.best_epoch), (Some(0.5), 3));
    }

    #[test]
    fn patience_zero_never_stops() {
        let mut s = EarlyStopping::new(0, 0.0);
        s.update(1, 1.0);
        assert!((2..100).all(|e| s.update(e, 2.0) == Verdict::Waiting));
        assert_eq!(s.best_epoch, 1);
    }
}
