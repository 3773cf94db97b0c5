//! The reverse process: the only loop over t. Each [`Sampler::step`] runs the networks once,
//! applies the guidance, takes one DDPM, DDIM or DPM-Solver++(2M) step and hands back a
//! [`Frame`]. What a run is
//! asked for lives in [`settings`](crate::settings), what a step hands back in
//! [`frame`](crate::frame), how the class steers in [`guidance`](crate::guidance).
//!
//! The sampler is a state machine rather than a closed loop so that the browser can await
//! between steps (and cancel); [`Sampler::run`] is the loop for native callers.

use std::ops::ControlFlow;

use burn::tensor::{Device, Int, Tensor, TensorData};
use web_time::Instant;

use crate::diffusion::{
    ancestral_sample, ddim_step, dpm_sde_mean, dpm_solver_2m_step, p_mean, predict_x0, Coef,
    StepCoefs,
};
use crate::frame::Frame;
use crate::guidance::{
    applied_grad, cfg_mix_table, classifier_grad_with, classifier_inputs, classifier_log_prob_with,
    clean_embedding, condition_mean, condition_score, guidance_shift, BatchGuidance, Grad,
};
use crate::nn::embedding::sinusoidal;
use crate::nn::{dense, label_tensor, t_tensor, Classifier, UNet, NULL_CLASS, SIDE};
use crate::noise::NoiseStreams;
use crate::schedule::Schedule;
use crate::settings::{Method, SampleSettings, Steer};
use crate::Error;

/// Where a step starts: the index into the respaced schedule and its original timestep.
pub struct StepAt {
    k: usize,
    t_index: usize,
    /// The timestep index per sample, `[B]`.
    t: Tensor<1>,
    coefs: StepCoefs<f64>,
}

/// What the classifier contributes to a step.
pub struct ClassifierTerm {
    /// grad_x log p_phi(y | x_t, t), `[B, 1, 28, 28]`, when the mode uses the classifier.
    pub grad: Option<Tensor<4>>,
    /// log p_phi(y | x_t, t), `[B]`.
    pub log_p: Tensor<1>,
    /// log p_phi(c | x_t, t) of every class, `[B, 10]`.
    pub log_probs: Tensor<2>,
}

/// What inpainting keeps: the image `[B, 1, 28, 28]`, its mask `[1, 1, 28, 28]` (1 = keep) and
/// 1 - mask, made once per run.
struct Keep {
    image: Tensor<4>,
    mask: Tensor<4>,
    free: Tensor<4>,
}

/// The reverse process in progress.
pub struct Sampler {
    unet: UNet,
    classifier: Classifier,
    settings: SampleSettings,
    guidance: BatchGuidance,
    schedule: Schedule,
    x: Tensor<4>,
    /// The x0 the last step predicted, which DPM-Solver++(2M) extrapolates from; `None` before
    /// the first step.
    x0_last: Option<Tensor<4>>,
    /// The index into `schedule` of the next step; `None` when done.
    next: Option<usize>,
    /// How many steps the run takes ([`SampleSettings::steps_run`]).
    total: usize,
    noise: NoiseStreams,
    /// An edit's image and mask, when it has a mask.
    keep: Option<Keep>,
    /// Autoguidance's guide network and weight ([`with_autoguide`](Self::with_autoguide)).
    autoguide: Option<(UNet, f64)>,
    device: Device,
}

