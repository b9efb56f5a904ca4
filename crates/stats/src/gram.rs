//! `X Xᵀ` of a genotype matrix's raw dosages, computed once for a whole run, and each fold's
//! training-centred `Z Zᵀ` derived from it.
//!
//! GBLUP's relationship matrix needs `Z Zᵀ` of the training lines with `Z` centred by the
//! training means (`zᵢⱼ = xᵢⱼ − μⱼ`, a missing call → 0). Centring is a rank-one correction:
//! `Z Zᵀ = X Xᵀ − v 1ᵀ − 1 vᵀ + (Σ μⱼ²) 1 1ᵀ` with `v = X μ`, so every fold's matrix follows from
//! one `X Xᵀ` of all lines (a blocked GEMM over the stored codes, `n² m`) and one `O(n m)` pass
//! per fold, instead of a `(0.9 n)² m` GEMM per fold. The two other differences between folds
//! are handled exactly:
//! - markers the fold's QC dropped: their `X_D X_Dᵀ` is subtracted (a GEMM over those markers
//!   only; callers compute directly when many are dropped, see [`SharedWork::worth_it`]);
//! - missing calls (`xᵢⱼ = 0` and `zᵢⱼ = 0` there): with `Sᵢ` the missing markers of line `i`,
//!   `(Z Zᵀ)ᵢₖ = (X Xᵀ)ᵢₖ − vᵢ − vₖ + c − qᵢ − qₖ + Pᵢₖ + Pₖᵢ + Qᵢₖ`, where `c = Σ μⱼ²`,
//!   `qᵢ = Σ_{j∈Sᵢ} μⱼ²`, `Pᵢₖ = Σ_{j∈Sₖ} xᵢⱼ μⱼ` and `Qᵢₖ = Σ_{j∈Sᵢ∩Sₖ} μⱼ²`: sparse sums: one
//!   `n`-long update per missing call, and the square of each marker's missing lines. Past
//!   [`MAX_MISSING_RATE`] missing calls a fold computes its matrix directly.
//!
//! Only genotypes enter `X Xᵀ`, never phenotypes; each fold reads the entries of its own training
//! lines, so the test lines' rows do not touch its fit.

use std::sync::{Arc, OnceLock};

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, get_global_parallelism};

use genopred_data::encoding::dosage::markers_per_block;
use genopred_data::genotype::{DOSAGE_SCALE, GenotypeMatrix, MISSING};

/// Share of missing calls (among a fold's training lines × kept markers) above which
/// [`RawGram::centred`] declines: its corrections cost about one `n`-long update per missing call
/// plus, per marker, the square of its missing lines, against `2 n²` per marker for a direct GEMM.
pub const MAX_MISSING_RATE: f64 = 0.05;

/// `X Xᵀ` (lines × lines) of the raw dosages of every line and marker, missing calls as 0.
pub struct RawGram {
    k: Mat<f64>,
}

impl std::fmt::Debug for RawGram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawGram({} × {})", self.k.nrows(), self.k.ncols())
    }
}

/// The dosage of a code, 0 for a missing call.
fn dosage_or_zero(code: u8) -> f64 {
    if code == MISSING { 0.0 } else { f64::from(code) / DOSAGE_SCALE }
}

/// `rows` × `markers` of `geno` as dosages (missing → 0), column-major.
fn decode(geno: &GenotypeMatrix, rows: &[usize], markers: &[usize]) -> Mat<f64> {
    let mut x = Mat::<f64>::zeros(rows.len(), markers.len());
    for (i, &r) in rows.iter().enumerate() {
        for (jj, &j) in markers.iter().enumerate() {
            x[(i, jj)] = dosage_or_zero(geno.code(r, j));
        }
    }
    x
}

impl RawGram {
    /// `X Xᵀ` of `geno`, a block of markers at a time (the decoded genotypes held at once are
    /// one block, as in [`markers_per_block`]).
    pub fn of(geno: &GenotypeMatrix) -> RawGram {
        let (n, m) = (geno.n_samples(), geno.n_markers());
        let rows: Vec<usize> = (0..n).collect();
        let block = markers_per_block(n);
        let mut k = Mat::<f64>::zeros(n, n);
        for start in (0..m).step_by(block) {
            let markers: Vec<usize> = (start..(start + block).min(m)).collect();
            let x = decode(geno, &rows, &markers);
            matmul(k.as_mut(), Accum::Add, x.as_ref(), x.transpose(), 1.0, get_global_parallelism());
        }
        RawGram { k }
    }

    /// Lines covered.
    pub fn n(&self) -> usize {
        self.k.nrows()
    }

