//! The forward and reverse process on tensors, checked against their definitions.

use burn::tensor::{Device, Tensor, TensorData};
use guided_ddpm::diffusion::{
    ancestral_sample, ddim_step, dpm_solver_2m_step, p_mean, q_sample, StepCoefs,
};
use guided_ddpm::guidance::{condition_mean, guidance_shift};
use guided_ddpm::noise::{gaussian, NoiseStreams};
use guided_ddpm::schedule::{BetaSchedule, Schedule};
use guided_ddpm::settings::Method;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn values(x: Tensor<4>) -> Vec<f32> {
    x.try_into_vec_as::<f32>().unwrap()
}

#[test]
fn q_sample_has_the_forward_mean_and_variance() {
    // x_t = sqrt(abar) x0 + sqrt(1 - abar) eps: mean sqrt(abar) x0, variance 1 - abar.
    let device = Device::flex();
    let s = Schedule::new(BetaSchedule::Linear);
    let mut rng = StdRng::seed_from_u64(7);
    let n = 20_000;
    for t in [0usize, 250, 600, 999] {
        let x0 = Tensor::<4>::full([n, 1, 1, 1], 0.5, &device);
        let eps = gaussian([n, 1, 1, 1], &mut rng, &device);
        let x = values(q_sample(&s, x0, eps, &vec![t; n]));
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        let (m, v) = (0.5 * s.alphas_cumprod[t].sqrt(), 1.0 - s.alphas_cumprod[t]);
        let se = (v / n as f64).sqrt();
        assert!(
            (mean - m).abs() < 5.0 * se + 1e-6,
            "t {t}: mean {mean} vs {m}"
        );
        assert!((var - v).abs() < 0.05 * v + 1e-9, "t {t}: var {var} vs {v}");
    }
}

/// The eps that turns x0 into x_t at step k: what a perfect eps-model would predict.
fn oracle_eps(s: &Schedule, k: usize, x_t: Tensor<4>, x0: Tensor<4>) -> Tensor<4> {
    (x_t - x0 * s.sqrt_alphas_cumprod[k]) / s.sqrt_one_minus_alphas_cumprod[k]
}

#[test]
fn a_reverse_loop_fed_the_true_eps_returns_x0() {
    let device = Device::flex();
    let mut rng = StdRng::seed_from_u64(3);
    let x0_values: Vec<f32> = (0..2 * 28 * 28)
        .map(|i| ((i * 7919) % 200) as f32 / 100.0 - 1.0)
        .collect();
    let x0 = Tensor::<4>::from_data(TensorData::new(x0_values.clone(), [2, 1, 28, 28]), &device);
    for steps in [10, 100] {
        let s = Schedule::respaced(BetaSchedule::Linear, steps).unwrap();
        let start = gaussian([2, 1, 28, 28], &mut rng, &device);
        // DDPM (Algorithm 2) with the oracle.
        // At every step the mean is the posterior mean of q(x_{t-1} | x_t, x0) (DDPM Eq. 7),
        // computed here from abar alone: sqrt(abar_prev) beta / (1 - abar) x0 + sqrt(1 - beta)
        // (1 - abar_prev) / (1 - abar) x_t, with beta = 1 - abar / abar_prev (the last step,
        // k = 0, returns x0 whatever came before, so only this checks the others).
        let mut x = start.clone();
        for k in (0..s.len()).rev() {
            let eps = oracle_eps(&s, k, x.clone(), x0.clone());
            let c = StepCoefs::at(&s, k, 0.0, Method::Ddpm, false);
            let step = p_mean(&c, x.clone(), eps);
            let (abar, prev) = (s.alphas_cumprod[k], s.alphas_cumprod_prev[k]);
            let beta = 1.0 - abar / prev;
            let want = x0.clone() * (prev.sqrt() * beta / (1.0 - abar))
                + x.clone() * ((1.0 - beta).sqrt() * (1.0 - prev) / (1.0 - abar));
            let off = values(step.mean.clone() - want)
                .iter()
                .fold(0f32, |m, v| m.max(v.abs()));
            assert!(off < 1e-4, "ddpm {steps} steps, k = {k}: mean off by {off}");
            x = ancestral_sample(&c, step.mean, gaussian([2, 1, 28, 28], &mut rng, &device));
        }
        let err = values(x - x0.clone())
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()));
        assert!(err < 1e-4, "ddpm {steps} steps: max error {err}");
        // DDIM (eta = 0) with the oracle.
        // DDIM keeps the start's eps: x_k = sqrt(abar_k) x0 + sqrt(1 - abar_k) eps_T at every k.
        let mut x = start;
        let first = values(oracle_eps(&s, s.len() - 1, x.clone(), x0.clone()));
        for k in (0..s.len()).rev() {
            let eps = oracle_eps(&s, k, x.clone(), x0.clone());
            let drift = values(eps.clone())
                .iter()
                .zip(&first)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                drift < 1e-3,
                "ddim {steps} steps, k = {k}: eps drifted by {drift}"
            );
            x = ddim_step(&StepCoefs::at(&s, k, 0.0, Method::Ddim, false), x, eps).0;
        }
        let err = values(x - x0.clone())
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()));
        assert!(err < 1e-4, "ddim {steps} steps: max error {err}");
    }
}