impl Sampler {
    /// Starts from x_T ~ N(0, I) drawn from the per-image streams of `settings.seed`, or, for an
    /// edit, from its image noised by that first draw to the level of its first step. The U-Net
    /// runs on `device`; the classifier must be on that device's autodiff twin
    /// (`device.clone().autodiff()`), frozen.
    pub fn new(
        unet: UNet,
        classifier: Classifier,
        settings: SampleSettings,
        device: &Device,
    ) -> Result<Self, Error> {
        settings.validate()?;
        let schedule = Schedule::respaced(settings.schedule, settings.steps)?;
        let mut noise = NoiseStreams::of(&settings);
        let eps = noise.next(device);
        let total = settings.steps_run();
        let next = total.checked_sub(1);
        let b = settings.classes.len();
        let (x, keep) = match &settings.edit {
            None => (eps, None),
            Some(edit) => {
                let image = Tensor::<4>::from_data(
                    TensorData::new(edit.image.clone(), [1, 1, SIDE, SIDE]),
                    device,
                )
                .expand([b, 1, SIDE, SIDE]);
                // x_t = sqrt(abar_t) image + sqrt(1 - abar_t) eps (DDPM Eq. 4) at the first step
                // run; with no step to run, the image itself.
                let x = match next {
                    Some(k) => {
                        image.clone() * schedule.sqrt_alphas_cumprod[k]
                            + eps * schedule.sqrt_one_minus_alphas_cumprod[k]
                    }
                    None => image.clone(),
                };
                let mask = edit.mask.as_ref().map(|m| {
                    Tensor::<4>::from_data(TensorData::new(m.clone(), [1, 1, SIDE, SIDE]), device)
                });
                let keep = mask.map(|mask| Keep {
                    image,
                    free: mask.clone().neg() + 1.0,
                    mask,
                });
                (x, keep)
            }
        };
        Ok(Self {
            unet,
            classifier,
            guidance: BatchGuidance::new(&settings.per_sample_guidance(), device),
            settings,
            schedule,
            x,
            x0_last: None,
            next,
            total,
            noise,
            keep,
            autoguide: None,
            device: device.clone(),
        })
    }

    /// Autoguidance (Karras et al. 2024, "Guiding a diffusion model with a bad version of
    /// itself", Eq. 2 in eps form): every step's eps becomes eps_guide + w (eps - eps_guide),
    /// where eps_guide is `guide`'s reading of the same x_t, t and labels under the same
    /// classifier-free mix; w = 1 is the model alone. An experiment of the lab's (issue 43):
    /// the page, steering and the recorded WebGPU step do not take it.
    pub fn with_autoguide(mut self, guide: UNet, w: f64) -> Self {
        self.autoguide = Some((guide, w));
        self
    }

    pub fn is_done(&self) -> bool {
        self.next.is_none()
    }

    /// The settings the run draws under now (a steer changes them).
    pub fn settings(&self) -> &SampleSettings {
        &self.settings
    }

    /// Steers the run from its next step on ([`Steer`]): the class and guidance change, the
    /// x_t reached, the noise streams and the schedule stay. An impossible steer (a comparison,
    /// a bad setting) is refused with a sentence and changes nothing.
    pub fn steer(&mut self, steer: &Steer) -> Result<(), Error> {
        let settings = self.settings.steered(steer)?;
        self.guidance = BatchGuidance::new(&settings.per_sample_guidance(), &self.device);
        self.settings = settings;
        Ok(())
    }

    /// One reverse step; `None` once the last step is done.
    pub fn step(&mut self) -> Option<Frame> {
        let started = Instant::now();
        let at = self.begin()?;
        let eps = self.predict_eps(&at);
        let class = self.classifier_term(&at, &eps);
        Some(self.finish(at, eps, class, started))
    }

    /// The first phase of a step: which timestep it is at; `None` once done. A step is
    /// [`begin`](Self::begin), [`predict_eps`](Self::predict_eps),
    /// [`classifier_term`](Self::classifier_term), [`finish`](Self::finish), in that order; they
    /// are separate so that a benchmark can wait for the device between them (`bench.rs`).
    pub fn begin(&self) -> Option<StepAt> {
        let k = self.next?;
        let t_index = self.schedule.timesteps[k];
        let b = self.settings.classes.len();
        Some(StepAt {
            k,
            t_index,
            t: t_tensor(&vec![t_index; b], &self.device),
            coefs: StepCoefs::at(
                &self.schedule,
                k,
                self.guidance.coef_scale_at(t_index),
                self.settings.method,
                k + 1 == self.total,
            ),
        })
    }

