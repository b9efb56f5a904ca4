//! What one catalogue line provides.

use std::path::Path;

use burn::prelude::Device;
use genopred_core::Predictor;
use genopred_core::records::{Compute, ModelInfo, ModelListing};
use genopred_train::conformance::Parity;

use crate::error::ZooError;
use crate::harness::StepBench;

/// A fresh, unfitted model and its resolved settings.
pub struct Built {
    /// The model.
    pub model: Box<dyn Predictor>,
    /// The resolved settings, as `summary.json` records them.
    pub config: serde_json::Value,
    /// The same as TOML (written to `config.toml`; `--config` reads it back).
    pub config_toml: String,
}

/// One model of the catalogue. Implemented for every neural architecture by [`crate::Neural`],
/// and directly by classical models ([`crate::classical`]).
pub trait ModelEntry: Sync {
    /// The `--model` name.
    fn name(&self) -> &'static str;
    /// One line for `genopred models`.
    fn about(&self) -> &'static str;
    /// Where it computes: on the burn device, or on the CPU whatever `--backend` says.
    fn compute(&self) -> Compute;
    /// The shipped search space `--tune default` uses (TOML), if the model has one.
    fn tuning_space(&self) -> Option<&'static str>;
    /// A fresh model: the defaults overridden by the TOML file `config` (unknown keys and
    /// out-of-range values are errors), computing on `device` if it uses one.
    fn build(&self, config: Option<&Path>, device: &Device) -> Result<Built, ZooError> {
        match config {
            None => self.build_table(None, device),
            Some(path) => self.build_table(Some((&genopred_train::read_config_table(path)?, path)), device),
        }
    }
    /// [`ModelEntry::build`] from keys already read: the table and where it came from (named in
    /// errors). The ensemble builds its members this way from its own config's tables.
    fn build_table(&self, config: Option<(&toml::Table, &Path)>, device: &Device) -> Result<Built, ZooError>;
    /// A fitted model saved with [`Predictor::save`] into `state` (the model's own layout),
    /// with its settings read from the TOML file `config`, predicting on `device` — any
    /// backend, whatever it was trained on.
    fn load(&self, config: &Path, state: &Path, device: &Device) -> Result<Box<dyn Predictor>, ZooError>;
    /// Backend parity: for each configuration the harness exercises, the largest differences
    /// between `reference` and `other` from the same initial weights and batch. Empty for
    /// models without a burn network.
    fn backend_parity(&self, reference: &Device, other: &Device) -> Vec<(String, Parity)>;
    /// Checks (panicking with a message) that a model trained and saved on `reference` predicts
    /// the same on `other`. Nothing to check for models without a burn network.
    fn check_cross_backend(&self, reference: &Device, other: &Device);
    /// One training step and one inference batch per configuration, at the model's default
    /// batch size, on inputs fitted to `rows` of `geno`, on `device`. Empty for models that are
    /// not trained in steps.
    fn step_benches(
        &self,
        geno: &genopred_core::GenotypeMatrix,
        rows: &[usize],
        device: &Device,
    ) -> Vec<Box<dyn StepBench>>;
}

/// The catalogue entry named `name` (case-insensitive).
pub fn find(name: &str) -> Result<&'static dyn ModelEntry, ZooError> {
    crate::MODELS.iter().copied().find(|m| m.name().eq_ignore_ascii_case(name)).ok_or_else(|| ZooError::Unknown {
        name: name.to_string(),
        available: crate::MODELS.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "),
    })
}

/// The catalogue as `genopred models --json` prints it.
pub fn listing(default_backend: &str) -> ModelListing {
    ModelListing {
        format: ModelListing::FORMAT,
        models: crate::MODELS
            .iter()
            .map(|m| ModelInfo {
                name: m.name().into(),
                about: m.about().into(),
                compute: m.compute(),
                tuning_space: m.tuning_space().is_some(),
            })
            .collect(),
        default_backend: default_backend.into(),
    }
}
