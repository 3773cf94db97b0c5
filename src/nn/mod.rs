//! The two networks: a class-conditional U-Net eps-model and a noise-aware classifier.
//!
//! Both take images in [-1, 1] as `[B, 1, 28, 28]` and the original timestep index per sample.
//! Neither sees a beta: the schedule lives in `schedule` and `diffusion` (STYLE 2).

pub mod blocks;
pub mod classifier;
pub mod embedding;
#[cfg(not(target_family = "wasm"))]
pub mod flex_conv;
pub mod fused;
pub mod unet;

pub use classifier::{Classifier, ClassifierConfig};
pub use unet::{UNet, UNetConfig};

/// The class index the U-Net reads as "no class" (classifier-free guidance's null label).
pub const NULL_CLASS: usize = 10;
/// The number of digit classes.
pub const NUM_CLASSES: usize = 10;
/// Image side in pixels.
pub const SIDE: usize = 28;

use burn::tensor::{Device, Int, Tensor, TensorData};

/// The widest layer a config may ask for: far above the shipped networks (128 channels), and low
/// enough that a corrupt manifest cannot ask for gigabytes.
pub const MAX_WIDTH: usize = 1024;

/// Checks a network's channels (multiples of GroupNorm's group count, at most [`MAX_WIDTH`]) and
/// embedding width (1 to [`MAX_WIDTH`]).
fn check_shape(net: &str, channels: [usize; 3], emb_dim: usize) -> Result<(), crate::Error> {
    let g = blocks::GROUPS;
    if let Some(c) = channels
        .iter()
        .find(|&&c| c == 0 || c > MAX_WIDTH || !c.is_multiple_of(g))
    {
        return Err(crate::Error::Weights(format!(
            "the {net} config has a layer of {c} channels; each must be a multiple of {g} (GroupNorm's groups) from {g} to {MAX_WIDTH}"
        )));
    }
    if emb_dim == 0 || emb_dim > MAX_WIDTH {
        return Err(crate::Error::Weights(format!(
            "the {net} config has an embedding width of {emb_dim}; it must be from 1 to {MAX_WIDTH}"
        )));
    }
    Ok(())
}

/// Timestep indices as the float tensor the networks read.
pub fn t_tensor(t: &[usize], device: &Device) -> Tensor<1> {
    let v: Vec<f32> = t.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, [t.len()]), device)
}

/// Class labels as the int tensor the U-Net reads.
pub fn label_tensor(y: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = y.iter().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(v, [y.len()]), device)
}

/// Labels as one-hot rows, `[B, 10]`, to pick log p(y | x) out of a log-softmax.
pub fn one_hot(y: &[usize], device: &Device) -> Tensor<2> {
    let mut v = vec![0f32; y.len() * NUM_CLASSES];
    for (i, &c) in y.iter().enumerate() {
        v[i * NUM_CLASSES + c] = 1.0;
    }
    Tensor::from_data(TensorData::new(v, [y.len(), NUM_CLASSES]), device)
}

/// With burn's fusion on, `x` laid out afresh as a dense `[B, C, H, W]` tensor (the same
/// values); without it, `x` unchanged. burn 0.22.1's fusion computes the fused update wrongly
/// (x0 off by 2) when a tensor it reads is a channels-last view, which is likely the layout of
/// what leaves a network here (the U-Net's eps, the classifier's gradient; inferred from
/// `tests/gpu.rs`, docs/BENCHMARKS.md); the update reads this copy. Builds without fusion do not
/// need the copy, so they skip it.
pub fn dense(x: Tensor<4>) -> Tensor<4> {
    if cfg!(feature = "fusion") {
        let [b, c, h, w] = x.dims();
        x.reshape([b, c * h * w]).reshape([b, c, h, w])
    } else {
        x
    }
}
