//! Errors of BayesB.

/// What can go wrong while fitting or applying BayesB.
#[derive(Debug, thiserror::Error)]
pub enum BayesBError {
    /// Fewer training samples than the sampler can estimate anything from.
    #[error("BayesB needs at least {needed} training samples, got {got}")]
    TooFewSamples {
        /// Samples given.
        got: usize,
        /// Samples needed.
        needed: usize,
    },
    /// Every marker or the trait is constant in the training set.
    #[error("the training data have no variation ({0}), so BayesB cannot be fitted")]
    NoVariation(&'static str),
    /// The chain produced a non-finite value.
    #[error("numerical failure in BayesB: {0}")]
    Numerical(String),
    /// `predict` was called before `fit`, on another marker set, or a saved model is malformed.
    #[error("{0}")]
    Usage(String),
    /// A setting is out of range.
    #[error("invalid BayesB setting: {0}")]
    Config(#[from] genopred_core::check::ConfigError),
}
