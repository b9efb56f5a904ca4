//! `genopred importance` on data whose truth is known: `fixtures/sim1000`, simulated with
//! `plink1.9 --simulate-qt` (1,000 samples, 5,000 unlinked markers, 20 causal ones each
//! explaining 2.5 % of the variance; see fixtures/README.md). Importance must rank the causal
//! markers far above chance (recall@k by chance is k / 5,000).

mod common;

use std::path::Path;

use common::{fails_with, fixture, genopred, stderr};

fn run(model: &str, out: &Path, extra: &[&str]) -> serde_json::Value {
    let bed = fixture("sim1000/sim1000.bed");
    let pheno = fixture("sim1000/pheno.csv");
    let causal = fixture("sim1000/causal.txt");
    let mut args = vec![
        "importance",
        "--geno",
        bed.to_str().unwrap(),
        "--pheno",
        pheno.to_str().unwrap(),
        "--trait",
        "qt",
        "--model",
        model,
        "--causal",
        causal.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let o = genopred(&args);
    assert!(o.status.success(), "{model}: {}", stderr(&o));
    serde_json::from_slice(&std::fs::read(out.join("importance.json")).unwrap()).unwrap()
}

fn recall(report: &serde_json::Value, what: &str, k: usize) -> f64 {
    report["recall"][what][k.to_string()].as_f64().unwrap()
}

/// Reads a CSV's column `name` as optional floats.
fn column(path: &Path, name: &str) -> Vec<Option<f64>> {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let idx = rdr.headers().unwrap().iter().position(|h| h == name).unwrap();
    rdr.records().map(|r| r.unwrap()[idx].parse().ok()).collect()
}

#[test]
fn gblup_effects_and_single_marker_tests_find_the_simulated_qtl() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gblup");
    let report = run("gblup", &out, &[]);
    assert_eq!(report["method"], "marker_effects");
    assert_eq!(report["recall"]["causal"], 20);
    // Chance recall@20 is 0.004; measured 0.90 and 0.85.
    assert!(recall(&report, "importance", 20) >= 0.6, "{report}");
    assert!(recall(&report, "gwas", 20) >= 0.6, "{report}");
    assert!(recall(&report, "importance", 100) >= recall(&report, "importance", 20));
    assert!(report["spearman_importance_vs_gwas"].as_f64().unwrap() > 0.5, "{report}");
    assert_eq!(report["gwas"]["pcs"], 5);

    // importance.csv: every marker, ranks 1..=n once each, score = |effect|.
    let csv = out.join("importance.csv");
    let header = std::fs::read_to_string(&csv).unwrap().lines().next().unwrap().to_string();
    assert_eq!(header, "marker,chrom,pos,score,rank,median,effect,n");
    let scores = column(&csv, "score");
    let effects = column(&csv, "effect");
    let mut ranks: Vec<usize> = column(&csv, "rank").into_iter().flatten().map(|r| r as usize).collect();
    assert_eq!(scores.len(), 5000);
    for (s, e) in scores.iter().zip(&effects) {
        assert_eq!(s.unwrap(), e.unwrap().abs());
    }
    ranks.sort_unstable();
    assert_eq!(ranks, (1..=5000).collect::<Vec<_>>());
    let gwas = out.join("gwas.csv");
    let p = column(&gwas, "p");
    let score = column(&gwas, "score");
    for (p, s) in p.iter().zip(&score) {
        let (p, s) = (p.unwrap(), s.unwrap());
        assert!((0.0..=1.0).contains(&p) && (s - -p.log10()).abs() < 1e-9);
    }
    for f in ["importance.png", "gwas.png"] {
        assert_eq!(&std::fs::read(out.join(f)).unwrap()[1..4], b"PNG", "{f}");
    }
    for f in ["importance.svg", "gwas.svg"] {
        let svg = std::fs::read_to_string(out.join(f)).unwrap();
        assert!(svg.starts_with("<svg") && svg.lines().any(|l| l.trim() == "5"), "{f}: chromosome labels");
    }
}

