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
//!   report.html              the run's page (written by the CLI while combining)
//!   complete.json            RunComplete: the combined files with their hashes (written last)
//!   .genopred-lock/          the folder's lock (crate::folder_lock)
//! ```
//!
//! A folder holds one run. `run.json` carries the run's identity (the hash of its settings and
//! inputs), every fold record carries it and its own (repeat, fold, test ids, predictions), and
//! a fold is reused only when all of them match ([`crate::records::FoldRecord::check`]). A new
//! run is refused in a folder that holds another's folds or results (`--force` clears them).
//! Whole runs hold the folder's lock alone, `--only-fold` jobs of one run share it, and
//! starting, recording and combining take its write lock, so two processes never interleave
//! their writes.
//!
//! Any executor — a loop in one process, threads, `--only-fold` processes, cluster jobs — runs
//! "fold k of this run" with [`crate::evaluation::run_fold`] and stores it with
//! [`RunDir::record`]; [`RunDir::finished`] reads it back and [`RunDir::combine`] writes the
//! run's files from the records, the same files whichever executor ran the folds.

use std::path::{Path, PathBuf};

use crate::cv::Fold;
use crate::env_model::TrialFoldResult;
use crate::evaluation::{CvSummary, FoldResult, summarise};
use crate::folder_lock::{FolderLock, LockMode};
use crate::output::{sha256_file, write_csv};
use crate::records::{
    CompleteFile, FoldRecord, Provenance, RunComplete, RunSettings, RunSummary, TrialFoldRecord, TrialRunSummary,
};
use genopred_data::error::{CoreError, Result};

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

/// How a run starts in its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A new run: refused where the folder holds finished folds or combined results (but
    /// `--only-fold` jobs of one run, `partial`, may share the folder with its folds).
    Fresh,
    /// `--resume`: the folder's run must have the same settings; its checked folds are reused.
    Resume,
    /// `--force`: the folder's run files are deleted first.
    Force,
}

/// The file written last when the folds are combined ([`RunComplete`]).
pub const COMPLETE: &str = "complete.json";

/// The files and folders a run writes in its folder (what `--force` deletes); nothing else in
/// the folder is touched.
const RUN_FILES: &[&str] = &[
    COMPLETE,
    "run.json",
    "config.toml",
    "predictions.csv",
    "summary.json",
    "tuning.csv",
    "trials.csv",
    "report.html",
    "folds",
    "tuning",
];

