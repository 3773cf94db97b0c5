//! The reverse process: the only loop over t. Each [`Sampler::step`] runs the networks once,
//! applies the guidance, takes one DDPM or DDIM step and hands back a [`Frame`].
//!
//! The sampler is a state machine rather than a closed loop so that the browser can await
//! between steps (and cancel); [`Sampler::run`] is the loop for native callers.

use std::ops::ControlFlow;

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use web_time::{Duration, Instant};

use burn::tensor::Int;

use crate::diffusion::{ancestral_sample, ddim_step, p_mean, Coef, NoiseStreams, StepCoefs};
use crate::guidance::{
    cfg_mix, classifier_grad_with, classifier_inputs, classifier_log_prob_with, condition_mean,
    condition_score, dense, guidance_shift, Guidance,
};
use crate::nn::embedding::sinusoidal;
use crate::nn::{label_tensor, t_tensor, Classifier, UNet, NULL_CLASS, NUM_CLASSES, SIDE};
use crate::schedule::{BetaSchedule, Schedule, T};
use crate::Error;

/// Which reverse step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Ancestral sampling with the fixed-small variance (DDPM Algorithm 2).
    Ddpm,
    /// Deterministic DDIM, eta = 0 (Song et al. 2021).
    Ddim,
}

/// Everything that decides the images, so the same settings give the same images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleSettings {
    /// The asked class of each sample; the batch size is its length.
    pub classes: Vec<usize>,
    pub guidance: Guidance,
    /// Reverse steps, respaced from T (1..=T).
    pub steps: usize,
    pub method: Method,
    pub seed: u64,
    pub schedule: BetaSchedule,
    /// The run-wide index of the first sample: sample `i` draws its noise from stream
    /// `first_image + i` of `seed` ([`NoiseStreams`]), so a batch split into parts gives the
    /// same images as the whole. 0 unless a caller splits a batch.
    #[serde(default)]
    pub first_image: usize,
    /// One guidance setting per sample, in the order of `classes`, for a run that compares
    /// settings side by side from the same noise (the page's Compare, `sample --compare`);
    /// empty (the usual case) means `guidance` for every sample. A batch whose settings are all
    /// equal runs exactly as a run with that one setting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_sample: Vec<Guidance>,
    /// Every sample draws the noise of stream `first_image` (the same x_T and the same z at each
    /// step), so that samples under different `per_sample` settings differ by their guidance
    /// alone, each as a one-sample run of its setting from that stream would draw it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub same_noise: bool,
    /// Start from an image rather than from pure noise (SDEdit), and/or keep some of its pixels
    /// (inpainting); `None` samples from noise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<Edit>,
}

/// An edit of an image: SDEdit (Meng et al. 2022) noises it to the level that `strength` picks
/// and runs the guided reverse steps from there; a `mask` also keeps its pixels (inpainting with
/// RePaint's replacement, Lugmayr et al. 2022, Eq. 8, without its resampling): after every step
/// the kept pixels are replaced by the image noised to that step's level (by the forward process,
/// with fresh noise from the sample's stream), and by the image itself after the last one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Edit {
    /// The image, 28 x 28 values in [-1, 1] (black to white, row-major), the same for every
    /// sample.
    pub image: Vec<f32>,
    /// How much to change, 0..=1: the run takes the last round(strength * steps) of its reverse
    /// steps, from the image noised to the first of them (x_t = sqrt(abar_t) image +
    /// sqrt(1 - abar_t) eps, DDPM Eq. 4). 0 returns the image untouched; 1 starts from (all but)
    /// pure noise.
    pub strength: f64,
    /// 28 x 28 values, 1 where the image's pixel is kept, 0 where the model draws; `None` keeps
    /// none (SDEdit alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<Vec<f32>>,
}

