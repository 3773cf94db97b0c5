//! Building blocks shared by the U-Net and the classifier.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use super::fused::{attention, norm_act};

/// Groups used by every GroupNorm (Wu & He 2018); channel counts are multiples of it.
pub const GROUPS: usize = 8;

/// A 3x3 convolution with "same" padding and the given stride.
pub fn conv3x3(c_in: usize, c_out: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// `conv.forward(x)`; on flex, with the weight gradient of [`super::flex_conv`] (the same
/// forward value, a faster backward while training).
pub fn conv(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(not(target_family = "wasm"))]
    return super::flex_conv::conv2d(conv, x);
    #[cfg(target_family = "wasm")]
    conv.forward(x)
}

/// Multiply-accumulates of a convolution on an `h x w` input, and its output size. Only the
/// products are counted (bias, norms and activations are memory-bound and left out).
pub fn conv_macs(conv: &Conv2d, [h, w]: [usize; 2]) -> (u64, [usize; 2]) {
    let [c_out, c_in, kh, kw] = conv.weight.dims();
    let (oh, ow) = (h.div_ceil(conv.stride[0]), w.div_ceil(conv.stride[1]));
    ((c_out * c_in * kh * kw * oh * ow) as u64, [oh, ow])
}

/// Multiply-accumulates of the three convolutions that enter and step down the 28 -> 14 -> 7
/// pyramid (both networks have one), and the three resolutions.
pub fn pyramid_macs(inc: &Conv2d, ds0: &Conv2d, ds1: &Conv2d) -> (u64, [[usize; 2]; 3]) {
    let full = [super::SIDE, super::SIDE];
    let (a, _) = conv_macs(inc, full);
    let (b, half) = conv_macs(ds0, full);
    let (c, quarter) = conv_macs(ds1, half);
    (a + b + c, [full, half, quarter])
}

/// Multiply-accumulates of a linear layer applied to `rows` rows.
pub fn linear_macs(linear: &Linear, rows: usize) -> u64 {
    let [d_in, d_out] = linear.weight.dims();
    (rows * d_in * d_out) as u64
}

fn norm(channels: usize, device: &Device) -> GroupNorm {
    GroupNormConfig::new(GROUPS, channels).init(device)
}

/// Residual block with a timestep-embedding input (DDPM App. B; guided-diffusion `ResBlock`
/// with `use_scale_shift_norm`): `h = conv(silu(norm(x)))`, `h = norm(h) * (1 + scale) + shift`,
/// `out = skip(x) + conv(silu(h))`, where scale and shift are a linear map of silu(emb).
#[derive(Module, Debug)]
pub struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    emb: Linear,
    norm2: GroupNorm,
    conv2: Conv2d,
    skip: Option<Conv2d>,
}

impl ResBlock {
    pub fn new(c_in: usize, c_out: usize, emb_dim: usize, device: &Device) -> Self {
        let skip = (c_in != c_out).then(|| Conv2dConfig::new([c_in, c_out], [1, 1]).init(device));
        Self {
            norm1: norm(c_in, device),
            conv1: conv3x3(c_in, c_out, 1, device),
            emb: LinearConfig::new(emb_dim, 2 * c_out).init(device),
            norm2: norm(c_out, device),
            conv2: conv3x3(c_out, c_out, 1, device),
            skip,
        }
    }

    /// `emb_act` is `silu(emb)`, which every block of a network reads: the network computes it
    /// once (burn's SiLU is seven kernels on WebGPU, so eleven blocks computing it each cost 70
    /// launches per U-Net forward), with the same result.
    ///
    /// # Shapes
    /// - x: `[B, C_in, H, W]`, emb_act: `[B, E]`; output: `[B, C_out, H, W]`
    pub fn forward(&self, x: Tensor<4>, emb_act: Tensor<2>) -> Tensor<4> {
        let h = conv(&self.conv1, norm_act(&self.norm1, x.clone(), None, true));
        let ss = self.emb.forward(emb_act); // [B, 2 C_out]: scale, then shift
        let h = conv(&self.conv2, norm_act(&self.norm2, h, Some(ss), true));
        let skip = match &self.skip {
            Some(c) => conv(c, x),
            None => x,
        };
        skip + h
    }

