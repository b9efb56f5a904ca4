//! Input encodings. Each is a small type with `fit` on the training rows and `transform` on any
//! rows: every statistic (imputation means, scales, PCA loadings) comes from the training rows.

pub mod dosage;
pub mod onehot;
pub mod pca;

pub use dosage::{DosageEncoder, Scaling};
pub use onehot::OneHotEncoder;
pub use pca::{Pca, PcaComponents};
