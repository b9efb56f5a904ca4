//! genopred-ensemble: DeepGS's ensemble of DeepGS and RR-BLUP (Ma et al. 2018), for any members.
//!
//! Every member is fitted on the training fold's fit rows (members with early stopping also get
//! the validation subset for it); each member then predicts the validation subset, and
//! [`elbpso::elbpso`] chooses the weights that maximise the mean NDCG of the weighted prediction
//! there, as the DeepGS R package's `ELBPSO` does. Test lines are only ever predicted: the
//! weights never see them (the R package's README example fits them on the test fold). See
//! README.md for how we read the paper's criterion.

pub mod elbpso;

use std::path::Path;

use genopred_core::cv::{Purpose, derive_seed, seed};
use genopred_core::{FitContext, FitInfo, GenotypeMatrix, ModelError, Predictor, TrainSet};
use serde::{Deserialize, Serialize};

use crate::elbpso::{Swarm, combine, elbpso, mean_ndcg};

/// The ensemble's settings (its members' own settings live in the config's `[member.NAME]`
/// tables, read by the catalogue entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleConfig {
    /// The members, by `--model` name (DeepGS's paper: DeepGS and RR-BLUP, for which GBLUP is the
    /// equivalent model on the same markers).
    pub members: Vec<String>,
    /// The fitness is mean NDCG over the top `top_percent` % of the validation lines (ELBPSO's
    /// fitness function calls `meanNDCG(..., topAlpha = 1)`).
    pub top_percent: f64,
    /// The swarm.
    pub swarm: Swarm,
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        EnsembleConfig { members: vec!["deepgs".into(), "gblup".into()], top_percent: 1.0, swarm: Swarm::default() }
    }
}

impl EnsembleConfig {
    /// Checks every value.
    pub fn check(&self) -> Result<(), ModelError> {
        let s = &self.swarm;
        let bad = |m: String| -> Result<(), ModelError> { Err(m.into()) };
        if self.members.len() < 2 {
            return bad(format!("members: an ensemble needs at least two members, got {:?}", self.members));
        }
        if let Some(dup) = self.members.iter().enumerate().find(|(i, m)| self.members[..*i].contains(m)) {
            return bad(format!("members: `{}` is listed twice", dup.1));
        }
        if !(self.top_percent > 0.0 && self.top_percent <= 100.0) {
            return bad(format!("top_percent = {} is out of range: must be in (0, 100]", self.top_percent));
        }
        if s.repeats == 0 || s.iterations == 0 || s.particles == 0 {
            return bad("swarm.repeats, swarm.iterations and swarm.particles must be at least 1".into());
        }
        if !(s.weight_min >= 0.0 && s.weight_max > s.weight_min && s.weight_max.is_finite()) {
            return bad(format!(
                "swarm.weight_min = {}, swarm.weight_max = {}: need 0 <= min < max",
                s.weight_min, s.weight_max
            ));
        }
        if !(s.rate_max > s.rate_min && s.rate_min.is_finite() && s.rate_max.is_finite()) {
            return bad(format!("swarm.rate_min = {}, swarm.rate_max = {}: need min < max", s.rate_min, s.rate_max));
        }
        Ok(())
    }
}

/// One member: its model and its resolved settings (TOML, saved beside its state).
pub struct Member {
    /// `--model` name.
    pub name: String,
    /// The model.
    pub model: Box<dyn Predictor>,
    /// Its resolved settings as TOML.
    pub config_toml: String,
}

/// What a fit reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnsembleReport {
    /// The weights, normalised to sum to one, by member.
    pub weights: Vec<(String, f64)>,
    /// Validation lines the weights were fitted on.
    pub n_valid: usize,
    /// Mean NDCG (the fitness) of each member and of the ensemble on them.
    pub valid_mean_ndcg: Vec<(String, f64)>,
    /// Each member's own fit report.
    pub member_fits: Vec<(String, FitInfo)>,
}

/// The saved weights (`ensemble.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    /// Members, in order.
    pub members: Vec<String>,
    /// Normalised weights, in the same order.
    pub weights: Vec<f64>,
}

/// Where member `i` is saved inside the ensemble's folder.
pub fn member_dir(dir: &Path, i: usize, name: &str) -> std::path::PathBuf {
    dir.join(format!("member-{}-{name}", i + 1))
}

/// The ensemble.
pub struct Ensemble {
    config: EnsembleConfig,
    members: Vec<Member>,
    weights: Option<Vec<f64>>,
}

impl Ensemble {
    /// A fresh ensemble of unfitted `members` (in the config's order).
    pub fn new(config: EnsembleConfig, members: Vec<Member>) -> Result<Self, ModelError> {
        config.check()?;
        Ok(Ensemble { config, members, weights: None })
    }

