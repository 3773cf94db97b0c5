//! The classifier two-sample test (Lopez-Paz & Oquab 2017): a small network trained to tell
//! two sets of digits apart, scored on the folds it did not train on.

use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::{relu, softplus};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use guided_ddpm::nn::NUM_CLASSES;

use super::{rows, PIXELS};

/// Folds of the two-sample test's cross-validation.
pub const FOLDS: usize = 5;
/// Hidden units of the two-sample test's network.
pub const HIDDEN: usize = 128;
/// Passes over a fold's training part, its minibatch and Adam's learning rate.
const EPOCHS: usize = 40;
const BATCH: usize = 100;
const LR: f64 = 1e-3;

/// A classifier two-sample test's result (Lopez-Paz & Oquab 2017, "Revisiting Classifier
/// Two-Sample Tests"): the held-out accuracy of a network trained to tell set A from set B, per
/// fold. 0.5 means it cannot tell them apart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TwoSample {
    /// Accuracy on each held-out fold (of each repeat, in order).
    pub folds: Vec<f64>,
}

impl TwoSample {
    /// The mean accuracy over the folds.
    pub fn accuracy(&self) -> f64 {
        self.folds.iter().sum::<f64>() / self.folds.len().max(1) as f64
    }

    /// The sample standard deviation over the folds (0 with fewer than two).
    pub fn fold_sd(&self) -> f64 {
        sd(&self.folds)
    }
}

