//! The browser boundary (wasm only): one exported type, [`Demo`], with plain values across it and
//! every error turned into a `JsError` with a sentence a person can act on. Everything it calls
//! is the same library the native tests exercise.
//!
//! The site runs it in a worker (www/worker.js), which fetches the files and drives the steps
//! while the page (www/main.js) only draws; this side picks the device, checks and decodes the
//! weights, and runs one reverse step per call.

use std::cell::{Cell, RefCell};

use burn::module::Module;
use burn::tensor::Device;
use wasm_bindgen::prelude::*;

use crate::frame::{Frame, FrameData};
use crate::grid::{push_scale, signed_rgba, to_bytes};
use crate::nn::{Classifier, UNet};
use crate::replay::ReplayRun;
use crate::sampler::Sampler;
use crate::settings::{Method, SampleSettings, Steer};
use crate::weights::{self, Manifest};
use crate::Error;

fn js(e: Error) -> JsError {
    JsError::new(&e.to_string())
}

/// How many kernel launches cubecl records before it submits them to the GPU queue (its default
/// is 32). Chosen on SwiftShader with `tests/page/host.mjs` (2026-11-25, the default of that day,
/// 1,148 launches a step): the page's main thread time per guided step fell as the batch grew
/// from 32 to 1024, where a step went out in 8 submits instead of 43. Readbacks still submit
/// whatever is recorded, so a frame never waits on this.
const TASKS_MAX: usize = 1024;

/// The WebGPU device with its adapter's name, initialised once per page.
pub async fn webgpu() -> Result<(Device, String), String> {
    let (device, setup) = Device::wgpu_options()
        .tasks_max(TASKS_MAX)
        .init_with_setup_async()
        .await
        .map_err(|e| format!("{e}"))?;
    let info = setup.adapter.get_info();
    let name = if info.name.is_empty() {
        "unnamed adapter".to_string()
    } else {
        info.name
    };
    Ok((device, name))
}

/// One decoded pair of networks, ready to sample.
struct Nets {
    unet: UNet,
    classifier: Classifier,
    /// The schedule the networks were trained with (the manifest's).
    schedule: crate::schedule::BetaSchedule,
}

/// A run in progress: on WebGPU one recorded step replayed at every t (`replay`, which cuts
/// the page's host work per step), on the CPU path the plain sampler (which needs no per-run
/// noise table in memory). One per run, so the size of its larger variant is no cost.
#[allow(clippy::large_enum_variant)]
enum Run {
    Eager(Sampler),
    Replay(ReplayRun),
}

/// Where a step was and what it drew.
struct StepDone {
    step: usize,
    total: usize,
    t: usize,
    data: FrameData,
}

