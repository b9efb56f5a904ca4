//! The cross-validation runner shared by every model: per fold, QC fitted on the training rows,
//! an optional validation subset carved from them, fit, one prediction of the test rows, metrics.

use std::time::Instant;

use crate::cv::{Fold, Purpose, derive_seed, validation_split};
use crate::predictor::{EpochRecord, FitContext, FitInfo, FitObserver, Predictor, TrainSet};
use genopred_data::dataset::Dataset;
use genopred_data::error::{CoreError, Result};
use genopred_data::genotype::GenotypeMatrix;
use genopred_data::qc::{MarkerQc, QcConfig, QcReport};
use genopred_stats::metrics::{MetricSummaries, Metrics};

/// Settings of a cross-validation run that do not depend on the model.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CvOptions {
    /// Marker QC thresholds, fitted per training fold.
    pub qc: QcConfig,
    /// Fraction of each training fold held out for early stopping (default 0.1).
    pub valid_fraction: f64,
    /// NDCG's k as a fraction of the test fold (default 0.1).
    pub ndcg_top: f64,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for CvOptions {
    fn default() -> Self {
        CvOptions { qc: QcConfig::default(), valid_fraction: 0.1, ndcg_top: 0.1, seed: 42 }
    }
}

/// One test prediction.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Prediction {
    /// Sample id.
    pub id: String,
    /// Fold number.
    pub fold: usize,
    /// Observed trait value.
    pub observed: f64,
    /// Predicted trait value.
    pub predicted: f64,
    /// Repeat number.
    pub repeat: usize,
}

/// The outcome of one fold.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FoldResult {
    /// Repeat number, 1-based.
    pub repeat: usize,
    /// Fold number, 1-based.
    pub fold: usize,
    /// The fold's label (number, file label or group).
    pub label: String,
    /// Samples the model was fitted on.
    pub n_train: usize,
    /// Samples held out from training for early stopping.
    pub n_valid: usize,
    /// Samples predicted.
    pub n_test: usize,
    /// Markers kept by this fold's QC.
    pub n_markers: usize,
    /// Their indices in the dataset's genotype matrix (what `predict` and `saliency` see).
    #[serde(skip)]
    pub kept: Vec<usize>,
    /// Pearson r, Spearman rho, MSE, MAE, R², NDCG (flattened into the fold's record).
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Wall time of QC, fit and prediction.
    pub seconds: f64,
    /// This fold's QC counts.
    pub qc: QcReport,
    /// What the model reported about its fit.
    pub fit: FitInfo,
    /// The test predictions.
    #[serde(skip)]
    pub predictions: Vec<Prediction>,
    /// Per-epoch training history (neural models), written to its own CSV.
    #[serde(skip)]
    pub history: Vec<EpochRecord>,
    /// The nested search that chose this fold's settings (`--tune`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<crate::tuning::TuningRecord>,
}

/// Runs one fold: QC fitted on its training rows, the fit (with a validation subset carved from
/// them for models that want one), one prediction of its test rows, metrics. `observer` follows
/// the fit's epochs.
pub fn run_fold(
    dataset: &Dataset,
    fold: &Fold,
    model: &mut dyn Predictor,
    options: &CvOptions,
    observer: &dyn FitObserver,
) -> Result<FoldResult> {
    run_fold_sharing(dataset, fold, model, options, observer, None)
}

