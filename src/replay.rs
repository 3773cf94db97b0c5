//! A sampler run whose guided step is recorded once and replayed at every later timestep.
//!
//! On WebGPU the page's cost of a step is host work per kernel launch (docs/BENCHMARKS.md):
//! burn's per-operation Rust, cubecl's launch bookkeeping and one bind group per dispatch.
//! cubecl's software graph (cubecl-wgpu `compute/graph.rs`, reached through burn's
//! `graph_prepare` / `graph_start_capture` / `graph_stop_capture` / `graph_replay`) records a
//! step's launches with their pipelines and bind groups resolved once, and a replay re-encodes
//! them in a tight loop.
//!
//! A replay runs the recorded kernels on the recorded buffers with the recorded scalar
//! arguments, so everything that changes from step to step lives in device memory:
//! - the step's numbers (posterior coefficients, noise scale, guidance factor), the noise z and
//!   both networks' timestep embeddings silu(emb) (which depend on the timestep and label
//!   only, so their MLPs run once per run, not once per step) are rows of per-run tables, made
//!   once by [`ReplayRun::new`] and picked by a device-side step index `k`;
//! - the step first decrements `k` in place and reads its rows at the decremented index, and
//!   ends by writing x_{t-1} back into the buffer of x_t, in place too (burn's cubecl kernels
//!   reuse a buffer whose tensor is the only one holding it), so the next replay reads the next
//!   step's inputs; DPM-Solver++(2M), which extrapolates from the last step's x0, keeps that x0
//!   in the same buffer after x_t, and the one write stores both. Each in-place write comes where every other read of its buffer in the step
//!   depends on it or feeds it (every row read needs the decremented k; x_{t-1} needs every read
//!   of x_t). burn's fusion orders launches by data dependence only: with the decrement at the
//!   end of the step, where nothing in the step depended on it, the replayed DDPM steps in the
//!   browser left the plain sampler's from the second replay on (by 2.29 at step 3), and with
//!   it first they match (docs/BENCHMARKS.md);
//! - nothing inside a step is uploaded from the host (a recording refuses host writes); a
//!   live steer that keeps the step's kernels writes its new tables into the same buffers
//!   between two replays ([`ReplayRun::steer`]), which the next replay reads.
//!
//! The first step of a run is preceded by one untimed step whose results are dropped (it settles
//! the memory pools, since a recording cannot allocate), runs eagerly, and the step after it is
//! recorded at once; every later step is a replay. Where the device records nothing (flex, the
//! CPU fallback) every step runs eagerly through the same code, so the run's images are those of
//! [`Sampler`](crate::sampler::Sampler) from the same seed either way (the noise is drawn from
//! the same seeded stream in the same order). A recording that fails (it found no room in the
//! memory pools for a buffer: seen when a cancelled run's buffers were still being let go) leaves
//! x and k carrying its failure, so the run goes on eagerly from copies of them made before the
//! warm-up, rerunning the step it was on: the same images, without the replay's savings. That
//! eager step allocates what the recording could not find, so the next step warms up and
//! records once more; a second failure leaves the rest of the run eager. Every run records
//! afresh, whatever the runs before it did.

use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_backend::{Backend, BackendGraph};
use burn_dispatch::Dispatch;

use crate::diffusion::{StepCoefs, STEP_COEFS};
use crate::frame::{frame_len, pack_frame, StepOut};
use crate::guidance::{
    cfg_mix_factors, classifier_embedding, clean_embedding, BatchGuidance, Grad, Guidance,
};
use crate::nn::embedding::sinusoidal;
use crate::nn::{one_hot, t_tensor, Classifier, UNet, SIDE};
use crate::noise::NoiseStreams;
use crate::sampler::{classifier_term, guided_eps, unet_labels, update};
use crate::schedule::Schedule;
use crate::settings::{SampleSettings, Steer};
use crate::Error;

/// How the steps of a run are executed. One per run, so the replay variant's size is no cost.
#[allow(clippy::large_enum_variant)]
enum Mode {
    /// The next step is the first: an untimed step is dropped, this one runs eagerly, then the
    /// step after it is recorded.
    Warmup,
    /// Each step replays `graph`; `frame` is the buffer the recording writes a frame into.
    Replay {
        graph: BackendGraph<Dispatch>,
        frame: Tensor<1>,
    },
    /// Each step runs eagerly: the device records nothing (the reason).
    Eager(String),
    /// Recording the step failed (the reason): each step runs eagerly, as in `Eager`.
    Failed(String),
}

