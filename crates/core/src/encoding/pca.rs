//! Principal-component scores of the centred dosage matrix (DNNGP's input), fitted on the
//! training rows with `faer`'s thin SVD and applied to any rows with the training loadings.

use faer::Mat;

use super::dosage::{DosageEncoder, Scaling};
use crate::error::{CoreError, Result};
use crate::genotype::GenotypeMatrix;

/// How many components to keep.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcaComponents {
    /// A fixed number (capped at the rank the training set allows).
    Count(usize),
    /// The fewest components whose explained variance reaches this fraction (0, 1].
    VarianceFraction(f64),
}

/// A fitted PCA: centring means (and imputation values), loadings and explained variance.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pca {
    /// Centring (mean-imputing) encoder fitted on the training rows.
    pub centre: DosageEncoder,
    /// Loadings, `markers × components`, row-major.
    pub loadings: Vec<f64>,
    /// Number of components kept.
    pub n_components: usize,
    /// Fraction of the training variance each kept component explains.
    pub explained: Vec<f64>,
}

impl Pca {
    /// Fits on `rows`. Component signs are fixed (largest-magnitude loading positive) so that the
    /// same data give the same scores on every run.
    pub fn fit(geno: &GenotypeMatrix, rows: &[usize], components: PcaComponents) -> Result<Self> {
        if rows.len() < 2 {
            return Err(CoreError::Data("PCA needs at least 2 training samples".into()));
        }
        let centre = DosageEncoder::fit(geno, rows, Scaling::Centred);
        let x = centre.transform(geno, rows);
        let svd = x.thin_svd().map_err(|e| CoreError::Numerical(format!("SVD for PCA did not converge: {e:?}")))?;
        let s = svd.S().column_vector();
        let v = svd.V();
        let r = s.nrows();
        let mut order: Vec<usize> = (0..r).collect();
        order.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
        let var: Vec<f64> = order.iter().map(|&i| s[i] * s[i]).collect();
        let total: f64 = var.iter().sum();
        if total <= 0.0 {
            return Err(CoreError::Data("PCA: the training genotypes have no variance".into()));
        }
        // Components with (numerically) zero variance carry no information: centring leaves at
        // most n - 1 of them.
        let rank = var.iter().take_while(|&&v| v > total * 1e-12).count().max(1);
        let k = match components {
            PcaComponents::Count(k) => {
                if k == 0 {
                    return Err(CoreError::config("pca_components", 0, "must be at least 1"));
                }
                k.min(rank)
            }
            PcaComponents::VarianceFraction(f) => {
                if !(f > 0.0 && f <= 1.0) {
                    return Err(CoreError::config("pca_variance", f, "must be within (0, 1]"));
                }
                let mut acc = 0.0;
                let mut k = 0;
                while k < rank {
                    acc += var[k] / total;
                    k += 1;
                    if acc >= f - 1e-12 {
                        break;
                    }
                }
                k
            }
        };
        let m = geno.n_markers();
        let mut loadings = vec![0.0; m * k];
        for (c, &i) in order.iter().take(k).enumerate() {
            let col = v.col(i);
            let mut big = 0usize;
            for j in 0..m {
                if col[j].abs() > col[big].abs() {
                    big = j;
                }
            }
            let sign = if col[big] < 0.0 { -1.0 } else { 1.0 };
            for j in 0..m {
                loadings[j * k + c] = sign * col[j];
            }
        }
        let explained = var.iter().take(k).map(|v| v / total).collect();
        Ok(Pca { centre, loadings, n_components: k, explained })
    }

    /// Scores of `rows`: `rows × components`.
    pub fn transform(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Mat<f64> {
        let x = self.centre.transform(geno, rows);
        let k = self.n_components;
        let l = Mat::from_fn(self.centre.n_markers(), k, |j, c| self.loadings[j * k + c]);
        &x * &l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows follow two latent factors, so two components explain almost everything.
    fn geno(n: usize, m: usize) -> GenotypeMatrix {
        let mut codes = Vec::new();
        for i in 0..n {
            for j in 0..m {
                let v = if j % 2 == 0 { (i % 3) as u8 } else { ((i / 3) % 3) as u8 };
                codes.push(v * 100);
            }
        }
        GenotypeMatrix::with_generated_names(n, m, codes).unwrap()
    }

    #[test]
    fn variance_fraction_and_count() {
        let g = geno(18, 10);
        let rows: Vec<usize> = (0..18).collect();
        let pca = Pca::fit(&g, &rows, PcaComponents::VarianceFraction(0.95)).unwrap();
        assert_eq!(pca.n_components, 2);
        assert!((pca.explained.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let capped = Pca::fit(&g, &rows, PcaComponents::Count(50)).unwrap();
        assert_eq!(capped.n_components, 2, "rank caps the count");
        assert!(Pca::fit(&g, &rows, PcaComponents::VarianceFraction(1.5)).is_err());
        assert!(Pca::fit(&g, &rows, PcaComponents::Count(0)).is_err());
    }

    #[test]
    fn scores_are_uncorrelated_centred_and_preserve_distances() {
        let g = geno(18, 10);
        let rows: Vec<usize> = (0..18).collect();
        let pca = Pca::fit(&g, &rows, PcaComponents::Count(2)).unwrap();
        let s = pca.transform(&g, &rows);
        let mean0: f64 = (0..18).map(|i| s[(i, 0)]).sum::<f64>();
        let cross: f64 = (0..18).map(|i| s[(i, 0)] * s[(i, 1)]).sum::<f64>();
        assert!(mean0.abs() < 1e-9 && cross.abs() < 1e-9);
        // Full-rank projection keeps pairwise distances of the centred data.
        let x = pca.centre.transform(&g, &rows);
        let d = |a: usize, b: usize, mat: &Mat<f64>| -> f64 {
            (0..mat.ncols()).map(|j| (mat[(a, j)] - mat[(b, j)]).powi(2)).sum::<f64>()
        };
        assert!((d(1, 7, &x) - d(1, 7, &s)).abs() < 1e-9);
        // Deterministic signs: refitting gives identical scores.
        assert_eq!(pca.loadings, Pca::fit(&g, &rows, PcaComponents::Count(2)).unwrap().loadings);
    }

    #[test]
    fn fitted_on_training_rows_only() {
        let g = geno(18, 10);
        let train: Vec<usize> = (0..12).collect();
        let pca = Pca::fit(&g, &train, PcaComponents::Count(2)).unwrap();
        let all = Pca::fit(&g, &(0..18).collect::<Vec<_>>(), PcaComponents::Count(2)).unwrap();
        assert_ne!(pca.centre.means, all.centre.means);
        let s = pca.transform(&g, &[15, 16]);
        assert_eq!((s.nrows(), s.ncols()), (2, 2));
    }
}
