//! A cross-validation run's folder, and the fold as the unit of work.
//!
//! ```text
//! OUT/
//!   run.json                 RunSettings: what decides every fold's result
//!   folds/rRR-fFFF.json      FoldRecord: one finished fold with its predictions (written last)
//!   folds/rRR-fFFF.history.csv   its training history (neural models)
//!   predictions.csv          id,fold,observed,predicted,repeat (written by `combine`)
//!   tuning.csv, trials.csv   with `--tune`: each fold's chosen settings, and every trial
//!   summary.json             RunSummary (written by `combine`)
//! ```
//!
//! Any executor — a loop in one process, threads, `--only-fold` processes, cluster jobs — runs
//! "fold k of this run" with [`crate::evaluation::run_fold`] and stores it with
//! [`RunDir::record`]; [`RunDir::finished`] reads it back and [`RunDir::combine`] writes the
//! run's files from the records, the same files whichever executor ran the folds.

use std::path::{Path, PathBuf};

use crate::cv::Fold;
use crate::error::{CoreError, Result};
use crate::evaluation::{CvSummary, FoldResult, summarise};
use crate::output::write_csv;
use crate::records::{FoldRecord, Provenance, RunSettings, RunSummary};

/// The folder of one cross-validation run.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

/// What [`RunDir::combine`] needs besides the fold records.
#[derive(Debug, Clone)]
pub struct RunFacts<'a> {
    /// Model name.
    pub model: &'a str,
    /// Trait name.
    pub trait_name: &'a str,
    /// Samples used.
    pub n_samples: usize,
    /// Markers in the genotype file.
    pub n_markers: usize,
    /// Seed.
    pub seed: u64,
    /// NDCG's k as a fraction of each test fold.
    pub ndcg_top: f64,
}

