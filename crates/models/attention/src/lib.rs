//! A small transformer encoder over patches of markers — not a published model, but the second
//! worked example of CONTRIBUTING.md ("Adding a model"), built from burn's own layers rather than
//! convolutions: `MultiHeadAttention` (with its own dropout), `LayerNorm`, `Embedding`, `Linear`,
//! `Dropout` and GELU.
//!
//! `[batch, 1, markers]` → zero-pad to whole patches → `[batch, tokens, patch]` → Dense(width)
//! plus a learned position embedding → `blocks` × (LayerNorm → attention → Dropout → residual;
//! LayerNorm → Dense(ffn) → GELU → Dense(width) → Dropout → residual) → mean over tokens →
//! LayerNorm → Dense(1).
//!
//! Pre-norm blocks (as in ViT) started with PyTorch's initialisers
//! ([`genopred_train::init::Convention::Pytorch`]); the dropout of burn's attention and of the
//! residual branches draws from burn's device RNG, which the trainer seeds per step
//! (`genopred_train::device_draws`), so results repeat whatever `--jobs`.

use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm, Linear};
use burn::prelude::*;
use burn::tensor::activation::gelu;
use genopred_core::GenotypeMatrix;
use genopred_core::check::{divides, rate};
use genopred_core::encoding::{DosageEncoder, Scaling};
use genopred_train::init::{Convention, WeightInit, attention, embedding, layer_norm, linear};
use genopred_train::inputs::{check_counts, describe_dosage, dosage_saliency, encode_dosage};
use genopred_train::{Architecture, Encoded, InputContext, Network, TrainConfig, TrainError};

/// Hyperparameters.
#[derive(Config, Debug)]
pub struct AttentionConfig {
    /// Markers per token (the last patch is padded with zeros, the training mean).
    #[config(default = 32)]
    pub patch: usize,
    /// Model width (each token's vector).
    #[config(default = 32)]
    pub width: usize,
    /// Attention heads; must divide `width`.
    #[config(default = 4)]
    pub heads: usize,
    /// Encoder blocks.
    #[config(default = 1)]
    pub blocks: usize,
    /// Hidden units of each block's feed-forward part.
    #[config(default = 64)]
    pub ffn: usize,
    /// Dropout of the attention weights and of both residual branches (burn's layers).
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Training loop settings: Adam lr 0.001, batch 32, up to 200 epochs, patience 20, best
    /// weights restored.
    #[config(default = "TrainConfig::new().with_batch_size(32).with_epochs(200).with_patience(20)")]
    pub train: TrainConfig,
}

/// One pre-norm encoder block.
#[derive(Module, Debug)]
pub struct Block {
    norm_attention: LayerNorm,
    attention: MultiHeadAttention,
    norm_ffn: LayerNorm,
    ffn_in: Linear,
    ffn_out: Linear,
    drop: Dropout,
}

impl Block {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let a = self.attention.forward(MhaInput::self_attn(self.norm_attention.forward(x.clone()))).context;
        let x = x + self.drop.forward(a);
        let f = self.ffn_out.forward(gelu(self.ffn_in.forward(self.norm_ffn.forward(x.clone()))));
        x + self.drop.forward(f)
    }
}

/// The network.
#[derive(Module, Debug)]
pub struct AttentionNet {
    patch_embed: Linear,
    position: Embedding,
    blocks: Vec<Block>,
    norm: LayerNorm,
    out: Linear,
    patch: usize,
    tokens: usize,
}

impl Network for AttentionNet {
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let [batch, _, markers] = x.dims();
        let device = x.device();
        let mut x = x.flatten::<2>(1, 2);
        let padded = self.tokens * self.patch;
        if padded > markers {
            x = Tensor::cat(vec![x, Tensor::zeros([batch, padded - markers], &device)], 1);
        }
        let x = self.patch_embed.forward(x.reshape([batch, self.tokens, self.patch]));
        let positions = Tensor::<1, Int>::arange(0..self.tokens as i64, &device).reshape([1, self.tokens]);
        let mut h = x + self.position.forward(positions);
        for block in &self.blocks {
            h = block.forward(h);
        }
        let pooled = h.mean_dim(1).reshape([batch, self.patch_embed.weight.dims()[1]]);
        self.out.forward(self.norm.forward(pooled))
    }
}

/// Marker for [`Architecture`].
#[derive(Debug, Clone, Copy)]
pub struct Attention;

impl Architecture for Attention {
    const NAME: &'static str = "attention";
    const ABOUT: &'static str =
        "Transformer encoder over marker patches from burn's own layers (the second worked example)";
    const TUNING_SPACE: Option<&'static str> = Some(include_str!("../tuning.toml"));
    type Config = AttentionConfig;
    type Input = DosageEncoder;
    type Net = AttentionNet;

    fn default_config() -> AttentionConfig {
        AttentionConfig::new()
    }