    /// eps_theta(x_t, t): the unconditional branch, the conditional one (classifier-free at
    /// w = 0), or the classifier-free mix (Ho & Salimans 2022, Eq. 6), which runs both branches
    /// as one batch of 2B.
    pub fn predict_eps(&self, at: &StepAt) -> Tensor<4> {
        let g = &self.guidance;
        let t = match g.runs_both_branches() {
            true => Tensor::cat(vec![at.t.clone(), at.t.clone()], 0),
            false => at.t.clone(),
        };
        let labels = unet_labels(&self.settings.classes, g, &self.device);
        let t_features = sinusoidal(t.clone(), self.unet.sinusoid_dim());
        let emb = self.unet.embedding(t_features, labels.clone());
        let eps = guided_eps(&self.unet, g, self.x.clone(), emb, None);
        match &self.autoguide {
            None => eps,
            Some((guide, w)) => {
                let emb = guide.embedding(sinusoidal(t, guide.sinusoid_dim()), labels);
                let eps_guide = guided_eps(guide, g, self.x.clone(), emb, None);
                eps_guide.clone() + (eps - eps_guide) * *w
            }
        }
    }

    /// The classifier's gradient in the run's form ([`Grad`]) when the mode uses the classifier
    /// (forward and backward), else only log p for the progress chart (forward); `eps` is the
    /// step's from [`predict_eps`](Self::predict_eps).
    pub fn classifier_term(&self, at: &StepAt, eps: &Tensor<4>) -> ClassifierTerm {
        let classes = &self.settings.classes;
        let (emb, onehot) = classifier_inputs(&self.classifier, at.t.clone(), classes);
        let emb_x0 = (self.guidance.grad() == Grad::X0)
            .then(|| clean_embedding(&self.classifier, classes.len(), &self.device));
        classifier_term(
            &self.classifier,
            &self.guidance,
            self.guidance.guides_at(at.t_index),
            self.x.clone(),
            emb,
            onehot,
            (eps, &at.coefs),
            emb_x0,
        )
    }

    /// The update: the guided DDPM or DDIM step from eps and the classifier term; moves the
    /// sampler on to the next timestep.
    pub fn finish(
        &mut self,
        at: StepAt,
        eps: Tensor<4>,
        class: ClassifierTerm,
        started: Instant,
    ) -> Frame {
        let k = at.k;
        // The last step adds no noise, and draws none, so a run is one fixed sequence.
        let z = match k {
            1.. if self.settings.method.draws_noise() => Some(self.noise.next(&self.device)),
            _ => None,
        };
        let (mut next_x, x0, push) = update(
            self.settings.method,
            &at.coefs,
            self.x.clone(),
            eps,
            class.grad,
            z,
            self.x0_last.take(),
        );
        if self.settings.method.multistep() {
            self.x0_last = Some(x0.clone());
        }
        if let Some(Keep { image, mask, free }) = &self.keep {
            // RePaint's replacement (Lugmayr et al. 2022, Eq. 8): the kept pixels become the image
            // noised to the level this step reached, sqrt(abar_{t-1}) image + sqrt(1 -
            // abar_{t-1}) eps; after the last step (abar = 1, no draw) the image itself.
            let known = match k {
                0 => image.clone(),
                _ => {
                    let eps = self.noise.next(&self.device);
                    at.coefs.sqrt_abar_prev.times(image.clone())
                        + at.coefs.sqrt_one_minus_abar_prev.times(eps)
                }
            };
            next_x = known * mask.clone() + next_x * free.clone();
        }
        self.x = next_x.clone();
        self.next = k.checked_sub(1);
        Frame {
            step: self.total - k,
            total: self.total,
            t: at.t_index,
            x_t: next_x,
            x0,
            log_p_target: class.log_p,
            log_probs: class.log_probs,
            push,
            elapsed: started.elapsed(),
            classes: self.settings.classes.clone(),
        }
    }

