//! Backend parity: every neural model, started from the same initial weights (built on `flex`,
//! saved, loaded on the other backend) and given the same batch, computes the same forward
//! output, loss, gradients and one-step parameter update on every backend compiled into this
//! build, within `conformance::PARITY_TOLERANCE`; and a model trained and saved on `flex` loads
//! and predicts the same on each of them.
//!
//! `cargo test -p genopred --test parity` compares `flex` with burn's `ndarray` (a second CPU
//! backend, used only here and in the model crates' tests). CI also runs
//! `cargo test -p genopred --features wgpu --test parity`, which adds `wgpu` (on Mesa's software
//! Vulkan driver there, on a real GPU elsewhere); `--features tch` or `cuda` add those.

use burn::prelude::Device;
use genopred_deepgs::{DeepGs, DeepGsConfig};
use genopred_dlgwas::{Dlgwas, DlgwasConfig};
use genopred_dnngp::{Dnngp, DnngpConfig, Variant};
use genopred_mlp::{Mlp, MlpConfig};
use genopred_train::conformance::{self, PARITY_TOLERANCE, Parity};
use genopred_train::{Architecture, TrainConfig};

/// Every backend to compare with `flex`.
fn others() -> Vec<(&'static str, Device)> {
    #[allow(deprecated, unused_mut)]
    let mut backends = vec![("ndarray", Device::ndarray())];
    #[cfg(feature = "wgpu")]
    backends.push(("wgpu", Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)));
    #[cfg(feature = "cuda")]
    backends.push(("cuda", Device::cuda(0usize)));
    #[cfg(feature = "tch")]
    backends.push(("tch", Device::libtorch()));
    backends
}

fn parity<A: Architecture>(label: &str, config: &A::Config, shape: (usize, usize)) -> Vec<String> {
    let flex = Device::flex();
    let mut lines = Vec::new();
    for (name, device) in others() {
        let p: Parity = conformance::check_backend_parity::<A>(config, shape, &flex, &device);
        lines.push(format!(
            "{label:<12} flex vs {name:<8} forward {:.1e}  loss {:.1e}  gradient {:.1e} ({})  update {:.1e} lr  ({} tensors)",
            p.forward, p.loss, p.gradient, p.worst, p.update, p.tensors
        ));
    }
    lines
}

fn quick(train: TrainConfig) -> TrainConfig {
    train.with_epochs(2).with_patience(0).with_batch_size(16)
}

#[test]
fn every_model_matches_flex_on_every_compiled_backend() {
    let mut report = Vec::new();
    report.extend(parity::<Dnngp>("dnngp", &DnngpConfig::new(), (1, 48)));
    report.extend(parity::<Dnngp>("dnngp v3", &DnngpConfig::new().with_variant(Variant::V3), (1, 48)));
    report.extend(parity::<DeepGs>("deepgs", &DeepGsConfig::new(), (1, 160)));
    report.extend(parity::<Dlgwas>("dlgwas", &DlgwasConfig::new(), (4, 96)));
    report.extend(parity::<Mlp>("mlp", &MlpConfig::new(), (1, 160)));
    println!("tolerance: {PARITY_TOLERANCE:?}");
    for line in report {
        println!("{line}");
    }
}

#[test]
fn models_saved_on_flex_predict_the_same_on_every_compiled_backend() {
    let flex = Device::flex();
    for (_, device) in others() {
        let dnngp = DnngpConfig::new();
        let deepgs = DeepGsConfig::new();
        let dlgwas = DlgwasConfig::new();
        let mlp = MlpConfig::new();
        conformance::check_cross_backend::<Dnngp>(&dnngp.clone().with_train(quick(dnngp.train)), &flex, &device, 60);
        conformance::check_cross_backend::<DeepGs>(
            &deepgs.clone().with_train(quick(deepgs.train)),
            &flex,
            &device,
            120,
        );
        conformance::check_cross_backend::<Dlgwas>(&dlgwas.clone().with_train(quick(dlgwas.train)), &flex, &device, 60);
        conformance::check_cross_backend::<Mlp>(&mlp.clone().with_train(quick(mlp.train)), &flex, &device, 60);
    }
}
