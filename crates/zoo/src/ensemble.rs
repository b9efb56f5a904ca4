//! The catalogue entry of the ensemble ([`genopred_ensemble`]): it builds and loads the members
//! through the catalogue itself, each from its own `[member.NAME]` table of the ensemble's config.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::Device;
use genopred_core::records::Compute;
use genopred_core::{GenotypeMatrix, Predictor};
use genopred_ensemble::{Ensemble, EnsembleConfig, Member, member_dir};
use genopred_train::conformance::Parity;
use genopred_train::{read_config_table, resolve_table};

use crate::entry::{Built, ModelEntry};
use crate::error::ZooError;
use crate::harness::StepBench;

/// The ensemble's entry.
pub struct EnsembleEntry;

fn config_error(message: String) -> ZooError {
    ZooError::Model(message.into())
}

/// The ensemble's own settings and each member's table (`[member.NAME]`), checked against the
/// members listed.
fn split(config: Option<(&toml::Table, &Path)>) -> Result<(EnsembleConfig, BTreeMap<String, toml::Table>), ZooError> {
    let Some((table, path)) = config else { return Ok((EnsembleConfig::default(), BTreeMap::new())) };
    let mut own = table.clone();
    let tables = match own.remove("member") {
        None => BTreeMap::new(),
        Some(toml::Value::Table(t)) => t
            .into_iter()
            .map(|(name, v)| match v {
                toml::Value::Table(t) => Ok((name, t)),
                _ => Err(config_error(format!("{}: `member.{name}` must be a table", path.display()))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(config_error(format!("{}: `member` must be a table of tables", path.display()))),
    };
    let resolved: EnsembleConfig = resolve_table(&EnsembleConfig::default(), Some((&own, path)))?;
    if let Some(stray) = tables.keys().find(|k| !resolved.members.contains(k)) {
        return Err(config_error(format!(
            "{}: `[member.{stray}]` names no member; the members are {}",
            path.display(),
            resolved.members.join(", ")
        )));
    }
    Ok((resolved, tables))
}

fn member_entry(name: &str) -> Result<&'static dyn ModelEntry, ZooError> {
    if name.eq_ignore_ascii_case("ensemble") {
        return Err(config_error("an ensemble cannot be a member of itself".into()));
    }
    crate::find(name)
}

impl ModelEntry for EnsembleEntry {
    fn name(&self) -> &'static str {
        "ensemble"
    }

    fn about(&self) -> &'static str {
        "DeepGS's ensemble (Ma et al. 2018): members (deepgs + gblup) weighted by ELBPSO on validation lines"
    }

    fn compute(&self) -> Compute {
        Compute::Device
    }

    fn tuning_space(&self) -> Option<&'static str> {
        None
    }

    fn build_table(&self, config: Option<(&toml::Table, &Path)>, device: &Device) -> Result<Built, ZooError> {
        let (own, tables) = split(config)?;
        own.check().map_err(ZooError::Model)?;
        let origin = config.map_or_else(|| PathBuf::from("the ensemble's defaults"), |(_, p)| p.to_path_buf());
        let mut members = Vec::new();
        let mut json = serde_json::Map::new();
        let mut toml_members = toml::Table::new();
        for name in &own.members {
            let entry = member_entry(name)?;
            let at = PathBuf::from(format!("{} [member.{name}]", origin.display()));
            let built = entry.build_table(tables.get(name).map(|t| (t, at.as_path())), device)?;
            json.insert(name.clone(), built.config);
            let table: toml::Table =
                toml::from_str(&built.config_toml).map_err(|e| ZooError::Serialise(e.to_string()))?;
            toml_members.insert(name.clone(), toml::Value::Table(table));
            members.push(Member { name: name.clone(), model: built.model, config_toml: built.config_toml });
        }
        let mut config = serde_json::to_value(&own).map_err(|e| ZooError::Serialise(e.to_string()))?;
        config["member"] = serde_json::Value::Object(json);
        let mut table: toml::Table = toml::Table::try_from(&own).map_err(|e| ZooError::Serialise(e.to_string()))?;
        table.insert("member".into(), toml::Value::Table(toml_members));
        let config_toml = toml::to_string(&table).map_err(|e| ZooError::Serialise(e.to_string()))?;
        let model = Ensemble::new(own, members).map_err(ZooError::Model)?;
        Ok(Built { model: Box::new(model), config, config_toml })
    }

    fn load(&self, config: &Path, state: &Path, device: &Device) -> Result<Box<dyn Predictor>, ZooError> {
        let table = read_config_table(config)?;
        let (own, _) = split(Some((&table, config)))?;
        let saved = Ensemble::read_saved(state).map_err(ZooError::Model)?;
        if saved.members != own.members {
            return Err(config_error(format!(
                "{}: the saved members {:?} differ from the config's {:?}",
                state.display(),
                saved.members,
                own.members
            )));
        }
        let members = own
            .members
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let at = member_dir(state, i, name);
                let model = member_entry(name)?.load(&at.join("config.toml"), &at.join("state"), device)?;
                let config_toml = std::fs::read_to_string(at.join("config.toml"))
                    .map_err(|e| config_error(format!("reading {}: {e}", at.join("config.toml").display())))?;
                Ok(Member { name: name.clone(), model, config_toml })
            })
            .collect::<Result<Vec<_>, ZooError>>()?;
        Ok(Box::new(Ensemble::fitted(own, members, saved.weights).map_err(ZooError::Model)?))
    }

    fn backend_parity(&self, _reference: &Device, _other: &Device) -> Vec<(String, Parity)> {
        Vec::new()
    }

    fn check_cross_backend(&self, _reference: &Device, _other: &Device) {}

    fn step_benches(&self, _geno: &GenotypeMatrix, _rows: &[usize], _device: &Device) -> Vec<Box<dyn StepBench>> {
        Vec::new()
    }
}