/// Data x0 ~ N(MU, VAR) per pixel, where everything is closed form: x_t ~ N(alpha MU,
/// alpha^2 VAR + sigma^2), the exact eps is E[eps | x_t] = sigma (x_t - alpha MU) /
/// (alpha^2 VAR + sigma^2), and the probability-flow ODE keeps the standardized value
/// (x_t - alpha MU) / sqrt(alpha^2 VAR + sigma^2) of a point (alpha = sqrt(abar_t),
/// sigma = sqrt(1 - abar_t)). MU and VAR keep every x0 prediction inside [-1, 1], where the
/// steps' clipping does nothing.
const MU: f64 = 0.2;
const VAR: f64 = 0.04;

fn gaussian_data_spread(abar: f64) -> f64 {
    (abar * VAR + 1.0 - abar).sqrt()
}

/// The exact eps of the Gaussian data at step `k` of `s`.
fn gaussian_data_eps(s: &Schedule, k: usize, x: Tensor<4>) -> Tensor<4> {
    let (alpha, abar) = (s.sqrt_alphas_cumprod[k], s.alphas_cumprod[k]);
    (x - alpha * MU) * (s.sqrt_one_minus_alphas_cumprod[k] / gaussian_data_spread(abar).powi(2))
}

/// The largest error, against the exact ODE solution, of a deterministic solver run over `steps`
/// respaced steps, fed the exact eps, at the first of its steps' ends at or below timestep
/// `STOP`. Below it, uniformly spaced timesteps of the linear schedule are far apart in
/// lambda_t (it grows as -log t near t = 0), so the last steps' lengths shrink too slowly for
/// any order to show.
fn ode_error(method: Method, steps: usize) -> f64 {
    const STOP: usize = 250;
    let device = Device::flex();
    let s = Schedule::respaced(BetaSchedule::Linear, steps).unwrap();
    let last = s.len() - 1;
    // Standardized values from -2.5 to 2.5, as x_T.
    let z: Vec<f64> = (0..64).map(|i| -2.5 + 5.0 * i as f64 / 63.0).collect();
    let at = |k: usize, z: &[f64]| -> Vec<f32> {
        let (alpha, abar) = (s.sqrt_alphas_cumprod[k], s.alphas_cumprod[k]);
        z.iter()
            .map(|z| (alpha * MU + gaussian_data_spread(abar) * z) as f32)
            .collect()
    };
    let mut x = Tensor::<4>::from_data(TensorData::new(at(last, &z), [1, 1, 8, 8]), &device);
    let mut x0_last = x.zeros_like();
    let mut end = last;
    for k in (1..s.len()).rev().take_while(|&k| s.timesteps[k] > STOP) {
        end = k - 1;
        let c = StepCoefs::at(&s, k, 0.0, method, k == last);
        let eps = gaussian_data_eps(&s, k, x.clone());
        (x, x0_last) = match method {
            Method::DpmSolver => dpm_solver_2m_step(&c, x, eps, x0_last),
            _ => ddim_step(&c, x, eps),
        };
    }
    values(x)
        .iter()
        .zip(at(end, &z))
        .fold(0f64, |m, (a, b)| m.max((*a as f64 - b as f64).abs()))
}

