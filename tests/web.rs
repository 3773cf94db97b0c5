//! Browser tests (wasm-bindgen-test in headless Chromium; `make test` runs them): the shipped
//! weights load on WebGPU, classifier-guided steps on WebGPU match the flex CPU backend, bad
//! files give errors, and the exported `Demo` runs, cancels and rejects bad settings. They reach
//! into the module's test hooks, so `make test-wasm` builds it with feature `test-hooks`.
#![cfg(all(target_family = "wasm", test_hooks))]

use std::cell::RefCell;

use burn::module::Module;
use burn::tensor::Device;
use guided_ddpm::ctors;
use guided_ddpm::frame::read;
use guided_ddpm::guidance::{Guidance, Mode};
use guided_ddpm::nn::{Classifier, UNet};
use guided_ddpm::replay::ReplayRun;
use guided_ddpm::sampler::Sampler;
use guided_ddpm::schedule::BetaSchedule;
use guided_ddpm::settings::{Method, SampleSettings, Steer};
use guided_ddpm::web::{webgpu, Demo};
use guided_ddpm::weights::{self, Manifest};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

// The test runner does not call the module's start function, so every test that touches burn
// calls `ctors::init()` first (through `gpu()` or directly); `Demo::create` does it itself.

/// Each call from JavaScript into the module must not re-run the static constructors (wasm-ld
/// wraps every export with them unless the module runs them itself; that cost 92% of the page's
/// CPU on WebGPU). The exports are called through the module's own export object, as the page's
/// glue does. Checked by hand: with the explicit `__wasm_call_ctors` call taken out of
/// `ctors::init`, the count rose by one per call and this test failed.
#[wasm_bindgen_test]
fn static_constructors_run_once_however_many_exports_are_called() {
    ctors::init();
    let exports = wasm_bindgen::exports();
    let f: js_sys::Function = js_sys::Reflect::get(&exports, &"constructor_runs".into())
        .unwrap()
        .into();
    let runs: Vec<f64> = (0..5)
        .map(|_| f.call0(&JsValue::NULL).unwrap().as_f64().unwrap())
        .collect();
    assert_eq!(
        runs,
        vec![1.0; 5],
        "constructor runs after each export call"
    );
}

const MANIFEST: &str = include_str!("../weights/manifest.json");
// The files the shipped manifest names (build.rs reads them out of it).
const UNET: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/weights/",
    env!("GUIDED_DDPM_UNET_FILE")
));
const CLASSIFIER: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/weights/",
    env!("GUIDED_DDPM_CLASSIFIER_FILE")
));

thread_local! {
    static GPU: RefCell<Option<Device>> = const { RefCell::new(None) };
}

/// The WebGPU device, initialised once for all tests (a second init is an error).
async fn gpu() -> Device {
    ctors::init();
    if let Some(d) = GPU.with(|g| g.borrow().clone()) {
        return d;
    }
    let (device, name) = webgpu()
        .await
        .expect("headless Chromium exposes a WebGPU adapter");
    web_sys::console::log_1(&format!("WebGPU adapter: {name}").into());
    GPU.with(|g| *g.borrow_mut() = Some(device.clone()));
    device
}

fn settings(steps: usize) -> SampleSettings {
    SampleSettings::new(
        vec![3, 8],
        Guidance::new(Mode::Classifier, 4.0, 0.0),
        steps,
        Method::Ddpm,
        17,
        BetaSchedule::Linear,
    )
}

/// The shipped networks: the U-Net on `device`, the classifier frozen on its autodiff twin.
fn nets(device: &Device) -> (UNet, Classifier) {
    let m = Manifest::parse(MANIFEST).unwrap();
    let unet = weights::unet_from_bytes(&m, UNET, device).unwrap();
    let classifier = weights::classifier_from_bytes(&m, CLASSIFIER, &device.clone().autodiff())
        .unwrap()
        .freeze();
    (unet, classifier)
}

/// Logs the largest difference of a comparison and holds it to 1e-4.
fn within_1e4(what: &str, worst: f32) {
    web_sys::console::log_1(&format!("{what}: largest difference {worst:e}").into());
    assert!(worst < 1e-4, "{what}: the largest difference is {worst}");
}

