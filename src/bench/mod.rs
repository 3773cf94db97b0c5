//! Benchmarks: where the time of a guided step goes, on whichever device runs it.
//!
//! The same code times flex natively (`guided-ddpm bench`) and WebGPU or the flex fallback in the
//! browser (`Demo::bench`), so the numbers in docs/BENCHMARKS.md compare like with like. A step is
//! split into the sampler's own phases ([`Sampler::begin`] .. [`Sampler::finish`]); between phases
//! the device is drained by reading one number back ([`fence`]), which is what a timed phase means
//! on an asynchronous device. The whole-run figure has no fences: it steps and reads each frame
//! back exactly as the page does.

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::frame::read;
use crate::guidance::Guidance;
use crate::nn::{Classifier, UNet};
use crate::sampler::Sampler;
use crate::settings::SampleSettings;
use crate::Error;

/// What to measure.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchSettings {
    pub batch: usize,
    pub guidance: Guidance,
    /// Steps timed phase by phase, after one untimed warm-up step (shader compilation).
    pub phase_steps: usize,
    /// Length of the unfenced whole run, as the page runs it.
    pub run_steps: usize,
}

/// Milliseconds of each phase of one guided step, averaged over the timed steps.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PhaseMs {
    /// eps_theta: the U-Net forward (a batch of 2B when classifier-free guidance is on).
    pub unet: f64,
    /// log p_phi(y | x_t, t) forward and, when guiding, its backward to x_t.
    pub classifier: f64,
    /// Posterior mean, guidance shift, noise: the update itself.
    pub update: f64,
    /// Reading the frame (x_t, x0, p) back to the host in one transfer, as the page does.
    pub readback: f64,
    /// The same three arrays read back one by one (what the page did before; kept to show the
    /// difference).
    pub readback_three: f64,
}

/// One device at one batch size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepReport {
    pub settings: BenchSettings,
    pub phases: PhaseMs,
    /// Milliseconds per step over the whole unfenced run, frames read back each step.
    pub run_ms_per_step: f64,
    pub steps_per_s: f64,
    /// Model FLOPs per step (2 x multiply-accumulates, from the layer shapes).
    pub flops_per_step: u64,
    /// flops_per_step over the whole-run time per step.
    pub gflops: f64,
}

/// A large square matrix product: what the device reaches on the friendliest kernel there is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MatmulReport {
    pub n: usize,
    pub reps: usize,
    pub ms: f64,
    pub gflops: f64,
}

/// Waits until the device has computed `t` (and, queues being in order, all work before it) by
/// reading its first number back.
pub async fn fence<const D: usize>(t: &Tensor<D>) -> Result<(), Error> {
    let n = t.shape().num_elements();
    read(t.clone().reshape([n]).narrow(0, 0, 1)).await.map(drop)
}

/// Model FLOPs of one step: the U-Net forward on B (or 2B with classifier-free guidance), the
/// classifier forward, and its backward to the input when guiding. The classifier is frozen, so
/// its backward computes input gradients only, about as many products as its forward.
pub fn flops_per_step(
    unet: &UNet,
    classifier: &Classifier,
    guidance: Guidance,
    batch: usize,
) -> u64 {
    let unet_rows = if guidance.runs_both_branches() {
        2 * batch
    } else {
        batch
    };
    let classifier_passes = if guidance.mode.uses_classifier() {
        2
    } else {
        1
    };
    2 * (unet.macs_per_sample() * unet_rows as u64
        + classifier.macs_per_sample() * (classifier_passes * batch) as u64)
}

