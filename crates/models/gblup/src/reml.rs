//! REML for `y = Xβ + g + e`, `g ~ N(0, σ²_g K)`, `e ~ N(0, σ²_e I)`, in the spectral form of
//! EMMA / FaST-LMM: with `K = U Λ Uᵀ` computed once, the restricted likelihood of
//! `δ = σ²_e / σ²_g` costs O(n q²) per evaluation, so `δ` is found by a grid over `ln δ` and
//! bisection on the analytic derivative to machine precision.

use faer::Mat;
use faer::linalg::solvers::Solve;

use crate::error::GblupError;
use crate::hyperparams::GblupConfig;

/// The data rotated into `K`'s eigenbasis.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// Eigenvalues of `K` (clamped at 0).
    pub lambda: Vec<f64>,
    /// `Uᵀ y`.
    pub uy: Vec<f64>,
    /// `Uᵀ X`, `n × q`.
    pub ux: Mat<f64>,
}

/// The REML solution.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RemlFit {
    /// `σ²_e / σ²_g`.
    pub delta: f64,
    /// Genetic variance (on `K`'s scale).
    pub sigma2_g: f64,
    /// Residual variance.
    pub sigma2_e: f64,
    /// Restricted log-likelihood at the optimum (without the constant `½ ln|XᵀX|`).
    pub log_likelihood: f64,
    /// Whether the optimum lies on the edge of the searched range.
    pub at_boundary: bool,
}

struct Eval {
    loglik: f64,
    /// d loglik / d ln δ.
    slope: f64,
    beta: Vec<f64>,
    q: f64,
}

impl Rotated {
    fn n(&self) -> usize {
        self.uy.len()
    }

    fn q(&self) -> usize {
        self.ux.ncols()
    }

    /// GLS fit at `δ`: likelihood, its slope in `ln δ`, `β̂` and the weighted residual sum `Q`.
    fn eval(&self, delta: f64) -> Result<Eval, GblupError> {
        let (n, q) = (self.n(), self.q());
        let w: Vec<f64> = self.lambda.iter().map(|&l| 1.0 / (l + delta)).collect();
        // A = Xᵀ W X, b = Xᵀ W y, B = Xᵀ W² X.
        let a = Mat::from_fn(q, q, |i, j| (0..n).map(|k| w[k] * self.ux[(k, i)] * self.ux[(k, j)]).sum::<f64>());
        let b = Mat::from_fn(q, 1, |i, _| (0..n).map(|k| w[k] * self.ux[(k, i)] * self.uy[k]).sum::<f64>());
        let bw2 =
            Mat::from_fn(q, q, |i, j| (0..n).map(|k| w[k] * w[k] * self.ux[(k, i)] * self.ux[(k, j)]).sum::<f64>());
        let llt = a
            .llt(faer::Side::Lower)
            .map_err(|_| GblupError::Numerical("fixed-effect design is rank deficient".into()))?;
        let beta = llt.solve(&b);
        let beta: Vec<f64> = (0..q).map(|i| beta[(i, 0)]).collect();
        let l = llt.L();
        let logdet_a = 2.0 * (0..q).map(|i| l[(i, i)].ln()).sum::<f64>();
        let trace_ainv_b: f64 = {
            let s = llt.solve(&bw2);
            (0..q).map(|i| s[(i, i)]).sum()
        };
        let mut qsum = 0.0;
        let mut dq = 0.0;
        let mut sum_log = 0.0;
        let mut sum_w = 0.0;
        for k in 0..n {
            let r = self.uy[k] - (0..q).map(|i| self.ux[(k, i)] * beta[i]).sum::<f64>();
            qsum += w[k] * r * r;
            dq += w[k] * w[k] * r * r;
            sum_log += (self.lambda[k] + delta).ln();
            sum_w += w[k];
        }
        if qsum.is_nan() || qsum <= 0.0 {
            return Err(GblupError::Numerical("the phenotypes are fitted exactly; REML is undefined".into()));
        }
        let df = (n - q) as f64;
        let loglik = -0.5 * (df * (2.0 * std::f64::consts::PI * qsum / df).ln() + df + sum_log + logdet_a);
        let dl_ddelta = -0.5 * (-df * dq / qsum + sum_w - trace_ainv_b);
        Ok(Eval { loglik, slope: dl_ddelta * delta, beta, q: qsum })
    }

    /// Maximises the restricted likelihood over `δ`; returns the fit and `β̂`. `config` must have
    /// passed [`GblupConfig::check`].
    pub fn fit(&self, config: &GblupConfig) -> Result<(RemlFit, Vec<f64>), GblupError> {
        let g = config.grid_points;
        let step = (config.log_delta_max - config.log_delta_min) / (g - 1) as f64;
        let grid: Vec<f64> = (0..g).map(|i| config.log_delta_min + step * i as f64).collect();
        let evals: Vec<Eval> = grid.iter().map(|&t| self.eval(t.exp())).collect::<Result<_, _>>()?;
        // Candidates: the grid's ends, and every root of the slope going from + to −.
        let mut best_t = grid[0];
        let mut best = evals[0].loglik;
        if evals[g - 1].loglik > best {
            best_t = grid[g - 1];
            best = evals[g - 1].loglik;
        }
        for i in 0..g - 1 {
            if evals[i].slope > 0.0 && evals[i + 1].slope <= 0.0 {
                let t = self.bisect(grid[i], grid[i + 1])?;
                let e = self.eval(t.exp())?;
                if e.loglik > best {
                    best = e.loglik;
                    best_t = t;
                }
            }
        }
        let delta = best_t.exp();
        let e = self.eval(delta)?;
        let sigma2_g = e.q / (self.n() - self.q()) as f64;
        let at_boundary = best_t == grid[0] || best_t == grid[g - 1];
        Ok((RemlFit { delta, sigma2_g, sigma2_e: delta * sigma2_g, log_likelihood: e.loglik, at_boundary }, e.beta))
    }

    /// Root of the slope in `[lo, hi]` (slope(lo) > 0 ≥ slope(hi)), to machine precision.
    fn bisect(&self, mut lo: f64, mut hi: f64) -> Result<f64, GblupError> {
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if mid <= lo || mid >= hi {
                break;
            }
            if self.eval(mid.exp())?.slope > 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(0.5 * (lo + hi))
    }
}
