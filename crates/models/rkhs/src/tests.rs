//! RKHS against an independent reference: the kernel built by plain loops, variance components
//! by GBLUP's dense average-information REML (explicit inverses, no eigendecomposition), BLUPs
//! from the dense mixed-model solution; the gradient against finite differences.

use faer::Mat;
use genopred_core::genotype::GenotypeMatrix;
use genopred_core::reml::reference::{ai_reml, rel, simulate};
use genopred_core::{FitContext, Predictor, SaliencyOptions, TrainSet};

use crate::{FittedRkhs, Rkhs, RkhsConfig};

/// The Gaussian kernel over every sample with bandwidth `theta`, imputation means and the
/// median distance from the `train` samples only, by loops.
fn reference_kernel(geno: &GenotypeMatrix, train: &[usize], theta: f64) -> Mat<f64> {
    let (n, m) = (geno.n_samples(), geno.n_markers());
    let mean: Vec<f64> = (0..m)
        .map(|j| {
            let vals: Vec<f64> = train.iter().filter_map(|&i| geno.dosage(i, j)).collect();
            vals.iter().sum::<f64>() / vals.len() as f64
        })
        .collect();
    let x = |i: usize, j: usize| geno.dosage(i, j).unwrap_or(mean[j]);
    let d2 = |a: usize, b: usize| (0..m).map(|j| (x(a, j) - x(b, j)).powi(2)).sum::<f64>();
    let mut pairs: Vec<f64> = train
        .iter()
        .enumerate()
        .flat_map(|(k, &a)| train[k + 1..].iter().map(move |&b| (a, b)))
        .map(|(a, b)| d2(a, b))
        .collect();
    pairs.sort_by(f64::total_cmp);
    let h = pairs.len() / 2;
    let median = if pairs.len() % 2 == 1 { pairs[h] } else { 0.5 * (pairs[h - 1] + pairs[h]) };
    Mat::from_fn(n, n, |a, b| (-theta * d2(a, b) / median).exp())
}

fn split(n: usize) -> (Vec<usize>, Vec<usize>) {
    ((0..n).filter(|i| i % 5 != 0).collect(), (0..n).filter(|i| i % 5 == 0).collect())
}

#[test]
fn matches_dense_ai_reml_at_one_bandwidth() {
    // Interior optima only (a kernel close to the identity is confounded with the residual).
    for (seed, h2, theta) in [(1u64, 0.3, 1.0), (3, 0.5, 0.25), (4, 0.3, 2.0)] {
        let (geno, y_all) = simulate(80, 200, h2, seed);
        let (train, test) = split(80);
        let y: Vec<f64> = train.iter().map(|&i| y_all[i]).collect();
        let config = RkhsConfig { bandwidths: vec![theta], ..RkhsConfig::default() };
        let fitted = FittedRkhs::fit(&geno, &train, &y, &config).unwrap();
        let reference = ai_reml(&reference_kernel(&geno, &train, theta), &train, &test, &y);
        assert!(!fitted.reml.at_boundary, "seed {seed}: {:?}", fitted.reml);
        assert!(
            rel(fitted.reml.sigma2_g, reference.sigma2_g) < 1e-6,
            "σ²g {:?} vs {}",
            fitted.reml,
            reference.sigma2_g
        );
        assert!(
            rel(fitted.reml.sigma2_e, reference.sigma2_e) < 1e-6,
            "σ²e {:?} vs {}",
            fitted.reml,
            reference.sigma2_e
        );
        assert!(rel(fitted.intercept, reference.beta) < 1e-6);
        assert!(rel(fitted.reml.log_likelihood, reference.loglik) < 1e-9);
        let pred = fitted.predict(&geno, &test).unwrap();
        for (p, r) in pred.iter().zip(&reference.predictions) {
            assert!(rel(*p, *r) < 1e-6, "prediction {p} vs reference {r}");
        }
    }
}

#[test]
fn chooses_the_bandwidth_with_the_highest_restricted_likelihood() {
    let (geno, y_all) = simulate(80, 200, 0.6, 5);
    let (train, _) = split(80);
    let y: Vec<f64> = train.iter().map(|&i| y_all[i]).collect();
    let config = RkhsConfig::default();
    let fitted = FittedRkhs::fit(&geno, &train, &y, &config).unwrap();
    assert_eq!(fitted.profile.len(), config.bandwidths.len());
    let mut best = (f64::NEG_INFINITY, 0.0);
    for p in &fitted.profile {
        let reference = ai_reml(&reference_kernel(&geno, &train, p.bandwidth), &train, &[], &y);
        // A boundary optimum is where AI-REML and the bounded search part ways; skip those.
        if (reference.sigma2_e / reference.sigma2_g).ln().abs() < 9.0 {
            assert!(
                rel(p.log_likelihood, reference.loglik) < 1e-8,
                "θ {}: {} vs {}",
                p.bandwidth,
                p.log_likelihood,
                reference.loglik
            );
        }
        if reference.loglik > best.0 {
            best = (reference.loglik, p.bandwidth);
        }
    }
    assert_eq!(fitted.bandwidth, best.1, "profile {:?}", fitted.profile);
    assert!(fitted.profile.iter().all(|p| p.log_likelihood <= fitted.reml.log_likelihood));
}

