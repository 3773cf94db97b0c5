//! Runs of the sampler on the shared small networks, for the tests of its subjects (sampler.rs,
//! replay.rs, push.rs, edit.rs, steer.rs).

use std::ops::ControlFlow;

use burn::tensor::{Device, Tensor};
use guided_ddpm::bench::native::block_on;
use guided_ddpm::frame::Frame;
use guided_ddpm::guidance::{Guidance, Mode};
use guided_ddpm::nn::{label_tensor, t_tensor, Classifier, UNet};
use guided_ddpm::sampler::Sampler;
use guided_ddpm::schedule::BetaSchedule;
use guided_ddpm::settings::{Method, SampleSettings};

/// p(asked class | x_t) of each sample of a frame, read from the device.
pub fn p_of(f: &Frame) -> Vec<f32> {
    f.log_p_target
        .clone()
        .exp()
        .try_into_vec_as::<f32>()
        .unwrap()
}

pub fn settings(mode: Mode, scale: f64, method: Method, seed: u64) -> SampleSettings {
    SampleSettings {
        classes: vec![1, 7],
        guidance: Guidance {
            cfg_scale: 1.5,
            ..Guidance::new(mode, scale, 0.0)
        },
        steps: 6,
        method,
        seed,
        schedule: BetaSchedule::Linear,
        first_image: 0,
        per_sample: Vec::new(),
        same_noise: false,
        edit: None,
        place: false,
    }
}

/// A run of `s` on the shared networks.
pub fn start(nets: &(UNet, Classifier, Device), s: SampleSettings) -> Sampler {
    let (unet, classifier, device) = nets.clone();
    Sampler::new(unet, classifier, s, &device).unwrap()
}

/// Every frame's x_t, as numbers. (Tests run in parallel and share burn's init RNG, so each test
/// builds its networks once and reuses them.)
pub fn frames(nets: &(UNet, Classifier, Device), s: SampleSettings) -> Vec<Vec<f32>> {
    let (unet, classifier, device) = nets.clone();
    let mut out = Vec::new();
    let done = Sampler::new(unet, classifier, s, &device)
        .unwrap()
        .run(|f| {
            out.push(f.x_t.clone().try_into_vec_as::<f32>().unwrap());
            ControlFlow::Continue(())
        });
    assert!(done.is_some());
    out
}

/// Every frame's x_t from the table-driven run (src/replay.rs) of `s`; on flex it records
/// nothing, so every step runs eagerly through the code a WebGPU recording captures.
pub fn table_driven_frames(
    nets: &(UNet, Classifier, Device),
    s: SampleSettings,
) -> (Vec<Vec<f32>>, guided_ddpm::replay::ReplayRun) {
    let (unet, classifier, device) = nets.clone();
    let mut run = guided_ddpm::replay::ReplayRun::new(unet, classifier, s, &device).unwrap();
    let mut got = Vec::new();
    while let Some(out) = run.step().unwrap() {
        got.push(block_on(out.read()).unwrap().x_t);
    }
    (got, run)
}

/// The settings a comparison runs: every mode, two of them at two scales, on one class, and the
/// classifier-free modes at w = 0 (run alone, the conditional branch by itself; batched, both
/// branches mixed with factors 1 and 0).
pub fn compare_settings(method: Method) -> SampleSettings {
    let g = Guidance::new;
    let per_sample = vec![
        g(Mode::None, 0.0, 0.0),
        g(Mode::Classifier, 2.0, 0.0),
        g(Mode::Free, 0.0, 1.5),
        g(Mode::Both, 2.0, 1.5),
        g(Mode::Classifier, 0.5, 0.0),
        g(Mode::Free, 0.0, 0.0),
        g(Mode::Both, 2.0, 0.0),
    ];
    SampleSettings {
        classes: vec![7; per_sample.len()],
        per_sample,
        same_noise: true,
        ..settings(Mode::None, 0.0, method, 23)
    }
}

