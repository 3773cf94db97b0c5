//! The sampling loop on small random networks: determinism, guidance at scale 0 and in an interval, the DDIM, DPM-Solver++ and SDE steps, frames, cancel, bad settings, shapes.

mod common;

use std::ops::ControlFlow;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use guided_ddpm::bench::native::block_on;
use guided_ddpm::guidance::{Grad, Guidance, Mode};
use guided_ddpm::nn::{label_tensor, t_tensor, ClassifierConfig, UNetConfig};
use guided_ddpm::sampler::Sampler;
use guided_ddpm::settings::{Method, SampleSettings};

use common::sampling::{
    assert_refused, check_unguided_by_hand, compare_settings, frames, p_of, settings, start,
    table_driven_frames,
};
use common::small_nets as nets;

#[test]
fn the_same_seed_gives_identical_frames() {
    let n = nets();
    for method in Method::ALL {
        for mode in [Mode::None, Mode::Classifier, Mode::Free, Mode::Both] {
            let a = frames(&n, settings(mode, 2.0, method, 42));
            let b = frames(&n, settings(mode, 2.0, method, 42));
            assert_eq!(a.len(), 6);
            assert_eq!(a, b, "{method:?} {mode:?}");
        }
    }
    assert_ne!(
        frames(&n, settings(Mode::None, 0.0, Method::Ddpm, 1)),
        frames(&n, settings(Mode::None, 0.0, Method::Ddpm, 2))
    );
}

#[test]
fn classifier_scale_zero_equals_the_unguided_run_exactly() {
    let n = nets();
    for method in Method::ALL {
        assert_eq!(
            frames(&n, settings(Mode::Classifier, 0.0, method, 9)),
            frames(&n, settings(Mode::None, 0.0, method, 9))
        );
        assert_ne!(
            frames(&n, settings(Mode::Classifier, 50.0, method, 9)),
            frames(&n, settings(Mode::None, 0.0, method, 9))
        );
    }
}

/// A guidance interval (Kynkaanniemi et al. 2024) switches the classifier's gradient on at the
/// steps whose timestep lies in it and off elsewhere: an interval that holds no step of the run
/// is the unguided run exactly, one that holds every step is the run without an interval
/// exactly, and one that holds some steps is neither; its frames push only inside it, the
/// table-driven run agrees, and a comparison's settings must share one interval.
#[test]
fn a_guidance_interval_guides_exactly_the_steps_inside_it() {
    let n = nets();
    // 6 steps respaced from 1000: timesteps 0, 200, 400, 599, 799, 999 (schedule::spaced_timesteps).
    let timesteps = guided_ddpm::schedule::spaced_timesteps(6);
    assert_eq!(timesteps, vec![0, 200, 400, 599, 799, 999]);
    let within = |interval, method| {
        let mut s = settings(Mode::Classifier, 50.0, method, 9);
        s.guidance.interval = interval;
        s
    };
    for method in Method::ALL {
        let unguided = frames(&n, settings(Mode::None, 0.0, method, 9));
        let full = frames(&n, settings(Mode::Classifier, 50.0, method, 9));
        assert_eq!(frames(&n, within(Some([450, 550]), method)), unguided);
        assert_eq!(frames(&n, within(Some([0, 999]), method)), full);
        let part = frames(&n, within(Some([300, 700]), method));
        assert_ne!(part, unguided, "{method:?}");
        assert_ne!(part, full, "{method:?}");
        // Before the interval (t 999 and 799) the run is the unguided one; inside it, it is not.
        assert_eq!(part[..2], unguided[..2], "{method:?}");
        assert_ne!(part[2], unguided[2], "{method:?}");
    }
    // The push is zero outside the interval and not inside it (t 599 and 400 are steps 3 and 4).
    let mut run = start(&n, within(Some([300, 700]), Method::Ddpm));
    let mut pushed = Vec::new();
    while let Some(f) = run.step() {
        let push = block_on(f.read()).unwrap().push;
        pushed.push(push.iter().any(|&v| v != 0.0));
    }
    assert_eq!(pushed, [false, false, true, true, false, false]);
    // The table-driven run reads s = 0 outside the interval from its table.
    let s = within(Some([300, 700]), Method::Ddpm);
    let want = frames(&n, s.clone());
    let (got, _) = table_driven_frames(&n, s);
    for (g, w) in got.iter().zip(&want) {
        let worst = g.iter().zip(w).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst <= 1e-6, "{worst}");
    }
    // Compared settings share one interval.
    let mut s = compare_settings(Method::Ddpm);
    s.per_sample[0].interval = Some([300, 700]);
    let (unet, classifier, device) = n.clone();
    let err = Sampler::new(unet, classifier, s, &device).err().unwrap();
    assert!(
        err.to_string().contains("share one guidance interval"),
        "{err}"
    );
}

