//! Timestep embedding: sinusoidal features (Vaswani et al. 2017, Sec. 3.5; DDPM App. B)
//! followed by a two-layer MLP, as in guided-diffusion's `timestep_embedding` + `time_embed`.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor};

/// Sinusoidal features of the timesteps: `[cos(t f_0..f_{d/2}), sin(t f_0..f_{d/2})]` with
/// `f_i = 10000^(-i / (d/2))`.
///
/// # Shapes
/// - t: `[B]` (timestep indices as floats)
/// - output: `[B, dim]`
pub fn sinusoidal(t: Tensor<1>, dim: usize) -> Tensor<2> {
    let half = dim / 2;
    let freqs: Vec<f32> = (0..half)
        .map(|i| (-(10000f64.ln()) * i as f64 / half as f64).exp() as f32)
        .collect();
    let freqs = Tensor::<1>::from_floats(freqs.as_slice(), &t.device()).unsqueeze::<2>(); // [1, half]
    let args = t.unsqueeze_dim::<2>(1) * freqs; // [B, half]
    Tensor::cat(vec![args.clone().cos(), args.sin()], 1)
}

/// Maps sinusoidal timestep features to the embedding every residual block reads.
#[derive(Module, Debug)]
pub struct TimeEmbedding {
    fc1: Linear,
    fc2: Linear,
    sinusoid_dim: usize,
}

impl TimeEmbedding {
    pub fn new(sinusoid_dim: usize, emb_dim: usize, device: &Device) -> Self {
        Self {
            fc1: LinearConfig::new(sinusoid_dim, emb_dim).init(device),
            fc2: LinearConfig::new(emb_dim, emb_dim).init(device),
            sinusoid_dim,
        }
    }

    /// # Shapes
    /// - t: `[B]` timestep indices as floats; output: `[B, emb_dim]`
    pub fn forward(&self, t: Tensor<1>) -> Tensor<2> {
        self.forward_sinusoid(sinusoidal(t, self.sinusoid_dim))
    }

    /// The MLP alone, on features [`sinusoidal`] already computed (`[B, sinusoid_dim]`), so that
    /// a caller may compute them once for a whole run (`replay::ReplayRun`).
    pub fn forward_sinusoid(&self, features: Tensor<2>) -> Tensor<2> {
        self.fc2.forward(silu(self.fc1.forward(features)))
    }

    /// Width of the sinusoidal features this embedding reads.
    pub fn sinusoid_dim(&self) -> usize {
        self.sinusoid_dim
    }

    /// Multiply-accumulates per sample.
    pub fn macs(&self) -> u64 {
        super::blocks::linear_macs(&self.fc1, 1) + super::blocks::linear_macs(&self.fc2, 1)
    }
}
