//! GBLUP settings. The model itself has no tuning knobs: variance components come from REML.
//! These only control the one-dimensional REML search.

use genopred_core::reml::RemlSearch;

use crate::error::GblupError;

/// Settings of the REML search over `δ = σ²_e / σ²_g`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GblupConfig {
    /// Grid points over `ln δ` before refinement (EMMA, Kang et al. 2008, uses 100).
    pub grid_points: usize,
    /// Smallest `ln δ` searched (−10: heritability ≈ 1).
    pub log_delta_min: f64,
    /// Largest `ln δ` searched (+10: heritability ≈ 0).
    pub log_delta_max: f64,
}

impl Default for GblupConfig {
    fn default() -> Self {
        let RemlSearch { grid_points, log_delta_min, log_delta_max } = RemlSearch::default();
        GblupConfig { grid_points, log_delta_min, log_delta_max }
    }
}

impl GblupConfig {
    /// Validates the settings once ([`Gblup::new`](crate::Gblup::new) and
    /// [`Gblup::load`](crate::Gblup::load) call it), so the fit can trust them.
    pub fn check(&self) -> Result<(), GblupError> {
        self.search().check()?;
        Ok(())
    }

    /// The REML search these settings describe.
    pub fn search(&self) -> RemlSearch {
        RemlSearch {
            grid_points: self.grid_points,
            log_delta_min: self.log_delta_min,
            log_delta_max: self.log_delta_max,
        }
    }
}
