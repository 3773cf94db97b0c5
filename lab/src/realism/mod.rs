//! Measures of realism that still see the gap once the judge's FD sits at its real-vs-real floor
//! (issue 43): a classifier two-sample test, the Frechet distance in an autoencoder's code (a
//! feature space trained to redraw digits, not to name them), and a copy test against the train
//! digits. Each has a reference of real digits at the same N, so a row reads against what real
//! digits score.
//!
//! Pixels here are in [0, 1] (grey byte / 255), digits `[N, 784]` row-major. The test
//! (two_sample.rs), the feature space (autoencoder.rs) and the copy test (copying.rs) each have
//! a file; this one measures a row and the real digits' reference with them.

mod autoencoder;
mod copying;
mod two_sample;

pub use autoencoder::{train_autoencoder, Autoencoder, AutoencoderOptions, AUTOENCODER, CODE};
pub use copying::{copying, nearest_distances, quantile, Copying};
pub use two_sample::{sd, two_sample, two_sample_scored, TwoSample, FOLDS, HIDDEN};

use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use guided_ddpm::data::Digits;
use guided_ddpm::nn::{NUM_CLASSES, SIDE};

const PIXELS: usize = SIDE * SIDE;

/// Rows `idx` of `pixels` as a `[len, 784]` tensor.
fn rows(pixels: &[f32], idx: &[usize], device: &Device) -> Tensor<2> {
    let v: Vec<f32> = idx
        .iter()
        .flat_map(|&i| pixels[i * PIXELS..(i + 1) * PIXELS].iter().copied())
        .collect();
    Tensor::from_data(TensorData::new(v, [idx.len(), PIXELS]), device)
}

/// The share of pixels that are exactly black (grey byte 0): 81% of a real digit's.
pub fn black_share(pixels: &[f32]) -> f64 {
    pixels
        .iter()
        .filter(|&&p| (p * 255.0).round() <= 0.0)
        .count() as f64
        / pixels.len().max(1) as f64
}

/// Digits' grey bytes as [0, 1] values.
pub fn unit_pixels(digits: &Digits, idx: &[usize]) -> Vec<f32> {
    idx.iter()
        .flat_map(|&i| {
            digits.pixels[i * PIXELS..(i + 1) * PIXELS]
                .iter()
                .map(|&p| f32::from(p) / 255.0)
        })
        .collect()
}

/// Repeats of a row's two-sample test, each against its own draw of held-out digits.
pub const REPEATS: usize = 2;
/// Draws of train digits in the two-sample test's real-vs-real reference.
pub const REFERENCE_DRAWS: usize = 4;

/// The realism measures of one row's samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RowRealism {
    /// Samples against held-out digits, as many of each class.
    pub two_sample: TwoSample,
    /// Frechet distance of autoencoder codes against the 1,000 held-out digits'.
    pub ae_frechet: f64,
    pub copying: Copying,
    /// The share of exactly black pixels.
    pub black: f64,
}

/// What real digits score on the same measures, at the rows' N.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RealismReference {
    pub n_per_class: usize,
    /// sha256 of the autoencoder checkpoint whose code the Frechet distances are taken in: rows
    /// measured in another autoencoder's code are measured again.
    pub autoencoder_sha256: String,
    /// Train digits (n of each class, a fresh draw each) against held-out digits, one test per
    /// draw, run as a row's is.
    pub two_sample: Vec<TwoSample>,
    /// The autoencoder FD of train digits (n of each class, drawn at random) against the
    /// held-out ones, per draw.
    pub ae_frechet_draws: Vec<f64>,
    /// The held-out digits' own copy test: their 1st percentile of nearest-train distance is
    /// the threshold, so the share is about 1% by construction.
    pub held_copying: Copying,
    pub copy_threshold: f64,
    /// The share of exactly black pixels in the held-out digits.
    pub held_black: f64,
}

impl RealismReference {
    /// The mean and the standard deviation over draws of the real digits' two-sample accuracy.
    pub fn two_sample_mean_sd(&self) -> (f64, f64) {
        let v: Vec<f64> = self.two_sample.iter().map(TwoSample::accuracy).collect();
        (v.iter().sum::<f64>() / v.len().max(1) as f64, sd(&v))
    }

    /// The mean and the standard deviation over draws of the real digits' autoencoder FD.
    pub fn ae_frechet_mean_sd(&self) -> (f64, f64) {
        let v = &self.ae_frechet_draws;
        (v.iter().sum::<f64>() / v.len().max(1) as f64, sd(v))
    }
}

/// What every row is measured against, prepared once per evaluation.
pub struct Realism {
    autoencoder: Autoencoder,
    held: Vec<f32>,
    held_classes: Vec<usize>,
    held_codes: Vec<f32>,
    train: Vec<f32>,
    threshold: f64,
    per_class: usize,
}

/// Indices of `k` digits of each class of `labels`, drawn at random without replacement (all of
/// a class that has fewer), in class order.
pub fn stratified(labels: &[u8], k: usize, rng: &mut StdRng) -> Vec<usize> {
    (0..NUM_CLASSES)
        .flat_map(|c| {
            let mut of: Vec<usize> = (0..labels.len())
                .filter(|&i| labels[i] as usize == c)
                .collect();
            of.shuffle(rng);
            of.truncate(k);
            of.sort_unstable();
            of
        })
        .collect()
}

