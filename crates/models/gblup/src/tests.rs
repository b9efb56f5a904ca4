//! GBLUP against an independent reference: variance components by dense AI-REML (no
//! eigendecomposition), BLUPs by the dense mixed-model equations, on simulated data.

use faer::Mat;
use genopred_core::genotype::GenotypeMatrix;
use genopred_core::{FitContext, Predictor, TrainSet};

use crate::{
    FittedGblup, Gblup, GblupConfig, GenomicOperator, RemlMethod, RemlMethodChoice, marker_effects, relationship,
};
use genopred_core::encoding::dosage::markers_per_block;
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
        let fitted = FittedGblup::fit(&geno, &train, &y, &GblupConfig::default(), 1).unwrap();
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
    let ctx = FitContext { seed: 1, genotyped_rows: &all, observer: &genopred_core::Quiet, shared: None };
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
    let few = FittedGblup::fit(&geno, &[0, 1, 2], &y_all[..3], &GblupConfig::default(), 1);
    assert!(few.unwrap_err().to_string().contains("at least 5"));
    let constant = geno.select_markers(&[0]);
    let flat =
        GenotypeMatrix::new(constant.samples().to_vec(), constant.markers().to_vec(), vec![100; constant.n_samples()])
            .unwrap();
    let rows: Vec<usize> = (0..20).collect();
    assert!(matches!(
        FittedGblup::fit(&flat, &rows, &y_all, &GblupConfig::default(), 1),
        Err(crate::GblupError::NoVariation)
    ));
    let fitted = FittedGblup::fit(&geno, &rows, &y_all, &GblupConfig::default(), 1).unwrap();
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
    assert_eq!(markers_per_block(8000), 1048);
    assert_eq!(markers_per_block(1_000_000), 256);
}

#[test]
fn the_operator_applies_the_relationship_matrix_without_forming_it() {
    use genopred_core::encoding::{DosageEncoder, Scaling};
    use genopred_core::reml::matrix_free::Covariance;
    let (geno, _) = simulate(50, 203, 0.5, 6);
    let rows: Vec<usize> = (0..50).filter(|i| i % 5 != 1).collect();
    let encoder = DosageEncoder::fit(&geno, &rows, Scaling::Centred);
    let scale = 1.7;
    let g = relationship(&encoder, &geno, &rows, scale, 203);
    let x = Mat::from_fn(rows.len(), 3, |i, j| ((i * 3 + j) as f64 * 0.71).cos());
    let want = &g * &x;
    for block in [203, 10, 1] {
        let op = GenomicOperator::new(&encoder, &geno, &rows, scale).with_block(block);
        assert_eq!(op.n(), rows.len());
        let got = op.apply(x.as_ref());
        let worst = (0..rows.len())
            .flat_map(|i| (0..3).map(move |j| (i, j)))
            .map(|(i, j)| (got[(i, j)] - want[(i, j)]).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-12, "block {block}: G x differs by {worst}");
        let mean_diag = (0..rows.len()).map(|i| g[(i, i)]).sum::<f64>() / rows.len() as f64;
        assert!(rel(op.mean_diagonal(), mean_diag) < 1e-12);
    }
}

#[test]
fn matrix_free_reml_agrees_with_the_exact_one() {
    let (geno, y_all) = simulate(400, 800, 0.6, 11);
    let test: Vec<usize> = (0..400).filter(|i| i % 5 == 0).collect();
    let train: Vec<usize> = (0..400).filter(|i| i % 5 != 0).collect();
    let y: Vec<f64> = train.iter().map(|&i| y_all[i]).collect();
    let exact = FittedGblup::fit(&geno, &train, &y, &GblupConfig::default(), 1).unwrap();
    assert_eq!(exact.method, RemlMethod::Individual, "320 lines fit in the default 2 GB");
    let forced = GblupConfig { method: RemlMethodChoice::MatrixFree, ..GblupConfig::default() };
    let auto_small = GblupConfig { exact_memory_gb: 0.0, ..GblupConfig::default() };
    for config in [forced, auto_small] {
        let free = FittedGblup::fit(&geno, &train, &y, &config, 1).unwrap();
        assert_eq!(free.method, RemlMethod::MatrixFree);
        let report = free.matrix_free.unwrap();
        assert_eq!(report.probes, 30);
        assert!(report.evaluations >= 3 && report.iterations > report.evaluations, "{report:?}");
        let (a, b) = (exact.reml.unwrap(), free.reml.unwrap());
        assert!(rel(b.sigma2_g, a.sigma2_g) < 0.1, "σ²g {} vs exact {}", b.sigma2_g, a.sigma2_g);
        assert!(rel(b.sigma2_e, a.sigma2_e) < 0.1, "σ²e {} vs exact {}", b.sigma2_e, a.sigma2_e);
        assert!((b.h2 - a.h2).abs() < 0.05, "h² {} vs exact {}", b.h2, a.h2);
        let (p, q) = (exact.predict(&geno, &test).unwrap(), free.predict(&geno, &test).unwrap());
        let worst = p.iter().zip(&q).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
        let sd = (p.iter().map(|v| v * v).sum::<f64>() / p.len() as f64
            - (p.iter().sum::<f64>() / p.len() as f64).powi(2))
        .sqrt();
        assert!(worst < 0.05 * sd, "predictions differ by up to {worst} (sd of predictions {sd})");
        assert!(genopred_core::metrics::pearson(&p, &q) > 0.999);
    }
    // Same seed, same numbers; another seed draws other probes.
    let again = FittedGblup::fit(&geno, &train, &y, &forced, 1).unwrap();
    let first = FittedGblup::fit(&geno, &train, &y, &forced, 1).unwrap();
    assert_eq!(again.effects, first.effects);
    let other = FittedGblup::fit(&geno, &train, &y, &forced, 2).unwrap();
    assert_ne!(other.reml.unwrap().delta, first.reml.unwrap().delta);
}

