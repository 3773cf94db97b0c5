//! The Gaussian diffusion itself, as tensor arithmetic on a batch: the forward process, x0 from
//! eps, the posterior q(x_{t-1} | x_t, x0), and one ancestral (DDPM), DDIM or DPM-Solver++(2M)
//! step.
//!
//! Every function takes eps as a value: the networks are called by `sampler` (STYLE 2).
//! `k` indexes a (possibly respaced) [`Schedule`].

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::schedule::Schedule;

/// Which reverse step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Ancestral sampling with the fixed-small variance (DDPM Algorithm 2).
    #[default]
    Ddpm,
    /// Deterministic DDIM, eta = 0 (Song et al. 2021).
    Ddim,
    /// DPM-Solver++(2M), the deterministic second-order multistep solver of the probability-flow
    /// ODE in data prediction (Lu et al. 2022, arXiv 2211.01095).
    #[serde(rename = "dpm")]
    #[cfg_attr(feature = "cli", value(name = "dpm"))]
    DpmSolver,
    /// The SDE form of DPM-Solver++(2M): DDPM's ancestral step with the solver's extrapolated
    /// x0 in place of x0 ([`dpm_sde_mean`](crate::diffusion::dpm_sde_mean)); a first-order
    /// step of it is DDPM's.
    #[serde(rename = "dpm-sde")]
    #[cfg_attr(feature = "cli", value(name = "dpm-sde"))]
    DpmSde,
}

impl Method {
    /// Every reverse step, in the order the page's menu lists them.
    pub const ALL: [Method; 4] = [
        Method::Ddpm,
        Method::Ddim,
        Method::DpmSolver,
        Method::DpmSde,
    ];

    /// The name the URL, the CLI and the eval report use.
    pub fn name(self) -> &'static str {
        match self {
            Method::Ddpm => "ddpm",
            Method::Ddim => "ddim",
            Method::DpmSolver => "dpm",
            Method::DpmSde => "dpm-sde",
        }
    }

    /// Whether a step draws fresh noise (every step but the last).
    pub fn draws_noise(self) -> bool {
        matches!(self, Method::Ddpm | Method::DpmSde)
    }

    /// Whether a step extrapolates from the last step's x0 (DPM-Solver++(2M)'s multistep).
    pub fn multistep(self) -> bool {
        matches!(self, Method::DpmSolver | Method::DpmSde)
    }

    /// Whether the classifier's gradient shifts the mean (DDPM's form, `condition_mean`) rather
    /// than eps (DDIM's, `condition_score`).
    pub fn shifts_mean(self) -> bool {
        self.draws_noise()
    }
}

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

/// A per-step number the update multiplies images by: an `f64` applied as a scalar, or a
/// `[1, 1, 1, 1]` tensor broadcast over the batch. The tensor form lets a step read its numbers
/// from device memory, so one recorded step can be replayed at every t (`replay::ReplayRun`);
/// both forms multiply by the same f32 value.
pub trait Coef {
    /// `x * self`
    fn times(&self, x: Tensor<4>) -> Tensor<4>;
    /// `x / self`
    fn divides(&self, x: Tensor<4>) -> Tensor<4>;
}

impl Coef for f64 {
    fn times(&self, x: Tensor<4>) -> Tensor<4> {
        x * *self
    }
    fn divides(&self, x: Tensor<4>) -> Tensor<4> {
        x / *self
    }
}

impl Coef for Tensor<4> {
    fn times(&self, x: Tensor<4>) -> Tensor<4> {
        x * self.clone()
    }
    fn divides(&self, x: Tensor<4>) -> Tensor<4> {
        x / self.clone()
    }
}

