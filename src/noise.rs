//! Seeded Gaussian noise drawn on the host, one stream per image, so that a seed gives the same
//! images on every backend and whatever else shares the batch.

use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::nn::SIDE;
use crate::settings::SampleSettings;

/// Standard normal noise drawn on the host from a seeded PRNG, so that a seed gives the same
/// numbers on every backend.
pub fn gaussian(shape: [usize; 4], rng: &mut impl rand::Rng, device: &Device) -> Tensor<4> {
    let v = gaussian_values(shape.iter().product(), rng);
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// The noise of one sampling run, one stream per image: image `i` of a batch whose first image
/// has the run-wide index `first` draws x_T, then each step's z, from ChaCha12 keyed by
/// (seed, first + i). An image's noise is thus the same whatever else shares its batch: a batch
/// split across workers, or run beside other guidance settings, gives the same images.
pub struct NoiseStreams(Vec<StdRng>);

impl NoiseStreams {
    pub fn new(seed: u64, first: usize, count: usize) -> Self {
        let stream = |index: usize| {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&seed.to_le_bytes());
            key[8..16].copy_from_slice(&(index as u64).to_le_bytes());
            StdRng::from_seed(key)
        };
        Self((first..first + count).map(stream).collect())
    }

    /// The streams of a run's samples: `first_image + i` for sample i, or stream `first_image`
    /// for every sample when the settings ask for the same noise.
    pub fn of(settings: &SampleSettings) -> Self {
        let b = settings.classes.len();
        match settings.same_noise {
            false => Self::new(settings.seed, settings.first_image, b),
            true => {
                let one = Self::new(settings.seed, settings.first_image, 1)
                    .0
                    .remove(0);
                Self(vec![one; b])
            }
        }
    }

    /// The next draw of every image, `[B, 1, 28, 28]` values in image order.
    pub fn next_values(&mut self) -> Vec<f32> {
        let n = SIDE * SIDE;
        let mut out = Vec::with_capacity(self.0.len() * n);
        for rng in &mut self.0 {
            out.extend(gaussian_values(n, rng));
        }
        out
    }

    /// [`next_values`](Self::next_values) as a tensor on `device`.
    pub fn next(&mut self, device: &Device) -> Tensor<4> {
        let b = self.0.len();
        Tensor::from_data(
            TensorData::new(self.next_values(), [b, 1, SIDE, SIDE]),
            device,
        )
    }
}

/// The next `n` standard normal draws of `rng`, as [`gaussian`] takes them.
pub fn gaussian_values(n: usize, rng: &mut impl rand::Rng) -> Vec<f32> {
    (0..n)
        .map(|_| rng.sample(rand_distr::StandardNormal))
        .collect()
}
