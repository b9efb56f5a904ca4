//! The validation subset carved out of a training fold for early stopping (never the test fold).

use rand::seq::SliceRandom;

use super::seed;
use genopred_data::error::{CoreError, Result};

/// Splits `train` into (fit, validation), the validation part being `round(fraction × n)` rows
/// (at least one when `fraction > 0`), chosen with a seeded shuffle. Both parts keep row order.
pub fn validation_split(train: &[usize], fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(CoreError::config("valid_fraction", fraction, "must be within [0, 1)"));
    }
    if fraction == 0.0 {
        return Ok((train.to_vec(), Vec::new()));
    }
    let n_valid = ((train.len() as f64 * fraction).round() as usize).max(1);
    if train.len() < n_valid + 2 {
        return Err(CoreError::Data(format!(
            "a training fold of {} samples is too small to hold out {n_valid} for validation",
            train.len()
        )));
    }
    let mut shuffled = train.to_vec();
    shuffled.shuffle(&mut seed::rng(seed));
    let mut valid = shuffled[..n_valid].to_vec();
    let mut fit = shuffled[n_valid..].to_vec();
    valid.sort_unstable();
    fit.sort_unstable();
    Ok((fit, valid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carves_seeded_disjoint_subset() {
        let train: Vec<usize> = (100..150).collect();
        let (fit, valid) = validation_split(&train, 0.1, 3).unwrap();
        assert_eq!(valid.len(), 5);
        assert_eq!(fit.len(), 45);
        assert!(valid.iter().all(|v| train.contains(v) && !fit.contains(v)));
        assert_eq!((fit.clone(), valid.clone()), validation_split(&train, 0.1, 3).unwrap());
        assert_ne!(valid, validation_split(&train, 0.1, 4).unwrap().1);
        assert_eq!(validation_split(&train, 0.0, 3).unwrap().1.len(), 0);
        assert!(validation_split(&train, 1.0, 3).is_err());
        assert!(validation_split(&[1, 2], 0.1, 3).is_err());
    }
}