/// DDIM is the ODE's first-order solver and DPM-Solver++(2M) a second-order one: on Gaussian
/// data, with the exact eps, doubling the steps halves DDIM's error and quarters the solver's.
#[test]
fn the_solvers_errors_fall_at_their_order() {
    let steps = [10, 20, 40, 80];
    for (method, order) in [(Method::Ddim, 1), (Method::DpmSolver, 2)] {
        let errors: Vec<f64> = steps.iter().map(|&n| ode_error(method, n)).collect();
        eprintln!("{method:?}: {errors:?}");
        for (w, n) in errors.windows(2).zip(&steps) {
            let ratio = w[0] / w[1];
            let want = 2f64.powi(order);
            assert!(
                (0.75 * want..1.35 * want).contains(&ratio),
                "{method:?}: {n} -> {} steps cut the error {ratio:.2}x, not about {want}x \
                 ({errors:?})",
                2 * n
            );
        }
    }
    assert!(ode_error(Method::DpmSolver, 20) < ode_error(Method::Ddim, 40));
}

#[test]
fn the_last_ancestral_step_adds_no_noise() {
    let device = Device::flex();
    let s = Schedule::respaced(BetaSchedule::Linear, 5).unwrap();
    let mean = Tensor::<4>::full([1, 1, 2, 2], 0.25, &device);
    let z = Tensor::<4>::ones([1, 1, 2, 2], &device);
    assert_eq!(
        values(ancestral_sample(
            &StepCoefs::at(&s, 0, 0.0, Method::Ddpm, false),
            mean.clone(),
            z.clone()
        )),
        vec![0.25; 4]
    );
    let noisy = values(ancestral_sample(
        &StepCoefs::at(&s, 1, 0.0, Method::Ddpm, false),
        mean,
        z,
    ));
    let expected = 0.25 + s.posterior_variance[1].sqrt() as f32;
    assert!((noisy[0] - expected).abs() < 1e-6);
}

/// The posterior mean's coefficients (DDPM Eq. 7), pinned against an independent float64
/// computation of the same formulas in plain Python:
/// coef1 = beta_t sqrt(abar_{t-1}) / (1 - abar_t), coef2 = (1 - abar_{t-1}) sqrt(alpha_t) / (1 - abar_t).
#[test]
fn posterior_mean_coefficients_are_pinned() {
    let s = Schedule::new(BetaSchedule::Linear);
    for (t, c1, c2) in [
        (1, 0.5452914995102903, 0.4547084989905303),
        (499, 0.0030700711142649766, 0.9941066702101666),
        (999, 0.00012835148717224682, 0.9899486782675173),
    ] {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 + 1e-9 * b.abs();
        assert!(
            close(s.posterior_mean_coef1[t], c1),
            "coef1[{t}] = {}",
            s.posterior_mean_coef1[t]
        );
        assert!(
            close(s.posterior_mean_coef2[t], c2),
            "coef2[{t}] = {}",
            s.posterior_mean_coef2[t]
        );
    }
}