    /// A fitted ensemble from loaded members and saved weights.
    pub fn fitted(config: EnsembleConfig, members: Vec<Member>, weights: Vec<f64>) -> Result<Self, ModelError> {
        config.check()?;
        if weights.len() != members.len() || weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(format!("saved ensemble weights {weights:?} do not fit {} members", members.len()).into());
        }
        Ok(Ensemble { config, members, weights: Some(weights) })
    }

    /// Reads `ensemble.json` from a saved ensemble's folder.
    pub fn read_saved(dir: &Path) -> Result<Saved, ModelError> {
        Ok(genopred_core::output::read_json_state(dir, "ensemble.json")?)
    }

    /// The fitted weights (normalised), if fitted.
    pub fn weights(&self) -> Option<&[f64]> {
        self.weights.as_deref()
    }

    fn member_predictions(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Vec<Vec<f64>>, ModelError> {
        self.members.iter().map(|m| m.model.predict(geno, rows)).collect()
    }
}

impl Predictor for Ensemble {
    fn name(&self) -> &str {
        "ensemble"
    }

    fn fit(
        &mut self,
        train: &TrainSet<'_>,
        valid: Option<&TrainSet<'_>>,
        context: &FitContext<'_>,
    ) -> Result<FitInfo, ModelError> {
        let Some(valid) = valid.filter(|v| !v.rows.is_empty()) else {
            return Err("the ensemble fits its weights on the validation subset: use --valid-fraction > 0".into());
        };
        let mut member_fits = Vec::new();
        let mut epochs_run = None;
        for m in &mut self.members {
            let wants = m.model.wants_validation();
            let info = m
                .model
                .fit(train, wants.then_some(valid), context)
                .map_err(|e| ModelError::from(format!("member {}: {e}", m.name)))?;
            epochs_run = epochs_run.or(info.epochs_run);
            member_fits.push((m.name.clone(), info));
        }
        let preds = self.member_predictions(valid.geno, valid.rows)?;
        if preds.iter().flatten().any(|p| !p.is_finite()) {
            return Err("a member predicted a non-finite value on the validation subset".into());
        }
        let mut rng = seed::rng(derive_seed(context.seed, Purpose::Weights, &[]));
        let raw = elbpso(valid.y, &preds, self.config.top_percent, &self.config.swarm, &mut rng);
        let total: f64 = raw.iter().sum();
        if total.is_nan() || total <= 0.0 {
            return Err(format!("the swarm's weights {raw:?} sum to zero").into());
        }
        let weights: Vec<f64> = raw.iter().map(|w| w / total).collect();
        let names = self.members.iter().map(|m| m.name.clone());
        let mut valid_mean_ndcg: Vec<(String, f64)> =
            names.clone().zip(&preds).map(|(n, p)| (n, mean_ndcg(valid.y, p, self.config.top_percent))).collect();
        valid_mean_ndcg
            .push(("ensemble".into(), mean_ndcg(valid.y, &combine(&preds, &weights), self.config.top_percent)));
        let report = EnsembleReport {
            weights: names.zip(weights.iter().copied()).collect(),
            n_valid: valid.rows.len(),
            valid_mean_ndcg,
            member_fits,
        };
        self.weights = Some(weights);
        FitInfo::new(epochs_run, &report)
    }

    fn predict(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Vec<f64>, ModelError> {
        let weights = self.weights.as_ref().ok_or("the ensemble is not fitted")?;
        Ok(combine(&self.member_predictions(geno, rows)?, weights))
    }

    fn take_history(&mut self) -> Vec<genopred_core::EpochRecord> {
        self.members.iter_mut().map(|m| m.model.take_history()).find(|h| !h.is_empty()).unwrap_or_default()
    }

    fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let weights = self.weights.clone().ok_or("the ensemble is not fitted")?;
        for (i, m) in self.members.iter().enumerate() {
            let at = member_dir(dir, i, &m.name);
            let state = at.join("state");
            std::fs::create_dir_all(&state).map_err(|e| format!("creating {}: {e}", state.display()))?;
            genopred_core::output::write_atomic(&at.join("config.toml"), m.config_toml.as_bytes())?;
            m.model.save(&state)?;
        }
        let saved = Saved { members: self.members.iter().map(|m| m.name.clone()).collect(), weights };
        let json = serde_json::to_vec_pretty(&saved)?;
        genopred_core::output::write_atomic(&dir.join("ensemble.json"), &json)?;
        Ok(())
    }

    fn mean_imputes_missing(&self) -> bool {
        // Marker alignment fills an absent marker one way for all members: only when every
        // member imputes the mean is that the right fill for each.
        self.members.iter().all(|m| m.model.mean_imputes_missing())
    }
}

#[cfg(test)]
mod tests;
