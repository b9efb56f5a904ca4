//! Cross-validation splits. Every split is seeded, and checked so that each fold has samples to
//! test and enough to train on.

pub mod file_folds;
pub mod grouped;
pub mod kfold;
pub mod plan;
pub mod schemes;
pub mod validation;

pub use file_folds::folds_from_file;
pub use genopred_stats::seed;
pub use grouped::grouped_folds;
pub use kfold::{kfold, repeated_kfold};
pub use plan::{FoldRequest, plan_folds};
pub use schemes::{Scheme, repeated_trial_folds, trial_folds};
pub use seed::{Purpose, derive_seed};
pub use validation::validation_split;

use genopred_data::error::{CoreError, Result};

/// The fewest training samples a fold may have.
pub const MIN_TRAIN: usize = 5;

/// One train/test split of a dataset's rows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Fold {
    /// Repeat number, 1-based (always 1 without repeats).
    pub repeat: usize,
    /// Fold number within the repeat, 1-based.
    pub index: usize,
    /// Human label: the fold number, the label in a folds file, or the group name.
    pub label: String,
    /// Training rows.
    pub train: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
}

/// Builds checked folds from `(label, test rows)` pairs over `n` rows: each fold trains on every
/// row not in its test set.
pub(crate) fn folds_from_test_sets(n: usize, repeat: usize, sets: Vec<(String, Vec<usize>)>) -> Result<Vec<Fold>> {
    let folds: Vec<Fold> = sets
        .into_iter()
        .enumerate()
        .map(|(f, (label, test))| {
            let mut in_test = vec![false; n];
            test.iter().for_each(|&r| in_test[r] = true);
            Fold { repeat, index: f + 1, label, train: (0..n).filter(|&r| !in_test[r]).collect(), test }
        })
        .collect();
    check_folds(&folds)?;
    Ok(folds)
}

/// Rejects folds that cannot be trained or tested.
pub fn check_folds(folds: &[Fold]) -> Result<()> {
    for f in folds {
        if f.test.is_empty() {
            return Err(CoreError::Data(format!("fold '{}' has no test samples", f.label)));
        }
        if f.train.len() < MIN_TRAIN {
            return Err(CoreError::Data(format!(
                "fold '{}' leaves only {} sample(s) to train on (at least {MIN_TRAIN} needed); use fewer folds or larger groups",
                f.label,
                f.train.len()
            )));
        }
    }
    Ok(())
}
