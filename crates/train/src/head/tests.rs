use burn::nn::Linear;

use super::*;
use crate::arch::Encoded;
use crate::config::TrainConfig;
use crate::init::{WeightInit, linear};
use crate::trainer::{TrainData, TrainRun, predict_side_batches, train};

#[derive(Module, Debug)]
struct Tiny {
    lin: Linear,
}

impl Network for Tiny {
    /// `[batch, 1, 4] → [batch, k]`.
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        self.lin.forward(x.flatten(1, 2))
    }
}

fn tiny(outputs: usize, device: &Device) -> Tiny {
    device.seed(7);
    Tiny { lin: linear(4, outputs, WeightInit::GlorotUniform, device) }
}

#[test]
fn each_record_reads_its_own_output_plus_the_covariate_head() {
    let device = Device::flex();
    let mut net = Headed::new(tiny(3, &device), 2, 3, &device);
    // Covariate weights [[1, 2, 3], [10, 20, 30]].
    net.covariates = Some(Linear {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![1f32, 2., 3., 10., 20., 30.], [2, 3]),
            &device,
        )),
        bias: None,
    });
    let x = Encoded { data: (0..8).map(|v| v as f32 / 8.0).collect(), n: 2, channels: 1, length: 4 };
    let body: Vec<f32> = net.body.forward(batch(&x, &device)).into_data().try_to_vec::<f32>().unwrap();
    let covariates = [1f32, 0., 0., 1.];
    // Record 0 reads output 2; record 1 the mean of outputs 0 and 1 (an untrained environment).
    let weights = [0f32, 0., 1., 0.5, 0.5, 0.];
    let side = Side { covariates: &covariates, n_covariates: 2, weights: &weights, outputs: 3 };
    let got = predict_side_batches(&net, &x, Some(&side), 1, &device).unwrap();
    let want = [body[2] + 3.0, 0.5 * (body[3] + 10.0) + 0.5 * (body[4] + 20.0)];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
    }
    // A plain network's single output, with or without one-hot weights.
    let plain = tiny(1, &device);
    let alone = predict_side_batches(&plain, &x, None, 2, &device).unwrap();
    let ones = [1f32, 1.];
    let picked = Side { covariates: &[], n_covariates: 0, weights: &ones, outputs: 1 };
    assert_eq!(predict_side_batches(&plain, &x, Some(&picked), 2, &device).unwrap(), alone);
    // Side inputs of the wrong length are refused.
    let short = Side { covariates: &covariates, n_covariates: 2, weights: &weights[..3], outputs: 3 };
    assert!(predict_side_batches(&net, &x, Some(&short), 2, &device).is_err());
}

fn batch(x: &Encoded, device: &Device) -> Tensor<3> {
    Tensor::from_data(TensorData::new(x.data.clone(), [x.n, x.channels, x.length]), device)
}

/// Two environments in which the same inputs act with opposite signs, plus an environment
/// intercept and a covariate effect: one output cannot fit it, an output per environment can.
#[test]
fn an_output_per_environment_fits_what_one_shared_output_cannot() {
    let n = 120;
    let x: Vec<f32> = (0..n * 4).map(|i| ((i * 7919) % 17) as f32 / 17.0 - 0.5).collect();
    let env: Vec<usize> = (0..n).map(|i| i % 2).collect();
    let c: Vec<f32> = (0..n).map(|i| ((i * 13) % 5) as f32 / 5.0).collect();
    let y: Vec<f32> = (0..n)
        .map(|i| {
            let g = x[i * 4] - 2.0 * x[i * 4 + 1];
            (if env[i] == 0 { g + 1.0 } else { -g - 1.0 }) + 0.5 * c[i]
        })
        .collect();
    let inputs = Encoded { data: x, n, channels: 1, length: 4 };
    let cfg = TrainConfig::new().with_epochs(150).with_patience(0).with_learning_rate(0.05).with_batch_size(16);
    let fit = |outputs: usize| -> f64 {
        let _rng = crate::predictor::device_rng_lock();
        let device = Device::flex().autodiff();
        let weights: Vec<f32> = (0..n)
            .flat_map(|i| {
                let e = env[i];
                (0..outputs).map(move |j| if outputs == 1 || j == e { 1.0 } else { 0.0 })
            })
            .collect();
        let side = Side { covariates: &c, n_covariates: 1, weights: &weights, outputs };
        let net = Headed::new(tiny(outputs, &device), 1, outputs, &device);
        let run = TrainRun { seed: 3, label: "tiny", observer: &genopred_core::Quiet, device_draws: None };
        let data = TrainData { x: &inputs, y: &y, side: Some(side) };
        let out = train(net, &cfg, data, None, &device, &run).unwrap();
        let pred =
            predict_side_batches(&out.net, &inputs, Some(&side), 32, &device.clone().without_autodiff()).unwrap();
        pred.iter().zip(&y).map(|(p, y)| f64::from((p - y).powi(2))).sum::<f64>() / n as f64
    };
    let (shared, per_env) = (fit(1), fit(2));
    assert!(per_env < 0.01, "an output per environment: mse {per_env}");
    assert!(shared > 0.3, "one shared output: mse {shared}");
}