/// The per-run tables that follow from the asked classes and their guidance.
struct Tables {
    /// The run's guidance; per-sample factors are fixed tensors, read by every replay.
    guidance: BatchGuidance,
    /// Row k: [`StepCoefs::row`] of step k, `[S, STEP_COEFS]`.
    coefs: Tensor<2>,
    /// Row k: step k's embedding for the U-Net's rows (`[S, rows E]`, [`UNet::embedding`]) and
    /// for the classifier's B samples (`[S, B E]`, [`Classifier::embedding`]).
    emb_unet: Tensor<2>,
    emb_classifier: Tensor<2>,
    /// The classifier's embedding of t = 0 for its B samples, `[B, E]`, which a run whose
    /// gradient is taken at the predicted x0 reads at every step ([`Grad::X0`]).
    emb_classifier_x0: Option<Tensor<2>>,
    labels: Tensor<1, Int>,
    onehot: Tensor<2>,
    /// The classifier-free mix's factors (1 + w, w) of a single-setting run that runs both
    /// U-Net branches ([`cfg_mix_factors`]), so that a steer can change w by rewriting them.
    mix: Option<Tensor<1>>,
}

impl Tables {
    fn new(
        unet: &UNet,
        classifier: &Classifier,
        settings: &SampleSettings,
        schedule: &Schedule,
        device: &Device,
    ) -> Tables {
        let s = schedule.len();
        let b = settings.classes.len();
        let method = settings.method;
        let guidance = BatchGuidance::new(&settings.per_sample_guidance(), device);
        let coefs: Vec<f32> = (0..s)
            .flat_map(|k| {
                let scale = guidance.coef_scale_at(schedule.timesteps[k]);
                StepCoefs::at(schedule, k, scale, method, k + 1 == s).row()
            })
            .collect();
        let coefs = Tensor::from_data(TensorData::new(coefs, [s, STEP_COEFS]), device);
        // Every (step, row) pair as one batch, row-major over steps, so that reshaping each
        // network's [S rows, E] embedding to [S, rows E] puts step k's rows in row k.
        let t = t_tensor(&schedule.timesteps, device);
        let spread = |features: Tensor<2>, rows: usize| {
            let d = features.dims()[1];
            features
                .reshape([s, 1, d])
                .expand([s, rows, d])
                .reshape([s * rows, d])
        };
        let table = |emb: Tensor<2>, rows: usize| {
            let e = emb.dims()[1];
            emb.reshape([s, rows * e])
        };
        let labels = unet_labels(&settings.classes, &guidance, device);
        let rows = labels.dims()[0];
        let y = labels.clone().reshape([1, rows]).expand([s, rows]);
        let emb_unet = unet.embedding(
            spread(sinusoidal(t.clone(), unet.sinusoid_dim()), rows),
            y.reshape([s * rows]),
        );
        let emb_classifier = classifier_embedding(
            classifier,
            spread(sinusoidal(t, classifier.sinusoid_dim()), b),
        );
        let (emb_unet, emb_classifier) = (table(emb_unet, rows), table(emb_classifier, b));
        let emb_classifier_x0 =
            (guidance.grad() == Grad::X0).then(|| clean_embedding(classifier, b, device));
        let mix = match &guidance {
            BatchGuidance::Same(g) if g.runs_both_branches() => {
                Some(cfg_mix_factors(g.cfg_scale, device))
            }
            _ => None,
        };
        Tables {
            emb_classifier_x0,
            mix,
            onehot: one_hot(&settings.classes, device),
            labels,
            guidance,
            coefs,
            emb_unet,
            emb_classifier,
        }
    }

    /// Whether a step recorded under these tables runs under `to`'s by their rows alone: the
    /// recorded kernels are the same (the same branches of the U-Net, the classifier's gradient
    /// taken or not and in the same form), and everything else a steer changes is a table row:
    /// the class (the U-Net's label embedding and the classifier's one-hot), s and the guidance
    /// interval (the step factor in `coefs`) and w (`mix`). A comparison is never steered.
    fn same_step(&self, to: &Guidance) -> bool {
        match &self.guidance {
            BatchGuidance::Same(g) => {
                g.mode == to.mode
                    && g.grad == to.grad
                    && g.runs_both_branches() == to.runs_both_branches()
            }
            BatchGuidance::PerSample { .. } => false,
        }
    }

