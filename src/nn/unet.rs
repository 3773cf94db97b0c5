//! The class-conditional U-Net eps-model (Ronneberger et al. 2015; DDPM App. B), sized for
//! 28x28 digits on two CPU cores: most width sits at 14x14 and 7x7, attention at 7x7 only.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Int, Tensor};

use super::blocks::{conv, conv3x3, pyramid_macs, Attention, OutHead, ResBlock, Upsample};
use super::embedding::TimeEmbedding;
use super::NUM_CLASSES;

/// Shape of the U-Net.
#[derive(Config, Debug, PartialEq)]
pub struct UNetConfig {
    /// Channels at 28x28, 14x14 and 7x7 (multiples of 8, for GroupNorm).
    #[config(default = "[32, 64, 128]")]
    pub channels: [usize; 3],
    /// Width of the timestep (+ class) embedding.
    #[config(default = 128)]
    pub emb_dim: usize,
    /// Attention heads at 7x7.
    #[config(default = 4)]
    pub heads: usize,
}

/// eps_theta(x_t, t, y): predicts the noise in x_t. Class `NULL_CLASS` means "unconditional".
#[derive(Module, Debug)]
pub struct UNet {
    time: TimeEmbedding,
    class: Embedding,
    inc: Conv2d,
    down0: ResBlock,
    ds0: Conv2d,
    down1: ResBlock,
    ds1: Conv2d,
    down2: ResBlock,
    down2_attn: Attention,
    mid1: ResBlock,
    mid_attn: Attention,
    mid2: ResBlock,
    up2: ResBlock,
    up2_attn: Attention,
    us2: Upsample,
    up1: ResBlock,
    us1: Upsample,
    up0: ResBlock,
    out: OutHead,
}

