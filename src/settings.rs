//! The request: everything that decides a run's images ([`SampleSettings`]), which reverse
//! step ([`Method`]), an image to edit ([`Edit`]), and the checks that refuse an impossible one
//! with a sentence.

use serde::{Deserialize, Serialize};

use crate::guidance::Guidance;
use crate::nn::{NUM_CLASSES, SIDE};
use crate::schedule::{BetaSchedule, T};
use crate::Error;

/// The reverse step, which the math defines ([`crate::diffusion`]); the request names it.
pub use crate::diffusion::Method;

/// The demo's default reverse step and number of steps (the CLI's and the page's), with
/// [`guidance::DEFAULT`](crate::guidance::DEFAULT): the fewest steps whose evaluated row meets
/// every target the default is held to (`guided_ddpm_lab::targets::front_pick` in
/// lab/src/targets.rs, docs/EVAL.md). Until 2026-12-05 the default was DDPM at 100 steps.
pub const DEFAULT_METHOD: Method = Method::DpmSolver;
pub const DEFAULT_STEPS: usize = 8;
/// Whether the demo finishes a run from noise as MNIST's digits were ([`SampleSettings::place`]):
/// its row is the one the front rule picks (docs/EVAL.md).
pub const DEFAULT_PLACE: bool = true;

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
    /// `first_image + i` of `seed` ([`NoiseStreams`](crate::noise::NoiseStreams)), so a batch split into parts gives the
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
    /// After the last step, finish each image as MNIST's digits were ([`digit::placed`](crate::digit::placed)):
    /// its faint haze cleared to black and the digit moved by whole pixels to centre its mass.
    /// On in the CLI's and the page's runs from noise (off with `sample --as-drawn`, the page's
    /// "as drawn" box); refused with an edit, whose kept pixels stay where they are. Absent in
    /// JSON means off, so settings written before it draw what they drew.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub place: bool,
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

/// A change of a run in progress (live steering): from the next step on, every image is asked
/// for `class` under `guidance`, from the x_t the run has reached. A steered run's images are
/// not those of any settings a run starts from.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Steer {
    pub class: usize,
    pub guidance: Guidance,
}

impl Steer {
    /// Rejects a class or guidance no run could take, with the sentence a run's settings would
    /// get ([`SampleSettings::validate`]).
    pub fn validate(&self) -> Result<(), Error> {
        check_class(self.class)?;
        self.guidance.validate()
    }
}

/// Why a comparison (a run with per-sample guidance) is not steered.
pub const NOT_STEERABLE: &str =
    "a comparison cannot be steered: its images differ by their settings";

/// Rejects a class that is not a digit.
fn check_class(c: usize) -> Result<(), Error> {
    match c < NUM_CLASSES {
        true => Ok(()),
        false => Err(Error::Setting(format!(
            "the class must be a digit from 0 to 9, got {c}"
        ))),
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
    /// A run from noise of `classes` (one sample each) under one `guidance`: no split batch, no
    /// comparison, no edit, as drawn (not placed).
    pub fn new(
        classes: Vec<usize>,
        guidance: Guidance,
        steps: usize,
        method: Method,
        seed: u64,
        schedule: BetaSchedule,
    ) -> SampleSettings {
        SampleSettings {
            classes,
            guidance,
            steps,
            method,
            seed,
            schedule,
            first_image: 0,
            per_sample: Vec::new(),
            same_noise: false,
            edit: None,
            place: false,
        }
    }

    /// Rejects impossible settings with a sentence that names the problem.
    pub fn validate(&self) -> Result<(), Error> {
        check_batch(self.classes.len())?;
        self.classes.iter().try_for_each(|&c| check_class(c))?;
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
        if self
            .per_sample
            .iter()
            .any(|g| g.interval != self.per_sample[0].interval || g.grad != self.per_sample[0].grad)
        {
            return Err(Error::Setting(
                "settings compared side by side must share one guidance interval and one form of the classifier's gradient".into(),
            ));
        }
        if let Some(edit) = &self.edit {
            edit.validate()?;
            if self.place {
                return Err(Error::Setting(
                    "an edit keeps its image where it is, so its result cannot also be placed \
                     (moved to centre its mass): draw it as it comes"
                        .into(),
                ));
            }
        }
        self.per_sample
            .iter()
            .chain([&self.guidance])
            .try_for_each(Guidance::validate)
    }

    /// These settings steered by `steer` for the rest of a run: every image asked for its class,
    /// under its guidance. A comparison (per-sample guidance) is not steered: its images exist
    /// to differ by their settings.
    pub fn steered(&self, steer: &Steer) -> Result<SampleSettings, Error> {
        if !self.per_sample.is_empty() {
            return Err(Error::Setting(NOT_STEERABLE.into()));
        }
        let settings = SampleSettings {
            classes: vec![steer.class; self.classes.len()],
            guidance: steer.guidance,
            ..self.clone()
        };
        settings.validate()?;
        Ok(settings)
    }

    /// How many reverse steps the run takes: `steps`, or an edit's share of them.
    pub fn steps_run(&self) -> usize {
        match &self.edit {
            Some(edit) => edit.steps(self.steps),
            None => self.steps,
        }
    }

    /// A finished run's images (`[B, 28, 28]` values in [-1, 1]) as these settings show them:
    /// [`digit::placed`](crate::digit::placed) when [`place`](Self::place) asks for it, else as
    /// drawn. The CLI, eval and the page each finish their runs' last images through it.
    pub fn finished(&self, images: Vec<f32>) -> Vec<f32> {
        match self.place {
            true => crate::digit::placed(&images),
            false => images,
        }
    }

    /// The guidance of sample `i`.
    pub fn guidance_of(&self, i: usize) -> Guidance {
        self.per_sample.get(i).copied().unwrap_or(self.guidance)
    }

    /// The guidance of every sample, in batch order.
    pub fn per_sample_guidance(&self) -> Vec<Guidance> {
        (0..self.classes.len())
            .map(|i| self.guidance_of(i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`Method::name`] is how the URL, the CLI and eval.json spell each sampler: the same as
    /// its serde name, which the page's settings JSON uses.
    #[test]
    fn each_sampler_is_named_as_serde_writes_it() {
        for m in Method::ALL {
            assert_eq!(serde_json::to_value(m).unwrap(), m.name(), "{m:?}");
        }
    }

    /// Placing moves the digit, so an edit, whose kept pixels stay where they are, refuses it;
    /// settings JSON without `place` (written before it) draws as drawn.
    #[test]
    fn an_edit_is_never_placed_and_absent_place_is_off() {
        let json = r#"{"classes":[3],"guidance":{"mode":"none","scale":0,"cfg_scale":0},"steps":8,"method":"dpm","seed":0,"schedule":"cosine"}"#;
        let mut s: SampleSettings = serde_json::from_str(json).unwrap();
        assert!(!s.place);
        s.place = true;
        s.validate().unwrap();
        s.edit = Some(Edit {
            image: vec![-1.0; SIDE * SIDE],
            strength: 0.5,
            mask: None,
        });
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("cannot also be placed"), "{err}");
        s.place = false;
        s.validate().unwrap();
    }
}
