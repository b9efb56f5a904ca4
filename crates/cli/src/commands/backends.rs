//! `genopred backends`: the burn backends this build knows, and a quick check that one runs here.

use std::time::Instant;

use anyhow::{Result, anyhow};
use burn::prelude::*;
use burn::tensor::Distribution;
use clap::Args;

use crate::backend;

/// Arguments of `genopred backends`.
#[derive(Debug, Args)]
pub struct BackendsArgs {
    /// Run a few tensor operations (a matrix product, a convolution's forward and backward pass)
    /// on this backend and report whether it works here.
    #[arg(long, value_name = "BACKEND")]
    pub probe: Option<String>,
}

/// Runs the command.
pub fn run(args: &BackendsArgs) -> Result<()> {
    let Some(name) = &args.probe else {
        println!("{:<6} {:<9} what", "name", "compiled");
        for (name, feature, compiled) in backend::BACKENDS {
            println!(
                "{name:<6} {:<9} {}",
                if *compiled { "yes" } else { "no" },
                if *compiled { backend::describe(name) } else { format!("build with `--features {feature}`") }
            );
        }
        println!("\ndefault: {} (--backend NAME, or `backend = \"NAME\"` in the config file)", backend::default_name());
        return Ok(());
    };
    let device = backend::device(name)?;
    let started = Instant::now();
    // Device start-up failures (no adapter, no driver) panic inside the backends: report them.
    let outcome = std::panic::catch_unwind(|| exercise(&device));
    match outcome {
        Ok(Ok(check)) => {
            println!(
                "{name}: ok, {} ({:.0} ms, checksum {check:.4})",
                backend::describe(name),
                started.elapsed().as_secs_f64() * 1e3
            );
            Ok(())
        }
        Ok(Err(e)) => Err(e),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(anyhow!("backend '{name}' does not run on this machine: {msg}"))
        }
    }
}

/// A matrix product (checked against the host's sum) and a 1-D convolution's forward and
/// backward pass (checked to be finite).
fn exercise(device: &Device) -> Result<f64> {
    let x: Vec<f32> = (0..64 * 48).map(|i| ((i * 37 % 101) as f32) / 101.0).collect();
    let a = Tensor::<2>::from_data(TensorData::new(x.clone(), [64, 48]), device);
    let product = a.clone().matmul(a.transpose()).sum().into_scalar::<f32>();
    let ad = device.clone().autodiff();
    ad.seed(1);
    let conv = burn::nn::conv::Conv1dConfig::new(4, 8, 5).init(&ad);
    let input = Tensor::<3>::random([2, 4, 32], Distribution::Default, &ad).require_grad();
    let out = conv.forward(input.clone()).sum();
    let grads = out.backward();
    let g = input.grad(&grads).ok_or_else(|| anyhow!("no gradient came back"))?.abs().sum().into_scalar::<f32>();
    // Σ_ij (a aᵀ)_ij = Σ_k (Σ_i a_ik)².
    let expected = (0..48).map(|k| (0..64).map(|i| f64::from(x[i * 48 + k])).sum::<f64>().powi(2)).sum::<f64>();
    let rel = (f64::from(product) - expected).abs() / expected;
    if !g.is_finite() || rel > 1e-3 {
        return Err(anyhow!("wrong results: matrix product {product} (expected {expected:.1}), gradient sum {g}"));
    }
    Ok(f64::from(product))
}