/// The sample standard deviation of `v` (0 with fewer than two values).
pub fn sd(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// One hidden layer of ReLUs on raw pixels, one logit out: "this digit is from set B".
#[derive(Module, Debug)]
struct Mlp {
    w1: Param<Tensor<2>>,
    b1: Param<Tensor<1>>,
    w2: Param<Tensor<2>>,
    b2: Param<Tensor<1>>,
}

impl Mlp {
    /// Weights uniform in +-1/sqrt(fan_in) from `rng` (as burn's Linear draws them), so a test is
    /// the same from one run to the next.
    fn new(rng: &mut StdRng, device: &Device) -> Self {
        let mut uniform = |rows: usize, cols: usize| {
            let bound = 1.0 / (rows as f32).sqrt();
            let v: Vec<f32> = (0..rows * cols)
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            v
        };
        let w1 = uniform(PIXELS, HIDDEN);
        let w2 = uniform(HIDDEN, 1);
        Mlp {
            w1: Param::from_tensor(Tensor::from_data(
                TensorData::new(w1, [PIXELS, HIDDEN]),
                device,
            )),
            b1: Param::from_tensor(Tensor::zeros([HIDDEN], device)),
            w2: Param::from_tensor(Tensor::from_data(TensorData::new(w2, [HIDDEN, 1]), device)),
            b2: Param::from_tensor(Tensor::zeros([1], device)),
        }
    }

    /// Logits `[B]` of pixels `[B, 784]`.
    fn forward(&self, x: Tensor<2>) -> Tensor<1> {
        let h = relu(x.matmul(self.w1.val()) + self.b1.val().unsqueeze());
        let z = h.matmul(self.w2.val()) + self.b2.val().unsqueeze();
        let b = z.dims()[0];
        z.reshape([b])
    }
}

/// The classifier two-sample test of `a` against `b` (pixels in [0, 1], with their classes):
/// the two sets pooled, split into [`FOLDS`] folds stratified by set and class, and for each
/// fold a network trained on the others (binary cross-entropy, Adam) and scored on it. The
/// sets should be of the same size and class mix, so that 50% is chance.
pub fn two_sample(
    a: &[f32],
    a_classes: &[usize],
    b: &[f32],
    b_classes: &[usize],
    seed: u64,
    device: &Device,
) -> TwoSample {
    two_sample_scored(a, a_classes, b, b_classes, seed, device).0
}

/// [`two_sample`], and each pooled row's held-out logit (A's rows, then B's): above 0 where the
/// fold's network took the row for one of B's.
pub fn two_sample_scored(
    a: &[f32],
    a_classes: &[usize],
    b: &[f32],
    b_classes: &[usize],
    seed: u64,
    device: &Device,
) -> (TwoSample, Vec<f32>) {
    assert_eq!(
        a.len(),
        a_classes.len() * PIXELS,
        "set A's pixels and classes"
    );
    assert_eq!(
        b.len(),
        b_classes.len() * PIXELS,
        "set B's pixels and classes"
    );
    let pixels: Vec<f32> = a.iter().chain(b).copied().collect();
    let n = a_classes.len() + b_classes.len();
    let target: Vec<f32> = (0..n)
        .map(|i| f32::from(u8::from(i >= a_classes.len())))
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    // Each (set, class) group dealt round-robin into the folds after a shuffle.
    let mut fold_of = vec![0usize; n];
    for set in 0..2 {
        for c in 0..NUM_CLASSES {
            let mut group: Vec<usize> = (0..n)
                .filter(|&i| target[i] as usize == set)
                .filter(|&i| {
                    let class = if set == 0 {
                        a_classes[i]
                    } else {
                        b_classes[i - a_classes.len()]
                    };
                    class == c
                })
                .collect();
            group.shuffle(&mut rng);
            let start = rng.random_range(0..FOLDS);
            for (k, i) in group.into_iter().enumerate() {
                fold_of[i] = (start + k) % FOLDS;
            }
        }
    }
    let ad = device.clone().autodiff();
    let mut scores = vec![0.0f32; n];
    let folds = (0..FOLDS)
        .map(|fold| {
            let train: Vec<usize> = (0..n).filter(|&i| fold_of[i] != fold).collect();
            let test: Vec<usize> = (0..n).filter(|&i| fold_of[i] == fold).collect();
            let model = fit_mlp(&pixels, &target, train, &mut rng, &ad);
            let logits = model
                .valid()
                .forward(rows(&pixels, &test, device))
                .try_into_vec_as::<f32>()
                .expect("two-sample logits");
            let right = test
                .iter()
                .zip(&logits)
                .filter(|(&i, &z)| (z > 0.0) == (target[i] > 0.5))
                .count();
            for (&i, &z) in test.iter().zip(&logits) {
                scores[i] = z;
            }
            right as f64 / test.len().max(1) as f64
        })
        .collect();
    (TwoSample { folds }, scores)
}

/// Trains the two-sample test's network on rows `train` of `pixels`: [`EPOCHS`] passes in
/// shuffled minibatches of [`BATCH`], mean binary cross-entropy with logits,
/// softplus(z) - y z.
fn fit_mlp(
    pixels: &[f32],
    target: &[f32],
    mut train: Vec<usize>,
    rng: &mut StdRng,
    ad: &Device,
) -> Mlp {
    let mut model = Mlp::new(rng, ad);
    let mut optim = AdamConfig::new().init();
    for _ in 0..EPOCHS {
        train.shuffle(rng);
        for batch in train.chunks(BATCH) {
            let x = rows(pixels, batch, ad);
            let y: Vec<f32> = batch.iter().map(|&i| target[i]).collect();
            let y = Tensor::<1>::from_data(TensorData::new(y, [batch.len()]), ad);
            let z = model.forward(x);
            let loss = (softplus(z.clone(), 1.0) - z * y).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(LR, model, grads);
        }
    }
    model
}

#[cfg(test)]
mod tests {
    use super::*;
    use guided_ddpm::nn::SIDE;

    /// Two sets of 200 noisy "digits" each: a bright square in the middle, A's one pixel
    /// further right when `shift`, on a faint background of noise in every pixel (784
    /// dimensions of noise for 320 training rows: a network scored on rows it trained on
    /// would tell even the same distribution apart).
    fn sets(shift: bool, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<usize>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut draw = |dx: usize| -> Vec<f32> {
            (0..200)
                .flat_map(|_| {
                    let mut img: Vec<f32> =
                        (0..PIXELS).map(|_| rng.random_range(0.0..0.3)).collect();
                    for r in 10..18 {
                        for c in 10 + dx..18 + dx {
                            img[r * SIDE + c] = rng.random_range(0.6..1.0);
                        }
                    }
                    img
                })
                .collect()
        };
        let a = draw(usize::from(shift));
        let b = draw(0);
        let classes = (0..200).map(|i| i % NUM_CLASSES).collect();
        (a, b, classes)
    }

    #[test]
    fn the_two_sample_test_tells_apart_what_differs_and_not_what_does_not() {
        let device = Device::flex();
        let (a, b, y) = sets(true, 1);
        let apart = two_sample(&a, &y, &b, &y, 3, &device);
        assert_eq!(apart.folds.len(), FOLDS);
        assert!(apart.accuracy() > 0.95, "shifted squares: {apart:?}");
        let (a, b, y) = sets(false, 2);
        let same = two_sample(&a, &y, &b, &y, 3, &device);
        assert!(
            (same.accuracy() - 0.5).abs() < 0.12,
            "the same distribution: {same:?}"
        );
    }
}