impl Realism {
    /// Loads the autoencoder from `checkpoints` and measures the real digits: the reference
    /// (reused from `previous` where it is of the same N and autoencoder) and what each row
    /// is set against. `draws` is how many draws of real digits the autoencoder FD's spread
    /// takes, and the seed of every draw.
    pub fn prepare(
        checkpoints: &std::path::Path,
        train_set: &Digits,
        held: &Digits,
        n_per_class: usize,
        previous: Option<&RealismReference>,
        draws: (usize, u64),
        device: &Device,
    ) -> Result<(Self, RealismReference), guided_ddpm::Error> {
        let path = checkpoints.join(format!("{AUTOENCODER}-ema.bpk"));
        let bytes = std::fs::read(&path).map_err(|e| {
            guided_ddpm::Error::Weights(format!(
                "cannot read {}: {e}; train it with `guided-ddpm-lab autoencoder`",
                path.display()
            ))
        })?;
        let sha = guided_ddpm::weights::manifest::sha256_hex(&bytes);
        let autoencoder =
            guided_ddpm::train::load_ema(Autoencoder::new(device), checkpoints, AUTOENCODER)?;
        let held_idx: Vec<usize> = (0..held.len()).collect();
        let train_idx: Vec<usize> = (0..train_set.len()).collect();
        let held_px = unit_pixels(held, &held_idx);
        let train_px = unit_pixels(train_set, &train_idx);
        let held_codes = autoencoder.codes(&held_px, &held_idx, device);
        let reuse = previous.filter(|p| {
            p.n_per_class == n_per_class && p.autoencoder_sha256 == sha && !p.two_sample.is_empty()
        });
        // The held-out digits' own copy test (a search of every train digit for each) only where
        // the reference is measured afresh; a reused one holds its threshold.
        let (threshold, held_copying) = match reuse {
            Some(p) => (p.copy_threshold, p.held_copying.clone()),
            None => {
                let held_d = nearest_distances(&held_px, &train_px, device);
                let threshold = quantile(&held_d, 0.01);
                (threshold, copying(&held_d, threshold))
            }
        };
        let per_class = n_per_class.min(guided_ddpm::data::HELD_OUT_PER_CLASS);
        let realism = Realism {
            held_classes: held.labels.iter().map(|&l| l as usize).collect(),
            held: held_px,
            held_codes,
            train: train_px,
            threshold,
            per_class,
            autoencoder,
        };
        if let Some(p) = reuse {
            return Ok((realism, p.clone()));
        }
        let train_codes = realism
            .autoencoder
            .codes(&realism.train, &train_idx, device);
        let ae_frechet_draws = crate::frechet::stratified_subsets(
            &train_codes,
            &train_set.labels,
            &realism.held_codes,
            CODE,
            n_per_class,
            draws.0,
            draws.1,
        );
        let mut rng = StdRng::seed_from_u64(draws.1);
        let two_sample = (0..REFERENCE_DRAWS)
            .map(|_| {
                let idx = stratified(&train_set.labels, per_class, &mut rng);
                let px = unit_pixels(train_set, &idx);
                let classes: Vec<usize> =
                    idx.iter().map(|&i| train_set.labels[i] as usize).collect();
                let seed = rng.random();
                realism.two_sample_against_held(&px, &classes, seed, device)
            })
            .collect();
        let reference = RealismReference {
            n_per_class,
            autoencoder_sha256: sha,
            two_sample,
            ae_frechet_draws,
            held_copying,
            copy_threshold: threshold,
            held_black: black_share(&realism.held),
        };
        Ok((realism, reference))
    }

    /// One two-sample test of `px` (with `classes`, `per_class` of each at most) against as many
    /// held-out digits of each class, drawn from `seed`, per repeat; the folds of all repeats.
    fn two_sample_against_held(
        &self,
        px: &[f32],
        classes: &[usize],
        seed: u64,
        device: &Device,
    ) -> TwoSample {
        let mut rng = StdRng::seed_from_u64(seed);
        let labels: Vec<u8> = self.held_classes.iter().map(|&c| c as u8).collect();
        let mut folds = Vec::new();
        for _ in 0..REPEATS {
            let held_idx = stratified(&labels, self.per_class, &mut rng);
            let held_px: Vec<f32> = held_idx
                .iter()
                .flat_map(|&i| self.held[i * PIXELS..(i + 1) * PIXELS].iter().copied())
                .collect();
            let held_classes: Vec<usize> = held_idx.iter().map(|&i| self.held_classes[i]).collect();
            let t = two_sample(px, classes, &held_px, &held_classes, rng.random(), device);
            folds.extend(t.folds);
        }
        TwoSample { folds }
    }

    /// The realism measures of samples (grey bytes, `[N, 784]`) drawn for `classes`. Where a
    /// class has more samples than the held-out digits it is tested against, its first ones
    /// are tested.
    pub fn measure(&self, bytes: &[u8], classes: &[usize], device: &Device) -> RowRealism {
        let px: Vec<f32> = bytes.iter().map(|&b| f32::from(b) / 255.0).collect();
        let all: Vec<usize> = (0..classes.len()).collect();
        let mut seen = [0usize; NUM_CLASSES];
        let kept: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| {
                seen[classes[i]] += 1;
                seen[classes[i]] <= self.per_class
            })
            .collect();
        let kept_px: Vec<f32> = kept
            .iter()
            .flat_map(|&i| px[i * PIXELS..(i + 1) * PIXELS].iter().copied())
            .collect();
        let kept_classes: Vec<usize> = kept.iter().map(|&i| classes[i]).collect();
        let codes = self.autoencoder.codes(&px, &all, device);
        RowRealism {
            two_sample: self.two_sample_against_held(&kept_px, &kept_classes, 43, device),
            ae_frechet: crate::frechet::between(&codes, &self.held_codes, CODE),
            copying: copying(&nearest_distances(&px, &self.train, device), self.threshold),
            black: black_share(&px),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_share_counts_pixels_at_zero() {
        assert_eq!(black_share(&[0.0, 0.001, 0.5, 1.0]), 0.5);
    }
}
