//! genopred-gblup: the classic GBLUP baseline (VanRaden 2008 relationship matrix, REML variance
//! components by the spectral method of EMMA/FaST-LMM, `genopred_core::reml`), behind the same
//! [`Predictor`](genopred_core::Predictor) trait as the neural models. See `README.md`.

pub mod error;
pub mod hyperparams;
pub mod model;

#[cfg(test)]
mod tests;

pub use error::GblupError;
pub use hyperparams::{GblupConfig, RemlMethodChoice};
pub use model::{
    FittedGblup, Gblup, GblupFitReport, GenomicOperator, MatrixFreeReport, RemlMethod, RemlSummary, marker_effects,
    relationship,
};
