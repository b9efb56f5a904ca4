//! The models this binary can run. Adding an architecture = one crate + one entry in [`MODELS`]
//! (see CONTRIBUTING.md, "Adding a model").

use std::path::Path;

use anyhow::{Result, bail};
use burn::prelude::Device;
use genopred_core::Predictor;
use genopred_train::{Architecture, NeuralPredictor, resolve_config};

/// A fresh, unfitted model and its resolved settings.
pub struct BuiltModel {
    /// The model.
    pub model: Box<dyn Predictor>,
    /// The resolved configuration, as saved in `summary.json`.
    pub config: serde_json::Value,
    /// The same, as TOML (written to `config.toml`; `--config` reads it back).
    pub config_toml: String,
    /// Whether the model trains on the burn device.
    pub neural: bool,
}

/// What a model is built from.
pub struct BuildOptions<'a> {
    /// `--config FILE.toml`, overriding the model's defaults.
    pub config: Option<&'a Path>,
    /// The burn device neural models train on.
    pub device: &'a Device,
}

/// Where a saved model is loaded from (a folder written by `genopred train`).
pub struct LoadOptions<'a> {
    /// The model folder (holds `config.toml`; the fitted state is under `model/`).
    pub dir: &'a Path,
    /// The burn device neural models predict on (any backend, whatever they were trained on).
    pub device: &'a Device,
}

/// The fitted state's folder inside a model folder.
pub const STATE_DIR: &str = "model";

/// A model the command line can build.
pub struct ModelEntry {
    /// Name used with `--model`.
    pub name: &'static str,
    /// One-line description for `genopred models`.
    pub about: &'static str,
    /// Builds a fresh, unfitted model.
    pub build: fn(&BuildOptions<'_>) -> Result<BuiltModel>,
    /// Rebuilds a fitted model saved by `genopred train`.
    pub load: fn(&LoadOptions<'_>) -> Result<Box<dyn Predictor>>,
}

/// Builds any [`Architecture`]: its defaults overridden by `--config`, range-checked.
pub fn neural<A: Architecture>(options: &BuildOptions<'_>) -> Result<BuiltModel> {
    let config = resolve_config(&A::default_config(), options.config)?;
    let json = serde_json::to_value(&config)?;
    let config_toml = toml::to_string(&config)?;
    let model = NeuralPredictor::<A>::new(config, options.device.clone())?;
    Ok(BuiltModel { model: Box::new(model), config: json, config_toml, neural: true })
}

/// Loads any [`Architecture`] saved by `genopred train`.
pub fn load_neural<A: Architecture>(options: &LoadOptions<'_>) -> Result<Box<dyn Predictor>> {
    let config = resolve_config(&A::default_config(), Some(&options.dir.join("config.toml")))?;
    Ok(Box::new(NeuralPredictor::<A>::load_dir(config, &options.dir.join(STATE_DIR), options.device.clone())?))
}

fn load_gblup(options: &LoadOptions<'_>) -> Result<Box<dyn Predictor>> {
    let config = resolve_config(&genopred_gblup::GblupConfig::default(), Some(&options.dir.join("config.toml")))?;
    Ok(Box::new(genopred_gblup::Gblup::load(config, &options.dir.join(STATE_DIR))?))
}

fn gblup(options: &BuildOptions<'_>) -> Result<BuiltModel> {
    let config = resolve_config(&genopred_gblup::GblupConfig::default(), options.config)?;
    config.check()?;
    let json = serde_json::to_value(config)?;
    let config_toml = toml::to_string(&config)?;
    Ok(BuiltModel { model: Box::new(genopred_gblup::Gblup::new(config)), config: json, config_toml, neural: false })
}

/// Every model compiled into this binary.
pub const MODELS: &[ModelEntry] = &[
    ModelEntry {
        name: "gblup",
        about: "GBLUP: VanRaden G, REML variance components (baseline)",
        build: gblup,
        load: load_gblup,
    },
    ModelEntry {
        name: "dnngp",
        about: "DNNGP (Wang et al. 2023): CNN on principal-component scores",
        build: neural::<genopred_dnngp::Dnngp>,
        load: load_neural::<genopred_dnngp::Dnngp>,
    },
    ModelEntry {
        name: "deepgs",
        about: "DeepGS (Ma et al. 2018): one-layer CNN on marker values",
        build: neural::<genopred_deepgs::DeepGs>,
        load: load_neural::<genopred_deepgs::DeepGs>,
    },
    ModelEntry {
        name: "dlgwas",
        about: "DLGWAS (Liu et al. 2019): residual CNN on one-hot genotypes",
        build: neural::<genopred_dlgwas::Dlgwas>,
        load: load_neural::<genopred_dlgwas::Dlgwas>,
    },
    ModelEntry {
        name: "mlp",
        about: "MLP on standardised dosages (the worked example of adding a model)",
        build: neural::<genopred_mlp::Mlp>,
        load: load_neural::<genopred_mlp::Mlp>,
    },
];

/// Looks a model up by name.
pub fn find(name: &str) -> Result<&'static ModelEntry> {
    match MODELS.iter().find(|m| m.name.eq_ignore_ascii_case(name)) {
        Some(m) => Ok(m),
        None => {
            bail!("unknown model '{name}'; available: {}", MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", "))
        }
    }
}
