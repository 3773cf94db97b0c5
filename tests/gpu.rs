//! The recorded-and-replayed step (src/replay.rs) on a native GPU device through burn's wgpu
//! backend and the WGSL compiler the page's WebGPU uses: the same cubecl graph capture, reachable
//! without a browser. Built only with `--features wgpu` (`make test-gpu`; add `fusion` to check
//! burn's fusion too); any adapter serves, Mesa's software lavapipe included.
#![cfg(feature = "wgpu")]

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, DeviceKind};
use guided_ddpm::bench::native::block_on;
use guided_ddpm::frame::FrameData;
use guided_ddpm::guidance::{Guidance, Mode, DEFAULT, FULL_STEP};
use guided_ddpm::nn::{Classifier, UNet};
use guided_ddpm::replay::ReplayRun;
use guided_ddpm::sampler::Sampler;
use guided_ddpm::schedule::BetaSchedule;
use guided_ddpm::settings::{Method, SampleSettings};

fn nets(device: &Device) -> (UNet, Classifier) {
    let (_, unet, classifier) =
        guided_ddpm::weights::load_dir(Path::new("weights"), device).expect("weights load");
    (
        unet,
        classifier.to_device(&device.clone().autodiff()).freeze(),
    )
}

fn frame(f: guided_ddpm::frame::Frame) -> FrameData {
    block_on(f.into_out().read()).unwrap()
}

/// The largest difference of x_t and p, and of x0 too with `x0`.
fn largest_difference(a: &FrameData, b: &FrameData, x0: bool) -> f32 {
    let mut worst = 0f32;
    let mut parts = vec![(&a.x_t, &b.x_t), (&a.p, &b.p)];
    if x0 {
        parts.push((&a.x0, &b.x0));
    }
    for (a, b) in parts {
        assert_eq!(a.len(), b.len());
        for (a, b) in a.iter().zip(b.iter()) {
            worst = worst.max((a - b).abs());
        }
    }
    worst
}

/// Step by step, on the same seed: the replayed run's frames equal the plain sampler's on the
/// GPU device, and the GPU's plain sampler's x_t and p stay within 1e-4 of flex (CPU) over the
/// first three steps (x0 is left out there: at t = 999 it scales eps by ~160, so float rounding
/// in eps alone moves it by ~5e-4, while a replay that read a stale x_t or step index moves it
/// by far more). The runs are those of the wasm test
/// `replayed_steps_on_webgpu_match_the_plain_sampler` (a run dropped half-way, a larger batch
/// between, a new run after it) plus the guidance modes that burn's fusion got wrong here (DDIM
/// unguided, DDPM classifier-only: docs/BENCHMARKS.md).
#[test]
fn replayed_steps_on_a_native_gpu_match_the_plain_sampler_and_the_cpu() {
    let device = Device::wgpu(DeviceKind::DefaultDevice);
    let flex = Device::flex();
    let (unet, classifier) = nets(&device);
    let (cpu_unet, cpu_classifier) = nets(&flex);
    // FULL_STEP runs every part of a step (both U-Net branches and the classifier gradient);
    // the default is run too.
    let both = FULL_STEP;
    let with = |mode| Guidance { mode, ..both };
    let (mut replay_worst, mut cpu_worst) = (0f32, 0f32);
    for (method, guidance, steps, run_steps, batch) in [
        (Method::Ddpm, DEFAULT, 100, 5, 2),
        (Method::Ddim, with(Mode::Classifier), 4, 4, 2),
        (Method::Ddpm, both, 100, 2, 16),
        (Method::Ddpm, both, 25, 3, 1),
        (Method::Ddim, with(Mode::None), 4, 4, 2),
        (Method::Ddpm, with(Mode::Classifier), 100, 3, 2),
        (Method::DpmSolver, DEFAULT, 15, 6, 2),
        (Method::DpmSolver, both, 15, 5, 3),
        (Method::DpmSde, both, 15, 5, 2),
    ] {
        let s = SampleSettings::new(
            (0..batch).map(|i| i % 10).collect(),
            guidance,
            steps,
            method,
            3,
            BetaSchedule::Linear,
        );
        let what = format!("{method:?} {:?} batch {batch}", guidance.mode);
        let mut replayed =
            ReplayRun::new(unet.clone(), classifier.clone(), s.clone(), &device).unwrap();
        let mut plain = Sampler::new(unet.clone(), classifier.clone(), s.clone(), &device).unwrap();
        let mut cpu = Sampler::new(cpu_unet.clone(), cpu_classifier.clone(), s, &flex).unwrap();
        for step in 1..=run_steps {
            let out = replayed.step().unwrap().expect("a step left");
            assert_eq!(out.step, step);
            let got = block_on(out.read()).unwrap();
            let want = frame(plain.step().expect("as many steps"));
            let on_cpu = frame(cpu.step().expect("as many steps"));
            let r = largest_difference(&got, &want, true);
            let c = largest_difference(&want, &on_cpu, false);
            eprintln!("{what}, step {step}: replayed-plain {r:e}, GPU-CPU {c:e}");
            assert!(
                r < 1e-4,
                "{what}, step {step}: replayed and plain differ by {r}"
            );
            if step <= 3 {
                assert!(
                    c < 1e-4,
                    "{what}, step {step}: the GPU and the CPU differ by {c}"
                );
                cpu_worst = cpu_worst.max(c);
            }
            replay_worst = replay_worst.max(r);
            if step >= 2 {
                assert!(
                    replayed.is_replaying(),
                    "{what}, step {step} did not replay: {:?}",
                    replayed.eager_reason()
                );
            }
        }
    }
    eprintln!("largest differences: replayed-plain {replay_worst:e}, GPU-CPU {cpu_worst:e}");
}
