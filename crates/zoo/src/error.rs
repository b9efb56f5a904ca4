//! Errors of building and loading models.

use genopred_core::ModelError;

/// What can go wrong while resolving, building or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    /// No model of that name.
    #[error("unknown model '{name}'; available: {available}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names known.
        available: String,
    },
    /// The model's settings file, or a value in it, is wrong. Transparent: the message and
    /// its causes are the inner error's, so a caller printing the cause chain prints it once.
    #[error(transparent)]
    Config(#[from] genopred_train::TrainError),
    /// The model rejected its settings or its saved state.
    #[error("{0}")]
    Model(ModelError),
    /// The settings could not be written out.
    #[error("serialising the settings: {0}")]
    Serialise(String),
}
