//! The guidance equations: the classifier's shift of a step (Dhariwal & Nichol 2021,
//! Algorithms 1 and 2), the forms of its gradient, and the classifier-free mix (Ho & Salimans
//! 2022, Eq. 6).

use burn::tensor::{Device, Tensor, TensorData};

use super::Grad;
use crate::diffusion::{Coef, StepCoefs};

/// The classifier's shift of one step, `guide * grad`: s * Sigma_t * grad, which DDPM adds to
/// the mean ([`condition_mean`]), or s * sqrt(1 - abar_t) * grad, which DDIM takes from eps
/// ([`condition_score`]); `guide` is [`StepCoefs::guide`](crate::diffusion::StepCoefs), which
/// folds in s (or 1, when `grad` was already scaled per sample). Either way a positive shift
/// makes the pixel brighter in x_{t-1}, which is what the page's push view draws.
pub fn guidance_shift<C: Coef>(guide: &C, grad: Tensor<4>) -> Tensor<4> {
    guide.times(grad)
}

/// The gradient a step applies under `form`, in x_t's terms, from the classifier's gradient
/// `grad` (at x_t for [`Grad::Xt`] and [`Grad::Norm`], at the predicted x0 for [`Grad::X0`]),
/// the step's unguided `eps` and its numbers `c` ([`Grad`] gives each form's equation):
/// - `Xt`: `grad` itself;
/// - `Norm`: `grad * |eps| / (sqrt(1 - abar_t) |grad|)` per sample (norms over the image; a
///   zero gradient stays zero);
/// - `X0`: `grad * sqrt(abar_t) / (1 - abar_t)`.
///
/// sqrt(1 - abar_t) is `sqrt_recipm1_abar / sqrt_recip_abar` and sqrt(abar_t) / (1 - abar_t) is
/// `sqrt_recip_abar / sqrt_recipm1_abar^2`, so a recorded step reads them from its rows too.
pub fn applied_grad<C: Coef>(
    form: Grad,
    grad: Tensor<4>,
    eps: &Tensor<4>,
    c: &StepCoefs<C>,
) -> Tensor<4> {
    let per_image = |x: Tensor<4>| x.powi_scalar(2).sum_dim(3).sum_dim(2).sum_dim(1).sqrt();
    match form {
        Grad::Xt => grad,
        Grad::Norm => {
            // Keeps a zero gradient (a step outside the guidance interval) at zero, not 0 / 0.
            let ratio = per_image(eps.clone()) / (per_image(grad.clone()) + 1e-20);
            c.sqrt_recipm1_abar
                .divides(c.sqrt_recip_abar.times(grad * ratio))
        }
        Grad::X0 => c
            .sqrt_recipm1_abar
            .divides(c.sqrt_recipm1_abar.divides(c.sqrt_recip_abar.times(grad))),
    }
}

/// mu' = mu + s * Sigma_t * grad (Dhariwal & Nichol 2021, Algorithm 1; guided-diffusion
/// `condition_mean`), given the [`guidance_shift`] s * Sigma_t * grad.
pub fn condition_mean(mean: Tensor<4>, shift: Tensor<4>) -> Tensor<4> {
    mean + shift
}

/// eps' = eps - sqrt(1 - abar_t) * s * grad (Dhariwal & Nichol 2021, Algorithm 2;
/// guided-diffusion `condition_score`), given the [`guidance_shift`] s * sqrt(1 - abar_t) * grad.
pub fn condition_score(eps: Tensor<4>, shift: Tensor<4>) -> Tensor<4> {
    eps - shift
}

/// eps~ = (1 + w) eps(x, y) - w eps(x, null) (Ho & Salimans 2022, Eq. 6).
pub fn cfg_mix(eps_cond: Tensor<4>, eps_uncond: Tensor<4>, w: f64) -> Tensor<4> {
    eps_cond * (1.0 + w) - eps_uncond * w
}

/// The factors (1 + w, w) of [`cfg_mix`] as a device tensor `[2]`, for [`cfg_mix_table`].
pub fn cfg_mix_factors(w: f64, device: &Device) -> Tensor<1> {
    let factors = vec![(1.0 + w) as f32, w as f32];
    Tensor::from_data(TensorData::new(factors, [2]), device)
}

/// [`cfg_mix`] with its factors read from `factors` ([`cfg_mix_factors`]): the same numbers
/// (the scalar form rounds 1 + w and w to f32 as the table does), but a recorded step that reads
/// them picks up a w written into the table between its replays (src/replay.rs).
pub fn cfg_mix_table(eps_cond: Tensor<4>, eps_uncond: Tensor<4>, factors: &Tensor<1>) -> Tensor<4> {
    let factor = |i: usize| factors.clone().narrow(0, i, 1).reshape([1, 1, 1, 1]);
    eps_cond * factor(0) - eps_uncond * factor(1)
}
