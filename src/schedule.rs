//! The noise schedule: betas, cumulative alphas and the posterior coefficients, in f64 on the host.
//!
//! Nothing here knows about tensors or networks (see `diffusion` for the tensor side).
//! Notation follows Ho et al. 2020 ("DDPM"), with `abar_t = prod_{s<=t} (1 - beta_s)`.

use serde::{Deserialize, Serialize};

/// The number of diffusion steps the networks are trained with.
pub const T: usize = 1000;

/// How the betas are laid out over the T training steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BetaSchedule {
    /// Linear betas from 1e-4 to 0.02 (DDPM, Sec. 4).
    Linear,
    /// abar_t = cos^2(((t/T + s) / (1 + s)) * pi/2), s = 0.008, betas clipped at 0.999
    /// (Nichol & Dhariwal 2021, Eq. 17).
    Cosine,
}

/// Every per-timestep quantity the samplers need, for one (possibly respaced) sequence of steps.
///
/// Index `k` is a position in this sequence; `timesteps[k]` is the original training index in
/// `0..T` that the networks receive (guided-diffusion `respace.py`).
#[derive(Clone, Debug)]
pub struct Schedule {
    pub kind: BetaSchedule,
    /// Original timestep index fed to the networks, increasing, `timesteps[0]` is the least noisy.
    pub timesteps: Vec<usize>,
    pub betas: Vec<f64>,
    pub alphas_cumprod: Vec<f64>,
    /// abar_{t-1}, with abar_{-1} = 1.
    pub alphas_cumprod_prev: Vec<f64>,
    // forward process q(x_t | x_0)
    pub sqrt_alphas_cumprod: Vec<f64>,
    pub sqrt_one_minus_alphas_cumprod: Vec<f64>,
    // x_0 from eps: x0 = sqrt(1/abar) x_t - sqrt(1/abar - 1) eps (DDPM Eq. 15 rearranged)
    pub sqrt_recip_alphas_cumprod: Vec<f64>,
    pub sqrt_recipm1_alphas_cumprod: Vec<f64>,
    // posterior q(x_{t-1} | x_t, x_0) (DDPM Eqs. 6-7)
    pub posterior_variance: Vec<f64>,
    /// log of the posterior variance, with the t = 0 entry (which is 0) replaced by the t = 1 one.
    pub posterior_log_variance_clipped: Vec<f64>,
    pub posterior_mean_coef1: Vec<f64>,
    pub posterior_mean_coef2: Vec<f64>,
}

/// The schedule the trainer trains every network with; export records it in the manifest, and
/// everything that samples shipped weights reads it from there.
pub const TRAINED: BetaSchedule = BetaSchedule::Linear;

/// The T training betas of a schedule kind.
pub fn betas(kind: BetaSchedule) -> Vec<f64> {
    match kind {
        BetaSchedule::Linear => {
            let (start, end) = (1e-4, 0.02);
            (0..T)
                .map(|i| start + (end - start) * i as f64 / (T - 1) as f64)
                .collect()
        }
        BetaSchedule::Cosine => {
            // Nichol & Dhariwal 2021, Eq. 17: beta_t = 1 - abar_t / abar_{t-1}, clipped at 0.999.
            let s = 0.008;
            let f = |t: f64| {
                (((t / T as f64 + s) / (1.0 + s)) * std::f64::consts::FRAC_PI_2)
                    .cos()
                    .powi(2)
            };
            (0..T)
                .map(|i| (1.0 - f(i as f64 + 1.0) / f(i as f64)).min(0.999))
                .collect()
        }
    }
}

impl Schedule {
    /// The full T-step schedule of a kind.
    pub fn new(kind: BetaSchedule) -> Self {
        let mut acc = 1.0;
        let alphas_cumprod = betas(kind)
            .iter()
            .map(|b| {
                acc *= 1.0 - b;
                acc
            })
            .collect();
        Self::from_alphas_cumprod(kind, (0..T).collect(), alphas_cumprod)
    }

