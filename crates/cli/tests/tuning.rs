//! The test fold stays out, for every model, with and without `--tune`: permuting the phenotypes
//! of one outer test fold's lines must leave that fold's predictions byte-identical, while the
//! other folds (which train on those lines) see the change. Also: `cv --tune` writes what it
//! tried and chose, does not depend on `--jobs`, and `train --tune` saves the chosen settings.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::{fixture, genopred, models, small_config, stderr, summary};

/// A space per model: the shipped one where there is one, else a small one over a real key.
fn space(model: &str, dir: &Path) -> String {
    let text = match model {
        "gblup" => "grid_points = {int = [20, 60]}\n",
        "rkhs" => "bandwidths = {choice = [[0.5, 1.0], [2.0]]}\n",
        "bayesb" => "prob_in = {range = [0.1, 0.9]}\n",
        "ensemble" => "top_percent = {range = [1.0, 20.0]}\n",
        _ => return "default".into(),
    };
    let path = dir.join(format!("{model}-space.toml"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().into()
}

/// Runs `genopred cv` of `model` on maize300's DTT (3 folds, seed 5) with `pheno`.
fn cv(model: &str, pheno: &Path, config: &Path, out: &Path, extra: &[&str]) {
    let geno = fixture("maize300/maize300.bed");
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
        "--config",
        config.to_str().unwrap(),
        "--folds",
        "3",
        "--seed",
        "5",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = genopred(&args);
    assert!(o.status.success(), "{model} {extra:?}: {}", stderr(&o));
}

/// `predictions.csv` as id → (fold, observed text, predicted text): the predicted value exactly
/// as written.
fn predictions(dir: &Path) -> BTreeMap<String, (String, String, String)> {
    let mut rdr = csv::Reader::from_path(dir.join("predictions.csv")).unwrap();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), (r[1].to_string(), r[2].to_string(), r[3].to_string()))
        })
        .collect()
}

/// The phenotype file with the `DTT` values of `ids` rotated among them (each line gets the
/// next one's value), written to `path`.
fn permute(ids: &BTreeSet<String>, path: &Path) {
    let text = std::fs::read_to_string(fixture("maize300/pheno.csv")).unwrap();
    let mut lines: Vec<Vec<String>> = text.lines().map(|l| l.split(',').map(str::to_string).collect()).collect();
    let header = lines[0].clone();
    let col = header.iter().position(|h| h == "DTT").unwrap();
    let rows: Vec<usize> = (1..lines.len()).filter(|&i| ids.contains(&lines[i][0])).collect();
    assert_eq!(rows.len(), ids.len());
    let values: Vec<String> = rows.iter().map(|&i| lines[i][col].clone()).collect();
    for (k, &i) in rows.iter().enumerate() {
        lines[i][col] = values[(k + 1) % values.len()].clone();
    }
    let out: String = lines.iter().map(|l| l.join(",") + "\n").collect();
    std::fs::write(path, out).unwrap();
}

/// Runs `model` on the real and on the fold-1-permuted phenotypes (with `extra` flags) and
/// checks fold 1's predictions are byte-identical while another fold's changed.
fn check_test_fold_stays_out(model: &str, tmp: &Path, extra: &[&str], tag: &str) {
    let config = tmp.join(format!("{model}.toml"));
    std::fs::write(&config, small_config(model)).unwrap();
    let real = tmp.join(format!("{model}-{tag}-real"));
    cv(model, &fixture("maize300/pheno.csv"), &config, &real, extra);
    let before = predictions(&real);
    let fold1: BTreeSet<String> = before.iter().filter(|(_, v)| v.0 == "1").map(|(id, _)| id.clone()).collect();
    let pheno = tmp.join(format!("{model}-{tag}-permuted.csv"));
    permute(&fold1, &pheno);
    let permuted = tmp.join(format!("{model}-{tag}-permuted"));
    cv(model, &pheno, &config, &permuted, extra);
    let after = predictions(&permuted);
    assert_eq!(before.len(), after.len());
    let mut observed_changed = 0;
    let mut others_changed = 0;
    for (id, (fold, observed, predicted)) in &before {
        let (fold2, observed2, predicted2) = &after[id];
        assert_eq!(fold, fold2, "{model} {tag}: the folds moved");
        if fold == "1" {
            assert_eq!(predicted, predicted2, "{model} {tag}: {id} of the permuted test fold changed its prediction");
            observed_changed += usize::from(observed != observed2);
        } else {
            others_changed += usize::from(predicted != predicted2);
        }
    }
    assert!(observed_changed > fold1.len() / 2, "{model} {tag}: the permutation did not take");
    // The same lines do train the other folds: their predictions must move, or this test could
    // not see a leak.
    assert!(others_changed > 0, "{model} {tag}: permuting training lines changed nothing");
}

