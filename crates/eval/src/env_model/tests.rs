use std::path::Path;

use rand::{Rng, SeedableRng};

use super::*;
use crate::cv::schemes::{Scheme, trial_folds};
use crate::predictor::ModelError;
use genopred_data::qc::QcConfig;
use genopred_data::trials::TrialOptions;

/// A kernel model for the tests: ridge regression on centred dosages for single-environment
/// fits, and `Z Zᵀ / m` (centred on the training rows) as its genetic kernel.
#[derive(Default)]
struct Ridge {
    means: Vec<f64>,
    effects: Vec<f64>,
    intercept: f64,
}

/// Each marker's mean dosage over `rows` (missing calls as 0).
fn means(geno: &GenotypeMatrix, rows: &[usize]) -> Vec<f64> {
    (0..geno.n_markers())
        .map(|j| rows.iter().map(|&r| geno.dosage(r, j).unwrap_or(0.0)).sum::<f64>() / rows.len() as f64)
        .collect()
}

/// `rows`' dosages less `means`.
fn centred(geno: &GenotypeMatrix, rows: &[usize], means: &[f64]) -> Mat<f64> {
    Mat::from_fn(rows.len(), geno.n_markers(), |i, j| geno.dosage(rows[i], j).unwrap_or(0.0) - means[j])
}

impl Predictor for Ridge {
    fn name(&self) -> &str {
        "ridge"
    }
    fn wants_validation(&self) -> bool {
        false
    }
    fn fit(
        &mut self,
        train: &TrainSet<'_>,
        _: Option<&TrainSet<'_>>,
        _: &FitContext<'_>,
    ) -> std::result::Result<FitInfo, ModelError> {
        let (m, n) = (train.geno.n_markers(), train.rows.len());
        self.means = means(train.geno, train.rows);
        let z = centred(train.geno, train.rows, &self.means);
        self.intercept = train.y.iter().sum::<f64>() / n as f64;
        let a = z.transpose() * &z + Mat::<f64>::identity(m, m) * faer::Scale(n as f64);
        let b = z.transpose() * Mat::from_fn(n, 1, |i, _| train.y[i] - self.intercept);
        let e = faer::linalg::solvers::Solve::solve(&a.llt(faer::Side::Lower).unwrap(), &b);
        self.effects = (0..m).map(|j| e[(j, 0)]).collect();
        Ok(FitInfo::default())
    }
    fn predict(&self, geno: &GenotypeMatrix, rows: &[usize]) -> std::result::Result<Vec<f64>, ModelError> {
        Ok(rows
            .iter()
            .map(|&r| {
                self.intercept
                    + (0..geno.n_markers())
                        .map(|j| (geno.dosage(r, j).unwrap_or(0.0) - self.means[j]) * self.effects[j])
                        .sum::<f64>()
            })
            .collect())
    }
    fn genetic_kernel(
        &self,
        geno: &GenotypeMatrix,
        train_rows: &[usize],
        rows: &[usize],
    ) -> Option<std::result::Result<Mat<f64>, ModelError>> {
        let z = centred(geno, rows, &means(geno, train_rows));
        Some(Ok(&z * z.transpose() * faer::Scale(1.0 / geno.n_markers() as f64)))
    }
}

/// Ridge without its kernel: across-environment fits go through the two stages.
#[derive(Default)]
struct NoKernel(Ridge);

impl Predictor for NoKernel {
    fn name(&self) -> &str {
        "no-kernel"
    }
    fn wants_validation(&self) -> bool {
        true
    }
    fn fit(
        &mut self,
        train: &TrainSet<'_>,
        _: Option<&TrainSet<'_>>,
        c: &FitContext<'_>,
    ) -> std::result::Result<FitInfo, ModelError> {
        self.0.fit(train, None, c)
    }
    fn predict(&self, geno: &GenotypeMatrix, rows: &[usize]) -> std::result::Result<Vec<f64>, ModelError> {
        self.0.predict(geno, rows)
    }
}

