//! The burn backend neural models train on, chosen with `--backend` among those compiled in.

use anyhow::{Result, bail};
use burn::prelude::Device;

/// Backends this binary may know, with the cargo feature that compiles each in.
pub const BACKENDS: &[(&str, &str, bool)] = &[
    ("flex", "flex", cfg!(feature = "flex")),
    ("wgpu", "wgpu", cfg!(feature = "wgpu")),
    ("cuda", "cuda", cfg!(feature = "cuda")),
    ("tch", "tch", cfg!(feature = "tch")),
];

/// The default backend: the first compiled in.
pub fn default_name() -> &'static str {
    BACKENDS.iter().find(|b| b.2).map_or("none", |b| b.0)
}

/// The device of backend `name`, or a clear error naming the feature to build with.
pub fn device(name: &str) -> Result<Device> {
    let Some(&(name, feature, compiled)) = BACKENDS.iter().find(|b| b.0.eq_ignore_ascii_case(name)) else {
        bail!(
            "unknown backend '{name}'; known: {} (this build has: {})",
            BACKENDS.iter().map(|b| b.0).collect::<Vec<_>>().join(", "),
            BACKENDS.iter().filter(|b| b.2).map(|b| b.0).collect::<Vec<_>>().join(", ")
        );
    };
    if !compiled {
        bail!("backend '{name}' is not compiled into this binary; rebuild with `--features {feature}`");
    }
    Ok(match name {
        #[cfg(feature = "flex")]
        "flex" => Device::flex(),
        #[cfg(feature = "wgpu")]
        "wgpu" => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        #[cfg(feature = "cuda")]
        "cuda" => Device::cuda(0usize),
        // burn 0.22 marks burn-tch deprecated; it stays a backend while burn ships it.
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        "tch" => Device::libtorch(),
        _ => unreachable!("every compiled backend has a device"),
    })
}

/// How records describe where a model computed: the backend for models on the burn device, the
/// CPU for classical ones (whatever `--backend` said).
pub fn describe_for(compute: genopred_core::records::Compute, name: &str) -> String {
    match compute {
        genopred_core::records::Compute::Device => describe(name),
        genopred_core::records::Compute::Cpu => "cpu (f64, faer; no deep-learning backend)".into(),
    }
}

/// A one-line description of the backend for reports.
pub fn describe(name: &str) -> String {
    match name {
        "flex" => "flex (burn 0.22.1, pure-Rust CPU, f32)".into(),
        "wgpu" => "wgpu (burn 0.22.1, Vulkan/Metal/DX12 GPU, f32)".into(),
        "cuda" => "cuda (burn 0.22.1, CUDA GPU 0, f32)".into(),
        "tch" => "tch (burn 0.22.1, libtorch 2.9.0 CPU, f32)".into(),
        other => other.to_string(),
    }
}
