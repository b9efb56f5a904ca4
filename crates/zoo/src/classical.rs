//! Classical models: catalogue entries written directly, without a burn network.

use std::path::Path;

use burn::prelude::Device;
use genopred_core::records::Compute;
use genopred_core::{GenotypeMatrix, Predictor};
use genopred_gblup::{Gblup, GblupConfig};
use genopred_train::conformance::Parity;
use genopred_train::resolve_config;

use crate::entry::{Built, ModelEntry};
use crate::error::ZooError;
use crate::harness::StepBench;

/// GBLUP: VanRaden G, REML variance components; computes on the CPU in f64.
pub struct GblupEntry;

/// The GBLUP catalogue entry.
pub static GBLUP: GblupEntry = GblupEntry;

fn resolve(config: Option<&Path>) -> Result<GblupConfig, ZooError> {
    Ok(resolve_config(&GblupConfig::default(), config)?)
}

impl ModelEntry for GblupEntry {
    fn name(&self) -> &'static str {
        "gblup"
    }

    fn about(&self) -> &'static str {
        "GBLUP: VanRaden G, REML variance components (baseline)"
    }

    fn compute(&self) -> Compute {
        Compute::Cpu
    }

    fn build(&self, config: Option<&Path>, _device: &Device) -> Result<Built, ZooError> {
        let config = resolve(config)?;
        let model = Gblup::new(config).map_err(|e| ZooError::Model(e.into()))?;
        Ok(Built {
            model: Box::new(model),
            config: serde_json::to_value(config).map_err(|e| ZooError::Serialise(e.to_string()))?,
            config_toml: toml::to_string(&config).map_err(|e| ZooError::Serialise(e.to_string()))?,
        })
    }

    fn load(&self, config: &Path, state: &Path, _device: &Device) -> Result<Box<dyn Predictor>, ZooError> {
        let config = resolve(Some(config))?;
        Ok(Box::new(Gblup::load(config, state).map_err(|e| ZooError::Model(e.into()))?))
    }

    fn backend_parity(&self, _reference: &Device, _other: &Device) -> Vec<(String, Parity)> {
        Vec::new()
    }

    fn check_cross_backend(&self, _reference: &Device, _other: &Device) {}

    fn step_benches(&self, _geno: &GenotypeMatrix, _rows: &[usize], _device: &Device) -> Vec<Box<dyn StepBench>> {
        Vec::new()
    }
}