/// Remembers each training row's value and predicts it back (0 for a row it never saw).
#[derive(Default)]
struct Lookup(std::collections::HashMap<usize, f64>);

impl Predictor for Lookup {
    fn name(&self) -> &str {
        "lookup"
    }
    fn wants_validation(&self) -> bool {
        false
    }
    fn fit(
        &mut self,
        train: &TrainSet<'_>,
        _: Option<&TrainSet<'_>>,
        _: &FitContext<'_>,
    ) -> std::result::Result<FitInfo, ModelError> {
        self.0 = train.rows.iter().copied().zip(train.y.iter().copied()).collect();
        Ok(FitInfo::default())
    }
    fn predict(&self, _: &GenotypeMatrix, rows: &[usize]) -> std::result::Result<Vec<f64>, ModelError> {
        Ok(rows.iter().map(|r| self.0.get(r).copied().unwrap_or(0.0)).collect())
    }
}

/// No kernel: only single-environment fits.
struct Mean(f64);

impl Predictor for Mean {
    fn name(&self) -> &str {
        "mean"
    }
    fn fit(
        &mut self,
        train: &TrainSet<'_>,
        _: Option<&TrainSet<'_>>,
        _: &FitContext<'_>,
    ) -> std::result::Result<FitInfo, ModelError> {
        self.0 = train.y.iter().sum::<f64>() / train.y.len() as f64;
        Ok(FitInfo::default())
    }
    fn predict(&self, _: &GenotypeMatrix, rows: &[usize]) -> std::result::Result<Vec<f64>, ModelError> {
        Ok(vec![self.0; rows.len()])
    }
}

/// `lines` lines × 40 markers; a long table over 3 environments with about 15 % of the cells
/// missing, a block factor and a genetic signal with an interaction. Genotype rows are in line
/// order, with two genotyped lines that have no record.
fn trial(lines: usize, seed: u64) -> (GenotypeMatrix, Trials, Vec<usize>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let m = 40;
    let codes: Vec<u8> = (0..(lines + 2) * m).map(|_| rng.random_range(0..3u8) * 100).collect();
    let geno = GenotypeMatrix::with_generated_names(lines + 2, m, codes.clone()).unwrap();
    let effects: Vec<[f64; 3]> = (0..m).map(|_| std::array::from_fn(|_| rng.random_range(-0.5..0.5))).collect();
    let mut text = String::from("id,env,block,yield\n");
    for l in 0..lines {
        for (e, env) in ["E1", "E2", "E3"].iter().enumerate() {
            if rng.random_bool(0.15) {
                continue;
            }
            let g: f64 =
                (0..m).map(|j| f64::from(codes[l * m + j] / 100) * (effects[j][0] + 0.5 * effects[j][e])).sum();
            let block = if rng.random_bool(0.5) { "B1" } else { "B2" };
            let y = 5.0 * e as f64 + g + rng.random_range(-1.0..1.0);
            text.push_str(&format!("{},{env},{block},{y}\n", geno.samples()[l]));
        }
    }
    let options = |fixed: Vec<String>| TrialOptions {
        id_column: None,
        env_column: "env".into(),
        trait_name: "yield".into(),
        fixed,
        missing: vec![],
    };
    let trials = Trials::from_reader(text.as_bytes(), b',', Path::new("trial.csv"), &options(vec![])).unwrap();
    let rows = trials.records().iter().map(|r| geno.samples().iter().position(|s| *s == r.line).unwrap()).collect();
    (geno, trials, rows)
}

fn options() -> CvOptions {
    CvOptions { qc: QcConfig { min_maf: 0.0, ..QcConfig::default() }, ..CvOptions::default() }
}

fn with_values(trials: &Trials, values: impl Fn(usize, f64) -> f64) -> Trials {
    let mut text = String::from("id,env,yield\n");
    for (r, rec) in trials.records().iter().enumerate() {
        text.push_str(&format!("{},{},{}\n", rec.line, trials.envs()[rec.env], values(r, rec.value)));
    }
    let options = TrialOptions { env_column: "env".into(), trait_name: "yield".into(), ..TrialOptions::default() };
    Trials::from_reader(text.as_bytes(), b',', Path::new("trial.csv"), &options).unwrap()
}

