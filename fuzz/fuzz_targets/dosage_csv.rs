//! Dosage CSV/TSV tables.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.csv");
    let delimiter = if data.first() == Some(&b'\t') { b'\t' } else { b',' };
    if let Ok(g) = genopred_core::readers::dosage_csv::read_dosage_table(data, delimiter, path) {
        assert_eq!(g.samples().len(), g.n_samples());
    }
});
