//! The browser boundary (wasm only): [`Demo`], the sampler a page's worker drives, and
//! [`StepFrame`], what one step hands back; plain values across it and every error turned into a
//! `JsError` with a sentence a person can act on. The run itself is the library's
//! ([`crate::run`]), which the native tests drive too; `facts` holds the stateless calls (the
//! page's starting settings, checks of settings, weights and drawings), `hooks` what the tests
//! and `make bench` reach into (a build with the test hooks only).
//!
//! The site runs it in a worker (www/worker.js), which fetches the files and drives the steps
//! while the page (www/main.js) only draws; this side picks the device, checks and decodes the
//! weights, and runs one reverse step per call.

use std::cell::{Cell, RefCell};

use burn::module::Module;
use burn::tensor::Device;
use wasm_bindgen::prelude::*;

use crate::grid::{signed_rgba, to_bytes};
use crate::run::{Nets, Run, Runs, StepDone};
use crate::settings::{Method, SampleSettings, Steer};
use crate::weights::{self, Manifest};

mod facts;
#[cfg(test_hooks)]
mod hooks;

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

/// The demo's state: the device, the loaded networks, and the run in progress.
#[wasm_bindgen]
pub struct Demo {
    device: Device,
    backend: String,
    gpu: bool,
    nets: RefCell<Option<Nets>>,
    runs: RefCell<Runs>,
    /// Whether runs on WebGPU replay a recorded step (the default); `set_replay(false)` runs
    /// every step eagerly, which `make bench` uses to measure what the replay saves.
    replay: Cell<bool>,
}

/// What one step hands to the page (read-only properties of the same names in JS).
#[wasm_bindgen(getter_with_clone)]
pub struct StepFrame {
    /// Steps done, 1..=total.
    #[wasm_bindgen(readonly)]
    pub step: usize,
    #[wasm_bindgen(readonly)]
    pub total: usize,
    /// The original timestep this step started from.
    #[wasm_bindgen(readonly)]
    pub t: usize,
    /// Milliseconds the step took, readback included.
    #[wasm_bindgen(readonly)]
    pub ms: f64,
    /// The samples after this step as grey bytes, `[B, 28, 28]`.
    #[wasm_bindgen(readonly)]
    pub x_t: Vec<u8>,
    /// The predicted clean images, `[B, 28, 28]` grey bytes.
    #[wasm_bindgen(readonly)]
    pub x0: Vec<u8>,
    /// p(asked class | x_t) per sample.
    #[wasm_bindgen(readonly)]
    pub p: Vec<f32>,
    /// p(c | x_t) of every class c per sample, `[B, 10]`.
    #[wasm_bindgen(readonly)]
    pub probs: Vec<f32>,
    /// The classifier's shift of each pixel this step as RGBA bytes, `[B, 28, 28, 4]`
    /// ([`signed_rgba`] at the run's push scale: red brighter, blue darker, white unmoved); all
    /// white when no sample of the run uses the classifier.
    #[wasm_bindgen(readonly)]
    pub push: Vec<u8>,
    /// Whether any sample of the run uses the classifier (else `push` is blank by definition).
    #[wasm_bindgen(readonly)]
    pub pushed: bool,
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
            runs: RefCell::new(Runs::default()),
            replay: Cell::new(true),
        }
    }

    fn replays(&self) -> bool {
        self.gpu && self.replay.get()
    }

    /// The loaded networks, or the sentence that they are not loaded yet.
    fn nets(&self) -> Result<std::cell::Ref<'_, Nets>, JsError> {
        std::cell::Ref::filter_map(self.nets.borrow(), Option::as_ref)
            .map_err(|_| JsError::new("the weights are not loaded yet"))
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

    /// Decodes both networks (checking hashes, format and shapes) onto the device.
    pub fn load(&self, manifest_json: &str, unet: &[u8], classifier: &[u8]) -> Result<(), JsError> {
        let m = Manifest::parse(manifest_json)?;
        let unet = weights::unet_from_bytes(&m, unet, &self.device)?;
        let ad = self.device.clone().autodiff();
        let classifier = weights::classifier_from_bytes(&m, classifier, &ad)?.freeze();
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
        // An edit (SDEdit, inpainting) runs its steps eagerly: the recorded step has no place for
        // the kept pixels' replacement.
        let replay = self.replays() && settings.edit.is_none();
        let run = Run::new(&*self.nets()?, settings, &self.device, replay)?;
        Ok(self.runs.borrow_mut().start(run))
    }

    /// One reverse step of run `token`, read back; `undefined` when that run is no longer the
    /// current one (done, cancelled or replaced, also while this step was awaiting the device), so
    /// a stale caller never steps another run or receives a frame from one that is over
    /// ([`Runs::step`]).
    pub async fn step(&self, token: u32) -> Result<Option<StepFrame>, JsError> {
        let started = web_time::Instant::now();
        let Some(StepDone {
            step,
            total,
            t,
            data,
        }) = Runs::step(&self.runs, token).await?
        else {
            return Ok(None);
        };
        let pushed = !data.push.is_empty();
        let scale = self.runs.borrow().push_scale();
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
    /// was ([`Runs::steer`]). A later steer before the next step replaces an earlier one.
    pub fn steer(&self, token: u32, steer_json: &str) -> Result<String, JsError> {
        let steer: Steer = serde_json::from_str(steer_json)
            .map_err(|e| JsError::new(&format!("the steer is not valid: {e}")))?;
        let label = steer.guidance.label();
        self.runs.borrow_mut().steer(token, steer)?;
        Ok(label)
    }

    /// Stops the run in progress; its token steps nothing from now on.
    pub fn cancel(&self) {
        self.runs.borrow_mut().cancel();
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
            let nets = self.nets()?;
            let settings = SampleSettings::new(
                vec![7],
                crate::guidance::DEFAULT,
                UNTIMED + TIMED,
                Method::Ddpm,
                0,
                nets.schedule,
            );
            Run::new(&nets, settings, &self.device, self.replays())?
        };
        for _ in 0..UNTIMED {
            run.step().await?;
        }
        let started = web_time::Instant::now();
        while run.step().await?.is_some() {}
        Ok(started.elapsed().as_secs_f64() * 1e3 / TIMED as f64)
    }
}
