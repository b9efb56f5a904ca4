use super::*;
use crate::reml::reference::rel;
use crate::reml::{RemlSearch, Spectral};
use faer::linalg::solvers::DenseSolveCore;
use rand::{Rng, SeedableRng};

/// `lines` lines with a genomic-like kernel (dosage cross-products of simulated markers, scaled
/// to a mean diagonal of 1), observed in `envs` environments with some cells missing; the trait
/// has environment means, a genetic effect, a line × environment effect and noise with the
/// variances given. Returns the records' line and environment, `y` and the line kernel.
fn trial(
    lines: usize,
    envs: usize,
    (vg, vge, ve): (f64, f64, f64),
    seed: u64,
) -> (Vec<usize>, Vec<usize>, Vec<f64>, Mat<f64>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let m = 300;
    let z: Vec<f64> = (0..lines * m).map(|_| f64::from(rng.random_range(0..3u8))).collect();
    let means: Vec<f64> = (0..m).map(|j| (0..lines).map(|i| z[i * m + j]).sum::<f64>() / lines as f64).collect();
    let mut k = Mat::from_fn(lines, lines, |a, b| {
        (0..m).map(|j| (z[a * m + j] - means[j]) * (z[b * m + j] - means[j])).sum::<f64>()
    });
    let scale = (0..lines).map(|i| k[(i, i)]).sum::<f64>() / lines as f64;
    k *= faer::Scale(1.0 / scale);
    let normal = |rng: &mut rand_chacha::ChaCha8Rng| {
        let (u1, u2): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random_range(0.0..1.0));
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    };
    // Genetic values with covariance vg·K: K's Cholesky factor times standard normals.
    let jittered = Mat::from_fn(lines, lines, |a, b| k[(a, b)] + if a == b { 1e-8 } else { 0.0 });
    let l = jittered.llt(Side::Lower).unwrap().L().to_owned();
    let draw = |rng: &mut rand_chacha::ChaCha8Rng, var: f64| -> Vec<f64> {
        let w: Vec<f64> = (0..lines).map(|_| normal(rng)).collect();
        (0..lines).map(|a| var.sqrt() * (0..=a).map(|b| l[(a, b)] * w[b]).sum::<f64>()).collect()
    };
    let g = draw(&mut rng, vg);
    let ge: Vec<Vec<f64>> = (0..envs).map(|_| draw(&mut rng, vge)).collect();
    let env_means: Vec<f64> = (0..envs).map(|e| 10.0 + 3.0 * e as f64).collect();
    let (mut line_of, mut env_of, mut y) = (Vec::new(), Vec::new(), Vec::new());
    for a in 0..lines {
        for e in 0..envs {
            if rng.random_bool(0.15) {
                continue; // a missing line × environment cell
            }
            line_of.push(a);
            env_of.push(e);
            y.push(env_means[e] + g[a] + ge[e][a] + ve.sqrt() * normal(&mut rng));
        }
    }
    (line_of, env_of, y, k)
}

/// The records' kernels `Z K Zᵀ` and `(Z K Zᵀ) ⊙ [same environment]`, and the fixed effects
/// (a column per environment).
fn record_kernels(line_of: &[usize], env_of: &[usize], k: &Mat<f64>, envs: usize) -> (Mat<f64>, Mat<f64>, Mat<f64>) {
    let n = line_of.len();
    let kg = Mat::from_fn(n, n, |r, s| k[(line_of[r], line_of[s])]);
    let kge = Mat::from_fn(n, n, |r, s| if env_of[r] == env_of[s] { kg[(r, s)] } else { 0.0 });
    let x = Mat::from_fn(n, envs, |r, e| f64::from(u8::from(env_of[r] == e)));
    (kg, kge, x)
}

