//! Single-marker association tests: for each marker, the linear regression of the trait on its
//! dosage with an intercept and the top principal components as covariates (the usual control
//! for population structure), and the two-sided t-test of the slope. The baseline DLGWAS compares
//! its saliency maps with, and a check that a model's important markers make sense.

use faer::Mat;
use statrs::distribution::{ContinuousCDF, StudentsT};

use genopred_data::encoding::{DosageEncoder, Pca, PcaComponents, Scaling};
use genopred_data::error::{CoreError, Result};
use genopred_data::genotype::GenotypeMatrix;

/// One marker's test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MarkerTest {
    /// Slope: trait units per copy of the counted allele.
    pub beta: f64,
    /// Its standard error.
    pub se: f64,
    /// `beta / se`.
    pub t: f64,
    /// Two-sided p-value (t distribution with `n − covariates − 2` degrees of freedom).
    pub p: f64,
    /// `−log10 p`, capped at 300 where `p` underflows.
    pub score: f64,
}

/// All markers' tests.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GwasResult {
    /// Samples tested.
    pub n: usize,
    /// Principal components used as covariates.
    pub pcs: usize,
    /// Residual degrees of freedom.
    pub df: usize,
    /// Per marker, in matrix order; `None` for a marker without variation after the covariates.
    pub tests: Vec<Option<MarkerTest>>,
}

/// Markers are regressed in blocks of this many, so memory stays `n × BLOCK` whatever the
/// marker count.
const BLOCK: usize = 512;