fn sampler(
    unet: &UNet,
    classifier: &Classifier,
    bench: &BenchSettings,
    steps: usize,
    device: &Device,
) -> Result<Sampler, Error> {
    let settings = SampleSettings {
        classes: (0..bench.batch)
            .map(|i| i % crate::nn::NUM_CLASSES)
            .collect(),
        guidance: bench.guidance,
        steps,
        method: crate::settings::DEFAULT_METHOD,
        seed: 0,
        schedule: crate::schedule::TRAINED,
        first_image: 0,
        per_sample: Vec::new(),
        same_noise: false,
        edit: None,
        place: false,
    };
    Sampler::new(unet.clone(), classifier.clone(), settings, device)
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Times one device at one batch size: the phases of `phase_steps` fenced steps (after a warm-up
/// step), then a whole unfenced run of `run_steps`. The classifier must be frozen on
/// `device.autodiff()`, as for [`Sampler::new`].
pub async fn steps(
    unet: &UNet,
    classifier: &Classifier,
    bench: &BenchSettings,
    device: &Device,
) -> Result<StepReport, Error> {
    if bench.phase_steps == 0 || bench.run_steps == 0 {
        return Err(Error::Setting(
            "a benchmark needs at least one phase step and one run step".into(),
        ));
    }
    let mut s = sampler(unet, classifier, bench, bench.phase_steps + 1, device)?;
    let mut sum = PhaseMs::default();
    for i in 0..=bench.phase_steps {
        let t0 = Instant::now();
        let at = s.begin().expect("the run has a step left");
        let eps = s.predict_eps(&at);
        fence(&eps).await?;
        let unet_ms = ms_since(t0);
        let t1 = Instant::now();
        let class = s.classifier_term(&at, &eps);
        match &class.grad {
            Some(grad) => fence(grad).await?,
            None => fence(&class.log_p).await?,
        }
        let classifier_ms = ms_since(t1);
        let t2 = Instant::now();
        let frame = s.finish(at, eps, class, t0);
        fence(&frame.x_t).await?;
        let update_ms = ms_since(t2);
        let (x_t, x0, p) = (
            frame.x_t.clone(),
            frame.x0.clone(),
            frame.log_p_target.clone().exp(),
        );
        fence(&p).await?;
        let t3 = Instant::now();
        frame.read().await?;
        let readback_ms = ms_since(t3);
        let t4 = Instant::now();
        read(x_t).await?;
        read(x0).await?;
        read(p).await?;
        let readback_three_ms = ms_since(t4);
        if i > 0 {
            sum.unet += unet_ms;
            sum.classifier += classifier_ms;
            sum.update += update_ms;
            sum.readback += readback_ms;
            sum.readback_three += readback_three_ms;
        }
    }
    let n = bench.phase_steps as f64;
    let phases = PhaseMs {
        unet: sum.unet / n,
        classifier: sum.classifier / n,
        update: sum.update / n,
        readback: sum.readback / n,
        readback_three: sum.readback_three / n,
    };

    let mut s = sampler(unet, classifier, bench, bench.run_steps, device)?;
    let t0 = Instant::now();
    while let Some(frame) = s.step() {
        frame.read().await?;
    }
    let run_ms_per_step = ms_since(t0) / bench.run_steps as f64;
    let flops = flops_per_step(unet, classifier, bench.guidance, bench.batch);
    Ok(StepReport {
        settings: bench.clone(),
        phases,
        run_ms_per_step,
        steps_per_s: 1e3 / run_ms_per_step,
        flops_per_step: flops,
        gflops: flops as f64 / (run_ms_per_step * 1e6),
    })
}

/// GFLOP/s of `reps` products of two `n x n` matrices (2 n^3 FLOPs each), after one untimed
/// product.
pub async fn matmul(n: usize, reps: usize, device: &Device) -> Result<MatmulReport, Error> {
    use burn::tensor::Distribution;
    let a = Tensor::<2>::random([n, n], Distribution::Uniform(-1.0, 1.0), device);
    let b = Tensor::<2>::random([n, n], Distribution::Uniform(-1.0, 1.0), device);
    fence(&a.clone().matmul(b.clone())).await?;
    let t0 = Instant::now();
    let mut last = None;
    for _ in 0..reps.max(1) {
        last = Some(a.clone().matmul(b.clone()));
    }
    fence(&last.expect("at least one product")).await?;
    let ms = ms_since(t0);
    let reps = reps.max(1);
    Ok(MatmulReport {
        n,
        reps,
        ms,
        gflops: 2.0 * (n as f64).powi(3) * reps as f64 / (ms * 1e6),
    })
}

#[cfg(all(feature = "cli", not(target_family = "wasm")))]
pub mod native;