/// [`run_fold`] for a runner that fits several folds of `dataset` in this process: the fit may
/// share `work` with the others (GBLUP's `X Xᵀ` of every line, [`genopred_stats::gram`]). The results
/// equal [`run_fold`]'s to rounding.
pub fn run_fold_sharing(
    dataset: &Dataset,
    fold: &Fold,
    model: &mut dyn Predictor,
    options: &CvOptions,
    observer: &dyn FitObserver,
    work: Option<&genopred_stats::gram::SharedWork>,
) -> Result<FoldResult> {
    let started = Instant::now();
    let name = model.name().to_string();
    let model_err = |source: crate::predictor::ModelError| CoreError::Model {
        model: name.clone(),
        during: format!("fold {} (repeat {})", fold.label, fold.repeat),
        source,
    };
    let (fit_rows, valid_rows) = if model.wants_validation() {
        validation_split(
            &fold.train,
            options.valid_fraction,
            derive_seed(options.seed, Purpose::Validation, &[fold.repeat as u64, fold.index as u64]),
        )?
    } else {
        (fold.train.clone(), Vec::new())
    };
    // QC sees the whole training fold (fit + validation rows), never the test rows.
    let qc = MarkerQc::fit(&dataset.geno, &fold.train, &options.qc)?;
    let geno = kept_markers(&dataset.geno, &qc.kept);
    let pick = |rows: &[usize]| rows.iter().map(|&r| dataset.y[r]).collect::<Vec<f64>>();
    let (y_fit, y_valid) = (pick(&fit_rows), pick(&valid_rows));
    let train = TrainSet { geno: &geno, rows: &fit_rows, y: &y_fit };
    let valid = TrainSet { geno: &geno, rows: &valid_rows, y: &y_valid };
    let genotyped_rows: Vec<usize> = (0..dataset.len()).collect();
    let context = FitContext {
        seed: derive_seed(options.seed, Purpose::Fit, &[fold.repeat as u64, fold.index as u64]),
        genotyped_rows: &genotyped_rows,
        observer,
        shared: work.map(|work| genopred_stats::gram::Shared { geno: &dataset.geno, kept: &qc.kept, work }),
    };
    let info = model.fit(&train, (!valid_rows.is_empty()).then_some(&valid), &context).map_err(model_err)?;
    let history = model.take_history();
    let predicted = model.predict(&geno, &fold.test).map_err(model_err)?;
    if predicted.len() != fold.test.len() || predicted.iter().any(|p| !p.is_finite()) {
        return Err(CoreError::Numerical(format!(
            "model {name} returned {} predictions for {} test samples on fold {}, or a non-finite value",
            predicted.len(),
            fold.test.len(),
            fold.label
        )));
    }
    let observed = pick(&fold.test);
    let m = Metrics::compute(&observed, &predicted, options.ndcg_top);
    let predictions = fold
        .test
        .iter()
        .zip(observed.iter().zip(&predicted))
        .map(|(&r, (&o, &p))| Prediction {
            id: dataset.ids()[r].clone(),
            fold: fold.index,
            observed: o,
            predicted: p,
            repeat: fold.repeat,
        })
        .collect();
    Ok(FoldResult {
        repeat: fold.repeat,
        fold: fold.index,
        label: fold.label.clone(),
        n_train: fit_rows.len(),
        n_valid: valid_rows.len(),
        n_test: fold.test.len(),
        n_markers: qc.kept.len(),
        kept: qc.kept,
        metrics: m,
        seconds: started.elapsed().as_secs_f64(),
        qc: qc.report,
        fit: info,
        predictions,
        history,
        tuning: None,
    })
}

/// The genotypes at the markers QC kept: the dataset's own matrix, borrowed, when QC kept every
/// marker in order (no copy of the genotypes per fold), else a copy of the kept columns.
pub fn kept_markers<'a>(geno: &'a GenotypeMatrix, kept: &[usize]) -> std::borrow::Cow<'a, GenotypeMatrix> {
    if kept.len() == geno.n_markers() && kept.iter().enumerate().all(|(i, &k)| i == k) {
        std::borrow::Cow::Borrowed(geno)
    } else {
        std::borrow::Cow::Owned(geno.select_markers(kept))
    }
}

/// A model fitted once on every sample of a dataset, for predicting new samples
/// (`genopred train`).
#[derive(Debug, Clone)]
pub struct FinalFit {
    /// The markers QC kept (fitted on every sample; the model sees only these).
    pub qc: MarkerQc,
    /// Mean dosage of each kept marker over every sample (what absent markers are imputed with).
    pub marker_means: Vec<f64>,
    /// Samples the model was fitted on.
    pub n_fit: usize,
    /// Samples held out for early stopping.
    pub n_valid: usize,
    /// What the model reported about its fit.
    pub fit: FitInfo,
    /// Per-epoch history (neural models).
    pub history: Vec<EpochRecord>,
    /// Metrics on the samples the model was fitted on: in-sample, optimistic, for sanity checks
    /// only (cross-validation measures accuracy).
    pub train_metrics: Metrics,
    /// Metrics on the early-stopping subset (seen by early stopping, so also optimistic).
    pub valid_metrics: Option<Metrics>,
    /// Wall time of QC and fit.
    pub seconds: f64,
}

