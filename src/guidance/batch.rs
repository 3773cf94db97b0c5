//! A run's guidance as its batched steps apply it: one setting for the whole batch, or one per
//! sample (the page's Compare).

use burn::tensor::{Device, Tensor, TensorData};

use super::request::holds;
use super::{cfg_mix, Grad, Guidance};

/// A run's guidance as its steps apply it: one setting for the whole batch, with scalar factors
/// (the arithmetic of every single-setting run), or one setting per sample, with `[B, 1, 1, 1]`
/// factors, so that samples under different settings share one batched step and each gets what
/// a run of its own setting computes (to float rounding: s is applied to the gradient before
/// the schedule's factor rather than folded into it).
#[allow(clippy::large_enum_variant)] // one per run
pub(crate) enum BatchGuidance {
    Same(Guidance),
    PerSample {
        /// The guidance interval every sample shares ([`SampleSettings::validate`](crate::settings::SampleSettings::validate)).
        interval: Option<[usize; 2]>,
        /// The form of the gradient every sample shares (likewise).
        grad: Grad,
        /// Whether any sample mixes classifier-free, so the conditional branch runs.
        free: bool,
        /// Whether any sample uses the classifier gradient.
        classifier: bool,
        /// eps~ = cond * eps(x, y) - uncond * eps(x, null): (1 + w, w) for a sample that mixes
        /// classifier-free (Ho & Salimans 2022, Eq. 6), (0, -1) for one that does not, which
        /// leaves it eps(x, null) exactly.
        cond: Tensor<4>,
        uncond: Tensor<4>,
        /// The classifier scale s of each sample, 0 where its mode does not use the classifier.
        scale: Tensor<4>,
    },
}

impl BatchGuidance {
    /// The guidance of a run whose samples take `all` (one setting each, in batch order).
    pub(crate) fn new(all: &[Guidance], device: &Device) -> Self {
        if all.iter().all(|g| *g == all[0]) {
            return Self::Same(all[0]);
        }
        let factor = |f: fn(&Guidance) -> f64| {
            let v: Vec<f32> = all.iter().map(|g| f(g) as f32).collect();
            let b = v.len();
            Tensor::from_data(TensorData::new(v, [b, 1, 1, 1]), device)
        };
        Self::PerSample {
            interval: all[0].interval,
            grad: all[0].grad,
            free: all.iter().any(|g| g.mode.uses_free()),
            classifier: all.iter().any(|g| g.mode.uses_classifier()),
            cond: factor(|g| match g.mode.uses_free() {
                true => 1.0 + g.cfg_scale,
                false => 0.0,
            }),
            uncond: factor(|g| match g.mode.uses_free() {
                true => g.cfg_scale,
                false => -1.0,
            }),
            scale: factor(|g| match g.mode.uses_classifier() {
                true => g.scale,
                false => 0.0,
            }),
        }
    }

    /// Whether the U-Net runs both branches, conditional and unconditional, as one batch of 2B
    /// to mix them: for one setting only where its w is not 0, since at w = 0 the mix
    /// (1 + 0) eps(x, y) - 0 eps(x, null) is the conditional branch alone, bit for bit.
    pub(crate) fn runs_both_branches(&self) -> bool {
        match self {
            Self::Same(g) => g.runs_both_branches(),
            Self::PerSample { free, .. } => *free,
        }
    }

    /// Whether the U-Net reads the asked classes (the conditional branch runs), not only the
    /// null label.
    pub(crate) fn conditional(&self) -> bool {
        match self {
            Self::Same(g) => g.mode.uses_free(),
            Self::PerSample { free, .. } => *free,
        }
    }

    /// Whether the classifier's gradient is taken.
    pub(crate) fn uses_classifier(&self) -> bool {
        match self {
            Self::Same(g) => g.mode.uses_classifier(),
            Self::PerSample { classifier, .. } => *classifier,
        }
    }

    /// The scale [`StepCoefs::at`](crate::diffusion::StepCoefs::at) folds into the guidance factor of the step at original
    /// timestep `t`: s for one setting, 1 when [`scale_grad`](Self::scale_grad) applies s per
    /// sample; 0 outside the guidance interval.
    pub(crate) fn coef_scale_at(&self, t: usize) -> f64 {
        match self {
            Self::Same(g) => g.scale_at(t),
            Self::PerSample { interval, .. } => match holds(*interval, t) {
                true => 1.0,
                false => 0.0,
            },
        }
    }

    /// The form of the classifier's gradient.
    pub(crate) fn grad(&self) -> Grad {
        match self {
            Self::Same(g) => g.grad,
            Self::PerSample { grad, .. } => *grad,
        }
    }

    /// Whether the classifier's gradient acts at original timestep `t` for some sample.
    pub(crate) fn guides_at(&self, t: usize) -> bool {
        self.uses_classifier() && self.coef_scale_at(t) != 0.0
    }

    /// The classifier-free mix of the conditional and unconditional eps.
    pub(crate) fn mix(&self, eps_cond: Tensor<4>, eps_uncond: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Same(g) => cfg_mix(eps_cond, eps_uncond, g.cfg_scale),
            Self::PerSample { cond, uncond, .. } => {
                eps_cond * cond.clone() - eps_uncond * uncond.clone()
            }
        }
    }

    /// The gradient times each sample's s, where s varies per sample.
    pub(crate) fn scale_grad(&self, grad: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Same(_) => grad,
            Self::PerSample { scale, .. } => grad * scale.clone(),
        }
    }
}
