//! Principal-component scores of the centred dosage matrix (DNNGP's input), fitted on the
//! training rows with `faer`'s thin SVD — or, for matrices too large to hold in f64, from the
//! eigendecomposition of the smaller Gram matrix built a block at a time — and applied to any
//! rows with the training loadings.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, get_global_parallelism};

use super::dosage::{DosageEncoder, Scaling, lines_per_block, markers_per_block};
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
        Self::fit_dense_up_to(geno, rows, components, DENSE_SVD_BYTES)
    }

    /// [`fit`](Self::fit), decomposing the centred matrix whole only up to `dense_bytes` (of f64).
    pub fn fit_dense_up_to(
        geno: &GenotypeMatrix,
        rows: &[usize],
        components: PcaComponents,
        dense_bytes: usize,
    ) -> Result<Self> {
        if rows.len() < 2 {
            return Err(CoreError::Data("PCA needs at least 2 training samples".into()));
        }
        let centre = DosageEncoder::fit(geno, rows, Scaling::Centred);
        let (n, m) = (rows.len(), geno.n_markers());
        // Components by decreasing variance, and a way to get the top k's loadings (m × k).
        let (var, top): (Vec<f64>, TopLoadings<'_>) = if n * m * 8 <= dense_bytes {
            let x = centre.transform(geno, rows);
            let svd = x.thin_svd().map_err(|e| CoreError::Numerical(format!("SVD for PCA did not converge: {e:?}")))?;
            let s = svd.S().column_vector();
            let mut order: Vec<usize> = (0..s.nrows()).collect();
            order.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
            let var = order.iter().map(|&i| s[i] * s[i]).collect();
            let v = svd.V().to_owned();
            (var, Box::new(move |k| row_major(m, k, |j, c| v[(j, order[c])])))
        } else if m <= n {
            // XᵀX = V Λ Vᵀ (m × m), a block of lines at a time: the loadings are V.
            let gram = centre.gram_of_markers(geno, rows, lines_per_block(m));
            let (var, vectors) = descending_eigen(&gram)?;
            (var, Box::new(move |k| row_major(m, k, |j, c| vectors[(j, c)])))
        } else {
            // XXᵀ = U Λ Uᵀ (n × n), a block of markers at a time; loadings Xᵀ U Λ^(-1/2).
            let per_block = markers_per_block(n);
            let gram = centre.gram_of_rows(geno, rows, per_block);
            let (var, vectors) = descending_eigen(&gram)?;
            drop(gram);
            let lambda = var.clone();
            let centre = &centre;
            (
                var,
                Box::new(move |k| {
                    let u = Mat::from_fn(n, k, |i, c| vectors[(i, c)] / lambda[c].max(f64::MIN_POSITIVE).sqrt());
                    // Straight into the row-major loadings, a block of markers at a time: the
                    // m × k loadings (gigabytes for thousands of components over 100,000+
                    // markers) exist once.
                    let mut l = vec![0.0; m * k];
                    for start in (0..m).step_by(per_block) {
                        let end = (start + per_block).min(m);
                        let xt = centre.transform_markers_t(geno, rows, start..end);
                        let block = MatMut::from_row_major_slice_mut(&mut l[start * k..end * k], end - start, k);
                        matmul(block, Accum::Replace, xt.as_ref(), u.as_ref(), 1.0, get_global_parallelism());
                    }
                    l
                }),
            )
        };
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
        let mut loadings = top(k);
        drop(top);
        // Each component's sign: its largest-magnitude loading (the first of ties) positive.
        let mut big = vec![0usize; k];
        for j in 0..m {
            for c in 0..k {
                if loadings[j * k + c].abs() > loadings[big[c] * k + c].abs() {
                    big[c] = j;
                }
            }
        }
        let flip: Vec<bool> = (0..k).map(|c| loadings[big[c] * k + c] < 0.0).collect();
        for row in loadings.chunks_exact_mut(k.max(1)) {
            for (l, &f) in row.iter_mut().zip(&flip) {
                if f {
                    *l = -*l;
                }
            }
        }
        let explained = var.iter().take(k).map(|v| v / total).collect();
        Ok(Pca { centre, loadings, n_components: k, explained })
    }

    /// Scores of `rows`: `rows × components`, a block of markers at a time (one block, the
    /// plain product, whenever the decoded rows fit in it).
    pub fn transform(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Mat<f64> {
        self.transform_blocked(geno, rows, markers_per_block(rows.len()))
    }

    /// [`transform`](Self::transform) with `per_block` markers decoded at a time.
    pub fn transform_blocked(&self, geno: &GenotypeMatrix, rows: &[usize], per_block: usize) -> Mat<f64> {
        let (k, m) = (self.n_components, self.centre.n_markers());
        let l = MatRef::from_row_major_slice(&self.loadings, m, k);
        let per_block = per_block.max(1);
        if per_block >= m {
            return self.centre.transform(geno, rows) * l;
        }
        let mut scores = Mat::<f64>::zeros(rows.len(), k);
        for start in (0..m).step_by(per_block) {
            let end = (start + per_block).min(m);
            let xt = self.centre.transform_markers_t(geno, rows, start..end);
            matmul(scores.as_mut(), Accum::Add, xt.transpose(), l.get(start..end, ..), 1.0, get_global_parallelism());
        }
        scores
    }
}

