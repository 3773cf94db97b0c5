//! A run as the page drives it, one step per call: the networks it draws with ([`Nets`]), the
//! dispatch between the recorded step replayed on WebGPU and the plain sampler ([`Run`]), and
//! the bookkeeping of the one run in progress ([`Runs`]: its token, a steer waiting for its next
//! step, its push colour scale). The wasm boundary (src/web.rs) holds a `Runs` and turns its
//! steps into the page's frames; the native tests drive the same code (tests/run.rs).

use std::cell::RefCell;

use burn::tensor::Device;

use crate::frame::{Frame, FrameData};
use crate::grid::push_scale;
use crate::nn::{Classifier, UNet};
use crate::replay::ReplayRun;
use crate::sampler::Sampler;
use crate::schedule::BetaSchedule;
use crate::settings::{SampleSettings, Steer, NOT_STEERABLE};
use crate::Error;

/// One decoded pair of networks, ready to sample.
pub struct Nets {
    pub unet: UNet,
    /// Frozen on the device's autodiff backend, as [`Sampler::new`] takes it.
    pub classifier: Classifier,
    /// The schedule the networks were trained with (their manifest's).
    pub schedule: BetaSchedule,
}

/// A run: on WebGPU one recorded step replayed at every t ([`ReplayRun`], which cuts the host
/// work per step), elsewhere the plain sampler (which needs no per-run noise table in memory).
/// One per run, so the size of its larger variant is no cost.
#[allow(clippy::large_enum_variant)]
pub enum Run {
    Eager(Sampler),
    Replay(ReplayRun),
}

/// Where a step was and what it drew, read back.
pub struct StepDone {
    /// Steps done, 1..=total.
    pub step: usize,
    pub total: usize,
    /// The original timestep this step started from.
    pub t: usize,
    pub data: FrameData,
}

impl Run {
    /// A run of `settings` with `nets` on `device`: replayed where `replay`, else eager. A bad
    /// setting is refused with a sentence.
    pub fn new(
        nets: &Nets,
        settings: SampleSettings,
        device: &Device,
        replay: bool,
    ) -> Result<Self, Error> {
        let (unet, classifier) = (nets.unet.clone(), nets.classifier.clone());
        Ok(match replay {
            true => Run::Replay(ReplayRun::new(unet, classifier, settings, device)?),
            false => Run::Eager(Sampler::new(unet, classifier, settings, device)?),
        })
    }

    pub fn is_done(&self) -> bool {
        match self {
            Run::Eager(s) => s.is_done(),
            Run::Replay(r) => r.is_done(),
        }
    }

    pub fn settings(&self) -> &SampleSettings {
        match self {
            Run::Eager(s) => s.settings(),
            Run::Replay(r) => r.settings(),
        }
    }

    /// Steers the run from its next step on ([`Sampler::steer`], [`ReplayRun::steer`]).
    pub fn steer(&mut self, steer: &Steer) -> Result<(), Error> {
        match self {
            Run::Eager(s) => s.steer(steer),
            Run::Replay(r) => r.steer(steer),
        }
    }

    /// One step, read back, the last one finished as the settings ask
    /// ([`SampleSettings::finished`]); `None` once the run is done.
    pub async fn step(&mut self) -> Result<Option<StepDone>, Error> {
        let out = match self {
            Run::Eager(sampler) => sampler.step().map(Frame::into_out),
            Run::Replay(run) => run.step()?,
        };
        let Some(out) = out else {
            return Ok(None);
        };
        let (step, total, t) = (out.step, out.total, out.t);
        let mut data = out.read().await?;
        if step == total {
            let settings = self.settings();
            data.x_t = settings.finished(data.x_t);
            data.x0 = settings.finished(data.x0);
        }
        Ok(Some(StepDone {
            step,
            total,
            t,
            data,
        }))
    }
}

/// The run in progress, if any, known by its token: every [`start`](Runs::start) and
/// [`cancel`](Runs::cancel) makes a new token, so a step that was awaiting the device when
/// either happened, or a caller still holding an older token, knows its run is over.
pub struct Runs {
    token: u32,
    /// The run of `token`; out of its place while a step of it awaits the device.
    run: Option<Run>,
    /// Its push colour scale ([`push_scale`] of its steps).
    push_scale: f32,
    /// Whether it can be steered (a comparison cannot).
    steerable: bool,
    /// A steer not yet applied: the run's next step applies it (a step awaiting its readback
    /// holds the run, so a steer that arrives meanwhile waits here).
    steer: Option<Steer>,
}

impl Default for Runs {
    fn default() -> Self {
        Runs {
            token: 0,
            run: None,
            push_scale: push_scale(crate::settings::DEFAULT_STEPS),
            steerable: false,
            steer: None,
        }
    }
}

impl Runs {
    /// Makes `run` the run in progress, replacing any, and returns its token.
    pub fn start(&mut self, run: Run) -> u32 {
        let settings = run.settings();
        self.push_scale = push_scale(settings.steps);
        self.steerable = settings.per_sample.is_empty();
        self.steer = None;
        self.run = Some(run);
        self.token = self.token.wrapping_add(1);
        self.token
    }

    /// Stops the run in progress; its token steps nothing from now on.
    pub fn cancel(&mut self) {
        self.run = None;
        self.steer = None;
        self.token = self.token.wrapping_add(1);
    }

    /// Whether `token` is the run in progress's.
    pub fn is_current(&self, token: u32) -> bool {
        token == self.token
    }

    /// The push colour scale of the run in progress.
    pub fn push_scale(&self) -> f32 {
        self.push_scale
    }

    /// Steers run `token` from its next step on. A steer of a run that is over does nothing; an
    /// impossible one (of a comparison, or a bad setting) is refused with a sentence and the
    /// run goes on as it was. A later steer before the next step replaces an earlier one.
    pub fn steer(&mut self, token: u32, steer: Steer) -> Result<(), Error> {
        if !self.is_current(token) {
            return Ok(());
        }
        if !self.steerable {
            return Err(Error::Setting(NOT_STEERABLE.into()));
        }
        steer.validate()?;
        self.steer = Some(steer);
        Ok(())
    }

    /// One step of run `token`, read back; `None` when that run is no longer the current one
    /// (done, cancelled or replaced, also while this step was awaiting the device), so a stale
    /// caller never steps another run or receives a frame from one that is over. The cell is
    /// not borrowed across the readback, so a steer or a cancel may arrive meanwhile.
    pub async fn step(runs: &RefCell<Runs>, token: u32) -> Result<Option<StepDone>, Error> {
        let (mut run, steer) = {
            let mut r = runs.borrow_mut();
            if !r.is_current(token) {
                return Ok(None);
            }
            let Some(run) = r.run.take() else {
                return Ok(None);
            };
            (run, r.steer.take())
        };
        if let Some(steer) = steer {
            // Checked by `steer` when it arrived, against this run.
            run.steer(&steer)?;
        }
        let Some(done) = run.step().await? else {
            return Ok(None);
        };
        let mut r = runs.borrow_mut();
        if !r.is_current(token) {
            return Ok(None); // cancelled or replaced during the readback: drop its frame
        }
        if !run.is_done() {
            r.run = Some(run);
        }
        Ok(Some(done))
    }
}