/// The numbers of reverse step `k` of a (respaced) schedule that the update reads, with the
/// guidance scale folded into `guide`.
#[derive(Clone, Debug)]
pub struct StepCoefs<C> {
    /// sqrt(1 / abar_t)
    pub sqrt_recip_abar: C,
    /// sqrt(1 / abar_t - 1)
    pub sqrt_recipm1_abar: C,
    /// The posterior mean's coefficients of x0 and x_t (DDPM Eq. 7).
    pub coef1: C,
    pub coef2: C,
    /// sqrt(Sigma_t), the ancestral noise scale; 0 at the last step (k = 0), which adds none.
    pub sigma: C,
    /// sqrt(abar_{t-1}) and sqrt(1 - abar_{t-1}), for DDIM.
    pub sqrt_abar_prev: C,
    pub sqrt_one_minus_abar_prev: C,
    /// The classifier gradient's factor: s * Sigma_t for DDPM and the solver's SDE form
    /// (`condition_mean`), s * sqrt(1 - abar_t) for DDIM and DPM-Solver++ (`condition_score`).
    pub guide: C,
    /// DPM-Solver++(2M)'s weight of the last step's x0, 1 / (2 r) ([`multistep_weight`]), in both
    /// its forms; 0 for DDPM and DDIM, and at a solver step taken at first order.
    pub multistep: C,
    /// How much x_{t-1} moves per unit of the classifier's shift (`guide` times the gradient):
    /// 1 where the shift is added to the mean (DDPM and the SDE form); where it is taken off eps
    /// (DDIM and DPM-Solver++), x0 moves by sqrt((1 - abar_t) / abar_t) per unit, D by (1 + m)
    /// times that, and x_{t-1} = (sqrt(abar_{t-1}) - sqrt(1 - abar_{t-1}) sqrt(abar_t / (1 -
    /// abar_t))) D + (terms free of the shift), so the factor is (1 + m) (sqrt(abar_{t-1})
    /// sqrt((1 - abar_t) / abar_t) - sqrt(1 - abar_{t-1})) (exact where x0 is not clipped). The
    /// push the page draws is the shift times this: what guidance moved x_{t-1} by.
    pub push: C,
}

/// How many numbers a [`StepCoefs`] holds, in its row order.
pub const STEP_COEFS: usize = 10;

/// lambda_t = log(alpha_t / sigma_t) = log(sqrt(abar) / sqrt(1 - abar)), the half log-SNR
/// DPM-Solver steps in (Lu et al. 2022, Sec. 3.1); +inf at abar = 1.
pub fn half_log_snr(abar: f64) -> f64 {
    0.5 * (abar / (1.0 - abar)).ln()
}

/// The weight DPM-Solver++(2M) gives the previous step's x0 at step `k` of `schedule`
/// (Lu et al. 2022, arXiv 2211.01095, Algorithm 2): with h_i = lambda_{t_i} - lambda_{t_{i-1}}
/// the step's length in half log-SNR and r_i = h_{i-1} / h_i,
/// `D_i = (1 + 1/(2 r_i)) x0_{i-1} - 1/(2 r_i) x0_{i-2}`, so the weight is
/// `1 / (2 r_i) = h_i / (2 h_{i-1})`. 0 (a first-order step, which is DDIM's) at the run's
/// first step (`first`: no x0 before it) and at the last two, as the solver's authors end a
/// short run at lower order: k = 0 ends at abar = 1, where h is infinite, and k = 1 ends at
/// timestep 0, where lambda_t grows as -log t, so that on the respaced linear schedule its h is
/// 4-5 times the step's before it and the weight would be 2.1-2.4 at 8 to 25 steps (0.4-0.8
/// at every other step). With the weight there, `both s=0.5 w=0` at 15 steps in the SDE form
/// drew FD 0.139 at 20 per class; at first order, 0.120 (same seeds, 2026-12-05).
pub fn multistep_weight(schedule: &Schedule, k: usize, first: bool) -> f64 {
    if first || k <= 1 || k + 1 >= schedule.len() {
        return 0.0;
    }
    let lambda = |i: usize| half_log_snr(schedule.alphas_cumprod[i]);
    // Step k goes from timestep k to k - 1; the step before it went from k + 1 to k.
    let h = lambda(k - 1) - lambda(k);
    let h_last = lambda(k) - lambda(k + 1);
    h / (2.0 * h_last)
}

impl StepCoefs<f64> {
    /// Step `k` of `schedule` for `method` under classifier scale `scale`; `first` says that it is
    /// the run's first step (DPM-Solver++ then takes it at first order).
    pub fn at(schedule: &Schedule, k: usize, scale: f64, method: Method, first: bool) -> Self {
        let s = schedule;
        Self {
            sqrt_recip_abar: s.sqrt_recip_alphas_cumprod[k],
            sqrt_recipm1_abar: s.sqrt_recipm1_alphas_cumprod[k],
            coef1: s.posterior_mean_coef1[k],
            coef2: s.posterior_mean_coef2[k],
            sigma: if k == 0 {
                0.0
            } else {
                (0.5 * s.posterior_log_variance_clipped[k]).exp()
            },
            sqrt_abar_prev: s.alphas_cumprod_prev[k].sqrt(),
            sqrt_one_minus_abar_prev: (1.0 - s.alphas_cumprod_prev[k]).sqrt(),
            guide: match method.shifts_mean() {
                true => scale * s.posterior_variance[k],
                false => scale * s.sqrt_one_minus_alphas_cumprod[k],
            },
            multistep: match method.multistep() {
                true => multistep_weight(s, k, first),
                false => 0.0,
            },
            push: 1.0,
        }
        .with_push(s, k, method)
    }

