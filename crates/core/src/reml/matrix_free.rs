//! Matrix-free REML for `y = 1β + g + e`, `g ~ N(0, σ²_g K)`, `e ~ N(0, σ²_e I)`, for when `K`
//! (n × n) or its eigendecomposition does not fit in memory.
//!
//! `K` is only ever applied to a few vectors at a time ([`Covariance::apply`]; GBLUP applies
//! `Z (Zᵀ x) / s` from the stored genotypes, a block of markers at a time), so memory is O(n)
//! per vector. Everything REML needs comes from solves with `H = K + δI`
//! (`δ = σ²_e / σ²_g`) by conjugate gradients, with the right-hand sides `y`, `1` and `R`
//! Rademacher probes solved together (one pass over the genotypes per iteration serves them all):
//!
//! - `β̂ = 1ᵀH⁻¹y / 1ᵀH⁻¹1`, `Py = H⁻¹(y − 1β̂)`, `Q = yᵀPy`;
//! - `tr H⁻¹ ≈ (1/R) Σ zᵣᵀ H⁻¹ zᵣ` (Hutchinson's estimator), so
//!   `tr P = tr H⁻¹ − ‖H⁻¹1‖² / 1ᵀH⁻¹1`;
//! - the REML score `∂ℓ/∂δ = −½ (tr P − (n − 1) ‖Py‖² / Q)`, whose root in `ln δ` is found by
//!   bracketing and regula falsi (Illinois). The same probes are used at every `δ`, so the
//!   estimated score is a smooth function of `δ` and has a root to find.
//!
//! This is the approach of BOLT-REML (Loh et al. 2015, Nat Genet 47:1385) and of MC-REML
//! (Matilainen et al. 2013): a stochastic estimate of the trace in the REML score, and iterative
//! solves instead of a factorisation. At the optimum the log-likelihood is estimated too, with
//! `ln |H|` from stochastic Lanczos quadrature on the probes' own conjugate-gradient runs
//! (Ubaru, Chen & Saad 2017): each run's coefficients are a Lanczos tridiagonal `T`, and
//! `zᵀ ln(H) z ≈ ‖z‖² Σ τᵢ² ln θᵢ` over `T`'s eigenpairs.
//!
//! Differences from the exact spectral REML ([`super::Spectral`]): `δ` carries the Monte-Carlo
//! error of the trace (its relative sd is about `√(2 / (R n))` of `tr H⁻¹` for a well-spread
//! spectrum, so it shrinks as `n` grows), and the search assumes one interior optimum (the exact
//! search also checks the grid's ends and every local maximum). Given `δ`, the BLUP weights are
//! exact up to the solver's tolerance.
//!
//! No preconditioner: VanRaden's `G` has a nearly constant diagonal, so the diagonal
//! (Jacobi) preconditioner is a rescaling and changes nothing, and `H`'s condition number is
//! `(λ_max + δ) / δ`, modest for a REML optimum away from `h² ≈ 1`.

use faer::{Mat, MatRef};
use rand::Rng;

use super::{RemlFit, RemlSearch};
use crate::cv::seed::rng;
use crate::cv::{Purpose, derive_seed};
use crate::error::CoreError;

/// A symmetric positive semi-definite `n × n` matrix that can only be applied.
pub trait Covariance {
    /// Its size `n`.
    fn n(&self) -> usize;
    /// `K X` for an `n × k` block of vectors.
    fn apply(&self, x: MatRef<'_, f64>) -> Mat<f64>;
}

/// Settings of the matrix-free search.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MatrixFreeSettings {
    /// Rademacher probes for the trace estimate (BOLT-REML uses 15; more cost one vector each
    /// per solver iteration).
    pub probes: usize,
    /// Relative residual `‖b − Hx‖ / ‖b‖` at which the final solves for `y` and `1` stop (the
    /// BLUP weights); while δ is searched they stop at `probe_tolerance`.
    pub tolerance: f64,
    /// Relative residual at which the probes' solves stop (their Monte-Carlo error is far larger).
    pub probe_tolerance: f64,
    /// Most solver iterations per solve.
    pub max_iterations: usize,
    /// The search stops when the bracket on `ln δ` is this narrow (10⁻³: δ to 0.1 %, far
    /// inside the trace estimate's Monte-Carlo error).
    pub log_delta_tolerance: f64,
    /// Seed of the probes.
    pub seed: u64,
}

