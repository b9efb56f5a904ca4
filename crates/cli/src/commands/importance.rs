//! `genopred importance`: which markers a model relies on. Neural models: saliency
//! `|∂ŷ/∂dosage|` of every test sample over cross-validation folds (DLGWAS's maps, SmoothGrad as
//! an option). GBLUP: the rrBLUP-equivalent marker effects. Beside them, single-marker
//! regressions with principal components as covariates (`gwas.csv`), the rank correlation of the
//! two, Manhattan plots of both, and recall of known causal markers when they are given.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use genopred_core::cv::{FoldRequest, Purpose, derive_seed, plan_folds};
use genopred_core::evaluation::{CvOptions, kept_markers, run_fold_sharing, summarise};
use genopred_core::gram::SharedWork;
use genopred_core::gwas::marker_tests;
use genopred_core::metrics::spearman;
use genopred_core::output::write_csv;
use genopred_core::qc::MarkerQc;
use genopred_core::records::{GwasSummary, ImportanceRecord, Recall};
use genopred_core::saliency_stats::SaliencyStats;
use genopred_core::{Marker, SaliencyOptions};
use genopred_plot::{ManhattanPoint, manhattan};

use crate::inputs::{FitArgs, LoadedData};
use crate::jobs::{JobArgs, cores, run_all};
use crate::progress::Progress;
use crate::provenance::{VERSION, command_line};

/// Arguments of `genopred importance`.
#[derive(Debug, Args)]
pub struct ImportanceArgs {
    #[command(flatten)]
    fit: FitArgs,
    /// Number of cross-validation folds; saliency is taken on each fold's test samples.
    #[arg(long, default_value_t = 5, conflicts_with = "folds_file")]
    folds: usize,
    /// Folds from a file with columns `id,fold` instead.
    #[arg(long, value_name = "FILE")]
    folds_file: Option<PathBuf>,
    /// SmoothGrad: average each sample's gradient over this many noisy copies of its input
    /// (0: the plain gradient, as DLGWAS computes it).
    #[arg(long, default_value_t = 0, value_name = "N")]
    smoothgrad: usize,
    /// SmoothGrad's noise sd as a fraction of the input's range.
    #[arg(long, default_value_t = SaliencyOptions::default().noise)]
    smoothgrad_noise: f64,
    /// Principal components used as covariates in the single-marker tests.
    #[arg(long, default_value_t = 5)]
    gwas_pcs: usize,
    /// How many top markers the plots label.
    #[arg(long, default_value_t = 10)]
    label_top: usize,
    /// File of known causal marker ids (one per line; simulations): report recall@k.
    #[arg(long, value_name = "FILE")]
    causal: Option<PathBuf>,
    #[command(flatten)]
    jobs: JobArgs,
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// What one fold contributes: running statistics of its test samples' saliency over its kept
/// markers (neural models; never the `test × markers` matrix) or the marker effects of its fit
/// (GBLUP).
enum FoldScores {
    Saliency(SaliencyStats),
    Effects(Vec<f64>),
}

/// One line of `importance.csv`.
#[derive(Debug, serde::Serialize)]
struct ImportanceRow<'a> {
    marker: &'a str,
    chrom: &'a str,
    pos: u64,
    score: Option<f64>,
    rank: Option<usize>,
    /// Neural models: median saliency over samples (estimated to 1.6 %, see
    /// `genopred_core::saliency_stats`).
    median: Option<f64>,
    /// GBLUP: the signed effect (mean over folds).
    effect: Option<f64>,
    /// How many test samples (neural) or folds (GBLUP) the score averages.
    n: usize,
}

/// One line of `gwas.csv`.
#[derive(Debug, serde::Serialize)]
struct GwasRow<'a> {
    marker: &'a str,
    chrom: &'a str,
    pos: u64,
    beta: Option<f64>,
    se: Option<f64>,
    t: Option<f64>,
    p: Option<f64>,
    score: Option<f64>,
    rank: Option<usize>,
}

