//! Weight initialisers burn lacks (Keras's TruncatedNormal and GlorotUniform with zero biases),
//! and constructors that use them: convolutions and dense layers, and the layers researchers
//! build other networks from — attention, embeddings, layer norm, GRU and LSTM — each with the
//! Keras and the PyTorch convention named ([`Convention`]), so a port starts where its original
//! did.
//!
//! burn's `Initializer` is also applied to biases; Keras and mxnet start biases at zero, so every
//! constructor here sets them to zero explicitly (PyTorch's own where it does not).
//!
//! Every draw comes from the device's RNG, which the trainer seeds per fit under
//! [`crate::predictor::device_rng_lock`] (`Architecture::build` runs there).

use burn::module::Param;
use burn::nn::attention::{MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{
    Embedding, EmbeddingConfig, GateController, Gru, GruConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, Lstm,
    LstmConfig, PaddingConfig1d,
};
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
    /// Normal(0, `std`), untruncated (PyTorch's `nn.Embedding` draws N(0, 1)).
    Normal {
        /// Standard deviation.
        std: f64,
    },
}

/// Whose defaults a layer starts from: a port of a Keras model starts like Keras, a port of a
/// PyTorch one like PyTorch. The constructors below document both, layer by layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Convention {
    /// Keras 3 (TensorFlow 2's `tf.keras` has the same defaults).
    Keras,
    /// PyTorch 2.
    Pytorch,
}

/// Keras's `LayerNormalization` epsilon.
pub const KERAS_LAYER_NORM_EPSILON: f64 = 1e-3;
/// PyTorch's `nn.LayerNorm` epsilon (burn's default too).
pub const PYTORCH_LAYER_NORM_EPSILON: f64 = 1e-5;

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
        WeightInit::GlorotUniform => uniform(shape, glorot_limit(fan_in, fan_out), device),
        WeightInit::Normal { std } => Tensor::random(shape, Distribution::Normal(0.0, std), device),
    }
}

fn glorot_limit(fan_in: usize, fan_out: usize) -> f64 {
    (6.0 / (fan_in + fan_out) as f64).sqrt()
}

fn uniform<const D: usize>(shape: [usize; D], limit: f64, device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Uniform(-limit, limit), device)
}