    /// A schedule over `steps` evenly spaced training timesteps (1 ..= T), keeping each chosen
    /// abar exactly: beta_k = 1 - abar_{S_k} / abar_{S_{k-1}} (guided-diffusion `respace.py`).
    pub fn respaced(kind: BetaSchedule, steps: usize) -> Result<Self, crate::Error> {
        if steps == 0 || steps > T {
            return Err(crate::Error::Setting(format!(
                "steps must be between 1 and {T}, got {steps}"
            )));
        }
        let full = Self::new(kind);
        let timesteps = spaced_timesteps(steps);
        let abar = timesteps.iter().map(|&t| full.alphas_cumprod[t]).collect();
        Ok(Self::from_alphas_cumprod(kind, timesteps, abar))
    }

    /// Everything from the abar of each step, which are kept as given (so respacing preserves
    /// them bit for bit); beta_k = 1 - abar_k / abar_{k-1}.
    fn from_alphas_cumprod(
        kind: BetaSchedule,
        timesteps: Vec<usize>,
        alphas_cumprod: Vec<f64>,
    ) -> Self {
        let n = alphas_cumprod.len();
        let alphas_cumprod_prev: Vec<f64> = std::iter::once(1.0)
            .chain(alphas_cumprod[..n - 1].iter().copied())
            .collect();
        let map = |f: &dyn Fn(usize) -> f64| (0..n).map(f).collect::<Vec<f64>>();
        let betas = map(&|i| 1.0 - alphas_cumprod[i] / alphas_cumprod_prev[i]);
        let posterior_variance = map(&|i| {
            // beta_tilde_t = beta_t (1 - abar_{t-1}) / (1 - abar_t) (DDPM Eq. 7)
            betas[i] * (1.0 - alphas_cumprod_prev[i]) / (1.0 - alphas_cumprod[i])
        });
        let posterior_log_variance_clipped = map(&|i| {
            let v = if i == 0 && n > 1 {
                posterior_variance[1]
            } else {
                posterior_variance[i]
            };
            v.max(1e-20).ln()
        });
        Self {
            kind,
            timesteps,
            sqrt_alphas_cumprod: map(&|i| alphas_cumprod[i].sqrt()),
            sqrt_one_minus_alphas_cumprod: map(&|i| (1.0 - alphas_cumprod[i]).sqrt()),
            sqrt_recip_alphas_cumprod: map(&|i| (1.0 / alphas_cumprod[i]).sqrt()),
            sqrt_recipm1_alphas_cumprod: map(&|i| (1.0 / alphas_cumprod[i] - 1.0).sqrt()),
            posterior_variance,
            posterior_log_variance_clipped,
            // mu~_t = coef1 x_0 + coef2 x_t (DDPM Eq. 7)
            posterior_mean_coef1: map(&|i| {
                betas[i] * alphas_cumprod_prev[i].sqrt() / (1.0 - alphas_cumprod[i])
            }),
            posterior_mean_coef2: map(&|i| {
                (1.0 - alphas_cumprod_prev[i]) * (1.0 - betas[i]).sqrt() / (1.0 - alphas_cumprod[i])
            }),
            alphas_cumprod,
            alphas_cumprod_prev,
            betas,
        }
    }

    /// The number of steps in this sequence.
    pub fn len(&self) -> usize {
        self.betas.len()
    }

    /// Always false: a schedule has at least one step.
    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }
}

/// `steps` timesteps spread evenly over 0..T, always including 0 and T - 1 when steps > 1
/// (guided-diffusion `space_timesteps` with one section).
pub fn spaced_timesteps(steps: usize) -> Vec<usize> {
    if steps == 1 {
        return vec![T - 1];
    }
    let stride = (T - 1) as f64 / (steps - 1) as f64;
    (0..steps)
        .map(|i| (i as f64 * stride).round() as usize)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respacing_to_t_is_the_identity() {
        let full = Schedule::new(BetaSchedule::Linear);
        let same = Schedule::respaced(BetaSchedule::Linear, T).unwrap();
        assert_eq!(same.timesteps, full.timesteps);
        for i in 0..T {
            assert!((same.betas[i] - full.betas[i]).abs() < 1e-15);
        }
    }

    #[test]
    fn spaced_timesteps_are_distinct_and_cover_the_ends() {
        for steps in [2, 3, 25, 50, 100, 250, 999] {
            let ts = spaced_timesteps(steps);
            assert_eq!(ts.len(), steps);
            assert_eq!((ts[0], ts[steps - 1]), (0, T - 1));
            assert!(ts.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
