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