#[test]
fn ddim_with_eta_zero_draws_no_noise_after_the_start() {
    // DDIM's path is a function of x_T alone: every frame is the deterministic DDIM step (eta = 0,
    // Song et al. 2021, Eq. 12) of the one before, computed here from x_T (the run's first draw)
    // with the same network and no noise; and the frames differ from DDPM's (which adds noise)
    // from the first step on. Checked by hand: with DDIM adding the seeded ancestral noise of the
    // DDPM step, the first frame is off by 3.5 (the old form of this test, two runs of one seed
    // agreeing, still passed).
    use guided_ddpm::noise::NoiseStreams;
    use guided_ddpm::schedule::Schedule;
    let n = nets();
    let s = settings(Mode::None, 0.0, Method::Ddim, 4);
    let ddim = frames(&n, s.clone());
    let (unet, _, device) = n.clone();
    let schedule = Schedule::respaced(s.schedule, s.steps).unwrap();
    let x_t = NoiseStreams::of(&s).next(&device);
    check_unguided_by_hand(
        Method::Ddim,
        &unet,
        &schedule,
        x_t,
        schedule.len() - 1,
        &ddim,
        None,
    );
    let ddpm = frames(&n, settings(Mode::None, 0.0, Method::Ddpm, 4));
    assert_ne!(ddim[0], ddpm[0]);
}

/// The sampler's DPM-Solver++(2M) is the paper's step: frame for frame the solver taken by hand
/// from x_T (`check_unguided_by_hand`), and not DDIM from the second step on (the first is
/// DDIM's: no x0 before it). Checked by hand: with the weight of the last x0 at h / h_last
/// instead of h / (2 h_last), the second frame is off.
#[test]
fn dpm_solver_takes_the_papers_second_order_step() {
    use guided_ddpm::noise::NoiseStreams;
    use guided_ddpm::schedule::Schedule;
    let n = nets();
    let s = settings(Mode::None, 0.0, Method::DpmSolver, 4);
    let dpm = frames(&n, s.clone());
    let (unet, _, device) = n.clone();
    let schedule = Schedule::respaced(s.schedule, s.steps).unwrap();
    let x_t = NoiseStreams::of(&s).next(&device);
    check_unguided_by_hand(
        Method::DpmSolver,
        &unet,
        &schedule,
        x_t,
        schedule.len() - 1,
        &dpm,
        None,
    );
    let ddim = frames(&n, settings(Mode::None, 0.0, Method::Ddim, 4));
    assert_eq!(dpm[0], ddim[0]);
    assert_ne!(dpm[1], ddim[1]);
}

/// The SDE form of the solver is its paper's step too, with the run's own noise: frame for frame
/// the step taken by hand (`check_unguided_by_hand`), DDPM's at the first step (no x0 before it)
/// and not from the second on. Checked by hand: with the noise scaled by sigma_{t-1} (1 -
/// e^{-2h}) instead of its square root, the first frame is off.
#[test]
fn the_sde_solver_is_ddpm_with_the_extrapolated_x0() {
    use guided_ddpm::noise::NoiseStreams;
    use guided_ddpm::schedule::Schedule;
    let n = nets();
    let s = settings(Mode::None, 0.0, Method::DpmSde, 4);
    let sde = frames(&n, s.clone());
    let (unet, _, device) = n.clone();
    let schedule = Schedule::respaced(s.schedule, s.steps).unwrap();
    let mut noise = NoiseStreams::of(&s);
    let x_t = noise.next(&device);
    let last = schedule.len() - 1;
    check_unguided_by_hand(
        Method::DpmSde,
        &unet,
        &schedule,
        x_t,
        last,
        &sde,
        Some(noise),
    );
    let ddpm = frames(&n, settings(Mode::None, 0.0, Method::Ddpm, 4));
    assert_eq!(sde[0], ddpm[0]);
    assert_ne!(sde[1], ddpm[1]);
}

#[test]
fn frames_count_steps_and_carry_the_class_probability() {
    let (unet, classifier, device) = nets();
    let mut sampler = Sampler::new(
        unet,
        classifier,
        settings(Mode::Classifier, 1.0, Method::Ddpm, 0),
        &device,
    )
    .unwrap();
    let mut seen = Vec::new();
    while let Some(f) = sampler.step() {
        let p = p_of(&f);
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|&v| v > 0.0 && v <= 1.0));
        assert_eq!(f.x0.dims(), [2, 1, 28, 28]);
        seen.push((f.step, f.total, f.t));
        // The one-transfer readback the page uses hands back the same three arrays.
        let x_t = f.x_t.clone().try_into_vec_as::<f32>().unwrap();
        let x0 = f.x0.clone().try_into_vec_as::<f32>().unwrap();
        let data = block_on(f.read()).unwrap();
        assert_eq!((data.x_t, data.x0, data.p), (x_t, x0, p));
    }
    assert_eq!(seen.first(), Some(&(1, 6, 999)));
    assert_eq!(seen.last(), Some(&(6, 6, 0)));
    assert!(sampler.is_done());
}