/// Keras's `Orthogonal(gain)` for a `rows × cols` kernel: a normal matrix of the larger side by
/// the smaller, its QR's Q with columns signed by R's diagonal, transposed back when `rows <
/// cols` (so the rows are orthonormal), times `gain`. The normal draws come from the device's
/// RNG; the QR runs on the host in f64 (faer).
pub fn orthogonal(rows: usize, cols: usize, gain: f64, device: &Device) -> Tensor<2> {
    let (tall, wide) = (rows.max(cols), rows.min(cols));
    let a: Vec<f32> = Tensor::<2>::random([tall, wide], Distribution::Normal(0.0, 1.0), device)
        .into_data()
        .try_to_vec()
        .expect("f32 draws");
    let a = faer::Mat::<f64>::from_fn(tall, wide, |i, j| f64::from(a[i * wide + j]));
    let qr = a.qr();
    let (q, r) = (qr.compute_thin_Q(), qr.thin_R());
    let sign: Vec<f64> = (0..wide).map(|j| if r[(j, j)] < 0.0 { -1.0 } else { 1.0 }).collect();
    let value = |i: usize, j: usize| -> f32 {
        // Q is tall × wide; the kernel is Q (rows ≥ cols) or Qᵀ.
        let (qi, qj) = if rows >= cols { (i, j) } else { (j, i) };
        (gain * q[(qi, qj)] * sign[qj]) as f32
    };
    let data: Vec<f32> = (0..rows).flat_map(|i| (0..cols).map(move |j| value(i, j))).collect();
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

fn set_linear(lin: &mut Linear, weight: Tensor<2>, bias: Option<Tensor<1>>) {
    let device = weight.device();
    let d_out = weight.dims()[1];
    lin.weight = Param::from_tensor(weight);
    if lin.bias.is_some() {
        lin.bias = Some(Param::from_tensor(bias.unwrap_or_else(|| Tensor::zeros([d_out], &device))));
    }
}

/// burn's `MultiHeadAttention` from `config` (`d_model`, `n_heads`, its dropout: drawn from burn's
/// device RNG, which the trainer seeds per step, see [`crate::device_draws`]), with the query,
/// key, value and output projections started as in `convention`:
///
/// - Keras `MultiHeadAttention`: every kernel `glorot_uniform` on its einsum shape — query, key
///   and value `(d_model, heads, key_dim)`, so fan_in = d_model·heads, fan_out = d_model·key_dim;
///   output `(heads, key_dim, d_model)`, fan_in = heads·key_dim, fan_out = heads·d_model — and
///   every bias zero.
/// - PyTorch `nn.MultiheadAttention`: query, key and value are rows of one packed
///   `3·d_model × d_model` `in_proj_weight`, `xavier_uniform_` over it (±sqrt(6 / (4·d_model)));
///   the output projection keeps `nn.Linear`'s `kaiming_uniform_(a=√5)` (±1/sqrt(d_model)); every
///   bias zero.
///
/// burn ties key_dim to d_model / heads, as both do by default.
pub fn attention(config: MultiHeadAttentionConfig, convention: Convention, device: &Device) -> MultiHeadAttention {
    let (d, h) = (config.d_model, config.n_heads);
    let k = d / h;
    let mut mha = config.init(device);
    let (qkv, out) = match convention {
        Convention::Keras => (glorot_limit(d * h, d * k), glorot_limit(h * k, h * d)),
        Convention::Pytorch => (glorot_limit(d, 3 * d), 1.0 / (d as f64).sqrt()),
    };
    for lin in [&mut mha.query, &mut mha.key, &mut mha.value] {
        set_linear(lin, uniform([d, d], qkv, device), None);
    }
    set_linear(&mut mha.output, uniform([d, d], out, device), None);
    mha
}

/// An embedding of `n` entries of width `d`: Keras's `Embedding` starts at Uniform(±0.05),
/// PyTorch's `nn.Embedding` at Normal(0, 1) (burn's own default is Normal(0, 1) too).
pub fn embedding(n: usize, d: usize, convention: Convention, device: &Device) -> Embedding {
    let mut emb = EmbeddingConfig::new(n, d).init(device);
    let weight = match convention {
        Convention::Keras => uniform([n, d], 0.05, device),
        Convention::Pytorch => Tensor::random([n, d], Distribution::Normal(0.0, 1.0), device),
    };
    emb.weight = Param::from_tensor(weight);
    emb
}

/// Layer norm over the last axis of width `d`: scale one, shift zero in both conventions; the
/// epsilon is the convention's ([`KERAS_LAYER_NORM_EPSILON`], [`PYTORCH_LAYER_NORM_EPSILON`]).
pub fn layer_norm(d: usize, convention: Convention, device: &Device) -> LayerNorm {
    let epsilon = match convention {
        Convention::Keras => KERAS_LAYER_NORM_EPSILON,
        Convention::Pytorch => PYTORCH_LAYER_NORM_EPSILON,
    };
    LayerNormConfig::new(d).with_epsilon(epsilon).init(device)
}

/// Starts a recurrent layer's gates (`gates`, in the original's packing order) as `convention`
/// does. Keras: the input kernels are one `glorot_uniform` `d_in × gates·h` matrix, the recurrent
/// kernels one `Orthogonal` `h × gates·h` matrix, cut into the gates; biases zero, and `bias_one`
/// (the LSTM's forget gate, `unit_forget_bias=True`) starts its bias at one. PyTorch: every weight
/// and bias Uniform(±1/sqrt(h)).
fn recurrent(
    gates: &mut [&mut GateController],
    d_in: usize,
    h: usize,
    bias_one: Option<usize>,
    convention: Convention,
) {
    let device = gates[0].input_transform.weight.device();
    let g = gates.len();
    match convention {
        Convention::Keras => {
            let kernel = uniform([d_in, g * h], glorot_limit(d_in, g * h), &device);
            let recurrent = orthogonal(h, g * h, 1.0, &device);
            for (i, gate) in gates.iter_mut().enumerate() {
                let cols = i * h..(i + 1) * h;
                let bias = (bias_one == Some(i)).then(|| Tensor::ones([h], &device));
                set_linear(&mut gate.input_transform, kernel.clone().slice([0..d_in, cols.clone()]), bias);
                set_linear(&mut gate.hidden_transform, recurrent.clone().slice([0..h, cols]), None);
            }
        }
        Convention::Pytorch => {
            let limit = 1.0 / (h as f64).sqrt();
            for gate in gates.iter_mut() {
                let b = |device: &Device| Some(uniform([h], limit, device));
                set_linear(&mut gate.input_transform, uniform([d_in, h], limit, &device), b(&device));
                set_linear(&mut gate.hidden_transform, uniform([h, h], limit, &device), b(&device));
            }
        }
    }
}

/// burn's `Lstm` from `config`, started as `convention`'s LSTM (see `recurrent` above: Keras
/// packs the gates i, f, c, o and starts the forget bias at one). Keras has one bias per gate
/// (burn's input transform holds it; the recurrent one stays zero), PyTorch two (`b_ih`, `b_hh`).
/// A config without a forget gate (burn's coupled variant) is started like the others.
pub fn lstm(config: LstmConfig, convention: Convention, device: &Device) -> Lstm {
    let (d_in, h) = (config.d_input, config.d_hidden);
    let mut lstm = config.init(device);
    let Lstm { input_gate, forget_gate, cell_gate, output_gate, .. } = &mut lstm;
    match forget_gate {
        Some(forget) => recurrent(&mut [input_gate, forget, cell_gate, output_gate], d_in, h, Some(1), convention),
        None => recurrent(&mut [input_gate, cell_gate, output_gate], d_in, h, None, convention),
    }
    lstm
}

/// burn's `Gru` from `config`, started as `convention`'s GRU (Keras packs the gates z, r, h;
/// every bias zero; PyTorch: Uniform(±1/sqrt(h)) throughout).
pub fn gru(config: GruConfig, convention: Convention, device: &Device) -> Gru {
    let (d_in, h) = (config.d_input, config.d_hidden);
    let mut gru = config.init(device);
    let Gru { update_gate, reset_gate, new_gate, .. } = &mut gru;
    recurrent(&mut [update_gate, reset_gate, new_gate], d_in, h, None, convention);
    gru
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

#[cfg(test)]
mod tests {
    use super::*;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec().unwrap()
    }

    fn max_abs(v: &[f32]) -> f64 {
        v.iter().fold(0.0f64, |m, x| m.max(f64::from(x.abs())))
    }

    /// Every value within ±limit and the largest near it (a uniform draw of this size).
    fn assert_uniform(v: &[f32], limit: f64, what: &str) {
        let m = max_abs(v);
        assert!(m <= limit * (1.0 + 1e-6) && m > 0.9 * limit, "{what}: max |w| {m}, limit {limit}");
    }

    fn seeded() -> (std::sync::MutexGuard<'static, ()>, Device) {
        let lock = crate::predictor::device_rng_lock();
        let device = Device::flex();
        device.seed(4);
        (lock, device)
    }

    fn gram(w: &[f32], rows: usize, cols: usize) -> Vec<f64> {
        let mut g = vec![0.0; rows * rows];
        for i in 0..rows {
            for j in 0..rows {
                g[i * rows + j] = (0..cols).map(|k| f64::from(w[i * cols + k]) * f64::from(w[j * cols + k])).sum();
            }
        }
        g
    }

    fn assert_identity(g: &[f64], n: usize, gain: f64) {
        for i in 0..n {
            for j in 0..n {
                let want = if i == j { gain * gain } else { 0.0 };
                assert!((g[i * n + j] - want).abs() < 1e-5, "({i},{j}): {}", g[i * n + j]);
            }
        }
    }

    #[test]
    fn orthogonal_kernels_have_orthonormal_rows_or_columns() {
        let (_lock, device) = seeded();
        // Wide (an LSTM's recurrent kernel, h × 4h): orthonormal rows.
        let wide = values(orthogonal(6, 24, 1.0, &device));
        assert_identity(&gram(&wide, 6, 24), 6, 1.0);
        // Tall: orthonormal columns (rows of the transpose), scaled by the gain.
        let tall = values(orthogonal(20, 5, 2.0, &device));
        let transposed: Vec<f32> = (0..5).flat_map(|j| (0..20).map(|i| tall[i * 5 + j]).collect::<Vec<_>>()).collect();
        assert_identity(&gram(&transposed, 5, 20), 5, 2.0);
    }

    #[test]
    fn attention_starts_as_keras_or_pytorch_does() {
        let (_lock, device) = seeded();
        let (d, h) = (64, 4);
        let config = || MultiHeadAttentionConfig::new(d, h);
        let keras = attention(config(), Convention::Keras, &device);
        let torch = attention(config(), Convention::Pytorch, &device);
        for (mha, qkv, out) in [
            (&keras, (6.0 / (d * h + d * 16) as f64).sqrt(), (6.0 / (h * 16 + h * d) as f64).sqrt()),
            (&torch, (6.0 / (4 * d) as f64).sqrt(), 1.0 / (d as f64).sqrt()),
        ] {
            for (name, lin, limit) in [
                ("query", &mha.query, qkv),
                ("key", &mha.key, qkv),
                ("value", &mha.value, qkv),
                ("output", &mha.output, out),
            ] {
                assert_uniform(&values(lin.weight.val()), limit, name);
                assert_eq!(max_abs(&values(lin.bias.as_ref().unwrap().val())), 0.0, "{name} bias");
            }
        }
    }

    #[test]
    fn embeddings_and_layer_norms_follow_the_convention() {
        let (_lock, device) = seeded();
        assert_uniform(&values(embedding(50, 40, Convention::Keras, &device).weight.val()), 0.05, "keras embedding");
        let torch = values(embedding(50, 40, Convention::Pytorch, &device).weight.val());
        let sd = (torch.iter().map(|v| f64::from(v * v)).sum::<f64>() / torch.len() as f64).sqrt();
        assert!((sd - 1.0).abs() < 0.05, "pytorch embedding sd {sd}");
        for (convention, eps) in [(Convention::Keras, 1e-3f64), (Convention::Pytorch, 1e-5)] {
            let ln = layer_norm(2, convention, &device);
            assert_eq!(values(ln.gamma.val()), vec![1.0; 2]);
            assert_eq!(values(ln.beta.as_ref().unwrap().val()), vec![0.0; 2]);
            // [0, 0.02]: mean 0.01, variance 1e-4; the epsilon decides the scale.
            let x = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 0.02], [1, 2]), &device);
            let out = values(ln.forward(x));
            let want = -0.01 / (1e-4 + eps).sqrt();
            assert!((f64::from(out[0]) - want).abs() < 1e-4, "{convention:?}: {} vs {want}", out[0]);
        }
    }

    #[test]
    fn recurrent_layers_start_as_keras_or_pytorch_does() {
        let (_lock, device) = seeded();
        let (d_in, h) = (10, 6);
        let keras = lstm(LstmConfig::new(d_in, h, true), Convention::Keras, &device);
        let forget = keras.forget_gate.as_ref().unwrap();
        let gates = [&keras.input_gate, forget, &keras.cell_gate, &keras.output_gate];
        let limit = (6.0 / (d_in + 4 * h) as f64).sqrt();
        let mut recurrent = vec![0f32; h * 4 * h];
        for (g, gate) in gates.iter().enumerate() {
            assert!(max_abs(&values(gate.input_transform.weight.val())) <= limit);
            let bias = values(gate.input_transform.bias.as_ref().unwrap().val());
            assert_eq!(bias, vec![if g == 1 { 1.0 } else { 0.0 }; h], "gate {g}: the forget bias starts at one");
            assert_eq!(values(gate.hidden_transform.bias.as_ref().unwrap().val()), vec![0.0; h]);
            let w = values(gate.hidden_transform.weight.val());
            for i in 0..h {
                recurrent[i * 4 * h + g * h..i * 4 * h + (g + 1) * h].copy_from_slice(&w[i * h..(i + 1) * h]);
            }
        }
        // The four recurrent kernels side by side are one orthogonal h × 4h matrix.
        assert_identity(&gram(&recurrent, h, 4 * h), h, 1.0);
        let torch = gru(GruConfig::new(d_in, h, true), Convention::Pytorch, &device);
        for gate in [&torch.update_gate, &torch.reset_gate, &torch.new_gate] {
            for lin in [&gate.input_transform, &gate.hidden_transform] {
                assert!(max_abs(&values(lin.weight.val())) <= 1.0 / (h as f64).sqrt());
                assert!(max_abs(&values(lin.bias.as_ref().unwrap().val())) > 0.0, "PyTorch draws its biases");
            }
        }
        let keras = gru(GruConfig::new(d_in, h, true), Convention::Keras, &device);
        assert_eq!(max_abs(&values(keras.reset_gate.input_transform.bias.as_ref().unwrap().val())), 0.0);
    }
}
