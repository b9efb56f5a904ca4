//! Marker and sample quality control. Marker filters are *fitted on the training samples only*
//! ([`MarkerQc::fit`]) and then applied to every sample, so the test fold never decides which
//! markers a model sees.

use crate::check::within;
use crate::error::{CoreError, Result};
use crate::genotype::{GenotypeMatrix, MISSING};

/// QC thresholds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QcConfig {
    /// Markers with minor-allele frequency below this are dropped (default 0.01).
    pub min_maf: f64,
    /// Markers with a larger fraction of missing calls are dropped (default 0.2).
    pub max_marker_missing: f64,
    /// Samples with a larger fraction of missing calls are dropped before anything else
    /// (default 1.0: keep all; a sample's own missing rate involves no other sample).
    pub max_sample_missing: f64,
}

impl Default for QcConfig {
    fn default() -> Self {
        QcConfig { min_maf: 0.01, max_marker_missing: 0.2, max_sample_missing: 1.0 }
    }
}

impl QcConfig {
    /// Checks that every threshold is a fraction in range.
    pub fn check(&self) -> Result<()> {
        within("min_maf", self.min_maf, 0.0, 0.5)?;
        within("max_marker_missing", self.max_marker_missing, 0.0, 1.0)?;
        within("max_sample_missing", self.max_sample_missing, 0.0, 1.0)?;
        Ok(())
    }
}

/// Counts of what marker QC removed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QcReport {
    /// Markers before QC.
    pub markers_in: usize,
    /// Dropped: no variation among the training samples.
    pub monomorphic: usize,
    /// Dropped: minor-allele frequency below the threshold.
    pub low_maf: usize,
    /// Dropped: too many missing calls.
    pub high_missing: usize,
    /// Markers kept.
    pub kept: usize,
}

/// Per-marker statistics over a set of samples (non-missing calls only).
#[derive(Debug, Clone, PartialEq)]
pub struct MarkerStats {
    /// Mean dosage.
    pub mean: Vec<f64>,
    /// Population standard deviation of the dosage.
    pub sd: Vec<f64>,
    /// Fraction of missing calls.
    pub missing: Vec<f64>,
}

impl MarkerStats {
    /// Computes the statistics of every marker over `rows`.
    pub fn compute(geno: &GenotypeMatrix, rows: &[usize]) -> Self {
        let m = geno.n_markers();
        let mut sum = vec![0f64; m];
        let mut sum2 = vec![0f64; m];
        let mut count = vec![0u32; m];
        let mut buf = Vec::new();
        for &r in rows {
            for (j, &c) in geno.calls(r, 0..m, &mut buf).iter().enumerate() {
                if c != MISSING {
                    let d = f64::from(c) / crate::genotype::DOSAGE_SCALE;
                    sum[j] += d;
                    sum2[j] += d * d;
                    count[j] += 1;
                }
            }
        }
        let n = rows.len().max(1) as f64;
        let mut stats = MarkerStats { mean: vec![0.0; m], sd: vec![0.0; m], missing: vec![1.0; m] };
        for j in 0..m {
            if count[j] > 0 {
                let k = f64::from(count[j]);
                let mean = sum[j] / k;
                stats.mean[j] = mean;
                stats.sd[j] = (sum2[j] / k - mean * mean).max(0.0).sqrt();
                stats.missing[j] = 1.0 - k / n;
            }
        }
        stats
    }

    /// Minor-allele frequency of marker `j` (`min(p, 1 - p)`, `p = mean / 2`).
    pub fn maf(&self, j: usize) -> f64 {
        let p = self.mean[j] / 2.0;
        p.min(1.0 - p)
    }
}

/// The markers kept by QC fitted on a training set.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MarkerQc {
    /// Indices (into the input matrix's markers) of the kept markers, in input order.
    pub kept: Vec<usize>,
    /// What was removed and why.
    pub report: QcReport,
}

/// Standard deviations below this count as "no variation" (dosages are stored to 0.01).
const MONOMORPHIC_SD: f64 = 1e-9;