/// The restricted log-likelihood computed independently of [`evaluate`]: explicit LU inverses
/// and determinants (no Cholesky factor, no `P` shortcut).
fn independent_loglik(kernels: &[&Mat<f64>], x: &Mat<f64>, y: &[f64], theta: &[f64]) -> f64 {
    let n = y.len();
    let mut v = Mat::<f64>::identity(n, n) * faer::Scale(theta[kernels.len()]);
    for (k, kernel) in kernels.iter().enumerate() {
        v += *kernel * faer::Scale(theta[k]);
    }
    let lu = v.partial_piv_lu();
    let vinv = lu.inverse();
    let logdet = |m: &Mat<f64>| {
        let u = m.partial_piv_lu();
        let u_factor = u.U().to_owned();
        (0..m.nrows()).map(|i| u_factor[(i, i)].abs().ln()).sum::<f64>()
    };
    let xvx = x.transpose() * &vinv * x;
    let yv = Mat::from_fn(n, 1, |i, _| y[i]);
    let beta = xvx.partial_piv_lu().inverse() * x.transpose() * &vinv * &yv;
    let r = &yv - x * &beta;
    let quad = (r.transpose() * &vinv * &r)[(0, 0)];
    -0.5 * ((n - x.ncols()) as f64 * (2.0 * std::f64::consts::PI).ln() + logdet(&v) + logdet(&xvx) + quad)
}

#[test]
fn one_kernel_equals_the_spectral_reml() {
    let (line_of, env_of, y, k) = trial(90, 1, (2.0, 0.0, 1.0), 4);
    let (kg, _, x) = record_kernels(&line_of, &env_of, &k, 1);
    let fit = fit(&[&kg], &["g"], &x, &y, &[], &MultiRemlConfig::default()).unwrap();
    let spectral = Spectral::new(&kg, &y).unwrap();
    let (s, beta) = spectral.fit(&RemlSearch::default()).unwrap();
    assert!(!s.at_boundary);
    assert!(rel(fit.components[0].sigma2, s.sigma2_g) < 1e-6, "{} vs {}", fit.components[0].sigma2, s.sigma2_g);
    assert!(rel(fit.components[1].sigma2, s.sigma2_e) < 1e-6);
    assert!(rel(fit.beta[0], beta) < 1e-8);
    assert!((fit.log_likelihood - s.log_likelihood).abs() < 1e-8 * s.log_likelihood.abs());
    let alpha = spectral.alpha(&s, beta);
    for (a, b) in fit.alpha.iter().zip(&alpha) {
        // Spectral's α is (K + δI)⁻¹(y − 1β̂) = σ²_g V⁻¹(y − 1β̂).
        assert!((a * fit.components[0].sigma2 - b).abs() < 1e-6 * b.abs().max(1e-3), "{a} vs {b}");
    }
}

