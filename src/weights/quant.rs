//! Symmetric int8 quantization with one f32 scale per output channel:
//! `q = round(w / s)` clamped to [-127, 127], `s = max |w| / 127` over the channel, `w' = q s`.
//! The round-trip error of every weight is at most `s / 2`.

/// A quantized weight: int8 values in the original layout and one scale per output channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantized {
    pub values: Vec<i8>,
    pub scales: Vec<f32>,
    /// Index of the output-channel axis in `shape`.
    pub axis: usize,
    pub shape: Vec<usize>,
}

/// For each element, the index of its output channel along `axis` of a row-major `shape`.
fn channel_of(shape: &[usize], axis: usize) -> impl Fn(usize) -> usize {
    let inner: usize = shape[axis + 1..].iter().product();
    let channels = shape[axis];
    move |i| (i / inner) % channels
}

/// Quantizes `w` (row-major, `shape`) per slice along `axis`.
pub fn quantize(w: &[f32], shape: &[usize], axis: usize) -> Quantized {
    let channel = channel_of(shape, axis);
    let mut max = vec![0f32; shape[axis]];
    for (i, &v) in w.iter().enumerate() {
        let c = channel(i);
        max[c] = max[c].max(v.abs());
    }
    // An all-zero channel keeps scale 1 so that dequantization stays finite.
    let scales: Vec<f32> = max
        .iter()
        .map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 })
        .collect();
    let values = w
        .iter()
        .enumerate()
        .map(|(i, &v)| (v / scales[channel(i)]).round().clamp(-127.0, 127.0) as i8)
        .collect();
    Quantized {
        values,
        scales,
        axis,
        shape: shape.to_vec(),
    }
}

/// `w' = q * s`, back to f32 in the original layout.
pub fn dequantize(q: &Quantized) -> Vec<f32> {
    let channel = channel_of(&q.shape, q.axis);
    q.values
        .iter()
        .enumerate()
        .map(|(i, &v)| v as f32 * q.scales[channel(i)])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_error_is_at_most_half_a_step_per_channel() {
        let shape = [3, 2, 2];
        let w: Vec<f32> = (0..12)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.013 * (1 + i / 4) as f32)
            .collect();
        for axis in 0..3 {
            let q = quantize(&w, &shape, axis);
            let back = dequantize(&q);
            let channel = channel_of(&shape, axis);
            for (i, (&a, &b)) in w.iter().zip(&back).enumerate() {
                assert!(
                    (a - b).abs() <= q.scales[channel(i)] / 2.0 + 1e-7,
                    "axis {axis} element {i}"
                );
            }
        }
    }

    #[test]
    fn pinned_values() {
        let q = quantize(&[0.5, -1.0, 0.25, 0.0, 0.0, 0.0], &[2, 3], 0);
        assert_eq!(q.values, vec![64, -127, 32, 0, 0, 0]);
        assert_eq!(q.scales, vec![1.0 / 127.0, 1.0]);
    }
}