#[wasm_bindgen_test]
async fn the_shipped_weights_load_on_webgpu() {
    let device = gpu().await;
    let m = Manifest::parse(MANIFEST).unwrap();
    let unet = weights::unet_from_bytes(&m, UNET, &device).unwrap();
    assert!(unet.num_params() > 1_000_000);
    weights::classifier_from_bytes(&m, CLASSIFIER, &device).unwrap();
}

/// The fused GroupNorm kernel (src/nn/fused.rs) against burn's own ops on the same WebGPU
/// device, for the four forms the networks use (plain, SiLU, scale/shift + SiLU, scale/shift
/// alone) at the U-Net's shapes (28x28 and 7x7, 8 groups of 4 and of 16 channels) with
/// non-trivial gamma, beta, scale and shift. Both are f32 sums in different orders; measured here
/// (SwiftShader): the log line. A kernel that dropped the shift, read the wrong channel's gamma or
/// normalised by the wrong count is off by far more than the bound (values are O(1)).
#[wasm_bindgen_test]
async fn the_fused_group_norm_kernel_matches_burns_ops_on_webgpu() {
    use burn::nn::GroupNormConfig;
    use burn::tensor::{Distribution, Tensor};
    use guided_ddpm::nn::fused::{composed, norm_act};
    let device = gpu().await;
    let mut worst = 0f32;
    for [b, c, side] in [[2, 32, 28], [3, 128, 7]] {
        let mut norm = GroupNormConfig::new(8, c).init(&device);
        norm.gamma = norm
            .gamma
            .map(|p| p.map(|_| Tensor::random([c], Distribution::Uniform(0.5, 1.5), &device)));
        norm.beta = norm
            .beta
            .map(|p| p.map(|_| Tensor::random([c], Distribution::Uniform(-0.5, 0.5), &device)));
        // Per-channel offsets, so each group's mean and spread differ.
        let x = Tensor::<4>::random([b, c, side, side], Distribution::Normal(0.0, 2.0), &device)
            + Tensor::<1>::random([c], Distribution::Uniform(-3.0, 3.0), &device)
                .reshape([1, c, 1, 1]);
        let ss = Tensor::<2>::random([b, 2 * c], Distribution::Uniform(-1.0, 1.0), &device);
        for (modulate, act) in [(false, false), (false, true), (true, true), (true, false)] {
            let ss = modulate.then(|| ss.clone());
            let fused = norm_act(&norm, x.clone(), ss.clone(), act);
            let plain = composed(&norm, x.clone(), ss, act);
            worst = worst.max(largest_difference(fused, plain).await);
        }
    }
    within_1e4("fused-vs-burn GroupNorm on WebGPU", worst);
}

/// The largest elementwise difference between two tensors of the same shape, read back.
async fn largest_difference<const D: usize>(
    a: burn::tensor::Tensor<D>,
    b: burn::tensor::Tensor<D>,
) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (read(a).await.unwrap(), read(b).await.unwrap());
    a.iter()
        .zip(&b)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
}

/// The fused attention kernel (src/nn/fused.rs) against burn's ops on the same WebGPU device:
/// the U-Net's shape (7x7 tokens, 4 heads of 32 channels, a batch of 2) and a larger map with
/// more tokens and channels than the kernel's workgroup has units (14x14, 2 heads of 96), so its
/// strided loops run more than once. A kernel that scaled by the wrong d, mixed up the heads or
/// read k where v belongs is off by O(1) on these scores.
#[wasm_bindgen_test]
async fn the_fused_attention_kernel_matches_burns_ops_on_webgpu() {
    use burn::tensor::{Distribution, Tensor};
    use guided_ddpm::nn::fused::{attention, composed_attention};
    let device = gpu().await;
    let mut worst = 0f32;
    for (b, n, c, heads) in [(2, 49, 128, 4), (1, 196, 192, 2)] {
        let qkv = Tensor::<3>::random([b, n, 3 * c], Distribution::Normal(0.0, 1.5), &device);
        let (fused, plain) = (
            attention(qkv.clone(), heads),
            composed_attention(qkv, heads),
        );
        assert_eq!(fused.dims(), [b, n, c]);
        worst = worst.max(largest_difference(fused, plain).await);
    }
    within_1e4("fused-vs-burn attention on WebGPU", worst);
}

