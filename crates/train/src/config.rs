//! Training hyperparameters shared by every neural model, and the `--config FILE.toml` loader.

use std::path::Path;

use burn::config::Config;
use genopred_core::check::{ConfigError, at_least, fraction, non_negative, open_unit, positive};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::arch::Architecture;
use crate::error::TrainError;

/// The optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Adam (`beta_1`, `beta_2`, `epsilon`); `weight_decay` is coupled L2 as in `torch.optim.Adam`.
    Adam,
    /// Stochastic gradient descent with `momentum` (no dampening) and coupled `weight_decay`, as in
    /// mxnet, Keras and PyTorch.
    Sgd,
}

/// The data loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Mean squared error (times `loss_scale`).
    Mse,
    /// Mean absolute error (times `loss_scale`).
    L1,
}

/// What early stopping and ReduceLROnPlateau watch on the validation subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// Data loss plus penalties, as Keras's `val_loss`.
    ValLoss,
    /// Mean squared error.
    ValMse,
    /// Mean absolute error.
    ValMae,
}

/// What ReduceLROnPlateau watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateauMonitor {
    /// The value early stopping watches (`monitor`), on the validation subset.
    Validation,
    /// The training objective (data loss plus penalties) averaged over the epoch, as Keras's
    /// `ReduceLROnPlateau(monitor='loss')`: DNNGP's released code.
    TrainLoss,
}

/// Hyperparameters of the training loop. Every model crate sets its own defaults (the original's).
#[derive(Config, Debug)]
pub struct TrainConfig {
    /// `adam` or `sgd`.
    #[config(default = "OptimizerKind::Adam")]
    pub optimizer: OptimizerKind,
    /// Initial learning rate.
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// Adam's β₁.
    #[config(default = 0.9)]
    pub beta_1: f64,
    /// Adam's β₂.
    #[config(default = 0.999)]
    pub beta_2: f64,
    /// Adam's ε (Keras 1e-7; burn's own default is 1e-5).
    #[config(default = 1e-7)]
    pub epsilon: f64,
    /// SGD momentum (0 = plain SGD).
    #[config(default = 0.0)]
    pub momentum: f64,
    /// Coupled L2 weight decay applied by the optimiser to every parameter (0 = off).
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// `mse` or `l1`.
    #[config(default = "LossKind::Mse")]
    pub loss: LossKind,
    /// Factor on the data loss (0.5 reproduces mxnet's `LinearRegressionOutput` gradient).
    #[config(default = 1.0)]
    pub loss_scale: f64,
    /// Samples per batch (the last batch of an epoch may be smaller).
    #[config(default = 64)]
    pub batch_size: usize,
    /// Maximum number of epochs.
    #[config(default = 100)]
    pub epochs: usize,
    /// The quantity early stopping and the plateau schedule watch.
    #[config(default = "Monitor::ValLoss")]
    pub monitor: Monitor,
    /// Stop after this many epochs without improvement (0 = never stop early).
    #[config(default = 25)]
    pub patience: usize,
    /// Smallest decrease of the monitored value that counts as an improvement.
    #[config(default = 0.0)]
    pub min_delta: f64,
    /// Predict with the weights of the best validation epoch instead of the last epoch's.
    #[config(default = true)]
    pub restore_best: bool,
    /// ReduceLROnPlateau factor (0 = no schedule).
    #[config(default = 0.0)]
    pub plateau_factor: f64,
    /// What ReduceLROnPlateau watches: `validation` (the value early stopping watches) or
    /// `train_loss`.
    #[config(default = "PlateauMonitor::Validation")]
    pub plateau_monitor: PlateauMonitor,
    /// ReduceLROnPlateau patience in epochs.
    #[config(default = 10)]
    pub plateau_patience: usize,
    /// ReduceLROnPlateau's threshold for an improvement (Keras `min_delta` default 1e-4).
    #[config(default = 1e-4)]
    pub plateau_min_delta: f64,
    /// Lower bound of the learning rate under the plateau schedule.
    #[config(default = 0.0)]
    pub min_learning_rate: f64,
    /// Standardise the trait with the training rows' mean and sd (predictions are transformed back).
    #[config(default = true)]
    pub standardise_y: bool,
    /// Shuffle the training rows every epoch (seeded).
    #[config(default = true)]
    pub shuffle: bool,
}

