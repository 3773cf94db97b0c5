//! Judging: what a judge makes of digits, real or sampled. The judge (a classifier trained on
//! clean digits only, never the guidance classifier, which would be circular) labels each image
//! and gives its features; a setting's samples are judged against the real digits' (accuracy
//! per class, Frechet distance, precision and recall, ink), and the guidance classifier is read
//! on noisy held-out digits. [`crate::run`] keeps the results; [`crate::report`] writes them.

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use guided_ddpm::data::Digits;
use guided_ddpm::diffusion::q_sample;
use guided_ddpm::grid;
use guided_ddpm::guidance::Guidance;
use guided_ddpm::nn::{t_tensor, Classifier, UNet, NUM_CLASSES, SIDE};
use guided_ddpm::noise::gaussian;
use guided_ddpm::sampler::Sampler;
use guided_ddpm::schedule::{BetaSchedule, Schedule, T};
use guided_ddpm::settings::{Method, SampleSettings};
use guided_ddpm::Error;

use crate::kept::{EvalOptions, SettingResult};
use crate::{fidelity, frechet};

/// Judge predictions and features of a batch of images in [-1, 1].
pub(crate) fn judge(judge: &Classifier, x: Tensor<4>) -> (Vec<usize>, Vec<f32>) {
    let b = x.dims()[0];
    let device = x.device();
    let features = judge.features(x, t_tensor(&vec![0; b], &device));
    let logits = judge.head_forward(features.clone());
    let p = softmax(logits, 1)
        .try_into_vec_as::<f32>()
        .expect("judge output");
    let pred = p.chunks(NUM_CLASSES).map(argmax).collect();
    (
        pred,
        features.try_into_vec_as::<f32>().expect("judge features"),
    )
}

pub(crate) fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(
            (0, f32::MIN),
            |(bi, bv), (i, &x)| if x > bv { (i, x) } else { (bi, bv) },
        )
        .0
}

pub(crate) fn batch_of(digits: &Digits, idx: &[usize], device: &Device) -> Tensor<4> {
    let v: Vec<f32> = idx.iter().flat_map(|&i| digits.image(i)).collect();
    Tensor::from_data(TensorData::new(v, [idx.len(), 1, SIDE, SIDE]), device)
}

/// Judge accuracy and features over a whole digit set.
pub(crate) fn judge_digits(
    j: &Classifier,
    digits: &Digits,
    idx: &[usize],
    device: &Device,
) -> (f64, Vec<f32>) {
    let (mut correct, mut feats) = (0, Vec::new());
    for chunk in idx.chunks(250) {
        let (pred, f) = judge(j, batch_of(digits, chunk, device));
        correct += chunk
            .iter()
            .zip(&pred)
            .filter(|(&i, &p)| digits.labels[i] as usize == p)
            .count();
        feats.extend(f);
    }
    (correct as f64 / idx.len() as f64, feats)
}

/// Accuracy of the noise-aware classifier on q_sample(x0, t), t uniform within each quarter.
pub(crate) fn classifier_by_quartile(
    c: &Classifier,
    held: &Digits,
    kind: BetaSchedule,
    device: &Device,
) -> Vec<f64> {
    let schedule = Schedule::new(kind);
    let mut rng = StdRng::seed_from_u64(2024);
    let all: Vec<usize> = (0..held.len()).collect();
    (0..4)
        .map(|q| {
            let mut correct = 0;
            for chunk in all.chunks(250) {
                let t: Vec<usize> = chunk
                    .iter()
                    .map(|_| rng.random_range(q * T / 4..(q + 1) * T / 4))
                    .collect();
                let x0 = batch_of(held, chunk, device);
                let eps = gaussian(x0.dims(), &mut rng, device);
                let x = q_sample(&schedule, x0, eps, &t);
                let p = softmax(c.forward(x, t_tensor(&t, device)), 1)
                    .try_into_vec_as::<f32>()
                    .expect("logits");
                correct += chunk
                    .iter()
                    .zip(p.chunks(NUM_CLASSES))
                    .filter(|(&i, p)| held.labels[i] as usize == argmax(p))
                    .count();
            }
            correct as f64 / held.len() as f64
        })
        .collect()
}

