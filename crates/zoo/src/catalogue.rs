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
    &Neural::<genopred_attention::Attention>::ENTRY,
    &crate::ensemble::EnsembleEntry,
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
        // The published models and the worked examples keep their spaces (a new model's space
        // is checked above without an edit here).
        for shipped in ["dnngp", "deepgs", "dlgwas", "mlp", "attention"] {
            assert!(with_space.contains(&shipped), "{shipped} lost its space: {with_space:?}");
        }
    }

    /// The ensemble's saved settings read back as they were written; bad member tables are named.
    #[test]
    fn ensemble_settings_round_trip_and_bad_member_tables_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let device = Device::flex();
        let entry = crate::find("ensemble").unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let first = entry
            .build(Some(&write("a.toml", "top_percent = 5.0\n[member.deepgs.train]\nepochs = 7\n")), &device)
            .unwrap();
        assert_eq!(first.config["member"]["deepgs"]["train"]["epochs"], 7);
        assert_eq!(first.config["member"]["gblup"]["grid_points"], 100);
        let again = entry.build(Some(&write("b.toml", &first.config_toml)), &device).unwrap();
        assert_eq!(again.config, first.config);
        for (text, says) in [
            ("[member.dnngp]\nfilters = 3\n", "`[member.dnngp]` names no member"),
            ("[member.deepgs]\nfliters = 3\n", "[member.deepgs]: unknown key `fliters`"),
            ("members = [\"ensemble\", \"gblup\"]\n", "cannot be a member of itself"),
            ("members = [\"gblup\"]\n", "at least two members"),
            ("member = 3\n", "`member` must be a table"),
        ] {
            let e = match entry.build(Some(&write("bad.toml", text)), &device) {
                Ok(_) => panic!("{text:?} was accepted"),
                Err(e) => e.to_string(),
            };
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }
}
