//! Is one model's accuracy really different from another's? The corrected resampled t-test of
//! Nadeau & Bengio (2003), as Bouckaert & Frank (2004) apply it to (repeated) k-fold
//! cross-validation.
//!
//! The folds of one cross-validation share most of their training lines, so their scores are
//! correlated, and the plain paired t-test over folds is far too confident (its type I error
//! reaches 0.3–0.5 at a nominal 0.05). Nadeau & Bengio's correction inflates the variance of the
//! mean difference from `σ²/J` to `(1/J + n_test/n_train) σ²` for `J` paired differences (folds ×
//! repeats), which brings the error rate back to about the nominal level. A paired bootstrap
//! over folds would keep the overlap's correlation and be as over-confident as the plain test,
//! which is why this one is used.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// The mean of paired differences (model minus baseline, per fold) and its corrected interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PairedDifference {
    /// Paired differences (folds × repeats).
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Their sample standard deviation.
    pub sd: f64,
    /// The corrected standard error `sd · √(1/n + n_test/n_train)`.
    pub se: f64,
    /// Lower end of the 95 % interval (`mean − t₀.₉₇₅,ₙ₋₁ · se`).
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
    /// Two-sided p-value of "no difference" (`t = mean / se`, n − 1 degrees of freedom).
    pub p: f64,
}

impl PairedDifference {
    /// Whether the 95 % interval excludes zero.
    pub fn distinguishable(&self) -> bool {
        self.ci_low > 0.0 || self.ci_high < 0.0
    }
}

/// The corrected resampled t interval of the mean of `diffs`, where each difference comes from a
/// fold whose test set is `test_train_ratio` times its training set (`1/(k − 1)` for k-fold).
/// `None` with fewer than two finite differences.
pub fn corrected_paired_t(diffs: &[f64], test_train_ratio: f64) -> Option<PairedDifference> {
    let finite: Vec<f64> = diffs.iter().copied().filter(|d| d.is_finite()).collect();
    let n = finite.len();
    if n < 2 || !(test_train_ratio.is_finite() && test_train_ratio >= 0.0) {
        return None;
    }
    let mean = crate::metrics::mean(&finite);
    let sd = crate::metrics::sd(&finite);
    let se = sd * (1.0 / n as f64 + test_train_ratio).sqrt();
    let t_dist = StudentsT::new(0.0, 1.0, (n - 1) as f64).ok()?;
    let q = t_dist.inverse_cdf(0.975);
    let p = if se > 0.0 {
        2.0 * (1.0 - t_dist.cdf((mean / se).abs()))
    } else if mean == 0.0 {
        1.0
    } else {
        0.0
    };
    Some(PairedDifference { n, mean, sd, se, ci_low: mean - q * se, ci_high: mean + q * se, p })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computed_interval() {
        // 10 folds of 10-fold CV: ratio 1/9.
        let d = [0.05, -0.02, 0.08, 0.01, 0.04, -0.03, 0.06, 0.02, 0.00, 0.03];
        let r = corrected_paired_t(&d, 1.0 / 9.0).unwrap();
        let mean = 0.024;
        let var = d.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 9.0;
        let se = (var * (0.1 + 1.0 / 9.0)).sqrt();
        assert!((r.mean - mean).abs() < 1e-15 && (r.se - se).abs() < 1e-15);
        // t quantile 0.975 with 9 df is 2.262157.
        assert!((r.ci_high - (mean + 2.262157 * se)).abs() < 1e-6, "{r:?}");
        assert!((r.ci_low - (mean - 2.262157 * se)).abs() < 1e-6);
        // t = 0.024 / se ≈ 1.49: p ≈ 0.170 (two-sided, 9 df), not distinguishable.
        assert!((r.p - 0.1700).abs() < 1e-3, "{}", r.p);
        assert!(!r.distinguishable());
        // The uncorrected interval would be narrower: the correction is what keeps it honest.
        assert!(se > (var / 10.0).sqrt() * 1.4);
    }

    #[test]
    fn clear_differences_are_distinguishable_and_degenerate_inputs_are_handled() {
        let d: Vec<f64> = (0..30).map(|i| 0.1 + 0.01 * ((i % 5) as f64 - 2.0)).collect();
        let r = corrected_paired_t(&d, 1.0 / 9.0).unwrap();
        assert!(r.distinguishable() && r.p < 1e-6 && r.ci_low > 0.0, "{r:?}");
        let worse: Vec<f64> = d.iter().map(|x| -x).collect();
        assert!(corrected_paired_t(&worse, 1.0 / 9.0).unwrap().ci_high < 0.0);
        assert!(corrected_paired_t(&[0.1], 0.1).is_none());
        assert!(corrected_paired_t(&[0.1, f64::NAN], 0.1).is_none());
        let same = corrected_paired_t(&[0.0, 0.0, 0.0], 0.1).unwrap();
        assert_eq!((same.p, same.distinguishable()), (1.0, false));
        assert_eq!(corrected_paired_t(&[0.2, 0.2, 0.2], 0.1).unwrap().p, 0.0);
    }
}