    /// `Z Zᵀ` of `rows` over the markers `kept` (sorted indices into `geno`'s markers), with `Z`
    /// the dosages centred by `means` (one per kept marker) and missing calls at 0: what
    /// [`DosageEncoder::gram_of_rows`](genopred_data::encoding::DosageEncoder::gram_of_rows) gives for a
    /// centred encoder of those markers, to rounding. `None` when more than
    /// [`MAX_MISSING_RATE`] of those genotypes are missing: the corrections would then cost more
    /// than computing the matrix directly.
    ///
    /// # Panics
    /// If `geno` is not the matrix this was computed from (another number of lines), or `means`
    /// does not have one value per kept marker.
    pub fn centred(&self, geno: &GenotypeMatrix, kept: &[usize], rows: &[usize], means: &[f64]) -> Option<Mat<f64>> {
        assert_eq!(geno.n_samples(), self.n(), "X Xᵀ of another genotype matrix");
        assert_eq!(kept.len(), means.len(), "one mean per kept marker");
        let (n, m) = (rows.len(), geno.n_markers());
        let mut mu = vec![0.0; m];
        let mut is_kept = vec![false; m];
        for (&j, &mean) in kept.iter().zip(means) {
            mu[j] = mean;
            is_kept[j] = true;
        }
        // v = X μ, and each line's missing kept markers Sᵢ with qᵢ = Σ_{Sᵢ} μⱼ².
        let c: f64 = mu.iter().map(|u| u * u).sum();
        let mut v = vec![0.0; n];
        let mut q = vec![0.0; n];
        // For each kept marker, the lines (positions in `rows`) missing it.
        let mut lines_of: Vec<Vec<u32>> = vec![Vec::new(); m];
        let mut buf = Vec::new();
        for (i, &r) in rows.iter().enumerate() {
            let codes = geno.calls(r, 0..m, &mut buf);
            let mut s = 0.0;
            for j in 0..m {
                if codes[j] == MISSING {
                    if is_kept[j] {
                        lines_of[j].push(i as u32);
                        q[i] += mu[j] * mu[j];
                    }
                } else {
                    s += f64::from(codes[j]) * mu[j];
                }
            }
            v[i] = s / DOSAGE_SCALE;
        }
        let missing_calls: usize = lines_of.iter().map(Vec::len).sum();
        if missing_calls as f64 > MAX_MISSING_RATE * n as f64 * kept.len() as f64 {
            return None;
        }
        let mut g = Mat::from_fn(n, n, |i, k| self.k[(rows[i], rows[k])]);
        // Markers QC dropped in this fold.
        let dropped: Vec<usize> = (0..m).filter(|&j| !is_kept[j]).collect();
        for chunk in dropped.chunks(markers_per_block(n)) {
            let x = decode(geno, rows, chunk);
            matmul(g.as_mut(), Accum::Add, x.as_ref(), x.transpose(), -1.0, get_global_parallelism());
        }
        if lines_of.iter().any(|lines| !lines.is_empty()) {
            // P: Pᵢₖ = Σ_{j∈Sₖ} xᵢⱼ μⱼ, to be added as Pᵢₖ + Pₖᵢ: G is halved, P added one column
            // at a time (column j of X scaled by μⱼ, for each line k missing marker j) and then
            // G + Gᵀ taken, so no second n × n matrix is needed.
            g *= faer::Scale(0.5);
            let mut column = vec![0.0; n];
            for (j, lines) in lines_of.iter().enumerate().filter(|(_, lines)| !lines.is_empty()) {
                for (x, &r) in column.iter_mut().zip(rows) {
                    *x = dosage_or_zero(geno.code(r, j)) * mu[j];
                }
                for &k in lines {
                    for (gik, x) in g.col_as_slice_mut(k as usize).iter_mut().zip(&column) {
                        *gik += x;
                    }
                }
            }
            for k in 0..n {
                for i in k..n {
                    let sum = g[(i, k)] + g[(k, i)];
                    g[(i, k)] = sum;
                    g[(k, i)] = sum;
                }
            }
            // Q: Qᵢₖ = Σ_{j∈Sᵢ∩Sₖ} μⱼ², from each marker's lines with a missing call.
            for (j, lines) in lines_of.iter().enumerate() {
                let w = mu[j] * mu[j];
                for &i in lines {
                    for &k in lines {
                        g[(i as usize, k as usize)] += w;
                    }
                }
            }
        }
        for k in 0..n {
            for i in 0..n {
                g[(i, k)] += c - v[i] - v[k] - q[i] - q[k];
            }
        }
        Some(g)
    }
}

/// Share of `rows` × markers of `geno` that are missing calls.
pub fn missing_rate(geno: &GenotypeMatrix, rows: &[usize]) -> f64 {
    let missing: usize = rows.iter().map(|&r| geno.missing_in_sample(r)).sum();
    missing as f64 / (rows.len() * geno.n_markers()).max(1) as f64
}

/// Work the folds of one run share in one process: `X Xᵀ` of the run's genotypes, computed by the
/// first fit that asks for it and kept for the rest. A runner that fits several folds (or nested
/// tuning's inner folds) of one dataset in one process makes one and passes it to each fit
/// through `FitContext::shared` (genopred-eval); one fold alone gains nothing from it
/// (`X Xᵀ` of every line costs more than one fold's own GEMM).
#[derive(Debug, Default)]
pub struct SharedWork {
    gram: OnceLock<Arc<RawGram>>,
}

impl SharedWork {
    /// Nothing computed yet.
    pub fn new() -> Self {
        SharedWork::default()
    }

