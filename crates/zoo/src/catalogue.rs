//! The models, one line each. Adding an architecture: its crate, one line here, and the
//! dependency in this crate's `Cargo.toml` (see CONTRIBUTING.md).

use crate::classical::Cpu;
use crate::entry::ModelEntry;
use crate::neural::Neural;

/// Every model, in the order `genopred models` and reports list them.
pub static MODELS: &[&dyn ModelEntry] = &[
    &Cpu::<genopred_gblup::Gblup>::ENTRY,
    &Cpu::<genopred_rkhs::Rkhs>::ENTRY,
    &Cpu::<genopred_bayesb::BayesB>::ENTRY,
    &Neural::<genopred_dnngp::Dnngp>::ENTRY,
    &Neural::<genopred_deepgs::DeepGs>::ENTRY,
    &Neural::<genopred_dlgwas::Dlgwas>::ENTRY,
    &Neural::<genopred_mlp::Mlp>::ENTRY,
];

#[cfg(test)]
mod tests {
    use burn::prelude::Device;
    use genopred_core::tuning::{SearchSpace, overlay};

    use super::MODELS;

    /// Every shipped space parses, tunes only keys the model has, and draws values the model
    /// accepts (a draw written over no config builds a model).
    #[test]
    fn shipped_spaces_build_models() {
        let dir = tempfile::tempdir().unwrap();
        let device = Device::flex();
        let mut with_space = Vec::new();
        for entry in MODELS {
            let Some(text) = entry.tuning_space() else { continue };
            with_space.push(entry.name());
            let space = SearchSpace::parse(text, entry.name()).unwrap();
            for (i, values) in space.draws(20, 3).into_iter().enumerate() {
                let mut table = toml::Table::new();
                for (k, v) in &values {
                    overlay(&mut table, k, v).unwrap();
                }
                let path = dir.path().join(format!("{}-{i}.toml", entry.name()));
                std::fs::write(&path, toml::to_string(&table).unwrap()).unwrap();
                let built = entry
                    .build(Some(&path), &device)
                    .unwrap_or_else(|e| panic!("{}: draw {values:?} does not build: {e}", entry.name()));
                for (k, v) in &values {
                    let got = k.split('.').fold(&built.config, |at, part| &at[part]);
                    assert_eq!(got, v, "{}: {k} not applied", entry.name());
                }
            }
        }
        assert_eq!(with_space, ["dnngp", "deepgs", "dlgwas", "mlp"]);
    }
}