#[test]
fn the_test_records_phenotypes_never_reach_a_prediction_under_any_scheme_or_environment_model() {
    let (geno, trials, rows) = trial(40, 1);
    for scheme in [Scheme::Cv1, Scheme::Cv2, Scheme::Cv0, Scheme::Cv00] {
        let folds = trial_folds(&trials, scheme, 4, 1, 9).unwrap();
        for model in [EnvModel::Single, EnvModel::Across, EnvModel::Gxe, EnvModel::GxeHet, EnvModel::GxeUs] {
            if matches!(model, EnvModel::Single | EnvModel::GxeUs) && matches!(scheme, Scheme::Cv0 | Scheme::Cv00) {
                continue; // refused: tested below
            }
            for fold in folds.iter().take(2) {
                let run = |t: &Trials| {
                    run_trial_fold(t, &geno, &rows, fold, &mut Ridge::default(), model, &options(), &crate::Quiet)
                        .unwrap()
                };
                let first = run(&trials);
                if model == EnvModel::Across {
                    // The two stages of a model without a kernel keep the test records out too.
                    let two = |t: &Trials| {
                        run_trial_fold(
                            t,
                            &geno,
                            &rows,
                            fold,
                            &mut NoKernel::default(),
                            model,
                            &options(),
                            &crate::Quiet,
                        )
                        .unwrap()
                    };
                    let changed =
                        with_values(&trials, |r, v| if fold.test.contains(&r) { -1000.0 + r as f64 } else { v });
                    let (a, b) = (two(&trials), two(&changed));
                    assert_eq!(a.fit["form"], "two-stage");
                    let bits =
                        |f: &TrialFoldResult| f.predictions.iter().map(|p| p.predicted.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&a), bits(&b), "{scheme:?} two-stage fold {}", fold.label);
                }
                let changed = with_values(&trials, |r, v| if fold.test.contains(&r) { -1000.0 + r as f64 } else { v });
                let second = run(&changed);
                let p = |f: &TrialFoldResult| f.predictions.iter().map(|p| p.predicted.to_bits()).collect::<Vec<_>>();
                assert_eq!(p(&first), p(&second), "{scheme:?} {model} fold {}", fold.label);
                // ... and the training records' do.
                let trained = with_values(&trials, |r, v| if fold.train.contains(&r) { v + (r % 7) as f64 } else { v });
                assert_ne!(p(&first), p(&run(&trained)), "{scheme:?} {model}: the training values must matter");
            }
        }
    }
}