impl RunDir {
    /// Opens (creating it if needed) the run folder `root`, and removes temporary files an
    /// interrupted write left there.
    pub fn create(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| CoreError::Write { path: root.to_path_buf(), source: e })?;
        let dir = RunDir { root: root.to_path_buf() };
        dir.remove_stale_temporaries();
        Ok(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `run.json`.
    pub fn settings_path(&self) -> PathBuf {
        self.root.join("run.json")
    }

    /// `predictions.csv`.
    pub fn predictions_path(&self) -> PathBuf {
        self.root.join("predictions.csv")
    }

    /// `summary.json`.
    pub fn summary_path(&self) -> PathBuf {
        self.root.join("summary.json")
    }

    /// Where a finished fold is recorded: `folds/rRR-fFFF.json`.
    pub fn fold_path(&self, repeat: usize, fold: usize) -> PathBuf {
        self.root.join("folds").join(format!("r{repeat:02}-f{fold:03}.json"))
    }

    /// Where a fold's training history goes: `folds/rRR-fFFF.history.csv`.
    pub fn history_path(&self, repeat: usize, fold: usize) -> PathBuf {
        self.root.join("folds").join(format!("r{repeat:02}-f{fold:03}.history.csv"))
    }

    /// Records the run's settings. With `resume`, a folder holding a run started with other
    /// settings is refused, naming what differs; finished folds are then reused only when the
    /// settings match.
    pub fn start(&self, settings: &RunSettings, resume: bool) -> Result<()> {
        let path = self.settings_path();
        if resume && path.is_file() {
            let before = RunSettings::read(&path)?;
            let differ = settings.differences(&before);
            if !differ.is_empty() {
                return Err(CoreError::Data(format!(
                    "--resume: {} holds a run started with other settings or inputs (differs in: {}); \
                     rerun with the same arguments and files, drop --resume to start over, or choose another --out",
                    self.root.display(),
                    differ.join(", ")
                )));
            }
        }
        settings.write(&path)
    }

    /// The fold's result if it already finished here (`None` when it has not).
    pub fn finished(&self, fold: &Fold) -> Result<Option<FoldResult>> {
        let path = self.fold_path(fold.repeat, fold.index);
        if !path.is_file() {
            return Ok(None);
        }
        let record = FoldRecord::read(&path).map_err(|e| match e {
            CoreError::Format { path, message } => {
                CoreError::Format { path, message: format!("{message}; delete it to rerun that fold") }
            }
            other => other,
        })?;
        Ok(Some(record.into_result()))
    }

    /// Records a finished fold: its history first, then the fold record (with the peak memory
    /// of the process that ran it, when known), whose presence means the fold finished. Each
    /// file is written atomically.
    pub fn record(&self, result: &FoldResult, process_peak_rss_bytes: Option<u64>) -> Result<()> {
        if !result.history.is_empty() {
            write_csv(&self.history_path(result.repeat, result.fold), &result.history, b',')?;
        }
        FoldRecord::of(result, process_peak_rss_bytes).write(&self.fold_path(result.repeat, result.fold))
    }

    /// Writes `predictions.csv` and `summary.json` from the finished folds (in plan order) and
    /// returns the summary.
    pub fn combine(
        &self,
        folds: Vec<FoldResult>,
        facts: &RunFacts<'_>,
        provenance: Provenance,
    ) -> Result<(RunSummary, CvSummary)> {
        write_csv(&self.predictions_path(), folds.iter().flat_map(|f| &f.predictions), b',')?;
        let searches: Vec<_> = folds.iter().filter_map(|f| f.tuning.as_ref().map(|t| (f.repeat, f.fold, t))).collect();
        if !searches.is_empty() {
            crate::tuning::write_tables(&self.root, &searches)?;
        }
        let cv = summarise(&folds, facts.ndcg_top);
        let summary = RunSummary {
            format: RunSummary::FORMAT,
            model: facts.model.to_string(),
            trait_name: facts.trait_name.to_string(),
            n_samples: facts.n_samples,
            n_markers: facts.n_markers,
            seed: facts.seed,
            folds,
            metrics: cv.metrics,
            pooled: cv.pooled,
            provenance,
        };
        summary.write(&self.summary_path())?;
        Ok((summary, cv))
    }

    /// Deletes temporary files an interrupted atomic write left behind (they never carry a
    /// final name). A write lasts milliseconds, so only files untouched for ten minutes are
    /// stale: another process may be writing into the same folder (`--only-fold` jobs sharing
    /// `--out`).
    fn remove_stale_temporaries(&self) {
        let stale = |e: &std::fs::DirEntry| {
            e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 600)
        };
        for d in [self.root.clone(), self.root.join("folds")] {
            let Ok(entries) = std::fs::read_dir(&d) else { continue };
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(crate::output::TEMP_PREFIX) && stale(&e) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cv::{FoldRequest, plan_folds};
    use crate::dataset::{Dataset, MatchReport};
    use crate::evaluation::{CvOptions, run_fold};
    use crate::genotype::GenotypeMatrix;
    use crate::predictor::{FitContext, FitInfo, ModelError, Predictor, TrainSet};
    use crate::qc::QcConfig;
    use crate::readers::GenotypeFormat;
    use crate::records::{FileInput, FoldScheme, GenoHashes, GenoInput, InputHashes, Inputs};

    /// Predicts the first marker's dosage plus the training mean.
    struct Simple(f64);

    impl Predictor for Simple {
        fn name(&self) -> &str {
            "simple"
        }
        fn fit(
            &mut self,
            t: &TrainSet<'_>,
            _: Option<&TrainSet<'_>>,
            _: &FitContext<'_>,
        ) -> Result<FitInfo, ModelError> {
            self.0 = t.y.iter().sum::<f64>() / t.y.len() as f64;
            Ok(FitInfo::default())
        }
        fn predict(&self, g: &GenotypeMatrix, rows: &[usize]) -> Result<Vec<f64>, ModelError> {
            Ok(rows.iter().map(|&r| self.0 + g.dosage(r, 0).unwrap_or(0.0)).collect())
        }
    }

    #[test]
    fn recorded_folds_read_back_and_combine_into_a_readable_summary() {
        let n = 30;
        let codes: Vec<u8> = (0..n).flat_map(|i| [(i % 3 * 100) as u8, (i % 2 * 100) as u8]).collect();
        let dataset = Dataset {
            geno: GenotypeMatrix::with_generated_names(n, 2, codes).unwrap(),
            y: (0..n).map(|i| (i % 3) as f64 + i as f64 / 100.0).collect(),
            trait_name: "y".into(),
            groups: None,
        };
        let options = CvOptions { qc: QcConfig { min_maf: 0.0, ..QcConfig::default() }, ..CvOptions::default() };
        let (folds, scheme) = plan_folds(&dataset, &FoldRequest::Kfold { k: 3, repeats: 1, seed: 1 }).unwrap();
        assert_eq!(scheme, FoldScheme::Kfold { k: 3, repeats: 1 });
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::create(tmp.path()).unwrap();
        let hashes = InputHashes { geno: GenoHashes::File("g".into()), pheno: "p".into() };
        let settings = RunSettings {
            tuning: None,
            format: RunSettings::FORMAT,
            genopred_version: "test".into(),
            model: "simple".into(),
            model_config: serde_json::Value::Null,
            backend: "cpu".into(),
            trait_name: "y".into(),
            seed: 1,
            options,
            scheme: scheme.clone(),
            inputs: hashes,
        };
        dir.start(&settings, true).unwrap();
        let mut results = Vec::new();
        for fold in &folds {
            assert!(dir.finished(fold).unwrap().is_none());
            let result = run_fold(&dataset, fold, &mut Simple(0.0), &options, &crate::Quiet).unwrap();
            dir.record(&result, Some(1 << 20)).unwrap();
            let back = dir.finished(fold).unwrap().expect("recorded");
            let record = FoldRecord::read(&dir.fold_path(fold.repeat, fold.index)).unwrap();
            assert_eq!(record.process_peak_rss_bytes, Some(1 << 20));
            assert_eq!(back.predictions, result.predictions);
            assert_eq!(back.metrics.pearson.to_bits(), result.metrics.pearson.to_bits());
            results.push(back);
        }
        // A run started with other settings is refused, naming what differs.
        let other = RunSettings { seed: 2, ..settings.clone() };
        let e = dir.start(&other, true).unwrap_err().to_string();
        assert!(e.contains("differs in: seed"), "{e}");

        let facts = RunFacts { model: "simple", trait_name: "y", n_samples: n, n_markers: 2, seed: 1, ndcg_top: 0.1 };
        let provenance = Provenance {
            genopred_version: "test".into(),
            command: vec![],
            wall_seconds: 0.0,
            peak_rss_bytes: None,
            bytes_per_genotype: None,
            genotype_bytes: None,
            resumed_folds: 0,
            inputs: Inputs {
                geno: GenoInput {
                    path: "g".into(),
                    format: GenotypeFormat::Csv,
                    sha256: GenoHashes::File("g".into()),
                    skipped: None,
                },
                pheno: FileInput { path: "p".into(), sha256: "p".into() },
            },
            matching: MatchReport {
                genotyped: n,
                phenotyped: n,
                matched: n,
                missing_trait: 0,
                used: n,
                unmatched_examples: vec![],
            },
            samples_removed_by_qc: vec![],
            scheme,
            options,
            model_config: serde_json::Value::Null,
            backend: "cpu".into(),
            parallelism: None,
        };
        let (summary, _) = dir.combine(results, &facts, provenance).unwrap();
        // One repeat: the pooled metrics have no sd (NaN, written as null) and still read back.
        assert!(summary.pooled.pearson.sd.is_nan());
        let read = RunSummary::read(&dir.summary_path()).unwrap();
        assert_eq!(read.folds.len(), 3);
        assert!(read.pooled.pearson.sd.is_nan());
        assert_eq!(read.metrics.mse.mean.to_bits(), summary.metrics.mse.mean.to_bits());
        let csv = std::fs::read_to_string(dir.predictions_path()).unwrap();
        assert_eq!(csv.lines().count(), n + 1);
        assert!(csv.starts_with("id,fold,observed,predicted,repeat\n"));
    }
}