#[test]
fn an_observer_can_cancel_between_steps() {
    let (unet, classifier, device) = nets();
    let mut count = 0;
    let out = Sampler::new(
        unet,
        classifier,
        settings(Mode::None, 0.0, Method::Ddpm, 0),
        &device,
    )
    .unwrap()
    .run(|_| {
        count += 1;
        if count == 2 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    assert!(out.is_none());
    assert_eq!(count, 2);
}

#[test]
fn bad_settings_are_rejected_with_a_sentence() {
    let cases: Vec<(SampleSettings, &str)> = vec![
        (
            SampleSettings {
                classes: vec![10],
                ..settings(Mode::None, 0.0, Method::Ddpm, 0)
            },
            "digit from 0 to 9",
        ),
        (
            SampleSettings {
                steps: 0,
                ..settings(Mode::None, 0.0, Method::Ddpm, 0)
            },
            "steps must be between",
        ),
        (
            SampleSettings {
                steps: 1001,
                ..settings(Mode::None, 0.0, Method::Ddpm, 0)
            },
            "steps must be between",
        ),
        (
            SampleSettings {
                classes: vec![],
                ..settings(Mode::None, 0.0, Method::Ddpm, 0)
            },
            "number of samples",
        ),
        (
            settings(Mode::Classifier, -1.0, Method::Ddpm, 0),
            "classifier scale",
        ),
        (
            SampleSettings {
                per_sample: vec![Guidance::new(Mode::Classifier, 1.0, 0.0)],
                ..settings(Mode::None, 0.0, Method::Ddpm, 0)
            },
            "one setting per sample: 1 settings for 2 samples",
        ),
        (
            SampleSettings {
                per_sample: vec![
                    settings(Mode::None, 0.0, Method::Ddpm, 0).guidance,
                    Guidance::new(Mode::Free, 0.0, f64::NAN),
                ],
                ..settings(Mode::None, 0.0, Method::Ddpm, 0)
            },
            "classifier-free scale",
        ),
        (
            settings(Mode::Classifier, f64::INFINITY, Method::Ddpm, 0),
            "classifier scale",
        ),
        (
            SampleSettings {
                guidance: Guidance {
                    grad: Grad::Norm,
                    ..Guidance::new(Mode::Classifier, 2.0, 0.0)
                },
                ..settings(Mode::None, 0.0, Method::Ddpm, 0)
            },
            "must be at most 1 (with the normalised gradient, s = 1 pushes as hard as the model itself",
        ),
        (
            SampleSettings {
                per_sample: vec![
                    Guidance::new(Mode::Classifier, 1.0, 0.0),
                    Guidance {
                        grad: Grad::X0,
                        ..Guidance::new(Mode::Classifier, 1.0, 0.0)
                    },
                ],
                ..settings(Mode::None, 0.0, Method::Ddpm, 0)
            },
            "one form of the classifier's gradient",
        ),
    ];
    assert_refused(&nets(), cases);
}

#[test]
fn network_output_shapes() {
    let (unet, classifier, device) = nets();
    let x = Tensor::<4>::zeros([3, 1, 28, 28], &device);
    let eps = unet.forward(
        x.clone(),
        t_tensor(&[0, 500, 999], &device),
        label_tensor(&[0, 5, 10], &device),
    );
    assert_eq!(eps.dims(), [3, 1, 28, 28]);
    let ad = device.autodiff();
    let logits = classifier.forward(x.clone().autodiff(), t_tensor(&[0, 1, 2], &ad));
    assert_eq!(logits.dims(), [3, 10]);
    assert_eq!(
        classifier
            .features(x.autodiff(), t_tensor(&[0, 1, 2], &ad))
            .dims(),
        [3, 16]
    );
    // The shipped sizes stay in the budget.
    let full = UNetConfig::new().init(&Device::flex()).num_params();
    assert!(
        (1_000_000..=3_000_000).contains(&full),
        "U-Net has {full} parameters"
    );
    let cls = ClassifierConfig::new().init(&Device::flex()).num_params();
    assert!(cls < 1_000_000, "classifier has {cls} parameters");
}