#[test]
fn a_fold_reports_predictions_per_record_and_accuracy_within_each_environment() {
    let (geno, trials, rows) = trial(60, 2);
    let folds = trial_folds(&trials, Scheme::Cv2, 5, 1, 3).unwrap();
    let fold = &folds[0];
    let r =
        run_trial_fold(&trials, &geno, &rows, fold, &mut Ridge::default(), EnvModel::Gxe, &options(), &crate::Quiet)
            .unwrap();
    assert_eq!(r.predictions.len(), fold.test.len());
    assert_eq!(r.environments.iter().map(|e| e.n_test).sum::<usize>(), fold.test.len());
    assert!(r.environments.iter().all(|e| e.env.starts_with('E')));
    let mean_r = r.environments.iter().map(|e| e.metrics.pearson).sum::<f64>() / r.environments.len() as f64;
    assert!((r.within_env_pearson - mean_r).abs() < 1e-12);
    // The environments' means are fixed effects: pooled r is inflated by them, within is not.
    assert!(r.pooled.pearson > r.within_env_pearson, "{} vs {}", r.pooled.pearson, r.within_env_pearson);
    let names: Vec<&str> =
        r.fit["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["g", "ge", "residual"]);
    let het =
        run_trial_fold(&trials, &geno, &rows, fold, &mut Ridge::default(), EnvModel::GxeHet, &options(), &crate::Quiet)
            .unwrap();
    let names: Vec<&str> =
        het.fit["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["g", "ge:E1", "ge:E2", "ge:E3", "residual"]);
    assert_eq!(het.fit["env_model"], "gxe-het");
    let us =
        run_trial_fold(&trials, &geno, &rows, fold, &mut Ridge::default(), EnvModel::GxeUs, &options(), &crate::Quiet)
            .unwrap();
    let names: Vec<&str> =
        us.fit["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["g:E1", "g:E1,E2", "g:E1,E3", "g:E2", "g:E2,E3", "g:E3", "residual"]);
    // A record of the fold reads back from its JSON as written.
    let json = serde_json::to_string(&r).unwrap();
    let back: TrialFoldResult = serde_json::from_str(&json).unwrap();
    assert_eq!(back.predictions, r.predictions);
}

#[test]
fn a_new_environment_is_predicted_from_the_mean_of_the_trained_ones_and_single_fits_refuse_it() {
    let (geno, trials, rows) = trial(40, 3);
    let folds = trial_folds(&trials, Scheme::Cv0, 0, 1, 3).unwrap();
    let fold = folds.iter().find(|f| f.label.contains("E3")).unwrap();
    let design = record_design(&trials, &fold.train, &fold.test).unwrap();
    assert_eq!(design.names, ["env=E1", "env=E2"]);
    assert!((0..design.test.nrows()).all(|i| design.test[(i, 0)] == 0.5 && design.test[(i, 1)] == 0.5));
    let err =
        run_trial_fold(&trials, &geno, &rows, fold, &mut Ridge::default(), EnvModel::Single, &options(), &crate::Quiet)
            .unwrap_err()
            .to_string();
    assert!(
        err.contains("environment 'E3' has 0 training record(s)") && err.contains("--env-model across or gxe"),
        "{err}"
    );
    let err =
        run_trial_fold(&trials, &geno, &rows, fold, &mut Ridge::default(), EnvModel::GxeUs, &options(), &crate::Quiet)
            .unwrap_err()
            .to_string();
    assert!(err.contains("environment 'E3' has no training records") && err.contains("never saw"), "{err}");
    let err = run_trial_fold(&trials, &geno, &rows, fold, &mut Mean(0.0), EnvModel::Gxe, &options(), &crate::Quiet)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model mean has neither a genetic kernel nor an output per environment"), "{err}");
}

#[test]
fn the_design_drops_what_the_training_records_cannot_tell_apart_and_refuses_untrained_levels() {
    // `site` is nested in the environments: with S2, S3 adds nothing to E2, nor rain to the three.
    let text = "id,env,site,rain,yield\na,E1,S1,1.5,1\nb,E1,S1,1.5,2\na,E2,S2,3.0,3\nb,E2,S2,3.0,4\nc,E2,S3,2.0,5\n";
    let options = TrialOptions {
        env_column: "env".into(),
        trait_name: "yield".into(),
        fixed: vec!["site".into(), "rain".into()],
        ..TrialOptions::default()
    };
    let t = Trials::from_reader(text.as_bytes(), b',', Path::new("t.csv"), &options).unwrap();
    let d = record_design(&t, &[0, 1, 2, 3, 4], &[]).unwrap();
    assert_eq!(d.names, ["env=E1", "env=E2", "site=S2"]);
    let err = record_design(&t, &[0, 1, 2, 3], &[4]).unwrap_err().to_string();
    assert!(
        err.contains("t.csv: site 'S3' is in the test records (line 'c' first) but in no training record"),
        "{err}"
    );
}

#[test]
fn the_two_stages_separate_environment_and_line_effects_exactly_in_an_unbalanced_trial() {
    // y = environment effect + line effect, no noise, about 15 % of the cells missing: the
    // first stage recovers both, so a model that returns each training line's effect predicts
    // every CV2 test record of a trained line exactly.
    let (geno, trials, rows) = trial(40, 4);
    let env_effect = [3.0, -1.0, 7.5];
    let line_effect = |r: usize| (rows[r] as f64 * 0.37).sin() * 4.0;
    let exact = with_values(&trials, |r, _| env_effect[trials.records()[r].env] + line_effect(r));
    let folds = trial_folds(&exact, Scheme::Cv2, 4, 1, 8).unwrap();
    let mut checked = 0;
    for fold in &folds {
        let trained: std::collections::HashSet<usize> = fold.train.iter().map(|&r| rows[r]).collect();
        let result = run_trial_fold(
            &exact,
            &geno,
            &rows,
            fold,
            &mut Lookup::default(),
            EnvModel::Across,
            &options(),
            &crate::Quiet,
        )
        .unwrap();
        for (p, &r) in result.predictions.iter().zip(&fold.test) {
            if trained.contains(&rows[r]) {
                assert!((p.predicted - p.observed).abs() < 1e-9, "{p:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "{checked} records checked");
}

/// A record model for the tests: each output's mean of the values it trained on, plus nothing
/// from the covariates; it keeps what it was given.
#[derive(Default)]
struct OutputMeans {
    means: Vec<f64>,
    fit_rows: Vec<usize>,
    valid_rows: Vec<usize>,
    covariates: usize,
}

impl Predictor for OutputMeans {
    fn name(&self) -> &str {
        "output-means"
    }
    fn fit(&mut self, _: &TrainSet<'_>, _: Option<&TrainSet<'_>>, _: &FitContext<'_>) -> Result<FitInfo, ModelError> {
        Err("lines only".into())
    }
    fn predict(&self, _: &GenotypeMatrix, _: &[usize]) -> Result<Vec<f64>, ModelError> {
        Err("lines only".into())
    }
    fn fits_records(&self) -> bool {
        true
    }
    fn fit_records(
        &mut self,
        train: &RecordSet<'_>,
        valid: Option<&RecordSet<'_>>,
        _: &FitContext<'_>,
    ) -> Result<FitInfo, ModelError> {
        train.check()?;
        let k = train.outputs;
        let (mut sum, mut count) = (vec![0.0; k], vec![0.0; k]);
        for (i, y) in train.y.iter().enumerate() {
            for j in 0..k {
                sum[j] += train.weights[i * k + j] * y;
                count[j] += train.weights[i * k + j];
            }
        }
        self.means = sum.iter().zip(&count).map(|(s, c)| s / c).collect();
        self.fit_rows = train.rows.to_vec();
        self.valid_rows = valid.map(|v| v.rows.to_vec()).unwrap_or_default();
        self.covariates = train.n_covariates;
        Ok(FitInfo::default())
    }
    fn predict_records(&self, set: &RecordSet<'_>) -> Result<Vec<f64>, ModelError> {
        set.check()?;
        let k = set.outputs;
        Ok((0..set.rows.len()).map(|i| (0..k).map(|j| set.weights[i * k + j] * self.means[j]).sum()).collect())
    }
}

#[test]
fn a_network_gxe_fit_takes_the_fixed_effects_off_gives_each_environment_an_output_and_validates_on_unseen_lines() {
    let (geno, trials, rows) = trial(60, 4);
    let records = trials.records();
    let folds = trial_folds(&trials, Scheme::Cv2, 3, 1, 2).unwrap();
    let fold = &folds[0];
    let mut model = OutputMeans::default();
    let r = run_trial_fold(&trials, &geno, &rows, fold, &mut model, EnvModel::Gxe, &options(), &crate::Quiet).unwrap();
    assert_eq!(r.fit["outputs"], 3);
    assert_eq!(r.fit["form"], "network outputs per environment");
    // The environments in the head; the model sees the least-squares residuals, whose mean per
    // environment over all training records is zero (the environment columns are in the design),
    // so near zero over those it fits (the environments' means are 0, 5 and 10).
    assert_eq!(model.covariates, 3, "{}", r.fit);
    assert!(model.means.iter().all(|m| m.abs() < 1.0), "{:?}", model.means);
    // Validation by lines: no validation line has a record in the fitting set, and about a tenth
    // of the training lines are held out.
    let fit: std::collections::HashSet<usize> = model.fit_rows.iter().copied().collect();
    assert!(!model.valid_rows.is_empty() && model.valid_rows.iter().all(|r| !fit.contains(r)));
    let mut held = model.valid_rows.clone();
    held.sort_unstable();
    held.dedup();
    assert!((4..=8).contains(&held.len()), "{} validation lines", held.len());
    // Each test record's prediction is its environment's fitted mean plus its output's mean:
    // with 5-unit steps between environments, each environment's predictions sit at its own level.
    for e in 0..3 {
        let p: Vec<f64> = (0..fold.test.len())
            .filter(|&i| records[fold.test[i]].env == e)
            .map(|i| r.predictions[i].predicted)
            .collect();
        let level = p.iter().sum::<f64>() / p.len() as f64;
        let observed = fold.train.iter().filter(|&&t| records[t].env == e).map(|&t| records[t].value);
        let n = fold.train.iter().filter(|&&t| records[t].env == e).count() as f64;
        let mean = observed.sum::<f64>() / n;
        assert!((level - mean).abs() < 0.5, "environment {e}: predictions at {level}, training mean {mean}");
    }
    // A new environment reads the mean of the trained environments' outputs.
    let cv0 = trial_folds(&trials, Scheme::Cv0, 0, 1, 3).unwrap();
    let new = cv0.iter().find(|f| f.label.contains("E3")).unwrap();
    let mut model = OutputMeans::default();
    let r = run_trial_fold(&trials, &geno, &rows, new, &mut model, EnvModel::Gxe, &options(), &crate::Quiet).unwrap();
    assert_eq!(r.fit["outputs"], 2);
    let wanted = (model.means[0] + model.means[1]) / 2.0;
    let fixed: Vec<f64> = r.fit["fixed"].as_array().unwrap().iter().map(|f| f[1].as_f64().unwrap()).collect();
    assert_eq!(fixed.len(), 2);
    let want = (fixed[0] + fixed[1]) / 2.0 + wanted;
    for p in &r.predictions {
        assert!((p.predicted - want).abs() < 1e-9, "{} vs {want}", p.predicted);
    }
    // The test records' values reach nothing: rotating them changes no prediction.
    let test: std::collections::HashSet<usize> = fold.test.iter().copied().collect();
    let rotated = with_values(&trials, |r, v| if test.contains(&r) { v * -3.0 + 7.0 } else { v });
    let run = |t: &Trials| {
        run_trial_fold(t, &geno, &rows, fold, &mut OutputMeans::default(), EnvModel::Gxe, &options(), &crate::Quiet)
            .unwrap()
    };
    let (base, again) = (run(&trials), run(&rotated));
    for (a, b) in base.predictions.iter().zip(&again.predictions) {
        assert_eq!(a.predicted.to_bits(), b.predicted.to_bits());
    }
}

/// Six environments whose interaction with the lines follows a covariate `w_e`: `y = 2e + g_l +
/// w_e h_l + e`, with `g` and `h` independent genetic effects. Returns the trial with and
/// without the covariates, the genotypes and the records' rows.
fn reaction_trial(lines: usize) -> (GenotypeMatrix, Trials, Trials, Vec<usize>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let m = 60;
    let codes: Vec<u8> = (0..lines * m).map(|_| rng.random_range(0..3u8) * 100).collect();
    let geno = GenotypeMatrix::with_generated_names(lines, m, codes.clone()).unwrap();
    let (a, b): (Vec<f64>, Vec<f64>) =
        (0..m).map(|_| (rng.random_range(-0.3..0.3), rng.random_range(-0.3..0.3))).unzip();
    let value = |l: usize, effects: &[f64]| (0..m).map(|j| f64::from(codes[l * m + j] / 100) * effects[j]).sum::<f64>();
    let w = [-1.5, -0.8, -0.2, 0.4, 1.0, 1.6];
    let mut text = String::from("id,env,yield\n");
    for l in 0..lines {
        for (e, we) in w.iter().enumerate() {
            if rng.random_bool(0.1) {
                continue;
            }
            let y = 2.0 * e as f64 + value(l, &a) + we * value(l, &b) + rng.random_range(-0.5..0.5);
            text.push_str(&format!("{},E{e},{y}\n", geno.samples()[l]));
        }
    }
    let options = TrialOptions { env_column: "env".into(), trait_name: "yield".into(), ..TrialOptions::default() };
    let plain = Trials::from_reader(text.as_bytes(), b',', Path::new("trial.csv"), &options).unwrap();
    let mut table = String::from("env,w,constant\n");
    w.iter().enumerate().for_each(|(e, we)| table.push_str(&format!("E{e},{we},1\n")));
    let covariates =
        genopred_data::trials::EnvCovariates::from_reader(table.as_bytes(), b',', Path::new("w.csv"), "env").unwrap();
    let with = plain.clone().with_env_covariates(&covariates).unwrap();
    let rows = plain.records().iter().map(|r| geno.samples().iter().position(|s| *s == r.line).unwrap()).collect();
    (geno, plain, with, rows)
}

#[test]
fn environmental_covariates_let_gxe_rank_the_lines_of_an_environment_it_never_saw() {
    let (geno, plain, with, rows) = reaction_trial(150);
    let folds = trial_folds(&plain, Scheme::Cv0, 0, 1, 3).unwrap();
    let run = |t: &Trials, label: &str| {
        let fold = folds.iter().find(|f| f.label.contains(label)).unwrap();
        run_trial_fold(t, &geno, &rows, fold, &mut Ridge::default(), EnvModel::Gxe, &options(), &crate::Quiet).unwrap()
    };
    // The environments at the ends of the covariate's range, where the reaction norm matters most.
    for label in ["E0", "E5"] {
        let (without, with_w) = (run(&plain, label), run(&with, label));
        let names: Vec<&str> =
            with_w.fit["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["g", "gw", "ge", "residual"]);
        let gw = with_w.fit["components"][1]["sigma2"].as_f64().unwrap();
        assert!(gw > 0.0, "{}", with_w.fit);
        assert!(
            with_w.within_env_pearson > without.within_env_pearson + 0.1,
            "{label}: r {} with the covariates, {} without",
            with_w.within_env_pearson,
            without.within_env_pearson
        );
    }
    // Forms that do not use them say so.
    let fold = &folds[0];
    let err =
        run_trial_fold(&with, &geno, &rows, fold, &mut Ridge::default(), EnvModel::Across, &options(), &crate::Quiet)
            .unwrap_err()
            .to_string();
    assert!(err.contains("--env-model across does not use environmental covariates (w, constant)"), "{err}");
    // A record model gets them in its head, after the design's columns.
    let mut model = OutputMeans::default();
    run_trial_fold(&with, &geno, &rows, &folds[1], &mut model, EnvModel::Gxe, &options(), &crate::Quiet).unwrap();
    assert_eq!(model.covariates, 5 + 2, "five trained environments and two covariates");
}

#[test]
fn the_fitted_state_predicts_a_new_line_in_each_environment_as_the_fold_did() {
    // Under CV1 every test record's line is new; the state, given the kernel between the new
    // lines and the training lines, must give the fold's predictions for every form.
    let (geno, trials, rows) = trial(40, 6);
    let records = trials.records();
    let folds = trial_folds(&trials, Scheme::Cv1, 4, 1, 3).unwrap();
    let fold = &folds[1];
    let lines = lines_of(&[fold.train.as_slice(), &fold.test].concat(), &rows);
    let train_lines = lines_of(&fold.train, &rows);
    let kernel = Ridge::default().genetic_kernel(&geno, &train_lines, &lines).unwrap().unwrap();
    let position: Vec<usize> = (0..records.len()).map(|r| lines.binary_search(&rows[r]).unwrap()).collect();
    for form in [EnvModel::Across, EnvModel::Gxe, EnvModel::GxeHet, EnvModel::GxeUs] {
        let (predicted, _, state) =
            fit_kernel_env(form, &trials, &kernel, &position, &fold.train, &fold.test, &MultiRemlConfig::default())
                .unwrap();
        for (i, &r) in fold.test.iter().enumerate() {
            let p = state.predict(records[r].env, |l| kernel[(position[r], l)]);
            assert!((p - predicted[i]).abs() < 1e-8 * predicted[i].abs().max(1.0), "{form}: {p} vs {}", predicted[i]);
        }
    }
    // A new environment, reached through the environmental covariates' reaction norm.
    let (geno, _, with, rows) = reaction_trial(80);
    let records = with.records();
    let folds = trial_folds(&with, Scheme::Cv00, 3, 1, 3).unwrap();
    let fold = &folds[0];
    let lines: Vec<usize> = (0..geno.n_samples()).collect();
    let train_lines = lines_of(&fold.train, &rows);
    let kernel = Ridge::default().genetic_kernel(&geno, &train_lines, &lines).unwrap().unwrap();
    let (predicted, report, state) =
        fit_kernel_env(EnvModel::Gxe, &with, &kernel, &rows, &fold.train, &fold.test, &MultiRemlConfig::default())
            .unwrap();
    assert_eq!(report.components[1].name, "gw");
    for (i, &r) in fold.test.iter().enumerate() {
        let p = state.predict(records[r].env, |l| kernel[(rows[r], l)]);
        assert!((p - predicted[i]).abs() < 1e-8 * predicted[i].abs().max(1.0), "gw: {p} vs {}", predicted[i]);
    }
}

#[test]
fn a_saved_reaction_norm_places_an_environment_outside_its_trial_as_cv0_predicts_it() {
    // The trial without E5, fitted; E5 added by its covariates afterwards — against the CV0
    // fold of the whole trial that leaves E5 out.
    let (geno, _, with, rows) = reaction_trial(80);
    let records = with.records();
    let e5 = with.envs().iter().position(|e| e == "E5").unwrap();
    let folds = trial_folds(&with, Scheme::Cv0, 0, 1, 3).unwrap();
    let fold = folds.iter().find(|f| f.label.contains("E5")).unwrap();
    let lines: Vec<usize> = (0..geno.n_samples()).collect();
    let train_lines = lines_of(&fold.train, &rows);
    let kernel = Ridge::default().genetic_kernel(&geno, &train_lines, &lines).unwrap().unwrap();
    let config = MultiRemlConfig::default();
    let (predicted, _, _) =
        fit_kernel_env(EnvModel::Gxe, &with, &kernel, &rows, &fold.train, &fold.test, &config).unwrap();
    let without = with.retain(|r| r.env != e5);
    let kept: Vec<usize> = (0..records.len()).filter(|&r| records[r].env != e5).collect();
    let rows_without: Vec<usize> = kept.iter().map(|&r| rows[r]).collect();
    let all: Vec<usize> = (0..kept.len()).collect();
    let (_, _, mut state) =
        fit_kernel_env(EnvModel::Gxe, &without, &kernel, &rows_without, &all, &[], &config).unwrap();
    let row = with.env_covariates().unwrap().1[e5].clone();
    let new = state.add_env("E5", &row).unwrap();
    for (i, &r) in fold.test.iter().enumerate() {
        let p = state.predict(new, |l| kernel[(rows[r], l)]);
        assert!((p - predicted[i]).abs() < 1e-6 * predicted[i].abs().max(1.0), "{p} vs CV0's {}", predicted[i]);
    }
    // Refusals: a known environment, a wrong number of covariates, a model without a reaction norm.
    assert!(state.add_env("E0", &row).unwrap_err().to_string().contains("already one of the model's"));
    assert!(
        state
            .add_env("E9", &row[..1])
            .unwrap_err()
            .to_string()
            .contains("has 1 covariates; the model was trained with 2")
    );
    let (_, _, mut across) =
        fit_kernel_env(EnvModel::Across, &without, &kernel, &rows_without, &all, &[], &config).unwrap();
    assert!(across.add_env("E5", &row).unwrap_err().to_string().contains("has no reaction norm"));
}