#[test]
fn two_kernels_reach_the_independent_likelihoods_maximum() {
    let (line_of, env_of, y, k) = trial(50, 3, (1.0, 0.6, 0.5), 7);
    let (kg, kge, x) = record_kernels(&line_of, &env_of, &k, 3);
    let kernels = [&kg, &kge];
    let fit = fit(&kernels, &["g", "ge"], &x, &y, &[], &MultiRemlConfig::default()).unwrap();
    let theta: Vec<f64> = fit.components.iter().map(|c| c.sigma2).collect();
    assert!(fit.components.iter().all(|c| !c.at_zero && c.se.is_some_and(|s| s > 0.0)), "{:?}", fit.components);
    let at = independent_loglik(&kernels, &x, &y, &theta);
    assert!((at - fit.log_likelihood).abs() < 1e-7 * at.abs(), "{at} vs {}", fit.log_likelihood);
    // The optimum: the independent likelihood's slope is zero in every direction, and no
    // neighbour is higher.
    for c in 0..theta.len() {
        let h = 1e-4 * theta[c];
        let (mut up, mut down) = (theta.clone(), theta.clone());
        up[c] += h;
        down[c] -= h;
        let (lu, ld) = (independent_loglik(&kernels, &x, &y, &up), independent_loglik(&kernels, &x, &y, &down));
        let slope = (lu - ld) / (2.0 * h) * theta[c];
        assert!(slope.abs() < 1e-4, "component {c}: relative slope {slope}");
        for f in [0.95, 1.05] {
            let mut moved = theta.clone();
            moved[c] *= f;
            assert!(independent_loglik(&kernels, &x, &y, &moved) < at, "component {c} × {f} is higher");
        }
    }
    // The predictions of held-out records equal the BLUP computed from explicit inverses.
    let (line_t, env_t) = ([0usize, 7, 13], [2usize, 0, 1]);
    let n = y.len();
    let cross_g = Mat::from_fn(3, n, |t, s| k[(line_t[t], line_of[s])]);
    let cross_ge = Mat::from_fn(3, n, |t, s| if env_t[t] == env_of[s] { cross_g[(t, s)] } else { 0.0 });
    let x_new = Mat::from_fn(3, 3, |t, e| f64::from(u8::from(env_t[t] == e)));
    let predicted = fit.predict(&[&cross_g, &cross_ge], &x_new);
    let v =
        &kg * faer::Scale(theta[0]) + &kge * faer::Scale(theta[1]) + Mat::<f64>::identity(n, n) * faer::Scale(theta[2]);
    let vinv = v.partial_piv_lu().inverse();
    let yv = Mat::from_fn(n, 1, |i, _| y[i]);
    let beta = (x.transpose() * &vinv * &x).partial_piv_lu().inverse() * x.transpose() * &vinv * &yv;
    let r = &yv - &x * &beta;
    let blup = &x_new * &beta + (&cross_g * faer::Scale(theta[0]) + &cross_ge * faer::Scale(theta[1])) * &vinv * &r;
    for t in 0..3 {
        assert!(
            (predicted[t] - blup[(t, 0)]).abs() < 1e-7 * blup[(t, 0)].abs(),
            "{} vs {}",
            predicted[t],
            blup[(t, 0)]
        );
    }
}

#[test]
fn recovers_simulated_components_within_their_standard_errors() {
    let (line_of, env_of, y, k) = trial(160, 3, (1.0, 0.5, 0.5), 11);
    let (kg, kge, x) = record_kernels(&line_of, &env_of, &k, 3);
    let fit = fit(&[&kg, &kge], &["g", "ge"], &x, &y, &[], &MultiRemlConfig::default()).unwrap();
    for (c, truth) in fit.components.iter().zip([1.0, 0.5, 0.5]) {
        let se = c.se.unwrap();
        assert!((c.sigma2 - truth).abs() < 3.0 * se, "{}: {} ± {se}, simulated {truth}", c.name, c.sigma2);
        assert!(se < 0.6 * truth, "{}: se {se} too large to tell anything", c.name);
    }
    assert!(fit.beta.iter().zip([10.0, 13.0, 16.0]).all(|(b, m)| (b - m).abs() < 1.0), "{:?}", fit.beta);
}

#[test]
fn a_gxe_model_held_at_zero_interaction_is_the_across_environment_model() {
    let (line_of, env_of, y, k) = trial(50, 3, (1.0, 0.4, 0.5), 5);
    let (kg, kge, x) = record_kernels(&line_of, &env_of, &k, 3);
    let config = MultiRemlConfig::default();
    let across = fit(&[&kg], &["g"], &x, &y, &[], &config).unwrap();
    let held = fit(&[&kg, &kge], &["g", "ge"], &x, &y, &[Constraint::NonNegative, Constraint::Zero], &config).unwrap();
    assert!(held.components[1].at_zero && held.components[1].sigma2 == 0.0 && held.components[1].se.is_none());
    assert!(rel(held.components[0].sigma2, across.components[0].sigma2) < 1e-7);
    assert!(rel(held.components[2].sigma2, across.components[1].sigma2) < 1e-7);
    assert!((held.log_likelihood - across.log_likelihood).abs() < 1e-9 * across.log_likelihood.abs());
    let n = y.len();
    let cross = Mat::from_fn(2, n, |t, s| k[(t + 3, line_of[s])]);
    let cross_ge = Mat::from_fn(2, n, |t, s| if env_of[s] == 1 { cross[(t, s)] } else { 0.0 });
    let x_new = Mat::from_fn(2, 3, |_, e| f64::from(u8::from(e == 1)));
    let (a, h) = (across.predict(&[&cross], &x_new), held.predict(&[&cross, &cross_ge], &x_new));
    for (a, h) in a.iter().zip(&h) {
        assert!((a - h).abs() < 1e-7 * a.abs(), "{a} vs {h}");
    }
    // Free, the interaction is found (simulated at 0.4) and the likelihood is higher.
    let free = fit(&[&kg, &kge], &["g", "ge"], &x, &y, &[], &config).unwrap();
    assert!(free.components[1].sigma2 > 0.05 && free.log_likelihood > held.log_likelihood);
}

