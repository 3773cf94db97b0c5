//! Pinned schedule numbers. The references come from an independent float64 implementation of
//! the same formulas (DDPM Eq. 4 and 7; Nichol & Dhariwal Eq. 17) in plain Python.

use guided_ddpm::schedule::{BetaSchedule, Schedule, T};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 + 1e-9 * b.abs()
}

#[test]
fn alphas_cumprod_and_posterior_variance_are_pinned() {
    let cases = [
        (
            BetaSchedule::Linear,
            [
                (0, 0.9999, 0.0),
                (1, 0.9997800920720721, 5.4531876613021935e-05),
                (499, 0.07858724288177821, 0.01003135541461369),
                (999, 4.0358297653756754e-05, 0.01999998352656061),
            ],
        ),
        (
            BetaSchedule::Cosine,
            [
                (0, 0.999958715775178, 0.0),
                (1, 0.9999125759273678, 2.178949614569182e-05),
                (499, 0.4938435904406382, 0.003136199904057811),
                (999, 2.4287669070348567e-09, 0.9989975760881921),
            ],
        ),
    ];
    for (kind, rows) in cases {
        let s = Schedule::new(kind);
        assert_eq!(s.len(), T);
        for (t, abar, var) in rows {
            assert!(
                close(s.alphas_cumprod[t], abar),
                "{kind:?} abar[{t}] = {}",
                s.alphas_cumprod[t]
            );
            assert!(
                close(s.posterior_variance[t], var),
                "{kind:?} var[{t}] = {}",
                s.posterior_variance[t]
            );
        }
    }
}

#[test]
fn respacing_keeps_the_chosen_alphas_cumprod_exactly() {
    for kind in [BetaSchedule::Linear, BetaSchedule::Cosine] {
        let full = Schedule::new(kind);
        for steps in [1, 10, 25, 100, 250] {
            let s = Schedule::respaced(kind, steps).unwrap();
            assert_eq!(s.len(), steps);
            for (k, &t) in s.timesteps.iter().enumerate() {
                assert_eq!(
                    s.alphas_cumprod[k], full.alphas_cumprod[t],
                    "{kind:?} steps {steps} k {k}"
                );
            }
        }
    }
}

#[test]
fn respacing_maps_timesteps_evenly() {
    let s = Schedule::respaced(BetaSchedule::Linear, 10).unwrap();
    assert_eq!(
        s.timesteps,
        vec![0, 111, 222, 333, 444, 555, 666, 777, 888, 999]
    );
    // beta_k = 1 - abar_{S_k} / abar_{S_{k-1}}
    let full = Schedule::new(BetaSchedule::Linear);
    let expected = 1.0 - full.alphas_cumprod[111] / full.alphas_cumprod[0];
    assert!(close(s.betas[1], expected));
}

#[test]
fn impossible_step_counts_are_rejected() {
    for steps in [0, T + 1] {
        let err = Schedule::respaced(BetaSchedule::Linear, steps)
            .unwrap_err()
            .to_string();
        assert!(err.contains("steps must be between 1 and 1000"), "{err}");
    }
}
