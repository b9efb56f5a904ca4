//! `genopred cv --env`: multi-environment trials as a user runs them — a long table (unbalanced,
//! missing cells, a line without genotypes, a block factor), the four schemes, the three
//! environment models, the run folder's one-run rules and `--resume`, bad tables, and the
//! permutation test: under every scheme, for every model of the catalogue, rotating the values
//! of one test fold's records leaves their predictions byte-identical.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{assert_complete, fails_with, fixture, genopred, models, small_config, stderr, summary};

/// A long trial over maize300's lines: three environments with their own means, about a fifth
/// of the line × environment cells missing, a block factor, a missing value and a line that
/// has no genotypes. Deterministic.
fn long_table(dir: &Path) -> (PathBuf, usize) {
    let text = std::fs::read_to_string(fixture("maize300/pheno.csv")).unwrap();
    let mut out = String::from("line,site,block,days\n");
    let mut records = 0;
    for (i, row) in text.lines().skip(1).enumerate() {
        let cells: Vec<&str> = row.split(',').collect();
        let (id, Ok(dtt)) = (cells[0], cells[3].parse::<f64>()) else { continue };
        for (e, (site, mean)) in [("North", 60.0), ("South", 52.0), ("Dry", 57.0)].iter().enumerate() {
            let h = (i * 7 + e * 13) % 10;
            if h < 2 {
                continue; // a missing cell
            }
            let noise = ((i * 31 + e * 17) % 11) as f64 / 10.0 - 0.5;
            let block = if (i + e) % 2 == 0 { "B1" } else { "B2" };
            let value = mean + (1.0 + 0.3 * e as f64) * dtt + noise;
            out.push_str(&format!("{id},{site},{block},{value}\n"));
            records += 1;
        }
    }
    out.push_str("NOT_GENOTYPED,North,B1,61.0\nNOT_GENOTYPED,South,B2,50.0\n");
    out.push_str(&format!("{},Dry,B1,NA\n", text.lines().nth(1).unwrap().split(',').next().unwrap()));
    let path = dir.join("trial.csv");
    std::fs::write(&path, out).unwrap();
    (path, records)
}