/// Tests every marker of `geno` on `rows` against trait values `y` (one per row), with `pcs`
/// principal components of the same rows' genotypes as covariates. Missing calls are imputed with
/// the marker's mean.
pub fn marker_tests(geno: &GenotypeMatrix, rows: &[usize], y: &[f64], pcs: usize) -> Result<GwasResult> {
    let n = rows.len();
    if y.len() != n {
        return Err(CoreError::Data(format!("{} trait values for {n} samples", y.len())));
    }
    // Intercept, PCs and slope need n > pcs + 2 for one residual degree of freedom; ask for more.
    if n < pcs + 5 {
        return Err(CoreError::Data(format!(
            "single-marker tests with {pcs} principal components need at least {} samples, got {n}",
            pcs + 5
        )));
    }
    let mut covariates = Mat::<f64>::from_fn(n, 1, |_, _| 1.0);
    let mut used_pcs = 0;
    if pcs > 0 {
        let pca = Pca::fit(geno, rows, PcaComponents::Count(pcs))?;
        let scores = pca.transform(geno, rows);
        used_pcs = scores.ncols();
        covariates = Mat::from_fn(n, 1 + used_pcs, |i, c| if c == 0 { 1.0 } else { scores[(i, c - 1)] });
    }
    // Orthonormal basis of the covariates; residualising = subtracting the projection on it.
    let q = covariates.qr().compute_thin_Q();
    let residual = |v: &Mat<f64>| -> Mat<f64> {
        let proj = &q * (q.transpose() * v);
        v - proj
    };
    let yr = residual(&Mat::from_fn(n, 1, |i, _| y[i]));
    let syy: f64 = (0..n).map(|i| yr[(i, 0)] * yr[(i, 0)]).sum();
    let df = n - q.ncols() - 1;
    let t_dist = StudentsT::new(0.0, 1.0, df as f64)
        .map_err(|e| CoreError::Numerical(format!("t distribution with {df} degrees of freedom: {e}")))?;
    let enc = DosageEncoder::fit(geno, rows, Scaling::Centred);
    let m = geno.n_markers();
    let mut tests = Vec::with_capacity(m);
    for start in (0..m).step_by(BLOCK) {
        let end = (start + BLOCK).min(m);
        let x = Mat::from_fn(n, end - start, |i, j| enc.value(geno.code(rows[i], start + j), start + j));
        let xr = residual(&x);
        for j in 0..end - start {
            let (mut sxx, mut sxy) = (0.0, 0.0);
            for i in 0..n {
                sxx += xr[(i, j)] * xr[(i, j)];
                sxy += xr[(i, j)] * yr[(i, 0)];
            }
            // A marker the covariates explain entirely (or a constant one) has nothing to test.
            let sx_raw: f64 = (0..n).map(|i| x[(i, j)] * x[(i, j)]).sum();
            if sxx.is_nan() || sxx <= 1e-10 * sx_raw.max(1e-300) {
                tests.push(None);
                continue;
            }
            let beta = sxy / sxx;
            let rss = (syy - beta * sxy).max(0.0);
            let se = (rss / df as f64 / sxx).sqrt();
            let t = if se > 0.0 { beta / se } else { f64::INFINITY.copysign(beta) };
            let p = (2.0 * t_dist.sf(t.abs())).min(1.0);
            let score = if p > 0.0 { (-p.log10()).min(300.0) } else { 300.0 };
            tests.push(Some(MarkerTest { beta, se, t, p, score }));
        }
    }
    Ok(GwasResult { n, pcs: used_pcs, df, tests })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// 300 samples, 40 markers; marker 7 has an effect of 0.5 per copy.
    fn data() -> (GenotypeMatrix, Vec<f64>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (n, m) = (300, 40);
        let mut codes = Vec::with_capacity(n * m);
        for _ in 0..n {
            for _ in 0..m {
                codes.push(100 * (u8::from(rng.random_bool(0.4)) + u8::from(rng.random_bool(0.4))));
            }
        }
        let g = GenotypeMatrix::with_generated_names(n, m, codes).unwrap();
        let y = (0..n).map(|i| 0.5 * g.dosage(i, 7).unwrap() + rng.random_range(-1.0..1.0)).collect();
        (g, y)
    }

    #[test]
    fn finds_the_causal_marker_and_matches_simple_regression() {
        let (g, y) = data();
        let rows: Vec<usize> = (0..300).collect();
        let r = marker_tests(&g, &rows, &y, 0).unwrap();
        assert_eq!((r.n, r.pcs, r.df), (300, 0, 298));
        let best = (0..40).max_by(|&a, &b| r.tests[a].unwrap().score.total_cmp(&r.tests[b].unwrap().score)).unwrap();
        assert_eq!(best, 7);
        let t7 = r.tests[7].unwrap();
        assert!((t7.beta - 0.5).abs() < 0.15, "beta {}", t7.beta);
        assert!(t7.p < 1e-10);
        // Without covariates the slope is the ordinary least-squares slope.
        let x: Vec<f64> = (0..300).map(|i| g.dosage(i, 3).unwrap()).collect();
        let (mx, my) = (x.iter().sum::<f64>() / 300.0, y.iter().sum::<f64>() / 300.0);
        let sxy: f64 = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
        assert!((r.tests[3].unwrap().beta - sxy / sxx).abs() < 1e-10);
        // Null markers: p roughly uniform, so few below 0.01.
        let small = r.tests.iter().flatten().filter(|t| t.p < 0.01).count();
        assert!(small <= 3, "{small} null markers with p < 0.01");
        // With PCs as covariates the causal marker still stands out.
        let with = marker_tests(&g, &rows, &y, 3).unwrap();
        assert_eq!((with.pcs, with.df), (3, 295));
        assert!(with.tests[7].unwrap().p < 1e-10);
    }

    #[test]
    fn constant_markers_and_too_few_samples() {
        let g = GenotypeMatrix::with_generated_names(6, 2, vec![0, 100, 0, 200, 0, 0, 0, 100, 0, 200, 0, 0]).unwrap();
        let r = marker_tests(&g, &(0..6).collect::<Vec<_>>(), &[1.0, 2.0, 0.5, 3.0, 1.0, 0.0], 0).unwrap();
        assert!(r.tests[0].is_none(), "constant marker");
        assert!(r.tests[1].is_some());
        let err = marker_tests(&g, &[0, 1, 2], &[1.0, 2.0, 3.0], 2).unwrap_err().to_string();
        assert!(err.contains("at least 7 samples"), "{err}");
    }
}
