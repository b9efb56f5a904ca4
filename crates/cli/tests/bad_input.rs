//! Bad input gives a clear message and exit code 2, never a panic.

mod common;

use common::{fails_with, fixture};

fn cv_args<'a>(geno: &'a str, pheno: &'a str, trait_name: &'a str, out: &'a str) -> Vec<&'a str> {
    vec!["cv", "--geno", geno, "--pheno", pheno, "--trait", trait_name, "--out", out]
}

#[test]
fn unknown_trait_model_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (geno, pheno) = (fixture("maize300/maize300.bed"), fixture("maize300/pheno.csv"));
    let (g, p, o) = (geno.to_str().unwrap(), pheno.to_str().unwrap(), out.to_str().unwrap());
    fails_with(&cv_args(g, p, "yield", o), &["no column named 'yield'", "DTT"]);
    let mut args = cv_args(g, p, "DTT", o);
    args.extend(["--model", "nope"]);
    fails_with(&args, &["unknown model 'nope'", "gblup"]);
    fails_with(&cv_args("/nonexistent/x.bed", p, "DTT", o), &["/nonexistent/x.bed", "not found"]);
    fails_with(&cv_args(g, "/nonexistent/p.csv", "DTT", o), &["/nonexistent/p.csv"]);
    let mut args = cv_args(g, p, "DTT", o);
    args.extend(["--folds", "301"]);
    fails_with(&args, &["more folds than samples"]);
    let mut args = cv_args(g, p, "tester", o);
    args.extend(["--folds", "5"]);
    fails_with(&args, &["'Tester_25' is not a number", "line 2, column 2"]);
}

#[test]
fn mismatched_ids_and_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    let geno = fixture("maize300/maize300.bed");
    let g = geno.to_str().unwrap();

    let pheno = dir.path().join("other.csv");
    std::fs::write(&pheno, "id,y\nA1,1\nA2,2\n").unwrap();
    fails_with(&cv_args(g, pheno.to_str().unwrap(), "y", o), &["no sample id", "'A1'"]);

    let csv = dir.path().join("g.csv");
    std::fs::write(&csv, "id,m1,m2\ns1,0,1\ns2,1\n").unwrap();
    fails_with(&["info", "--geno", csv.to_str().unwrap()], &["g.csv", "line 3", "2 fields"]);

    // A .bed whose size disagrees with its .fam/.bim.
    let prefix = dir.path().join("trunc");
    for ext in ["bim", "fam"] {
        std::fs::copy(fixture(&format!("maize300/maize300.{ext}")), prefix.with_extension(ext)).unwrap();
    }
    let bytes = std::fs::read(fixture("maize300/maize300.bed")).unwrap();
    std::fs::write(prefix.with_extension("bed"), &bytes[..bytes.len() / 2]).unwrap();
    fails_with(&["info", "--geno", prefix.with_extension("bed").to_str().unwrap()], &["trunc.bed", "truncated"]);
    let mut wrong = bytes.clone();
    wrong[0] = 0;
    std::fs::write(prefix.with_extension("bed"), &wrong).unwrap();
    fails_with(&["info", "--geno", prefix.with_extension("bed").to_str().unwrap()], &["magic bytes"]);

    // A .fam one line short whose .bed still has the right size (wheat599: 599 samples and 598
    // both take 150 bytes a marker): the last sample's calls sit in the padding bits.
    let short = dir.path().join("short");
    for ext in ["bed", "bim"] {
        std::fs::copy(fixture(&format!("wheat599/wheat599.{ext}")), short.with_extension(ext)).unwrap();
    }
    let fam = std::fs::read_to_string(fixture("wheat599/wheat599.fam")).unwrap();
    let lines: Vec<&str> = fam.lines().collect();
    std::fs::write(short.with_extension("fam"), lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    fails_with(
        &["info", "--geno", short.with_extension("bed").to_str().unwrap()],
        &["short.bed", "more samples than the .fam's 598", "line 1 of the .bim"],
    );
}