#[test]
fn gradient_matches_finite_differences() {
    let (geno, y_all) = simulate(60, 40, 0.8, 7);
    let (train, test) = split(60);
    let y: Vec<f64> = train.iter().map(|&i| y_all[i]).collect();
    let fitted =
        FittedRkhs::fit(&geno, &train, &y, &RkhsConfig { bandwidths: vec![2.0], ..RkhsConfig::default() }).unwrap();
    let grads = fitted.gradients(&geno, &test).unwrap();
    let m = geno.n_markers();
    let mut checked = 0;
    for (t, &row) in test.iter().enumerate() {
        for j in 0..m {
            // A heterozygous call moved by ±0.01 allele copies (one step of the stored code).
            if geno.code(row, j) != 100 {
                continue;
            }
            let at = |code: u8| {
                let mut codes: Vec<u8> = (0..geno.n_samples()).flat_map(|i| geno.row(i).to_vec()).collect();
                codes[row * m + j] = code;
                let moved = GenotypeMatrix::new(geno.samples().to_vec(), geno.markers().to_vec(), codes).unwrap();
                fitted.predict(&moved, &[row]).unwrap()[0]
            };
            let numeric = ((at(101) - at(99)) / 0.02).abs();
            let analytic = f64::from(grads[t * m + j]);
            assert!(
                (numeric - analytic).abs() <= 1e-4 * (1.0 + numeric),
                "row {row} marker {j}: {numeric} vs {analytic}"
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} heterozygous calls checked");
}

#[test]
fn predicts_held_out_lines_and_saves() {
    let (geno, y_all) = simulate(150, 300, 0.8, 9);
    let train: Vec<usize> = (0..120).collect();
    let test: Vec<usize> = (120..150).collect();
    let y: Vec<f64> = train.iter().map(|&i| y_all[i]).collect();
    let mut model = Rkhs::default();
    assert!(!model.wants_validation());
    let all: Vec<usize> = (0..150).collect();
    let ctx = FitContext { seed: 1, genotyped_rows: &all, observer: &genopred_core::Quiet, shared: None };
    let info = model.fit(&TrainSet { geno: &geno, rows: &train, y: &y }, None, &ctx).unwrap();
    let report: crate::RkhsFitReport = serde_json::from_value(info.details.clone().into()).unwrap();
    assert_eq!(report.profile.len(), 7);
    assert!(report.reml.h2 > 0.2, "{report:?}");
    let pred = model.predict(&geno, &test).unwrap();
    let obs: Vec<f64> = test.iter().map(|&i| y_all[i]).collect();
    let r = genopred_core::metrics::pearson(&obs, &pred);
    assert!(r > 0.4, "held-out r = {r}");
    let saliency = model.saliency(&geno, &test, &SaliencyOptions::default()).unwrap().unwrap();
    assert_eq!(saliency.len(), test.len() * geno.n_markers());
    // Saved and loaded, it predicts identically; a folder without the file, or with a damaged
    // state, is an error.
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let loaded = Rkhs::load(RkhsConfig::default(), dir.path()).unwrap();
    assert_eq!(loaded.predict(&geno, &test).unwrap(), pred);
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("rkhs.json")).unwrap()).unwrap();
    state["alpha"].as_array_mut().unwrap().pop();
    std::fs::write(dir.path().join("rkhs.json"), serde_json::to_vec(&state).unwrap()).unwrap();
    let e = Rkhs::load(RkhsConfig::default(), dir.path()).unwrap_err().to_string();
    assert!(e.contains("rkhs.json") && e.contains("kernel weights"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    assert!(Rkhs::load(RkhsConfig::default(), empty.path()).unwrap_err().to_string().contains("rkhs.json"));
    assert!(Rkhs::default().save(dir.path()).is_err(), "save before fit");
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let (geno, y_all) = simulate(20, 30, 0.5, 4);
    let model = Rkhs::default();
    assert!(model.predict(&geno, &[0]).unwrap_err().to_string().contains("before fit"));
    let few = FittedRkhs::fit(&geno, &[0, 1, 2], &y_all[..3], &RkhsConfig::default());
    assert!(few.unwrap_err().to_string().contains("at least 5"));
    let one = geno.select_markers(&[0]);
    let flat = GenotypeMatrix::new(one.samples().to_vec(), one.markers().to_vec(), vec![100; one.n_samples()]).unwrap();
    let rows: Vec<usize> = (0..20).collect();
    assert!(matches!(
        FittedRkhs::fit(&flat, &rows, &y_all, &RkhsConfig::default()),
        Err(crate::RkhsError::NoVariation)
    ));
    let fitted = FittedRkhs::fit(&geno, &rows, &y_all, &RkhsConfig::default()).unwrap();
    assert!(fitted.predict(&one, &[0]).unwrap_err().to_string().contains("fitted on 30 markers"));
    for (bad, key) in [
        (RkhsConfig { bandwidths: vec![], ..RkhsConfig::default() }, "bandwidths"),
        (RkhsConfig { bandwidths: vec![1.0, -2.0], ..RkhsConfig::default() }, "bandwidths[1]"),
        (RkhsConfig { grid_points: 1, ..RkhsConfig::default() }, "grid_points"),
    ] {
        let e = Rkhs::new(bad.clone()).unwrap_err();
        assert!(matches!(&e, crate::RkhsError::Config(c) if c.key == key), "{e}");
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Rkhs::load(bad, dir.path()), Err(crate::RkhsError::Config(_))), "load checks the config");
    }
}