fn args(trial: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "cv",
        "--geno",
        fixture("maize300/maize300.bed").to_str().unwrap(),
        "--pheno",
        trial.to_str().unwrap(),
        "--env",
        "site",
        "--trait",
        "days",
        "--id-column",
        "line",
        "--folds",
        "3",
        "--seed",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if extra.contains(&"--folds-file") {
        let at = a.iter().position(|s| s == "--folds").unwrap();
        a.drain(at..at + 2);
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn ok(a: &[String]) -> String {
    let o = genopred(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{a:?}: {}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn refused(a: &[String], wants: &[&str]) -> String {
    fails_with(&a.iter().map(String::as_str).collect::<Vec<_>>(), wants)
}

#[test]
fn gxe_gblup_under_cv2_predicts_every_record_per_environment_and_resumes_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (trial, records) = long_table(tmp.path());
    let out = tmp.path().join("gxe");
    let a = args(&trial, &out, &["--model", "gblup", "--scheme", "cv2", "--env-model", "gxe"]);
    let table = ok(&a);
    assert!(table.contains("within environment (mean over environments)"), "{table}");
    assert_complete(&out);
    let predictions = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    let mut lines = predictions.lines();
    assert_eq!(lines.next(), Some("id,env,fold,observed,predicted,repeat"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), records, "one row per genotyped record with a value");
    assert!(rows.iter().all(|r| r[0] != "NOT_GENOTYPED"));
    // CV2: most test lines have records in other folds.
    let s = summary(&out);
    assert_eq!(s["env_model"], "gxe");
    assert_eq!(s["n_records"], records);
    let envs: Vec<&str> = s["environments"].as_array().unwrap().iter().map(|e| e["env"].as_str().unwrap()).collect();
    assert_eq!(envs, ["South", "Dry", "North"], "in order of first appearance");
    let within = s["within_env_pearson"]["mean"].as_f64().unwrap();
    assert!(within > 0.5, "the environments share the line's genetic value: r {within}");
    let fit = &s["folds"][0]["fit"];
    let names: Vec<&str> = fit["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["g", "ge", "residual"]);
    assert!(fit["components"][0]["se"].as_f64().is_some_and(|se| se > 0.0), "{fit}");
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    for wanted in ["Pearson r within environment", "Variance components", "ge", "North"] {
        assert!(report.contains(wanted), "report.html lacks {wanted:?}");
    }

    // A second start in the used folder is refused; --resume after losing a fold and the
    // combined files gives the same bytes.
    refused(&a, &["holds the results of a finished run", "--resume", "--force"]);
    for f in ["summary.json", "complete.json", "predictions.csv", "folds/r01-f002.json"] {
        std::fs::remove_file(out.join(f)).unwrap();
    }
    let mut resume = a.clone();
    resume.push("--resume".into());
    ok(&resume);
    assert_eq!(std::fs::read_to_string(out.join("predictions.csv")).unwrap(), predictions);
    // Another scheme is another run: --resume names what differs.
    let mut other = args(&trial, &out, &["--model", "gblup", "--scheme", "cv1", "--env-model", "gxe", "--resume"]);
    other.retain(|_| true);
    refused(&other, &["differs in: scheme"]);
}

#[test]
fn every_scheme_and_environment_model_runs_or_says_why_not() {
    let tmp = tempfile::tempdir().unwrap();
    let (trial, _) = long_table(tmp.path());
    let run = |name: &str, extra: &[&str]| {
        let out = tmp.path().join(name);
        ok(&args(&trial, &out, extra));
        summary(&out)
    };
    // A new environment: one fold per environment, fixed blocks beside it.
    let cv0 = run("cv0", &["--model", "gblup", "--scheme", "cv0", "--env-model", "across", "--fixed", "block"]);
    let labels: Vec<&str> = cv0["folds"].as_array().unwrap().iter().map(|f| f["label"].as_str().unwrap()).collect();
    assert_eq!(labels.len(), 3, "{labels:?}");
    let fixed: Vec<&str> =
        cv0["folds"][0]["fit"]["fixed"].as_array().unwrap().iter().map(|f| f[0].as_str().unwrap()).collect();
    assert!(fixed.iter().any(|f| f.starts_with("block=")) && fixed.len() == 3, "{fixed:?}");
    let cv00 = run("cv00", &["--model", "rkhs", "--scheme", "cv00", "--env-model", "gxe"]);
    assert_eq!(cv00["folds"].as_array().unwrap().len(), 9, "3 environments × 3 folds of lines");
    let het = run("het", &["--model", "gblup", "--scheme", "cv2", "--env-model", "gxe-het"]);
    let names: Vec<&str> =
        het["folds"][0]["fit"]["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["g", "ge:South", "ge:Dry", "ge:North", "residual"]);
    // A network's G×E: an output per environment, the environments and blocks in its head.
    let config = tmp.path().join("mlp.toml");
    std::fs::write(&config, small_config("mlp")).unwrap();
    let flags = ["--model", "mlp", "--config", config.to_str().unwrap(), "--env-model", "gxe", "--fixed", "block"];
    let net = run("mlp-gxe", &flags);
    let fit = &net["folds"][0]["fit"];
    assert_eq!((fit["env_model"].as_str(), fit["outputs"].as_u64()), (Some("gxe"), Some(3)), "{fit}");
    let head = &fit["model"]["head"];
    assert_eq!((head["outputs"].as_u64(), head["covariates"].as_u64()), (Some(3), Some(4)), "{head}");
    let fixed: Vec<&str> = fit["fixed"].as_array().unwrap().iter().map(|f| f[0].as_str().unwrap()).collect();
    assert_eq!(fixed.len(), 4, "three environments and a block: {fixed:?}");
    // Environmental covariates: the reaction-norm term, through which a left-out environment
    // borrows from those it resembles.
    let weather = tmp.path().join("weather.csv");
    std::fs::write(&weather, "site,rain,heat\nNorth,400,20\nSouth,300,28\nDry,150,31\nElsewhere,1,1\n").unwrap();
    let w = weather.to_str().unwrap();
    let cv0w = run("cv0-w", &["--model", "gblup", "--scheme", "cv0", "--env-model", "gxe", "--env-covariates", w]);
    let names: Vec<&str> =
        cv0w["folds"][0]["fit"]["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["g", "gw", "ge", "residual"]);
    assert!(cv0w["provenance"]["scheme"]["env_covariates"].as_str().is_some_and(|h| h.len() == 64), "{cv0w}");
    let single = run("single", &["--model", "rkhs", "--scheme", "cv1", "--env-model", "single"]);
    assert_eq!(single["folds"][0]["fit"]["env_model"], "single");
    assert!(single["within_env_pearson"]["mean"].as_f64().unwrap() > 0.3);

    // Record-level folds from a file: the trial's own partition.
    let folds_file = tmp.path().join("folds.csv");
    let text = std::fs::read_to_string(&trial).unwrap();
    let mut folds = String::from("id,site,fold\n");
    for (i, row) in text.lines().skip(1).filter(|l| !l.ends_with(",NA")).enumerate() {
        let cells: Vec<&str> = row.split(',').collect();
        folds.push_str(&format!("{},{},{}\n", cells[0], cells[1], ["a", "b"][i % 2]));
    }
    std::fs::write(&folds_file, folds).unwrap();
    let from_file = run("file", &["--model", "gblup", "--folds-file", folds_file.to_str().unwrap()]);
    let labels: Vec<&str> =
        from_file["folds"].as_array().unwrap().iter().map(|f| f["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["a", "b"]);
    assert_eq!(from_file["provenance"]["scheme"]["kind"], "trialsfile");

    let refuse = |name: &str, extra: &[&str], wants: &[&str]| {
        refused(&args(&trial, &tmp.path().join(name), extra), wants);
    };
    refuse(
        "no-kernel",
        &["--model", "bayesb", "--env-model", "gxe"],
        &["model bayesb has neither a genetic kernel nor an output per environment", "--env-model across or single"],
    );
    refuse(
        "network-us",
        &["--model", "mlp", "--env-model", "gxe-us"],
        &["model mlp fits G×E as one output per environment (--env-model gxe)"],
    );
    refuse(
        "single-cv0",
        &["--model", "gblup", "--scheme", "cv0", "--env-model", "single"],
        &["has 0 training record(s)", "--env-model across or gxe"],
    );
    refuse(
        "single-fixed",
        &["--model", "gblup", "--env-model", "single", "--fixed", "block"],
        &["cannot fit the fixed effects"],
    );
    refuse(
        "covariates-across",
        &["--model", "gblup", "--env-model", "across", "--env-covariates", w],
        &["--env-model across does not use environmental covariates (rain, heat)"],
    );
    let partial = tmp.path().join("partial.csv");
    std::fs::write(&partial, "site,rain\nNorth,400\nSouth,300\n").unwrap();
    refuse(
        "covariates-partial",
        &["--model", "gblup", "--env-covariates", partial.to_str().unwrap()],
        &["partial.csv", "environment 'Dry' of the trial has no row"],
    );
    refuse("bad-scheme", &["--scheme", "cv3"], &["must be one of cv1, cv2, cv0, cv00"]);
    refuse("bad-model", &["--env-model", "both"], &["must be one of single, across, gxe, gxe-het, gxe-us"]);
}

#[test]
fn bad_trial_tables_name_the_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let (trial, _) = long_table(tmp.path());
    let text = std::fs::read_to_string(&trial).unwrap();
    let first = text.lines().nth(1).unwrap().to_string();
    let cells: Vec<&str> = first.split(',').collect();
    let conflicting = format!("{text}{},{},{},999\n", cells[0], cells[1], cells[2]);
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, &conflicting).unwrap();
    let n = conflicting.lines().count();
    refused(
        &args(&bad, &tmp.path().join("dup"), &[]),
        &["bad.csv", &format!("line {n}"), &format!("line '{}' has two records in site '{}'", cells[0], cells[1])],
    );
    refused(
        &args(&trial, &tmp.path().join("nocol"), &[])
            .iter()
            .map(|s| if s == "site" { "location".into() } else { s.clone() })
            .collect::<Vec<_>>(),
        &["trial.csv", "no environment column named 'location'"],
    );
    refused(&args(&trial, &tmp.path().join("nofixed"), &["--fixed", "rep"]), &["trial.csv", "rep"]);
}

/// `predictions.csv` as (id, env) → (fold, observed, predicted), the values as written.
fn by_record(dir: &Path) -> BTreeMap<(String, String), (String, String, String)> {
    let mut rdr = csv::Reader::from_path(dir.join("predictions.csv")).unwrap();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            ((r[0].to_string(), r[1].to_string()), (r[2].to_string(), r[3].to_string(), r[4].to_string()))
        })
        .collect()
}

/// The trial with the values of `records` rotated among them.
fn rotate(trial: &Path, records: &[(String, String)], to: &Path) {
    let text = std::fs::read_to_string(trial).unwrap();
    let mut rows: Vec<Vec<String>> = text.lines().map(|l| l.split(',').map(str::to_string).collect()).collect();
    let at: Vec<usize> = (1..rows.len())
        .filter(|&i| rows[i][3] != "NA" && records.iter().any(|(id, env)| rows[i][0] == *id && rows[i][1] == *env))
        .collect();
    assert_eq!(at.len(), records.len());
    let values: Vec<String> = at.iter().map(|&i| rows[i][3].clone()).collect();
    for (k, &i) in at.iter().enumerate() {
        rows[i][3] = values[(k + 1) % values.len()].clone();
    }
    std::fs::write(to, rows.iter().map(|r| r.join(",") + "\n").collect::<String>()).unwrap();
}

/// Runs `model` on the trial and on it with fold 1's test records rotated; fold 1's
/// predictions must be byte-identical, another fold's must change.
fn check_test_records_stay_out(tmp: &Path, trial: &Path, model: &str, scheme: &str, env_model: &str) {
    let tag = format!("{model}-{scheme}-{env_model}");
    let config = tmp.join(format!("{model}.toml"));
    std::fs::write(&config, small_config(model)).unwrap();
    let flags = ["--model", model, "--config", config.to_str().unwrap(), "--scheme", scheme, "--env-model", env_model];
    let real = tmp.join(format!("{tag}-real"));
    ok(&args(trial, &real, &flags));
    let before = by_record(&real);
    let fold1: Vec<(String, String)> = before.iter().filter(|(_, v)| v.0 == "1").map(|(k, _)| k.clone()).collect();
    let rotated = tmp.join(format!("{tag}.csv"));
    rotate(trial, &fold1, &rotated);
    let permuted = tmp.join(format!("{tag}-permuted"));
    ok(&args(&rotated, &permuted, &flags));
    let after = by_record(&permuted);
    assert_eq!(before.len(), after.len(), "{tag}");
    let (mut observed_changed, mut others_changed) = (0, 0);
    for (key, (fold, observed, predicted)) in &before {
        let (fold2, observed2, predicted2) = &after[key];
        assert_eq!(fold, fold2, "{tag}: the folds moved");
        if fold == "1" {
            assert_eq!(predicted, predicted2, "{tag}: {key:?} of the rotated test fold changed its prediction");
            observed_changed += usize::from(observed != observed2);
        } else {
            others_changed += usize::from(predicted != predicted2);
        }
    }
    assert!(observed_changed > fold1.len() / 2, "{tag}: the rotation did not take");
    assert!(others_changed > 0, "{tag}: rotating training records changed nothing");
}

#[test]
fn rotating_a_test_folds_records_leaves_their_predictions_unchanged_for_every_model_and_scheme() {
    let tmp = tempfile::tempdir().unwrap();
    let (trial, _) = long_table(tmp.path());
    let all = models();
    assert!(all.len() >= 8, "{all:?}");
    // Every model, across environments (networks and BayesB in two stages) under CV2, the
    // scheme where a test line's other records train.
    for model in &all {
        check_test_records_stay_out(tmp.path(), &trial, model, "cv2", "across");
    }
    // Every scheme with G×E, and single-environment fits.
    for scheme in ["cv1", "cv2", "cv0", "cv00"] {
        check_test_records_stay_out(tmp.path(), &trial, "gblup", scheme, "gxe");
    }
    check_test_records_stay_out(tmp.path(), &trial, "rkhs", "cv2", "gxe");
    // The networks' G×E (an output per environment), and a new environment's records reading
    // the trained environments' outputs.
    for model in all.iter().filter(|m| !["gblup", "rkhs", "bayesb", "ensemble"].contains(&m.as_str())) {
        check_test_records_stay_out(tmp.path(), &trial, model, "cv2", "gxe");
    }
    check_test_records_stay_out(tmp.path(), &trial, "mlp", "cv00", "gxe");
    check_test_records_stay_out(tmp.path(), &trial, "mlp", "cv1", "single");
}

#[test]
fn info_describes_a_trial_per_environment_and_pair() {
    let tmp = tempfile::tempdir().unwrap();
    let (trial, records) = long_table(tmp.path());
    let geno = fixture("maize300/maize300.bed");
    let o = genopred(&[
        "info",
        "--geno",
        geno.to_str().unwrap(),
        "--pheno",
        trial.to_str().unwrap(),
        "--id-column",
        "line",
        "--env",
        "site",
        "--trait",
        "days",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    // The genotyped records plus the two of the line without genotypes.
    assert!(out.contains(&format!("records         {} of ", records + 2)), "{out}");
    assert!(out.contains("1 missing values"), "{out}");
    for wanted in ["  South ", "  Dry ", "  North ", "lines tested in", "South            Dry", "not genotyped=1"] {
        assert!(out.contains(wanted), "{wanted:?} missing from:\n{out}");
    }
    // A trait that is not in the table names the table.
    fails_with(
        &[
            "info",
            "--geno",
            geno.to_str().unwrap(),
            "--pheno",
            trial.to_str().unwrap(),
            "--env",
            "site",
            "--trait",
            "x",
        ],
        &["trial.csv"],
    );
}

#[test]
fn only_fold_jobs_combined_with_resume_give_the_whole_runs_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (trial, _) = long_table(tmp.path());
    let flags = ["--model", "gblup", "--scheme", "cv2", "--env-model", "across"];
    let whole = tmp.path().join("whole");
    ok(&args(&trial, &whole, &flags));
    let listed = ok(&args(&trial, &tmp.path().join("list"), &[&flags[..], &["--list-folds"]].concat()));
    let listing: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listing.as_array().unwrap().len(), 3, "{listing}");
    let parts = tmp.path().join("parts");
    for k in ["3", "1", "2"] {
        ok(&args(&trial, &parts, &[&flags[..], &["--only-fold", k, "--record-only"]].concat()));
    }
    assert!(!parts.join("predictions.csv").exists(), "--record-only combines nothing");
    ok(&args(&trial, &parts, &[&flags[..], &["--resume"]].concat()));
    let read = |dir: &Path, f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    assert_eq!(read(&whole, "predictions.csv"), read(&parts, "predictions.csv"));
    // The fold records: the same run, test records and fit (their wall times aside).
    let record = |dir: &Path| -> serde_json::Value { serde_json::from_str(&read(dir, "folds/r01-f002.json")).unwrap() };
    let (a, b) = (record(&whole), record(&parts));
    for key in ["run", "test_records"] {
        assert_eq!(a[key], b[key], "{key}");
    }
    assert_eq!(a["result"]["fit"], b["result"]["fit"]);
    refused(
        &args(&trial, &parts, &[&flags[..], &["--only-fold", "4"]].concat()),
        &["--only-fold 4: this run has folds 1 to 3"],
    );
}

/// `genopred train --env` then `genopred predict`: the saved trial model predicts new lines in
/// each environment exactly as the cross-validation fold that trained on the same lines did.
#[test]
fn a_trained_trial_model_predicts_new_lines_in_each_environment_as_its_fold_did() {
    let tmp = tempfile::tempdir().unwrap();
    let (trial, _) = long_table(tmp.path());
    let text = std::fs::read_to_string(&trial).unwrap();
    // Lines alternate between two folds; the training file holds fold a's records only.
    let mut ids: Vec<&str> = Vec::new();
    for id in text.lines().skip(1).map(|l| l.split(',').next().unwrap()) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let fold_of = |id: &str| if ids.iter().position(|i| *i == id).unwrap() % 2 == 0 { "a" } else { "b" };
    let folds = tmp.path().join("folds.csv");
    let mut f = String::from("id,fold\n");
    ids.iter().for_each(|id| f.push_str(&format!("{id},{}\n", fold_of(id))));
    std::fs::write(&folds, f).unwrap();
    let mut a_only = String::from("line,site,block,days\n");
    text.lines().skip(1).filter(|l| fold_of(l.split(',').next().unwrap()) == "a").for_each(|l| {
        a_only.push_str(l);
        a_only.push('\n');
    });
    let a_trial = tmp.path().join("a.csv");
    std::fs::write(&a_trial, a_only).unwrap();

    let cv = tmp.path().join("cv");
    let mut cv_args = args(&trial, &cv, &["--model", "gblup", "--env-model", "gxe", "--folds-file"]);
    cv_args.push(folds.to_str().unwrap().into());
    ok(&cv_args);
    let model = tmp.path().join("model");
    let geno = fixture("maize300/maize300.bed");
    let (geno, a_trial_s, model_s) = (geno.to_str().unwrap(), a_trial.to_str().unwrap(), model.to_str().unwrap());
    let train = [
        "train",
        "--geno",
        geno,
        "--pheno",
        a_trial_s,
        "--env",
        "site",
        "--trait",
        "days",
        "--id-column",
        "line",
        "--model",
        "gblup",
        "--env-model",
        "gxe",
        "--out",
        model_s,
    ];
    let o = genopred(&train);
    assert!(o.status.success(), "{}", stderr(&o));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["trial"]["env_model"], "gxe");
    let out = tmp.path().join("p.csv");
    let o = genopred(&["predict", "--model", model_s, "--geno", geno, "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let predicted = gebv_by_env(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(predicted.len(), 300 * 3, "every genotyped line in every environment");
    let mut compared = 0;
    for ((id, env), (fold, _, p)) in by_record(&cv) {
        if fold != "2" {
            continue; // fold b (the file's second label) is what fold a's lines predict
        }
        let want: f64 = p.parse().unwrap();
        let got = predicted[&(id.clone(), env.clone())];
        assert!((got - want).abs() < 1e-6 * want.abs().max(1.0), "{id} in {env}: {got} vs the fold's {want}");
        compared += 1;
    }
    assert!(compared > 100, "{compared} records compared");
    // One environment by name; an unknown one is refused with the model's.
    let one = tmp.path().join("one.csv");
    let o = genopred(&["predict", "--model", model_s, "--geno", geno, "--env", "Dry", "--out", one.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&one).unwrap().lines().count(), 301);
    fails_with(
        &["predict", "--model", model_s, "--geno", geno, "--env", "Wet", "--out", one.to_str().unwrap()],
        &["--env Wet: the model's environments are", "needs --env-covariates and a model trained with them"],
    );
    // With environmental covariates, an environment outside the trial is placed by the
    // reaction norm (its level the trained environments' mean).
    let weather = tmp.path().join("weather.csv");
    std::fs::write(&weather, "site,rain,heat\nNorth,400,20\nSouth,300,28\nDry,150,31\nWet,500,18\n").unwrap();
    let w = weather.to_str().unwrap();
    let rn = tmp.path().join("rn");
    let mut with_w = train.to_vec();
    let last = with_w.len() - 1;
    with_w[last] = rn.to_str().unwrap();
    with_w.extend(["--env-covariates", w]);
    let o = genopred(&with_w);
    assert!(o.status.success(), "{}", stderr(&o));
    let wet = tmp.path().join("wet.csv");
    let rn_s = rn.to_str().unwrap();
    let o = genopred(&[
        "predict",
        "--model",
        rn_s,
        "--geno",
        geno,
        "--env",
        "Wet",
        "--env-covariates",
        w,
        "--out",
        wet.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&wet).unwrap();
    assert_eq!(text.lines().count(), 301);
    assert!(text.lines().skip(1).all(|l| l.split(',').nth(1) == Some("Wet")), "{}", &text[..200]);
    // A network: an output per environment, saved with its head; reloaded, it predicts its
    // training records as the fit did (the manifest's in-sample r), the same bytes each time.
    let config = tmp.path().join("mlp.toml");
    std::fs::write(&config, small_config("mlp")).unwrap();
    let net = tmp.path().join("net");
    let mut mlp: Vec<&str> = train.to_vec();
    let at = mlp.iter().position(|a| *a == "gblup").unwrap();
    mlp[at] = "mlp";
    let last = mlp.len() - 1;
    mlp[last] = net.to_str().unwrap();
    mlp.extend(["--config", config.to_str().unwrap()]);
    let o = genopred(&mlp);
    assert!(o.status.success(), "{}", stderr(&o));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(net.join("manifest.json")).unwrap()).unwrap();
    let (a, b) = (tmp.path().join("n1.csv"), tmp.path().join("n2.csv"));
    for out in [&a, &b] {
        let o =
            genopred(&["predict", "--model", net.to_str().unwrap(), "--geno", geno, "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let text = std::fs::read_to_string(&a).unwrap();
    assert_eq!(text, std::fs::read_to_string(&b).unwrap());
    let predicted = gebv_by_env(&text);
    let (mut o, mut p) = (Vec::new(), Vec::new());
    for l in std::fs::read_to_string(&a_trial).unwrap().lines().skip(1) {
        let c: Vec<&str> = l.split(',').collect();
        if let (Some(v), Ok(y)) = (predicted.get(&(c[0].to_string(), c[1].to_string())), c[3].parse::<f64>()) {
            o.push(y);
            p.push(*v);
        }
    }
    let r = pearson(&o, &p);
    let recorded = manifest["train_metrics"]["pearson"].as_f64().unwrap();
    assert!((r - recorded).abs() < 1e-4, "in-sample r {r} from predict, {recorded} at the fit");
    // A model with neither a kernel nor an output per environment says so.
    let bb = tmp.path().join("bb");
    let mut bayesb = train.to_vec();
    bayesb[at] = "bayesb";
    bayesb[last] = bb.to_str().unwrap();
    fails_with(&bayesb, &["model bayesb has neither a genetic kernel nor an output per environment"]);
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// `genopred predict`'s output for a trial model (`id,env,predicted,rank`), by line and environment.
fn gebv_by_env(text: &str) -> BTreeMap<(String, String), f64> {
    text.lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            ((c[0].to_string(), c[1].to_string()), c[2].parse().unwrap())
        })
        .collect()
}