/// One classifier-guided ancestral step at t = 499 on a 2x2 image, every intermediate pinned
/// against the same independent float64 computation: x0_hat from the true eps, the posterior mean
/// (Eq. 7), the guided mean mu + s Sigma_t g (Dhariwal & Nichol Alg. 1, s = 4) and
/// x_{t-1} = mean + sqrt(Sigma_t) z. Unlike the reverse loop above, whose last step returns x0
/// whatever came before, a wrong step fails here. Checked by hand: dropping the x_t term of the
/// posterior mean, or flipping the sign of the guidance shift in `condition_mean`, fails it.
#[test]
fn one_guided_reverse_step_matches_an_independent_float64_computation() {
    let device = Device::flex();
    let s = Schedule::new(BetaSchedule::Linear);
    let k = 499;
    // The inputs as the float64 reference has them, rounded to f32 here.
    let t4 = |v: [f64; 4]| {
        let v: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        Tensor::<4>::from_data(TensorData::new(v, [1, 1, 2, 2]), &device)
    };
    let x_t = t4([
        0.42813782325723804,
        -1.2219665079760056,
        0.25230074659865825,
        1.6394707825361956,
    ]);
    let eps = t4([0.3, -1.2, 0.0, 2.0]);
    let z = t4([1.0, -0.5, 0.25, 0.0]);
    let grad = t4([1.0, -1.0, 0.5, 0.0]);
    let c = StepCoefs::at(&s, k, 4.0, Method::Ddpm, false);
    let step = p_mean(&c, x_t, eps);
    let near = |got: Vec<f32>, want: [f64; 4], what: &str| {
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 2e-6, "{what}: {got:?} vs {want:?}");
        }
    };
    near(values(step.x0.clone()), [0.5, -0.25, 0.9, -1.0], "x0_hat");
    near(
        values(step.mean.clone()),
        [
            0.42714970142641423,
            -1.2155325741309382,
            0.2535769190955697,
            1.6267387694196487,
        ],
        "posterior mean",
    );
    let guided = condition_mean(step.mean.clone(), guidance_shift(&c.guide, grad));
    near(
        values(guided),
        [
            0.46727512308486896,
            -1.255657995789393,
            0.27363962992479707,
            1.6267387694196487,
        ],
        "guided mean",
    );
    near(
        values(ancestral_sample(&c, step.mean, z)),
        [
            0.5273063557965243,
            -1.2656109013159933,
            0.2786160826880972,
            1.6267387694196487,
        ],
        "x_{t-1}",
    );
}

/// Each image's noise comes from its own stream: image i of a batch is image 0 of a batch that
/// starts at i, step after step; streams of other seeds or indices differ; the draws are standard
/// normal. The first draws of (seed 0, image 0) are pinned, so that a seed keeps drawing the same
/// images across releases.
#[test]
fn noise_streams_are_per_image_and_pinned() {
    let mut whole = NoiseStreams::new(3, 0, 4);
    let mut part = NoiseStreams::new(3, 2, 2);
    let n = 28 * 28;
    for _ in 0..3 {
        let (w, p) = (whole.next_values(), part.next_values());
        assert_eq!(w.len(), 4 * n);
        assert_eq!(&w[2 * n..], &p[..]);
        assert_ne!(&w[..n], &w[n..2 * n]);
    }
    assert_ne!(
        NoiseStreams::new(3, 0, 1).next_values(),
        NoiseStreams::new(4, 0, 1).next_values()
    );
    let v = NoiseStreams::new(0, 0, 64).next_values();
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
    assert!(
        mean.abs() < 0.02 && (var - 1.0).abs() < 0.03,
        "mean {mean}, var {var}"
    );
    let first: Vec<f32> = v[..3].to_vec();
    assert_eq!(first, PINNED, "the noise of seed 0 changed");
    // Image 1 of seed 0 and image 0 of seed 1 are pinned too: a shared link names a seed and
    // draws images 0, 1, ... of it, so the seed and the image index must each key their own part
    // of the stream (seed and index swapped leaves image 0 of seed 0 as it was, and not these).
    let first_of =
        |seed: u64, image: usize| NoiseStreams::new(seed, image, 1).next_values()[..3].to_vec();
    assert_eq!(
        first_of(0, 1),
        PINNED_SEED0_IMAGE1,
        "image 1 of seed 0 changed"
    );
    assert_eq!(
        first_of(1, 0),
        PINNED_SEED1_IMAGE0,
        "image 0 of seed 1 changed"
    );
}

/// The first three draws of `NoiseStreams::new(0, 0, 1)`, as this code drew them on 2026-12-02.
const PINNED: [f32; 3] = [-0.4657974, 1.0211824, -2.7092338];
/// The first three draws of image 1 of seed 0 and of image 0 of seed 1, as this code drew them
/// on 2026-12-07.
const PINNED_SEED0_IMAGE1: [f32; 3] = [0.08851506, -0.4866799, -1.2254174];
const PINNED_SEED1_IMAGE0: [f32; 3] = [2.4630554, -0.6110885, -1.7116336];
