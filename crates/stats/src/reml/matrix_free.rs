//! Matrix-free REML for `y = 1β + g + e`, `g ~ N(0, σ²_g K)`, `e ~ N(0, σ²_e I)`, for when `K`
//! (n × n) or its eigendecomposition does not fit in memory.
//!
//! `K` is only ever applied to a few vectors at a time ([`Covariance::apply`]; GBLUP applies
//! `Z (Zᵀ x) / s` from the stored genotypes, a block of markers at a time), so memory is O(n)
//! per vector. Everything REML needs is a function of `H = K + δI` (`δ = σ²_e / σ²_g`) applied
//! to the centred trait `y_c`, to `1` and to `R` Rademacher probes `zᵣ`:
//!
//! - `β̂ = 1ᵀH⁻¹y / 1ᵀH⁻¹1`, `Py = H⁻¹(y − 1β̂)`, `Q = yᵀPy`;
//! - `tr H⁻¹ ≈ (1/R) Σ zᵣᵀ H⁻¹ zᵣ` (Hutchinson's estimator), so
//!   `tr P = tr H⁻¹ − ‖H⁻¹1‖² / 1ᵀH⁻¹1`;
//! - the REML score `∂ℓ/∂δ = −½ (tr P − (n − 1) ‖Py‖² / Q)`;
//! - `ln |H| ≈ (n/R) Σ zᵣᵀ ln(H) zᵣ / ‖zᵣ‖²` for the log-likelihood (stochastic Lanczos
//!   quadrature, Ubaru, Chen & Saad 2017).
//!
//! **One Krylov space for every δ.** The Krylov space of `K + δI` from a vector `b` does not
//! depend on `δ`, so one Lanczos run of `K` from each right-hand side (`y_c`, `1` and the
//! probes, run side by side: one pass over the genotypes per step serves them all) gives a
//! tridiagonal `T` with `bᵀ f(H) b ≈ ‖b‖² e₁ᵀ f(T + δI) e₁` for every `δ` at once (Gauss
//! quadrature; for `f(x) = 1/x` it is exactly what conjugate gradients on `H` would give after
//! the same number of steps, the "shifted CG" identity; Frommer 2003). The cross terms `1ᵀH⁻¹y_c`
//! and `1ᵀH⁻²y_c` come from `y_c`'s run with the projections of `1` on its basis. After each
//! step, the score costs O(steps) per right-hand side and `δ`: the search over `ln δ` (a grid,
//! then bisection of every sign change, the best by likelihood, as the exact search does) runs
//! on the tridiagonals alone. A `δ` counts only where every run has converged (the shifted
//! conjugate-gradient residual, `β_k |e_kᵀ (T + δI)⁻¹ e₁|`, below `probe_tolerance`); that
//! region grows downwards from large `δ` as the runs go on, and the search ends once it holds
//! the optimum. The passes over the genotypes are those of one solve at the optimum, where
//! solving at each trial `δ` in turn (BOLT-REML's approach, Loh et al. 2015) costs that many
//! per trial. Finally `y` and `1` are solved at the optimum by conjugate gradients to
//! `tolerance`, for the BLUP weights, starting from the Lanczos runs' own solution there (their
//! bases are kept for this, n numbers per step each, up to 512 MiB; beyond, from zero).
//!
//! Differences from the exact spectral REML ([`super::Spectral`]): `δ` carries the Monte-Carlo
//! error of the trace (its relative sd is about `√(2 / (R n))` of `tr H⁻¹` for a well-spread
//! spectrum, so it shrinks as `n` grows), and a maximum at `δ` below where the runs have
//! converged is not seen until they converge there: the search keeps stepping while the likelihood
//! still rises towards smaller `δ`. Given `δ`, the BLUP weights are exact up to the solver's
//! tolerance.
//!
//! No preconditioner: VanRaden's `G` has a nearly constant diagonal, so the diagonal
//! (Jacobi) preconditioner is a rescaling and changes nothing, and `H`'s condition number is
//! `(λ_max + δ) / δ`, modest for a REML optimum away from `h² ≈ 1`. Plain Lanczos without
//! reorthogonalisation: its loss of orthogonality delays convergence of the quadratures but
//! does not bias them (Golub & Strakoš 1994), and the convergence test is on the residual.

use faer::{Mat, MatRef};
use rand::Rng;

