//! genopred-bayesb: BayesB (Meuwissen, Hayes & Goddard 2001) by Gibbs sampling, in the
//! formulation of Habier et al. (2011) and BGLR (Pérez & de los Campos 2014): each marker's
//! effect is zero with probability π and otherwise normal with a variance of its own, behind the
//! same [`Predictor`](genopred_core::Predictor) trait as every model. See `README.md`.

pub mod error;
pub mod hyperparams;
pub mod model;
pub mod sampler;

#[cfg(test)]
mod tests;

pub use error::BayesBError;
pub use hyperparams::BayesBConfig;
pub use model::{BayesB, BayesBFitReport, FittedBayesB};
pub use sampler::{Chain, effective_sample_size};