impl Default for MatrixFreeSettings {
    fn default() -> Self {
        MatrixFreeSettings {
            probes: 30,
            tolerance: 1e-8,
            probe_tolerance: 1e-5,
            max_iterations: 1000,
            log_delta_tolerance: 1e-3,
            seed: 0,
        }
    }
}

/// What the matrix-free search found, and what it cost.
#[derive(Debug, Clone)]
pub struct MatrixFreeFit {
    /// The REML solution. `log_likelihood` is an estimate (stochastic Lanczos quadrature).
    pub fit: RemlFit,
    /// Intercept `β̂`.
    pub beta: f64,
    /// BLUP weights `α = H⁻¹ (y − 1β̂)` at the optimum.
    pub alpha: Vec<f64>,
    /// Score evaluations (solves at one `δ`).
    pub evaluations: usize,
    /// Solver iterations over all evaluations (each one application of `K` to the vectors
    /// still being solved).
    pub iterations: usize,
}

/// Statistics of an `n`-vector block solve at one `δ`.
struct Solved {
    /// Solutions, columns `y`, `1`, probes.
    x: Mat<f64>,
    iterations: usize,
    /// Per column, the Lanczos tridiagonal's diagonal and off-diagonal (only when started from 0
    /// and asked for).
    lanczos: Vec<(Vec<f64>, Vec<f64>)>,
}

/// Solves `(K + δI) X = B` column by column by conjugate gradients, applying `K` once per
/// iteration to every column not yet converged. `x0` is the starting point (warm start);
/// `tolerances[j]` the relative residual of column `j`.
fn solve(
    k: &dyn Covariance,
    delta: f64,
    b: MatRef<'_, f64>,
    x0: Option<&Mat<f64>>,
    tolerances: &[f64],
    max_iterations: usize,
    record: bool,
) -> Result<Solved, CoreError> {
    let (n, cols) = (b.nrows(), b.ncols());
    let mut x = x0.cloned().unwrap_or_else(|| Mat::zeros(n, cols));
    let hx = |v: MatRef<'_, f64>| {
        let mut out = k.apply(v);
        out += faer::Scale(delta) * v;
        out
    };
    let mut r = b.to_owned();
    if x0.is_some() {
        r -= hx(x.as_ref());
    }
    let mut p = r.clone();
    let dot = |a: MatRef<'_, f64>, c: MatRef<'_, f64>, j: usize| (0..n).map(|i| a[(i, j)] * c[(i, j)]).sum::<f64>();
    let mut rr: Vec<f64> = (0..cols).map(|j| dot(r.as_ref(), r.as_ref(), j)).collect();
    let target: Vec<f64> = (0..cols).map(|j| (tolerances[j] * dot(b, b, j).sqrt()).powi(2)).collect();
    let mut active: Vec<usize> = (0..cols).filter(|&j| rr[j] > target[j]).collect();
    let mut lanczos = vec![(Vec::new(), Vec::new()); if record { cols } else { 0 }];
    // Previous α and β per column (for the Lanczos coefficients).
    let mut last = vec![(0.0f64, 0.0f64); cols];
    let mut iterations = 0;
    while !active.is_empty() {
        if iterations == max_iterations {
            return Err(CoreError::Numerical(format!(
                "matrix-free REML: conjugate gradients did not converge in {max_iterations} iterations at δ = {delta:.4e} \
                 ({} of {cols} right-hand sides left); raise max_iterations or use the exact method",
                active.len()
            )));
        }
        iterations += 1;
        let pa = Mat::from_fn(n, active.len(), |i, a| p[(i, active[a])]);
        let hp = hx(pa.as_ref());
        let mut still = Vec::with_capacity(active.len());
        for (a, &j) in active.iter().enumerate() {
            let php = (0..n).map(|i| pa[(i, a)] * hp[(i, a)]).sum::<f64>();
            if php.is_nan() || php <= 0.0 {
                return Err(CoreError::Numerical(format!(
                    "matrix-free REML: K + δI is not positive definite at δ = {delta:.4e} (pᵀHp = {php:.3e})"
                )));
            }
            let alpha = rr[j] / php;
            for i in 0..n {
                x[(i, j)] += alpha * pa[(i, a)];
                r[(i, j)] -= alpha * hp[(i, a)];
            }
            let rr_new = dot(r.as_ref(), r.as_ref(), j);
            let beta = rr_new / rr[j];
            if record {
                let (alpha_prev, beta_prev) = last[j];
                let (diag, off) = &mut lanczos[j];
                diag.push(1.0 / alpha + if diag.is_empty() { 0.0 } else { beta_prev / alpha_prev });
                off.push(beta.sqrt() / alpha);
            }
            last[j] = (alpha, beta);
            rr[j] = rr_new;
            if rr_new > target[j] {
                for i in 0..n {
                    p[(i, j)] = r[(i, j)] + beta * p[(i, j)];
                }
                still.push(j);
            }
        }
        active = still;
    }
    for (diag, off) in &mut lanczos {
        off.truncate(diag.len().saturating_sub(1));
    }
    Ok(Solved { x, iterations, lanczos })
}

