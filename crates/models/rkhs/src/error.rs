//! Errors of the RKHS model.

/// What can go wrong while fitting or applying RKHS regression.
#[derive(Debug, thiserror::Error)]
pub enum RkhsError {
    /// Fewer training samples than variance components can be estimated from.
    #[error("RKHS needs at least {needed} training samples, got {got}")]
    TooFewSamples {
        /// Samples given.
        got: usize,
        /// Samples needed.
        needed: usize,
    },
    /// Every pair of training samples has the same genotypes: no kernel can be built.
    #[error("the training genotypes have no variation (every pairwise distance is 0), so no kernel can be built")]
    NoVariation,
    /// A result was not finite.
    #[error("numerical failure in RKHS: {0}")]
    Numerical(String),
    /// REML or the kernel's eigendecomposition failed (`genopred_core::reml`).
    #[error("RKHS: {0}")]
    Reml(#[from] genopred_core::CoreError),
    /// `predict` was called before `fit`, on another marker set, or a saved model is malformed.
    #[error("{0}")]
    Usage(String),
    /// A setting is out of range.
    #[error("invalid RKHS setting: {0}")]
    Config(#[from] genopred_core::check::ConfigError),
}
