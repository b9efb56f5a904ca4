//! The one training loop every genopred neural model goes through, on any burn `Device`.
//!
//! A model crate implements [`Architecture`] — its config, its fitted input encoding and its
//! network — and gets a [`NeuralPredictor`] that plugs into genopred-core's cross-validation
//! runner like GBLUP does. The loop ([`train`]) handles optimisers (Adam, SGD with momentum),
//! weight decay, Keras-style L2 penalties, MSE/L1 losses, early stopping on the validation subset
//! carved from the training fold, ReduceLROnPlateau, seeded shuffling and training-fold
//! standardisation of the phenotype. [`conformance`] holds the tests every model must pass.

pub mod arch;
pub mod config;
pub mod conformance;
pub mod conv;
pub mod device_draws;
pub mod early_stopping;
pub mod error;
pub mod head;
pub mod init;
pub mod inputs;
pub mod layers;
pub mod plateau;
pub mod predictor;
pub mod saliency;
pub mod trainer;

pub use arch::{Architecture, Encoded, InputContext, Inputs, Network};
pub use config::{
    LossKind, Monitor, OptimizerKind, PlateauMonitor, TrainConfig, read_config_table, resolve_arch_config,
    resolve_arch_table, resolve_config, resolve_config_with, resolve_table, resolve_table_with,
};
pub use error::TrainError;
pub use head::{Headed, Side, SideBatch, Trainable};
pub use layers::{batch_norm, conv1d, dropout, seed_dropout};
pub use predictor::{NeuralFitReport, NeuralPredictor};
pub use trainer::{
    Outcome, Scores, TrainData, TrainRun, batch_tensor, inference_batch, optimizer, predict_batches,
    predict_side_batches, step, train, validation_scores,
};
