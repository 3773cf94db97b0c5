//! Fidelity of samples next to real digits, beyond one Frechet number:
//!
//! - improved precision and recall (Kynkaanniemi et al. 2019, "Improved Precision and Recall
//!   Metric for Assessing Generative Models", Sec. 3): each set's manifold is the union of balls
//!   around its points, each ball reaching the point's k-th nearest neighbour in its own set;
//!   precision is the share of generated points inside the real manifold, recall the share of
//!   real points inside the generated one. Features are the judge's, as for the Frechet distance.
//! - ink: the mean pixel darkness of the digits, and the share of pixels that are stroke, which
//!   catch strokes that are too bold or a speckled background directly in pixel space.

use serde::{Deserialize, Serialize};

use guided_ddpm::data::Digits;
use guided_ddpm::nn::NUM_CLASSES;

/// Squared Euclidean distances between every row of `a` and every row of `b` (`d` features
/// each), row-major `[rows(a), rows(b)]`.
fn sq_distances(a: &[f32], b: &[f32], d: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(a.len() / d * (b.len() / d));
    for x in a.chunks_exact(d) {
        for y in b.chunks_exact(d) {
            out.push(
                x.iter()
                    .zip(y)
                    .map(|(p, q)| (*p as f64 - *q as f64).powi(2))
                    .sum(),
            );
        }
    }
    out
}

/// Each row's squared distance to its k-th nearest other row of the same set (Eq. 1's radius).
fn knn_radii(rows: &[f32], d: usize, k: usize) -> Vec<f64> {
    let n = rows.len() / d;
    let dist = sq_distances(rows, rows, d);
    (0..n)
        .map(|i| {
            let mut row: Vec<f64> = (0..n)
                .filter(|&j| j != i)
                .map(|j| dist[i * n + j])
                .collect();
            let k = k.min(row.len()).max(1) - 1;
            row.select_nth_unstable_by(k, f64::total_cmp);
            row[k]
        })
        .collect()
}

/// Share of `query` rows inside at least one ball of `manifold` (Eq. 2): within the k-NN radius
/// of some manifold row.
fn coverage_of(manifold: &[f32], query: &[f32], d: usize, k: usize) -> f64 {
    let radii = knn_radii(manifold, d, k);
    let m = radii.len();
    let dist = sq_distances(query, manifold, d);
    let q = query.len() / d;
    let inside = (0..q)
        .filter(|&i| (0..m).any(|j| dist[i * m + j] <= radii[j]))
        .count();
    inside as f64 / q.max(1) as f64
}

/// Improved precision and recall of `fake` against `real` (rows of `d` features), with k-NN
/// radii (the paper uses k = 3; the evaluation here uses [`K`]).
pub fn precision_recall(real: &[f32], fake: &[f32], d: usize, k: usize) -> (f64, f64) {
    (coverage_of(real, fake, d, k), coverage_of(fake, real, d, k))
}

/// The neighbourhood size of the evaluation's precision and recall.
pub const K: usize = 5;

/// Pixel statistics of a set of images in [-1, 1].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ink {
    /// Mean darkness, (x + 1) / 2 averaged over every pixel: 0 blank, 1 all stroke.
    pub mean: f64,
    /// Share of pixels darker than half, (x + 1) / 2 > 0.5: the stroke area.
    pub stroke: f64,
}

/// Ink statistics of images in [-1, 1] (any number, any size, flattened).
pub fn ink(pixels: &[f32]) -> Ink {
    let n = pixels.len().max(1) as f64;
    let (sum, stroke) = pixels.iter().fold((0.0, 0usize), |(s, c), &x| {
        let v = (x as f64 + 1.0) / 2.0;
        (s + v, c + (v > 0.5) as usize)
    });
    Ink {
        mean: sum / n,
        stroke: stroke as f64 / n,
    }
}

/// Ink statistics of `digits` with each class weighted equally: the mean of the classes' own
/// statistics (classes with no digit left out), as a sampler asked for the same number of each
/// class would draw them.
pub fn balanced_ink(digits: &Digits) -> Ink {
    let mut per_class: Vec<Vec<f32>> = vec![Vec::new(); NUM_CLASSES];
    for (i, &l) in digits.labels.iter().enumerate() {
        per_class[l as usize].extend(digits.image(i));
    }
    let inks: Vec<Ink> = per_class
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| ink(p))
        .collect();
    let n = inks.len().max(1) as f64;
    Ink {
        mean: inks.iter().map(|i| i.mean).sum::<f64>() / n,
        stroke: inks.iter().map(|i| i.stroke).sum::<f64>() / n,
    }
}
