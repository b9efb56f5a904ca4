//! Classical models: catalogue entries without a burn network. They compute on the CPU in f64
//! whatever the backend, have no training steps to time and nothing to compare across backends.

use std::marker::PhantomData;
use std::path::Path;

use burn::prelude::Device;
use genopred_core::records::Compute;
use genopred_core::{GenotypeMatrix, ModelError, Predictor};
use genopred_train::conformance::Parity;
use genopred_train::{resolve_config, resolve_table};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::entry::{Built, ModelEntry};
use crate::error::ZooError;
use crate::harness::StepBench;

/// What a classical model crate gives the catalogue: its name, its settings, and how to build
/// and load it.
pub trait Classical: Predictor + Sized + 'static {
    /// The `--model` name.
    const NAME: &'static str;
    /// One line for `genopred models`.
    const ABOUT: &'static str;
    /// The shipped search space for `--tune default`, if any (see
    /// [`genopred_train::Architecture::TUNING_SPACE`]).
    const TUNING_SPACE: Option<&'static str> = None;
    /// Its settings (a `--config` TOML file overrides the defaults).
    type Config: Default + Serialize + DeserializeOwned;
    /// A fresh model with checked settings.
    fn with_config(config: Self::Config) -> Result<Self, ModelError>;
    /// A fitted model saved with [`Predictor::save`] into `dir`.
    fn load_from(config: Self::Config, dir: &Path) -> Result<Self, ModelError>;
}

impl Classical for genopred_gblup::Gblup {
    const NAME: &'static str = "gblup";
    const ABOUT: &'static str = "GBLUP: VanRaden G, REML variance components (baseline)";
    type Config = genopred_gblup::GblupConfig;
    fn with_config(config: Self::Config) -> Result<Self, ModelError> {
        Ok(Self::new(config)?)
    }
    fn load_from(config: Self::Config, dir: &Path) -> Result<Self, ModelError> {
        Ok(Self::load(config, dir)?)
    }
}

impl Classical for genopred_rkhs::Rkhs {
    const NAME: &'static str = "rkhs";
    const ABOUT: &'static str = "RKHS: Gaussian kernel, bandwidth and variance components by REML";
    type Config = genopred_rkhs::RkhsConfig;
    fn with_config(config: Self::Config) -> Result<Self, ModelError> {
        Ok(Self::new(config)?)
    }
    fn load_from(config: Self::Config, dir: &Path) -> Result<Self, ModelError> {
        Ok(Self::load(config, dir)?)
    }
}

impl Classical for genopred_bayesb::BayesB {
    const NAME: &'static str = "bayesb";
    const ABOUT: &'static str = "BayesB: sparse marker effects by Gibbs sampling (Bayesian alphabet)";
    type Config = genopred_bayesb::BayesBConfig;
    fn with_config(config: Self::Config) -> Result<Self, ModelError> {
        Ok(Self::new(config)?)
    }
    fn load_from(config: Self::Config, dir: &Path) -> Result<Self, ModelError> {
        Ok(Self::load(config, dir)?)
    }
}

/// Any [`Classical`] model as a catalogue entry: `&Cpu::<MyModel>::ENTRY`.
pub struct Cpu<M>(PhantomData<fn() -> M>);

impl<M: Classical> Cpu<M> {
    /// The entry, for the catalogue's static list.
    pub const ENTRY: Self = Cpu(PhantomData);
}

fn resolve<M: Classical>(config: Option<&Path>) -> Result<M::Config, ZooError> {
    Ok(resolve_config(&M::Config::default(), config)?)
}

fn resolve_keys<M: Classical>(config: Option<(&toml::Table, &Path)>) -> Result<M::Config, ZooError> {
    Ok(resolve_table(&M::Config::default(), config)?)
}

impl<M: Classical> ModelEntry for Cpu<M> {
    fn name(&self) -> &'static str {
        M::NAME
    }

    fn about(&self) -> &'static str {
        M::ABOUT
    }

    fn compute(&self) -> Compute {
        Compute::Cpu
    }

    fn tuning_space(&self) -> Option<&'static str> {
        M::TUNING_SPACE
    }

    fn build_table(&self, config: Option<(&toml::Table, &Path)>, _device: &Device) -> Result<Built, ZooError> {
        let config = resolve_keys::<M>(config)?;
        let json = serde_json::to_value(&config).map_err(|e| ZooError::Serialise(e.to_string()))?;
        let config_toml = toml::to_string(&config).map_err(|e| ZooError::Serialise(e.to_string()))?;
        let model = M::with_config(config).map_err(ZooError::Model)?;
        Ok(Built { model: Box::new(model), config: json, config_toml })
    }

    fn load(&self, config: &Path, state: &Path, _device: &Device) -> Result<Box<dyn Predictor>, ZooError> {
        let config = resolve::<M>(Some(config))?;
        Ok(Box::new(M::load_from(config, state).map_err(ZooError::Model)?))
    }

    fn backend_parity(&self, _reference: &Device, _other: &Device) -> Vec<(String, Parity)> {
        Vec::new()
    }

    fn check_cross_backend(&self, _reference: &Device, _other: &Device) {}

    fn step_benches(&self, _geno: &GenotypeMatrix, _rows: &[usize], _device: &Device) -> Vec<Box<dyn StepBench>> {
        Vec::new()
    }
}