    /// Writes `new`'s rows into these tables' device buffers, in place (burn's cubecl kernels
    /// write a slice assignment into the buffer of a tensor nothing else holds), so that a
    /// recorded step, whose kernels read these buffers, reads the new rows at its next replay.
    /// The classifier's embeddings depend on the timestep only, so they stay. For tables of the
    /// [`same_step`](Self::same_step) only.
    fn rewrite(&mut self, new: Tables) {
        fn write<const D: usize>(old: &mut Tensor<D>, new: Tensor<D>) {
            let whole = old.dims().map(|d| 0..d);
            old.inplace(|old| old.slice_assign(whole, new));
        }
        write(&mut self.coefs, new.coefs);
        write(&mut self.emb_unet, new.emb_unet);
        write(&mut self.onehot, new.onehot);
        if let (Some(old), Some(new)) = (&mut self.mix, new.mix) {
            write(old, new);
        }
        self.labels = new.labels;
        self.guidance = new.guidance;
    }
}

/// A run in progress whose steps replay one recorded step where the device can record.
pub struct ReplayRun {
    unet: UNet,
    classifier: Classifier,
    settings: SampleSettings,
    /// What the class and guidance decide, read by every replay; made anew by a steer.
    tables: Tables,
    schedule: Schedule,
    /// Row k: the noise z of step k, `[S, B 784]` (zeros where a step draws none).
    noise: Tensor<2>,
    /// x_t, `[B, 1, 28, 28]`, overwritten in place by each step; for DPM-Solver++(2M) in either
    /// form, `[2B, 1, 28, 28]`: x_t, then the last step's x0.
    x: Tensor<4>,
    /// One more than the index of the next step, `[1]`, decremented in place at the start of
    /// each step, which then reads its rows at the decremented value.
    k: Tensor<1, Int>,
    /// The index of the next step on the host; `None` when done.
    next: Option<usize>,
    mode: Mode,
    /// Test hook: this many more recordings ask for a buffer no pool holds, so they fail.
    #[cfg(test_hooks)]
    fail_recordings: usize,
    /// Whether a failed recording has been tried again (once per run).
    retried: bool,
    device: Device,
}

impl ReplayRun {
    /// Validates the settings and uploads the run's tables. The classifier must be frozen on
    /// `device.autodiff()`, as for [`Sampler::new`](crate::sampler::Sampler::new).
    pub fn new(
        unet: UNet,
        classifier: Classifier,
        settings: SampleSettings,
        device: &Device,
    ) -> Result<Self, Error> {
        settings.validate()?;
        if settings.edit.is_some() {
            return Err(Error::Setting(
                "a recorded run cannot edit an image; run it with the plain sampler".into(),
            ));
        }
        let schedule = Schedule::respaced(settings.schedule, settings.steps)?;
        let s = schedule.len();
        let b = settings.classes.len();
        let n = b * SIDE * SIDE;
        let method = settings.method;

        // The same draws in the same order as `Sampler`: x_T, then z for k = S-1 down to 1.
        let mut streams = NoiseStreams::of(&settings);
        let x = streams.next(device);
        // DPM-Solver++(2M) carries the last x0 from step to step: it rides in x's buffer, as
        // rows B..2B, so that one in-place write that depends on every read of the buffer
        // updates both (module doc). Zeros before the first step, whose weight of it is 0.
        let x = match method.multistep() {
            true => Tensor::cat(vec![x.clone(), x.zeros_like()], 0),
            false => x,
        };
        let mut noise = vec![0f32; s * n];
        if method.draws_noise() {
            for k in (1..s).rev() {
                noise[k * n..(k + 1) * n].copy_from_slice(&streams.next_values());
            }
        }
        let noise = Tensor::from_data(TensorData::new(noise, [s, n]), device);

        let tables = Tables::new(&unet, &classifier, &settings, &schedule, device);
        let k = Tensor::from_data(TensorData::new(vec![s as i64], [1]), device);
        Ok(Self {
            unet,
            classifier,
            tables,
            schedule,
            settings,
            noise,
            x,
            k,
            next: Some(s - 1),
            mode: Mode::Warmup,
            #[cfg(test_hooks)]
            fail_recordings: 0,
            retried: false,
            device: device.clone(),
        })
    }

    /// The settings the run draws under now (a steer changes them).
    pub fn settings(&self) -> &SampleSettings {
        &self.settings
    }

    pub fn is_done(&self) -> bool {
        self.next.is_none()
    }

