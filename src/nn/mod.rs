//! The two networks: a class-conditional U-Net eps-model and a noise-aware classifier.
//!
//! Both take images in [-1, 1] as `[B, 1, 28, 28]` and the original timestep index per sample.
//! Neither sees a beta: the schedule lives in `schedule` and `diffusion` (STYLE 2).

pub mod blocks;
pub mod classifier;
pub mod embedding;
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
