//! genopred-core: everything about genomic-prediction data that is not a neural network —
//! genotype and phenotype readers, QC, encodings, cross-validation splits, metrics, and the
//! [`Predictor`](predictor::Predictor) trait every model meets.
//!
//! **Architecture invariant:** this crate knows nothing of burn; models depend on it, never the
//! other way round.

pub mod cv;
pub mod dataset;
pub mod encoding;
pub mod error;
pub mod evaluation;
pub mod genotype;
pub mod metrics;
pub mod output;
pub mod phenotype;
pub mod predictor;
pub mod qc;
pub mod readers;

pub use dataset::{Dataset, MatchReport};
pub use error::{CoreError, Result};
pub use genotype::{GenotypeMatrix, Marker};
pub use phenotype::{PhenoOptions, Phenotypes};
pub use predictor::{FitInfo, ModelError, Predictor, TrainSet};
pub use readers::{GenotypeFormat, read_genotypes};