impl TrainConfig {
    /// Checks the ranges of every value (keys named `train.*`, as in a config file).
    pub fn check(&self) -> Result<(), ConfigError> {
        positive("train.learning_rate", self.learning_rate)?;
        fraction("train.beta_1", self.beta_1)?;
        fraction("train.beta_2", self.beta_2)?;
        open_unit("train.epsilon", self.epsilon)?;
        fraction("train.momentum", self.momentum)?;
        non_negative("train.weight_decay", self.weight_decay)?;
        positive("train.loss_scale", self.loss_scale)?;
        at_least("train.batch_size", self.batch_size, 1)?;
        at_least("train.epochs", self.epochs, 1)?;
        non_negative("train.min_delta", self.min_delta)?;
        non_negative("train.plateau_min_delta", self.plateau_min_delta)?;
        fraction("train.plateau_factor", self.plateau_factor).map_err(|e| e.hint("0 turns it off"))?;
        non_negative("train.min_learning_rate", self.min_learning_rate)?;
        Ok(())
    }
}

/// Top-level keys of a config file that are run settings rather than model settings: `backend`
/// (the burn backend, as `--backend`; the command line wins). [`resolve_config`] skips them.
pub const RUN_KEYS: &[&str] = &["backend"];

/// Resolves a model's configuration: its defaults, overridden by the keys of a TOML file.
///
/// Every key of the file must exist in the defaults (nested tables included): an unknown or
/// misspelt key is an error naming it, the file and the keys that exist, never silently ignored.
/// The run settings of [`RUN_KEYS`] are skipped.
pub fn resolve_config<C: Serialize + DeserializeOwned>(defaults: &C, file: Option<&Path>) -> Result<C, TrainError> {
    resolve_config_with(|_| to_json(defaults), file)
}

/// [`resolve_config`] with defaults that depend on the file's own keys: `defaults` receives the
/// file's table (JSON; empty without a file) and returns the defaults to merge it over (DNNGP's
/// `variant = "v3"` brings the released code's training schedule).
pub fn resolve_config_with<C: DeserializeOwned>(
    defaults: impl FnOnce(&serde_json::Value) -> Result<serde_json::Value, TrainError>,
    file: Option<&Path>,
) -> Result<C, TrainError> {
    match file {
        None => resolve_table_with(defaults, None),
        Some(path) => resolve_table_with(defaults, Some((&read_config_table(path)?, path))),
    }
}

/// Reads a config file's keys (errors name the file).
pub fn read_config_table(path: &Path) -> Result<toml::Table, TrainError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| TrainError::Config(format!("cannot read config file {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| TrainError::Config(format!("{}: not valid TOML: {e}", path.display())))
}

/// [`resolve_config_with`] from keys already read: `source` is the table and where it came
/// from (a file, or a table inside one, named in errors).
pub fn resolve_table_with<C: DeserializeOwned>(
    defaults: impl FnOnce(&serde_json::Value) -> Result<serde_json::Value, TrainError>,
    source: Option<(&toml::Table, &Path)>,
) -> Result<C, TrainError> {
    let Some((table, path)) = source else {
        let merged = defaults(&serde_json::Value::Object(serde_json::Map::new()))?;
        return serde_json::from_value(merged).map_err(|e| TrainError::Config(e.to_string()));
    };
    let mut user = serde_json::to_value(table).map_err(|e| TrainError::Config(e.to_string()))?;
    // Run settings that live beside the model's keys (read by the command line, not the model).
    if let Some(map) = user.as_object_mut() {
        for key in RUN_KEYS {
            if let Some(v) = map.remove(*key)
                && !v.is_string()
            {
                return Err(TrainError::Config(format!("{}: `{key}` must be a string", path.display())));
            }
        }
    }
    let mut merged = defaults(&user)?;
    merge(&mut merged, &user, "", path)?;
    serde_json::from_value(merged).map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))
}