impl Edit {
    /// Rejects an image or mask of the wrong size or with values out of range, a strength outside
    /// 0..=1, and a mask that keeps every pixel (nothing left to draw).
    pub fn validate(&self) -> Result<(), Error> {
        let px = SIDE * SIDE;
        if self.image.len() != px || self.image.iter().any(|v| !(-1.0..=1.0).contains(v)) {
            return Err(Error::Setting(format!(
                "the image to edit must be {SIDE} x {SIDE} values from -1 to 1, got {} values",
                self.image.len()
            )));
        }
        if !(0.0..=1.0).contains(&self.strength) {
            return Err(Error::Setting(format!(
                "the edit strength must be from 0 to 1, got {}",
                self.strength
            )));
        }
        if let Some(mask) = &self.mask {
            if mask.len() != px || mask.iter().any(|v| !(0.0..=1.0).contains(v)) {
                return Err(Error::Setting(format!(
                    "the mask must be {SIDE} x {SIDE} values from 0 to 1, got {} values",
                    mask.len()
                )));
            }
            if mask.iter().all(|&v| v == 1.0) {
                return Err(Error::Setting(
                    "the mask keeps every pixel, so there is nothing left to draw: leave some \
                     of the image free"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// How many of a run's `steps` reverse steps the edit takes.
    pub fn steps(&self, steps: usize) -> usize {
        (self.strength * steps as f64).round() as usize
    }
}

/// The most samples one run may ask for (a 16-image grid in the browser, more natively).
pub const MAX_BATCH: usize = 256;

/// Rejects a batch size outside 1..=[`MAX_BATCH`] with a sentence; callers check a count before
/// they allocate anything for it.
pub fn check_batch(n: usize) -> Result<(), Error> {
    if n == 0 || n > MAX_BATCH {
        return Err(Error::Setting(format!(
            "the number of samples must be between 1 and {MAX_BATCH}, got {n}"
        )));
    }
    Ok(())
}

impl SampleSettings {
    /// Rejects impossible settings with a sentence that names the problem.
    pub fn validate(&self) -> Result<(), Error> {
        check_batch(self.classes.len())?;
        if let Some(c) = self.classes.iter().find(|&&c| c >= NUM_CLASSES) {
            return Err(Error::Setting(format!(
                "the class must be a digit from 0 to 9, got {c}"
            )));
        }
        if self.steps == 0 || self.steps > T {
            return Err(Error::Setting(format!(
                "steps must be between 1 and {T}, got {}",
                self.steps
            )));
        }
        if !self.per_sample.is_empty() && self.per_sample.len() != self.classes.len() {
            return Err(Error::Setting(format!(
                "per-sample guidance needs one setting per sample: {} settings for {} samples",
                self.per_sample.len(),
                self.classes.len()
            )));
        }
        if let Some(edit) = &self.edit {
            edit.validate()?;
        }
        self.per_sample
            .iter()
            .chain([&self.guidance])
            .try_for_each(Guidance::validate)
    }

    /// How many reverse steps the run takes: `steps`, or an edit's share of them.
    pub fn steps_run(&self) -> usize {
        match &self.edit {
            Some(edit) => edit.steps(self.steps),
            None => self.steps,
        }
    }

    /// The guidance of sample `i`.
    pub fn guidance_of(&self, i: usize) -> Guidance {
        self.per_sample.get(i).copied().unwrap_or(self.guidance)
    }
}

/// A run's guidance as its steps apply it: one setting for the whole batch, with scalar factors
/// (the arithmetic of every single-setting run), or one setting per sample, with `[B, 1, 1, 1]`
/// factors, so that samples under different settings share one batched step and each gets what
/// a run of its own setting computes (to float rounding: s is applied to the gradient before
/// the schedule's factor rather than folded into it).
#[allow(clippy::large_enum_variant)] // one per run
pub(crate) enum BatchGuidance {
    Same(Guidance),
    PerSample {
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
    pub(crate) fn new(settings: &SampleSettings, device: &Device) -> Self {
        let all: Vec<Guidance> = (0..settings.classes.len())
            .map(|i| settings.guidance_of(i))
            .collect();
        if all.iter().all(|g| *g == all[0]) {
            return Self::Same(all[0]);
        }
        let factor = |f: fn(&Guidance) -> f64| {
            let v: Vec<f32> = all.iter().map(|g| f(g) as f32).collect();
            let b = v.len();
            Tensor::from_data(TensorData::new(v, [b, 1, 1, 1]), device)
        };
        Self::PerSample {
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

    /// Whether the U-Net runs its conditional branch beside the unconditional one.
    pub(crate) fn uses_free(&self) -> bool {
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

    /// The scale [`StepCoefs::at`] folds into its guidance factor: s for one setting, 1 when
    /// [`scale_grad`](Self::scale_grad) applies s per sample.
    pub(crate) fn coef_scale(&self) -> f64 {
        match self {
            Self::Same(g) => g.scale,
            Self::PerSample { .. } => 1.0,
        }
    }

    /// The classifier-free mix of the conditional and unconditional eps.
    fn mix(&self, eps_cond: Tensor<4>, eps_uncond: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Same(g) => cfg_mix(eps_cond, eps_uncond, g.cfg_scale),
            Self::PerSample { cond, uncond, .. } => {
                eps_cond * cond.clone() - eps_uncond * uncond.clone()
            }
        }
    }

    /// The gradient times each sample's s, where s varies per sample.
    fn scale_grad(&self, grad: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Same(_) => grad,
            Self::PerSample { scale, .. } => grad * scale.clone(),
        }
    }
}

/// What one step hands to its observer.
pub struct Frame {
    /// Steps done so far, 1..=total.
    pub step: usize,
    pub total: usize,
    /// The original timestep index this step started from.
    pub t: usize,
    /// The sample after this step, `[B, 1, 28, 28]` in [-1, 1] (roughly, before the end).
    pub x_t: Tensor<4>,
    /// The predicted clean image at this step, `[B, 1, 28, 28]`.
    pub x0: Tensor<4>,
    /// log p_phi(y | x_t, t) of the asked class at the input of this step, `[B]`.
    pub log_p_target: Tensor<1>,
    /// log p_phi(c | x_t, t) of every class c at the input of this step, `[B, 10]`.
    pub log_probs: Tensor<2>,
    /// The classifier's shift this step applied ([`guidance_shift`]), `[B, 1, 28, 28]`; `None`
    /// when no sample of the run uses the classifier.
    pub push: Option<Tensor<4>>,
    /// Wall time of this step (without any readback by the observer).
    pub elapsed: Duration,
    /// The asked class of each sample.
    pub classes: Vec<usize>,
}

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

/// A frame read back to the host.
pub struct FrameData {
    /// The samples after the step, `B x 28 x 28` values in [-1, 1] (roughly, before the end).
    pub x_t: Vec<f32>,
    /// The predicted clean images, `B x 28 x 28`.
    pub x0: Vec<f32>,
    /// p_phi(y | x_t, t) of the asked class per sample.
    pub p: Vec<f32>,
    /// p_phi(c | x_t, t) of every class, `B x 10`.
    pub probs: Vec<f32>,
    /// The classifier's shift of each pixel this step ([`guidance_shift`]), `B x 28 x 28`;
    /// empty when no sample of the run uses the classifier.
    pub push: Vec<f32>,
}

impl Frame {
    /// The frame as one device tensor, ready to be read back in one transfer.
    pub fn into_out(self) -> StepOut {
        StepOut {
            step: self.step,
            total: self.total,
            t: self.t,
            classes: self.classes,
            frame: pack_frame(self.x_t, self.x0, self.log_probs, self.push),
        }
    }

    /// Reads the frame back without blocking, as the page needs it: one transfer for all three
    /// (each readback from a GPU is a round trip; docs/BENCHMARKS.md).
    pub async fn read(self) -> Result<FrameData, Error> {
        self.into_out().read().await
    }
}

/// One step's frame still on the device: x_{t-1}, predicted x0, p(asked class | x_t), every
/// class's p and the classifier's shift of each sample packed into one tensor ([`pack_frame`]),
/// read back by [`StepOut::read`].
pub struct StepOut {
    /// Steps done so far, 1..=total.
    pub step: usize,
    pub total: usize,
    /// The original timestep this step started from.
    pub t: usize,
    pub(crate) frame: Tensor<1>,
    /// The asked class of each sample, to pick p(asked class) from every class's p.
    pub(crate) classes: Vec<usize>,
}

impl StepOut {
    /// Reads the frame back without blocking, in one transfer.
    pub async fn read(self) -> Result<FrameData, Error> {
        let n = self.classes.len() * SIDE * SIDE;
        let mut x_t = read(self.frame).await?;
        let mut probs = x_t.split_off(2 * n);
        let x0 = x_t.split_off(n);
        let push = probs.split_off(self.classes.len() * NUM_CLASSES);
        // p = exp(log p), on the host: one kernel fewer in the step.
        probs.iter_mut().for_each(|v| *v = v.exp());
        let p = self
            .classes
            .iter()
            .enumerate()
            .map(|(i, &c)| probs[i * NUM_CLASSES + c])
            .collect();
        Ok(FrameData {
            x_t,
            x0,
            p,
            probs,
            push,
        })
    }
}

/// x_{t-1} `[B, 1, 28, 28]`, x0 `[B, 1, 28, 28]`, every class's log p `[B, 10]` and the
/// classifier's shift `[B, 1, 28, 28]` (if any) as one tensor of [`frame_len`] values, in that
/// order. p = exp(log p) and the asked class's p are taken on the host ([`StepOut::read`]).
pub(crate) fn pack_frame(
    x_t: Tensor<4>,
    x0: Tensor<4>,
    log_probs: Tensor<2>,
    push: Option<Tensor<4>>,
) -> Tensor<1> {
    let b = log_probs.dims()[0];
    let n = b * SIDE * SIDE;
    let mut parts = vec![
        x_t.reshape([n]),
        x0.reshape([n]),
        log_probs.reshape([b * NUM_CLASSES]),
    ];
    parts.extend(push.map(|p| p.reshape([n])));
    Tensor::cat(parts, 0)
}

/// How many values [`pack_frame`] packs for a batch of `b`, with or without the shift.
pub(crate) fn frame_len(b: usize, push: bool) -> usize {
    (2 + push as usize) * b * SIDE * SIDE + b * NUM_CLASSES
}

/// Reads a tensor back without blocking (every synchronous readback panics in the browser).
pub async fn read<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, Error> {
    let data = t.into_data_async().await.map_err(|e| {
        Error::Setting(format!(
            "the GPU stopped answering ({e:?}); reload the page to start again"
        ))
    })?;
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Setting(format!("unexpected tensor data: {e:?}")))
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
    /// The index into `schedule` of the next step; `None` when done.
    next: Option<usize>,
    /// How many steps the run takes ([`SampleSettings::steps_run`]).
    total: usize,
    noise: NoiseStreams,
    /// An edit's image and mask, when it has a mask.
    keep: Option<Keep>,
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
            guidance: BatchGuidance::new(&settings, device),
            settings,
            schedule,
            x,
            next,
            total,
            noise,
            keep,
            device: device.clone(),
        })
    }

    pub fn settings(&self) -> &SampleSettings {
        &self.settings
    }

    pub fn is_done(&self) -> bool {
        self.next.is_none()
    }

    /// The current sample, `[B, 1, 28, 28]`.
    pub fn current(&self) -> Tensor<4> {
        self.x.clone()
    }

    /// One reverse step; `None` once the last step is done.
    pub fn step(&mut self) -> Option<Frame> {
        let started = Instant::now();
        let at = self.begin()?;
        let eps = self.predict_eps(&at);
        let class = self.classifier_term(&at);
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
        let ddim = self.settings.method == Method::Ddim;
        Some(StepAt {
            k,
            t_index,
            t: t_tensor(&vec![t_index; b], &self.device),
            coefs: StepCoefs::at(&self.schedule, k, self.guidance.coef_scale(), ddim),
        })
    }

    /// eps_theta(x_t, t): the unconditional branch, or the classifier-free mix
    /// (Ho & Salimans 2022, Eq. 6), which runs both branches as one batch of 2B.
    pub fn predict_eps(&self, at: &StepAt) -> Tensor<4> {
        let g = &self.guidance;
        let t = match g.uses_free() {
            true => Tensor::cat(vec![at.t.clone(), at.t.clone()], 0),
            false => at.t.clone(),
        };
        let labels = unet_labels(&self.settings.classes, g, &self.device);
        let t_features = sinusoidal(t, self.unet.sinusoid_dim());
        let emb = self.unet.embedding(t_features, labels);
        guided_eps(&self.unet, g, self.x.clone(), emb)
    }

    /// grad_x log p_phi(y | x_t, t) when the mode uses the classifier (forward and backward),
    /// else only log p for the progress chart (forward).
    pub fn classifier_term(&self, at: &StepAt) -> ClassifierTerm {
        let (emb, onehot) =
            classifier_inputs(&self.classifier, at.t.clone(), &self.settings.classes);
        classifier_term(
            &self.classifier,
            &self.guidance,
            self.x.clone(),
            emb,
            onehot,
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
        let z = match (self.settings.method, k) {
            (Method::Ddpm, 1..) => Some(self.noise.next(&self.device)),
            _ => None,
        };
        let (mut next_x, x0, push) = update(
            self.settings.method,
            &at.coefs,
            self.x.clone(),
            eps,
            class.grad,
            z,
        );
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
/// null labels when the classifier-free mix runs both branches as one batch of 2B, or only null
/// labels for the unconditional model.
pub(crate) fn unet_labels(classes: &[usize], g: &BatchGuidance, device: &Device) -> Tensor<1, Int> {
    let b = classes.len();
    let labels = match g.uses_free() {
        true => classes
            .iter()
            .copied()
            .chain(std::iter::repeat_n(NULL_CLASS, b))
            .collect(),
        false => vec![NULL_CLASS; b],
    };
    label_tensor(&labels, device)
}

/// eps_theta(x_t, t) under guidance `g`, from the U-Net's [`embedding`](UNet::embedding) of 2B
/// rows (conditional, then unconditional) when the run mixes classifier-free, else of B rows
/// of the null label.
pub(crate) fn guided_eps(
    unet: &UNet,
    g: &BatchGuidance,
    x: Tensor<4>,
    emb: Tensor<2>,
) -> Tensor<4> {
    let b = x.dims()[0];
    if g.uses_free() {
        let both = unet.forward_embedded(Tensor::cat(vec![x.clone(), x], 0), emb);
        let both = dense(both);
        g.mix(both.clone().narrow(0, 0, b), both.narrow(0, b, b))
    } else {
        dense(unet.forward_embedded(x, emb))
    }
}

/// The classifier's part of a step: the gradient (times each sample's s where s varies per
/// sample) and log p when the run guides with it, else log p alone (forward only, for the
/// progress chart). `emb` is the classifier's embedding on x's device ([`classifier_inputs`]).
pub(crate) fn classifier_term(
    classifier: &Classifier,
    g: &BatchGuidance,
    x: Tensor<4>,
    emb: Tensor<2>,
    onehot: Tensor<2>,
) -> ClassifierTerm {
    if g.uses_classifier() {
        let out = classifier_grad_with(classifier, x, emb, onehot);
        ClassifierTerm {
            grad: Some(g.scale_grad(out.grad)),
            log_p: out.log_p,
            log_probs: out.log_probs,
        }
    } else {
        let (log_p, log_probs) = classifier_log_prob_with(classifier, x, emb, onehot);
        ClassifierTerm {
            grad: None,
            log_p,
            log_probs,
        }
    }
}

/// One guided reverse step from x_t, eps and the classifier gradient: DDPM's ancestral step
/// with the guided mean (noise `z` scaled by `c.sigma`, which is 0 at the last step; no noise
/// term at all without `z`) or DDIM's with the guided eps. Returns (x_{t-1}, predicted x0, the
/// classifier's shift where there is a gradient).
pub(crate) fn update<C: Coef>(
    method: Method,
    c: &StepCoefs<C>,
    x: Tensor<4>,
    eps: Tensor<4>,
    grad: Option<Tensor<4>>,
    z: Option<Tensor<4>>,
) -> (Tensor<4>, Tensor<4>, Option<Tensor<4>>) {
    match method {
        Method::Ddpm => {
            let step = p_mean(c, x, eps);
            // The shift is made after the mean, as mean + s Sigma grad (Eq. 10) reads: burn's
            // fusion groups ops in the order they are made, and this order takes a replayed
            // default step on WebGPU from 602 launches (shift first) to 595 (SwiftShader,
            // 2026-12-03; docs/BENCHMARKS.md).
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
        Method::Ddim => {
            let shift = grad.map(|grad| guidance_shift(&c.guide, grad));
            let eps = match shift.clone() {
                Some(shift) => condition_score(eps, shift),
                None => eps,
            };
            let (next, x0) = ddim_step(c, x, eps);
            (next, x0, shift)
        }
    }
}
