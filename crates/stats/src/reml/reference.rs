//! A dense, independent reference for the REML models' tests (GBLUP and RKHS): simulated
//! family data, average-information REML with explicit inverses (no eigendecomposition), and
//! BLUPs from the mixed-model solution. Compiled for core's tests, and for the model crates'
//! tests with genopred-core's `reference` feature.

use faer::Mat;
use faer::linalg::solvers::{DenseSolveCore, Solve};
use genopred_data::genotype::{GenotypeMatrix, MISSING};
use rand::{Rng, SeedableRng};

/// `n` samples × `m` markers in full-sib families of 10 (so relationships vary, as in breeding
/// data, and REML has something to estimate), allele frequencies in (0.1, 0.9), about 1 %
/// missing calls, and a trait with heritability about `h2`.
pub fn simulate(n: usize, m: usize, h2: f64, seed: u64) -> (GenotypeMatrix, Vec<f64>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let freqs: Vec<f64> = (0..m).map(|_| rng.random_range(0.1..0.9)).collect();
    let mut codes = Vec::with_capacity(n * m);
    let mut dosages = vec![0.0; n * m];
    let mut parents: Vec<[bool; 4]> = Vec::new();
    for i in 0..n {
        if i % 10 == 0 {
            parents = freqs.iter().map(|&f| std::array::from_fn(|_| rng.random_bool(f))).collect();
        }
        for j in 0..m {
            let h = parents[j];
            let d = u8::from(h[rng.random_range(0..2)]) + u8::from(h[2 + rng.random_range(0..2)]);
            dosages[i * m + j] = f64::from(d);
            codes.push(if rng.random_bool(0.01) { MISSING } else { d * 100 });
        }
    }
    let effects: Vec<f64> = (0..m).map(|_| rng.random_range(-1.0..1.0)).collect();
    let g: Vec<f64> = (0..n).map(|i| (0..m).map(|j| dosages[i * m + j] * effects[j]).sum()).collect();
    let mean = g.iter().sum::<f64>() / n as f64;
    let var_g = g.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    let sd_e = (var_g * (1.0 - h2) / h2).sqrt();
    let y = g
        .iter()
        .map(|v| {
            // Box-Muller normal noise.
            let (u1, u2): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random_range(0.0..1.0));
            10.0 + v + sd_e * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        })
        .collect();
    (GenotypeMatrix::with_generated_names(n, m, codes).unwrap(), y)
}

/// What the dense reference estimates.
pub struct Reference {
    /// Genetic variance (on the covariance structure's scale).
    pub sigma2_g: f64,
    /// Residual variance.
    pub sigma2_e: f64,
    /// Intercept (GLS).
    pub beta: f64,
    /// Restricted log-likelihood (without `½ ln|XᵀX|`, as the spectral REML reports it).
    pub loglik: f64,
    /// BLUPs of the test samples plus the intercept.
    pub predictions: Vec<f64>,
}

/// Average-information REML on dense matrices, then BLUP of `test` from the MME solution.
/// `g_all` is the covariance structure over every sample: its `train` block is fitted, its
/// `test × train` block predicts.
pub fn ai_reml(g_all: &Mat<f64>, train: &[usize], test: &[usize], y: &[f64]) -> Reference {
    let n = train.len();
    let g = Mat::from_fn(n, n, |a, b| g_all[(train[a], train[b])]);
    let yv = Mat::from_fn(n, 1, |i, _| y[i]);
    let x = Mat::from_fn(n, 1, |_, _| 1.0);
    let ident = Mat::<f64>::identity(n, n);
    let var_y = {
        let m = y.iter().sum::<f64>() / n as f64;
        y.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64
    };
    let mut theta = [var_y / 2.0, var_y / 2.0];
    let p_of = |t: &[f64; 2]| -> (Mat<f64>, Mat<f64>) {
        let v = &g * faer::Scale(t[0]) + &ident * faer::Scale(t[1]);
        let vinv = v.partial_piv_lu().inverse();
        let xtvx = x.transpose() * &vinv * &x;
        let p = &vinv - &vinv * &x * xtvx.partial_piv_lu().inverse() * x.transpose() * &vinv;
        (v, p)
    };
    for _ in 0..200 {
        let (_, p) = p_of(&theta);
        let py = &p * &yv;
        let vi = [&g, &ident];
        let mut score = [0.0; 2];
        let mut ai = Mat::<f64>::zeros(2, 2);
        for i in 0..2 {
            let tr: f64 = {
                let pv = &p * vi[i];
                (0..n).map(|k| pv[(k, k)]).sum()
            };
            let quad = (py.transpose() * vi[i] * &py)[(0, 0)];
            score[i] = -0.5 * tr + 0.5 * quad;
            for j in 0..2 {
                ai[(i, j)] = 0.5 * (py.transpose() * vi[i] * &p * vi[j] * &py)[(0, 0)];
            }
        }
        let step = ai.partial_piv_lu().solve(&Mat::from_fn(2, 1, |i, _| score[i]));
        let mut factor = 1.0;
        while theta[0] + factor * step[(0, 0)] <= 0.0 || theta[1] + factor * step[(1, 0)] <= 0.0 {
            factor /= 2.0;
        }
        let new = [theta[0] + factor * step[(0, 0)], theta[1] + factor * step[(1, 0)]];
        let change = ((new[0] - theta[0]).abs() / new[0]).max((new[1] - theta[1]).abs() / new[1]);
        theta = new;
        if change < 1e-13 {
            break;
        }
    }
    let (v, _) = p_of(&theta);
    let vinv = v.partial_piv_lu().inverse();
    let xtvx = (x.transpose() * &vinv * &x)[(0, 0)];
    let beta = (x.transpose() * &vinv * &yv)[(0, 0)] / xtvx;
    let resid = Mat::from_fn(n, 1, |i, _| y[i] - beta);
    let g_et = Mat::from_fn(test.len(), n, |a, b| g_all[(test[a], train[b])]);
    let u_test = &g_et * &vinv * &resid * faer::Scale(theta[0]);
    let llt = v.llt(faer::Side::Lower).unwrap();
    let logdet_v = 2.0 * (0..n).map(|i| llt.L()[(i, i)].ln()).sum::<f64>();
    let quad = (resid.transpose() * &vinv * &resid)[(0, 0)];
    let loglik = -0.5 * ((n - 1) as f64 * (2.0 * std::f64::consts::PI).ln() + logdet_v + xtvx.ln() + quad);
    Reference {
        sigma2_g: theta[0],
        sigma2_e: theta[1],
        beta,
        loglik,
        predictions: (0..test.len()).map(|i| beta + u_test[(i, 0)]).collect(),
    }
}

/// Relative difference of `a` from `b`.
pub fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}
