//! Backend selection: `genopred backends`, `--backend`, the config file's `backend` key, and the
//! error for a backend this build does not have.

mod common;

use common::{fails_with, fixture, genopred, stderr, summary};

#[test]
fn backends_lists_and_probes() {
    let o = genopred(&["backends"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.lines().any(|l| l.starts_with("flex") && l.contains("yes")), "{text}");
    for (name, compiled) in
        [("wgpu", cfg!(feature = "wgpu")), ("cuda", cfg!(feature = "cuda")), ("tch", cfg!(feature = "tch"))]
    {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} missing: {text}"));
        if !compiled {
            assert!(line.contains(&format!("--features {name}")), "{line}");
        }
    }
    let o = genopred(&["backends", "--probe", "flex"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("flex: ok"));
    fails_with(&["backends", "--probe", "metal"], &["unknown backend 'metal'", "flex, wgpu, cuda, tch"]);
}

#[test]
fn backend_from_flag_or_config_and_missing_features_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (geno, pheno) = (fixture("maize300/maize300.bed"), fixture("maize300/pheno.csv"));
    let (g, p) = (geno.to_str().unwrap(), pheno.to_str().unwrap());
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    let base = ["cv", "--geno", g, "--pheno", p, "--trait", "DTT", "--model", "mlp", "--folds", "2", "--out", o];

    if !cfg!(feature = "tch") {
        let mut args = base.to_vec();
        args.extend(["--backend", "tch"]);
        fails_with(&args, &["backend 'tch' is not compiled into this binary", "--features tch"]);
        // The same from the config file.
        let config = dir.path().join("tch.toml");
        std::fs::write(&config, "backend = \"tch\"\n[train]\nepochs = 1\n").unwrap();
        let mut args = base.to_vec();
        args.extend(["--config", config.to_str().unwrap()]);
        fails_with(&args, &["backend 'tch' is not compiled into this binary", "--features tch"]);
    }
    let config = dir.path().join("flex.toml");
    std::fs::write(&config, "backend = \"flex\"\n[train]\nepochs = 1\n").unwrap();
    let mut args = base.to_vec();
    args.extend(["--config", config.to_str().unwrap()]);
    let run = genopred(&args);
    assert!(run.status.success(), "{}", stderr(&run));
    let s = summary(&out);
    assert!(s["provenance"]["backend"].as_str().unwrap().starts_with("flex"), "{}", s["provenance"]["backend"]);
    // The peak memory of the run is recorded (Linux).
    if cfg!(target_os = "linux") {
        assert!(s["provenance"]["peak_rss_bytes"].as_u64().unwrap() > 1_000_000);
    }
    // The flag wins over the file.
    let mut args = base.to_vec();
    args.extend(["--config", config.to_str().unwrap(), "--backend", "nope"]);
    fails_with(&args, &["unknown backend 'nope'"]);
}
