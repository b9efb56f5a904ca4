//! Issue 7's bad-input catalogue, end to end: each broken input runs the real binary and must
//! exit with code 2 and a message naming the file and the line, column, sample or setting at
//! fault, never a panic and never a result.

mod common;

use std::path::{Path, PathBuf};

use common::{fixture, genopred, stderr};

/// [`common::fails_with`], and no results written.
fn fails_with(args: &[&str], wants: &[&str]) -> String {
    let err = common::fails_with(args, wants);
    if let Some(i) = args.iter().position(|a| *a == "--out") {
        assert!(!Path::new(args[i + 1]).join("summary.json").exists(), "a failed run wrote results");
    }
    err
}

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Case { dir: tempfile::tempdir().unwrap() }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn write(&self, name: &str, body: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_string()
    }
    fn out(&self) -> String {
        self.path("out").to_str().unwrap().to_string()
    }
    /// A copy of maize300's `.bed/.bim/.fam` as `set.*`; returns the `.bed` path.
    fn plink(&self) -> String {
        for ext in ["bed", "bim", "fam"] {
            std::fs::copy(fixture(&format!("maize300/maize300.{ext}")), self.path(&format!("set.{ext}"))).unwrap();
        }
        self.path("set.bed").to_str().unwrap().to_string()
    }
    /// cv of GBLUP on `geno` against maize300's phenotypes (trait DTT) unless `pheno` is given.
    fn cv(&self, geno: &str, pheno: Option<&str>, trait_name: &str, extra: &[&str]) -> Vec<String> {
        let pheno = pheno.map(String::from).unwrap_or_else(|| fixture("maize300/pheno.csv").to_str().unwrap().into());
        let mut args: Vec<String> =
            ["cv", "--geno", geno, "--pheno", &pheno, "--trait", trait_name, "--out", &self.out()]
                .iter()
                .map(|s| s.to_string())
                .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }
    /// cv args on the small CSV genotypes and phenotypes below.
    fn small_cv(&self, trait_name: &str, extra: &[&str]) -> Vec<String> {
        let g = self.write("g.csv", &small_csv());
        let pheno = self.write("p.csv", &small_pheno());
        self.cv(&g, Some(&pheno), trait_name, extra)
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A small valid dosage CSV: 12 samples s1..s12, markers m1..m4.
fn small_csv() -> String {
    let mut s = String::from("id,m1,m2,m3,m4\n");
    for i in 1..=12 {
        s.push_str(&format!("s{i},{},{},{},{}\n", i % 3, (i / 2) % 3, (i * 7) % 3, (i / 3) % 3));
    }
    s
}

fn small_pheno() -> String {
    let mut s = String::from("id,y,flat\n");
    for i in 1..=12 {
        s.push_str(&format!("s{i},{}.5,7\n", (i * 5) % 11));
    }
    s
}

const VCF_HEAD: &str = "##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n\
##FORMAT=<ID=DS,Number=1,Type=Float,Description=\"Dosage\">\n##contig=<ID=1>\n\
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\tS3\n";

// ---- PLINK ----

#[test]
fn plink_missing_bim() {
    let c = Case::new();
    let bed = c.plink();
    std::fs::remove_file(c.path("set.bim")).unwrap();
    fails_with(&["info", "--geno", &bed], &["set.bim"]);
}

#[test]
fn plink_missing_fam() {
    let c = Case::new();
    let bed = c.plink();
    std::fs::remove_file(c.path("set.fam")).unwrap();
    fails_with(&["info", "--geno", &bed], &["set.fam"]);
}

#[test]
fn plink_missing_bed() {
    let c = Case::new();
    let bed = c.plink();
    std::fs::remove_file(&bed).unwrap();
    fails_with(&["info", "--geno", c.path("set.bim").to_str().unwrap()], &["set.bed"]);
}

#[test]
fn plink_truncated_bed() {
    let c = Case::new();
    let bed = c.plink();
    let bytes = std::fs::read(&bed).unwrap();
    std::fs::write(&bed, &bytes[..bytes.len() - 7]).unwrap();
    fails_with(&["info", "--geno", &bed], &["set.bed", "truncated"]);
}

#[test]
fn plink_wrong_magic_bytes() {
    let c = Case::new();
    let bed = c.plink();
    let mut bytes = std::fs::read(&bed).unwrap();
    bytes[1] = 0x00;
    std::fs::write(&bed, &bytes).unwrap();
    fails_with(&["info", "--geno", &bed], &["set.bed", "magic bytes"]);
}

#[test]
fn plink_fam_has_an_extra_sample() {
    let c = Case::new();
    let bed = c.plink();
    let mut fam = std::fs::read_to_string(c.path("set.fam")).unwrap();
    fam.push_str("extra extra 0 0 0 -9\n");
    std::fs::write(c.path("set.fam"), fam).unwrap();
    fails_with(&["info", "--geno", &bed], &["set.bed", "301"]);
}

#[test]
fn plink_bim_lacks_a_marker() {
    let c = Case::new();
    let bed = c.plink();
    let bim = std::fs::read_to_string(c.path("set.bim")).unwrap();
    let lines: Vec<&str> = bim.lines().collect();
    std::fs::write(c.path("set.bim"), lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    fails_with(&["info", "--geno", &bed], &["set.bed", &format!("{}", lines.len() - 1)]);
}

#[test]
fn plink_bim_line_with_missing_fields() {
    let c = Case::new();
    let bed = c.plink();
    let bim = std::fs::read_to_string(c.path("set.bim")).unwrap();
    let mut lines: Vec<String> = bim.lines().map(String::from).collect();
    lines[4] = "1\tbroken\t0".into();
    std::fs::write(c.path("set.bim"), lines.join("\n") + "\n").unwrap();
    fails_with(&["info", "--geno", &bed], &["set.bim", "line 5"]);
}

#[test]
fn plink_duplicate_marker_ids() {
    let c = Case::new();
    let bed = c.plink();
    let bim = std::fs::read_to_string(c.path("set.bim")).unwrap();
    let mut lines: Vec<String> = bim.lines().map(String::from).collect();
    let first_id = lines[0].split('\t').nth(1).unwrap().to_string();
    lines[2] = lines[2].replacen(lines[2].split('\t').nth(1).unwrap(), &first_id, 1);
    std::fs::write(c.path("set.bim"), lines.join("\n") + "\n").unwrap();
    fails_with(&["info", "--geno", &bed], &["set.bed", &format!("marker id '{first_id}' occurs more than once")]);
}

#[test]
fn plink_duplicate_sample_ids() {
    let c = Case::new();
    let bed = c.plink();
    let fam = std::fs::read_to_string(c.path("set.fam")).unwrap();
    let mut lines: Vec<String> = fam.lines().map(String::from).collect();
    lines[3] = lines[0].clone();
    std::fs::write(c.path("set.fam"), lines.join("\n") + "\n").unwrap();
    let id = lines[0].split_whitespace().nth(1).unwrap().to_string();
    fails_with(&["info", "--geno", &bed], &["set.bed", &format!("sample id '{id}' occurs more than once")]);
}

// ---- VCF ----

#[test]
fn vcf_malformed_line() {
    let c = Case::new();
    let vcf = c.write("g.vcf", &format!("{VCF_HEAD}1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/0\t0/1\t1/1\n1\tabc\trs2\tA\n"));
    fails_with(&["info", "--geno", &vcf], &["g.vcf", "line 7"]);
}

#[test]
fn vcf_without_gt() {
    let c = Case::new();
    let vcf = c.write("g.vcf", &format!("{VCF_HEAD}1\t100\trs1\tA\tG\t.\t.\t.\tDS\t0.1\t1.0\t2\n"));
    fails_with(&["info", "--geno", &vcf], &["g.vcf", "line 6", "no GT"]);
}

#[test]
fn vcf_haploid_call() {
    let c = Case::new();
    let vcf = c.write("g.vcf", &format!("{VCF_HEAD}1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/0\t1\t1/1\n"));
    fails_with(&["info", "--geno", &vcf], &["g.vcf", "line 6", "S2", "ploidy 1"]);
}

#[test]
fn vcf_multiallelic_sites_are_skipped_and_counted() {
    let c = Case::new();
    let vcf = c.write(
        "g.vcf",
        &format!(
            "{VCF_HEAD}1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/0\t0/1\t1/1\n1\t200\trs2\tA\tC,G\t.\t.\t.\tGT\t1/2\t0/0\t2/2\n"
        ),
    );
    let o = genopred(&["info", "--geno", &vcf]);
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(o.status.success(), "{text}");
    assert!(text.contains("multi-allelic"), "{text}");
    let only_multi = c.write("m.vcf", &format!("{VCF_HEAD}1\t200\trs2\tA\tC,G\t.\t.\t.\tGT\t1/2\t0/0\t2/2\n"));
    fails_with(&["info", "--geno", &only_multi], &["m.vcf", "no usable biallelic sites", "1 multi-allelic"]);
}

#[test]
fn vcf_duplicate_sample_ids() {
    let c = Case::new();
    let head = VCF_HEAD.replace("\tS3\n", "\tS1\n");
    let vcf = c.write("g.vcf", &format!("{head}1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/0\t0/1\t1/1\n"));
    fails_with(&["info", "--geno", &vcf], &["g.vcf", "S1"]);
}

// ---- dosage CSV ----

#[test]
fn csv_ragged_row() {
    let c = Case::new();
    let g = c.write("g.csv", "id,m1,m2\ns1,0,1\ns2,1\n");
    fails_with(&["info", "--geno", &g], &["g.csv", "line 3", "2 fields"]);
}

#[test]
fn csv_non_numeric_dosage() {
    let c = Case::new();
    let g = c.write("g.csv", "id,m1,m2\ns1,0,1\ns2,1,AB\n");
    fails_with(&["info", "--geno", &g], &["g.csv", "line 3", "column 3", "AB"]);
}

#[test]
fn csv_out_of_range_dosage() {
    let c = Case::new();
    let g = c.write("g.csv", "id,m1,m2\ns1,0,1\ns2,3,1\n");
    fails_with(&["info", "--geno", &g], &["g.csv", "line 3", "column 2", "3"]);
}

#[test]
fn csv_duplicate_sample_ids() {
    let c = Case::new();
    let g = c.write("g.csv", "id,m1,m2\ns1,0,1\ns1,1,2\n");
    fails_with(&["info", "--geno", &g], &["g.csv", "sample id 's1' occurs more than once"]);
}

#[test]
fn csv_duplicate_marker_ids() {
    let c = Case::new();
    let g = c.write("g.csv", "id,m1,m1\ns1,0,1\ns2,1,2\n");
    fails_with(&["info", "--geno", &g], &["g.csv", "marker id 'm1' occurs more than once"]);
}

// ---- phenotypes and traits ----

#[test]
fn pheno_with_no_matching_ids() {
    let c = Case::new();
    let bed = c.plink();
    let pheno = c.write("p.csv", "id,y\nA1,1\nA2,2\n");
    fails_with(&strs(&c.cv(&bed, Some(&pheno), "y", &[])), &["p.csv", "no sample id", "'A1'"]);
}

#[test]
fn pheno_duplicate_ids() {
    let c = Case::new();
    let g = c.write("g.csv", &small_csv());
    let pheno = c.write("p.csv", &(small_pheno() + "s3,1.0,7\n"));
    fails_with(
        &strs(&c.cv(&g, Some(&pheno), "y", &["--folds", "3"])),
        &["p.csv", "'s3' occurs more than once (lines 4, 14)"],
    );
}

#[test]
fn trait_that_does_not_exist() {
    let c = Case::new();
    let bed = c.plink();
    fails_with(&strs(&c.cv(&bed, None, "yield", &[])), &["pheno.csv", "no column named 'yield'", "DTT"]);
}

#[test]
fn constant_trait() {
    let c = Case::new();
    fails_with(&strs(&c.small_cv("flat", &["--folds", "3"])), &["'flat'", "same value (7) for all 12 samples"]);
}

// ---- QC, folds ----

#[test]
fn every_marker_removed_by_qc() {
    let c = Case::new();
    let mut s = String::from("id,m1,m2\n");
    for i in 1..=12 {
        s.push_str(&format!("s{i},2,0\n"));
    }
    let g = c.write("g.csv", &s);
    let pheno = c.write("p.csv", &small_pheno());
    fails_with(
        &strs(&c.cv(&g, Some(&pheno), "y", &["--folds", "3"])),
        &["quality control removed all 2 markers", "2 monomorphic", "--min-maf"],
    );
}

#[test]
fn more_folds_than_samples() {
    let c = Case::new();
    fails_with(&strs(&c.small_cv("y", &["--folds", "13"])), &["folds = 13", "more folds than samples (12)"]);
}

#[test]
fn a_fold_too_small_to_train_on() {
    let c = Case::new();
    // Fold B trains on the single sample of fold A.
    let mut folds = String::from("id,fold\ns1,A\n");
    for i in 2..=12 {
        folds.push_str(&format!("s{i},B\n"));
    }
    let folds = c.write("folds.csv", &folds);
    fails_with(&strs(&c.small_cv("y", &["--folds-file", &folds])), &["fold 'B'", "only 1 sample(s) to train on"]);
}

// ---- model configuration ----

#[test]
fn config_with_an_unknown_key() {
    let c = Case::new();
    let cfg = c.write("m.toml", "[train]\nlearning_rat = 0.1\n");
    let err = fails_with(
        &strs(&c.small_cv("y", &["--model", "mlp", "--config", &cfg])),
        &["m.toml", "learning_rat", "learning_rate"],
    );
    assert_eq!(err.matches("learning_rat`").count() + err.matches("learning_rat'").count(), 1, "{err}");
}

#[test]
fn config_with_an_out_of_range_value() {
    let c = Case::new();
    let cfg = c.write("m.toml", "dropout = 1.5\n");
    let err = fails_with(&strs(&c.small_cv("y", &["--model", "mlp", "--config", &cfg])), &["m.toml", "dropout", "1.5"]);
    // Said once: not again as its own cause.
    assert_eq!(err.matches("1.5").count(), 1, "{err}");
}