/// `e₁ᵀ ln(T) e₁` for a symmetric tridiagonal `T` (diagonal `d`, off-diagonal `e`).
fn quadrature_log(d: &[f64], e: &[f64]) -> Result<f64, CoreError> {
    let m = d.len();
    if m == 0 {
        return Ok(0.0);
    }
    let t = Mat::from_fn(m, m, |i, j| {
        if i == j {
            d[i]
        } else if i + 1 == j {
            e[i]
        } else if j + 1 == i {
            e[j]
        } else {
            0.0
        }
    });
    let evd = t
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| CoreError::Numerical(format!("matrix-free REML: Lanczos quadrature failed: {e:?}")))?;
    let (u, s) = (evd.U(), evd.S().column_vector());
    Ok((0..m).map(|i| u[(0, i)].powi(2) * s[i].max(f64::MIN_POSITIVE).ln()).sum())
}

/// One evaluation of the score at `δ`.
struct Eval {
    /// d loglik / d ln δ.
    slope: f64,
    beta: f64,
    q: f64,
    solved: Solved,
}

/// The matrix-free REML problem: `K`, the trait, and the probes.
pub struct MatrixFreeReml<'a> {
    k: &'a dyn Covariance,
    /// Right-hand sides: `y`, `1`, then the probes.
    rhs: Mat<f64>,
    settings: MatrixFreeSettings,
}

impl<'a> MatrixFreeReml<'a> {
    /// The problem for `k` and trait values `y` (one per row of `k`).
    pub fn new(k: &'a dyn Covariance, y: &[f64], settings: MatrixFreeSettings) -> Self {
        let n = k.n();
        assert_eq!(y.len(), n, "one trait value per row of the covariance structure");
        let mut generator = rng(derive_seed(settings.seed, Purpose::TraceProbes, &[]));
        let probes = settings.probes.max(1);
        let signs: Vec<f64> = (0..n * probes).map(|_| if generator.random::<bool>() { 1.0 } else { -1.0 }).collect();
        let rhs = Mat::from_fn(n, 2 + probes, |i, j| match j {
            0 => y[i],
            1 => 1.0,
            _ => signs[(j - 2) * n + i],
        });
        MatrixFreeReml { k, rhs, settings }
    }

    fn n(&self) -> usize {
        self.rhs.nrows()
    }

