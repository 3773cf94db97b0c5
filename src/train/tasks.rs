//! What each network learns: the batch it draws and the loss it minimises.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor};
use rand::rngs::StdRng;
use rand::Rng;

use super::{fit, Drawn, RunState, TrainOptions};
use crate::data::Digits;
use crate::diffusion::q_sample;
use crate::nn::{
    label_tensor, one_hot, t_tensor, Classifier, ClassifierConfig, UNet, UNetConfig, NULL_CLASS,
    SIDE,
};
use crate::noise::gaussian_values;
use crate::schedule::{Schedule, T};
use crate::Error;

/// The three networks this crate trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Net {
    /// The class-conditional eps-model.
    Unet,
    /// The noise-aware classifier that guides sampling.
    Classifier,
    /// A clean-digit classifier that only judges samples (never guides).
    Judge,
}

impl Net {
    pub fn name(self) -> &'static str {
        match self {
            Net::Unet => "unet",
            Net::Classifier => "classifier",
            Net::Judge => "judge",
        }
    }
}

/// The default [`TrainOptions::p_uncond`]: the probability of replacing the label with the null
/// class (classifier-free guidance training, Ho & Salimans 2022, Sec. 3.2). 0.15 until step
/// 21,736 of the long run; a branch at 0.3 from there judged the unguided model closer to real
/// digits at step 22,900 (FD 1.122 against 1.225, 20 per class, same seeds) and the default
/// within noise (0.200 against 0.192): docs/EVAL.md, rows of `runs/p-uncond-0.3`. The long run
/// goes on at 0.3 from its step 22,900.
pub const P_UNCOND: f64 = 0.3;

/// Clean digits, shifted at random, with their labels, drawn on the host: `batch` rows of
/// `SIDE * SIDE` pixels.
fn draw(digits: &Digits, batch: usize, max_shift: u32, rng: &mut StdRng) -> Drawn {
    let m = max_shift as i32;
    let mut pixels = Vec::with_capacity(batch * SIDE * SIDE);
    let mut labels = Vec::with_capacity(batch);
    for _ in 0..batch {
        let i = rng.random_range(0..digits.len());
        let (dx, dy) = (rng.random_range(-m..=m), rng.random_range(-m..=m));
        let img: Vec<f32> = digits.image(i).collect();
        for r in 0..SIDE as i32 {
            for c in 0..SIDE as i32 {
                let (sr, sc) = (r - dy, c - dx);
                let inside = (0..SIDE as i32).contains(&sr) && (0..SIDE as i32).contains(&sc);
                pixels.push(if inside {
                    img[(sr * SIDE as i32 + sc) as usize]
                } else {
                    -1.0
                });
            }
        }
        labels.push(digits.labels[i] as usize);
    }
    Drawn {
        x0: pixels,
        labels,
        t: vec![0; batch],
        eps: Vec::new(),
    }
}

/// Draws t uniform over 0..T and eps ~ N(0, I) for each row of `batch`.
fn noise(mut batch: Drawn, rng: &mut StdRng) -> Drawn {
    batch.t = (0..batch.len()).map(|_| rng.random_range(0..T)).collect();
    batch.eps = gaussian_values(batch.x0.len(), rng);
    batch
}

/// Mean cross-entropy of logits against labels.
///
/// # Shapes
/// - logits: `[B, 10]`; output: `[1]`
pub fn cross_entropy(logits: Tensor<2>, labels: &[usize]) -> Tensor<1> {
    let b = labels.len();
    let onehot = one_hot(labels, &logits.device());
    (log_softmax(logits, 1) * onehot).sum().neg() / b as f64
}

/// L_simple = E ||eps - eps_theta(x_t, t, y)||^2 (DDPM Eq. 14), labels dropped to the null class
/// with probability `opts.p_uncond`.
pub fn train_unet(
    config: &UNetConfig,
    digits: &Digits,
    opts: &TrainOptions,
    device: &Device,
) -> Result<(UNet, RunState), Error> {
    let schedule = Schedule::new(crate::schedule::TRAINED);
    fit(
        Net::Unet.name(),
        config.init(device),
        opts,
        |rng| {
            let mut batch = draw(digits, opts.batch, opts.max_shift, rng);
            for y in batch.labels.iter_mut() {
                if rng.random_bool(opts.p_uncond) {
                    *y = NULL_CLASS;
                }
            }
            noise(batch, rng)
        },
        |model, part| {
            let (x0, eps) = (part.x0(device), part.eps(device));
            let x_t = q_sample(&schedule, x0, eps.clone(), &part.t);
            let pred = model.forward(
                x_t,
                t_tensor(&part.t, device),
                label_tensor(&part.labels, device),
            );
            (pred - eps).powi_scalar(2).mean()
        },
    )
}

/// Cross-entropy of p_phi(y | x_t, t) on x_t = q_sample(x0, t), t uniform over 0..T
/// (Dhariwal & Nichol 2021, Sec. 4).
pub fn train_classifier(
    config: &ClassifierConfig,
    digits: &Digits,
    opts: &TrainOptions,
    device: &Device,
) -> Result<(Classifier, RunState), Error> {
    let schedule = Schedule::new(crate::schedule::TRAINED);
    fit(
        Net::Classifier.name(),
        config.init(device),
        opts,
        |rng| noise(draw(digits, opts.batch, opts.max_shift, rng), rng),
        |model, part| {
            let x_t = q_sample(&schedule, part.x0(device), part.eps(device), &part.t);
            cross_entropy(model.forward(x_t, t_tensor(&part.t, device)), &part.labels)
        },
    )
}

/// Cross-entropy on clean (shifted) digits at t = 0: the judge never sees noise.
pub fn train_judge(
    config: &ClassifierConfig,
    digits: &Digits,
    opts: &TrainOptions,
    device: &Device,
) -> Result<(Classifier, RunState), Error> {
    fit(
        Net::Judge.name(),
        config.init(device),
        opts,
        |rng| draw(digits, opts.batch, opts.max_shift, rng),
        |model, part| {
            cross_entropy(
                model.forward(part.x0(device), t_tensor(&part.t, device)),
                &part.labels,
            )
        },
    )
}