/// Fits `model` on every sample of `dataset`, as a cross-validation fold would be fitted on its
/// training rows: QC on all samples, a validation subset for models with early stopping, then the
/// fit. The seeds are derived from `options.seed` apart from every fold's.
pub fn fit_final(
    dataset: &Dataset,
    model: &mut dyn Predictor,
    options: &CvOptions,
    observer: &dyn FitObserver,
) -> Result<FinalFit> {
    let started = Instant::now();
    let name = model.name().to_string();
    let model_err = |source: crate::predictor::ModelError| CoreError::Model {
        model: name.clone(),
        during: "the final fit".into(),
        source,
    };
    let all: Vec<usize> = (0..dataset.len()).collect();
    let (fit_rows, valid_rows) = if model.wants_validation() {
        validation_split(&all, options.valid_fraction, derive_seed(options.seed, Purpose::Validation, &[0, 0]))?
    } else {
        (all.clone(), Vec::new())
    };
    let qc = MarkerQc::fit(&dataset.geno, &all, &options.qc)?;
    let geno = kept_markers(&dataset.geno, &qc.kept);
    let marker_means = genopred_data::qc::MarkerStats::compute(&geno, &all).mean;
    let pick = |rows: &[usize]| rows.iter().map(|&r| dataset.y[r]).collect::<Vec<f64>>();
    let (y_fit, y_valid) = (pick(&fit_rows), pick(&valid_rows));
    let train = TrainSet { geno: &geno, rows: &fit_rows, y: &y_fit };
    let valid = TrainSet { geno: &geno, rows: &valid_rows, y: &y_valid };
    let context = FitContext {
        seed: derive_seed(options.seed, Purpose::Fit, &[0, 0]),
        genotyped_rows: &all,
        observer,
        shared: None,
    };
    let fit = model.fit(&train, (!valid_rows.is_empty()).then_some(&valid), &context).map_err(model_err)?;
    let history = model.take_history();
    let metrics_of = |rows: &[usize], y: &[f64]| -> Result<Metrics> {
        let p = model.predict(&geno, rows).map_err(model_err)?;
        if p.len() != rows.len() || p.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::Numerical(format!("model {name} returned a non-finite prediction")));
        }
        Ok(Metrics::compute(y, &p, options.ndcg_top))
    };
    let train_metrics = metrics_of(&fit_rows, &y_fit)?;
    let valid_metrics = if valid_rows.len() >= 2 { Some(metrics_of(&valid_rows, &y_valid)?) } else { None };
    Ok(FinalFit {
        qc,
        marker_means,
        n_fit: fit_rows.len(),
        n_valid: valid_rows.len(),
        fit,
        history,
        train_metrics,
        valid_metrics,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Mean ± sd over folds, and the metrics of all test predictions pooled (one per repeat, averaged).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CvSummary {
    /// Mean and sd over folds of each metric.
    pub metrics: MetricSummaries,
    /// Metrics of the pooled predictions of each repeat, averaged over repeats.
    pub pooled: MetricSummaries,
}

/// Summarises finished folds.
pub fn summarise(folds: &[FoldResult], ndcg_top: f64) -> CvSummary {
    let per_fold: Vec<Metrics> = folds.iter().map(|f| f.metrics).collect();
    let mut repeats: Vec<usize> = folds.iter().map(|f| f.repeat).collect();
    repeats.sort_unstable();
    repeats.dedup();
    let pooled: Vec<Metrics> = repeats
        .iter()
        .map(|&r| {
            let preds: Vec<&Prediction> = folds.iter().filter(|f| f.repeat == r).flat_map(|f| &f.predictions).collect();
            let o: Vec<f64> = preds.iter().map(|p| p.observed).collect();
            let p: Vec<f64> = preds.iter().map(|p| p.predicted).collect();
            Metrics::compute(&o, &p, ndcg_top)
        })
        .collect();
    CvSummary { metrics: MetricSummaries::of(&per_fold), pooled: MetricSummaries::of(&pooled) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cv::kfold;
    use crate::predictor::ModelError;
    use genopred_data::genotype::GenotypeMatrix;

    /// Predicts the training mean and records what it was shown.
    #[derive(Default)]
    struct Spy {
        mean: f64,
        fit_rows: Vec<usize>,
        valid_rows: Vec<usize>,
        n_markers: usize,
    }

    impl Predictor for Spy {
        fn name(&self) -> &str {
            "spy"
        }
        fn fit(
            &mut self,
            train: &TrainSet<'_>,
            valid: Option<&TrainSet<'_>>,
            _: &FitContext<'_>,
        ) -> Result<FitInfo, ModelError> {
            self.mean = train.y.iter().sum::<f64>() / train.y.len() as f64;
            self.fit_rows = train.rows.to_vec();
            self.valid_rows = valid.map(|v| v.rows.to_vec()).unwrap_or_default();
            self.n_markers = train.geno.n_markers();
            Ok(FitInfo::default())
        }
        fn predict(&self, _geno: &GenotypeMatrix, rows: &[usize]) -> Result<Vec<f64>, ModelError> {
            Ok(vec![self.mean; rows.len()])
        }
    }

    fn dataset(n: usize) -> Dataset {
        // Marker 0 varies everywhere; marker 1 is constant except in the last sample.
        let mut codes = Vec::new();
        for i in 0..n {
            codes.push((i % 3 * 100) as u8);
            codes.push(if i == n - 1 { 200 } else { 0 });
        }
        Dataset {
            geno: GenotypeMatrix::with_generated_names(n, 2, codes).unwrap(),
            y: (0..n).map(|i| i as f64).collect(),
            trait_name: "y".into(),
            groups: None,
        }
    }

    #[test]
    fn the_test_fold_never_reaches_fit_qc_or_validation() {
        let data = dataset(40);
        let folds = kfold(40, 4, 1).unwrap();
        let fold = folds.iter().find(|f| f.test.contains(&39)).unwrap();
        let mut spy = Spy::default();
        let options = CvOptions { qc: QcConfig { min_maf: 0.0, ..QcConfig::default() }, ..CvOptions::default() };
        let result = run_fold(&data, fold, &mut spy, &options, &crate::Quiet).unwrap();
        assert!(spy.fit_rows.iter().chain(&spy.valid_rows).all(|r| !fold.test.contains(r)));
        let mut seen: Vec<usize> = spy.fit_rows.iter().chain(&spy.valid_rows).copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, fold.train);
        assert_eq!(spy.valid_rows.len(), 3, "10 % of 30 training rows");
        // Marker 1 only varies in a test sample: QC fitted on the training fold drops it.
        assert_eq!((spy.n_markers, result.n_markers, result.qc.monomorphic), (1, 1, 1));
        // Changing the test fold's phenotypes changes nothing but the observed column.
        let mut shuffled = data.clone();
        for &t in &fold.test {
            shuffled.y[t] = -1000.0;
        }
        let again = run_fold(&shuffled, fold, &mut Spy::default(), &options, &crate::Quiet).unwrap();
        let p = |r: &FoldResult| r.predictions.iter().map(|p| p.predicted).collect::<Vec<_>>();
        assert_eq!(p(&result), p(&again));
    }

    #[test]
    fn summary_pools_each_repeat() {
        let data = dataset(30);
        let options = CvOptions { qc: QcConfig { min_maf: 0.0, ..QcConfig::default() }, ..CvOptions::default() };
        let folds = crate::cv::repeated_kfold(30, 3, 2, 5).unwrap();
        let results: Vec<FoldResult> =
            folds.iter().map(|f| run_fold(&data, f, &mut Spy::default(), &options, &crate::Quiet).unwrap()).collect();
        let s = summarise(&results, 0.1);
        assert_eq!(s.metrics.mse.n, 6);
        assert_eq!(s.pooled.mse.n, 2);
        assert!(results.iter().all(|r| r.predictions.len() == r.n_test));
    }
}