impl Run {
    fn new(
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

    fn is_done(&self) -> bool {
        match self {
            Run::Eager(s) => s.is_done(),
            Run::Replay(r) => r.is_done(),
        }
    }

    fn settings(&self) -> &SampleSettings {
        match self {
            Run::Eager(s) => s.settings(),
            Run::Replay(r) => r.settings(),
        }
    }

    fn steer(&mut self, steer: &Steer) -> Result<(), Error> {
        match self {
            Run::Eager(s) => s.steer(steer),
            Run::Replay(r) => r.steer(steer),
        }
    }

    /// One step, read back, the last one finished as the settings ask
    /// ([`SampleSettings::finished`]); `None` once the run is done.
    async fn step(&mut self) -> Result<Option<StepDone>, Error> {
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

/// The demo's state: the device, the loaded networks, and the run in progress.
#[wasm_bindgen]
pub struct Demo {
    device: Device,
    backend: String,
    gpu: bool,
    nets: RefCell<Option<Nets>>,
    run: RefCell<Option<Run>>,
    /// Whether runs on WebGPU replay a recorded step (the default); `set_replay(false)` runs
    /// every step eagerly, which `make bench` uses to measure what the replay saves.
    replay: Cell<bool>,
    /// The token of the current run: bumped by every `start` and `cancel`, so a step that was
    /// awaiting when either happened, or a caller still holding an older token, knows its run is
    /// over.
    generation: Cell<u32>,
    /// The current run's push colour scale ([`push_scale`] of its steps).
    push_scale: Cell<f32>,
    /// Whether the current run can be steered (a comparison cannot).
    steerable: Cell<bool>,
    /// A steer of run `token` not yet applied: the run's next step applies it (a step awaiting
    /// its readback holds the run, so a steer that arrives meanwhile waits here).
    steer: RefCell<Option<(u32, Steer)>>,
}

/// What one step hands to the page.
#[wasm_bindgen]
pub struct StepFrame {
    step: usize,
    total: usize,
    t: usize,
    ms: f64,
    x_t: Vec<u8>,
    x0: Vec<u8>,
    p: Vec<f32>,
    probs: Vec<f32>,
    push: Vec<u8>,
    pushed: bool,
}

#[wasm_bindgen]
impl StepFrame {
    /// Steps done, 1..=total.
    #[wasm_bindgen(getter)]
    pub fn step(&self) -> usize {
        self.step
    }
    #[wasm_bindgen(getter)]
    pub fn total(&self) -> usize {
        self.total
    }
    /// The original timestep this step started from.
    #[wasm_bindgen(getter)]
    pub fn t(&self) -> usize {
        self.t
    }
    /// Milliseconds the step took, readback included.
    #[wasm_bindgen(getter)]
    pub fn ms(&self) -> f64 {
        self.ms
    }
    /// The samples after this step as grey bytes, `[B, 28, 28]`.
    #[wasm_bindgen(getter)]
    pub fn x_t(&self) -> Vec<u8> {
        self.x_t.clone()
    }
    /// The predicted clean images, `[B, 28, 28]` grey bytes.
    #[wasm_bindgen(getter)]
    pub fn x0(&self) -> Vec<u8> {
        self.x0.clone()
    }
    /// p(asked class | x_t) per sample.
    #[wasm_bindgen(getter)]
    pub fn p(&self) -> Vec<f32> {
        self.p.clone()
    }
    /// p(c | x_t) of every class c per sample, `[B, 10]`.
    #[wasm_bindgen(getter)]
    pub fn probs(&self) -> Vec<f32> {
        self.probs.clone()
    }
    /// The classifier's shift of each pixel this step as RGBA bytes, `[B, 28, 28, 4]`
    /// ([`signed_rgba`] at the run's [`push_scale`]: red brighter, blue darker, white unmoved); all white
    /// when no sample of the run uses the classifier.
    #[wasm_bindgen(getter)]
    pub fn push(&self) -> Vec<u8> {
        self.push.clone()
    }
    /// Whether any sample of the run uses the classifier (else `push` is blank by definition).
    #[wasm_bindgen(getter)]
    pub fn pushed(&self) -> bool {
        self.pushed
    }
}

#[wasm_bindgen]
impl Demo {
    /// Picks the device: WebGPU when `prefer_gpu` and it initialises, otherwise burn's flex CPU
    /// backend in WebAssembly, with the reason in `backend`.
    pub async fn create(prefer_gpu: bool) -> Demo {
        crate::ctors::init();
        console_error_panic_hook::set_once();
        let (device, backend, gpu) = if prefer_gpu {
            match webgpu().await {
                Ok((device, name)) => (device, format!("WebGPU ({name})"), true),
                Err(why) => (
                    Device::flex(),
                    format!("CPU fallback (WebGPU unavailable: {why})"),
                    false,
                ),
            }
        } else {
            (
                Device::flex(),
                "CPU fallback (WebGPU not available in this browser)".to_string(),
                false,
            )
        };
        Demo {
            backend,
            ..Demo::blank(device, gpu)
        }
    }

    /// A Demo on `device` with no weights and no run.
    fn blank(device: Device, gpu: bool) -> Demo {
        Demo {
            device,
            backend: String::new(),
            gpu,
            nets: RefCell::new(None),
            run: RefCell::new(None),
            replay: Cell::new(true),
            generation: Cell::new(0),
            push_scale: Cell::new(push_scale(crate::settings::DEFAULT_STEPS)),
            steerable: Cell::new(false),
            steer: RefCell::new(None),
        }
    }

    fn replays(&self) -> bool {
        self.gpu && self.replay.get()
    }

    /// "WebGPU (adapter)" or "CPU fallback (reason)".
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn gpu(&self) -> bool {
        self.gpu
    }

    /// What the page starts from, as JSON, so that the page and the CLI share one default:
    /// `"guidance"`, the setting its sliders start at ([`STARTING`](crate::guidance::STARTING):
    /// `{"mode", "scale", "cfg_scale", "grad"}`, and `"interval": [lo, hi]` where the classifier
    /// acts at some steps only); `"start_scales"`, the s each form of the gradient starts from when
    /// it is picked (`{"xt", "norm", "x0"}`, [`Grad::start_scale`](crate::guidance::Grad::start_scale));
    /// `"run"`, the sampler, steps and finish (`{"method", "steps", "place"}`:
    /// [`DEFAULT_METHOD`](crate::settings::DEFAULT_METHOD),
    /// [`DEFAULT_STEPS`](crate::settings::DEFAULT_STEPS),
    /// [`DEFAULT_PLACE`](crate::settings::DEFAULT_PLACE)); and `"push_per_step"`, the push
    /// view's full-colour shift times a run's steps ([`push_scale`] of one step).
    pub fn starting() -> String {
        use crate::guidance::Grad;
        let scales: serde_json::Map<String, serde_json::Value> = [Grad::Xt, Grad::Norm, Grad::X0]
            .into_iter()
            .map(|g| (g.word().to_string(), g.start_scale().into()))
            .collect();
        serde_json::json!({
            "guidance": crate::guidance::STARTING,
            "start_scales": scales,
            "run": {
                "method": crate::settings::DEFAULT_METHOD,
                "steps": crate::settings::DEFAULT_STEPS,
                "place": crate::settings::DEFAULT_PLACE,
            },
            "push_per_step": push_scale(1),
        })
        .to_string()
    }

    /// How many steps a run of `settings_json` (a [`SampleSettings`] as JSON) takes: its steps,
    /// or an edit's share of them ([`SampleSettings::steps_run`]), so the page counts a run's
    /// steps as the sampler does.
    pub fn steps_run(settings_json: &str) -> Result<usize, JsError> {
        let settings: SampleSettings = serde_json::from_str(settings_json)
            .map_err(|e| JsError::new(&format!("the settings are not valid: {e}")))?;
        Ok(settings.steps_run())
    }

    /// The settings of a comparison (`preset` "scales" or "modes", the latter at classifier scale
    /// `scale`, classifier-free weight `cfg_scale`, the classifier's `interval`, "all" or
    /// "LO-HI", and the form of its gradient `grad`, "xt", "norm" or "x0") as JSON,
    /// `[{"mode", "scale", "cfg_scale", "interval", "grad", "label"}, ...]` in the
    /// order shown: the page and `sample --compare` share one definition
    /// ([`Compare::settings`](crate::guidance::Compare::settings)).
    pub fn compare_settings(
        preset: &str,
        scale: f64,
        cfg_scale: f64,
        interval: &str,
        grad: &str,
    ) -> Result<String, JsError> {
        use crate::guidance::{parse_interval, Compare, Grad, Guidance};
        let compare: Compare = serde_json::from_value(serde_json::Value::from(preset))
            .map_err(|_| JsError::new(&format!("there is no comparison named {preset:?}")))?;
        let at = Guidance {
            scale,
            cfg_scale,
            interval: parse_interval(interval).map_err(|e| JsError::new(&e))?,
            grad: Grad::from_word(grad).map_err(js)?,
            ..crate::guidance::DEFAULT
        };
        let list: Vec<serde_json::Value> = compare
            .settings(at)
            .into_iter()
            .map(|g| {
                let mut v = serde_json::to_value(g).expect("guidance serializes");
                v["label"] = g.label().into();
                v
            })
            .collect();
        Ok(serde_json::Value::from(list).to_string())
    }

    /// Checks the manifest's format version; returns it normalised as JSON for the page.
    pub fn check_manifest(manifest_json: &str) -> Result<String, JsError> {
        Ok(Manifest::parse(manifest_json).map_err(js)?.to_json())
    }

    /// The pad's drawing (28 x 28 bytes, light ink on black) as the digit "Edit drawing" starts
    /// from: its ink scaled into a 20 x 20 box and centred by mass, as MNIST's digits were and as
    /// `sample --init` prepares any image ([`Fit::drawing`](crate::digit::Fit::drawing)); 28 x 28
    /// bytes.
    pub fn prepare_drawing(ink: &[u8]) -> Result<Vec<u8>, JsError> {
        let fit = crate::digit::Fit::drawing(ink).map_err(js)?;
        Ok(fit.image(ink))
    }

    /// Checks one downloaded file (`"unet"` or `"classifier"`) against the manifest: size, then
    /// sha256.
    pub fn check_file(manifest_json: &str, which: &str, bytes: &[u8]) -> Result<(), JsError> {
        let m = Manifest::parse(manifest_json).map_err(js)?;
        match which {
            "unet" => m.unet.verify(bytes),
            "classifier" => m.classifier.verify(bytes),
            other => Err(Error::Setting(format!("unknown weight file {other:?}"))),
        }
        .map_err(js)
    }

    /// Decodes both networks (checking hashes, format and shapes) onto the device.
    pub fn load(&self, manifest_json: &str, unet: &[u8], classifier: &[u8]) -> Result<(), JsError> {
        let m = Manifest::parse(manifest_json).map_err(js)?;
        let unet = weights::unet_from_bytes(&m, unet, &self.device).map_err(js)?;
        let ad = self.device.clone().autodiff();
        let classifier = weights::classifier_from_bytes(&m, classifier, &ad)
            .map_err(js)?
            .freeze();
        *self.nets.borrow_mut() = Some(Nets {
            unet,
            classifier,
            schedule: m.schedule.kind,
        });
        Ok(())
    }

    /// Starts a run and returns its token, which [`step`](Self::step) takes. `settings_json` is a
    /// [`SampleSettings`] as JSON; a bad setting is rejected with a sentence and leaves the run in
    /// progress alone. A good one replaces the run in progress, whose token then steps nothing.
    pub fn start(&self, settings_json: &str) -> Result<u32, JsError> {
        let settings: SampleSettings = serde_json::from_str(settings_json)
            .map_err(|e| JsError::new(&format!("the settings are not valid: {e}")))?;
        let nets = self.nets.borrow();
        let nets = nets
            .as_ref()
            .ok_or_else(|| JsError::new("the weights are not loaded yet"))?;
        // An edit (SDEdit, inpainting) runs its steps eagerly: the recorded step has no place for
        // the kept pixels' replacement.
        let replay = self.replays() && settings.edit.is_none();
        let scale = push_scale(settings.steps);
        let steerable = settings.per_sample.is_empty();
        let run = Run::new(nets, settings, &self.device, replay).map_err(js)?;
        *self.run.borrow_mut() = Some(run);
        self.push_scale.set(scale);
        self.steerable.set(steerable);
        self.steer.borrow_mut().take();
        let token = self.generation.get().wrapping_add(1);
        self.generation.set(token);
        Ok(token)
    }

    /// One reverse step of run `token`, read back; `undefined` when that run is no longer the
    /// current one (done, cancelled or replaced, also while this step was awaiting the device), so
    /// a stale caller never steps another run or receives a frame from one that is over.
    pub async fn step(&self, token: u32) -> Result<Option<StepFrame>, JsError> {
        if token != self.generation.get() {
            return Ok(None);
        }
        let Some(mut run) = self.run.borrow_mut().take() else {
            return Ok(None);
        };
        if let Some((for_token, steer)) = self.steer.borrow_mut().take() {
            if for_token == token {
                // Checked by `steer` when it arrived, against this run.
                run.steer(&steer).map_err(js)?;
            }
        }
        let started = web_time::Instant::now();
        let done = run.step().await;
        let Some(StepDone {
            step,
            total,
            t,
            data,
        }) = done.map_err(js)?
        else {
            return Ok(None);
        };
        if token != self.generation.get() {
            return Ok(None); // cancelled or replaced during the readback: drop its frame
        }
        if !run.is_done() {
            *self.run.borrow_mut() = Some(run);
        }
        let pushed = !data.push.is_empty();
        let scale = self.push_scale.get();
        let push = match pushed {
            true => signed_rgba(&data.push, scale),
            false => signed_rgba(&vec![0.0; data.x_t.len()], scale),
        };
        Ok(Some(StepFrame {
            step,
            total,
            t,
            ms: started.elapsed().as_secs_f64() * 1e3,
            x_t: to_bytes(&data.x_t),
            x0: to_bytes(&data.x0),
            p: data.p,
            probs: data.probs,
            push,
            pushed,
        }))
    }

    /// Steers run `token` from its next step on: `steer_json` is a [`Steer`] as JSON (`{"class",
    /// "guidance"}`), every image asked for that class under that guidance from the x_t it has
    /// reached. Returns the guidance's label ([`Guidance::label`](crate::guidance::Guidance::label)),
    /// for the page's words on the run. A steer of a run that is over does nothing; an impossible
    /// one (a comparison, a bad setting) is refused with a sentence and the run goes on as it
    /// was. A later steer before the next step replaces an earlier one.
    pub fn steer(&self, token: u32, steer_json: &str) -> Result<String, JsError> {
        let steer: Steer = serde_json::from_str(steer_json)
            .map_err(|e| JsError::new(&format!("the steer is not valid: {e}")))?;
        let label = steer.guidance.label();
        if token != self.generation.get() {
            return Ok(label);
        }
        if !self.steerable.get() {
            return Err(JsError::new(crate::settings::NOT_STEERABLE));
        }
        steer.validate().map_err(js)?;
        *self.steer.borrow_mut() = Some((token, steer));
        Ok(label)
    }

    /// Stops the run in progress; its token steps nothing from now on.
    pub fn cancel(&self) {
        self.run.borrow_mut().take();
        self.generation.set(self.generation.get().wrapping_add(1));
    }

    /// Compiles the GPU programs with the first guided steps of a run on one sample at the
    /// default guidance (on WebGPU: the eager step and the recorded one), then times two more
    /// steps of the same run, each read back as the page reads a frame; returns their mean
    /// milliseconds. The page compares this number between WebGPU and the CPU path to pick the
    /// faster device.
    pub async fn warmup(&self) -> Result<f64, JsError> {
        const UNTIMED: usize = 2;
        const TIMED: usize = 2;
        let mut run = {
            let nets = self.nets.borrow();
            let nets = nets
                .as_ref()
                .ok_or_else(|| JsError::new("the weights are not loaded yet"))?;
            let settings = SampleSettings {
                classes: vec![7],
                guidance: crate::guidance::DEFAULT,
                steps: UNTIMED + TIMED,
                method: Method::Ddpm,
                seed: 0,
                schedule: nets.schedule,
                first_image: 0,
                per_sample: Vec::new(),
                same_noise: false,
                edit: None,
                place: false,
            };
            Run::new(nets, settings, &self.device, self.replays()).map_err(js)?
        };
        for _ in 0..UNTIMED {
            run.step().await.map_err(js)?;
        }
        let started = web_time::Instant::now();
        while run.step().await.map_err(js)?.is_some() {}
        Ok(started.elapsed().as_secs_f64() * 1e3 / TIMED as f64)
    }
}

/// Test hook for the wasm tests, which share one WebGPU device (a second init fails): a Demo on
/// `device`, as [`Demo::create`] makes one.
#[cfg(test_hooks)]
impl Demo {
    pub fn on_device(device: Device, gpu: bool) -> Demo {
        Demo {
            backend: format!("test device (gpu: {gpu})"),
            ..Demo::blank(device, gpu)
        }
    }
}

/// What the wasm tests, the page tests and `make bench` reach into (feature `test-hooks`); the
/// site's build has none of it.
#[cfg(test_hooks)]
#[wasm_bindgen]
impl Demo {
    /// Whether this module was built with the test hooks: the page installs its own hooks
    /// (`globalThis.guidedDdpm`) only then.
    pub fn test_hooks() -> bool {
        true
    }

    /// Whether later runs on WebGPU replay one recorded step (true, the default) or run every
    /// step eagerly; the CPU path always runs eagerly.
    pub fn set_replay(&self, replay: bool) {
        self.replay.set(replay);
    }

    /// Times a guided step phase by phase and a whole run on this page's device
    /// (`bench::BenchSettings` as JSON in, `bench::StepReport` as JSON out); `make bench` drives it.
    pub async fn bench(&self, settings_json: &str) -> Result<String, JsError> {
        let settings: crate::bench::BenchSettings = serde_json::from_str(settings_json)
            .map_err(|e| JsError::new(&format!("the benchmark settings are not valid: {e}")))?;
        let (unet, classifier) = {
            let nets = self.nets.borrow();
            let nets = nets
                .as_ref()
                .ok_or_else(|| JsError::new("the weights are not loaded yet"))?;
            (nets.unet.clone(), nets.classifier.clone())
        };
        let report = crate::bench::steps(&unet, &classifier, &settings, &self.device)
            .await
            .map_err(js)?;
        Ok(serde_json::to_string(&report).expect("the report serializes"))
    }

    /// GFLOP/s of `reps` products of two `n x n` matrices on this page's device, as JSON.
    pub async fn bench_matmul(&self, n: usize, reps: usize) -> Result<String, JsError> {
        let report = crate::bench::matmul(n, reps, &self.device)
            .await
            .map_err(js)?;
        Ok(serde_json::to_string(&report).expect("the report serializes"))
    }

    /// Bytes of WebAssembly linear memory: it only grows, so this is its peak so far.
    pub fn wasm_memory_bytes() -> f64 {
        wasm_bindgen::memory()
            .unchecked_into::<js_sys::WebAssembly::Memory>()
            .buffer()
            .unchecked_into::<js_sys::ArrayBuffer>()
            .byte_length() as f64
    }
}