use super::{RemlFit, RemlSearch};
use crate::seed::rng;
use crate::seed::{Purpose, derive_seed};
use genopred_data::error::CoreError;

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
    /// BLUP weights).
    pub tolerance: f64,
    /// Relative residual, at a `δ`, below which the Lanczos runs count as converged there (the
    /// score's error is the probes' Monte-Carlo error, far above it).
    pub probe_tolerance: f64,
    /// Most solver iterations (Lanczos steps; then conjugate-gradient steps of the final solve).
    pub max_iterations: usize,
    /// Width in `ln δ` to which each sign change of the score is bisected (10⁻³: δ to 0.1 %,
    /// far inside the trace estimate's Monte-Carlo error).
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
    /// Searches over `δ` on the Lanczos tridiagonals (each a grid of score evaluations; none
    /// passes over the genotypes).
    pub evaluations: usize,
    /// Solver iterations: Lanczos steps plus the final solve's conjugate-gradient steps, each one
    /// application of `K` to the vectors still running.
    pub iterations: usize,
}

/// Solves `(K + δI) X = B` column by column by conjugate gradients from `x0` (or zero), applying
/// `K` once per iteration to every column not yet converged; `tolerance` is the relative
/// residual. Returns the solutions and the iterations taken.
fn solve(
    k: &dyn Covariance,
    delta: f64,
    b: MatRef<'_, f64>,
    x0: Option<Mat<f64>>,
    tolerance: f64,
    max_iterations: usize,
) -> Result<(Mat<f64>, usize), CoreError> {
    let (n, cols) = (b.nrows(), b.ncols());
    let mut r = b.to_owned();
    let mut x = match x0 {
        Some(x0) => {
            r -= k.apply(x0.as_ref());
            r -= faer::Scale(delta) * x0.as_ref();
            x0
        }
        None => Mat::zeros(n, cols),
    };
    let mut p = r.clone();
    let dot = |a: MatRef<'_, f64>, c: MatRef<'_, f64>, j: usize| (0..n).map(|i| a[(i, j)] * c[(i, j)]).sum::<f64>();
    let mut rr: Vec<f64> = (0..cols).map(|j| dot(r.as_ref(), r.as_ref(), j)).collect();
    let target: Vec<f64> = (0..cols).map(|j| (tolerance * dot(b, b, j).sqrt()).powi(2)).collect();
    let mut active: Vec<usize> = (0..cols).filter(|&j| rr[j] > target[j]).collect();
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
        let mut hp = k.apply(pa.as_ref());
        hp += faer::Scale(delta) * pa.as_ref();
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
    Ok((x, iterations))
}

/// One right-hand side's Lanczos run of `K`: after `k` steps, `T`'s diagonal `alpha[..k]` and
/// off-diagonal `beta[..k-1]`; `beta[k-1]` couples to the next basis vector (the residual).
#[derive(Debug, Default)]
struct Run {
    /// `‖b‖`.
    norm: f64,
    alpha: Vec<f64>,
    beta: Vec<f64>,
    /// `vᵢᵀ 1` for each basis vector (kept for `y_c`'s run only).
    ones: Vec<f64>,
    /// The run reached an invariant subspace: its `T` is exact and it has stopped.
    done: bool,
}

impl Run {
    /// `T + δI`, dense (`k × k`).
    fn tridiagonal(&self, delta: f64) -> Mat<f64> {
        let k = self.alpha.len();
        Mat::from_fn(k, k, |i, j| {
            if i == j {
                self.alpha[i] + delta
            } else if i + 1 == j {
                self.beta[i]
            } else if j + 1 == i {
                self.beta[j]
            } else {
                0.0
            }
        })
    }
}

/// A run's `T` in its eigenbasis, `T = U Θ Uᵀ`: every function of `T + δI` needed is a sum over
/// the eigenpairs.
struct Spectrum {
    norm: f64,
    theta: Vec<f64>,
    /// `e₁ᵀ uᵢ`.
    first: Vec<f64>,
    /// `e_kᵀ uᵢ`, times the residual coupling `β_k` (zero once the run is done).
    last: Vec<f64>,
    /// `(Vᵀ1)ᵀ uᵢ` (for `y_c`'s run).
    ones: Vec<f64>,
}

