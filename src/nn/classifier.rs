//! The noise-aware classifier p_phi(y | x_t, t) (Dhariwal & Nichol 2021, Sec. 4): a
//! time-conditioned downsampling trunk with a pooled linear head. Trained on q_sample(x0, t) it
//! guides sampling; trained on clean digits only (t = 0) the same shape serves as the judge.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor};

use super::blocks::{conv, conv3x3, linear_macs, pyramid_macs, ResBlock, GROUPS};
use super::embedding::TimeEmbedding;
use super::fused::norm_act;
use super::NUM_CLASSES;

/// Shape of the classifier.
#[derive(Config, Debug, PartialEq)]
pub struct ClassifierConfig {
    /// Channels at 28x28, 14x14 and 7x7 (multiples of 8, for GroupNorm).
    #[config(default = "[32, 64, 96]")]
    pub channels: [usize; 3],
    /// Width of the timestep embedding.
    #[config(default = 64)]
    pub emb_dim: usize,
}

/// Logits over the ten digits of a (noisy) image.
#[derive(Module, Debug)]
pub struct Classifier {
    time: TimeEmbedding,
    inc: Conv2d,
    block0: ResBlock,
    ds0: Conv2d,
    block1: ResBlock,
    ds1: Conv2d,
    block2: ResBlock,
    norm: GroupNorm,
    head: Linear,
}

impl ClassifierConfig {
    /// Rejects a shape the layers cannot take, with a sentence.
    pub fn validate(&self) -> Result<(), crate::Error> {
        super::check_shape("classifier", self.channels, self.emb_dim)
    }

    pub fn init(&self, device: &Device) -> Classifier {
        let [c0, c1, c2] = self.channels;
        let e = self.emb_dim;
        Classifier {
            time: TimeEmbedding::new(c0, e, device),
            inc: conv3x3(1, c0, 1, device),
            block0: ResBlock::new(c0, c0, e, device),
            ds0: conv3x3(c0, c1, 2, device),
            block1: ResBlock::new(c1, c1, e, device),
            ds1: conv3x3(c1, c2, 2, device),
            block2: ResBlock::new(c2, c2, e, device),
            norm: GroupNormConfig::new(GROUPS, c2).init(device),
            head: LinearConfig::new(c2, NUM_CLASSES).init(device),
        }
    }
}

impl Classifier {
    /// Pooled trunk features, the input of the linear head (the judge's Frechet features).
    ///
    /// # Shapes
    /// - x: `[B, 1, 28, 28]`, t: `[B]` timestep indices as floats; output: `[B, c2]`
    pub fn features(&self, x: Tensor<4>, t: Tensor<1>) -> Tensor<2> {
        let features = super::embedding::sinusoidal(t, self.time.sinusoid_dim());
        self.features_sinusoid(x, features)
    }

    /// Width of the sinusoidal timestep features the `*_sinusoid` methods read.
    pub fn sinusoid_dim(&self) -> usize {
        self.time.sinusoid_dim()
    }

    /// [`features`](Self::features) with the timesteps given as their sinusoidal features
    /// (`embedding::sinusoidal`, `[B, sinusoid_dim]`).
    pub fn features_sinusoid(&self, x: Tensor<4>, t_features: Tensor<2>) -> Tensor<2> {
        self.features_embedded(x, self.embedding(t_features))
    }

    /// silu(emb) of the timestep, which every residual block reads (computed once for all of
    /// them). It does not depend on x (no gradient reaches x through it), so a run can compute
    /// it for all of its timesteps at once.
    ///
    /// # Shapes
    /// - t_features: `[B, sinusoid_dim]`; output: `[B, emb_dim]`
    pub fn embedding(&self, t_features: Tensor<2>) -> Tensor<2> {
        silu(self.time.forward_sinusoid(t_features))
    }

    /// [`features`](Self::features) from x and the [`embedding`](Self::embedding) of its
    /// samples.
    pub fn features_embedded(&self, x: Tensor<4>, emb: Tensor<2>) -> Tensor<2> {
        let h = self.block0.forward(conv(&self.inc, x), emb.clone());
        let h = self.block1.forward(conv(&self.ds0, h), emb.clone());
        let h = self.block2.forward(conv(&self.ds1, h), emb);
        let h = norm_act(&self.norm, h, None, true); // [B, c2, 7, 7]
        let [b, c, hh, ww] = h.dims();
        h.reshape([b, c, hh * ww]).mean_dim(2).reshape([b, c])
    }

    /// # Shapes
    /// - x: `[B, 1, 28, 28]`, t: `[B]`; output: `[B, 10]` logits
    pub fn forward(&self, x: Tensor<4>, t: Tensor<1>) -> Tensor<2> {
        self.head_forward(self.features(x, t))
    }

    /// [`forward`](Self::forward) with the timesteps given as their sinusoidal features.
    pub fn forward_sinusoid(&self, x: Tensor<4>, t_features: Tensor<2>) -> Tensor<2> {
        self.head_forward(self.features_sinusoid(x, t_features))
    }

    /// The linear head alone, on pooled features `[B, c2]`; output: `[B, 10]` logits.
    pub fn head_forward(&self, features: Tensor<2>) -> Tensor<2> {
        self.head.forward(features)
    }

    /// Multiply-accumulates of one forward pass of one 28x28 sample, counted from the layer
    /// shapes along the same path as [`forward`](Self::forward) (products only).
    pub fn macs_per_sample(&self) -> u64 {
        let (convs, [full, half, quarter]) = pyramid_macs(&self.inc, &self.ds0, &self.ds1);
        self.time.macs()
            + convs
            + self.block0.macs(full)
            + self.block1.macs(half)
            + self.block2.macs(quarter)
            + linear_macs(&self.head, 1)
    }

    /// Width of the pooled features.
    pub fn feature_dim(&self) -> usize {
        self.head.weight.dims()[0]
    }
}