    /// Steers the run from its next step on ([`Steer`]), as
    /// [`Sampler::steer`](crate::sampler::Sampler::steer) does: x_t, the noise and the schedule
    /// stay; the tables the class and guidance decide are made anew. Where the recorded step
    /// stays the same ([`Tables::same_step`]: a new digit, s, w or guidance interval), the new
    /// tables are written into the recorded step's buffers and the next step replays. Where
    /// it does not (a new mode or form of the gradient, or w leaving or reaching 0), the
    /// recording is dropped and the next step warms up and records again (two eager steps,
    /// then replays). An impossible steer is refused and changes nothing.
    pub fn steer(&mut self, steer: &Steer) -> Result<(), Error> {
        let settings = self.settings.steered(steer)?;
        let tables = Tables::new(
            &self.unet,
            &self.classifier,
            &settings,
            &self.schedule,
            &self.device,
        );
        if matches!(self.mode, Mode::Replay { .. }) && self.tables.same_step(&settings.guidance) {
            self.tables.rewrite(tables);
        } else {
            // The graph goes before the buffers it reads.
            self.mode = match std::mem::replace(&mut self.mode, Mode::Warmup) {
                Mode::Eager(why) => Mode::Eager(why),
                Mode::Warmup | Mode::Replay { .. } | Mode::Failed(_) => Mode::Warmup,
            };
            self.retried = false;
            self.tables = tables;
        }
        self.settings = settings;
        Ok(())
    }

    /// Whether the steps now replay a recorded step.
    pub fn is_replaying(&self) -> bool {
        matches!(self.mode, Mode::Replay { .. })
    }

    /// Why the steps run eagerly (or why recording failed), once that is settled (after the
    /// first step).
    pub fn eager_reason(&self) -> Option<&str> {
        match &self.mode {
            Mode::Eager(why) | Mode::Failed(why) => Some(why),
            _ => None,
        }
    }

    /// One reverse step, queued on the device; `None` once the last step is done. Read its
    /// frame with [`StepOut::read`] before the next call.
    pub fn step(&mut self) -> Result<Option<StepOut>, Error> {
        let Some(k) = self.next else {
            return Ok(None);
        };
        let device = self.device.clone();
        let dispatch = device.as_dispatch();
        let frame = match std::mem::replace(&mut self.mode, Mode::Eager(String::new())) {
            // Prepared, warmed up and recorded in this one call, so no other work can reach the
            // device while it is prepared for a recording.
            Mode::Warmup if k > 0 => match Dispatch::graph_prepare(dispatch) {
                Ok(()) => {
                    // Copies of x and k in buffers of their own, for the run to go on from if
                    // the recording fails; made first, so the pools settle with them held.
                    let saved = (self.x.clone() * 1.0, self.k.clone() + 0);
                    // A recording must find every buffer it asks for free in the pools (it
                    // cannot allocate), which holds once the pools have settled into the
                    // layout of a step's allocations: one untimed step first, whose results
                    // are dropped (x and k are held, so it writes new buffers, not theirs),
                    // then this step. Its frame stays alive for the caller while the next step
                    // is recorded; a spare buffer of that size, freed before the recording,
                    // stands in for it.
                    let (x, k) = (self.x.clone(), self.k.clone());
                    drop(self.record());
                    (self.x, self.k) = (x, k);
                    let len = frame_len(
                        self.settings.classes.len(),
                        self.tables.guidance.uses_classifier(),
                    );
                    let spare = Tensor::<1>::empty([len], &self.device);
                    let frame = self.record();
                    drop(spare);
                    self.mode = self.capture(dispatch);
                    if self.recording_failed() {
                        // x and k carry the failure: this step again, eagerly, from the copies.
                        drop(frame);
                        (self.x, self.k) = saved;
                        let frame = self.record();
                        // The eager step grew the pools by what the recording missed: the next
                        // step warms up and records once more.
                        if !self.retried {
                            self.retried = true;
                            self.mode = Mode::Warmup;
                        }
                        frame
                    } else {
                        frame
                    }
                }
                Err(e) => self.eager(format!("the device cannot prepare a recording: {e:?}")),
            },
            // A one-step run has nothing to replay.
            Mode::Warmup => self.eager("a one-step run records nothing".into()),
            Mode::Replay { graph, frame } => {
                // Safety: every buffer the graph touches is held by `self` (the tables, x, k,
                // the networks' parameters, the frame) or pinned by the graph itself, and only
                // this single-threaded run uses them.
                unsafe { Dispatch::graph_replay(dispatch, &graph) }
                    .map_err(|e| gpu_err("replaying the recorded step", e))?;
                self.mode = Mode::Replay {
                    graph,
                    frame: frame.clone(),
                };
                frame
            }
            mode @ (Mode::Eager(_) | Mode::Failed(_)) => {
                self.mode = mode;
                self.record()
            }
        };
        let total = self.schedule.len();
        self.next = k.checked_sub(1);
        Ok(Some(StepOut {
            step: total - k,
            total,
            t: self.schedule.timesteps[k],
            frame,
            classes: self.settings.classes.clone(),
        }))
    }