    /// Sets [`push`](Self::push) from the step's other numbers.
    fn with_push(mut self, s: &Schedule, k: usize, method: Method) -> Self {
        if !method.shifts_mean() {
            let (abar, prev) = (s.alphas_cumprod[k], s.alphas_cumprod_prev[k]);
            self.push = (1.0 + self.multistep)
                * (prev.sqrt() * ((1.0 - abar) / abar).sqrt() - (1.0 - prev).sqrt());
        }
        self
    }

    /// The numbers as one f32 row, in field order.
    pub fn row(&self) -> [f32; STEP_COEFS] {
        [
            self.sqrt_recip_abar,
            self.sqrt_recipm1_abar,
            self.coef1,
            self.coef2,
            self.sigma,
            self.sqrt_abar_prev,
            self.sqrt_one_minus_abar_prev,
            self.guide,
            self.multistep,
            self.push,
        ]
        .map(|v| v as f32)
    }
}

impl StepCoefs<Tensor<4>> {
    /// Splits a `[1, STEP_COEFS]` row (as [`StepCoefs::row`] lays it out) into broadcastable
    /// `[1, 1, 1, 1]` coefficients.
    pub fn from_row(row: Tensor<2>) -> Self {
        let c = |i: usize| row.clone().narrow(1, i, 1).reshape([1, 1, 1, 1]);
        Self {
            sqrt_recip_abar: c(0),
            sqrt_recipm1_abar: c(1),
            coef1: c(2),
            coef2: c(3),
            sigma: c(4),
            sqrt_abar_prev: c(5),
            sqrt_one_minus_abar_prev: c(6),
            guide: c(7),
            multistep: c(8),
            push: c(9),
        }
    }
}

/// x0 from eps, clipped to the data range [-1, 1]:
/// `x0 = sqrt(1/abar_t) x_t - sqrt(1/abar_t - 1) eps` (DDPM Eq. 4 solved for x0).
pub fn predict_x0<C: Coef>(c: &StepCoefs<C>, x_t: Tensor<4>, eps: Tensor<4>) -> Tensor<4> {
    (c.sqrt_recip_abar.times(x_t) - c.sqrt_recipm1_abar.times(eps)).clamp(-1.0, 1.0)
}

/// Mean of the posterior q(x_{t-1} | x_t, x0): `coef1 x0 + coef2 x_t` (DDPM Eq. 7).
pub fn posterior_mean<C: Coef>(c: &StepCoefs<C>, x_t: Tensor<4>, x0: Tensor<4>) -> Tensor<4> {
    c.coef1.times(x0) + c.coef2.times(x_t)
}

/// p(x_{t-1} | x_t) for one step: its mean and the predicted x0, with the "fixed small"
/// variance Sigma_t = beta_tilde_t (`schedule.posterior_variance[k]`).
pub struct StepMean {
    pub mean: Tensor<4>,
    pub x0: Tensor<4>,
}

/// The mean of the reverse step from an eps prediction (DDPM Eq. 11, through the clipped x0).
pub fn p_mean<C: Coef>(c: &StepCoefs<C>, x_t: Tensor<4>, eps: Tensor<4>) -> StepMean {
    let x0 = predict_x0(c, x_t.clone(), eps);
    StepMean {
        mean: posterior_mean(c, x_t, x0.clone()),
        x0,
    }
}

/// Draws x_{t-1} = mean + sqrt(Sigma_t) z (DDPM Algorithm 2, line 4). At the last step (k = 0)
/// `sigma` is 0, so the mean is returned unchanged (x + 0 z = x for finite z).
pub fn ancestral_sample<C: Coef>(c: &StepCoefs<C>, mean: Tensor<4>, z: Tensor<4>) -> Tensor<4> {
    mean + c.sigma.times(z)
}