    /// Runs every remaining step, handing each frame to `observer`; it may stop the run between
    /// steps by returning `ControlFlow::Break`, and then `None` is returned.
    pub fn run(mut self, mut observer: impl FnMut(&Frame) -> ControlFlow<()>) -> Option<Tensor<4>> {
        while let Some(frame) = self.step() {
            if observer(&frame).is_break() {
                return None;
            }
        }
        Some(self.x)
    }
}

/// The labels the U-Net reads for a run of `classes`: the asked classes, followed by as many
/// null labels when the classifier-free mix runs both branches as one batch of 2B; the asked
/// classes alone for the conditional branch alone (w = 0); or only null labels for the
/// unconditional model.
pub(crate) fn unet_labels(classes: &[usize], g: &BatchGuidance, device: &Device) -> Tensor<1, Int> {
    let b = classes.len();
    let labels = match (g.runs_both_branches(), g.conditional()) {
        (true, _) => classes
            .iter()
            .copied()
            .chain(std::iter::repeat_n(NULL_CLASS, b))
            .collect(),
        (false, true) => classes.to_vec(),
        (false, false) => vec![NULL_CLASS; b],
    };
    label_tensor(&labels, device)
}

/// eps_theta(x_t, t) under guidance `g`, from the U-Net's [`embedding`](UNet::embedding) of 2B
/// rows (conditional, then unconditional) when the run mixes classifier-free, else of the B
/// rows of [`unet_labels`]. `mix`, where given, holds the classifier-free mix's factors
/// ([`cfg_mix_table`]) in place of `g`'s, which a recorded step reads from a table a steer
/// rewrites.
pub(crate) fn guided_eps(
    unet: &UNet,
    g: &BatchGuidance,
    x: Tensor<4>,
    emb: Tensor<2>,
    mix: Option<&Tensor<1>>,
) -> Tensor<4> {
    let b = x.dims()[0];
    if g.runs_both_branches() {
        let both = unet.forward_embedded(Tensor::cat(vec![x.clone(), x], 0), emb);
        let both = dense(both);
        let (cond, uncond) = (both.clone().narrow(0, 0, b), both.narrow(0, b, b));
        match mix {
            Some(factors) => cfg_mix_table(cond, uncond, factors),
            None => g.mix(cond, uncond),
        }
    } else {
        dense(unet.forward_embedded(x, emb))
    }
}

/// The classifier's part of a step: the gradient a step applies ([`applied_grad`], times each
/// sample's s where s varies per sample) and log p when the run guides with it, else log p alone
/// (forward only, for the progress chart). `emb` is the classifier's embedding on x's device
/// ([`classifier_inputs`]); `eps` and `c` are the step's unguided eps and numbers, which the
/// normalised and x0 forms read; `emb_x0` is the embedding of t = 0, which the x0 form
/// ([`Grad::X0`]) must be given. `guided` is whether the gradient acts at this step: a run that
/// guides but not at this step (outside its interval) skips the backward pass and takes a zero
/// gradient, which its step factor of 0 would have made of any gradient; a recorded step passes
/// `g.uses_classifier()`, since one recording serves every step.
#[allow(clippy::too_many_arguments)]
pub(crate) fn classifier_term<C: Coef>(
    classifier: &Classifier,
    g: &BatchGuidance,
    guided: bool,
    x: Tensor<4>,
    emb: Tensor<2>,
    onehot: Tensor<2>,
    (eps, c): (&Tensor<4>, &StepCoefs<C>),
    emb_x0: Option<Tensor<2>>,
) -> ClassifierTerm {
    if g.uses_classifier() && !guided {
        let zero = x.zeros_like();
        let (log_p, log_probs) = classifier_log_prob_with(classifier, x, emb, onehot);
        return ClassifierTerm {
            grad: Some(zero),
            log_p,
            log_probs,
        };
    }
    if !g.uses_classifier() {
        let (log_p, log_probs) = classifier_log_prob_with(classifier, x, emb, onehot);
        return ClassifierTerm {
            grad: None,
            log_p,
            log_probs,
        };
    }
    let form = g.grad();
    let (grad, log_p, log_probs) = match form {
        Grad::Xt | Grad::Norm => {
            let out = classifier_grad_with(classifier, x, emb, onehot);
            (out.grad, out.log_p, out.log_probs)
        }
        Grad::X0 => {
            // The gradient of the clean-digit reading at the predicted x0; the chart's reading
            // stays the one of x_t.
            let x0 = predict_x0(c, x.clone(), eps.clone());
            let emb_x0 = emb_x0.expect("the x0 form is given the embedding of t = 0");
            let out = classifier_grad_with(classifier, x0, emb_x0, onehot.clone());
            let (log_p, log_probs) = classifier_log_prob_with(classifier, x, emb, onehot);
            (out.grad, log_p, log_probs)
        }
    };
    ClassifierTerm {
        grad: Some(g.scale_grad(applied_grad(form, grad, eps, c))),
        log_p,
        log_probs,
    }
}