    /// While δ is searched every column stops at `probe_tolerance` (the score's error is the
    /// probes' Monte-Carlo error, far above it); the final solve takes `y` and `1` to
    /// `tolerance`, since the BLUP weights come from it.
    fn tolerances(&self, last: bool) -> Vec<f64> {
        (0..self.rhs.ncols())
            .map(|j| if j < 2 && last { self.settings.tolerance } else { self.settings.probe_tolerance })
            .collect()
    }

    /// The score at `δ`. `last` marks the final solve: started from zero (no `warm`), it records
    /// the probes' Lanczos coefficients and solves `y` and `1` to `tolerance`.
    fn eval(&self, delta: f64, warm: Option<&Mat<f64>>, last: bool) -> Result<Eval, CoreError> {
        let n = self.n();
        let solved =
            solve(self.k, delta, self.rhs.as_ref(), warm, &self.tolerances(last), self.settings.max_iterations, last)?;
        let x = &solved.x;
        let col_dot = |a: usize, b: &dyn Fn(usize) -> f64| (0..n).map(|i| x[(i, a)] * b(i)).sum::<f64>();
        let one_h1 = col_dot(1, &|_| 1.0);
        let one_hy = col_dot(0, &|_| 1.0);
        let beta = one_hy / one_h1;
        let y_hy = col_dot(0, &|i| self.rhs[(i, 0)]);
        let q = y_hy - beta * one_hy;
        if q.is_nan() || q <= 0.0 {
            return Err(CoreError::Numerical("the phenotypes are fitted exactly; REML is undefined".into()));
        }
        let py2: f64 = (0..n).map(|i| (x[(i, 0)] - beta * x[(i, 1)]).powi(2)).sum();
        let h1_2: f64 = (0..n).map(|i| x[(i, 1)].powi(2)).sum();
        let probes = self.rhs.ncols() - 2;
        let trace_h: f64 =
            (2..self.rhs.ncols()).map(|j| col_dot(j, &|i| self.rhs[(i, j)])).sum::<f64>() / probes as f64;
        let trace_p = trace_h - h1_2 / one_h1;
        let df = (n - 1) as f64;
        let dl_ddelta = -0.5 * (trace_p - df * py2 / q);
        Ok(Eval { slope: dl_ddelta * delta, beta, q, solved })
    }