impl MarkerQc {
    /// Decides which markers to keep from the calls of `train_rows` only.
    pub fn fit(geno: &GenotypeMatrix, train_rows: &[usize], config: &QcConfig) -> Result<Self> {
        config.check()?;
        let stats = MarkerStats::compute(geno, train_rows);
        let mut report = QcReport { markers_in: geno.n_markers(), ..QcReport::default() };
        let mut kept = Vec::new();
        for j in 0..geno.n_markers() {
            if stats.missing[j] > config.max_marker_missing {
                report.high_missing += 1;
            } else if stats.sd[j] < MONOMORPHIC_SD {
                report.monomorphic += 1;
            } else if stats.maf(j) < config.min_maf {
                report.low_maf += 1;
            } else {
                kept.push(j);
            }
        }
        report.kept = kept.len();
        if kept.is_empty() {
            return Err(CoreError::Data(format!(
                "quality control removed all {} markers ({} monomorphic, {} with MAF < {}, {} with more than {} missing); \
                 relax --min-maf / --max-marker-missing or check the genotype file",
                report.markers_in,
                report.monomorphic,
                report.low_maf,
                config.min_maf,
                report.high_missing,
                config.max_marker_missing
            )));
        }
        Ok(MarkerQc { kept, report })
    }
}

/// Rows whose missing rate is at most `max_missing`, and the ids of those removed.
pub fn filter_samples(geno: &GenotypeMatrix, max_missing: f64) -> (Vec<usize>, Vec<String>) {
    let m = geno.n_markers().max(1) as f64;
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for s in 0..geno.n_samples() {
        let rate = geno.missing_in_sample(s) as f64 / m;
        if rate > max_missing {
            removed.push(geno.samples()[s].clone());
        } else {
            kept.push(s);
        }
    }
    (kept, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: &[&[u8]]) -> GenotypeMatrix {
        GenotypeMatrix::with_generated_names(rows.len(), rows[0].len(), rows.concat()).unwrap()
    }

    #[test]
    fn filters_monomorphic_low_maf_and_missing() {
        // m0 varies; m1 constant; m2 rare (1 copy in 40 alleles); m3 half missing.
        let mut rows: Vec<Vec<u8>> = (0..20)
            .map(|i| vec![(i % 3 * 100) as u8, 200, 0, if i % 2 == 0 { MISSING } else { (i % 4 * 50) as u8 }])
            .collect();
        rows[0][2] = 100;
        let refs: Vec<&[u8]> = rows.iter().map(Vec::as_slice).collect();
        let g = matrix(&refs);
        let all: Vec<usize> = (0..20).collect();
        let qc = MarkerQc::fit(&g, &all, &QcConfig { min_maf: 0.05, max_marker_missing: 0.2, max_sample_missing: 1.0 })
            .unwrap();
        assert_eq!(qc.kept, [0]);
        assert_eq!((qc.report.monomorphic, qc.report.low_maf, qc.report.high_missing), (1, 1, 1));
        let lenient =
            MarkerQc::fit(&g, &all, &QcConfig { min_maf: 0.0, max_marker_missing: 0.6, max_sample_missing: 1.0 })
                .unwrap();
        assert_eq!(lenient.kept, [0, 2, 3]);
    }

    #[test]
    fn fitted_on_training_rows_only() {
        // m0 only varies in rows 2..4: monomorphic when fitted on rows 0..2.
        let g = matrix(&[&[0, 0], &[0, 200], &[200, 100], &[100, 0]]);
        let qc = MarkerQc::fit(&g, &[0, 1], &QcConfig::default()).unwrap();
        assert_eq!(qc.kept, [1]);
        let err = MarkerQc::fit(&g, &[0], &QcConfig::default()).unwrap_err().to_string();
        assert!(err.contains("removed all 2 markers"), "{err}");
    }

    #[test]
    fn stats_and_sample_filter() {
        let g = matrix(&[&[0, MISSING], &[200, MISSING], &[100, 200]]);
        let s = MarkerStats::compute(&g, &[0, 1, 2]);
        assert!((s.mean[0] - 1.0).abs() < 1e-12);
        assert!((s.sd[0] - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((s.missing[1] - 2.0 / 3.0).abs() < 1e-12);
        let (kept, removed) = filter_samples(&g, 0.4);
        assert_eq!(kept, [2]);
        assert_eq!(removed, ["s0", "s1"]);
        assert!(QcConfig { min_maf: 0.7, ..QcConfig::default() }.check().is_err());
    }
}