#[test]
fn permuting_a_test_folds_phenotypes_leaves_its_predictions_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let all = models();
    assert!(all.len() >= 7, "{all:?}");
    for model in &all {
        check_test_fold_stays_out(model, tmp.path(), &[], "plain");
    }
}

#[test]
fn permuting_a_test_folds_phenotypes_leaves_tuned_predictions_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    for model in &models() {
        let space = space(model, tmp.path());
        let flags = ["--tune", space.as_str(), "--trials", "3", "--inner-folds", "2"];
        check_test_fold_stays_out(model, tmp.path(), &flags, "tuned");
    }
}

fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut rdr = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = rdr.headers().unwrap().clone();
    rdr.records().map(|r| headers.iter().zip(r.unwrap().iter()).map(|(h, v)| (h.into(), v.into())).collect()).collect()
}

#[test]
fn tuned_cv_records_every_trial_and_does_not_depend_on_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("mlp.toml");
    std::fs::write(&config, "[train]\nepochs = 9\n").unwrap();
    let pheno = fixture("maize300/pheno.csv");
    let flags = |jobs: &'static str| ["--tune", "default", "--trials", "4", "--inner-folds", "2", "--jobs", jobs];
    let one = tmp.path().join("one");
    cv("mlp", &pheno, &config, &one, &flags("1"));
    let two = tmp.path().join("two");
    cv("mlp", &pheno, &config, &two, &[&flags("2")[..], &["--threads-per-job", "1"]].concat());
    let one_pred = std::fs::read(one.join("predictions.csv")).unwrap();
    let two_pred = std::fs::read(two.join("predictions.csv")).unwrap();
    // `--jobs 1` ran with every core; compare at one thread per job for bytes.
    let one_t1 = tmp.path().join("one-t1");
    cv("mlp", &pheno, &config, &one_t1, &[&flags("1")[..], &["--threads-per-job", "1"]].concat());
    assert_eq!(std::fs::read(one_t1.join("predictions.csv")).unwrap(), two_pred, "--jobs changed the results");
    assert!(!one_pred.is_empty());

    // tuning.csv: one row per outer fold, the chosen trial and one column per tuned key.
    let tuning = read_csv(&two.join("tuning.csv"));
    assert_eq!(tuning.len(), 3);
    for key in ["dropout", "hidden", "l2", "train.learning_rate"] {
        assert!(tuning[0].contains_key(key), "{key} missing: {:?}", tuning[0]);
    }
    // trials.csv: halving with 4 trials and eta 3: rung 1 at 3 epochs (4 trials), rung 2 at 9
    // (2 trials), per outer fold.
    let trials = read_csv(&two.join("trials.csv"));
    assert_eq!(trials.len(), 3 * (4 + 2));
    let rung2: Vec<_> = trials.iter().filter(|t| t["fold"] == "1" && t["rung"] == "2").collect();
    assert_eq!(rung2.len(), 2);
    assert!(rung2.iter().all(|t| t["epochs"] == "9"));
    // The chosen trial is the best at the last rung.
    let best = rung2
        .iter()
        .max_by(|a, b| a["inner_pearson"].parse::<f64>().unwrap().total_cmp(&b["inner_pearson"].parse().unwrap()))
        .unwrap();
    let chosen = tuning.iter().find(|t| t["fold"] == "1").unwrap();
    assert_eq!(chosen["trial"], best["trial"]);
    // The run's page says the settings were tuned and links both tables.
    let html = std::fs::read_to_string(two.join("report.html")).unwrap();
    assert!(html.contains("tuned per fold by a nested search"), "{html}");
    assert!(html.contains("QC, scaling, early stopping and the search saw only its training lines"), "{html}");
    assert!(html.contains("<a href=\"tuning.csv\">") && html.contains("<a href=\"trials.csv\">"));

    // summary.json carries each fold's search; run.json the settings (a resume must match them).
    let s = summary(&two);
    let fold = &s["folds"][0]["tuning"];
    assert_eq!(fold["metric"], "pearson");
    assert_eq!(fold["inner_folds"], 2);
    assert_eq!(fold["trials"].as_array().unwrap().len(), 6);
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(two.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["tuning"]["trials"], 4);
    assert_eq!(run["tuning"]["space"], "default (mlp)");
    // The chosen config the outer fit used is on disk, with the chosen values.
    let chosen_toml = std::fs::read_to_string(two.join("tuning/r01-f001/chosen.toml")).unwrap();
    let lr: f64 = chosen["train.learning_rate"].parse().unwrap();
    let table: toml::Table = toml::from_str(&chosen_toml).unwrap();
    assert_eq!(table["train"]["learning_rate"].as_float(), Some(lr));
    assert_eq!(table["train"]["epochs"].as_integer(), Some(9));
}