#[test]
fn the_method_is_chosen_by_the_exact_working_set_and_can_be_forced() {
    let auto = GblupConfig::default();
    assert_eq!(auto.method_for(7_000, 50_000), RemlMethod::Individual);
    assert_eq!(auto.method_for(8_000, 50_000), RemlMethod::MatrixFree, "36 n² bytes against 2 GB");
    assert_eq!(auto.method_for(50_000, 5_000), RemlMethod::Marker, "fewer markers than lines");
    assert_eq!(auto.method_for(50_000, 9_000), RemlMethod::MatrixFree);
    let big = GblupConfig { exact_memory_gb: 100.0, ..GblupConfig::default() };
    assert_eq!(big.method_for(50_000, 60_000), RemlMethod::Individual);
    let exact = GblupConfig { method: RemlMethodChoice::Exact, ..GblupConfig::default() };
    assert_eq!(exact.method_for(1_000_000, 2_000_000), RemlMethod::Individual);
    assert_eq!(exact.method_for(1_000_000, 20_000), RemlMethod::Marker);
    let free = GblupConfig { method: RemlMethodChoice::MatrixFree, ..GblupConfig::default() };
    assert_eq!(free.method_for(10, 5), RemlMethod::MatrixFree);
    let individual = GblupConfig { method: RemlMethodChoice::Individual, ..GblupConfig::default() };
    assert_eq!(individual.method_for(50_000, 5_000), RemlMethod::Individual);
    let marker: GblupConfig = toml::from_str("method = \"marker\"").unwrap();
    assert_eq!(marker.method_for(100, 60_000), RemlMethod::Marker);
    let parsed: GblupConfig = toml::from_str("method = \"matrix-free\"\nprobes = 12").unwrap();
    assert_eq!((parsed.method, parsed.probes), (RemlMethodChoice::MatrixFree, 12));
    assert!(toml::from_str::<GblupConfig>("method = \"fast\"").is_err());
    let e = Gblup::new(GblupConfig { probes: 1, ..GblupConfig::default() }).unwrap_err();
    assert!(e.to_string().contains("probes"), "{e}");
    let e = Gblup::new(GblupConfig { exact_memory_gb: -1.0, ..GblupConfig::default() }).unwrap_err();
    assert!(e.to_string().contains("exact_memory_gb"), "{e}");
}