    fn check(c: &AttentionConfig) -> Result<(), TrainError> {
        check_counts(&[
            ("patch", c.patch),
            ("width", c.width),
            ("heads", c.heads),
            ("blocks", c.blocks),
            ("ffn", c.ffn),
        ])?;
        divides("heads", c.heads, "width", c.width)?;
        rate("dropout", c.dropout)?;
        Ok(c.train.check()?)
    }

    fn train_config(c: &AttentionConfig) -> &TrainConfig {
        &c.train
    }

    fn train_config_mut(c: &mut AttentionConfig) -> &mut TrainConfig {
        &mut c.train
    }

    fn fit_input(_c: &AttentionConfig, ctx: &InputContext<'_>) -> Result<DosageEncoder, TrainError> {
        Ok(DosageEncoder::fit(ctx.geno, ctx.train_rows, Scaling::Standardised))
    }

    fn encode(input: &DosageEncoder, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Encoded, TrainError> {
        encode_dosage(Self::NAME, input, geno, rows)
    }

    fn input_shape(input: &DosageEncoder) -> (usize, usize) {
        (1, input.n_markers())
    }

    fn build(c: &AttentionConfig, (channels, length): (usize, usize), outputs: usize, device: &Device) -> AttentionNet {
        let markers = channels * length;
        let tokens = markers.div_ceil(c.patch).max(1);
        let torch = Convention::Pytorch;
        // nn.Linear's own start: kaiming_uniform(a=√5) weights, ±1/sqrt(fan_in); biases zero
        // here (PyTorch draws them too; ViT implementations zero them).
        let dense = |d_in: usize, d_out: usize| {
            linear(d_in, d_out, WeightInit::Uniform { limit: 1.0 / (d_in as f64).sqrt() }, device)
        };
        let blocks = (0..c.blocks)
            .map(|_| Block {
                norm_attention: layer_norm(c.width, torch, device),
                attention: attention(
                    MultiHeadAttentionConfig::new(c.width, c.heads).with_dropout(c.dropout),
                    torch,
                    device,
                ),
                norm_ffn: layer_norm(c.width, torch, device),
                ffn_in: dense(c.width, c.ffn),
                ffn_out: dense(c.ffn, c.width),
                drop: DropoutConfig::new(c.dropout).init(),
            })
            .collect();
        AttentionNet {
            patch_embed: dense(c.patch, c.width),
            position: embedding(tokens, c.width, torch, device),
            blocks,
            norm: layer_norm(c.width, torch, device),
            out: dense(c.width, outputs),
            patch: c.patch,
            tokens,
        }
    }

    fn marker_saliency(input: &DosageEncoder, grad: &[f32], n: usize) -> Vec<f32> {
        dosage_saliency(input, grad, n)
    }

    fn describe_input(input: &DosageEncoder) -> serde_json::Value {
        describe_dosage(input)
    }
}

#[cfg(test)]
mod tests {
    use genopred_train::conformance;

    use super::*;

    /// wheat599's 1,225 markers at the defaults: 39 tokens of 32 markers (1,248, 23 padded).
    /// Patch embedding 32·32 + 32 = 1,056; positions 39·32 = 1,248; the block: two layer norms
    /// 2·64, attention 4·(32·32 + 32) = 4,224, feed-forward 32·64 + 64 + 64·32 + 32 = 4,192;
    /// final layer norm 64; output 33. Total 10,945 (9,697 + 32·⌈M/32⌉).
    #[test]
    fn parameter_count_and_shape() {
        let device = Device::flex();
        conformance::check_param_count::<Attention>(&AttentionConfig::new(), (1, 1225), 10_945, &device);
        conformance::check_output_shape::<Attention>(&AttentionConfig::new(), (1, 1225), &device);
        // A marker count that fills the last patch exactly: 40 tokens.
        conformance::check_param_count::<Attention>(&AttentionConfig::new(), (1, 1280), 10_977, &device);
    }

    #[test]
    fn heads_must_divide_the_width() {
        let e = Attention::check(&AttentionConfig::new().with_heads(3)).unwrap_err();
        assert_eq!(e.to_string(), "heads = 3 is out of range: must divide width = 32");
    }

    #[test]
    fn conformance() {
        let device = Device::flex();
        let q = AttentionConfig::new()
            .with_patch(8)
            .with_width(16)
            .with_heads(2)
            .with_ffn(32)
            .with_train(AttentionConfig::new().train.with_epochs(60).with_patience(0));
        let short = |epochs: usize| q.clone().with_train(q.train.clone().with_epochs(epochs));
        conformance::check_determinism::<Attention>(&short(3), &device, 80);
        conformance::check_loss_falls::<Attention>(&q, &device, 80);
        conformance::check_round_trip::<Attention>(&short(2), &device, 80);
        #[allow(deprecated)]
        let ndarray = Device::ndarray();
        conformance::check_cross_backend::<Attention>(&short(2), &device, &ndarray, 80);
    }
}