    /// Multiply-accumulates on an `h x w` input (one sample).
    pub fn macs(&self, hw: [usize; 2]) -> u64 {
        let skip = self.skip.as_ref().map_or(0, |c| conv_macs(c, hw).0);
        conv_macs(&self.conv1, hw).0
            + linear_macs(&self.emb, 1)
            + conv_macs(&self.conv2, hw).0
            + skip
    }
}

/// Multi-head self-attention over the pixels of a feature map, with a residual connection
/// (guided-diffusion `AttentionBlock`).
#[derive(Module, Debug)]
pub struct Attention {
    norm: GroupNorm,
    qkv: Linear,
    proj: Linear,
    heads: usize,
}

impl Attention {
    pub fn new(channels: usize, heads: usize, device: &Device) -> Self {
        assert!(
            channels.is_multiple_of(heads),
            "attention channels must divide into heads"
        );
        Self {
            norm: norm(channels, device),
            qkv: LinearConfig::new(channels, 3 * channels).init(device),
            proj: LinearConfig::new(channels, channels).init(device),
            heads,
        }
    }

    /// # Shapes
    /// - x: `[B, C, H, W]`; output: `[B, C, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let n = h * w;
        let tokens = norm_act(&self.norm, x.clone(), None, false)
            .reshape([b, c, n])
            .swap_dims(1, 2); // [B, N, C]
        let qkv = self.qkv.forward(tokens); // [B, N, 3C]
        let out = attention(qkv, self.heads); // [B, N, C]
        let out = self.proj.forward(out).swap_dims(1, 2).reshape([b, c, h, w]);
        x + out
    }

    /// Multiply-accumulates on an `h x w` input (one sample): qkv, QK^T, AV, projection.
    pub fn macs(&self, [h, w]: [usize; 2]) -> u64 {
        let n = h * w;
        let c = self.proj.weight.dims()[0];
        linear_macs(&self.qkv, n) + 2 * (n * n * c) as u64 + linear_macs(&self.proj, n)
    }
}

/// Nearest-neighbour 2x upsampling followed by a 3x3 convolution (cheaper than a transposed
/// convolution on the CPU backend, and free of its checkerboard artefacts).
#[derive(Module, Debug)]
pub struct Upsample {
    conv: Conv2d,
}

impl Upsample {
    pub fn new(c_in: usize, c_out: usize, device: &Device) -> Self {
        Self {
            conv: conv3x3(c_in, c_out, 1, device),
        }
    }

    /// # Shapes
    /// - x: `[B, C_in, H, W]`; output: `[B, C_out, 2H, 2W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv(&self.conv, upsample_nearest2x(x))
    }

    /// Multiply-accumulates on an `h x w` input (one sample); the convolution runs at 2h x 2w.
    pub fn macs(&self, [h, w]: [usize; 2]) -> u64 {
        conv_macs(&self.conv, [2 * h, 2 * w]).0
    }
}

/// Repeats every pixel into a 2x2 block.
///
/// # Shapes
/// - x: `[B, C, H, W]`; output: `[B, C, 2H, 2W]`
pub fn upsample_nearest2x(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .expand([b, c, h, 2, w, 2])
        .reshape([b, c, 2 * h, 2 * w])
}

/// The output head: GroupNorm, SiLU, then a 3x3 convolution.
#[derive(Module, Debug)]
pub struct OutHead {
    norm: GroupNorm,
    conv: Conv2d,
}

impl OutHead {
    pub fn new(c_in: usize, c_out: usize, device: &Device) -> Self {
        Self {
            norm: norm(c_in, device),
            conv: conv3x3(c_in, c_out, 1, device),
        }
    }

    /// # Shapes
    /// - x: `[B, C_in, H, W]`; output: `[B, C_out, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv(&self.conv, norm_act(&self.norm, x, None, true))
    }

    pub fn macs(&self, hw: [usize; 2]) -> u64 {
        conv_macs(&self.conv, hw).0
    }
}
