//! The forward and reverse process on tensors, checked against their definitions.

use burn::tensor::{Device, Tensor, TensorData};
use guided_ddpm::diffusion::{ancestral_sample, ddim_step, gaussian, p_mean, q_sample};
use guided_ddpm::schedule::{BetaSchedule, Schedule};
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
        let mut x = start.clone();
        for k in (0..s.len()).rev() {
            let eps = oracle_eps(&s, k, x.clone(), x0.clone());
            let step = p_mean(&s, k, x.clone(), eps);
            x = ancestral_sample(
                &s,
                k,
                step.mean,
                gaussian([2, 1, 28, 28], &mut rng, &device),
            );
        }
        let err = values(x - x0.clone())
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()));
        assert!(err < 1e-4, "ddpm {steps} steps: max error {err}");
        // DDIM (eta = 0) with the oracle.
        let mut x = start;
        for k in (0..s.len()).rev() {
            let eps = oracle_eps(&s, k, x.clone(), x0.clone());
            x = ddim_step(&s, k, x, eps).0;
        }
        let err = values(x - x0.clone())
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()));
        assert!(err < 1e-4, "ddim {steps} steps: max error {err}");
    }
}

#[test]
fn the_last_ancestral_step_adds_no_noise() {
    let device = Device::flex();
    let s = Schedule::respaced(BetaSchedule::Linear, 5).unwrap();
    let mean = Tensor::<4>::full([1, 1, 2, 2], 0.25, &device);
    let z = Tensor::<4>::ones([1, 1, 2, 2], &device);
    assert_eq!(
        values(ancestral_sample(&s, 0, mean.clone(), z.clone())),
        vec![0.25; 4]
    );
    let noisy = values(ancestral_sample(&s, 1, mean, z));
    let expected = 0.25 + s.posterior_variance[1].sqrt() as f32;
    assert!((noisy[0] - expected).abs() < 1e-6);
}