/// Three classifier-guided DDPM steps (U-Net forward, classifier forward and backward through
/// autodiff, the guided update) from the same seed on both backends, then three of the gradient
/// taken at the predicted x0, then three steps of the default (its guidance, sampler and steps).
/// f32 kernels that sum in different orders differ by rounding, which the steps carry along (the
/// U-Net's fused kernels on WebGPU against burn's ops on the CPU among them). Measured here
/// (SwiftShader, 2026-12-07): 4.1e-5 at most after three classifier steps at s = 4, on values
/// in about [-4, 4], held to 1e-4. The default's 8 steps are long ones (its first multiplies
/// eps by sqrt(1 / abar - 1), about 160, and moves t from 999 to 856) and its s = 16 multiplies
/// the gradient's rounding: 1.3e-3 after three steps, held to 5e-3 (2.1e-4 with the paper's
/// gradient at s = 0.75, the default until 2026-12-07); a wrong kernel or coefficient is off by
/// far more (the replay test's note).
#[wasm_bindgen_test]
async fn classifier_guided_steps_on_webgpu_match_the_cpu() {
    let gpu_device = gpu().await;
    let cpu_device = Device::flex();
    let default = SampleSettings {
        guidance: guided_ddpm::guidance::DEFAULT,
        method: guided_ddpm::settings::DEFAULT_METHOD,
        steps: guided_ddpm::settings::DEFAULT_STEPS,
        ..settings(100)
    };
    let start = |s: &SampleSettings, device: &Device| {
        let (unet, classifier) = nets(device);
        Sampler::new(unet, classifier, s.clone(), device).unwrap()
    };
    let pair = |s: SampleSettings| (start(&s, &gpu_device), start(&s, &cpu_device));
    let (on_gpu, on_cpu) = pair(settings(100));
    within_1e4(
        "WebGPU-vs-CPU after 3 classifier-guided DDPM steps",
        three_steps_apart(on_gpu, on_cpu).await,
    );
    // The default's form of the gradient (taken at the predicted x0) at the default's s, on
    // DDPM's steps. Its rounding grows with s, as the classifier's gradient is multiplied by it:
    // 7.0e-5, 1.8e-4 and 5.2e-4 after three steps at s = 1, 4 and 16 from t = 500, 6.9e-4 at
    // s = 16 from t = 999 (2026-12-07, SwiftShader), so it is held to 2e-3, not 1e-4.
    let x0 = SampleSettings {
        guidance: Guidance {
            mode: Mode::Classifier,
            ..guided_ddpm::guidance::DEFAULT
        },
        ..settings(100)
    };
    let (on_gpu, on_cpu) = pair(x0);
    let worst = three_steps_apart(on_gpu, on_cpu).await;
    web_sys::console::log_1(
        &format!("WebGPU-vs-CPU after 3 DDPM steps guided at x0: largest difference {worst:e}")
            .into(),
    );
    assert!(worst < 2e-3, "the steps guided at x0 differ by {worst}");
    let (on_gpu, on_cpu) = pair(default);
    let worst = three_steps_apart(on_gpu, on_cpu).await;
    web_sys::console::log_1(
        &format!("WebGPU-vs-CPU after 3 default steps: largest difference {worst:e}").into(),
    );
    assert!(worst < 5e-3, "the default's steps differ by {worst}");
}

/// The largest difference of x_t and log p over three steps of two samplers.
async fn three_steps_apart(mut on_gpu: Sampler, mut on_cpu: Sampler) -> f32 {
    let mut worst = 0f32;
    for _ in 0..3 {
        let (fg, fc) = (on_gpu.step().unwrap(), on_cpu.step().unwrap());
        let (g, c) = (read(fg.x_t).await.unwrap(), read(fc.x_t).await.unwrap());
        let (pg, pc) = (
            read(fg.log_p_target).await.unwrap(),
            read(fc.log_p_target).await.unwrap(),
        );
        assert_eq!(g.len(), 2 * 28 * 28);
        for (a, b) in g.iter().zip(&c).chain(pg.iter().zip(&pc)) {
            worst = worst.max((a - b).abs());
        }
    }
    worst
}

