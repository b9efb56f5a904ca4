//! genopred-stats: the statistics of genomic prediction — genomic relationship matrices (gram),
//! REML for one kernel (spectral, matrix-free) and for several variance components
//! (`reml::multi`: AI-REML with fixed effects, the G×E models' engine), GWAS, accuracy metrics,
//! corrected paired tests, saliency statistics, and the seeds every random choice derives from.
//!
//! **Architecture invariant:** knows nothing of burn, nor of the evaluation (genopred-eval);
//! reads data through genopred-data only.

pub mod gram;
pub mod gwas;
pub mod metrics;
pub mod paired;
pub mod reml;
pub mod saliency_stats;
pub mod seed;
