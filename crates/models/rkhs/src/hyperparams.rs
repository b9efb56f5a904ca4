//! RKHS settings: the bandwidths REML chooses from, and the one-dimensional REML search over
//! `δ = σ²_e / σ²_g` (`genopred_core::reml`, as GBLUP's).

use genopred_core::check::{ConfigError, positive};
use genopred_core::reml::RemlSearch;

use crate::error::RkhsError;

/// Settings of an RKHS fit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RkhsConfig {
    /// Bandwidths θ of the kernel `exp(−θ d²ᵢⱼ / median d²)` (d² the squared Euclidean distance
    /// between two lines' dosages). Each fold fits REML at every θ and keeps the one with the
    /// highest restricted likelihood, as rrBLUP's `kin.blup` does over its grid of θ. Default:
    /// 1/8 to 8 in factors of 2 (θ = 1: two lines at the median distance are correlated e⁻¹).
    pub bandwidths: Vec<f64>,
    /// Grid points over `ln δ` before refinement (EMMA's 100, as GBLUP).
    pub grid_points: usize,
    /// Smallest `ln δ` searched.
    pub log_delta_min: f64,
    /// Largest `ln δ` searched.
    pub log_delta_max: f64,
}

impl Default for RkhsConfig {
    fn default() -> Self {
        let RemlSearch { grid_points, log_delta_min, log_delta_max } = RemlSearch::default();
        RkhsConfig { bandwidths: vec![0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0], grid_points, log_delta_min, log_delta_max }
    }
}

impl RkhsConfig {
    /// Validates the settings once ([`Rkhs::new`](crate::Rkhs::new) and
    /// [`Rkhs::load`](crate::Rkhs::load) call it), so the fit can trust them.
    pub fn check(&self) -> Result<(), RkhsError> {
        if self.bandwidths.is_empty() {
            return Err(ConfigError::new("bandwidths", "[]", "at least one positive value").into());
        }
        for (i, &theta) in self.bandwidths.iter().enumerate() {
            positive(&format!("bandwidths[{i}]"), theta)?;
        }
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
