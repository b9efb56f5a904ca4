//! Phenotype tables, and reading every column as a trait.
#![no_main]

use genopred_core::{PhenoOptions, Phenotypes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = PhenoOptions { id_column: None, missing: vec!["-9".into()] };
    if let Ok(p) = Phenotypes::from_reader(data, b',', std::path::Path::new("fuzz.csv"), &options) {
        for name in p.columns().to_vec() {
            if let Ok(v) = p.trait_values(&name) {
                assert_eq!(v.len(), p.ids().len());
                assert!(v.iter().flatten().all(|x| x.is_finite()), "non-finite trait value accepted");
            }
            let _ = p.labels(&name);
        }
    }
});
