//! genopred-data: the data of genomic prediction — genotype readers (PLINK .bed, VCF/BCF,
//! dosage CSV) into 2-bit genotypes, phenotype tables, multi-environment trials (long and wide,
//! fixed effects, environmental covariates), sample alignment, QC and input encodings — and the
//! one error type of the data, statistics and evaluation crates.
//!
//! **Architecture invariant:** knows nothing of burn, nor of the statistics (genopred-stats) or
//! the evaluation (genopred-eval) built on it.

pub mod align;
pub mod check;
pub mod dataset;
pub mod encoding;
pub mod error;
pub mod genotype;
pub mod phenotype;
pub mod qc;
pub mod readers;
pub mod trials;

pub use dataset::{Dataset, MatchReport};
pub use error::{CoreError, ModelError, Result};
pub use genotype::{CallsBuilder, GenotypeMatrix, Marker};
pub use phenotype::{PhenoOptions, Phenotypes};
pub use readers::{GenotypeFormat, read_genotypes};
