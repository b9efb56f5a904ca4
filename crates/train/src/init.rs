//! Weight initialisers burn lacks (Keras's TruncatedNormal and GlorotUniform with zero biases),
//! and conv/dense constructors that use them.
//!
//! burn's `Initializer` is also applied to biases; Keras and mxnet start biases at zero, so every
//! constructor here sets them to zero explicitly.

use burn::module::Param;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig1d};
use burn::prelude::*;
use burn::tensor::Distribution;
use serde::{Deserialize, Serialize};

/// How a layer's weights start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum WeightInit {
    /// Keras `TruncatedNormal(0, std)`: normal, redrawn beyond two standard deviations.
    TruncatedNormal {
        /// Standard deviation before truncation.
        std: f64,
    },
    /// Uniform within ±`limit` (mxnet `mx.init.uniform(limit)`).
    Uniform {
        /// Half-width.
        limit: f64,
    },
    /// Keras's default `glorot_uniform`: ±sqrt(6 / (fan_in + fan_out)).
    GlorotUniform,
}

/// A truncated normal tensor drawn with the device's (seeded) RNG.
pub fn truncated_normal<const D: usize>(shape: [usize; D], std: f64, device: &Device) -> Tensor<D> {
    let mut z = Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), device);
    loop {
        let outside = z.clone().abs().greater_elem(2.0);
        if !outside.clone().any().into_scalar::<bool>() {
            break;
        }
        let fresh = Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), device);
        z = z.mask_where(outside, fresh);
    }
    z.mul_scalar(std)
}

fn draw<const D: usize>(
    shape: [usize; D],
    fan_in: usize,
    fan_out: usize,
    init: WeightInit,
    device: &Device,
) -> Tensor<D> {
    match init {
        WeightInit::TruncatedNormal { std } => truncated_normal(shape, std, device),
        WeightInit::Uniform { limit } => Tensor::random(shape, Distribution::Uniform(-limit, limit), device),
        WeightInit::GlorotUniform => {
            let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
            Tensor::random(shape, Distribution::Uniform(-limit, limit), device)
        }
    }
}

/// A 1-D convolution built from `config` (channels, kernel, stride, padding), initialised
/// eagerly: weights by `init`, biases zero.
pub fn conv1d(config: Conv1dConfig, init: WeightInit, device: &Device) -> Conv1d {
    let (c_in, c_out, k) = (config.channels_in / config.groups, config.channels_out, config.kernel_size);
    let mut conv = config.init(device);
    conv.weight = Param::from_tensor(draw([c_out, c_in, k], c_in * k, c_out * k, init, device));
    conv.bias = Some(Param::from_tensor(Tensor::zeros([c_out], device)));
    conv
}

/// A stride-1 convolution with Keras's `padding="same"` (an even kernel pads one more on the
/// right, as TensorFlow does).
pub fn conv1d_same(c_in: usize, c_out: usize, kernel: usize, init: WeightInit, device: &Device) -> Conv1d {
    conv1d(Conv1dConfig::new(c_in, c_out, kernel).with_padding(PaddingConfig1d::Same), init, device)
}

/// A dense layer `[b, d_in] → [b, d_out]`, initialised eagerly (weights by `init`, biases zero).
pub fn linear(d_in: usize, d_out: usize, init: WeightInit, device: &Device) -> Linear {
    let mut lin = LinearConfig::new(d_in, d_out).init(device);
    lin.weight = Param::from_tensor(draw([d_in, d_out], d_in, d_out, init, device));
    lin.bias = Some(Param::from_tensor(Tensor::zeros([d_out], device)));
    lin
}

/// λ·Σw² of a tensor parameter (a Keras `l2(λ)` regulariser), or nothing when λ is 0.
pub fn l2<const D: usize>(param: &Param<Tensor<D>>, lambda: f64) -> Option<Tensor<1>> {
    (lambda > 0.0).then(|| param.val().square().sum().mul_scalar(lambda))
}

/// Sums optional penalty terms.
pub fn sum_penalties(terms: impl IntoIterator<Item = Option<Tensor<1>>>) -> Option<Tensor<1>> {
    terms.into_iter().flatten().reduce(|a, b| a + b)
}
