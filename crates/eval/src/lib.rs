//! genopred-eval: honest evaluation — cross-validation schemes (k-fold, groups, files, the
//! multi-environment CV1/CV2/CV0/CV00), the [`Predictor`] trait every model meets, the
//! multi-environment models that run over it (`env_model`), nested tuning, run folders and
//! their records, atomic output.
//!
//! **Architecture invariant:** knows nothing of burn; models depend on it, never the other way
//! round.

pub mod cv;
pub mod env_model;
pub mod evaluation;
pub mod folder_lock;
pub mod output;
pub mod predictor;
pub mod records;
pub mod run_dir;
pub mod tuning;

pub use predictor::{
    EpochRecord, FitContext, FitInfo, FitObserver, ModelError, Predictor, Quiet, RecordSet, SaliencyOptions, TrainSet,
};
