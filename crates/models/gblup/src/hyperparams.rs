//! GBLUP settings. The model itself has no tuning knobs: variance components come from REML.
//! These only control how REML is computed: exactly in the eigenbasis of G, or matrix-free.

use genopred_core::reml::RemlSearch;

use crate::error::GblupError;
use crate::model::RemlMethod;

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
    /// How REML is computed: `auto` (the default), `exact`, `matrix-free`, or one exact form
    /// by name (`individual`, `marker`).
    pub method: RemlMethodChoice,
    /// `auto` runs the exact method while its working set — G (or ZᵀZ) and its
    /// eigendecomposition, about 36 d² bytes for d = min(training lines, markers) — stays within
    /// this many GB (2 GB: d up to about 7,400), and the matrix-free one beyond. A fixed number, not the machine's free memory, so
    /// the same settings choose the same method (and give the same numbers) on every machine.
    pub exact_memory_gb: f64,
    /// Random probes of the matrix-free method's trace estimate.
    pub probes: usize,
}

/// Which REML computation a GBLUP fit uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemlMethodChoice {
    /// Exact while it fits in `exact_memory_gb`, matrix-free beyond.
    #[default]
    Auto,
    /// Always exact REML (EMMA/FaST-LMM's eigenbasis form, in the space of lines or of markers,
    /// whichever is smaller).
    Exact,
    /// Always matrix-free (conjugate gradients and a stochastic trace; memory O(n) per vector).
    MatrixFree,
    /// Always exact in the space of lines (n × n), whatever the marker count.
    Individual,
    /// Always exact in the space of markers (m × m), whatever the line count.
    Marker,
}

/// Bytes of the exact method's working set per squared dimension (lines, or markers in the
/// marker form): the matrix, faer's working copy, the eigenvectors and the divide-and-conquer
/// scratch, 4.5 n² doubles (measured: 3.37 GB peak at 9,000 lines, genotypes included).
pub const EXACT_BYTES_PER_LINE_SQUARED: f64 = 36.0;

impl Default for GblupConfig {
    fn default() -> Self {
        let RemlSearch { grid_points, log_delta_min, log_delta_max } = RemlSearch::default();
        GblupConfig {
            grid_points,
            log_delta_min,
            log_delta_max,
            method: RemlMethodChoice::Auto,
            exact_memory_gb: 2.0,
            probes: 30,
        }
    }
}

impl GblupConfig {
    /// Validates the settings once ([`Gblup::new`](crate::Gblup::new) and
    /// [`Gblup::load`](crate::Gblup::load) call it), so the fit can trust them.
    pub fn check(&self) -> Result<(), GblupError> {
        self.search().check()?;
        genopred_core::check::non_negative("exact_memory_gb", self.exact_memory_gb)?;
        genopred_core::check::at_least("probes", self.probes, 2)?;
        Ok(())
    }

    /// The computation a fit on `n` training lines and `m` markers runs: exact REML in the
    /// smaller of the two spaces (lines: G, n × n; markers: ZᵀZ, m × m, when markers are fewer),
    /// unless `method` forces matrix-free or `auto` finds the exact working set (36 bytes per
    /// squared dimension) larger than `exact_memory_gb`.
    pub fn method_for(&self, n: usize, m: usize) -> RemlMethod {
        let exact = if m < n { RemlMethod::Marker } else { RemlMethod::Individual };
        match self.method {
            RemlMethodChoice::Exact => exact,
            RemlMethodChoice::MatrixFree => RemlMethod::MatrixFree,
            RemlMethodChoice::Individual => RemlMethod::Individual,
            RemlMethodChoice::Marker => RemlMethod::Marker,
            RemlMethodChoice::Auto => {
                let dim = n.min(m) as f64;
                if EXACT_BYTES_PER_LINE_SQUARED * dim * dim <= self.exact_memory_gb * 1e9 {
                    exact
                } else {
                    RemlMethod::MatrixFree
                }
            }
        }
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