#[test]
fn bayesb_effects_find_the_simulated_qtl() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bayesb");
    // A short chain and three folds keep it to seconds; the QTL still stand out.
    let config = dir.path().join("bayesb.toml");
    std::fs::write(&config, "iterations = 1200\nburn_in = 200\nthin = 2\n").unwrap();
    let report = run("bayesb", &out, &["--folds", "3", "--config", config.to_str().unwrap()]);
    assert_eq!(report["method"], "marker_effects");
    // Chance recall@20 is 0.004.
    assert!(recall(&report, "importance", 20) >= 0.6, "{report}");
}

#[test]
fn rkhs_gradients_find_the_simulated_qtl() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rkhs");
    // Three bandwidths and three folds keep it to seconds.
    let config = dir.path().join("rkhs.toml");
    std::fs::write(&config, "bandwidths = [0.25, 1.0, 4.0]\n").unwrap();
    let report = run("rkhs", &out, &["--folds", "3", "--config", config.to_str().unwrap()]);
    assert_eq!(report["method"], "saliency");
    // Chance recall@20 is 0.004 and recall@100 0.02.
    assert!(recall(&report, "importance", 20) >= 0.4, "{report}");
    assert!(recall(&report, "importance", 100) >= 0.6, "{report}");
    let n = column(&out.join("importance.csv"), "n");
    assert!(n.iter().all(|v| v.unwrap() as usize == 1000), "every sample is a test sample once");
}

#[test]
fn neural_saliency_finds_the_simulated_qtl() {
    let dir = tempfile::tempdir().unwrap();
    // The MLP at its defaults (up to 200 epochs, early stopping): about a minute here.
    let out = dir.path().join("mlp");
    let report = run("mlp", &out, &["--folds", "3"]);
    assert_eq!(report["method"], "saliency");
    // Chance recall@20 is 0.004 and recall@100 0.02; measured 0.80 and 1.00.
    assert!(recall(&report, "importance", 20) >= 0.4, "{report}");
    assert!(recall(&report, "importance", 100) >= 0.6, "{report}");
    assert!(report["spearman_importance_vs_gwas"].as_f64().unwrap() > 0.2, "{report}");
    let n = column(&out.join("importance.csv"), "n");
    assert!(n.iter().all(|v| v.unwrap() as usize == 1000), "every sample is a test sample once");
    let median = column(&out.join("importance.csv"), "median");
    assert!(median.iter().all(|m| m.unwrap() >= 0.0));

    // SmoothGrad runs, repeats with the seed, and differs from the plain gradient.
    let config = dir.path().join("quick.toml");
    std::fs::write(&config, "[train]\nepochs = 3\n").unwrap();
    let quick = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec!["--folds", "2", "--config", config.to_str().unwrap()];
        args.extend(extra);
        let report = run("mlp", &out, &args);
        (report["method"].as_str().unwrap().to_string(), std::fs::read_to_string(out.join("importance.csv")).unwrap())
    };
    let (method, a) = quick("smooth_a", &["--smoothgrad", "3"]);
    assert_eq!(method, "smoothgrad");
    assert_eq!(a, quick("smooth_b", &["--smoothgrad", "3"]).1);
    assert_ne!(a, quick("plain", &[]).1);
}

#[test]
fn unknown_causal_marker_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let causal = dir.path().join("causal.txt");
    std::fs::write(&causal, "# simulated\nsnp_1_36571\nnot_a_marker\n").unwrap();
    let bed = fixture("sim1000/sim1000.bed");
    let pheno = fixture("sim1000/pheno.csv");
    let out = dir.path().join("out");
    fails_with(
        &[
            "importance",
            "--geno",
            bed.to_str().unwrap(),
            "--pheno",
            pheno.to_str().unwrap(),
            "--trait",
            "qt",
            "--causal",
            causal.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &["causal.txt: line 3: marker 'not_a_marker' is not in the genotype file"],
    );
}