impl Spectrum {
    fn of(run: &Run) -> Result<Spectrum, CoreError> {
        let k = run.alpha.len();
        let evd = run
            .tridiagonal(0.0)
            .self_adjoint_eigen(faer::Side::Lower)
            .map_err(|e| CoreError::Numerical(format!("matrix-free REML: Lanczos tridiagonal: {e:?}")))?;
        let (u, s) = (evd.U(), evd.S().column_vector());
        let coupling = if run.done { 0.0 } else { run.beta[k - 1] };
        Ok(Spectrum {
            norm: run.norm,
            theta: (0..k).map(|i| s[i]).collect(),
            first: (0..k).map(|i| u[(0, i)]).collect(),
            last: (0..k).map(|i| coupling * u[(k - 1, i)]).collect(),
            ones: if run.ones.is_empty() {
                Vec::new()
            } else {
                (0..k).map(|i| (0..k).map(|r| run.ones[r] * u[(r, i)]).sum()).collect()
            },
        })
    }

    /// `e₁ᵀ f(T + δI) e₁`.
    fn quadrature(&self, delta: f64, f: impl Fn(f64) -> f64) -> f64 {
        self.theta.iter().zip(&self.first).map(|(&l, &u)| u * u * f((l + delta).max(f64::MIN_POSITIVE))).sum()
    }

    /// `(Vᵀ1)ᵀ f(T + δI) e₁`.
    fn ones_quadrature(&self, delta: f64, f: impl Fn(f64) -> f64) -> f64 {
        (0..self.theta.len())
            .map(|i| self.ones[i] * self.first[i] * f((self.theta[i] + delta).max(f64::MIN_POSITIVE)))
            .sum()
    }

    /// Relative residual of conjugate gradients on `K + δI` after the run's steps,
    /// `β_k |e_kᵀ (T + δI)⁻¹ e₁|`.
    fn residual(&self, delta: f64) -> f64 {
        (0..self.theta.len()).map(|i| self.last[i] * self.first[i] / (self.theta[i] + delta)).sum::<f64>().abs()
    }
}

/// Most bytes kept of the Lanczos bases of `y_c` and `1` (to start the final solve from their
/// solution at the optimum); beyond, the final solve starts from zero.
const BASES_UP_TO_BYTES: usize = 512 << 20;

/// What the Lanczos search found.
struct Searched {
    runs: Vec<Run>,
    spectra: Vec<Spectrum>,
    /// Basis vectors of `y_c`'s and `1`'s runs, one after the other (`None` beyond
    /// [`BASES_UP_TO_BYTES`]).
    bases: Option<[Vec<f64>; 2]>,
    /// The optimum's `ln δ`, and whether it is on the range's edge.
    t: f64,
    at_boundary: bool,
    searches: usize,
    steps: usize,
}

impl Searched {
    /// The Lanczos runs' own solution of `(K + δI) x = b` for `y_c` (0) or `1` (1):
    /// `‖b‖ V (T + δI)⁻¹ e₁`, as conjugate gradients would have it after the same steps.
    fn solution(&self, j: usize, delta: f64, n: usize) -> Option<Vec<f64>> {
        let basis = &self.bases.as_ref()?[j];
        let run = &self.runs[j];
        let k = run.alpha.len();
        // (T + δI) s = e₁; T + δI is positive definite.
        let e1 = Mat::from_fn(k, 1, |i, _| if i == 0 { 1.0 } else { 0.0 });
        let s = faer::prelude::Solve::solve(&run.tridiagonal(delta).llt(faer::Side::Lower).ok()?, &e1);
        let mut x = vec![0.0; n];
        for i in 0..k {
            for (xr, &v) in x.iter_mut().zip(&basis[i * n..(i + 1) * n]) {
                *xr += run.norm * s[(i, 0)] * v;
            }
        }
        Some(x)
    }
}

/// The REML score and log-likelihood at one `δ`, from the runs' spectra.
struct Point {
    /// d loglik / d ln δ.
    slope: f64,
    loglik: f64,
}

