//! genopred-core: genopred's data, statistics and evaluation under one name, for the model
//! crates, the CLI and a researcher's own code. It holds no code of its own: it re-exports
//!
//! - [genopred-data](genopred_data): readers, trials, QC, encodings, the error type;
//! - [genopred-stats](genopred_stats): relationship matrices, REML (one and several variance
//!   components), GWAS, metrics, paired tests, seeds;
//! - [genopred-eval](genopred_eval): cross-validation schemes, the [`Predictor`] trait,
//!   multi-environment models, tuning, run folders and records;
//!
//! at the paths they had before the split (`genopred_core::reml::multi`, `genopred_core::cv` ...).
//! ARCHITECTURE.md says why the cut runs there.
//!
//! **Architecture invariant:** none of these knows anything of burn; models depend on them,
//! never the other way round.

pub use genopred_data::{align, check, dataset, encoding, error, genotype, phenotype, qc, readers, trials};
pub use genopred_eval::{cv, env_model, evaluation, folder_lock, output, predictor, records, run_dir, tuning};
pub use genopred_stats::{gram, gwas, metrics, paired, reml, saliency_stats};

pub use genopred_data::{
    CallsBuilder, CoreError, Dataset, GenotypeFormat, GenotypeMatrix, Marker, MatchReport, PhenoOptions, Phenotypes,
    Result, read_genotypes,
};
pub use genopred_eval::{
    EpochRecord, FitContext, FitInfo, FitObserver, ModelError, Predictor, Quiet, RecordSet, SaliencyOptions, TrainSet,
};
