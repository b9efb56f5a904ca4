//! `genopred train` and `genopred predict` end to end: train on part of the maize fixture,
//! predict the rest from files whose markers are shuffled, allele-swapped, dropped or unnamed.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::{fails_with, fixture, genopred, stderr};
use genopred_core::GenotypeMatrix;
use genopred_core::genotype::MISSING;

/// Every model of the catalogue (as the binary lists them) and whether it computes on the CPU
/// (classical models, run at their defaults; the others train for 3 epochs).
fn models() -> Vec<(String, bool)> {
    let o = genopred(&["models", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listing: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let models: Vec<(String, bool)> = listing["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().to_string(), m["compute"] == "cpu"))
        .collect();
    assert!(models.len() >= 8, "{models:?}");
    models
}

/// Samples of the phenotype file used for training (the rest are "candidates").
const N_TRAIN: usize = 200;

fn maize() -> GenotypeMatrix {
    genopred_core::read_genotypes(&fixture("maize300/maize300.bed"), None).expect("fixture").0
}

struct Setup {
    dir: tempfile::TempDir,
    pheno: PathBuf,
    config: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("maize300/pheno.csv")).unwrap();
    let pheno = dir.path().join("pheno_train.csv");
    std::fs::write(&pheno, text.lines().take(N_TRAIN + 1).collect::<Vec<_>>().join("\n")).unwrap();
    let config = dir.path().join("quick.toml");
    std::fs::write(&config, "[train]\nepochs = 3\n").unwrap();
    std::fs::write(dir.path().join("quick-ensemble.toml"), "[member.deepgs.train]\nepochs = 3\n").unwrap();
    Setup { dir, pheno, config }
}

fn train(s: &Setup, model: &str, extra: &[&str]) -> PathBuf {
    let out = s.dir.path().join(format!("model_{model}"));
    let bed = fixture("maize300/maize300.bed");
    let mut args = vec![
        "train",
        "--geno",
        bed.to_str().unwrap(),
        "--pheno",
        s.pheno.to_str().unwrap(),
        "--trait",
        "DTT",
        "--model",
        model,
        "--out",
        out.to_str().unwrap(),
    ];
    // The neural models' short schedule (the ensemble's for its network member); the classical
    // models run at their defaults.
    let ensemble = s.dir.path().join("quick-ensemble.toml");
    if model == "ensemble" {
        args.extend(["--config", ensemble.to_str().unwrap()]);
    } else if !models().iter().any(|(m, cpu)| m == model && *cpu) {
        args.extend(["--config", s.config.to_str().unwrap()]);
    }
    args.extend(extra);
    let o = genopred(&args);
    assert!(o.status.success(), "train {model}: {}", stderr(&o));
    out
}

/// Runs `predict` and returns (id → predicted, stderr); checks ranks.
fn predict(model: &Path, geno: &Path, out: &Path, extra: &[&str]) -> (HashMap<String, f64>, String) {
    let mut args = vec![
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--geno",
        geno.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let o = genopred(&args);
    let err = stderr(&o);
    assert!(o.status.success(), "predict {}: {err}", geno.display());
    let mut rdr = csv::Reader::from_path(out).unwrap();
    assert_eq!(rdr.headers().unwrap(), vec!["id", "predicted", "rank"]);
    let rows: Vec<(String, f64, usize)> = rdr
        .records()
        .map(|r| r.unwrap())
        .map(|r| (r[0].into(), r[1].parse().unwrap(), r[2].parse().unwrap()))
        .collect();
    let lower = extra.contains(&"--lower-is-better");
    for (i, w) in rows.windows(2).enumerate() {
        assert_eq!(w[0].2, i + 1);
        assert!(if lower { w[0].1 <= w[1].1 } else { w[0].1 >= w[1].1 }, "ranked best first");
    }
    (rows.into_iter().map(|(id, p, _)| (id, p)).collect(), err)
}

/// How a test VCF differs from the genotypes it is written from.
#[derive(Default)]
struct Edit {
    /// Sample rows to write, in this order.
    samples: Vec<usize>,
    /// Marker columns to write, in this order.
    markers: Vec<usize>,
    /// Columns written with REF/ALT swapped (and dosages flipped to match).
    swap: Vec<usize>,
    /// Columns whose calls are replaced: `None` = `./.`, `Some(d)` = dosage `d`.
    replace: HashMap<usize, Option<u8>>,
    /// Write `.` for every id.
    no_ids: bool,
}

fn gt(dosage: Option<u8>) -> &'static str {
    match dosage {
        None => "./.",
        Some(0) => "0/0",
        Some(1) => "0/1",
        _ => "1/1",
    }
}

/// Writes `g` as a VCF with the edits (the counted allele is ALT, as genopred reads VCFs).
fn write_vcf(path: &Path, g: &GenotypeMatrix, edit: &Edit) {
    let mut s = String::from("##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n");
    s.push_str("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT");
    for &r in &edit.samples {
        write!(s, "\t{}", g.samples()[r]).unwrap();
    }
    s.push('\n');
    for &j in &edit.markers {
        let m = &g.markers()[j];
        let swap = edit.swap.contains(&j);
        let (reference, alt) = if swap { (&m.counted, &m.other) } else { (&m.other, &m.counted) };
        let id = if edit.no_ids { "." } else { m.id.as_str() };
        write!(s, "chr{}\t{}\t{id}\t{reference}\t{alt}\t.\tPASS\t.\tGT", m.chrom, m.pos).unwrap();
        for &r in &edit.samples {
            let code = g.code(r, j);
            let d = match edit.replace.get(&j) {
                Some(d) => *d,
                None => (code != MISSING).then_some(code / 100),
            };
            write!(s, "\t{}", gt(d.map(|d| if swap { 2 - d } else { d }))).unwrap();
        }
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

fn refs(a: &[String]) -> Vec<&str> {
    a.iter().map(String::as_str).collect()
}

/// Training means of the model's markers, from `markers.tsv`.
fn model_means(model: &Path) -> HashMap<String, f64> {
    let mut rdr = csv::ReaderBuilder::new().delimiter(b'\t').from_path(model.join("markers.tsv")).unwrap();
    assert_eq!(rdr.headers().unwrap(), vec!["id", "chrom", "pos", "counted", "other", "mean"]);
    rdr.records().map(|r| r.unwrap()).map(|r| (r[0].to_string(), r[5].parse().unwrap())).collect()
}

#[test]
fn new_samples_predict_the_same_through_shuffled_swapped_and_dropped_markers() {
    let s = setup();
    let g = maize();
    let (n, m) = (g.n_samples(), g.n_markers());
    // Candidates: the samples not in the training phenotypes, in a scrambled order.
    let mut candidates: Vec<usize> = (N_TRAIN..n).collect();
    candidates.reverse();
    candidates.swap(0, 40);
    // Markers in a scrambled order; every third swapped; ten dropped.
    let shuffled: Vec<usize> = (0..m).map(|j| (j * 7 + 3) % m).collect();
    let mut sorted = shuffled.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..m).collect::<Vec<_>>(), "a permutation");
    let swap: Vec<usize> = (0..m).filter(|j| j % 3 == 0).collect();
    let dropped: Vec<usize> = (0..10).map(|k| 11 + k * 37).collect();
    let dir = s.dir.path();
    // The candidates as they came (same samples, same order: neural predictions are f32 sums
    // whose last bits depend on the batch a sample is predicted in).
    let unmodified = dir.join("candidates.vcf");
    write_vcf(&unmodified, &g, &Edit { samples: candidates.clone(), markers: (0..m).collect(), ..Edit::default() });
    let edited = dir.join("candidates_edited.vcf");
    write_vcf(
        &edited,
        &g,
        &Edit { samples: candidates.clone(), markers: shuffled.clone(), swap: swap.clone(), ..Edit::default() },
    );
    let kept: Vec<usize> = shuffled.iter().copied().filter(|j| !dropped.contains(j)).collect();
    let edited_dropped = dir.join("candidates_edited_dropped.vcf");
    write_vcf(
        &edited_dropped,
        &g,
        &Edit { samples: candidates.clone(), markers: kept, swap: swap.clone(), ..Edit::default() },
    );

    for (model, _) in models() {
        let model = model.as_str();
        let model_dir = train(&s, model, &[]);
        for f in ["manifest.json", "config.toml", "markers.tsv"] {
            assert!(model_dir.join(f).is_file(), "{model}: {f}");
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(model_dir.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["model"], *model);
        assert_eq!(manifest["n_samples"].as_u64().unwrap() as usize + 7, N_TRAIN, "7 lines lack DTT");
        assert_eq!(manifest["n_markers"].as_u64(), Some(m as u64));
        assert!(manifest["files"].as_object().unwrap().keys().any(|k| k.starts_with("model/")), "{model}");

        // The training file, every sample, and the candidates' own file.
        let (all, _) = predict(&model_dir, &fixture("maize300/maize300.bed"), &dir.join("all.csv"), &[]);
        assert_eq!(all.len(), n);
        let (base, _) = predict(&model_dir, &unmodified, &dir.join("base.csv"), &[]);
        assert_eq!(base.len(), candidates.len());
        for (id, p) in &base {
            assert!((p - all[id]).abs() <= 1e-6 * p.abs().max(1.0), "{model}: {id}: {p} vs {}", all[id]);
        }
        // Shuffled markers and swapped alleles: identical predictions.
        let (got, err) = predict(&model_dir, &edited, &dir.join("edited.csv"), &[]);
        assert_eq!(got, base, "{model}");
        let flipped = swap.len();
        let wants = format!("{m} of the model's {m} found — {} matched, {flipped} flipped", m - flipped);
        assert!(err.contains(&wants), "{model}: {err}");

        // Ten markers dropped: the same as a file where those markers are imputed — missing calls
        // for models that impute them with the training mean; DLGWAS, whose one-hot input keeps a
        // class for missing calls, gets the class nearest the training mean instead.
        let means = model_means(&model_dir);
        let mut replace = HashMap::new();
        for &j in &dropped {
            let fill = if model == "dlgwas" {
                let code = (means[&g.markers()[j].id] * 100.0).round();
                Some((code / 100.0).round() as u8)
            } else {
                None
            };
            replace.insert(j, fill);
        }
        let imputed_ref = dir.join(format!("candidates_imputed_{model}.vcf"));
        write_vcf(
            &imputed_ref,
            &g,
            &Edit { samples: candidates.clone(), markers: (0..m).collect(), replace, ..Edit::default() },
        );
        let (want, _) = predict(&model_dir, &imputed_ref, &dir.join("imputed.csv"), &[]);
        let (got, err) = predict(&model_dir, &edited_dropped, &dir.join("dropped.csv"), &[]);
        assert_eq!(got, want, "{model}: dropped markers are imputed with training means");
        assert!(err.contains("10 imputed with training means (10 absent, 0 with other alleles)"), "{model}: {err}");
        assert!(got.iter().any(|(id, p)| *p != base[id]), "{model}: imputation changed nothing");
    }
}

#[test]
fn position_matching_threshold_ranking_and_model_folder_checks() {
    let s = setup();
    let g = maize();
    let (n, m) = (g.n_samples(), g.n_markers());
    let dir = s.dir.path();
    let model_dir = train(&s, "gblup", &[]);
    let (base, _) = predict(&model_dir, &fixture("maize300/maize300.bed"), &dir.join("base.csv"), &[]);

    // A VCF without ids: refused by id, identical by chromosome and position (`chr1` = `1`).
    let no_ids = dir.join("no_ids.vcf");
    write_vcf(
        &no_ids,
        &g,
        &Edit { samples: (0..n).collect(), markers: (0..m).collect(), no_ids: true, ..Edit::default() },
    );
    let out = dir.join("p.csv");
    let args = |geno: &Path, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["predict", "--model", model_dir.to_str().unwrap(), "--geno", geno.to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["--out".to_string(), out.to_str().unwrap().to_string()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    fails_with(&refs(&args(&no_ids, &[])), &["only 0 of the model's 472 markers", "--match-by chrom-pos"]);
    let (by_pos, _) = predict(&model_dir, &no_ids, &out, &["--match-by", "chrom-pos"]);
    assert_eq!(by_pos, base);

    // Too few markers: refused below the threshold, accepted when it is lowered.
    let few = dir.join("few.vcf");
    write_vcf(&few, &g, &Edit { samples: (0..n).collect(), markers: (0..m / 2).collect(), ..Edit::default() });
    fails_with(&refs(&args(&few, &[])), &["only 236 of the model's 472 markers (50.0 %)", "--min-marker-overlap 0.8"]);
    let alignment = dir.join("alignment.csv");
    let (_, err) = predict(
        &model_dir,
        &few,
        &out,
        &["--min-marker-overlap", "0.5", "--lower-is-better", "--alignment", alignment.to_str().unwrap()],
    );
    assert!(err.contains("236 imputed"), "{err}");
    let text = std::fs::read_to_string(&alignment).unwrap();
    assert!(text.starts_with("marker,chrom,pos,status,file_marker\n"));
    assert_eq!(text.lines().filter(|l| l.contains(",absent,")).count(), 236);

    // A model trained on a CSV (no alleles) predicts a VCF, with a warning that alleles were
    // not checked; same data, same predictions.
    let csv_model = dir.join("model_csv");
    let csv_geno = fixture("maize300/maize300_dosage.csv");
    let o = genopred(&[
        "train",
        "--geno",
        csv_geno.to_str().unwrap(),
        "--pheno",
        s.pheno.to_str().unwrap(),
        "--trait",
        "DTT",
        "--out",
        csv_model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (from_csv, err) = predict(&csv_model, &fixture("maize300/maize300.vcf.gz"), &out, &[]);
    assert!(err.contains(&format!("{m} without alleles to check")) && err.contains("warning"), "{err}");
    for (id, p) in &from_csv {
        assert!((p - base[id]).abs() < 1e-9, "{id}: {p} vs {}", base[id]);
    }

    // Training into an existing folder needs --force; same seed, same model.
    let again = genopred(&[
        "train",
        "--geno",
        fixture("maize300/maize300.bed").to_str().unwrap(),
        "--pheno",
        s.pheno.to_str().unwrap(),
        "--trait",
        "DTT",
        "--out",
        model_dir.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    let before = std::fs::read(model_dir.join("model/gblup.json")).unwrap();
    train(&s, "gblup", &["--force"]);
    assert_eq!(std::fs::read(model_dir.join("model/gblup.json")).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".genopred"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A damaged or foreign folder is refused with the reason.
    let bed = fixture("maize300/maize300.bed");
    let predict_args = |model: &Path| -> Vec<String> {
        ["predict", "--model", model.to_str().unwrap(), "--geno", bed.to_str().unwrap(), "--out", out.to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    fails_with(&refs(&predict_args(dir)), &["is not a genopred model folder", "genopred train"]);
    fails_with(&refs(&predict_args(&dir.join("nowhere"))), &["does not exist"]);
    let config = model_dir.join("config.toml");
    let original = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{original}\n# edited\n")).unwrap();
    fails_with(&refs(&predict_args(&model_dir)), &["config.toml changed since training"]);
    std::fs::write(&config, original).unwrap();
    std::fs::remove_file(model_dir.join("model/gblup.json")).unwrap();
    fails_with(&refs(&predict_args(&model_dir)), &["model/gblup.json is missing"]);
}