/// Up to this size the centred training matrix (f64) is decomposed whole by a thin SVD; beyond
/// it PCA works from the smaller Gram matrix (`XᵀX` or `XXᵀ`), built a block at a time, so the
/// n × m matrix never exists.
pub const DENSE_SVD_BYTES: usize = 512 << 20;

/// The loadings of the top k components (m × k, row-major), computed once k is known.
type TopLoadings<'a> = Box<dyn Fn(usize) -> Vec<f64> + 'a>;

/// An m × k row-major buffer of `f(j, c)`.
fn row_major(m: usize, k: usize, f: impl Fn(usize, usize) -> f64) -> Vec<f64> {
    (0..m).flat_map(|j| (0..k).map(move |c| (j, c))).map(|(j, c)| f(j, c)).collect()
}

/// Eigenvalues (clamped at 0) in decreasing order and the matching eigenvectors of a symmetric
/// matrix.
fn descending_eigen(a: &Mat<f64>) -> Result<(Vec<f64>, Mat<f64>)> {
    let evd = a
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| CoreError::Numerical(format!("eigendecomposition for PCA failed: {e:?}")))?;
    let (u, s) = (evd.U(), evd.S().column_vector());
    let d = s.nrows();
    // faer returns them increasing.
    let var = (0..d).rev().map(|i| s[i].max(0.0)).collect();
    let vectors = Mat::from_fn(a.nrows(), d, |i, c| u[(i, d - 1 - c)]);
    Ok((var, vectors))
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

    #[test]
    fn the_gram_paths_give_the_svd_components() {
        // Random dosages with a little structure, both shapes: more markers than lines (XXᵀ)
        // and fewer (XᵀX), with a missing call.
        for (n, m) in [(30, 80), (80, 30)] {
            let mut codes: Vec<u8> = (0..n * m).map(|i| ((i * 7919 + i / m * 31) % 3) as u8 * 100).collect();
            codes[5] = crate::genotype::MISSING;
            let g = GenotypeMatrix::with_generated_names(n, m, codes).unwrap();
            let rows: Vec<usize> = (0..n).filter(|i| i % 6 != 0).collect();
            for comps in [PcaComponents::Count(5), PcaComponents::VarianceFraction(0.6)] {
                let svd = Pca::fit(&g, &rows, comps).unwrap();
                let gram = Pca::fit_dense_up_to(&g, &rows, comps, 0).unwrap();
                assert_eq!(svd.n_components, gram.n_components, "{n} × {m}");
                for (a, b) in svd.explained.iter().zip(&gram.explained) {
                    assert!((a - b).abs() < 1e-10, "{n} × {m}: explained {a} vs {b}");
                }
                for (a, b) in svd.loadings.iter().zip(&gram.loadings) {
                    assert!((a - b).abs() < 1e-8, "{n} × {m}: loading {a} vs {b}");
                }
                let (s1, s2) = (svd.transform(&g, &[0, 6, 7]), gram.transform_blocked(&g, &[0, 6, 7], 7));
                for i in 0..3 {
                    for c in 0..svd.n_components {
                        assert!((s1[(i, c)] - s2[(i, c)]).abs() < 1e-8);
                    }
                }
            }
        }
    }
}
