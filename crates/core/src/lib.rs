//! genopred-core: everything about genomic-prediction data that is not a neural network —
//! genotype and phenotype readers, QC, encodings, cross-validation splits, metrics, and the
//! [`Predictor`](predictor::Predictor) trait every model meets.
//!
//! **Architecture invariant:** this crate knows nothing of burn; models depend on it, never the
//! other way round.

pub mod align;
pub mod check;
pub mod cv;
pub mod dataset;
pub mod encoding;
pub mod env_model;
pub mod error;
pub mod evaluation;
pub mod folder_lock;
pub mod genotype;
pub mod gram;
pub mod gwas;
pub mod metrics;
pub mod output;
pub mod paired;
pub mod phenotype;
pub mod predictor;
pub mod qc;
pub mod readers;
pub mod records;
pub mod reml;
pub mod run_dir;
pub mod saliency_stats;
pub mod trials;
pub mod tuning;

pub use dataset::{Dataset, MatchReport};
pub use error::{CoreError, Result};
pub use genotype::{CallsBuilder, GenotypeMatrix, Marker};
pub use phenotype::{PhenoOptions, Phenotypes};
pub use predictor::{
    EpochRecord, FitContext, FitInfo, FitObserver, ModelError, Predictor, Quiet, RecordSet, SaliencyOptions, TrainSet,
};
pub use readers::{GenotypeFormat, read_genotypes};

#[cfg(test)]
mod architecture {
    /// Architecture invariant: core knows nothing of burn (models depend on core, never the reverse).
    #[test]
    fn core_does_not_depend_on_burn() {
        let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
        assert!(!manifest.lines().any(|l| l.trim_start().starts_with("burn")), "genopred-core must not depend on burn");
    }
}
