//! BayesB against independent computations: with every marker in and the variances held fixed,
//! the chain's posterior mean is the ridge-regression solution of a dense solve; on data with a
//! few large QTL the chain finds them; the effective sample size against known chains.

use faer::Mat;
use faer::linalg::solvers::Solve;
use genopred_core::genotype::GenotypeMatrix;
use genopred_core::reml::reference::simulate;
use genopred_core::{FitContext, Predictor, TrainSet};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::sampler::Fixed;
use crate::{BayesB, BayesBConfig, FittedBayesB, effective_sample_size};

#[test]
fn with_fixed_variances_and_every_marker_in_the_posterior_mean_is_ridge_regression() {
    let (geno, y_all) = simulate(120, 12, 0.6, 3);
    let rows: Vec<usize> = (0..120).collect();
    let config = BayesBConfig {
        prob_in: 1.0 - 1e-9,
        prob_in_counts: 0.0,
        iterations: 30_000,
        burn_in: 1000,
        thin: 1,
        ..BayesBConfig::default()
    };
    let (s2b, s2e) = (0.02, 0.5);
    let fixed = Fixed { marker_variance: Some(s2b), residual_variance: Some(s2e) };
    let fitted = FittedBayesB::fit_with(&geno, &rows, &y_all, &config, 7, fixed).unwrap();
    assert!(fitted.report.model_size > 0.999, "{:?}", fitted.report);
    // The dense reference on the same standardised trait and centred dosages.
    let (n, m) = (120, 12);
    let x = fitted.encoder.transform(&geno, &rows);
    let y = Mat::from_fn(n, 1, |i, _| (y_all[i] - fitted.y_mean) / fitted.y_sd);
    let lhs = x.transpose() * &x + Mat::<f64>::identity(m, m) * faer::Scale(s2e / s2b);
    let ridge = lhs.partial_piv_lu().solve(x.transpose() * &y);
    for j in 0..m {
        let chain = fitted.effects[j] / fitted.y_sd;
        assert!((chain - ridge[(j, 0)]).abs() < 0.01, "marker {j}: chain {chain} vs ridge {}", ridge[(j, 0)]);
    }
    assert!((fitted.intercept - fitted.y_mean).abs() < 0.02 * fitted.y_sd);
}

/// Genotypes from `simulate` and a trait made of three large QTL plus noise.
fn three_qtl(n: usize, m: usize, seed: u64) -> (GenotypeMatrix, Vec<f64>, [usize; 3]) {
    let (geno, _) = simulate(n, m, 0.5, seed);
    let qtl = [7, 41, 90];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 100);
    let y = (0..n)
        .map(|i| {
            let g: f64 = qtl.iter().zip([1.0, -0.8, 0.6]).map(|(&j, b)| geno.dosage(i, j).unwrap_or(1.0) * b).sum();
            let noise: f64 = StandardNormal.sample(&mut rng);
            5.0 + g + 0.5 * noise
        })
        .collect();
    (geno, y, qtl)
}