#[test]
fn tuning_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let pheno = fixture("maize300/pheno.csv");
    let geno = fixture("maize300/maize300.bed");
    let base = |model: &str, space: &str| -> Vec<String> {
        ["cv", "--geno", geno.to_str().unwrap(), "--pheno", pheno.to_str().unwrap(), "--trait", "DTT"]
            .iter()
            .map(|s| s.to_string())
            .chain(
                ["--model", model, "--tune", space, "--out", tmp.path().join("x").to_str().unwrap()].map(String::from),
            )
            .collect()
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = genopred(&refs);
        assert!(!o.status.success());
        let e = stderr(&o);
        assert!(!e.contains("panicked"), "{e}");
        e
    };
    let e = run(base("gblup", "default"));
    assert!(e.contains("gblup has no shipped search space"), "{e}");
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[train]\nlearning_rat = {log = [1e-4, 1e-2]}\n").unwrap();
    let e = run(base("mlp", bad.to_str().unwrap()));
    assert!(e.contains("does not fit model mlp") && e.contains("learning_rat"), "{e}");
    std::fs::write(&bad, "dropout = {range = [0.5, 0.1]}\n").unwrap();
    let e = run(base("mlp", bad.to_str().unwrap()));
    assert!(e.contains(bad.to_str().unwrap()) && e.contains("lo <= hi"), "{e}");
    let mut args = base("mlp", "default");
    args.extend(["--inner-folds", "1"].map(String::from));
    let e = run(args);
    assert!(e.contains("--inner-folds must be at least 2"), "{e}");
}

#[test]
fn tuned_train_saves_the_chosen_settings_and_predicts_with_them() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("mlp.toml");
    std::fs::write(&config, "[train]\nepochs = 3\n").unwrap();
    let model: PathBuf = tmp.path().join("model");
    let geno = fixture("maize300/maize300.bed");
    let o = genopred(&[
        "train",
        "--geno",
        geno.to_str().unwrap(),
        "--pheno",
        fixture("maize300/pheno.csv").to_str().unwrap(),
        "--trait",
        "DTT",
        "--model",
        "mlp",
        "--config",
        config.to_str().unwrap(),
        "--tune",
        "default",
        "--trials",
        "3",
        "--inner-folds",
        "2",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let tuning = read_csv(&model.join("tuning.csv"));
    assert_eq!(tuning.len(), 1);
    let saved: toml::Table = toml::from_str(&std::fs::read_to_string(model.join("config.toml")).unwrap()).unwrap();
    assert_eq!(saved["hidden"].as_integer().unwrap().to_string(), tuning[0]["hidden"]);
    assert_eq!(
        saved["train"]["learning_rate"].as_float().unwrap(),
        tuning[0]["train.learning_rate"].parse::<f64>().unwrap()
    );
    let out = tmp.path().join("pred.csv");
    let o = genopred(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--geno",
        geno.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 301);
}

#[test]
fn the_listing_says_which_models_ship_a_space() {
    let o = genopred(&["models", "--json"]);
    let listing: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let with: Vec<&str> = listing["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["tuning_space"] == true)
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    // The listing says what the catalogue says; the shipped spaces of the published models and of
    // the worked examples are among them (a new model's space needs no edit here).
    let catalogue: Vec<&str> =
        genopred_zoo::MODELS.iter().filter(|m| m.tuning_space().is_some()).map(|m| m.name()).collect();
    assert_eq!(with, catalogue);
    for shipped in ["dnngp", "deepgs", "dlgwas", "mlp", "attention"] {
        assert!(with.contains(&shipped), "{shipped} lost its space: {with:?}");
    }
    let text = String::from_utf8(genopred(&["models"]).stdout).unwrap();
    let line = text.lines().find(|l| l.starts_with("dnngp ")).unwrap();
    assert!(line.ends_with("[--tune default]"), "{line}");
    assert!(!text.lines().find(|l| l.starts_with("gblup ")).unwrap().contains("--tune"));
}