/// The recorded-and-replayed run on WebGPU (src/replay.rs) against the plain sampler on the
/// same device from the same seed, for DDPM under the default guidance and DDIM under
/// classifier-only guidance, over the first steps of a 100-step run and all of a 4-step one,
/// and for a comparison of the four modes (per-sample guidance, the same noise for each):
/// every frame (x_t, x0, p, the classifier's push) agrees to float rounding, and from the second step on the run
/// replays its recording. A replay that read a stale x_t or step index, or baked one step's
/// numbers into all, is off by far more than the bound (x0 at t = 999 multiplies eps by
/// sqrt(1 / abar) ~ 160). Measured here (SwiftShader): the log line. The plain sampler itself
/// is held to the CPU by `classifier_guided_steps_on_webgpu_match_the_cpu`.
#[wasm_bindgen_test]
async fn replayed_steps_on_webgpu_match_the_plain_sampler() {
    let device = gpu().await;
    let (unet, classifier) = nets(&device);
    let mut worst = 0f32;
    // A run dropped half-way, a larger batch on the same device in between (which grows its
    // memory pages), then the recording of a new run must still hold.
    // The default, and FULL_STEP, which runs every part of a step (both U-Net branches and the
    // classifier gradient).
    let default = guided_ddpm::guidance::DEFAULT;
    let both = guided_ddpm::guidance::FULL_STEP;
    let modes = guided_ddpm::guidance::Compare::Modes.settings(both);
    use guided_ddpm::guidance::{Grad, Guidance};
    let norm = Guidance {
        grad: Grad::Norm,
        scale: 0.05,
        ..both
    };
    let x0 = Guidance {
        grad: Grad::X0,
        ..both
    };
    // Live steering: after this many steps (0: never), every image is asked for an 8 under
    // `to`. Under FULL_STEP the recorded step is another (both U-Net branches), so the run
    // records again and replays on; under a new s, w or interval it is the same step, so the
    // run goes on replaying the recording it has, which reads the rewritten tables.
    let to = Steer {
        class: 8,
        guidance: both,
    };
    let same_step = Steer {
        class: 8,
        guidance: Guidance {
            scale: 2.0,
            interval: Some([200, 799]),
            ..default
        },
    };
    let new_w = Steer {
        class: 8,
        guidance: Guidance {
            scale: 1.0,
            cfg_scale: 2.5,
            ..both
        },
    };
    for (method, guidance, steps, run_steps, batch, compare, steer_after, to) in [
        (Method::Ddpm, default, 100, 5, 2, false, 0, &to),
        (Method::Ddim, settings(4).guidance, 4, 4, 2, false, 0, &to),
        (Method::Ddpm, both, 100, 2, 16, false, 0, &to),
        (Method::Ddpm, both, 25, 3, 1, false, 0, &to),
        (Method::Ddpm, both, 25, 4, modes.len(), true, 0, &to),
        // Whole short runs, the last steps included (no noise at k = 0; the solver's last two
        // steps at first order).
        (Method::Ddpm, default, 6, 6, 2, false, 0, &to),
        (Method::DpmSolver, default, 8, 8, 2, false, 0, &to),
        // The solver carries its last x0 from replay to replay.
        (Method::DpmSolver, default, 15, 6, 2, false, 0, &to),
        (Method::DpmSolver, both, 15, 5, 3, false, 0, &to),
        (Method::DpmSde, both, 15, 5, 2, false, 0, &to),
        // The other forms of the classifier's gradient: normalised by the model's eps, and
        // taken at the predicted x0 (with the classifier's embedding of t = 0).
        (Method::DpmSolver, norm, 8, 8, 2, false, 0, &to),
        (Method::Ddpm, x0, 25, 4, 2, false, 0, &to),
        // Steered after the first replay, to the end of the run: to another step, then to the
        // same step with new tables (a new digit, s and interval; a new digit, s and w).
        (Method::DpmSolver, default, 8, 8, 2, false, 3, &to),
        (Method::Ddpm, default, 10, 10, 1, false, 2, &to),
        (Method::DpmSolver, default, 8, 8, 2, false, 3, &same_step),
        (Method::Ddpm, both, 10, 6, 2, false, 3, &new_w),
    ] {
        let mut s = settings(steps);
        s.classes = (0..batch).map(|i| i % 10).collect();
        s.method = method;
        s.guidance = guidance;
        if compare {
            s.per_sample = modes.clone();
            s.same_noise = true;
        }
        let mut replayed =
            ReplayRun::new(unet.clone(), classifier.clone(), s.clone(), &device).unwrap();
        let mut plain = Sampler::new(unet.clone(), classifier.clone(), s, &device).unwrap();
        for step in 1..=run_steps {
            if step == steer_after + 1 && steer_after > 0 {
                replayed.steer(to).unwrap();
                plain.steer(to).unwrap();
                // Held by the test, not by the crate's rule: only a new mode, form of the
                // gradient or U-Net branch records again.
                let keeps = to.guidance.mode == guidance.mode
                    && (to.guidance.cfg_scale == 0.0) == (guidance.cfg_scale == 0.0);
                assert_eq!(
                    replayed.is_replaying(),
                    keeps,
                    "{method:?} steered to {}: replaying right after the steer",
                    to.guidance.label()
                );
            }
            let out = replayed.step().unwrap().expect("a step left");
            assert_eq!(out.step, step);
            let g = out
                .read()
                .await
                .unwrap_or_else(|e| panic!("{method:?} batch {batch}, step {step}: {e}"));
            let f = plain.step().expect("the plain run has as many steps");
            let (x_t, x0, p) = (
                read(f.x_t).await.unwrap(),
                read(f.x0).await.unwrap(),
                read(f.log_p_target.exp()).await.unwrap(),
            );
            // A setting that takes no classifier gradient has no shift, from either.
            let push = match f.push {
                Some(push) => read(push).await.unwrap(),
                None => Vec::new(),
            };
            let push_len = if guidance.mode.uses_classifier() {
                x_t.len()
            } else {
                0
            };
            assert_eq!(
                (g.x_t.len(), g.x0.len(), g.p.len(), g.push.len(), push.len()),
                (x_t.len(), x0.len(), batch, push_len, push_len),
                "{method:?} batch {batch}"
            );
            let mut here = 0f32;
            for (a, b) in [(&g.x_t, &x_t), (&g.x0, &x0), (&g.p, &p), (&g.push, &push)] {
                for (a, b) in a.iter().zip(b.iter()) {
                    here = here.max((a - b).abs());
                }
            }
            if here >= 1e-4 {
                web_sys::console::log_1(
                    &format!("{method:?} batch {batch}, step {step}: replayed-plain {here:e}")
                        .into(),
                );
            }
            worst = worst.max(here);
            if step >= 2 {
                assert!(
                    replayed.is_replaying(),
                    "step {step} of {method:?} did not replay: {:?}",
                    replayed.eager_reason()
                );
            }
        }
        assert_eq!(replayed.is_done(), run_steps == steps);
    }
    within_1e4("replayed-vs-plain on WebGPU", worst);
}