    /// `X Xᵀ` of `geno` (the run's whole matrix, the same for every call), computed on the first
    /// call. Fits that run at once wait for the one computing it.
    pub fn gram(&self, geno: &GenotypeMatrix) -> Arc<RawGram> {
        let gram = self.gram.get_or_init(|| Arc::new(RawGram::of(geno)));
        assert_eq!(gram.n(), geno.n_samples(), "SharedWork used for two genotype matrices");
        Arc::clone(gram)
    }

    /// Whether `X Xᵀ` has been computed.
    pub fn computed(&self) -> bool {
        self.gram.get().is_some()
    }

    /// Whether a fold that kept `kept` of `total` markers should derive its matrix from the
    /// shared `X Xᵀ`: while the dropped markers' correction (a GEMM over them) stays under a
    /// quarter of a direct GEMM over the kept ones.
    pub fn worth_it(kept: usize, total: usize) -> bool {
        4 * (total - kept.min(total)) <= kept
    }
}

/// What a fit may share with the other fits of its run (see [`SharedWork`]).
#[derive(Debug, Clone, Copy)]
pub struct Shared<'a> {
    /// The run's whole genotype matrix (every line, every marker), from which the fit's genotypes
    /// were cut: `TrainSet::geno` holds its markers `kept`, and the same lines.
    pub geno: &'a GenotypeMatrix,
    /// The markers this fold's QC kept, as indices into `geno`'s markers (sorted).
    pub kept: &'a [usize],
    /// The shared results.
    pub work: &'a SharedWork,
}

#[cfg(test)]
mod tests {
    use super::*;
    use genopred_data::encoding::{DosageEncoder, Scaling};
    use rand::Rng;

    /// Fractional dosages, some missing calls, a constant marker.
    fn geno(n: usize, m: usize, missing: f64, seed: u64) -> GenotypeMatrix {
        let mut rng = crate::seed::rng(seed);
        let codes = (0..n * m)
            .map(|k| {
                if k % m == 3 {
                    100
                } else if rng.random_bool(missing) {
                    MISSING
                } else if rng.random_bool(0.2) {
                    rng.random_range(0..=200u8)
                } else {
                    [0u8, 100, 200][rng.random_range(0..3)]
                }
            })
            .collect();
        GenotypeMatrix::with_generated_names(n, m, codes).unwrap()
    }

    fn assert_close(a: &Mat<f64>, b: &Mat<f64>, what: &str) {
        assert_eq!((a.nrows(), a.ncols()), (b.nrows(), b.ncols()));
        let scale = (0..b.nrows()).map(|i| b[(i, i)].abs()).fold(1.0f64, f64::max);
        for i in 0..a.nrows() {
            for k in 0..a.ncols() {
                assert!(
                    (a[(i, k)] - b[(i, k)]).abs() <= 1e-11 * scale,
                    "{what} ({i}, {k}): {} vs {}",
                    a[(i, k)],
                    b[(i, k)]
                );
            }
        }
    }

    #[test]
    fn each_folds_centred_gram_follows_from_one_raw_gram() {
        for (missing, seed) in [(0.0, 1), (0.03, 2)] {
            let g = geno(40, 57, missing, seed);
            let raw = RawGram::of(&g);
            // Two folds' training rows (unsorted, as cross-validation hands them), each with its
            // own kept markers.
            let rows_a: Vec<usize> = (0..40).filter(|i| i % 4 != 1).collect();
            let rows_b: Vec<usize> = (0..40).rev().filter(|i| i % 5 != 0).collect();
            let all: Vec<usize> = (0..57).collect();
            let some: Vec<usize> = (0..57).filter(|j| j % 9 != 2).collect();
            for (rows, kept) in [(&rows_a, &all), (&rows_b, &some), (&rows_a, &some)] {
                let sub = g.select_markers(kept);
                let encoder = DosageEncoder::fit(&sub, rows, Scaling::Centred);
                let direct = encoder.gram_of_rows(&sub, rows, 10);
                let derived = raw.centred(&g, kept, rows, &encoder.means).unwrap();
                assert_close(&derived, &direct, &format!("missing {missing}, {} kept", kept.len()));
            }
        }
    }

    #[test]
    fn many_missing_calls_are_left_to_the_direct_computation() {
        let g = geno(40, 57, 0.12, 4);
        let rows: Vec<usize> = (0..36).collect();
        let kept: Vec<usize> = (0..57).collect();
        let encoder = DosageEncoder::fit(&g, &rows, Scaling::Centred);
        assert!(RawGram::of(&g).centred(&g, &kept, &rows, &encoder.means).is_none());
        assert!(missing_rate(&g, &rows) > MAX_MISSING_RATE);
        assert_eq!(missing_rate(&geno(40, 57, 0.0, 4), &rows), 0.0);
    }

    #[test]
    fn the_shared_gram_is_computed_once() {
        let g = geno(12, 20, 0.0, 3);
        let work = SharedWork::new();
        assert!(!work.computed());
        let a = work.gram(&g);
        assert!(work.computed());
        let b = work.gram(&g);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(SharedWork::worth_it(80, 100));
        assert!(!SharedWork::worth_it(79, 100));
    }
}
