//! The models this binary can run. Adding an architecture = one crate + one line in [`MODELS`].

use anyhow::{Result, bail};
use genopred_core::Predictor;

/// A fresh, unfitted model and its resolved settings (saved with the results).
pub type BuiltModel = (Box<dyn Predictor>, serde_json::Value);

/// A model the command line can build.
pub struct ModelEntry {
    /// Name used with `--model`.
    pub name: &'static str,
    /// One-line description for `genopred models`.
    pub about: &'static str,
    /// Builds a fresh, unfitted model and its resolved settings (saved with the results).
    pub build: fn() -> Result<BuiltModel>,
}

/// Every model compiled into this binary.
pub const MODELS: &[ModelEntry] = &[ModelEntry {
    name: "gblup",
    about: "GBLUP: VanRaden G, REML variance components (baseline)",
    build: || {
        let config = genopred_gblup::GblupConfig::default();
        Ok((Box::new(genopred_gblup::Gblup::new(config)), serde_json::to_value(config)?))
    },
}];

/// Looks a model up by name.
pub fn find(name: &str) -> Result<&'static ModelEntry> {
    match MODELS.iter().find(|m| m.name.eq_ignore_ascii_case(name)) {
        Some(m) => Ok(m),
        None => {
            bail!("unknown model '{name}'; available: {}", MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", "))
        }
    }
}