    /// Finds the REML `δ` in `search`'s range (its grid is not used: the score is bracketed from
    /// `δ = 1`, i.e. `h² ≈ ½` for a `K` whose diagonal averages 1) and returns the fit with the
    /// BLUP weights.
    pub fn fit(&self, search: &RemlSearch) -> Result<MatrixFreeFit, CoreError> {
        let (lo_limit, hi_limit) = (search.log_delta_min, search.log_delta_max);
        let mut evaluations = 0;
        let mut iterations = 0;
        let mut warm: Option<Mat<f64>> = None;
        let mut at = |t: f64, warm: &mut Option<Mat<f64>>| -> Result<f64, CoreError> {
            let e = self.eval(t.exp(), warm.as_ref(), false)?;
            evaluations += 1;
            iterations += e.solved.iterations;
            tracing::info!(
                "matrix-free REML: ln δ = {t:.4}, score {:.4e}, {} solver iterations ({evaluations} evaluations, {iterations} iterations so far)",
                e.slope,
                e.solved.iterations
            );
            *warm = Some(e.solved.x);
            Ok(e.slope)
        };
        // Bracket the root: the slope is + below the optimum and − above it.
        let mut t = 0.0f64.clamp(lo_limit, hi_limit);
        let mut s = at(t, &mut warm)?;
        let step = 2.0;
        let (mut lo, mut s_lo, mut hi, mut s_hi);
        let mut boundary = None;
        if s > 0.0 {
            (lo, s_lo) = (t, s);
            loop {
                if t >= hi_limit {
                    boundary = Some(hi_limit);
                    (hi, s_hi) = (t, s);
                    break;
                }
                t = (t + step).min(hi_limit);
                s = at(t, &mut warm)?;
                if s <= 0.0 {
                    (hi, s_hi) = (t, s);
                    break;
                }
                (lo, s_lo) = (t, s);
            }
        } else {
            (hi, s_hi) = (t, s);
            loop {
                if t <= lo_limit {
                    boundary = Some(lo_limit);
                    (lo, s_lo) = (t, s);
                    break;
                }
                t = (t - step).max(lo_limit);
                s = at(t, &mut warm)?;
                if s > 0.0 {
                    (lo, s_lo) = (t, s);
                    break;
                }
                (hi, s_hi) = (t, s);
            }
        }
        let best_t = match boundary {
            Some(b) => b,
            None => {
                // Illinois regula falsi on [lo, hi] with slope(lo) > 0 ≥ slope(hi).
                let mut side = 0i8;
                for _ in 0..100 {
                    if hi - lo <= self.settings.log_delta_tolerance {
                        break;
                    }
                    let mut m = (lo * s_hi - hi * s_lo) / (s_hi - s_lo);
                    if !(m > lo && m < hi) {
                        m = 0.5 * (lo + hi);
                    }
                    let sm = at(m, &mut warm)?;
                    if sm > 0.0 {
                        (lo, s_lo) = (m, sm);
                        if side == 1 {
                            s_hi *= 0.5;
                        }
                        side = 1;
                    } else {
                        (hi, s_hi) = (m, sm);
                        if side == -1 {
                            s_lo *= 0.5;
                        }
                        side = -1;
                    }
                }
                (lo * s_hi - hi * s_lo) / (s_hi - s_lo)
            }
        };
        let best_t = if best_t.is_finite() { best_t.clamp(lo_limit, hi_limit) } else { 0.5 * (lo + hi) };
        // The final solve starts from zero, so the probes' runs give the Lanczos quadrature.
        let delta = best_t.exp();
        let e = self.eval(delta, None, true)?;
        evaluations += 1;
        iterations += e.solved.iterations;
        let n = self.n();
        let probes = self.rhs.ncols() - 2;
        let mut logdet = 0.0;
        for j in 2..self.rhs.ncols() {
            let (d, off) = &e.solved.lanczos[j];
            logdet += n as f64 * quadrature_log(d, off)?;
        }
        logdet /= probes as f64;
        let one_h1: f64 = (0..n).map(|i| e.solved.x[(i, 1)]).sum();
        let df = (n - 1) as f64;
        let log_likelihood = -0.5 * (df * (2.0 * std::f64::consts::PI * e.q / df).ln() + df + logdet + one_h1.ln());
        let sigma2_g = e.q / df;
        let alpha = (0..n).map(|i| e.solved.x[(i, 0)] - e.beta * e.solved.x[(i, 1)]).collect();
        Ok(MatrixFreeFit {
            fit: RemlFit {
                delta,
                sigma2_g,
                sigma2_e: delta * sigma2_g,
                log_likelihood,
                at_boundary: boundary.is_some(),
            },
            beta: e.beta,
            alpha,
            evaluations,
            iterations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reml::Spectral;

    /// A dense matrix as a [`Covariance`].
    struct Dense(Mat<f64>);

    impl Covariance for Dense {
        fn n(&self) -> usize {
            self.0.nrows()
        }
        fn apply(&self, x: MatRef<'_, f64>) -> Mat<f64> {
            &self.0 * x
        }
    }

    /// A `K = Z Zᵀ / m` from random centred dosages and a trait with heritability about ½.
    fn problem(n: usize, m: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
        let mut g = rng(seed);
        let z = Mat::from_fn(n, m, |_, _| f64::from(g.random_range(0..3u8)) - 1.0);
        let k = &z * z.transpose() * faer::Scale(1.0 / m as f64);
        let effects: Vec<f64> = (0..m).map(|_| g.random::<f64>() - 0.5).collect();
        let gv: Vec<f64> = (0..n).map(|i| (0..m).map(|j| z[(i, j)] * effects[j]).sum::<f64>()).collect();
        let sd = (gv.iter().map(|v| v * v).sum::<f64>() / n as f64).sqrt();
        let y = gv.iter().map(|v| 3.0 + v / sd + 2.0 * (g.random::<f64>() - 0.5) * 3f64.sqrt()).collect();
        (k, y)
    }

    #[test]
    fn agrees_with_the_exact_spectral_reml() {
        for (seed, n, m) in [(1u64, 400, 600), (2, 500, 300)] {
            let (k, y) = problem(n, m, seed);
            let search = RemlSearch::default();
            let spectral = Spectral::new(&k, &y).unwrap();
            let (exact, beta) = spectral.fit(&search).unwrap();
            let alpha = spectral.alpha(&exact, beta);
            let dense = Dense(k);
            let settings = MatrixFreeSettings { seed, ..MatrixFreeSettings::default() };
            let free = MatrixFreeReml::new(&dense, &y, settings).fit(&search).unwrap();
            let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
            assert!(!free.fit.at_boundary && !exact.at_boundary);
            assert!(rel(free.fit.delta, exact.delta) < 0.1, "δ {} vs exact {}", free.fit.delta, exact.delta);
            assert!(rel(free.fit.sigma2_g, exact.sigma2_g) < 0.05, "σ²g {} vs {}", free.fit.sigma2_g, exact.sigma2_g);
            assert!(rel(free.beta, beta) < 1e-2);
            assert!(
                (free.fit.log_likelihood - exact.log_likelihood).abs() < 1.0,
                "log-likelihood {} vs {}",
                free.fit.log_likelihood,
                exact.log_likelihood
            );
            // BLUPs K α at the two estimates of δ.
            let (ka, kb) = (
                dense.apply(Mat::from_fn(n, 1, |i, _| free.alpha[i]).as_ref()),
                dense.apply(Mat::from_fn(n, 1, |i, _| alpha[i]).as_ref()),
            );
            let corr = {
                let (a, b): (Vec<f64>, Vec<f64>) = (0..n).map(|i| (ka[(i, 0)], kb[(i, 0)])).unzip();
                crate::metrics::pearson(&a, &b)
            };
            assert!(corr > 0.999, "BLUPs correlate {corr}");
        }
    }

    #[test]
    fn at_a_fixed_delta_the_solves_are_exact() {
        let (k, y) = problem(200, 300, 5);
        let dense = Dense(k.clone());
        let reml = MatrixFreeReml::new(&dense, &y, MatrixFreeSettings { probes: 3, ..Default::default() });
        let e = reml.eval(0.7, None, true).unwrap();
        let h = &k + Mat::<f64>::identity(200, 200) * faer::Scale(0.7);
        let hx = &h * e.solved.x.get(.., 0..1);
        for i in 0..200 {
            assert!((hx[(i, 0)] - y[i]).abs() < 1e-6 * y.iter().map(|v| v * v).sum::<f64>().sqrt());
        }
        // Lanczos quadrature of ln|H| from three probes against the exact value, loosely.
        let exact: f64 =
            h.self_adjoint_eigen(faer::Side::Lower).unwrap().S().column_vector().iter().map(|l| l.ln()).sum();
        let estimate = (2..5)
            .map(|j| 200.0 * quadrature_log(&e.solved.lanczos[j].0, &e.solved.lanczos[j].1).unwrap())
            .sum::<f64>()
            / 3.0;
        assert!((estimate - exact).abs() < 0.2 * exact.abs().max(10.0), "ln|H| {estimate} vs {exact}");
    }

    #[test]
    fn too_few_iterations_is_an_error_not_a_wrong_answer() {
        let (k, y) = problem(100, 150, 3);
        let dense = Dense(k);
        let settings = MatrixFreeSettings { max_iterations: 2, ..Default::default() };
        let err = MatrixFreeReml::new(&dense, &y, settings).fit(&RemlSearch::default()).unwrap_err();
        assert!(err.to_string().contains("did not converge in 2 iterations"), "{err}");
    }
}
