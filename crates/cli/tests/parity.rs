//! Backend parity: every model of the catalogue with a burn network, started from the same
//! initial weights (built on `flex`, saved, loaded on the other backend) and given the same
//! batch, computes the same forward output, loss, gradients and one-step parameter update on
//! every backend compiled into this build, within `conformance::PARITY_TOLERANCE`; and a model
//! trained and saved on `flex` loads and predicts the same on each of them.
//!
//! `cargo test -p genopred --test parity` compares `flex` with burn's `ndarray` (a second CPU
//! backend, used only here and in the model crates' tests). CI also runs
//! `cargo test -p genopred --features wgpu --test parity`, which adds `wgpu` (on Mesa's software
//! Vulkan driver there, on a real GPU elsewhere); `--features tch` or `cuda` add those.

use burn::prelude::Device;
use genopred_train::conformance::PARITY_TOLERANCE;
use genopred_zoo::MODELS;

/// Every backend to compare with `flex`.
fn others() -> Vec<(&'static str, Device)> {
    #[allow(deprecated, unused_mut)]
    let mut backends = vec![("ndarray", Device::ndarray())];
    #[cfg(feature = "wgpu")]
    backends.push(("wgpu", Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)));
    #[cfg(feature = "cuda")]
    backends.push(("cuda", Device::cuda(0usize)));
    #[cfg(feature = "tch")]
    #[allow(deprecated)]
    backends.push(("tch", Device::libtorch()));
    backends
}

#[test]
fn every_model_matches_flex_on_every_compiled_backend() {
    let flex = Device::flex();
    let mut lines = Vec::new();
    for (name, device) in others() {
        for entry in MODELS {
            for (label, p) in entry.backend_parity(&flex, &device) {
                lines.push(format!(
                    "{label:<12} flex vs {name:<8} forward {:.1e}  loss {:.1e}  gradient {:.1e} ({})  update {:.1e} lr  ({} tensors)",
                    p.forward, p.loss, p.gradient, p.worst, p.update, p.tensors
                ));
            }
        }
    }
    // Every neural model of the catalogue was compared on every backend.
    let neural = MODELS.iter().filter(|m| m.compute() == genopred_core::records::Compute::Device).count();
    assert!(lines.len() >= neural * others().len(), "{lines:?}");
    println!("tolerance: {PARITY_TOLERANCE:?}");
    for line in lines {
        println!("{line}");
    }
}

#[test]
fn models_saved_on_flex_predict_the_same_on_every_compiled_backend() {
    let flex = Device::flex();
    for (_, device) in others() {
        for entry in MODELS {
            entry.check_cross_backend(&flex, &device);
        }
    }
}