impl RunDir {
    /// Opens (creating it if needed) the run folder `root`, and removes temporary files an
    /// interrupted write left there.
    pub fn create(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| CoreError::Write { path: root.to_path_buf(), source: e })?;
        let dir = RunDir { root: root.to_path_buf() };
        dir.remove_stale_temporaries();
        Ok(dir)
    }

    /// Takes the folder's lock for this process's life ([`FolderLock`]): exclusive for a whole
    /// run, shared for `--only-fold` jobs that write their own folds into one folder.
    pub fn lock(&self, mode: LockMode, what: &str) -> Result<FolderLock> {
        FolderLock::acquire(&self.root, mode, what)
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

    /// How many fold records the folder holds (final names only).
    fn fold_records(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(self.root.join("folds")) else { return 0 };
        entries
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.ends_with(".json") && !name.starts_with(crate::output::TEMP_PREFIX)
            })
            .count()
    }

    /// Records the run's settings and returns its identity ([`RunSettings::identity`]), under
    /// the folder's write lock. A fresh start in a folder that holds another run's work is
    /// refused, naming what it holds and the ways out; `--only-fold` jobs (`partial`) of the
    /// same run may share the folder. With [`Start::Resume`] a folder holding a run started with
    /// other settings is refused, naming what differs. [`Start::Force`] deletes the run files
    /// first.
    pub fn start(&self, settings: &RunSettings, start: Start, partial: bool) -> Result<String> {
        FolderLock::while_writing(&self.root, || -> Result<String> {
            let path = self.settings_path();
            let before = if path.is_file() { Some(RunSettings::read(&path)) } else { None };
            match start {
                Start::Force => self.clear()?,
                Start::Resume => {
                    if let Some(before) = before {
                        let differ = settings.differences(&before?);
                        if !differ.is_empty() {
                            return Err(CoreError::Data(format!(
                                "--resume: {} holds a run started with other settings or inputs (differs in: {}); \
                                 rerun with the same arguments and files, use --force to delete that run and start \
                                 over, or choose another --out",
                                self.root.display(),
                                differ.join(", ")
                            )));
                        }
                    }
                }
                Start::Fresh => {
                    let folds = self.fold_records();
                    let combined = self.summary_path().is_file() || self.root.join(COMPLETE).is_file();
                    let differ = match &before {
                        Some(Ok(b)) => Some(settings.differences(b)),
                        _ => None,
                    };
                    let same = differ.as_ref().is_some_and(Vec::is_empty);
                    if (folds > 0 || combined) && !(partial && same) {
                        let what = if combined {
                            "the results of a finished run".to_string()
                        } else {
                            format!("{folds} finished fold(s) of a run")
                        };
                        let whose = match differ {
                            Some(d) if d.is_empty() => " with these settings".to_string(),
                            Some(d) => format!(" started with other settings (differs in: {})", d.join(", ")),
                            None => String::new(),
                        };
                        return Err(CoreError::Data(format!(
                            "{} holds {what}{whose}; add --resume to continue that run (same settings only), \
                             --force to delete it and start over, or choose another --out",
                            self.root.display()
                        )));
                    }
                }
            }
            settings.write(&path)?;
            Ok(settings.identity())
        })
    }

    /// Deletes the run files ([`RUN_FILES`]) from the folder.
    fn clear(&self) -> Result<()> {
        RUN_FILES.iter().try_for_each(|name| remove_if_present(&self.root.join(name)))
    }

    /// The fold's result if it already finished here (`None` when it has not), after checking
    /// that its record is this fold of the run `run` ([`RunSettings::identity`]) and intact
    /// ([`FoldRecord::check`]); `test_ids` are the fold's test ids in its order.
    pub fn finished(&self, fold: &Fold, run: &str, test_ids: &[&str], ndcg_top: f64) -> Result<Option<FoldResult>> {
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
        record.check(&path, run, fold, test_ids, ndcg_top)?;
        Ok(Some(record.into_result()))
    }

    /// Records a finished fold of the run `run`: its history first, then the fold record (with
    /// the peak memory of the process that ran it, when known), whose presence means the fold
    /// finished. Each file is written atomically, under the write lock, and only while
    /// `run.json` still holds this run: a run started over in the folder meanwhile (`--force`
    /// from elsewhere) makes this fail instead of mixing the two.
    pub fn record(&self, result: &FoldResult, run: &str, process_peak_rss_bytes: Option<u64>) -> Result<()> {
        FolderLock::while_writing(&self.root, || -> Result<()> {
            self.check_still_ours(run)?;
            if !result.history.is_empty() {
                write_csv(&self.history_path(result.repeat, result.fold), &result.history, b',')?;
            }
            FoldRecord::of(result, run, process_peak_rss_bytes).write(&self.fold_path(result.repeat, result.fold))
        })
    }

    fn check_still_ours(&self, run: &str) -> Result<()> {
        let path = self.settings_path();
        let now = if path.is_file() { Some(RunSettings::read(&path)?.identity()) } else { None };
        if now.as_deref() != Some(run) {
            return Err(CoreError::Data(format!(
                "{} was started over by another process while this run was running ({} no longer holds this \
                 run); this process's results are not recorded there",
                self.root.display(),
                path.display()
            )));
        }
        Ok(())
    }

    /// Combines the finished folds (in plan order) of the run `run` into the run's files,
    /// under the write lock: removes `complete.json`, writes `predictions.csv`, the tuning
    /// tables (`--tune`) and `summary.json`, lets `also` write more files (the report; it
    /// returns their names), then writes `complete.json` naming every one with its hash. A
    /// reader trusts the files only with a matching `complete.json` ([`RunComplete::verify`]).
    /// Refused when a line is predicted twice in one repeat (folds of different runs).
    pub fn combine<E: From<CoreError>>(
        &self,
        run: &str,
        folds: Vec<FoldResult>,
        facts: &RunFacts<'_>,
        provenance: Provenance,
        also: impl FnOnce(&RunSummary) -> std::result::Result<Vec<String>, E>,
    ) -> std::result::Result<(RunSummary, CvSummary), E> {
        FolderLock::while_writing(&self.root, || {
            self.check_still_ours(run)?;
            let mut seen = std::collections::HashSet::new();
            if let Some(p) = folds.iter().flat_map(|f| &f.predictions).find(|p| !seen.insert((p.repeat, p.id.as_str())))
            {
                return Err(CoreError::Data(format!(
                    "{}: line {} is predicted by two folds of repeat {}; the folds do not form one run",
                    self.root.display(),
                    p.id,
                    p.repeat
                ))
                .into());
            }
            remove_if_present(&self.root.join(COMPLETE))?;
            let mut files = vec!["predictions.csv".to_string()];
            write_csv(&self.predictions_path(), folds.iter().flat_map(|f| &f.predictions), b',')?;
            let searches: Vec<_> =
                folds.iter().filter_map(|f| f.tuning.as_ref().map(|t| (f.repeat, f.fold, t))).collect();
            if !searches.is_empty() {
                crate::tuning::write_tables(&self.root, &searches)?;
                files.extend(["tuning.csv".to_string(), "trials.csv".to_string()]);
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
            files.push("summary.json".into());
            files.extend(also(&summary)?);
            for extra in ["run.json", "config.toml"] {
                if self.root.join(extra).is_file() {
                    files.push(extra.into());
                }
            }
            let mut listed = Vec::with_capacity(files.len());
            for path in files {
                let sha256 = sha256_file(&self.root.join(&path))?;
                listed.push(CompleteFile { path, sha256 });
            }
            RunComplete { format: RunComplete::FORMAT, run: run.to_string(), files: listed }
                .write(&self.root.join(COMPLETE))?;
            Ok((summary, cv))
        })
    }

    /// A multi-environment run's finished fold, if it finished here ([`RunDir::finished`]'s
    /// counterpart).
    pub fn finished_trial(&self, fold: &Fold, run: &str, test_records: &str) -> Result<Option<TrialFoldResult>> {
        let path = self.fold_path(fold.repeat, fold.index);
        if !path.is_file() {
            return Ok(None);
        }
        let record = TrialFoldRecord::read(&path)?;
        record.check(&path, run, fold, test_records)?;
        Ok(Some(record.result))
    }

    /// Records a multi-environment run's finished fold ([`RunDir::record`]'s counterpart).
    pub fn record_trial(&self, result: &TrialFoldResult, run: &str, test_records: &str) -> Result<()> {
        FolderLock::while_writing(&self.root, || -> Result<()> {
            self.check_still_ours(run)?;
            TrialFoldRecord {
                format: TrialFoldRecord::FORMAT,
                run: run.to_string(),
                test_records: test_records.to_string(),
                result: result.clone(),
            }
            .write(&self.fold_path(result.repeat, result.fold))
        })
    }

    /// Combines a multi-environment run's folds ([`RunDir::combine`]'s counterpart):
    /// `predictions.csv` (`id,env,fold,observed,predicted,repeat`, a row per test record),
    /// `summary.json` ([`TrialRunSummary`]) and `complete.json` (naming them, with the
    /// `report.html` the caller wrote before). Refused when a record is predicted twice in one
    /// repeat.
    pub fn combine_trials(&self, run: &str, summary: &TrialRunSummary, folds: &[TrialFoldResult]) -> Result<()> {
        FolderLock::while_writing(&self.root, || {
            self.check_still_ours(run)?;
            let mut seen = std::collections::HashSet::new();
            if let Some(p) = folds
                .iter()
                .flat_map(|f| &f.predictions)
                .find(|p| !seen.insert((p.repeat, p.id.as_str(), p.env.as_str())))
            {
                return Err(CoreError::Data(format!(
                    "{}: line {} in {} is predicted by two folds of repeat {}; the folds do not form one run",
                    self.root.display(),
                    p.id,
                    p.env,
                    p.repeat
                )));
            }
            remove_if_present(&self.root.join(COMPLETE))?;
            write_csv(&self.predictions_path(), folds.iter().flat_map(|f| &f.predictions), b',')?;
            summary.write(&self.summary_path())?;
            let mut listed = Vec::new();
            for path in ["predictions.csv", "summary.json", "report.html", "run.json", "config.toml"] {
                if self.root.join(path).is_file() {
                    listed.push(CompleteFile { path: path.to_string(), sha256: sha256_file(&self.root.join(path))? });
                }
            }
            RunComplete { format: RunComplete::FORMAT, run: run.to_string(), files: listed }
                .write(&self.root.join(COMPLETE))
        })
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

/// Deletes a file or folder; one that is not there is fine.
fn remove_if_present(path: &Path) -> Result<()> {
    let gone = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
    match gone {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(CoreError::Write { path: path.to_path_buf(), source: e })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cv::{FoldRequest, plan_folds};
    use crate::evaluation::{CvOptions, run_fold};
    use crate::predictor::{FitContext, FitInfo, ModelError, Predictor, TrainSet};
    use crate::records::RunComplete;
    use crate::records::{FileInput, FoldScheme, GenoHashes, GenoInput, InputHashes, Inputs};
    use genopred_data::dataset::{Dataset, MatchReport};
    use genopred_data::genotype::GenotypeMatrix;
    use genopred_data::qc::QcConfig;
    use genopred_data::readers::GenotypeFormat;

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
        let run = dir.start(&settings, Start::Resume, false).unwrap();
        assert_eq!(run, settings.identity());
        let ids = |fold: &Fold| fold.test.iter().map(|&r| dataset.ids()[r].clone()).collect::<Vec<String>>();
        let mut results = Vec::new();
        for fold in &folds {
            assert!(dir.finished(fold, &run, &refs(&ids(fold)), 0.1).unwrap().is_none());
            let result = run_fold(&dataset, fold, &mut Simple(0.0), &options, &crate::Quiet).unwrap();
            dir.record(&result, &run, Some(1 << 20)).unwrap();
            let back = dir.finished(fold, &run, &refs(&ids(fold)), 0.1).unwrap().expect("recorded");
            let record = FoldRecord::read(&dir.fold_path(fold.repeat, fold.index)).unwrap();
            assert_eq!(record.process_peak_rss_bytes, Some(1 << 20));
            assert_eq!(back.predictions, result.predictions);
            assert_eq!(back.metrics.pearson.to_bits(), result.metrics.pearson.to_bits());
            results.push(back);
        }
        // A run started with other settings is refused, naming what differs.
        let other = RunSettings { seed: 2, ..settings.clone() };
        let e = dir.start(&other, Start::Resume, false).unwrap_err().to_string();
        assert!(e.contains("differs in: seed"), "{e}");
        check_refusals(&dir, &folds, &run, &ids, &settings);

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
        let mut twice = results.clone();
        let first = twice[0].predictions[0].clone();
        twice[1].predictions.push(first);
        let e = dir.combine(&run, twice, &facts, provenance.clone(), |_| Ok::<_, CoreError>(vec![])).unwrap_err();
        assert!(e.to_string().contains("predicted by two folds"), "{e}");
        let (summary, _) = dir.combine(&run, results, &facts, provenance, |_| Ok::<_, CoreError>(vec![])).unwrap();
        let complete = RunComplete::verify(dir.path()).unwrap();
        let names: Vec<&str> = complete.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["predictions.csv", "summary.json", "run.json"]);
        // One repeat: the pooled metrics have no sd (NaN, written as null) and still read back.
        assert!(summary.pooled.pearson.sd.is_nan());
        let read = RunSummary::read(&dir.summary_path()).unwrap();
        assert_eq!(read.folds.len(), 3);
        assert!(read.pooled.pearson.sd.is_nan());
        assert_eq!(read.metrics.mse.mean.to_bits(), summary.metrics.mse.mean.to_bits());
        let csv = std::fs::read_to_string(dir.predictions_path()).unwrap();
        assert_eq!(csv.lines().count(), n + 1);
        assert!(csv.starts_with("id,fold,observed,predicted,repeat\n"));
        // A combined file changed afterwards no longer verifies.
        std::fs::write(dir.predictions_path(), csv.replacen('1', "2", 1)).unwrap();
        let e = RunComplete::verify(dir.path()).unwrap_err().to_string();
        assert!(e.contains("predictions.csv changed"), "{e}");

        // A fresh start in the used folder is refused; --force clears the run's files only.
        let e = dir.start(&settings, Start::Fresh, false).unwrap_err().to_string();
        assert!(e.contains("holds the results of a finished run with these settings") && e.contains("--force"), "{e}");
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        dir.start(&other, Start::Force, false).unwrap();
        assert!(!dir.path().join("folds").exists() && !dir.summary_path().exists());
        assert!(!dir.path().join(COMPLETE).exists());
        assert!(dir.path().join("notes.txt").is_file());
    }

    fn refs(ids: &[String]) -> Vec<&str> {
        ids.iter().map(String::as_str).collect()
    }

    /// Fold records that parse but do not belong are refused, naming the file and what differs.
    fn check_refusals(
        dir: &RunDir,
        folds: &[Fold],
        run: &str,
        ids: &dyn Fn(&Fold) -> Vec<String>,
        settings: &RunSettings,
    ) {
        let (f1, f2) = (&folds[0], &folds[1]);
        let p1 = dir.fold_path(1, 1);
        let p2 = dir.fold_path(1, 2);
        let original = std::fs::read(&p2).unwrap();
        let refused = |what: &str| {
            let e = dir.finished(f2, run, &refs(&ids(f2)), 0.1).unwrap_err().to_string();
            assert!(e.contains("r01-f002.json") && e.contains(what), "{what}: {e}");
            std::fs::write(&p2, &original).unwrap();
        };
        // Another fold's record copied over this one.
        std::fs::copy(&p1, &p2).unwrap();
        refused("holds repeat 1 fold 1");
        // Another run's record.
        let other = RunSettings { seed: 9, ..settings.clone() }.identity();
        assert!(
            dir.finished(f1, &other, &refs(&ids(f1)), 0.1).unwrap_err().to_string().contains("belongs to another run")
        );
        // Edited: a prediction, a metric, the fold's label of its predictions.
        let edit = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v: serde_json::Value = serde_json::from_slice(&original).unwrap();
            f(&mut v);
            std::fs::write(&p2, serde_json::to_vec(&v).unwrap()).unwrap();
        };
        edit(&|v| v["predictions"][0]["predicted"] = serde_json::json!(123.0));
        refused("predictions were changed");
        edit(&|v| v["result"]["pearson"] = serde_json::json!(0.99));
        refused("metrics are not those of its predictions");
        edit(&|v| v["predictions"][0]["id"] = serde_json::json!("someone else"));
        refused("are not of this fold's");
        edit(&|v| v["run"] = serde_json::json!(""));
        refused("names no run");
        // The fold's test lines changed (other data with the same settings can't, but a changed
        // plan could): the record's test ids no longer match.
        let mut moved = f2.clone();
        moved.test.swap(0, 1);
        let e = dir.finished(&moved, run, &refs(&ids(&moved)), 0.1).unwrap_err().to_string();
        assert!(e.contains("test lines differ"), "{e}");
        assert!(dir.finished(f2, run, &refs(&ids(f2)), 0.1).unwrap().is_some());
    }
}
