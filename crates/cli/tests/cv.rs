//! End-to-end `genopred cv` and `genopred info` on the bundled fixtures.

mod common;

use common::{fixture, genopred, predictions, stderr, summary};

fn cv(geno: &str, extra: &[&str]) -> (tempfile::TempDir, std::process::Output) {
    cv_model("gblup", geno, extra)
}

/// `genopred cv` of `model` on `geno` with maize300's DTT, into a fresh folder.
fn cv_model(model: &str, geno: &str, extra: &[&str]) -> (tempfile::TempDir, std::process::Output) {
    let out = tempfile::tempdir().unwrap();
    let pheno = fixture("maize300/pheno.csv");
    let geno = fixture(geno);
    let mut args = vec![
        "cv",
        "--geno",
        geno.to_str().unwrap(),
        "--pheno",
        pheno.to_str().unwrap(),
        "--trait",
        "DTT",
        "--model",
        model,
        "--out",
        out.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = genopred(&args);
    (out, o)
}

#[test]
fn plink_vcf_and_csv_give_the_same_predictions() {
    let (plink, o) = cv("maize300/maize300.bed", &["--folds", "5", "--seed", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = predictions(plink.path());
    assert_eq!(reference.len(), 286, "14 hybrids lack DTT");
    for other in ["maize300/maize300.vcf.gz", "maize300/maize300_dosage.csv"] {
        let (dir, o) = cv(other, &["--folds", "5", "--seed", "3"]);
        assert!(o.status.success(), "{other}: {}", stderr(&o));
        let got = predictions(dir.path());
        assert_eq!(got.len(), reference.len());
        for (a, b) in reference.iter().zip(&got) {
            assert_eq!((&a.0, a.2), (&b.0, b.2), "same samples in the same folds");
            assert!((a.4 - b.4).abs() < 1e-8 * a.4.abs().max(1.0), "{other}: {} predicted {} vs {}", a.0, b.4, a.4);
        }
    }
}

#[test]
fn summary_has_the_documented_fields_and_sane_accuracy() {
    let (dir, o) = cv("maize300/maize300.bed", &["--folds", "5", "--seed", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(dir.path());
    assert_eq!(s["model"], "gblup");
    assert_eq!(s["trait"], "DTT");
    assert_eq!(s["n_samples"], 286);
    assert_eq!(s["n_markers"], 472);
    assert_eq!(s["seed"], 1);
    let folds = s["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 5);
    for f in folds {
        for key in ["fold", "n_train", "n_test", "pearson", "spearman", "mse", "mae", "r2", "ndcg", "seconds"] {
            assert!(f.get(key).is_some_and(|v| !v.is_null()), "fold lacks {key}: {f}");
        }
        assert_eq!(f["n_train"].as_u64().unwrap() + f["n_test"].as_u64().unwrap(), 286);
    }
    for metric in ["pearson", "spearman", "mse", "mae", "r2", "ndcg"] {
        assert!(s["metrics"][metric]["mean"].is_f64() && s["metrics"][metric]["sd"].is_f64(), "{metric}");
    }
    // Days to tasseling in this CUBIC hybrid panel is highly heritable.
    let r = s["metrics"]["pearson"]["mean"].as_f64().unwrap();
    assert!(r > 0.4 && r < 1.0, "pearson {r}");
    let inputs = &s["provenance"]["inputs"];
    assert_eq!(inputs["geno"]["sha256"]["bed"].as_str().unwrap().len(), 64);
    // Peak memory, and per genotype held (286 × 472 calls: a few MiB of process for 135,000
    // stored calls is tens of bytes each; the point is the record, read for large data).
    let peak = s["provenance"]["peak_rss_bytes"].as_f64().unwrap();
    let per = s["provenance"]["bytes_per_genotype"].as_f64().unwrap();
    assert!((per - peak / (286.0 * 472.0)).abs() < 1e-6 * per, "{per} vs {peak}");
    // The PLINK set's hard calls are held 2 bits each: 118 bytes per sample.
    assert_eq!(s["provenance"]["genotype_bytes"].as_u64(), Some(286 * 118));
    // Each finished fold is on disk on its own.
    assert_eq!(std::fs::read_dir(dir.path().join("folds")).unwrap().count(), 5);
    // The summary reads back as the typed record tools use (the pooled sd of one repeat is
    // undefined: written as null, read as NaN).
    let typed = genopred_core::records::RunSummary::read(&dir.path().join("summary.json")).unwrap();
    assert_eq!((typed.folds.len(), typed.model.as_str()), (5, "gblup"));
    assert!(typed.pooled.pearson.sd.is_nan());
    // The table is printed.
    assert!(String::from_utf8_lossy(&o.stdout).contains("mean ± sd over 5 fold(s)"));
    // The page beside the records: the same numbers, both figures inlined, links to the files.
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let m = &typed.metrics.pearson;
    assert!(html.contains(&format!("<td>Pearson r</td><td>{:.3} ± {:.3}</td>", m.mean, m.sd)), "{html}");
    for f in &typed.folds {
        assert!(
            html.contains(&format!(
                "<td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td>",
                f.label, f.n_train, f.n_test, f.metrics.pearson
            )),
            "fold {}: {html}",
            f.label
        );
    }
    assert_eq!(html.matches("<svg ").count(), 2, "accuracy per fold and observed against predicted");
    assert!(html.contains("DTT: Pearson r per fold") && html.contains("DTT: test-fold predictions"));
    assert!(
        html.contains("286 lines with a value for the trait, 472 markers; 5-fold cross-validation, seed 1"),
        "{html}"
    );
    assert!(html.contains("Each fold's QC and scaling saw only its training lines"), "GBLUP has no early stopping");
    for file in ["predictions.csv", "summary.json", "run.json", "config.toml", "folds/"] {
        assert!(html.contains(&format!("<a href=\"{file}\">")), "{file}");
    }
    assert!(!html.contains(" src=") && !html.contains("tuning.csv"));
    // 286 lines and 472 markers: exact REML in the space of lines, said per fold and on the page.
    assert!(folds.iter().all(|f| f["fit"]["method"] == "individual"), "{}", folds[0]["fit"]);
    assert!(html.contains("<td>REML computation</td><td>individual (5 folds)</td>"), "{html}");
}

#[test]
fn gblup_matrix_free_from_the_config_agrees_with_the_exact_fit() {
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "method = \"matrix-free\"\nprobes = 40\n").unwrap();
    let (exact, o) = cv("maize300/maize300.bed", &["--folds", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (free, o) = cv("maize300/maize300.bed", &["--folds", "3", "--config", config.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (e, f) = (summary(exact.path()), summary(free.path()));
    for (a, b) in e["folds"].as_array().unwrap().iter().zip(f["folds"].as_array().unwrap()) {
        assert_eq!(b["fit"]["method"], "matrix-free");
        assert_eq!(b["fit"]["matrix_free"]["probes"], 40);
        assert!(b["fit"]["matrix_free"]["iterations"].as_u64().unwrap() > 0);
        let h2 = |x: &serde_json::Value| x["fit"]["reml"]["h2"].as_f64().unwrap();
        assert!((h2(a) - h2(b)).abs() < 0.1, "h² {} vs exact {}", h2(b), h2(a));
    }
    let r = |s: &serde_json::Value| s["metrics"]["pearson"]["mean"].as_f64().unwrap();
    assert!((r(&e) - r(&f)).abs() < 0.01, "r {} vs exact {}", r(&f), r(&e));
    let html = std::fs::read_to_string(free.path().join("report.html")).unwrap();
    assert!(html.contains("<td>REML computation</td><td>matrix-free (3 folds)</td>"), "{html}");
}

#[test]
fn same_seed_same_predictions_other_seed_other_folds() {
    let (a, _) = cv("maize300/maize300.bed", &["--folds", "4", "--seed", "7"]);
    let (b, _) = cv("maize300/maize300.bed", &["--folds", "4", "--seed", "7"]);
    let (c, _) = cv("maize300/maize300.bed", &["--folds", "4", "--seed", "8"]);
    assert_eq!(predictions(a.path()), predictions(b.path()));
    let folds = |d: &tempfile::TempDir| predictions(d.path()).into_iter().map(|p| p.2).collect::<Vec<_>>();
    assert_ne!(folds(&a), folds(&c));
}

#[test]
fn repeated_grouped_and_file_folds() {
    let (dir, o) = cv("maize300/maize300.bed", &["--folds", "3", "--repeats", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(dir.path());
    assert_eq!(s["folds"].as_array().unwrap().len(), 6);
    assert_eq!(predictions(dir.path()).len(), 572);
    // One column per repeat in the page's figure.
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("3-fold cross-validation, 2 repeats") && html.contains("gblup · repeat 2"), "{html}");

    let (dir, o) = cv("maize300/maize300.bed", &["--group-by", "pop_class"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(dir.path());
    let labels: Vec<&str> = s["folds"].as_array().unwrap().iter().map(|f| f["label"].as_str().unwrap()).collect();
    assert_eq!(labels.len(), 6, "{labels:?}");
    assert_eq!(s["provenance"]["scheme"]["kind"], "grouped");

    // Folds from a file: reuse the grouped partition's test sets as labels.
    let preds = predictions(dir.path());
    let file = dir.path().join("folds.csv");
    let mut text = String::from("id,fold\n");
    for (id, _, fold, _, _) in &preds {
        text.push_str(&format!("{id},{fold}\n"));
    }
    std::fs::write(&file, text).unwrap();
    let (dir2, o) = cv("maize300/maize300.bed", &["--folds-file", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again = predictions(dir2.path());
    for (a, b) in preds.iter().zip(&again) {
        assert_eq!((&a.0, a.2), (&b.0, b.2));
        assert!((a.4 - b.4).abs() < 1e-9);
    }
}

#[test]
fn info_describes_genotypes_and_phenotypes() {
    let geno = fixture("maize300/maize300.bed");
    let pheno = fixture("maize300/pheno.csv");
    let o = genopred(&["info", "--geno", geno.to_str().unwrap(), "--pheno", pheno.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for want in [
        "samples         300",
        "markers         472",
        "chromosomes     9",
        "MAF spectrum",
        "300 also genotyped",
        "DTT",
        "tester",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(text.contains("levels=30"), "{text}");
}

#[test]
fn only_fold_runs_the_same_folds_as_a_whole_run() {
    let (all, o) = cv("maize300/maize300.bed", &["--folds", "4", "--seed", "7"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (some, o) =
        cv("maize300/maize300.bed", &["--folds", "4", "--seed", "7", "--only-fold", "2", "--only-fold", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want: Vec<_> = predictions(all.path()).into_iter().filter(|p| p.2 == 2 || p.2 == 4).collect();
    assert!(!want.is_empty());
    assert_eq!(predictions(some.path()), want);
    let (_, o) = cv("maize300/maize300.bed", &["--folds", "4", "--only-fold", "5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--only-fold 5"), "{}", stderr(&o));
}

#[test]
fn rkhs_reports_its_bandwidth_profile_and_predicts_as_well_as_gblup() {
    let run = |model: &str| {
        let (out, o) = cv_model(model, "maize300/maize300.bed", &["--folds", "4"]);
        assert!(o.status.success(), "{model}: {}", stderr(&o));
        summary(out.path())
    };
    let (rkhs, gblup) = (run("rkhs"), run("gblup"));
    assert_eq!(rkhs["model"], "rkhs");
    for f in rkhs["folds"].as_array().unwrap() {
        let fit = &f["fit"];
        let profile = fit["profile"].as_array().unwrap();
        assert_eq!(profile.len(), 7, "{fit}");
        let best = profile.iter().map(|p| p["log_likelihood"].as_f64().unwrap()).fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(fit["reml"]["log_likelihood"].as_f64(), Some(best), "REML's choice is the profile's maximum");
        assert!(profile.iter().any(|p| p["bandwidth"] == fit["bandwidth"]));
        assert!(fit["median_d2"].as_f64().unwrap() > 0.0);
    }
    // The same folds (same seed); RKHS is at least about as accurate as GBLUP on DTT.
    let r = |s: &serde_json::Value| s["metrics"]["pearson"]["mean"].as_f64().unwrap();
    assert!(r(&rkhs) > r(&gblup) - 0.05, "rkhs {} vs gblup {}", r(&rkhs), r(&gblup));
}
