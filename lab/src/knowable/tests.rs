//! The unit tests of `knowable` (its private helpers).

use super::*;

#[test]
fn reading_counts_hits_and_calibration() {
    // Two digits read right with p = 0.9, one wrong with p = 0.6: accuracy 2/3; the 0.9 bin
    // has accuracy 1 against confidence 0.9, the 0.6 bin 0 against 0.6.
    let mut probs = vec![0.0; 30];
    for (row, (top, p)) in [(0, 0.9), (1, 0.9), (3, 0.6)].into_iter().enumerate() {
        probs[row * 10 + top] = p;
        probs[row * 10 + 9] = 1.0 - p;
    }
    let r = Reading::of(&probs, &[0, 1, 2]);
    assert!((r.accuracy - 2.0 / 3.0).abs() < 1e-12);
    assert!((r.confidence - 0.8).abs() < 1e-12);
    let ece = (2.0 * 0.1 + 0.6) / 3.0;
    assert!((r.ece - ece).abs() < 1e-12, "{} vs {ece}", r.ece);
}

#[test]
fn the_grid_covers_each_quarter_evenly() {
    let t = t_grid(20);
    assert_eq!(t[0], 25);
    assert_eq!(t[19], 975);
    let per_q: Vec<usize> = (0..4)
        .map(|q| t.iter().filter(|&&t| t * 4 / T == q).count())
        .collect();
    assert_eq!(per_q, vec![5; 4]);
}

#[test]
fn the_kernel_posterior_is_exact_on_a_two_point_world() {
    // One train digit per class 0 and 1 (all -1, all +1), the rest of the classes absent: at
    // abar the posterior of x is the logistic of the difference of the two Gaussian log
    // densities, computed here by hand.
    let device = Device::flex();
    let train: Vec<f32> = [vec![-1.0f32; PX], vec![1.0f32; PX]].concat();
    let x: Vec<f32> = (0..PX).map(|i| 0.01 * (i % 7) as f32 - 0.02).collect();
    let abar: f64 = 0.5;
    let p = kernel_probs(&x, &KernelPrior::new(&train, &[0, 1], &device), abar);
    let a = abar.sqrt();
    let d = |m: f64| x.iter().map(|&v| (v as f64 - a * m).powi(2)).sum::<f64>();
    let l0 = -d(-1.0) / (2.0 * (1.0 - abar));
    let l1 = -d(1.0) / (2.0 * (1.0 - abar));
    let p1 = 1.0 / (1.0 + (l0 - l1).exp());
    assert!((p[1] - p1).abs() < 1e-4, "{} vs {p1}", p[1]);
    assert!(p[2..].iter().all(|&v| v == 0.0));
}