#[test]
fn a_component_the_data_do_not_support_is_held_at_zero_where_the_likelihood_falls_inside() {
    // No interaction simulated and few records: REML's unconstrained optimum for it is often
    // negative; wherever it lands at zero, the likelihood must not rise inside.
    let mut seen_zero = false;
    for seed in 20..32 {
        let (line_of, env_of, y, k) = trial(30, 2, (1.0, 0.0, 1.0), seed);
        let (kg, kge, x) = record_kernels(&line_of, &env_of, &k, 2);
        let fit = fit(&[&kg, &kge], &["g", "ge"], &x, &y, &[], &MultiRemlConfig::default()).unwrap();
        let theta: Vec<f64> = fit.components.iter().map(|c| c.sigma2).collect();
        for c in 0..2 {
            if fit.components[c].at_zero {
                seen_zero = true;
                assert_eq!(theta[c], 0.0);
                let at = independent_loglik(&[&kg, &kge], &x, &y, &theta);
                let mut inside = theta.clone();
                inside[c] = 1e-3 * theta.iter().sum::<f64>();
                assert!(independent_loglik(&[&kg, &kge], &x, &y, &inside) <= at + 1e-9, "seed {seed}, component {c}");
            }
        }
    }
    assert!(seen_zero, "no fit reached the boundary: the test tests nothing");
}

#[test]
fn too_few_records_and_a_rank_deficient_design_are_errors() {
    let (line_of, env_of, y, k) = trial(20, 2, (1.0, 0.5, 0.5), 2);
    let (kg, _, x) = record_kernels(&line_of, &env_of, &k, 2);
    let dup = Mat::from_fn(y.len(), 3, |r, c| if c == 2 { x[(r, 0)] } else { x[(r, c)] });
    let err = fit(&[&kg], &["g"], &dup, &y, &[], &MultiRemlConfig::default()).unwrap_err();
    assert!(err.to_string().contains("rank deficient"), "{err}");
    let few = Mat::from_fn(3, 3, |r, s| kg[(r, s)]);
    let err =
        fit(&[&few], &["g"], &Mat::from_fn(3, 2, |_, _| 1.0), &y[..3], &[], &MultiRemlConfig::default()).unwrap_err();
    assert!(err.to_string().contains("3 records"), "{err}");
}

/// For two environments: the kernel blocks of environment 1, of environment 2 and between them
/// (an unstructured model's three components), and a column per environment.
fn two_environment_blocks(
    line_of: &[usize],
    env_of: &[usize],
    k: &Mat<f64>,
) -> (Mat<f64>, Mat<f64>, Mat<f64>, Mat<f64>) {
    let n = line_of.len();
    let block = |e: usize, f: usize| {
        Mat::from_fn(n, n, |r, s| {
            let pair = (env_of[r], env_of[s]);
            if pair == (e, f) || pair == (f, e) { k[(line_of[r], line_of[s])] } else { 0.0 }
        })
    };
    let x = Mat::from_fn(n, 2, |r, e| f64::from(u8::from(env_of[r] == e)));
    (block(0, 0), block(1, 1), block(0, 1), x)
}