/// A recording that fails (as one that finds no room in the memory pools does: seen in the page
/// when runs were cancelled and started again quickly, and for the classifier's step when it was
/// a Demo's first run after the warm-up) does not end the run: it goes on eagerly from copies of
/// x and k and gives the plain sampler's frames; the next step records once more (the eager step
/// grew the pools), and a later run on the same device records and replays again. Checked by
/// hand: with the copies left out (the run going on from the x the failed recording left), the
/// first frame after the failure read back as an error and this test failed.
#[wasm_bindgen_test]
async fn a_failed_recording_goes_on_eagerly_with_the_same_frames() {
    let device = gpu().await;
    let (unet, classifier) = nets(&device);
    let mut s = settings(100);
    s.guidance = guided_ddpm::guidance::DEFAULT;
    // Two failures: the first recording and its one retry; then every step runs eagerly. One
    // failure: the retry at step 2 records, and the steps after it replay.
    for (failures, replays_from) in [(2, None), (1, Some(2))] {
        let mut failing =
            ReplayRun::new(unet.clone(), classifier.clone(), s.clone(), &device).unwrap();
        failing.fail_recordings(failures);
        let mut plain = Sampler::new(unet.clone(), classifier.clone(), s.clone(), &device).unwrap();
        let mut worst = 0f32;
        for step in 1..=4 {
            let g = failing
                .step()
                .unwrap_or_else(|e| panic!("step {step}: {e}"))
                .expect("a step left")
                .read()
                .await
                .unwrap_or_else(|e| panic!("step {step}: {e}"));
            let f = plain.step().unwrap();
            let (x_t, x0) = (read(f.x_t).await.unwrap(), read(f.x0).await.unwrap());
            for (a, b) in g.x_t.iter().zip(&x_t).chain(g.x0.iter().zip(&x0)) {
                worst = worst.max((a - b).abs());
            }
            let replaying = replays_from.is_some_and(|from| step >= from);
            assert_eq!(
                failing.is_replaying(),
                replaying,
                "{failures} failure(s), step {step}: {:?}",
                failing.eager_reason()
            );
        }
        assert_eq!(
            failing.recording_failed(),
            replays_from.is_none(),
            "{failures} failure(s)"
        );
        assert!(
            worst < 1e-4,
            "{failures} failure(s): the run after a failed recording differs by {worst}"
        );
    }
    let mut next = ReplayRun::new(unet, classifier, s, &device).unwrap();
    for _ in 0..3 {
        next.step().unwrap().unwrap().read().await.unwrap();
    }
    assert!(next.is_replaying(), "{:?}", next.eager_reason());
}