#[test]
fn finds_large_qtl_predicts_held_out_lines_repeats_with_its_seed_and_saves() {
    let (geno, y_all, qtl) = three_qtl(200, 150, 11);
    let train: Vec<usize> = (0..160).collect();
    let test: Vec<usize> = (160..200).collect();
    let y: Vec<f64> = train.iter().map(|&i| y_all[i]).collect();
    let config = BayesBConfig { iterations: 3000, burn_in: 500, ..BayesBConfig::default() };
    let mut model = BayesB::new(config.clone()).unwrap();
    assert!(!model.wants_validation());
    let all: Vec<usize> = (0..200).collect();
    let ctx = FitContext { seed: 5, genotyped_rows: &all, observer: &genopred_core::Quiet, shared: None };
    let info = model.fit(&TrainSet { geno: &geno, rows: &train, y: &y }, None, &ctx).unwrap();
    let report: crate::BayesBFitReport = serde_json::from_value(info.details.clone().into()).unwrap();
    assert_eq!(report.samples, 500);
    assert!(report.ess_sigma2_e > 20.0 && report.ess_genetic_variance > 20.0, "{report:?}");
    assert!(report.model_size < 0.5, "sparse: {report:?}");
    let effects = model.marker_effects().unwrap();
    let mut order: Vec<usize> = (0..effects.len()).collect();
    order.sort_by(|&a, &b| effects[b].abs().total_cmp(&effects[a].abs()));
    let mut top = order[..3].to_vec();
    top.sort_unstable();
    assert_eq!(top, qtl, "largest effects: {:?}", &order[..5]);
    let fitted = model.fitted().unwrap();
    assert!(qtl.iter().all(|&j| fitted.inclusion[j] > 0.9), "{:?}", qtl.map(|j| fitted.inclusion[j]));
    assert!((effects[7] - 1.0).abs() < 0.25 && (effects[41] + 0.8).abs() < 0.25, "{:?}", qtl.map(|j| effects[j]));
    let pred = model.predict(&geno, &test).unwrap();
    let obs: Vec<f64> = test.iter().map(|&i| y_all[i]).collect();
    let r = genopred_core::metrics::pearson(&obs, &pred);
    assert!(r > 0.6, "held-out r = {r}");
    // The same seed repeats the chain exactly; another seed draws another chain.
    assert_eq!(FittedBayesB::fit(&geno, &train, &y, &config, 5).unwrap().effects, effects);
    assert_ne!(FittedBayesB::fit(&geno, &train, &y, &config, 6).unwrap().effects, effects);
    // Saved and loaded, it predicts identically; damaged or missing states are errors.
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let loaded = BayesB::load(config.clone(), dir.path()).unwrap();
    assert_eq!(loaded.predict(&geno, &test).unwrap(), pred);
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("bayesb.json")).unwrap()).unwrap();
    state["effects"].as_array_mut().unwrap().pop();
    std::fs::write(dir.path().join("bayesb.json"), serde_json::to_vec(&state).unwrap()).unwrap();
    assert!(BayesB::load(config.clone(), dir.path()).unwrap_err().to_string().contains("effects"));
    let empty = tempfile::tempdir().unwrap();
    assert!(BayesB::load(config, empty.path()).unwrap_err().to_string().contains("bayesb.json"));
}

#[test]
fn effective_sample_size_of_independent_and_correlated_chains() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let iid: Vec<f64> = (0..4000).map(|_| StandardNormal.sample(&mut rng)).collect();
    let ess = effective_sample_size(&iid);
    assert!((ess / 4000.0 - 1.0).abs() < 0.25, "iid: {ess}");
    // AR(1) with φ = 0.9: ESS ≈ N (1 − φ) / (1 + φ) = N / 19.
    let mut ar = vec![0.0f64; 20_000];
    for i in 1..ar.len() {
        let z: f64 = StandardNormal.sample(&mut rng);
        ar[i] = 0.9 * ar[i - 1] + z;
    }
    let ess = effective_sample_size(&ar);
    assert!((ess / (20_000.0 / 19.0) - 1.0).abs() < 0.35, "AR(1): {ess}");
    assert!(effective_sample_size(&[1.0, 1.0, 1.0, 1.0]).is_nan());
    assert!(effective_sample_size(&[1.0, 2.0]).is_nan());
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let (geno, y_all) = simulate(30, 20, 0.5, 4);
    let rows: Vec<usize> = (0..30).collect();
    let config = BayesBConfig { iterations: 200, burn_in: 50, ..BayesBConfig::default() };
    assert!(BayesB::default().predict(&geno, &[0]).unwrap_err().to_string().contains("before fit"));
    let few = FittedBayesB::fit(&geno, &rows[..5], &y_all[..5], &config, 1);
    assert!(few.unwrap_err().to_string().contains("at least 10"));
    let flat = FittedBayesB::fit(&geno, &rows, &[3.0; 30], &config, 1).unwrap_err();
    assert!(flat.to_string().contains("the trait is constant"), "{flat}");
    let fitted = FittedBayesB::fit(&geno, &rows, &y_all, &config, 1).unwrap();
    assert!(fitted.predict(&geno.select_markers(&[0, 1]), &[0]).unwrap_err().to_string().contains("20 markers"));
    for (bad, key) in [
        (BayesBConfig { prob_in: 1.0, ..BayesBConfig::default() }, "prob_in"),
        (BayesBConfig { df_marker: 2.0, ..BayesBConfig::default() }, "df_marker"),
        (BayesBConfig { prior_r2: 0.0, ..BayesBConfig::default() }, "prior_r2"),
        (BayesBConfig { thin: 0, ..BayesBConfig::default() }, "thin"),
        (BayesBConfig { iterations: 1000, burn_in: 990, ..BayesBConfig::default() }, "iterations"),
    ] {
        let e = BayesB::new(bad).unwrap_err();
        assert!(matches!(&e, crate::BayesBError::Config(c) if c.key == key), "{key}: {e}");
    }
}
