//! The classifier's push (the shift guidance applied at a step) on small random networks, for every sampler.

mod common;

use guided_ddpm::bench::native::block_on;
use guided_ddpm::guidance::{Guidance, Mode};
use guided_ddpm::settings::{Method, SampleSettings, Steer};

use common::sampling::{edit_settings, settings, start};
use common::small_nets as nets;

/// The push a frame reports is the step's whole guidance shift: from the same x_T and the same
/// noise, the first DDPM step's x_{T-1} under guidance minus the unguided one (s = 0) is the
/// pushed amount, pixel for pixel. Each frame also carries every class's p, summing to 1, whose
/// asked entry is the frame's p.
#[test]
fn the_push_is_the_shift_of_the_step_and_probs_cover_every_class() {
    let n = nets();
    let first = |mode: Mode, scale: f64| {
        let f = start(&n, settings(mode, scale, Method::Ddpm, 3))
            .step()
            .unwrap();
        block_on(f.read()).unwrap()
    };
    let (guided, unguided) = (first(Mode::Classifier, 6.0), first(Mode::Classifier, 0.0));
    assert_eq!(guided.push.len(), 2 * 28 * 28);
    let moved: Vec<f32> = guided
        .x_t
        .iter()
        .zip(&unguided.x_t)
        .map(|(a, b)| a - b)
        .collect();
    let worst = moved
        .iter()
        .zip(&guided.push)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    let largest = guided.push.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(largest > 1e-4, "the push is not zero: {largest}");
    assert!(worst < 1e-6, "x moved by the push, off by {worst}");
    assert!(unguided.push.iter().all(|&v| v == 0.0));
    for (i, (row, &p)) in guided.probs.chunks(10).zip(&guided.p).enumerate() {
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "sample {i}: probs sum to {sum}");
        let asked = [1, 7][i];
        assert!(
            (row[asked] - p).abs() < 1e-6,
            "sample {i}: {} vs {p}",
            row[asked]
        );
    }
    // A run without the classifier carries no push at all.
    assert!(first(Mode::Free, 0.0).push.is_empty());
}

/// Where the classifier's shift is taken off eps (DDIM, DPM-Solver++), the push a frame reports
/// is still what guidance moved x_{t-1} by (`StepCoefs::push`), not the shift of eps: from the
/// same start (an SDEdit start at t = 222, where most predicted x0 are not clipped), the first
/// step under guidance minus the unguided one is the push at every pixel whose x0 is inside
/// (-1, 1) in both. Checked by hand: with the shift of eps as the push, DDIM's is off by 0.024.
#[test]
fn the_push_is_what_guidance_moved_x_by_in_the_ode_samplers() {
    let n = nets();
    for method in [Method::Ddim, Method::DpmSolver] {
        let first = |scale: f64| {
            let s = SampleSettings {
                method,
                ..edit_settings(0.3, None)
            };
            let s = SampleSettings {
                guidance: Guidance::new(Mode::Classifier, scale, 0.0),
                ..s
            };
            let f = start(&n, s).step().unwrap();
            block_on(f.read()).unwrap()
        };
        let (guided, unguided) = (first(6.0), first(0.0));
        let inside = |v: f32| v.abs() < 0.999;
        let (mut worst, mut largest, mut counted) = (0f32, 0f32, 0);
        for i in 0..guided.x_t.len() {
            if inside(guided.x0[i]) && inside(unguided.x0[i]) {
                let moved = guided.x_t[i] - unguided.x_t[i];
                worst = worst.max((moved - guided.push[i]).abs());
                largest = largest.max(guided.push[i].abs());
                counted += 1;
            }
        }
        assert!(counted > 500, "{method:?}: {counted} pixels unclipped");
        assert!(
            largest > 1e-3,
            "{method:?}: the push is not zero: {largest}"
        );
        assert!(
            worst < 1e-5,
            "{method:?}: x moved by the push, off by {worst}"
        );
    }
}

/// After the first step, DPM-Solver++(2M) extrapolates from the last x0 with weight m, so the
/// guidance's shift of eps moves x_{t-1} by (1 + m) times what it moves the step's x0 term by:
/// from one state (two runs guided alike through step 1, one then steered to s = 0), the second
/// step's x_{t-1} differs by the guided frame's push, pixel for pixel. The push test above looks
/// at first steps only, where m = 0.
#[test]
fn the_push_after_the_first_multistep_step_is_what_guidance_moved_x_by() {
    let n = nets();
    let s = SampleSettings {
        classes: vec![1, 1],
        guidance: Guidance::new(Mode::Classifier, 6.0, 0.0),
        method: Method::DpmSolver,
        // 12 of 40 steps: the second is neither the first nor one of the last two, so m != 0.
        steps: 40,
        ..edit_settings(0.3, None)
    };
    let (mut guided, mut steered) = (start(&n, s.clone()), start(&n, s));
    let (a, b) = (guided.step().unwrap(), steered.step().unwrap());
    let (a, b) = (block_on(a.read()).unwrap(), block_on(b.read()).unwrap());
    assert_eq!(a.x_t, b.x_t, "the first steps are the same");
    steered
        .steer(&Steer {
            class: 1,
            guidance: Guidance::new(Mode::Classifier, 0.0, 0.0),
        })
        .unwrap();
    let g = block_on(guided.step().unwrap().read()).unwrap();
    let u = block_on(steered.step().unwrap().read()).unwrap();
    let inside = |v: f32| v.abs() < 0.999;
    let (mut worst, mut largest, mut counted) = (0f32, 0f32, 0);
    for i in 0..g.x_t.len() {
        if inside(g.x0[i]) && inside(u.x0[i]) {
            worst = worst.max((g.x_t[i] - u.x_t[i] - g.push[i]).abs());
            largest = largest.max(g.push[i].abs());
            counted += 1;
        }
    }
    assert!(counted > 500, "{counted} pixels unclipped");
    assert!(largest > 1e-3, "the push is not zero: {largest}");
    assert!(worst < 1e-5, "x moved by the push, off by {worst}");
}
