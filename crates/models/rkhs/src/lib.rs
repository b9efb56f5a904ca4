//! genopred-rkhs: reproducing-kernel Hilbert-space regression with a Gaussian kernel (Gianola
//! et al. 2006; Crossa et al. 2010; rrBLUP's `kin.blup` with `GAUSS = TRUE`), behind the same
//! [`Predictor`](genopred_core::Predictor) trait as every model. The kernel's bandwidth and the
//! variance components are chosen by REML on the training fold. See `README.md`.

pub mod error;
pub mod hyperparams;
pub mod model;

#[cfg(test)]
mod tests;

pub use error::RkhsError;
pub use hyperparams::RkhsConfig;
pub use model::{BandwidthFit, FittedRkhs, Rkhs, RkhsFitReport};
