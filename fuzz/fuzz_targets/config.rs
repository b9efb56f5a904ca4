//! `--config FILE.toml` for two model configs: merge over the defaults and range-check. Any
//! error is fine; a panic is a bug, and an accepted config must pass its own check.
#![no_main]

use genopred_train::{Architecture, resolve_config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, data).unwrap();
    use genopred_dlgwas::{Dlgwas, DlgwasConfig};
    use genopred_dnngp::{Dnngp, DnngpConfig};
    if let Ok(c) = resolve_config(&DnngpConfig::new(), Some(&path)) {
        let _ = Dnngp::check(&c);
    }
    if let Ok(c) = resolve_config(&DlgwasConfig::new(), Some(&path)) {
        let _ = Dlgwas::check(&c);
    }
});