/// The real digits a setting's samples are set against, as the judge sees them: the held-out
/// digits, and `n` train digits of each class (the first ones, as many as a setting samples)
/// with their FD, precision and recall against the held-out ones, what a perfect sampler would
/// score.
pub(crate) struct RealDigits {
    /// The judge's accuracy on the held-out digits.
    pub held_accuracy: f64,
    pub held_feats: Vec<f32>,
    /// FD of the `n` train digits of each class against the held-out ones: the floor a setting
    /// sampling `n` per class is held to (FD falls as N grows).
    pub same_n_frechet: f64,
    pub precision: f64,
    pub recall: f64,
    pub held_ink: fidelity::Ink,
    /// Ink of the `n` train digits of each class.
    pub same_n_ink: fidelity::Ink,
    /// Ink of all train digits, classes weighted equally.
    pub train_ink: fidelity::Ink,
}

impl RealDigits {
    pub fn judge(
        judge: &Classifier,
        train: &Digits,
        held: &Digits,
        n: usize,
        device: &Device,
    ) -> Self {
        let held_idx: Vec<usize> = (0..held.len()).collect();
        let (held_accuracy, held_feats) = judge_digits(judge, held, &held_idx, device);
        let same_n = first_per_class(train, n);
        let (_, same_n_feats) = judge_digits(judge, train, &same_n, device);
        let d = judge.feature_dim();
        let (precision, recall) =
            fidelity::precision_recall(&held_feats, &same_n_feats, d, fidelity::K);
        let held_pixels: Vec<f32> = (0..held.len()).flat_map(|i| held.image(i)).collect();
        let same_n_pixels: Vec<f32> = same_n.iter().flat_map(|&i| train.image(i)).collect();
        RealDigits {
            held_accuracy,
            same_n_frechet: frechet::between(&same_n_feats, &held_feats, d),
            held_feats,
            precision,
            recall,
            held_ink: fidelity::ink(&held_pixels),
            same_n_ink: fidelity::ink(&same_n_pixels),
            train_ink: fidelity::balanced_ink(train),
        }
    }
}

/// What a row adds to the sampler: autoguidance by a guide network at a weight, the samples
/// moved by whole pixels to centre their mass as MNIST's digits are (`digit::centred_by_mass`),
/// and the demo's finish of a run from noise (`SampleSettings::place`).
#[derive(Clone, Copy, Default)]
pub struct Extras<'a> {
    pub autoguide: Option<(&'a UNet, f64)>,
    pub centre: bool,
    pub place: bool,
}

/// A setting's samples as grey bytes (`[N, 784]`), with the class each was drawn for.
pub(crate) struct Samples {
    pub bytes: Vec<u8>,
    pub classes: Vec<usize>,
}