/// Ranks (1 = highest) of the finite scores; `None` elsewhere. Ties keep file order.
fn ranks(scores: &[Option<f64>]) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..scores.len()).filter(|&j| scores[j].is_some_and(f64::is_finite)).collect();
    order.sort_by(|&a, &b| scores[b].unwrap_or(f64::NAN).total_cmp(&scores[a].unwrap_or(f64::NAN)));
    let mut out = vec![None; scores.len()];
    for (k, &j) in order.iter().enumerate() {
        out[j] = Some(k + 1);
    }
    out
}

/// Fraction of `causal` markers ranked within the top `k`.
fn recall_at(ranks: &[Option<usize>], causal: &[usize], k: usize) -> f64 {
    if causal.is_empty() {
        return f64::NAN;
    }
    causal.iter().filter(|&&j| ranks[j].is_some_and(|r| r <= k)).count() as f64 / causal.len() as f64
}

/// Runs the analysis and writes `importance.csv`, `gwas.csv`, `importance.json` and the plots.
pub fn run(args: &ImportanceArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let setup = args.fit.model()?;
    let name = setup.entry.name();
    let options = args.fit.options(CvOptions::default().ndcg_top)?;
    let qc = options.qc;
    if !(args.smoothgrad_noise > 0.0 && args.smoothgrad_noise.is_finite()) {
        bail!("--smoothgrad-noise must be > 0, got {}", args.smoothgrad_noise);
    }
    let LoadedData { dataset, read_report, pheno, .. } = args.fit.load(qc.max_sample_missing, None)?;
    let markers = dataset.geno.markers().to_vec();
    let m = markers.len();
    let causal = match &args.causal {
        Some(path) => Some(read_causal(path, &markers)?),
        None => None,
    };
    let request = match &args.folds_file {
        Some(path) => FoldRequest::File(path.clone()),
        None => FoldRequest::Kfold { k: args.folds, repeats: 1, seed: args.fit.seed },
    };
    let (folds, _) = plan_folds(&dataset, &request)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;

    // Per marker: running statistics of every test sample's saliency (neural), or the effect per
    // fold (GBLUP).
    let mut saliency = SaliencyStats::new(m);
    let mut effects: Vec<Vec<f64>> = vec![Vec::new(); m];
    let saliency_options = SaliencyOptions {
        smoothgrad: args.smoothgrad,
        noise: args.smoothgrad_noise,
        seed: derive_seed(args.fit.seed, Purpose::SmoothGrad, &[]),
    };
    let plan = args.jobs.plan(cores(), folds.len())?;
    let progress = Progress::new(format!("{name} importance"), folds.len());
    let (entry, device, config) = (setup.entry, &setup.device, args.fit.config.as_deref());
    // Each job returns its fold's result and its scores; they are gathered in fold order, so
    // the output does not depend on --jobs.
    // The folds share work (GBLUP's X Xᵀ).
    let work = SharedWork::new();
    let per_fold = run_all(&folds, plan, |fold| {
        let observer = progress.fold(format!("fold {}", fold.label));
        let mut model = entry.build(config, device)?.model;
        let result = run_fold_sharing(&dataset, fold, model.as_mut(), &options, &observer, Some(&work))?;
        // The test rows at the fold's kept markers (a copy of those rows only), streamed through
        // the model in blocks of rows into per-marker statistics. Each fold draws its own
        // SmoothGrad noise.
        let test_geno = dataset.geno.select_samples(&fold.test).select_markers(&result.kept);
        let test_rows: Vec<usize> = (0..fold.test.len()).collect();
        let fold_options = SaliencyOptions {
            seed: derive_seed(saliency_options.seed, Purpose::SmoothGrad, &[fold.repeat as u64, fold.index as u64]),
            ..saliency_options
        };
        let mut stats = SaliencyStats::new(result.kept.len());
        let has_saliency = model
            .saliency_blocks(&test_geno, &test_rows, &fold_options, &mut |block| {
                stats.add_rows(block);
                Ok(())
            })
            .map_err(|e| anyhow::anyhow!("saliency of {name} on fold {}: {e}", fold.label))?;
        drop(test_geno);
        let scores = if has_saliency {
            FoldScores::Saliency(stats)
        } else if let Some(e) = model.marker_effects() {
            FoldScores::Effects(e)
        } else {
            bail!("model {name} has neither input gradients nor marker effects");
        };
        Ok((result, scores))
    });
    progress.finish();
    let mut results = Vec::with_capacity(folds.len());
    let mut neural = false;
    for (result, scores) in per_fold? {
        match scores {
            FoldScores::Saliency(stats) => {
                neural = true;
                saliency.merge_into(&stats, &result.kept);
            }
            FoldScores::Effects(e) => {
                for (jj, &j) in result.kept.iter().enumerate() {
                    effects[j].push(e[jj]);
                }
            }
        }
        results.push(result);
    }
    let cv_summary = summarise(&results, options.ndcg_top);
    let (method, scores, column): (&str, Vec<Option<f64>>, Vec<Option<f64>>) = if neural {
        let method = if args.smoothgrad > 0 { "smoothgrad" } else { "saliency" };
        let scores = (0..m).map(|j| saliency.mean(j)).collect();
        let medians = (0..m).map(|j| saliency.median(j)).collect();
        (method, scores, medians)
    } else {
        let mean_effect: Vec<Option<f64>> =
            effects.iter().map(|e| (!e.is_empty()).then(|| e.iter().sum::<f64>() / e.len() as f64)).collect();
        ("marker_effects", mean_effect.iter().map(|e| e.map(f64::abs)).collect(), mean_effect)
    };
    let counts: Vec<usize> = (0..m).map(|j| (saliency.count(j) as usize).max(effects[j].len())).collect();
    let importance_ranks = ranks(&scores);
    let rows = (0..m).map(|j| ImportanceRow {
        marker: &markers[j].id,
        chrom: &markers[j].chrom,
        pos: markers[j].pos,
        score: scores[j],
        rank: importance_ranks[j],
        median: if neural { column[j] } else { None },
        effect: if neural { None } else { column[j] },
        n: counts[j],
    });
    write_csv(&args.out.join("importance.csv"), rows, b',')?;

    // Single-marker tests on every sample with the trait (a description of the data, not an
    // evaluation), after the same marker QC.
    let all: Vec<usize> = (0..dataset.len()).collect();
    let gwas_qc = MarkerQc::fit(&dataset.geno, &all, &qc)?;
    let gwas = marker_tests(&kept_markers(&dataset.geno, &gwas_qc.kept), &all, &dataset.y, args.gwas_pcs)?;
    let mut gwas_by_marker = vec![None; m];
    for (jj, &j) in gwas_qc.kept.iter().enumerate() {
        gwas_by_marker[j] = gwas.tests[jj];
    }
    let gwas_scores: Vec<Option<f64>> = gwas_by_marker.iter().map(|t| t.map(|t| t.score)).collect();
    let gwas_ranks = ranks(&gwas_scores);
    let rows = (0..m).map(|j| {
        let t = gwas_by_marker[j];
        GwasRow {
            marker: &markers[j].id,
            chrom: &markers[j].chrom,
            pos: markers[j].pos,
            beta: t.map(|t| t.beta),
            se: t.map(|t| t.se),
            t: t.map(|t| t.t),
            p: t.map(|t| t.p),
            score: gwas_scores[j],
            rank: gwas_ranks[j],
        }
    });
    write_csv(&args.out.join("gwas.csv"), rows, b',')?;

    let both: Vec<usize> = (0..m).filter(|&j| scores[j].is_some() && gwas_scores[j].is_some()).collect();
    let rho = spearman(
        &both.iter().map(|&j| scores[j].unwrap_or(0.0)).collect::<Vec<_>>(),
        &both.iter().map(|&j| gwas_scores[j].unwrap_or(0.0)).collect::<Vec<_>>(),
    );
    let recall = causal.as_ref().map(|c| {
        let ks = [c.len(), 2 * c.len(), 5 * c.len()];
        let at = |f: &dyn Fn(usize) -> f64| ks.iter().map(|&k| (k.to_string(), f(k))).collect();
        Recall {
            causal: c.len(),
            chance_at_k: at(&|k| (k as f64 / m as f64).min(1.0)),
            importance: at(&|k| recall_at(&importance_ranks, c, k)),
            gwas: at(&|k| recall_at(&gwas_ranks, c, k)),
        }
    });

    let point = |j: usize, s: Option<f64>| ManhattanPoint {
        chrom: markers[j].chrom.clone(),
        pos: markers[j].pos,
        score: s.unwrap_or(f64::NAN),
        label: markers[j].id.clone(),
    };
    let y_desc = match method {
        "marker_effects" => "|marker effect| (trait units per allele)",
        _ => "mean |∂prediction/∂dosage|",
    };
    manhattan(
        &(0..m).map(|j| point(j, scores[j])).collect::<Vec<_>>(),
        &format!("{name}: {} for {}", method.replace('_', " "), args.fit.trait_name),
        y_desc,
        args.label_top,
        &args.out.join("importance.png"),
        &args.out.join("importance.svg"),
    )?;
    manhattan(
        &(0..m).map(|j| point(j, gwas_scores[j])).collect::<Vec<_>>(),
        &format!("single-marker tests ({} PCs) for {}", gwas.pcs, args.fit.trait_name),
        "-log10 p",
        args.label_top,
        &args.out.join("gwas.png"),
        &args.out.join("gwas.svg"),
    )?;

    let record = ImportanceRecord {
        format: ImportanceRecord::FORMAT,
        genopred_version: VERSION.into(),
        command: command_line(),
        model: name.into(),
        model_config: setup.built.config.clone(),
        backend: setup.backend_label.clone(),
        trait_name: args.fit.trait_name.clone(),
        method: method.into(),
        smoothgrad: (args.smoothgrad > 0).then_some(saliency_options),
        folds: folds.len(),
        seed: args.fit.seed,
        cv_metrics: cv_summary.metrics,
        gwas: GwasSummary {
            samples: gwas.n,
            pcs: gwas.pcs,
            df: gwas.df,
            markers_tested: gwas.tests.iter().flatten().count(),
        },
        spearman_importance_vs_gwas: rho,
        markers_compared: both.len(),
        recall,
        inputs: args.fit.inputs(&read_report, &pheno)?,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    record.write(&args.out.join("importance.json"))?;

    let top: Vec<&str> = {
        let mut order: Vec<usize> = (0..m).filter(|&j| importance_ranks[j].is_some()).collect();
        order.sort_by_key(|&j| importance_ranks[j]);
        order.iter().take(5).map(|&j| markers[j].id.as_str()).collect()
    };
    println!(
        "{name} {} over {} folds (CV r = {:.3}); top markers: {}",
        method.replace('_', " "),
        folds.len(),
        cv_summary.metrics.pearson.mean,
        top.join(", ")
    );
    println!(
        "rank correlation with single-marker tests ({} PCs): Spearman {rho:.3} over {} markers",
        gwas.pcs,
        both.len()
    );
    if let Some(r) = &record.recall {
        let k = r.causal;
        let at = |map: &std::collections::BTreeMap<String, f64>| map.get(&k.to_string()).copied().unwrap_or(f64::NAN);
        println!(
            "recall@{k} of the {k} causal markers: importance {:.2}, single-marker tests {:.2} (chance {:.3})",
            at(&r.importance),
            at(&r.gwas),
            k as f64 / m as f64
        );
    }
    eprintln!("wrote importance.csv, gwas.csv, importance.json and plots (PNG, SVG) to {}", args.out.display());
    Ok(())
}

/// Reads marker ids (one per line, `#` comments) and returns their indices; unknown ids are an
/// error naming the line.
fn read_causal(path: &Path, markers: &[Marker]) -> Result<Vec<usize>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let index: std::collections::HashMap<&str, usize> =
        markers.iter().enumerate().map(|(j, m)| (m.id.as_str(), j)).collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let id = line.split('#').next().unwrap_or("").trim();
        if id.is_empty() {
            continue;
        }
        let Some(&j) = index.get(id) else {
            bail!("{}: line {}: marker '{id}' is not in the genotype file", path.display(), line_no + 1);
        };
        if seen.insert(j) {
            out.push(j);
        }
    }
    if out.is_empty() {
        bail!("{}: no marker ids", path.display());
    }
    Ok(out)
}
