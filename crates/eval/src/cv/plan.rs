//! Planning a run's folds from what the user asked for, with the record of how they were made.

use std::path::PathBuf;

use crate::output::sha256_file;
use crate::records::FoldScheme;
use genopred_data::dataset::Dataset;
use genopred_data::error::{CoreError, Result};

use super::{Fold, folds_from_file, grouped_folds, repeated_kfold};

/// How the folds of a run are to be made.
#[derive(Debug, Clone, PartialEq)]
pub enum FoldRequest {
    /// Seeded k-fold, `repeats` times.
    Kfold {
        /// Folds per repeat.
        k: usize,
        /// Repeats.
        repeats: usize,
        /// Seed of the assignment.
        seed: u64,
    },
    /// Folds from an `id,fold` file.
    File(PathBuf),
    /// Leave one group out, groups from this phenotype column (loaded into the dataset).
    Grouped(String),
}

/// The folds of `dataset` as `request` asks, and the record of the scheme.
pub fn plan_folds(dataset: &Dataset, request: &FoldRequest) -> Result<(Vec<Fold>, FoldScheme)> {
    match request {
        FoldRequest::File(path) => {
            let folds = folds_from_file(path, dataset.ids())?;
            let scheme = FoldScheme::File { path: path.clone(), sha256: sha256_file(path)?, folds: folds.len() };
            Ok((folds, scheme))
        }
        FoldRequest::Grouped(column) => {
            let groups = dataset
                .groups
                .as_ref()
                .ok_or_else(|| CoreError::Data(format!("group labels from column '{column}' were not loaded")))?;
            let folds = grouped_folds(groups)?;
            let n = folds.len();
            Ok((folds, FoldScheme::Grouped { column: column.clone(), folds: n }))
        }
        &FoldRequest::Kfold { k, repeats, seed } => {
            Ok((repeated_kfold(dataset.len(), k, repeats, seed)?, FoldScheme::Kfold { k, repeats }))
        }
    }
}