/// [`resolve_config`] from keys already read (see [`resolve_table_with`]).
pub fn resolve_table<C: Serialize + DeserializeOwned>(
    defaults: &C,
    source: Option<(&toml::Table, &Path)>,
) -> Result<C, TrainError> {
    resolve_table_with(|_| to_json(defaults), source)
}

/// [`resolve_arch_config`] from keys already read (see [`resolve_table_with`]).
pub fn resolve_arch_table<A: Architecture>(source: Option<(&toml::Table, &Path)>) -> Result<A::Config, TrainError> {
    resolve_table_with(|user| to_json(&A::defaults_for(user)), source)
}

/// An architecture's configuration: its defaults ([`Architecture::defaults_for`] the file's
/// keys), overridden by the TOML file `file`, as [`resolve_config`].
pub fn resolve_arch_config<A: Architecture>(file: Option<&Path>) -> Result<A::Config, TrainError> {
    resolve_config_with(|user| to_json(&A::defaults_for(user)), file)
}

fn to_json<C: Serialize>(c: &C) -> Result<serde_json::Value, TrainError> {
    serde_json::to_value(c).map_err(|e| TrainError::Config(e.to_string()))
}

fn merge(base: &mut serde_json::Value, user: &serde_json::Value, prefix: &str, path: &Path) -> Result<(), TrainError> {
    let (Some(base), Some(user)) = (base.as_object_mut(), user.as_object()) else {
        return Err(TrainError::Config(format!("{}: `{prefix}` must be a table", path.display())));
    };
    for (key, value) in user {
        let full = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        let Some(slot) = base.get_mut(key) else {
            let mut known: Vec<&String> = base.keys().collect();
            known.sort();
            return Err(TrainError::Config(format!(
                "{}: unknown key `{full}`; the keys here are: {}",
                path.display(),
                known.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
            )));
        };
        if slot.is_object() && value.is_object() {
            merge(slot, value, &full, path)?;
        } else if slot.is_object() {
            return Err(TrainError::Config(format!("{}: `{full}` must be a table", path.display())));
        } else {
            *slot = value.clone();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn file_overrides_defaults_and_keeps_the_rest() {
        let f = write("epochs = 7\noptimizer = \"sgd\"\nmomentum = 0.5\n");
        let c = resolve_config(&TrainConfig::new(), Some(f.path())).unwrap();
        assert_eq!(c.epochs, 7);
        assert_eq!(c.optimizer, OptimizerKind::Sgd);
        assert_eq!(c.batch_size, 64);
        c.check().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let f = write("epoch = 7\n");
        let e = resolve_config(&TrainConfig::new(), Some(f.path())).unwrap_err().to_string();
        assert!(e.contains("unknown key `epoch`") && e.contains("epochs"), "{e}");
        let f = write("optimizer = \"rmsprop\"\n");
        assert!(resolve_config(&TrainConfig::new(), Some(f.path())).is_err());
        let f = write("backend = 3\n");
        assert!(
            resolve_config(&TrainConfig::new(), Some(f.path()))
                .unwrap_err()
                .to_string()
                .contains("`backend` must be a string")
        );
        let f = write("backend = \"wgpu\"\nepochs = 3\n");
        assert_eq!(resolve_config(&TrainConfig::new(), Some(f.path())).unwrap().epochs, 3);
        let f = write("learning_rate = -1.0\n");
        let c = resolve_config(&TrainConfig::new(), Some(f.path())).unwrap();
        let e = c.check().unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.value.as_str(), e.allowed.as_str()),
            ("train.learning_rate", "-1", "must be > 0")
        );
        assert_eq!(e.to_string(), "train.learning_rate = -1 is out of range: must be > 0");
    }
}
