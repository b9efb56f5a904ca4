//! Errors of the trainer and of neural models.

use thiserror::Error;

/// What can go wrong while configuring, training or using a neural model.
#[derive(Debug, Error)]
pub enum TrainError {
    /// A configuration file is wrong (unreadable, not TOML, an unknown key, a value of the wrong
    /// type).
    #[error("{0}")]
    Config(String),
    /// A configuration value is out of its range.
    #[error(transparent)]
    Range(#[from] genopred_core::check::ConfigError),
    /// The loss became NaN or infinite.
    #[error(
        "{model}: the training loss became {value} at epoch {epoch} (batch {batch}); lower the learning rate, \
         check the trait for extreme values, or keep `standardise_y = true`"
    )]
    NonFinite {
        /// Model name.
        model: String,
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
        /// The offending value.
        value: f32,
    },
    /// The data do not suit the model.
    #[error("{0}")]
    Data(String),
    /// Used before fitting, or on genotypes of another shape.
    #[error("{0}")]
    Usage(String),
    /// Saving or loading weights failed.
    #[error("{0}")]
    Io(String),
    /// An error from genopred-core (encodings, PCA).
    #[error(transparent)]
    Core(#[from] genopred_core::CoreError),
}