#[test]
fn the_marker_form_is_the_individual_form_for_fewer_markers_than_lines() {
    // 150 markers, 240 training lines, a large trait mean (the null space's sums are taken about
    // it), and two identical markers (a zero eigenvalue of ZᵀZ, dropped to the null space).
    let (geno, y_all) = simulate(300, 150, 0.5, 12);
    let mut codes = Vec::new();
    for s in 0..300 {
        codes.extend_from_slice(&geno.row(s));
        codes.push(geno.row(s)[0]);
    }
    let geno = GenotypeMatrix::with_generated_names(300, 151, codes).unwrap();
    let y_all: Vec<f64> = y_all.iter().map(|v| 5000.0 + 10.0 * v).collect();
    let train: Vec<usize> = (0..300).filter(|i| i % 5 != 2).collect();
    let test: Vec<usize> = (0..300).filter(|i| i % 5 == 2).collect();
    let y: Vec<f64> = train.iter().map(|&i| y_all[i]).collect();
    let config = GblupConfig::default();
    let marker = FittedGblup::fit(&geno, &train, &y, &config, 1).unwrap();
    assert_eq!(marker.method, RemlMethod::Marker, "auto picks the marker form");
    let individual = FittedGblup::fit_with(&geno, &train, &y, &config, 1, RemlMethod::Individual).unwrap();
    let (a, b) = (individual.reml.unwrap(), marker.reml.unwrap());
    assert!(!a.at_boundary);
    for (what, x, y) in [
        ("σ²g", a.sigma2_g, b.sigma2_g),
        ("σ²e", a.sigma2_e, b.sigma2_e),
        ("h²", a.h2, b.h2),
        ("log-likelihood", a.log_likelihood, b.log_likelihood),
        ("intercept", individual.intercept, marker.intercept),
    ] {
        assert!(rel(y, x) < 1e-7, "{what}: marker {y} vs individual {x}");
    }
    let (p, q) = (individual.predict(&geno, &test).unwrap(), marker.predict(&geno, &test).unwrap());
    for (p, q) in p.iter().zip(&q) {
        assert!((p - q).abs() < 1e-7 * p.abs(), "prediction {q} vs individual {p}");
    }
    for (j, (x, y)) in individual.effects.iter().zip(&marker.effects).enumerate() {
        assert!(
            (x - y).abs() < 1e-7 * individual.effects.iter().fold(0.0f64, |a, e| a.max(e.abs())),
            "effect {j}: {y} vs {x}"
        );
    }
}

#[test]
fn folds_sharing_one_raw_gram_fit_what_each_fits_alone() {
    use genopred_core::gram::{Shared, SharedWork};
    let (geno, y_all) = simulate(120, 400, 0.6, 21);
    // Missing calls, and a fold whose QC dropped some markers: the shared X Xᵀ is corrected for
    // both.
    let mut codes: Vec<u8> = (0..120).flat_map(|i| geno.row(i).to_vec()).collect();
    for k in (0..codes.len()).step_by(37) {
        codes[k] = genopred_core::genotype::MISSING;
    }
    let geno = GenotypeMatrix::new(geno.samples().to_vec(), geno.markers().to_vec(), codes).unwrap();
    let all: Vec<usize> = (0..120).collect();
    let work = SharedWork::new();
    for (f, kept) in [(0usize, (0..400).collect::<Vec<_>>()), (1, (0..400).filter(|j| j % 11 != 4).collect())] {
        let train: Vec<usize> = all.iter().copied().filter(|i| i % 4 != f).collect();
        let test: Vec<usize> = all.iter().copied().filter(|i| i % 4 == f).collect();
        let y: Vec<f64> = train.iter().map(|&i| y_all[i]).collect();
        let sub = geno.select_markers(&kept);
        let set = TrainSet { geno: &sub, rows: &train, y: &y };
        let fit = |shared| {
            let mut model = Gblup::default();
            let ctx = FitContext { seed: 1, genotyped_rows: &all, observer: &genopred_core::Quiet, shared };
            model.fit(&set, None, &ctx).unwrap();
            let reml = model.fitted().unwrap().reml.unwrap();
            (model.predict(&sub, &test).unwrap(), reml)
        };
        let (alone, reml_alone) = fit(None);
        let (shared, reml_shared) = fit(Some(Shared { geno: &geno, kept: &kept, work: &work }));
        assert!(work.computed(), "fold {f}: the shared X Xᵀ was not used");
        assert!(rel(reml_shared.sigma2_g, reml_alone.sigma2_g) < 1e-8, "fold {f}: {reml_shared:?} vs {reml_alone:?}");
        let sd = (alone.iter().map(|p| p * p).sum::<f64>() / alone.len() as f64).sqrt();
        for (a, b) in alone.iter().zip(&shared) {
            assert!((a - b).abs() < 1e-8 * sd, "fold {f}: {a} alone, {b} shared");
        }
    }
    // A fold that dropped more than a fifth of the markers computes its own G.
    let few: Vec<usize> = (0..300).collect();
    let fresh = SharedWork::new();
    let (sub, train) = (geno.select_markers(&few), (0..90).collect::<Vec<_>>());
    let y: Vec<f64> = train.iter().map(|&i| y_all[i]).collect();
    let ctx = FitContext {
        seed: 1,
        genotyped_rows: &all,
        observer: &genopred_core::Quiet,
        shared: Some(Shared { geno: &geno, kept: &few, work: &fresh }),
    };
    Gblup::default().fit(&TrainSet { geno: &sub, rows: &train, y: &y }, None, &ctx).unwrap();
    assert!(!fresh.computed());
}
