//! The classifier gradient and the guidance formulas.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use guided_ddpm::diffusion::{predict_x0, StepCoefs};
use guided_ddpm::guidance::{
    applied_grad, cfg_mix, classifier_grad, classifier_log_prob, condition_mean, condition_score,
    guidance_shift, Grad, Guidance,
};
use guided_ddpm::nn::{t_tensor, ClassifierConfig};
use guided_ddpm::schedule::{BetaSchedule, Schedule};
use guided_ddpm::settings::Method;

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

/// Deterministic pixels in (-amp, amp) for the gradient-form tests.
fn pixels(seed: usize, amp: f32, device: &Device) -> Tensor<4> {
    let v: Vec<f32> = (0..2 * 28 * 28)
        .map(|i| (((i * 7919 + seed * 104_729) % 1009) as f32 / 504.5 - 1.0) * amp)
        .collect();
    Tensor::from_data(TensorData::new(v, [2, 1, 28, 28]), device)
}

/// The normalised form hands the step the gradient's direction at the length of the model's
/// score estimate, |eps| / sqrt(1 - abar_t), per sample (the two samples' gradients differ in
/// length by 1000x and come out at their own eps's length); the paper's form is the gradient
/// itself; a zero gradient stays zero.
#[test]
fn the_normalised_gradient_has_the_length_of_the_models_score() {
    let device = Device::flex();
    let schedule = Schedule::respaced(BetaSchedule::Linear, 8).unwrap();
    for k in [0, 3, 7] {
        let c = StepCoefs::at(&schedule, k, 2.0, Method::DpmSolver, false);
        let sqrt_one_minus_abar = (1.0 - schedule.alphas_cumprod[k]).sqrt();
        let eps = pixels(1, 1.0, &device);
        let scales =
            Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 1e-3], [2, 1, 1, 1]), &device);
        let grad = pixels(2, 0.01, &device) * scales;
        let norms = |x: Tensor<4>| -> Vec<f64> {
            vals(x)
                .chunks(28 * 28)
                .map(|r| r.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt())
                .collect()
        };
        let got = applied_grad(Grad::Norm, grad.clone(), &eps, &c);
        let (got_n, eps_n, grad_n) = (norms(got.clone()), norms(eps.clone()), norms(grad.clone()));
        let (g, d) = (vals(got), vals(grad.clone()));
        for i in 0..2 {
            let want = eps_n[i] / sqrt_one_minus_abar;
            assert!(
                (got_n[i] / want - 1.0).abs() < 1e-4,
                "k {k} sample {i}: length {} against {want}",
                got_n[i]
            );
            // The same direction: the cosine of the two is 1.
            let r = i * 784..(i + 1) * 784;
            let dot: f64 = g[r.clone()]
                .iter()
                .zip(&d[r])
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum();
            let cos = dot / (got_n[i] * grad_n[i]);
            assert!((cos - 1.0).abs() < 1e-5, "k {k} sample {i}: cosine {cos}");
        }
        assert_eq!(vals(applied_grad(Grad::Xt, grad.clone(), &eps, &c)), d);
        let zero = applied_grad(Grad::Norm, grad.zeros_like(), &eps, &c);
        assert!(vals(zero).iter().all(|&v| v == 0.0));
    }
}

/// The x0 form moves the step's predicted x0 by exactly s times the gradient it was given, at
/// every t: the eps-form shift (DDIM, DPM-Solver++) of `applied_grad(X0, g0)` taken off eps
/// changes x0 = sqrt(1/abar) x_t - sqrt(1/abar - 1) eps by s g0 (values small enough that x0 is
/// not clipped).
#[test]
fn the_x0_gradient_moves_the_predicted_x0_by_s_times_it() {
    let device = Device::flex();
    let schedule = Schedule::respaced(BetaSchedule::Linear, 8).unwrap();
    let s = 3.0;
    for k in [0, 2, 5, 7] {
        let c = StepCoefs::at(&schedule, k, s, Method::DpmSolver, false);
        let abar = schedule.alphas_cumprod[k];
        // x_t made from an x0 in (-0.3, 0.3) and eps, so x0's prediction is unclipped.
        let eps = pixels(3, 1.0, &device);
        let x0 = pixels(4, 0.3, &device);
        let x = x0 * abar.sqrt() + eps.clone() * (1.0 - abar).sqrt();
        let g0 = pixels(5, 0.01, &device);
        let g = applied_grad(Grad::X0, g0.clone(), &eps, &c);
        let guided = condition_score(eps.clone(), guidance_shift(&c.guide, g));
        let moved: Vec<f32> = vals(predict_x0(&c, x.clone(), guided))
            .iter()
            .zip(vals(predict_x0(&c, x, eps)))
            .map(|(a, b)| a - b)
            .collect();
        let want = vals(g0 * s);
        let worst = moved
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst < 1e-4, "k {k}: x0 moved off s g0 by {worst}");
    }
}

/// A setting's label names the form of its gradient where it is not the paper's, and reads back;
/// a setting written before the form existed reads as the paper's gradient.
#[test]
fn the_gradient_form_is_in_the_label_and_in_old_settings() {
    for label in [
        "both s=1 w=0 g=norm t=250-749",
        "classifier s=16 g=x0",
        "classifier s=4",
    ] {
        assert_eq!(Guidance::from_label(label).unwrap().label(), label);
    }
    assert_eq!(
        Guidance::from_label("classifier s=16 g=x0").unwrap().grad,
        Grad::X0
    );
    assert!(Guidance::from_label("classifier s=1 g=x1").is_err());
    // A setting written before the form existed reads as the paper's gradient.
    let old: Guidance =
        serde_json::from_str(r#"{"mode":"both","scale":0.75,"cfg_scale":0.0}"#).unwrap();
    assert_eq!(
        old,
        Guidance::new(guided_ddpm::guidance::Mode::Both, 0.75, 0.0)
    );
    assert_eq!(old.grad, Grad::Xt);
    let json = serde_json::to_string(&Guidance {
        grad: Grad::Norm,
        ..old
    })
    .unwrap();
    assert!(json.contains(r#""grad":"norm""#), "{json}");
}

/// Each form of the classifier's gradient starts from its own s, and the default's form from the
/// default's own strengths: a user who changes nothing runs the default. Checked by hand: with
/// `Grad::X0`'s start scale set to 32 this fails.
#[test]
fn each_form_starts_from_its_own_scale_and_the_defaults_from_the_default() {
    use guided_ddpm::guidance::{starting, DEFAULT, MAX_NORM_SCALE, STARTING};
    assert_eq!(STARTING, DEFAULT);
    for grad in Grad::ALL {
        let g = starting(grad);
        assert_eq!(
            (g.mode, g.cfg_scale, g.grad),
            (DEFAULT.mode, DEFAULT.cfg_scale, grad)
        );
        assert!(g.scale > 0.0, "{grad:?} starts unguided");
        assert!(
            grad != Grad::Norm || g.scale <= MAX_NORM_SCALE,
            "{grad:?} starts above its own bound"
        );
    }
}
