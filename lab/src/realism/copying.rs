//! The copy test: how near samples come to the digits the U-Net learned from.

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::PIXELS;

/// How near samples come to the digits the U-Net learned from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Copying {
    /// The share of samples nearer to a train digit than the held-out digits' 1st percentile
    /// of the same distance.
    pub share: f64,
    /// The median distance to the nearest train digit (pixels in [0, 1], Euclidean over 784).
    pub median: f64,
}

/// Each row of `x`'s Euclidean distance to its nearest row of `train` (both `[_, 784]`),
/// through one matrix product per block: |x - t|^2 = |x|^2 + |t|^2 - 2 x.t.
pub fn nearest_distances(x: &[f32], train: &[f32], device: &Device) -> Vec<f64> {
    let n_train = train.len() / PIXELS;
    let t = Tensor::<2>::from_data(TensorData::new(train.to_vec(), [n_train, PIXELS]), device);
    let t_sq = t.clone().powi_scalar(2).sum_dim(1).reshape([1, n_train]);
    let tt = t.transpose();
    let n = x.len() / PIXELS;
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(256) {
        let end = (start + 256).min(n);
        let xb = Tensor::<2>::from_data(
            TensorData::new(
                x[start * PIXELS..end * PIXELS].to_vec(),
                [end - start, PIXELS],
            ),
            device,
        );
        let x_sq = xb.clone().powi_scalar(2).sum_dim(1);
        let d2 = x_sq + t_sq.clone() - xb.matmul(tt.clone()) * 2.0;
        let min = d2.min_dim(1).try_into_vec_as::<f32>().expect("distances");
        out.extend(min.into_iter().map(|v| f64::from(v.max(0.0)).sqrt()));
    }
    out
}

/// The `q`-quantile of `v` (nearest rank, `q` in [0, 1]).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let at = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
    s[at]
}

/// The copy test of samples whose nearest-train distances are `d`, against the held-out
/// digits' 1st percentile `threshold`.
pub fn copying(d: &[f64], threshold: f64) -> Copying {
    Copying {
        share: d.iter().filter(|&&x| x < threshold).count() as f64 / d.len().max(1) as f64,
        median: quantile(d, 0.5),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn nearest_distances_match_a_direct_search() {
        let device = Device::flex();
        let mut rng = StdRng::seed_from_u64(4);
        let train: Vec<f32> = (0..30 * PIXELS).map(|_| rng.random::<f32>()).collect();
        let mut x: Vec<f32> = (0..5 * PIXELS).map(|_| rng.random::<f32>()).collect();
        // Sample 2 is train digit 17 moved by 0.1 in one pixel: its distance is 0.1.
        x[2 * PIXELS..3 * PIXELS].copy_from_slice(&train[17 * PIXELS..18 * PIXELS]);
        x[2 * PIXELS + 5] += 0.1;
        let d = nearest_distances(&x, &train, &device);
        for (i, &got) in d.iter().enumerate() {
            let want = (0..30)
                .map(|j| {
                    (0..PIXELS)
                        .map(|p| (x[i * PIXELS + p] - train[j * PIXELS + p]).powi(2) as f64)
                        .sum::<f64>()
                        .sqrt()
                })
                .fold(f64::INFINITY, f64::min);
            assert!(
                (got - want).abs() < 1e-3,
                "sample {i}: {got} against {want}"
            );
        }
        assert!((d[2] - 0.1).abs() < 1e-3, "{}", d[2]);
    }

    #[test]
    fn the_copy_share_counts_samples_below_the_threshold() {
        let c = copying(&[0.5, 1.0, 2.0, 3.0], 1.5);
        assert_eq!(c.share, 0.5);
        assert_eq!(c.median, 1.0);
        assert_eq!(quantile(&[5.0, 1.0, 3.0, 2.0, 4.0], 0.01), 1.0);
        assert_eq!(quantile(&[5.0, 1.0, 3.0, 2.0, 4.0], 1.0), 5.0);
    }
}