/// The matrix-free REML problem: `K`, the trait, and the probes.
pub struct MatrixFreeReml<'a> {
    k: &'a dyn Covariance,
    y: Vec<f64>,
    /// `ȳ`: `y = y_c + ȳ 1`.
    mean: f64,
    /// Right-hand sides of the Lanczos runs: `y_c`, `1`, then the probes.
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
        let mean = y.iter().sum::<f64>() / n as f64;
        let rhs = Mat::from_fn(n, 2 + probes, |i, j| match j {
            0 => y[i] - mean,
            1 => 1.0,
            _ => signs[(j - 2) * n + i],
        });
        MatrixFreeReml { k, y: y.to_vec(), mean, rhs, settings }
    }

    fn n(&self) -> usize {
        self.rhs.nrows()
    }

    /// Lanczos steps on every right-hand side, in step, until the search over `δ` on their
    /// tridiagonals finds the optimum where all have converged.
    fn lanczos_search(&self, search: &RemlSearch) -> Result<Searched, CoreError> {
        let (n, cols) = (self.n(), self.rhs.ncols());
        let mut runs: Vec<Run> = (0..cols).map(|_| Run::default()).collect();
        let mut v = self.rhs.clone();
        for (j, run) in runs.iter_mut().enumerate() {
            run.norm = (0..n).map(|i| v[(i, j)].powi(2)).sum::<f64>().sqrt();
            if !(run.norm > 0.0 && run.norm.is_finite()) {
                return Err(CoreError::Numerical(
                    "matrix-free REML: the trait has no variation (or is not finite)".into(),
                ));
            }
            for i in 0..n {
                v[(i, j)] /= run.norm;
            }
        }
        let mut v_prev = Mat::<f64>::zeros(n, cols);
        let mut active: Vec<usize> = (0..cols).collect();
        let mut bases: Option<[Vec<f64>; 2]> = Some([Vec::new(), Vec::new()]);
        // Scale of K (largest Lanczos diagonal so far), for telling an exhausted run.
        let mut scale = 0.0f64;
        let (mut steps, mut searches, mut next_check) = (0, 0, 1);
        loop {
            if !active.is_empty() {
                if steps == self.settings.max_iterations {
                    return Err(CoreError::Numerical(format!(
                        "matrix-free REML: the Lanczos runs did not converge in {} iterations at the REML optimum; \
                         raise max_iterations or use the exact method",
                        self.settings.max_iterations
                    )));
                }
                steps += 1;
                let va = Mat::from_fn(n, active.len(), |i, a| v[(i, active[a])]);
                let mut w = self.k.apply(va.as_ref());
                let mut still = Vec::with_capacity(active.len());
                for (a, &j) in active.iter().enumerate() {
                    let run = &mut runs[j];
                    let beta_prev = run.beta.last().copied().unwrap_or(0.0);
                    if j == 0 {
                        run.ones.push((0..n).map(|i| va[(i, a)]).sum());
                    }
                    if j < 2
                        && let Some(kept) = &mut bases
                    {
                        kept[j].extend((0..n).map(|i| va[(i, a)]));
                    }
                    let alpha = (0..n).map(|i| w[(i, a)] * va[(i, a)]).sum::<f64>();
                    for i in 0..n {
                        w[(i, a)] -= alpha * va[(i, a)] + beta_prev * v_prev[(i, j)];
                    }
                    let beta = (0..n).map(|i| w[(i, a)].powi(2)).sum::<f64>().sqrt();
                    if !(alpha.is_finite() && beta.is_finite()) {
                        return Err(CoreError::Numerical(
                            "matrix-free REML: the covariance structure gave a value that is not finite".into(),
                        ));
                    }
                    scale = scale.max(alpha.abs());
                    run.alpha.push(alpha);
                    run.beta.push(beta);
                    if beta <= 1e-10 * scale {
                        run.done = true;
                        continue;
                    }
                    for i in 0..n {
                        v_prev[(i, j)] = va[(i, a)];
                        v[(i, j)] = w[(i, a)] / beta;
                    }
                    still.push(j);
                }
                active = still;
                if bases.as_ref().is_some_and(|b| (b[0].len() + b[1].len()) * 8 > BASES_UP_TO_BYTES) {
                    bases = None;
                }
                if !active.is_empty() && steps < next_check && steps < self.settings.max_iterations {
                    continue;
                }
            }
            // Checks every step at first, then every ~6 % of the steps so far (each check
            // diagonalises every run's T: O(k³)).
            next_check = steps + if steps < 64 { 1 } else { steps / 16 };
            searches += 1;
            let spectra: Vec<Spectrum> = runs.iter().map(Spectrum::of).collect::<Result<_, _>>()?;
            if let Some((t, at_boundary)) = self.search(&spectra, search, steps)? {
                return Ok(Searched { runs, spectra, bases, t, at_boundary, searches, steps });
            }
            if active.is_empty() {
                return Err(CoreError::Numerical(
                    "matrix-free REML: every Lanczos run ended without converging at the optimum".into(),
                ));
            }
        }
    }

    /// Whether every run has converged at `δ`.
    fn converged(&self, spectra: &[Spectrum], delta: f64) -> bool {
        spectra.iter().all(|s| s.residual(delta) <= self.settings.probe_tolerance)
    }

    /// Score and log-likelihood at `δ` from the spectra.
    fn point(&self, spectra: &[Spectrum], delta: f64) -> Point {
        let n = self.n();
        let nf = n as f64;
        let inv = |x: f64| 1.0 / x;
        let inv2 = |x: f64| 1.0 / (x * x);
        let (yc, one) = (&spectra[0], &spectra[1]);
        let a = yc.norm * yc.norm * yc.quadrature(delta, inv);
        let b = yc.norm * yc.ones_quadrature(delta, inv);
        let c = one.norm * one.norm * one.quadrature(delta, inv);
        let a2 = yc.norm * yc.norm * yc.quadrature(delta, inv2);
        let b2 = yc.norm * yc.ones_quadrature(delta, inv2);
        let c2 = one.norm * one.norm * one.quadrature(delta, inv2);
        let probes = &spectra[2..];
        let r = probes.len() as f64;
        let trace_h = probes.iter().map(|s| s.norm * s.norm * s.quadrature(delta, inv)).sum::<f64>() / r;
        let logdet = probes.iter().map(|s| nf * s.quadrature(delta, f64::ln)).sum::<f64>() / r;
        let beta = b / c;
        let q = a - b * beta;
        let py2 = a2 - 2.0 * beta * b2 + beta * beta * c2;
        let df = nf - 1.0;
        let slope = -0.5 * (trace_h - c2 / c - df * py2 / q) * delta;
        let loglik = -0.5 * (df * (2.0 * std::f64::consts::PI * q / df).ln() + df + logdet + c.ln());
        Point { slope, loglik }
    }

    /// The REML optimum in `ln δ` if the runs have converged where it lies: `None` to take more
    /// steps. Over the range where all runs have converged (`[t_c, max]`), as the exact search:
    /// a grid, every sign change of the score bisected, the ends, the best by likelihood; the
    /// lower end `t_c` counts only when it is the range's own (below it, the optimum could lie
    /// anywhere the score rises into).
    fn search(
        &self,
        spectra: &[Spectrum],
        search: &RemlSearch,
        steps: usize,
    ) -> Result<Option<(f64, bool)>, CoreError> {
        let (lo_limit, hi_limit) = (search.log_delta_min, search.log_delta_max);
        if !self.converged(spectra, hi_limit.exp()) {
            return Ok(None);
        }
        let t_c = if self.converged(spectra, lo_limit.exp()) {
            lo_limit
        } else {
            let (mut lo, mut hi) = (lo_limit, hi_limit);
            while hi - lo > 1e-3 {
                let mid = 0.5 * (lo + hi);
                if self.converged(spectra, mid.exp()) {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            hi
        };
        let at = |t: f64| {
            let p = self.point(spectra, t.exp());
            if p.slope.is_finite() && p.loglik.is_finite() {
                Ok(p)
            } else {
                Err(CoreError::Numerical("the phenotypes are fitted exactly; REML is undefined".into()))
            }
        };
        let start = at(t_c)?;
        tracing::info!(
            "matrix-free REML: {steps} Lanczos steps; converged for ln δ ≥ {t_c:.3}, where the score is {:.4e}",
            start.slope
        );
        let own_end = t_c <= lo_limit;
        if !own_end && start.slope <= 0.0 {
            return Ok(None);
        }
        let g = search.grid_points.max(2);
        let grid: Vec<f64> = (0..g).map(|i| t_c + (hi_limit - t_c) * i as f64 / (g - 1) as f64).collect();
        let points: Vec<Point> = grid.iter().map(|&t| at(t)).collect::<Result<_, _>>()?;
        let mut best: Option<(f64, f64, bool)> = None;
        let mut consider = |t: f64, loglik: f64, edge: bool| {
            if best.is_none_or(|(_, l, _)| loglik > l) {
                best = Some((t, loglik, edge));
            }
        };
        if own_end {
            consider(grid[0], points[0].loglik, true);
        }
        consider(grid[g - 1], points[g - 1].loglik, true);
        for i in 0..g - 1 {
            if points[i].slope > 0.0 && points[i + 1].slope <= 0.0 {
                let (mut lo, mut hi) = (grid[i], grid[i + 1]);
                while hi - lo > self.settings.log_delta_tolerance {
                    let mid = 0.5 * (lo + hi);
                    if at(mid)?.slope > 0.0 {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                let t = 0.5 * (lo + hi);
                consider(t, at(t)?.loglik, false);
            }
        }
        Ok(best.map(|(t, _, edge)| (t, edge)))
    }

    /// Finds the REML `δ` in `search`'s range and returns the fit with the BLUP weights.
    pub fn fit(&self, search: &RemlSearch) -> Result<MatrixFreeFit, CoreError> {
        let searched = self.lanczos_search(search)?;
        let (t, at_boundary, evaluations, steps) =
            (searched.t, searched.at_boundary, searched.searches, searched.steps);
        let n = self.n();
        let delta = t.exp();
        // y and 1 solved at the optimum to the final tolerance, from the Lanczos runs' own
        // solution there (y = y_c + ȳ1).
        let b = Mat::from_fn(n, 2, |i, j| if j == 0 { self.y[i] } else { 1.0 });
        let x0 = searched
            .solution(0, delta, n)
            .zip(searched.solution(1, delta, n))
            .map(|(xc, x1)| Mat::from_fn(n, 2, |i, j| if j == 0 { xc[i] + self.mean * x1[i] } else { x1[i] }));
        let (x, cg) = solve(self.k, delta, b.as_ref(), x0, self.settings.tolerance, self.settings.max_iterations)?;
        let spectra = searched.spectra;
        let one_h1: f64 = (0..n).map(|i| x[(i, 1)]).sum();
        let one_hy: f64 = (0..n).map(|i| x[(i, 0)]).sum();
        let beta = one_hy / one_h1;
        let q = (0..n).map(|i| x[(i, 0)] * self.y[i]).sum::<f64>() - beta * one_hy;
        if q.is_nan() || q <= 0.0 {
            return Err(CoreError::Numerical("the phenotypes are fitted exactly; REML is undefined".into()));
        }
        let probes = &spectra[2..];
        let logdet = probes.iter().map(|s| n as f64 * s.quadrature(delta, f64::ln)).sum::<f64>() / probes.len() as f64;
        let df = (n - 1) as f64;
        let log_likelihood = -0.5 * (df * (2.0 * std::f64::consts::PI * q / df).ln() + df + logdet + one_h1.ln());
        let sigma2_g = q / df;
        let alpha = (0..n).map(|i| x[(i, 0)] - beta * x[(i, 1)]).collect();
        tracing::info!("matrix-free REML: ln δ = {t:.4} after {steps} Lanczos steps; final solve {cg} iterations");
        Ok(MatrixFreeFit {
            fit: RemlFit { delta, sigma2_g, sigma2_e: delta * sigma2_g, log_likelihood, at_boundary },
            beta,
            alpha,
            evaluations,
            iterations: steps + cg,
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

    /// The score from the Lanczos tridiagonals against the same estimator from dense solves
    /// (the same probes), at the optimum and at a larger δ; `ln |H|` against the exact value.
    #[test]
    fn the_lanczos_quadratures_match_dense_solves() {
        let (n, m) = (200, 300);
        let (k, y) = problem(n, m, 5);
        let dense = Dense(k.clone());
        let reml = MatrixFreeReml::new(&dense, &y, MatrixFreeSettings { probes: 4, ..Default::default() });
        let searched = reml.lanczos_search(&RemlSearch::default()).unwrap();
        let (spectra, t, steps) = (&searched.spectra, searched.t, searched.steps);
        assert!(steps < n, "{steps} steps");
        let col = |a: &Mat<f64>, j: usize, b: &Mat<f64>, l: usize| (0..n).map(|i| a[(i, j)] * b[(i, l)]).sum::<f64>();
        for delta in [t.exp(), 3.0 * t.exp()] {
            assert!(reml.converged(spectra, delta));
            let h = &k + Mat::<f64>::identity(n, n) * faer::Scale(delta);
            let x = faer::prelude::Solve::solve(&h.llt(faer::Side::Lower).unwrap(), &reml.rhs);
            let (c, bb) = (col(&x, 1, &reml.rhs, 1), col(&x, 0, &reml.rhs, 1));
            let beta = bb / c;
            let q = col(&x, 0, &reml.rhs, 0) - beta * bb;
            let py2: f64 = (0..n).map(|i| (x[(i, 0)] - beta * x[(i, 1)]).powi(2)).sum();
            let trace_h = (2..6).map(|j| col(&x, j, &reml.rhs, j)).sum::<f64>() / 4.0;
            let slope = -0.5 * (trace_h - col(&x, 1, &x, 1) / c - (n - 1) as f64 * py2 / q) * delta;
            let lanczos = reml.point(spectra, delta).slope;
            // Relative to the score's two terms, which nearly cancel at the optimum.
            assert!((lanczos - slope).abs() < 1e-6 * trace_h * delta, "δ {delta}: score {lanczos} vs dense {slope}");
            let exact: f64 =
                h.self_adjoint_eigen(faer::Side::Lower).unwrap().S().column_vector().iter().map(|l| l.ln()).sum();
            let estimate = spectra[2..].iter().map(|s| n as f64 * s.quadrature(delta, f64::ln)).sum::<f64>() / 4.0;
            assert!((estimate - exact).abs() < 0.2 * exact.abs().max(10.0), "ln|H| {estimate} vs {exact}");
        }
        // Far below the optimum (h² ≈ 1) the runs have not converged, and the check says so.
        assert!(!reml.converged(spectra, RemlSearch::default().log_delta_min.exp()));
        // The runs' own solutions for y_c and 1 at the optimum, which start the final solve.
        let delta = t.exp();
        let h = &k + Mat::<f64>::identity(n, n) * faer::Scale(delta);
        for j in 0..2 {
            let x = searched.solution(j, delta, n).unwrap();
            let hx = &h * Mat::from_fn(n, 1, |i, _| x[i]);
            let b = reml.rhs.col(j);
            let residual = (0..n).map(|i| (hx[(i, 0)] - b[i]).powi(2)).sum::<f64>().sqrt();
            let norm = (0..n).map(|i| b[i] * b[i]).sum::<f64>().sqrt();
            assert!(residual < 2e-5 * norm, "column {j}: relative residual {}", residual / norm);
        }
    }

    #[test]
    fn the_final_solve_is_exact() {
        let (k, y) = problem(200, 300, 5);
        let dense = Dense(k.clone());
        let b = Mat::from_fn(200, 1, |i, _| y[i]);
        let (x, iterations) = solve(&dense, 0.7, b.as_ref(), None, 1e-10, 1000).unwrap();
        assert!(iterations > 1);
        let h = &k + Mat::<f64>::identity(200, 200) * faer::Scale(0.7);
        let hx = &h * &x;
        let norm = y.iter().map(|v| v * v).sum::<f64>().sqrt();
        for i in 0..200 {
            assert!((hx[(i, 0)] - y[i]).abs() < 1e-8 * norm);
        }
    }

    /// A trait without genetic signal: the optimum lies at large δ (small h²), far from where
    /// a high-h² trait puts it; the search finds it where the exact one does, to the trace
    /// estimate's error at n = 300.
    #[test]
    fn noise_gives_a_small_heritability_like_the_exact_search() {
        let (k, _) = problem(300, 400, 8);
        let mut g = rng(9);
        let y: Vec<f64> = (0..300).map(|_| 10.0 + g.random::<f64>()).collect();
        let search = RemlSearch::default();
        let (exact, _) = Spectral::new(&k, &y).unwrap().fit(&search).unwrap();
        let dense = Dense(k);
        let free = MatrixFreeReml::new(&dense, &y, MatrixFreeSettings::default()).fit(&search).unwrap();
        let h2 = |delta: f64| 1.0 / (1.0 + delta);
        assert!(h2(exact.delta) < 0.25 && h2(free.fit.delta) < 0.25, "δ {} vs exact {}", free.fit.delta, exact.delta);
        assert!((free.fit.delta.ln() - exact.delta.ln()).abs() < 0.5, "δ {} vs exact {}", free.fit.delta, exact.delta);
        assert_eq!(free.fit.at_boundary, exact.at_boundary);
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
