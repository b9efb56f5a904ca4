//! GBLUP against an independent reference: variance components by dense AI-REML (no
//! eigendecomposition), BLUPs by the dense mixed-model equations, on simulated data.

use faer::Mat;
use genopred_core::genotype::GenotypeMatrix;
use genopred_core::{FitContext, Predictor, TrainSet};

use crate::{FittedGblup, Gblup, GblupConfig, block_markers, marker_effects, relationship};
use genopred_core::reml::reference::{ai_reml, rel, simulate};

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

#[test]
fn blocks_of_markers_give_the_relationship_and_effects_of_the_whole_matrix() {
    use genopred_core::encoding::{DosageEncoder, Scaling};
    let (geno, _) = simulate(60, 305, 0.5, 5);
    let rows: Vec<usize> = (0..60).filter(|i| i % 4 != 0).collect();
    let encoder = DosageEncoder::fit(&geno, &rows, Scaling::Centred);
    let scale = 2.3;
    let whole = relationship(&encoder, &geno, &rows, scale, 305);
    // Against plain loops over the whole matrix, and the same with blocks of 7 (the last one
    // holds 305 mod 7 = 4 markers) and of 1.
    let z = encoder.transform(&geno, &rows);
    for a in 0..rows.len() {
        for b in 0..rows.len() {
            let plain = (0..305).map(|j| z[(a, j)] * z[(b, j)]).sum::<f64>() / scale;
            assert!(rel(whole[(a, b)], plain) < 1e-12, "G[{a},{b}] {} vs {plain}", whole[(a, b)]);
        }
    }
    let alpha: Vec<f64> = (0..rows.len()).map(|i| (i as f64 * 0.37).sin()).collect();
    let effects = marker_effects(&encoder, &geno, &rows, &alpha, scale, 305);
    for block in [7, 1] {
        let blocked = relationship(&encoder, &geno, &rows, scale, block);
        let worst = (0..rows.len())
            .flat_map(|a| (0..rows.len()).map(move |b| (a, b)))
            .map(|(a, b)| (blocked[(a, b)] - whole[(a, b)]).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-12, "block {block}: G differs by {worst}");
        let blocked = marker_effects(&encoder, &geno, &rows, &alpha, scale, block);
        assert_eq!(blocked.len(), 305);
        for (j, (b, w)) in blocked.iter().zip(&effects).enumerate() {
            assert!((b - w).abs() < 1e-12 * w.abs().max(1.0), "block {block}, marker {j}: {b} vs {w}");
        }
    }
    assert_eq!(block_markers(8000), 1048);
    assert_eq!(block_markers(1_000_000), 256);
}
