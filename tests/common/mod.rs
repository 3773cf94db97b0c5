//! Shared by the native tests: small random networks that run in milliseconds.

use burn::module::Module;
use burn::tensor::Device;
use guided_ddpm::nn::{Classifier, ClassifierConfig, UNet, UNetConfig};

/// A small U-Net and a frozen classifier on its autodiff twin, seeded, on flex.
pub fn small_nets() -> (UNet, Classifier, Device) {
    let device = Device::flex();
    device.seed(5);
    let unet = UNetConfig::new()
        .with_channels([8, 16, 16])
        .with_emb_dim(16)
        .with_heads(2)
        .init(&device);
    let classifier = ClassifierConfig::new()
        .with_channels([8, 8, 16])
        .with_emb_dim(8)
        .init(&device.clone().autodiff())
        .freeze();
    (unet, classifier, device)
}

/// Runs of the sampler, for the tests of its subjects (each test crate uses some of them).
#[allow(dead_code)]
pub mod sampling;
