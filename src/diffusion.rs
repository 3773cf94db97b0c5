//! The Gaussian diffusion itself, as tensor arithmetic on a batch: the forward process, x0 from
//! eps, the posterior q(x_{t-1} | x_t, x0), and one ancestral (DDPM) or DDIM step.
//!
//! Every function takes eps as a value: the networks are called by `sampler` (STYLE 2).
//! `k` indexes a (possibly respaced) [`Schedule`].

use burn::tensor::{Device, Tensor, TensorData};

use crate::schedule::Schedule;

/// Forward process q(x_t | x_0) with a separate t per sample (DDPM Eq. 4):
/// `x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`.
///
/// # Shapes
/// - x0, eps: `[B, C, H, W]`; t: B original timestep indices; output: `[B, C, H, W]`
pub fn q_sample(schedule: &Schedule, x0: Tensor<4>, eps: Tensor<4>, t: &[usize]) -> Tensor<4> {
    let device = x0.device();
    let a = per_sample(t.iter().map(|&i| schedule.sqrt_alphas_cumprod[i]), &device);
    let s = per_sample(
        t.iter().map(|&i| schedule.sqrt_one_minus_alphas_cumprod[i]),
        &device,
    );
    x0 * a + eps * s
}

/// A `[B, 1, 1, 1]` tensor of per-sample coefficients, to broadcast over images.
fn per_sample(values: impl Iterator<Item = f64>, device: &Device) -> Tensor<4> {
    let v: Vec<f32> = values.map(|x| x as f32).collect();
    let b = v.len();
    Tensor::from_data(TensorData::new(v, [b, 1, 1, 1]), device)
}

/// x0 from eps, clipped to the data range [-1, 1]:
/// `x0 = sqrt(1/abar_t) x_t - sqrt(1/abar_t - 1) eps` (DDPM Eq. 4 solved for x0).
pub fn predict_x0(schedule: &Schedule, k: usize, x_t: Tensor<4>, eps: Tensor<4>) -> Tensor<4> {
    (x_t * schedule.sqrt_recip_alphas_cumprod[k] - eps * schedule.sqrt_recipm1_alphas_cumprod[k])
        .clamp(-1.0, 1.0)
}

/// The eps that x_t and x0 imply (guided-diffusion `_predict_eps_from_xstart`).
pub fn eps_from_x0(schedule: &Schedule, k: usize, x_t: Tensor<4>, x0: Tensor<4>) -> Tensor<4> {
    (x_t * schedule.sqrt_recip_alphas_cumprod[k] - x0) / schedule.sqrt_recipm1_alphas_cumprod[k]
}

/// Mean of the posterior q(x_{t-1} | x_t, x0): `coef1 x0 + coef2 x_t` (DDPM Eq. 7).
pub fn posterior_mean(schedule: &Schedule, k: usize, x_t: Tensor<4>, x0: Tensor<4>) -> Tensor<4> {
    x0 * schedule.posterior_mean_coef1[k] + x_t * schedule.posterior_mean_coef2[k]
}

/// p(x_{t-1} | x_t) for one step: its mean and the predicted x0, with the "fixed small"
/// variance Sigma_t = beta_tilde_t (`schedule.posterior_variance[k]`).
pub struct StepMean {
    pub mean: Tensor<4>,
    pub x0: Tensor<4>,
}

/// The mean of the reverse step from an eps prediction (DDPM Eq. 11, through the clipped x0).
pub fn p_mean(schedule: &Schedule, k: usize, x_t: Tensor<4>, eps: Tensor<4>) -> StepMean {
    let x0 = predict_x0(schedule, k, x_t.clone(), eps);
    StepMean {
        mean: posterior_mean(schedule, k, x_t, x0.clone()),
        x0,
    }
}

/// Draws x_{t-1} = mean + sqrt(Sigma_t) z (DDPM Algorithm 2, line 4); no noise at the last
/// step (k = 0), where the mean is returned.
pub fn ancestral_sample(schedule: &Schedule, k: usize, mean: Tensor<4>, z: Tensor<4>) -> Tensor<4> {
    if k == 0 {
        return mean;
    }
    mean + z * (0.5 * schedule.posterior_log_variance_clipped[k]).exp()
}

/// One DDIM step with eta = 0 (Song et al. 2021, Eq. 12):
/// `x_{t-1} = sqrt(abar_{t-1}) x0 + sqrt(1 - abar_{t-1}) eps`, with eps re-derived from the
/// clipped x0. Returns (x_{t-1}, x0).
pub fn ddim_step(
    schedule: &Schedule,
    k: usize,
    x_t: Tensor<4>,
    eps: Tensor<4>,
) -> (Tensor<4>, Tensor<4>) {
    let x0 = predict_x0(schedule, k, x_t.clone(), eps);
    let eps = eps_from_x0(schedule, k, x_t, x0.clone());
    let abar_prev = schedule.alphas_cumprod_prev[k];
    let next = x0.clone() * abar_prev.sqrt() + eps * (1.0 - abar_prev).sqrt();
    (next, x0)
}

/// Standard normal noise drawn on the host from a seeded PRNG, so that a seed gives the same
/// numbers on every backend.
pub fn gaussian(shape: [usize; 4], rng: &mut impl rand::Rng, device: &Device) -> Tensor<4> {
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| rng.sample(rand_distr::StandardNormal))
        .collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}