#[wasm_bindgen_test]
fn a_corrupt_or_truncated_weight_file_gives_an_error() {
    ctors::init();
    let device = Device::flex();
    let m = Manifest::parse(MANIFEST).unwrap();
    let mut bad = UNET.to_vec();
    bad[UNET.len() / 2] ^= 0x55;
    let Err(err) = weights::unet_from_bytes(&m, &bad, &device) else {
        panic!("a corrupt file was accepted");
    };
    let err = err.to_string();
    assert!(err.contains("sha256"), "{err}");
    let Err(err) = weights::unet_from_bytes(&m, &UNET[..1000], &device) else {
        panic!("a cut-short file was accepted");
    };
    let err = err.to_string();
    assert!(err.contains("cut short"), "{err}");
    assert!(Demo::check_file(MANIFEST, "classifier", &CLASSIFIER[1..]).is_err());
    assert!(Demo::check_file(MANIFEST, "classifier", CLASSIFIER).is_ok());
    assert!(Demo::check_manifest(
        &MANIFEST.replace("\"format_version\": 1", "\"format_version\": 7")
    )
    .is_err());
}

#[wasm_bindgen_test]
async fn the_demo_runs_cancels_and_rejects_bad_settings_on_the_cpu_fallback() {
    let demo = Demo::create(false).await;
    assert!(!demo.gpu() && demo.backend().contains("CPU"));
    assert!(
        demo.start("{}").is_err(),
        "no weights yet, and not valid settings"
    );
    demo.load(MANIFEST, UNET, CLASSIFIER).unwrap();
    let mut s = settings(4);
    s.classes = vec![7];
    let run = demo.start(&serde_json::to_string(&s).unwrap()).unwrap();
    let mut steps = Vec::new();
    while let Some(f) = demo.step(run).await.unwrap() {
        assert_eq!(f.x_t.len(), 28 * 28);
        assert!(f.p[0] > 0.0 && f.p[0] <= 1.0);
        steps.push(f.step);
    }
    assert_eq!(steps, vec![1, 2, 3, 4]);
    // Cancel ends the run: the next step has nothing to do.
    let run = demo.start(&serde_json::to_string(&s).unwrap()).unwrap();
    assert!(demo.step(run).await.unwrap().is_some());
    demo.cancel();
    assert!(demo.step(run).await.unwrap().is_none());
    // A new run's token is new, and the old token never steps it.
    let next = demo.start(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_ne!(next, run);
    assert!(demo.step(run).await.unwrap().is_none());
    assert_eq!(demo.step(next).await.unwrap().unwrap().step, 1);
    // A step asked for before its run was replaced hands back no frame, and the new run starts
    // at its own step 1 (the page test "Cancel then Generate" covers a replacement that lands
    // while a step awaits the device).
    let pending = demo.step(next);
    let newest = demo.start(&serde_json::to_string(&s).unwrap()).unwrap();
    assert!(pending.await.unwrap().is_none());
    assert_eq!(demo.step(newest).await.unwrap().unwrap().step, 1);
    // An impossible setting is a sentence, not a panic.
    s.classes = vec![11];
    let Err(err) = demo.start(&serde_json::to_string(&s).unwrap()) else {
        panic!("class 11 was accepted");
    };
    let message = String::from(js_sys::Error::from(wasm_bindgen::JsValue::from(err)).message());
    assert!(
        message.contains("the class must be a digit from 0 to 9, got 11"),
        "{message}"
    );
}

/// A run with `place` set shows the same frames as one without it up to its last, whose
/// sample and predicted x0 are finished as MNIST's digits were (`digit::placed`): no faint haze
/// left, the same strokes, the centre of mass within half a pixel of MNIST's.
#[wasm_bindgen_test]
async fn a_placed_run_finishes_its_last_frame_only() {
    use guided_ddpm::digit::{mass_centre, HAZE_LEVEL, MASS_CENTRE};
    let demo = Demo::create(false).await;
    demo.load(MANIFEST, UNET, CLASSIFIER).unwrap();
    // The demo's sampler and steps on one digit, drawn by the conditional model alone (no
    // classifier gradient, so the run costs the suite little on the CPU path).
    let mut s = SampleSettings {
        classes: vec![2],
        guidance: Guidance::new(Mode::Free, 0.0, 0.0),
        steps: guided_ddpm::settings::DEFAULT_STEPS,
        method: guided_ddpm::settings::DEFAULT_METHOD,
        schedule: Manifest::parse(MANIFEST).unwrap().schedule.kind,
        ..settings(1)
    };
    let mut frames = Vec::new();
    for place in [false, true] {
        s.place = place;
        let run = demo.start(&serde_json::to_string(&s).unwrap()).unwrap();
        let mut xs = Vec::new();
        while let Some(f) = demo.step(run).await.unwrap() {
            xs.push((f.x_t.clone(), f.x0.clone()));
        }
        frames.push(xs);
    }
    let (drawn, placed) = (&frames[0], &frames[1]);
    let last = s.steps - 1;
    assert_eq!(drawn.len(), s.steps);
    assert_eq!(
        drawn[..last],
        placed[..last],
        "the steps before the last are the same"
    );
    let ink = |d: &[u8]| {
        let mut v: Vec<u8> = d.iter().copied().filter(|&b| b > HAZE_LEVEL).collect();
        v.sort();
        v
    };
    for (d, p) in [
        (&drawn[last].0, &placed[last].0),
        (&drawn[last].1, &placed[last].1),
    ] {
        assert!(!p.iter().any(|b| (1..=HAZE_LEVEL).contains(b)), "haze left");
        assert_eq!(ink(d), ink(p), "the same strokes");
        let grey: Vec<f32> = p.iter().map(|&b| f32::from(b) / 255.0).collect();
        let (r, c) = mass_centre(&grey, 0.0).unwrap();
        assert!(
            (r - MASS_CENTRE.0).abs() <= 0.5 && (c - MASS_CENTRE.1).abs() <= 0.5,
            "centre of mass ({r:.2}, {c:.2})"
        );
    }
}

/// A step that is awaiting the GPU's readback when its run is replaced hands back no frame (the
/// token check after the readback in web.rs), and the new run starts at its own step 1. Checked
/// by hand: without that check the replaced run's frame comes back.
#[wasm_bindgen_test]
async fn a_run_replaced_while_its_step_awaits_the_gpu_gets_no_frame() {
    let demo = Demo::on_device(gpu().await, true);
    demo.load(MANIFEST, UNET, CLASSIFIER).unwrap();
    let mut s = settings(4);
    s.classes = vec![7];
    let json = serde_json::to_string(&s).unwrap();
    let run = demo.start(&json).unwrap();
    assert_eq!(demo.step(run).await.unwrap().unwrap().step, 1);
    let mut pending = std::pin::pin!(demo.step(run));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(
        std::future::Future::poll(pending.as_mut(), &mut cx).is_pending(),
        "the step awaits the GPU's readback"
    );
    let newest = demo.start(&json).unwrap();
    assert!(
        pending.await.unwrap().is_none(),
        "the replaced run's frame is dropped"
    );
    assert_eq!(demo.step(newest).await.unwrap().unwrap().step, 1);
}
