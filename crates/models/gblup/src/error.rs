//! Errors of the GBLUP baseline.

/// What can go wrong while fitting or applying GBLUP.
#[derive(Debug, thiserror::Error)]
pub enum GblupError {
    /// Fewer training samples than the model can estimate variance components from.
    #[error("GBLUP needs at least {needed} training samples, got {got}")]
    TooFewSamples {
        /// Samples given.
        got: usize,
        /// Samples needed.
        needed: usize,
    },
    /// All markers are constant in the training set: the relationship matrix is zero.
    #[error("the training genotypes have no variation (sum of 2p(1-p) is 0), so no relationship matrix can be built")]
    NoVariation,
    /// The eigendecomposition or a solve failed.
    #[error("numerical failure in GBLUP: {0}")]
    Numerical(String),
    /// REML failed (`genopred_core::reml`).
    #[error("GBLUP: {0}")]
    Reml(#[from] genopred_core::CoreError),
    /// `predict` was called before `fit`, or on another marker set.
    #[error("{0}")]
    Usage(String),
    /// A setting is out of range.
    #[error("invalid GBLUP setting: {0}")]
    Config(#[from] genopred_core::check::ConfigError),
}