    /// Records one step without running it: what the next steps replay, or why they cannot.
    /// Recording runs nothing, so x and k are left as they were either way.
    fn capture(&mut self, dispatch: &burn_dispatch::DispatchDevice) -> Mode {
        if let Err(e) = Dispatch::graph_start_capture(dispatch) {
            // Leave the prepared state, so that the device serves later runs as before.
            let _ = Dispatch::graph_stop_capture(dispatch);
            return Mode::Eager(format!("the device records no graphs: {e:?}"));
        }
        let frame = self.record();
        // Test hook: 64 MiB, held until the recording ends, more than the pools hold after a step.
        #[cfg(test_hooks)]
        let hog = (self.fail_recordings > 0).then(|| {
            self.fail_recordings -= 1;
            Tensor::<1>::zeros([16 << 20], &self.device)
        });
        let stopped = Dispatch::graph_stop_capture(dispatch);
        #[cfg(test_hooks)]
        drop(hog);
        match stopped {
            Ok(graph) => Mode::Replay { graph, frame },
            // A failed recording leaves the buffers it would have written (x and k among them)
            // carrying the failure; the caller goes on from copies.
            Err(e) => Mode::Failed(format!("{e:?}")),
        }
    }

    /// Whether recording this run's step failed, after which its steps run eagerly.
    pub fn recording_failed(&self) -> bool {
        matches!(self.mode, Mode::Failed(_))
    }

    /// Test hook: makes this run's next `n` recordings fail (each asks for a buffer larger than
    /// the pools hold), as a recording that finds no room does.
    #[cfg(test_hooks)]
    pub fn fail_recordings(&mut self, n: usize) {
        self.fail_recordings = n;
    }

    /// Settles on eager steps for `why` and runs this one eagerly.
    fn eager(&mut self, why: String) -> Tensor<1> {
        self.mode = Mode::Eager(why);
        self.record()
    }

    /// The step itself, as recorded: writes k - 1 into k's buffer, reads row k - 1 of the
    /// tables, runs the networks and the update, writes x_{t-1} (and the solver's x0) into x's
    /// buffer, and returns the frame. Both writes are in place (nothing else holds x's or k's
    /// buffer by then), in the order the module doc gives.
    fn record(&mut self) -> Tensor<1> {
        let b = self.settings.classes.len();
        let g = &self.tables.guidance;
        self.k.inplace(|k| k - 1);
        let (next, frame) = {
            let k = self.k.clone();
            let row = |table: &Tensor<2>| table.clone().select(0, k.clone());
            let coefs = StepCoefs::from_row(row(&self.tables.coefs));
            let z = row(&self.noise).reshape([b, 1, SIDE, SIDE]);
            let unflat = |table: &Tensor<2>, rows: usize| {
                let e = table.dims()[1] / rows;
                row(table).reshape([rows, e])
            };
            let emb_unet = unflat(&self.tables.emb_unet, self.tables.labels.dims()[0]);
            let emb_classifier = unflat(&self.tables.emb_classifier, b);
            let (x, x0_last) = match self.settings.method.multistep() {
                true => (
                    self.x.clone().narrow(0, 0, b),
                    Some(self.x.clone().narrow(0, b, b)),
                ),
                false => (self.x.clone(), None),
            };
            let eps = guided_eps(&self.unet, g, x.clone(), emb_unet, self.tables.mix.as_ref());
            let class = classifier_term(
                &self.classifier,
                g,
                g.uses_classifier(),
                x.clone(),
                emb_classifier,
                self.tables.onehot.clone(),
                (&eps, &coefs),
                self.tables.emb_classifier_x0.clone(),
            );
            let (next, x0, push) = update(
                self.settings.method,
                &coefs,
                x,
                eps,
                class.grad,
                Some(z),
                x0_last,
            );
            let frame = pack_frame(next.clone(), x0.clone(), class.log_probs, push);
            let next = match self.settings.method.multistep() {
                true => Tensor::cat(vec![next, x0], 0),
                false => next,
            };
            (next, frame)
        };
        let rows = next.dims()[0];
        self.x
            .inplace(|x| x.slice_assign([0..rows, 0..1, 0..SIDE, 0..SIDE], next));
        frame
    }
}

fn gpu_err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Setting(format!(
        "the GPU failed while {what} ({e:?}); reload the page to start again"
    ))
}
