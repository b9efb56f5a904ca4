//! GBLUP against an independent reference: variance components by dense AI-REML (no
//! eigendecomposition), BLUPs by the dense mixed-model equations, on simulated data.

use faer::Mat;
use faer::linalg::solvers::{DenseSolveCore, Solve};
use genopred_core::genotype::{GenotypeMatrix, MISSING};
use genopred_core::{FitContext, Predictor, TrainSet};
use rand::{Rng, SeedableRng};

use crate::{FittedGblup, Gblup, GblupConfig};

/// `n` samples × `m` markers in full-sib families of 10 (so relationships vary, as in breeding
/// data, and REML has something to estimate), allele frequencies in (0.1, 0.9), about 1 %
/// missing calls, and a trait with heritability about `h2`.
fn simulate(n: usize, m: usize, h2: f64, seed: u64) -> (GenotypeMatrix, Vec<f64>) {
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

/// G over all samples from training allele frequencies, built by plain loops.
fn reference_g(geno: &GenotypeMatrix, train: &[usize]) -> Mat<f64> {
    let (n, m) = (geno.n_samples(), geno.n_markers());
    let mut mean = vec![0.0; m];
    for j in 0..m {
        let vals: Vec<f64> = train.iter().filter_map(|&i| geno.dosage(i, j)).collect();
        mean[j] = vals.iter().sum::<f64>() / vals.len() as f64;
    }
    let scale: f64 = mean.iter().map(|&x| 2.0 * (x / 2.0) * (1.0 - x / 2.0)).sum();
    let z = |i: usize, j: usize| geno.dosage(i, j).unwrap_or(mean[j]) - mean[j];
    Mat::from_fn(n, n, |a, b| (0..m).map(|j| z(a, j) * z(b, j)).sum::<f64>() / scale)
}

struct Reference {
    sigma2_g: f64,
    sigma2_e: f64,
    beta: f64,
    loglik: f64,
    predictions: Vec<f64>,
}

/// Average-information REML on dense matrices, then BLUP of `test` from the MME solution.
fn ai_reml(g_all: &Mat<f64>, train: &[usize], test: &[usize], y: &[f64]) -> Reference {
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

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

#[test]
fn matches_dense_ai_reml_and_mixed_model_equations() {
    for (seed, h2) in [(1u64, 0.5), (2, 0.4), (3, 0.8)] {
        let (geno, y_all) = simulate(100, 300, h2, seed);
        // Test samples from families also in training, as in a breeding programme.
        let test: Vec<usize> = (0..100).filter(|i| i % 5 == 0).collect();
        let train: Vec<usize> = (0..100).filter(|i| i % 5 != 0).collect();
        let y: Vec<f64> = train.iter().map(|&i| y_all[i]).collect();
        let fitted = FittedGblup::fit(&geno, &train, &y, &GblupConfig::default()).unwrap();
        let reml = fitted.reml.unwrap();
        let reference = ai_reml(&reference_g(&geno, &train), &train, &test, &y);
        assert!(
            !reml.at_boundary,
            "seed {seed}: optimum should be interior: {reml:?} vs {} {} {}",
            reference.sigma2_g, reference.sigma2_e, reference.loglik
        );
        assert!(rel(reml.sigma2_g, reference.sigma2_g) < 1e-6, "σ²g {} vs {}", reml.sigma2_g, reference.sigma2_g);
        assert!(rel(reml.sigma2_e, reference.sigma2_e) < 1e-6, "σ²e {} vs {}", reml.sigma2_e, reference.sigma2_e);
        assert!(rel(fitted.intercept, reference.beta) < 1e-6);
        assert!(rel(reml.log_likelihood, reference.loglik) < 1e-9, "{} vs {}", reml.log_likelihood, reference.loglik);
        let pred = fitted.predict(&geno, &test).unwrap();
        for (p, r) in pred.iter().zip(&reference.predictions) {
            assert!(rel(*p, *r) < 1e-6, "prediction {p} vs reference {r}");
        }
    }
}

#[test]
fn predicts_held_out_samples_better_than_the_mean() {
    let (geno, y_all) = simulate(150, 300, 0.8, 9);
    let train: Vec<usize> = (0..120).collect();
    let test: Vec<usize> = (120..150).collect();
    let y: Vec<f64> = train.iter().map(|&i| y_all[i]).collect();
    let mut model = Gblup::default();
    assert!(!model.wants_validation());
    let all: Vec<usize> = (0..150).collect();
    let ctx = FitContext { seed: 1, genotyped_rows: &all, observer: &genopred_core::Quiet };
    let info = model.fit(&TrainSet { geno: &geno, rows: &train, y: &y }, None, &ctx).unwrap();
    let report: crate::GblupFitReport = serde_json::from_value(info.details.clone().into()).unwrap();
    assert!(report.reml.unwrap().h2 > 0.2);
    assert_eq!(info.epochs_run, None);
    let pred = model.predict(&geno, &test).unwrap();
    let obs: Vec<f64> = test.iter().map(|&i| y_all[i]).collect();
    let r = genopred_core::metrics::pearson(&obs, &pred);
    assert!(r > 0.4, "held-out r = {r}");
    // Saved and loaded, it predicts identically; a folder without the file is an error.
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let loaded = Gblup::load(GblupConfig::default(), dir.path()).unwrap();
    assert_eq!(loaded.predict(&geno, &test).unwrap(), pred);
    let empty = tempfile::tempdir().unwrap();
    assert!(Gblup::load(GblupConfig::default(), empty.path()).unwrap_err().to_string().contains("gblup.json"));
    assert!(Gblup::default().save(dir.path()).is_err(), "save before fit");
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let (geno, y_all) = simulate(20, 30, 0.5, 4);
    let model = Gblup::default();
    assert!(model.predict(&geno, &[0]).unwrap_err().to_string().contains("before fit"));
    let few = FittedGblup::fit(&geno, &[0, 1, 2], &y_all[..3], &GblupConfig::default());
    assert!(few.unwrap_err().to_string().contains("at least 5"));
    let constant = geno.select_markers(&[0]);
    let flat =
        GenotypeMatrix::new(constant.samples().to_vec(), constant.markers().to_vec(), vec![100; constant.n_samples()])
            .unwrap();
    let rows: Vec<usize> = (0..20).collect();
    assert!(matches!(
        FittedGblup::fit(&flat, &rows, &y_all, &GblupConfig::default()),
        Err(crate::GblupError::NoVariation)
    ));
    let fitted = FittedGblup::fit(&geno, &rows, &y_all, &GblupConfig::default()).unwrap();
    assert!(fitted.predict(&constant, &[0]).is_err());
    let bad = GblupConfig { grid_points: 1, ..GblupConfig::default() };
    let e = Gblup::new(bad).unwrap_err();
    assert!(matches!(&e, crate::GblupError::Config(c) if c.key == "grid_points"), "{e}");
    assert_eq!(e.to_string(), "invalid GBLUP setting: grid_points = 1 is out of range: must be at least 3");
    let reversed = GblupConfig { log_delta_min: 1.0, log_delta_max: -1.0, ..GblupConfig::default() };
    assert!(Gblup::new(reversed).is_err());
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(Gblup::load(bad, dir.path()), Err(crate::GblupError::Config(_))), "load checks the config");
}
