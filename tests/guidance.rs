//! The classifier gradient and the guidance formulas.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use guided_ddpm::guidance::{
    cfg_mix, classifier_grad, classifier_log_prob, condition_mean, condition_score, guidance_shift,
};
use guided_ddpm::nn::{t_tensor, ClassifierConfig};

fn vals<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    x.try_into_vec_as::<f32>().unwrap()
}

#[test]
fn the_classifier_gradient_matches_central_finite_differences() {
    let device = Device::flex();
    let ad = device.clone().autodiff();
    device.seed(11);
    let classifier = ClassifierConfig::new()
        .with_channels([8, 8, 8])
        .with_emb_dim(8)
        .init(&ad)
        .freeze();
    let n = 2 * 28 * 28;
    let base: Vec<f32> = (0..n)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(base.clone(), [2, 1, 28, 28]), &device);
    let y = [3, 8];
    let t = t_tensor(&[400, 900], &device);
    let (grad, _) = classifier_grad(&classifier, x, t.clone(), &y);
    let grad = vals(grad);
    let log_p = |v: Vec<f32>| {
        vals(classifier_log_prob(
            &classifier,
            Tensor::from_data(TensorData::new(v, [2, 1, 28, 28]), &device),
            t.clone(),
            &y,
        ))
    };
    let h = 1e-2f32;
    // The finite difference's own error here (f32 log p over 2h, and O(h^2) truncation) is
    // well under this.
    const ABS_TOL: f32 = 5e-5;
    let mut checked = 0;
    // Fixed pixels, and the three of each sample where the gradient is largest: there the
    // gradient is far above the tolerance's absolute part, so a zero, halved or sign-flipped
    // gradient fails.
    let mut largest: Vec<usize> = (0..n).collect();
    largest.sort_by(|&a, &b| grad[b].abs().total_cmp(&grad[a].abs()));
    let top: Vec<usize> = [0, 1]
        .iter()
        .flat_map(|&sample| {
            largest
                .iter()
                .copied()
                .filter(move |&i| i / 784 == sample)
                .take(3)
        })
        .collect();
    for &i in top.iter() {
        assert!(
            grad[i].abs() > 20.0 * ABS_TOL,
            "pixel {i}: gradient {} too small to check",
            grad[i]
        );
    }
    for &i in [0usize, 100, 405, 783, 784 + 200, 784 + 406, 2 * 784 - 1]
        .iter()
        .chain(&top)
    {
        let sample = i / 784;
        let (mut plus, mut minus) = (base.clone(), base.clone());
        plus[i] += h;
        minus[i] -= h;
        let fd = (log_p(plus)[sample] - log_p(minus)[sample]) / (2.0 * h);
        let tol = ABS_TOL + 2e-2 * fd.abs().max(grad[i].abs());
        assert!(
            (fd - grad[i]).abs() < tol,
            "pixel {i}: autodiff {} vs finite difference {fd}",
            grad[i]
        );
        checked += 1;
    }
    assert_eq!(checked, 13);
}

#[test]
fn guidance_formulas() {
    let device = Device::flex();
    let t = |v: f32| Tensor::<4>::full([1, 1, 1, 1], v, &device);
    // mu' = mu + s Sigma g
    assert_eq!(
        vals(condition_mean(t(1.0), guidance_shift(&(0.5 * 2.0), t(3.0)))),
        vec![4.0]
    );
    // eps' = eps - sqrt(1 - abar) s g
    assert_eq!(
        vals(condition_score(
            t(1.0),
            guidance_shift(&(0.5 * 2.0), t(3.0))
        )),
        vec![-2.0]
    );
    // (1 + w) eps_c - w eps_u
    assert_eq!(vals(cfg_mix(t(2.0), t(1.0), 3.0)), vec![5.0]);
    // w = 0 is the conditional model alone
    assert_eq!(vals(cfg_mix(t(2.0), t(1.0), 0.0)), vec![2.0]);
}