/// Unguided steps taken by hand with the null label from x at step `from` of `schedule` down to
/// step 0, checked frame by frame against `got` (x_t after each step of a run) to 1e-4: DDIM
/// (eta = 0, Song et al. 2021, Eq. 12) through the library's `ddim_step`, or DPM-Solver++(2M)
/// written out here in its paper's forms (Lu et al. 2022, Algorithm 2, in f64 coefficients
/// from abar alone): with D = x0 + (h / (2 h_last)) (x0 - x0_last) (D = x0 at the run's first
/// step and at the last two), the ODE form x_{t-1} = (sigma_{t-1} / sigma_t) x_t - alpha_{t-1}
/// (e^{-h} - 1) D, and the SDE form x_{t-1} = (sigma_{t-1} / sigma_t) e^{-h} x_t +
/// alpha_{t-1} (1 - e^{-2h}) D + sigma_{t-1} sqrt(1 - e^{-2h}) z, with z the run's next draw
/// from `noise` (none at the last step).
pub fn check_unguided_by_hand(
    method: Method,
    unet: &UNet,
    schedule: &guided_ddpm::schedule::Schedule,
    mut x: Tensor<4>,
    from: usize,
    got: &[Vec<f32>],
    mut noise: Option<guided_ddpm::noise::NoiseStreams>,
) {
    use guided_ddpm::diffusion::{ddim_step, StepCoefs};
    let device = x.device();
    let b = x.dims()[0];
    assert_eq!(got.len(), from + 1);
    let lambda = |abar: f64| 0.5 * (abar / (1.0 - abar)).ln();
    let mut x0_last: Option<Tensor<4>> = None;
    for (i, k) in (0..=from).rev().enumerate() {
        let t = schedule.timesteps[k];
        let eps = unet.forward(
            x.clone(),
            t_tensor(&vec![t; b], &device),
            label_tensor(&vec![guided_ddpm::nn::NULL_CLASS; b], &device),
        );
        x = match method {
            Method::Ddim => {
                ddim_step(
                    &StepCoefs::at(schedule, k, 0.0, Method::Ddim, false),
                    x,
                    eps,
                )
                .0
            }
            Method::DpmSolver | Method::DpmSde => {
                let (abar, prev) = (schedule.alphas_cumprod[k], schedule.alphas_cumprod_prev[k]);
                let (alpha, sigma) = (abar.sqrt(), (1.0 - abar).sqrt());
                let x0 = ((x.clone() - eps * sigma) / alpha).clamp(-1.0, 1.0);
                let h = lambda(prev) - lambda(abar);
                let d = match (&x0_last, k) {
                    (Some(last), 2..) => {
                        let h_last = lambda(abar) - lambda(schedule.alphas_cumprod[k + 1]);
                        x0.clone() + (x0.clone() - last.clone()) * (h / (2.0 * h_last))
                    }
                    _ => x0.clone(),
                };
                x0_last = Some(x0);
                // e^{-h} = 0 at the last step, where abar_{t-1} = 1 and h is infinite.
                let decay = if prev < 1.0 { (-h).exp() } else { 0.0 };
                let ratio = (1.0 - prev).sqrt() / sigma;
                if method == Method::DpmSolver {
                    x * ratio - d * (prev.sqrt() * (decay - 1.0))
                } else {
                    let mean = x * (ratio * decay) + d * (prev.sqrt() * (1.0 - decay * decay));
                    match k {
                        0 => mean,
                        _ => {
                            let z = noise.as_mut().expect("the run's noise").next(&device);
                            mean + z * ((1.0 - prev).sqrt() * (1.0 - decay * decay).sqrt())
                        }
                    }
                }
            }
            Method::Ddpm => unreachable!("DDPM draws noise"),
        };
        let want = x.clone().try_into_vec_as::<f32>().unwrap();
        let worst = want
            .iter()
            .zip(&got[i])
            .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(worst < 1e-4, "{method:?} step {}: off by {worst}", i + 1);
    }
}

/// An image for the edit tests: a bright bar across a dark ground, in [-1, 1].
pub fn bar_image() -> Vec<f32> {
    (0..28 * 28)
        .map(|i| {
            if (12..16).contains(&(i / 28)) {
                1.0
            } else {
                -1.0
            }
        })
        .collect()
}

pub fn edit_settings(strength: f64, mask: Option<Vec<f32>>) -> SampleSettings {
    SampleSettings {
        edit: Some(guided_ddpm::settings::Edit {
            image: bar_image(),
            strength,
            mask,
        }),
        steps: 10,
        ..settings(Mode::Classifier, 2.0, Method::Ddpm, 8)
    }
}

/// Each run of `cases` is refused by `Sampler::new` with an error that contains its sentence.
pub fn assert_refused<'a>(
    nets: &(UNet, Classifier, Device),
    cases: impl IntoIterator<Item = (SampleSettings, &'a str)>,
) {
    for (s, msg) in cases {
        let (unet, classifier, device) = nets.clone();
        let err = Sampler::new(unet, classifier, s, &device)
            .err()
            .expect("rejected")
            .to_string();
        assert!(err.contains(msg), "{err}");
    }
}