/// Samples `n` per class with one setting; returns the judged result, the first ten samples
/// of each class as grey bytes (row per class), and all the samples.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_setting(
    label: &str,
    guidance: Guidance,
    (method, steps): (Method, usize),
    unet: &UNet,
    classifier: &Classifier,
    judge_net: &Classifier,
    held_feats: &[f32],
    opts: &EvalOptions,
    weights_name: &str,
    schedule: BetaSchedule,
    extras: Extras,
    device: &Device,
) -> Result<(SettingResult, Vec<u8>, Samples), Error> {
    let started = std::time::Instant::now();
    let batches = opts.n_per_class.div_ceil(PER_BATCH);
    let (mut correct, mut feats, mut grid_rows) = (
        vec![0usize; NUM_CLASSES],
        Vec::new(),
        vec![Vec::new(); NUM_CLASSES],
    );
    let mut total = vec![0usize; NUM_CLASSES];
    let mut judged = [0usize; NUM_CLASSES];
    let mut pixels = Vec::new();
    let mut drawn_for = Vec::new();
    for b in 0..batches {
        let settings = SampleSettings {
            place: extras.place,
            ..batch_settings(b, guidance, (method, steps), schedule)
        };
        let classes = settings.classes.clone();
        drawn_for.extend_from_slice(&classes);
        let mut sampler = Sampler::new(unet.clone(), classifier.clone(), settings.clone(), device)?;
        if let Some((guide, w)) = extras.autoguide {
            sampler = sampler.with_autoguide(guide.clone(), w);
        }
        let mut x = sampler
            .run(|_| std::ops::ControlFlow::Continue(()))
            .expect("never cancelled");
        let drawn = x.clone().try_into_vec_as::<f32>().expect("samples");
        let values = match extras.centre {
            true => guided_ddpm::digit::centred_by_mass(&drawn),
            false => settings.finished(drawn),
        };
        if extras.centre || settings.place {
            x = Tensor::from_data(TensorData::new(values.clone(), x.dims()), device);
        }
        pixels.extend_from_slice(&values);
        let (pred, f) = judge(judge_net, x);
        feats.extend(f);
        for (i, (&c, &p)) in classes.iter().zip(&pred).enumerate() {
            correct[c] += (c == p) as usize;
            total[c] += 1;
            judged[p] += 1;
            if b == 0 {
                grid_rows[c].extend(grid::to_bytes(
                    &values[i * SIDE * SIDE..(i + 1) * SIDE * SIDE],
                ));
            }
        }
        eprintln!(
            "  {label}: batch {}/{batches}, {:.0} s",
            b + 1,
            started.elapsed().as_secs_f64()
        );
    }
    let per_class: Vec<f64> = correct
        .iter()
        .zip(&total)
        .map(|(&c, &t)| c as f64 / t as f64)
        .collect();
    let d = judge_net.feature_dim();
    let (precision, recall) = fidelity::precision_recall(held_feats, &feats, d, fidelity::K);
    let result = SettingResult {
        label: label.to_string(),
        guidance,
        weights: weights_name.to_string(),
        n_per_class: total[0],
        method,
        steps,
        accuracy: per_class.iter().sum::<f64>() / NUM_CLASSES as f64,
        accuracy_per_class: per_class,
        frechet: frechet::between(&feats, held_feats, d),
        precision,
        recall,
        ink: fidelity::ink(&pixels),
        judged_share: {
            let n = total.iter().sum::<usize>() as f64;
            judged.iter().map(|&j| j as f64 / n).collect()
        },
        seconds: started.elapsed().as_secs_f64(),
        realism: None,
        autoguide: None,
        autoguide_by: String::new(),
        centred: false,
        placed: false,
    };
    let samples = Samples {
        bytes: grid::to_bytes(&pixels),
        classes: drawn_for,
    };
    Ok((result, grid_rows.concat(), samples))
}

/// Samples of each class in one of eval's batches.
pub const PER_BATCH: usize = 10;

/// Batch `b` of eval's samples of a setting: [`PER_BATCH`] of each class, in class order, from
/// seed 1000 + b. The cross-check draws the same.
pub fn batch_settings(
    b: usize,
    guidance: Guidance,
    (method, steps): (Method, usize),
    schedule: BetaSchedule,
) -> SampleSettings {
    SampleSettings::new(
        (0..NUM_CLASSES)
            .flat_map(|c| std::iter::repeat_n(c, PER_BATCH))
            .collect(),
        guidance,
        steps,
        method,
        1000 + b as u64,
        schedule,
    )
}

/// Indices of the first `n` digits of each class.
pub(crate) fn first_per_class(digits: &Digits, n: usize) -> Vec<usize> {
    let mut per = [0usize; NUM_CLASSES];
    (0..digits.len())
        .filter(|&i| {
            let c = digits.labels[i] as usize;
            per[c] += 1;
            per[c] <= n
        })
        .collect()
}