/// One guided reverse step from x_t, eps and the classifier gradient: DDPM's ancestral step, or
/// the SDE form of DPM-Solver++(2M), with the guided mean (noise `z` scaled by `c.sigma`, which
/// is 0 at the last step; no noise term at all without `z`), or DDIM's or DPM-Solver++(2M)'s
/// with the guided eps. The solver's two forms extrapolate from `x0_last`, the previous step's
/// x0 (zeros stand in at a first step, whose weight of it is 0). Returns (x_{t-1}, predicted
/// x0, the classifier's shift where there is a gradient).
pub(crate) fn update<C: Coef>(
    method: Method,
    c: &StepCoefs<C>,
    x: Tensor<4>,
    eps: Tensor<4>,
    grad: Option<Tensor<4>>,
    z: Option<Tensor<4>>,
    x0_last: Option<Tensor<4>>,
) -> (Tensor<4>, Tensor<4>, Option<Tensor<4>>) {
    let x0_last = match method.multistep() {
        true => Some(x0_last.unwrap_or_else(|| x.zeros_like())),
        false => None,
    };
    match method {
        Method::Ddpm | Method::DpmSde => {
            let step = match x0_last {
                Some(x0_last) => dpm_sde_mean(c, x, eps, x0_last),
                None => p_mean(c, x, eps),
            };
            // The shift is made after the mean, as mean + s Sigma grad (Eq. 10) reads: burn's
            // fusion groups ops in the order they are made, and this order took a replayed
            // step of that day's default on WebGPU from 602 launches (shift first) to 595
            // (SwiftShader, 2026-12-03).
            let shift = grad.map(|grad| guidance_shift(&c.guide, grad));
            let mean = match shift.clone() {
                Some(shift) => condition_mean(step.mean, shift),
                None => step.mean,
            };
            let next = match z {
                Some(z) => ancestral_sample(c, mean, z),
                None => mean,
            };
            (next, step.x0, shift)
        }
        Method::Ddim | Method::DpmSolver => {
            // Both take the guided eps (Dhariwal & Nichol 2021, Algorithm 2).
            let shift = grad.map(|grad| guidance_shift(&c.guide, grad));
            let eps = match shift.clone() {
                Some(shift) => condition_score(eps, shift),
                None => eps,
            };
            let (next, x0) = match x0_last {
                Some(x0_last) => dpm_solver_2m_step(c, x, eps, x0_last),
                None => ddim_step(c, x, eps),
            };
            // What the shift of eps moved x_{t-1} by (`StepCoefs::push`).
            (next, x0, shift.map(|shift| c.push.times(shift)))
        }
    }
}
