//! End to end: every neural model cross-validates through the real binary on both bundled
//! datasets and all three genotype formats, writes its history and resolved config, and honours
//! `--config`. Epochs are cut to keep the tests small; accuracy runs belong in benches/xtask.

mod common;

use std::path::Path;

use common::{fixture, genopred, predictions, stderr};

const NEURAL: &[&str] = &["dnngp", "deepgs", "dlgwas", "mlp"];

fn tiny_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("tiny.toml");
    std::fs::write(&path, "[train]\nepochs = 2\n").unwrap();
    path
}

fn cv(model: &str, geno: &str, pheno: &str, trait_name: &str, config: &Path, out: &Path) {
    let o = genopred(&[
        "cv",
        "--geno",
        fixture(geno).to_str().unwrap(),
        "--pheno",
        fixture(pheno).to_str().unwrap(),
        "--trait",
        trait_name,
        "--model",
        model,
        "--folds",
        "2",
        "--seed",
        "3",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{model} on {geno} failed: {}", stderr(&o));
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn every_neural_model_runs_on_wheat599_plink() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path());
    for &model in NEURAL {
        let out = tmp.path().join(model);
        cv(model, "wheat599/wheat599.bed", "wheat599/pheno.csv", "yield_env1", &config, &out);
        let s = summary(&out);
        assert_eq!(s["model"], model);
        assert_eq!(s["provenance"]["model_config"]["train"]["epochs"], 2, "{model}: --config not applied");
        assert!(s["provenance"]["backend"].as_str().unwrap().starts_with("flex"));
        let folds = s["folds"].as_array().unwrap();
        assert_eq!(folds.len(), 2);
        for f in folds {
            assert_eq!(f["fit"]["epochs_run"], 2, "{model}");
            assert!(f["fit"]["parameters"].as_u64().unwrap() > 0);
            assert!(f["n_valid"].as_u64().unwrap() > 0, "{model}: no validation subset");
            assert!(f["pearson"].as_f64().unwrap().is_finite());
        }
        assert_eq!(predictions(&out).len(), 599);
        for fold in 1..=2 {
            let history = std::fs::read_to_string(out.join(format!("folds/r01-f{fold:03}.history.csv"))).unwrap();
            let lines: Vec<&str> = history.lines().collect();
            assert_eq!(lines[0], "epoch,train_loss,val_loss,val_metric,lr");
            assert_eq!(lines.len(), 3, "{model}: one history line per epoch");
        }
        // The saved config reproduces the run's settings when read back with --config.
        let saved = std::fs::read_to_string(out.join("config.toml")).unwrap();
        assert!(saved.contains("epochs = 2"), "{saved}");
    }
}

#[test]
fn every_neural_model_reads_maize300_as_plink_vcf_and_csv_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path());
    for &model in NEURAL {
        let mut runs = Vec::new();
        for geno in ["maize300/maize300.bed", "maize300/maize300.vcf.gz", "maize300/maize300_dosage.csv"] {
            let out = tmp.path().join(format!("{model}-{}", geno.rsplit('.').next().unwrap()));
            cv(model, geno, "maize300/pheno.csv", "DTT", &config, &out);
            runs.push(predictions(&out));
        }
        assert_eq!(runs[0].len(), 286);
        // Same seed, same samples, same markers (the same allele counted): the three formats give the
        // same folds, the same genotype matrix and so the same predictions.
        for other in &runs[1..] {
            for (a, b) in runs[0].iter().zip(other) {
                assert_eq!((&a.0, a.2), (&b.0, b.2));
                assert!((a.4 - b.4).abs() < 1e-9, "{model}: {} predicted {} vs {}", a.0, a.4, b.4);
            }
            let (x, y): (Vec<f64>, Vec<f64>) = runs[0].iter().zip(other).map(|(a, b)| (a.4, b.4)).unzip();
            let r = genopred_core::metrics::pearson(&x, &y);
            assert!(r > 0.95, "{model}: predictions from different formats correlate only {r}");
        }
    }
}

/// Determinism across processes, for every model: the same seed writes a byte-identical
/// `predictions.csv` on the flex backend (dropout, shuffles and initial weights included).
#[test]
fn same_seed_same_predictions_through_the_cli_for_every_model() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path());
    let gblup_config = tmp.path().join("gblup.toml");
    std::fs::write(&gblup_config, "").unwrap();
    for &model in NEURAL.iter().chain(&["gblup"]) {
        let config = if model == "gblup" { &gblup_config } else { &config };
        let (a, b) = (tmp.path().join(format!("{model}-a")), tmp.path().join(format!("{model}-b")));
        cv(model, "maize300/maize300.bed", "maize300/pheno.csv", "DTT", config, &a);
        cv(model, "maize300/maize300.bed", "maize300/pheno.csv", "DTT", config, &b);
        let read = |d: &Path| std::fs::read_to_string(d.join("predictions.csv")).unwrap();
        assert!(read(&a) == read(&b), "{model}: same seed, different predictions");
    }
}

#[test]
fn dnngp_reports_which_rows_its_pca_saw() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("all.toml");
    std::fs::write(&config, "pca_fit = \"all\"\nvariant = \"v3\"\n[train]\nepochs = 1\n").unwrap();
    let out = tmp.path().join("out");
    cv("dnngp", "maize300/maize300.bed", "maize300/pheno.csv", "DTT", &config, &out);
    let s = summary(&out);
    assert_eq!(s["provenance"]["model_config"]["pca_fit"], "all");
    for f in s["folds"].as_array().unwrap() {
        assert_eq!(f["fit"]["input"]["pca_fit"], "all");
        assert_eq!(f["fit"]["input"]["pca_rows"], 286);
    }
}

#[test]
fn bad_model_configs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("unknown.toml", "[train]\nepoch = 3\n", "unknown key `train.epoch`"),
        ("range.toml", "dropout = 1.5\n", "dropout = 1.5 is out of range"),
        ("syntax.toml", "dropout = \n", "not valid TOML"),
        ("lr.toml", "[train]\nlearning_rate = 0.0\n", "train.learning_rate"),
    ];
    for (name, text, expected) in cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        let o = genopred(&[
            "cv",
            "--geno",
            fixture("maize300/maize300.bed").to_str().unwrap(),
            "--pheno",
            fixture("maize300/pheno.csv").to_str().unwrap(),
            "--trait",
            "DTT",
            "--model",
            "dlgwas",
            "--config",
            path.to_str().unwrap(),
            "--out",
            tmp.path().join("o").to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{name}");
        let e = stderr(&o);
        assert!(e.contains(expected) && e.contains(name), "{name}: {e}");
    }
    let o = genopred(&["cv", "--geno", "x.bed", "--pheno", "p.csv", "--trait", "t", "--backend", "cuda", "--out", "o"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cuda"), "{}", stderr(&o));
}