impl UNetConfig {
    /// Rejects a shape the layers cannot take, with a sentence (a manifest is input, and `init`
    /// would otherwise trip an assert inside a layer).
    pub fn validate(&self) -> Result<(), crate::Error> {
        super::check_shape("U-Net", self.channels, self.emb_dim)?;
        let c2 = self.channels[2];
        if self.heads == 0 || !c2.is_multiple_of(self.heads) {
            return Err(crate::Error::Weights(format!(
                "the U-Net config has {} attention heads, which must divide its {c2} channels at 7x7",
                self.heads
            )));
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> UNet {
        let [c0, c1, c2] = self.channels;
        let e = self.emb_dim;
        UNet {
            time: TimeEmbedding::new(c0, e, device),
            class: EmbeddingConfig::new(NUM_CLASSES + 1, e).init(device),
            inc: conv3x3(1, c0, 1, device),
            down0: ResBlock::new(c0, c0, e, device),
            ds0: conv3x3(c0, c1, 2, device),
            down1: ResBlock::new(c1, c1, e, device),
            ds1: conv3x3(c1, c2, 2, device),
            down2: ResBlock::new(c2, c2, e, device),
            down2_attn: Attention::new(c2, self.heads, device),
            mid1: ResBlock::new(c2, c2, e, device),
            mid_attn: Attention::new(c2, self.heads, device),
            mid2: ResBlock::new(c2, c2, e, device),
            up2: ResBlock::new(2 * c2, c2, e, device),
            up2_attn: Attention::new(c2, self.heads, device),
            us2: Upsample::new(c2, c1, device),
            up1: ResBlock::new(2 * c1, c1, e, device),
            us1: Upsample::new(c1, c0, device),
            up0: ResBlock::new(2 * c0, c0, e, device),
            out: OutHead::new(c0, 1, device),
        }
    }
}

impl UNet {
    /// Weights the int8 export keeps f32 (`weights::store::to_safetensors`), found by
    /// `examples/quant_probe.rs`.
    ///
    /// `up0.skip` is the 1x1 convolution that carries the last block's input, x_t's shortcut
    /// through `inc` and `down0` among it, past the block to the output head. At large t eps is
    /// nearly x_t, and x0 = sqrt(1/abar) x_t - sqrt(1/abar - 1) eps multiplies an error in eps by
    /// sqrt(1/abar - 1), 97 at t = 950. In the probe's `proxy` run (step-32,802 EMA, 20 held-out
    /// digits per class noised at t = 950, guided at the default), int8 everywhere raised the
    /// predicted x0's mean ink by 0.059 and `up0.skip` alone by 0.044; no other weight alone
    /// moved it by more than 0.008.
    pub const F32_WEIGHTS: &'static [&'static str] = &["up0.skip.weight"];

    /// # Shapes
    /// - x: `[B, 1, 28, 28]` noisy images x_t
    /// - t: `[B]` original timestep indices (0..T) as floats
    /// - y: `[B]` class labels, `NULL_CLASS` for unconditional
    /// - output: `[B, 1, 28, 28]` predicted eps
    pub fn forward(&self, x: Tensor<4>, t: Tensor<1>, y: Tensor<1, Int>) -> Tensor<4> {
        let features = super::embedding::sinusoidal(t, self.time.sinusoid_dim());
        self.forward_sinusoid(x, features, y)
    }

    /// Width of the sinusoidal timestep features [`forward_sinusoid`](Self::forward_sinusoid)
    /// reads.
    pub fn sinusoid_dim(&self) -> usize {
        self.time.sinusoid_dim()
    }

    /// [`forward`](Self::forward) with the timesteps given as their sinusoidal features
    /// (`embedding::sinusoidal`, `[B, sinusoid_dim]`).
    pub fn forward_sinusoid(
        &self,
        x: Tensor<4>,
        t_features: Tensor<2>,
        y: Tensor<1, Int>,
    ) -> Tensor<4> {
        self.forward_embedded(x, self.embedding(t_features, y))
    }

    /// silu(emb) of the timestep and the label, which every residual block reads (computed
    /// once for all of them, [`ResBlock::forward`]). It does not depend on x, so a run can
    /// compute it for all of its timesteps at once (`replay::ReplayRun`).
    ///
    /// # Shapes
    /// - t_features: `[B, sinusoid_dim]`, y: `[B]`; output: `[B, emb_dim]`
    pub fn embedding(&self, t_features: Tensor<2>, y: Tensor<1, Int>) -> Tensor<2> {
        let b = y.dims()[0];
        let class = self
            .class
            .forward(y.reshape([b, 1]))
            .reshape([b, self.class.weight.dims()[1]]);
        silu(self.time.forward_sinusoid(t_features) + class)
    }

    /// The forward pass from x and the [`embedding`](Self::embedding) of its samples.
    pub fn forward_embedded(&self, x: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
        let h = conv(&self.inc, x);
        let s0 = self.down0.forward(h, emb.clone()); // [B, c0, 28, 28]
        let h = conv(&self.ds0, s0.clone());
        let s1 = self.down1.forward(h, emb.clone()); // [B, c1, 14, 14]
        let h = conv(&self.ds1, s1.clone());
        let s2 = self.down2_attn.forward(self.down2.forward(h, emb.clone())); // [B, c2, 7, 7]

        let h = self.mid1.forward(s2.clone(), emb.clone());
        let h = self.mid2.forward(self.mid_attn.forward(h), emb.clone());

        let h = self.up2.forward(Tensor::cat(vec![h, s2], 1), emb.clone());
        let h = self.us2.forward(self.up2_attn.forward(h)); // [B, c1, 14, 14]
        let h = self.up1.forward(Tensor::cat(vec![h, s1], 1), emb.clone());
        let h = self.us1.forward(h); // [B, c0, 28, 28]
        let h = self.up0.forward(Tensor::cat(vec![h, s0], 1), emb);
        self.out.forward(h)
    }

    /// Multiply-accumulates of one forward pass of one 28x28 sample, counted from the layer
    /// shapes along the same path as [`forward`](Self::forward) (products only).
    pub fn macs_per_sample(&self) -> u64 {
        let (convs, [full, half, quarter]) = pyramid_macs(&self.inc, &self.ds0, &self.ds1);
        self.time.macs()
            + convs
            + self.down0.macs(full)
            + self.down1.macs(half)
            + self.down2.macs(quarter)
            + self.down2_attn.macs(quarter)
            + self.mid1.macs(quarter)
            + self.mid_attn.macs(quarter)
            + self.mid2.macs(quarter)
            + self.up2.macs(quarter)
            + self.up2_attn.macs(quarter)
            + self.us2.macs(quarter)
            + self.up1.macs(half)
            + self.us1.macs(half)
            + self.up0.macs(full)
            + self.out.macs(full)
    }
}