/// The eps that x_t and x0 imply (guided-diffusion `_predict_eps_from_xstart`):
/// `(sqrt(1/abar_t) x_t - x0) / sqrt(1/abar_t - 1)`.
pub fn eps_from_x0<C: Coef>(c: &StepCoefs<C>, x_t: Tensor<4>, x0: Tensor<4>) -> Tensor<4> {
    c.sqrt_recipm1_abar
        .divides(c.sqrt_recip_abar.times(x_t) - x0)
}

/// One DDIM step with eta = 0 (Song et al. 2021, Eq. 12):
/// `x_{t-1} = sqrt(abar_{t-1}) x0 + sqrt(1 - abar_{t-1}) eps`, with eps re-derived from the
/// clipped x0. Returns (x_{t-1}, x0).
pub fn ddim_step<C: Coef>(
    c: &StepCoefs<C>,
    x_t: Tensor<4>,
    eps: Tensor<4>,
) -> (Tensor<4>, Tensor<4>) {
    let x0 = predict_x0(c, x_t.clone(), eps);
    let eps = eps_from_x0(c, x_t, x0.clone());
    let next = c.sqrt_abar_prev.times(x0.clone()) + c.sqrt_one_minus_abar_prev.times(eps);
    (next, x0)
}

/// The solver's extrapolated data prediction, `D = x0 + m (x0 - x0_last)` with
/// `m` = [`StepCoefs::multistep`] (`D = (1 + 1/(2r)) x0_i - 1/(2r) x0_{i-1}`, Lu et al. 2022,
/// Algorithm 2).
pub fn extrapolated_x0<C: Coef>(c: &StepCoefs<C>, x0: Tensor<4>, x0_last: Tensor<4>) -> Tensor<4> {
    x0.clone() + c.multistep.times(x0 - x0_last)
}

/// The mean of one step of the SDE form of DPM-Solver++(2M), and the predicted x0:
/// `x_{t-1} = (sigma_{t-1} / sigma_t) e^{-h} x_t + alpha_{t-1} (1 - e^{-2h}) D
/// + sigma_{t-1} sqrt(1 - e^{-2h}) z`. Its coefficients of x_t and D are DDPM's posterior
/// coefficients of x_t and x0 (`coef2`, `coef1`; with e^{-h} = alpha_t sigma_{t-1} /
/// (sigma_t alpha_{t-1}) both sides reduce to the same functions of abar), and its noise
/// variance sigma_{t-1}^2 (1 - e^{-2h}) is DDPM's Sigma_t, so this is DDPM's step (Eq. 7, through
/// the clipped x0) with D in place of x0; the noise is added by [`ancestral_sample`].
pub fn dpm_sde_mean<C: Coef>(
    c: &StepCoefs<C>,
    x_t: Tensor<4>,
    eps: Tensor<4>,
    x0_last: Tensor<4>,
) -> StepMean {
    let x0 = predict_x0(c, x_t.clone(), eps);
    let d = extrapolated_x0(c, x0.clone(), x0_last);
    StepMean {
        mean: posterior_mean(c, x_t, d),
        x0,
    }
}

/// One DPM-Solver++(2M) step (Lu et al. 2022, arXiv 2211.01095, Algorithm 2, data prediction):
/// with `D = x0 + m (x0 - x0_last)` (`m` = [`StepCoefs::multistep`], so
/// `D = (1 + 1/(2r)) x0_i - 1/(2r) x0_{i-1}`),
/// `x_{t-1} = (sigma_{t-1} / sigma_t) x_t - alpha_{t-1} (e^{-h} - 1) D`. Since
/// `alpha_{t-1} (e^{-h} - 1) = alpha_t sigma_{t-1} / sigma_t - alpha_{t-1}`, that is DDIM's step
/// (Eq. 12) with x0 replaced by D and eps re-derived from D, which is how it is computed here. x0
/// is clipped to [-1, 1] before it is extrapolated, as the other steps clip it. `x0_last` is the
/// previous step's x0 (any finite tensor where `m` is 0). Returns (x_{t-1}, x0).
pub fn dpm_solver_2m_step<C: Coef>(
    c: &StepCoefs<C>,
    x_t: Tensor<4>,
    eps: Tensor<4>,
    x0_last: Tensor<4>,
) -> (Tensor<4>, Tensor<4>) {
    let x0 = predict_x0(c, x_t.clone(), eps);
    let d = extrapolated_x0(c, x0.clone(), x0_last);
    let eps = eps_from_x0(c, x_t, d.clone());
    let next = c.sqrt_abar_prev.times(d) + c.sqrt_one_minus_abar_prev.times(eps);
    (next, x0)
}