#[test]
fn an_unstructured_model_estimates_a_negative_genetic_covariance_between_environments() {
    // Two environments whose genetic values are negatively correlated (g₂ = −0.7 g₁ + 0.5 w):
    // the covariance component is free to go below zero, and is found there.
    let (line_of, env_of, _, k) = trial(150, 2, (1.0, 0.0, 0.5), 13);
    let lines = k.nrows();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
    let jittered = Mat::from_fn(lines, lines, |a, b| k[(a, b)] + if a == b { 1e-8 } else { 0.0 });
    let l = jittered.llt(Side::Lower).unwrap().L().to_owned();
    let normal = |rng: &mut rand_chacha::ChaCha8Rng| {
        let (u1, u2): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random_range(0.0..1.0));
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    };
    let mut draw = || -> Vec<f64> {
        let z: Vec<f64> = (0..lines).map(|_| normal(&mut rng)).collect();
        (0..lines).map(|a| (0..=a).map(|b| l[(a, b)] * z[b]).sum::<f64>()).collect()
    };
    let (u, w) = (draw(), draw());
    let y: Vec<f64> = (0..line_of.len())
        .map(|r| {
            let g = if env_of[r] == 0 { u[line_of[r]] } else { -0.7 * u[line_of[r]] + 0.5 * w[line_of[r]] };
            5.0 * env_of[r] as f64 + g + 0.5_f64.sqrt() * normal(&mut rng)
        })
        .collect();
    let (k11, k22, k12, x) = two_environment_blocks(&line_of, &env_of, &k);
    let constraints = [Constraint::NonNegative, Constraint::NonNegative, Constraint::Free];
    let fit =
        fit(&[&k11, &k22, &k12], &["g:1", "g:2", "g:1,2"], &x, &y, &constraints, &MultiRemlConfig::default()).unwrap();
    let cov = &fit.components[2];
    let se = cov.se.unwrap();
    assert!(cov.sigma2 < -2.0 * se, "covariance {} ± {se} should be clearly negative", cov.sigma2);
    assert!((cov.sigma2 + 0.7).abs() < 3.0 * se, "covariance {} ± {se}, simulated −0.7", cov.sigma2);
    assert!(!cov.at_zero);
    // Held to non-negative, the same component can only sit at zero, with a lower likelihood.
    let held = [Constraint::NonNegative, Constraint::NonNegative, Constraint::NonNegative];
    let at_zero =
        super::fit(&[&k11, &k22, &k12], &["g:1", "g:2", "g:1,2"], &x, &y, &held, &MultiRemlConfig::default()).unwrap();
    assert!(at_zero.components[2].at_zero && at_zero.log_likelihood < fit.log_likelihood);
}

#[test]
fn a_feasible_region_keeps_every_accepted_step_inside_it() {
    // The covariance between two environments, forbidden to reach its free estimate: the fit
    // stops at the edge, with a lower likelihood than the free one, and never steps outside.
    let (line_of, env_of, y, k) = trial(60, 2, (1.0, 0.5, 0.5), 17);
    let (k11, k22, k12, x) = two_environment_blocks(&line_of, &env_of, &k);
    let constraints = [Constraint::NonNegative, Constraint::NonNegative, Constraint::Free];
    let config = MultiRemlConfig::default();
    let free = fit(&[&k11, &k22, &k12], &["a", "b", "ab"], &x, &y, &constraints, &config).unwrap();
    let bound = free.components[2].sigma2 - 0.1;
    assert!(bound > 0.0, "the start (covariance 0) must be inside: {bound}");
    let seen = std::cell::RefCell::new(Vec::new());
    let inside = |t: &[f64]| {
        seen.borrow_mut().push(t[2]);
        t[2] <= bound
    };
    let within = fit_within(&[&k11, &k22, &k12], &["a", "b", "ab"], &x, &y, &constraints, &inside, &config).unwrap();
    assert!(within.components[2].sigma2 <= bound);
    assert!(seen.borrow().iter().any(|&t| t > bound), "the free steps went outside and were shortened");
    assert!(
        bound - within.components[2].sigma2 < 0.01,
        "{} should sit at the edge {bound}",
        within.components[2].sigma2
    );
    assert!(within.log_likelihood < free.log_likelihood);
    assert!(!seen.borrow().is_empty());
}
