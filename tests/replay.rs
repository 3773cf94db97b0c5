//! The table-driven run (src/replay.rs) against the sampler on small random networks: the same frames for one setting, a batch split in parts, a comparison, every form of the gradient.

mod common;

use std::ops::ControlFlow;

use burn::tensor::{Device, Tensor};
use guided_ddpm::guidance::{Grad, Guidance, Mode};
use guided_ddpm::nn::{Classifier, UNet};
use guided_ddpm::settings::{Method, SampleSettings};

use common::sampling::{compare_settings, frames, p_of, settings, start, table_driven_frames};
use common::small_nets as nets;

/// The table-driven run (src/replay.rs: per-step numbers, noise and timestep embeddings read
/// from per-run tables by a device-side index, x and the index updated in place) gives the
/// plain sampler's frames from the same seed, in every mode and for both samplers. flex records
/// no graphs, so here it runs every step eagerly (the same code a WebGPU recording captures; the
/// wasm test `replayed_steps_on_webgpu_match_the_plain_sampler` checks the replays themselves).
#[test]
fn the_table_driven_run_gives_the_samplers_frames() {
    let n = nets();
    for method in Method::ALL {
        for mode in [Mode::None, Mode::Classifier, Mode::Free, Mode::Both] {
            let s = settings(mode, 2.0, method, 42);
            let want = frames(&n, s.clone());
            let (got, run) = table_driven_frames(&n, s);
            assert!(run.is_done() && !run.is_replaying());
            assert!(run.eager_reason().is_some());
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let worst = g.iter().zip(w).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(worst <= 1e-6, "{method:?} {mode:?} step {}: {worst}", i + 1);
            }
        }
    }
}

/// Each image draws its noise from its own stream, so a batch split into parts (as the page
/// splits one across workers) gives the same images as the whole batch, to float rounding, in
/// every mode and for both samplers.
#[test]
fn a_batch_split_in_parts_gives_the_same_images_as_the_whole() {
    let n = nets();
    let last = |s: SampleSettings| frames(&n, s).pop().unwrap();
    for method in Method::ALL {
        for mode in [Mode::None, Mode::Classifier, Mode::Free, Mode::Both] {
            let whole = SampleSettings {
                classes: vec![1, 7, 3],
                ..settings(mode, 2.0, method, 11)
            };
            let head = SampleSettings {
                classes: vec![1],
                ..whole.clone()
            };
            let tail = SampleSettings {
                classes: vec![7, 3],
                first_image: 1,
                ..whole.clone()
            };
            let parts = [last(head), last(tail)].concat();
            let whole = last(whole);
            assert_eq!(parts.len(), whole.len());
            let worst = parts
                .iter()
                .zip(&whole)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                worst < 1e-4,
                "{method:?} {mode:?}: parts differ from the whole by {worst}"
            );
        }
    }
    // Where the streams start matters: the same classes from another first image differ.
    let moved = SampleSettings {
        first_image: 5,
        ..settings(Mode::None, 0.0, Method::Ddpm, 11)
    };
    assert_ne!(
        last(moved),
        last(settings(Mode::None, 0.0, Method::Ddpm, 11))
    );
}

/// A comparison (one batched run, a guidance setting per sample, every sample on the same noise)
/// gives each sample what a one-sample run of its setting gives from the same stream, to float
/// rounding: every frame's x_t, p(class) and the classifier's shift, for both samplers. With
/// the per-sample factors swapped (`cond` and `uncond` of `BatchGuidance`) this failed.
#[test]
fn a_comparison_gives_each_sample_its_own_runs_frames() {
    let n = nets();
    let run = |s: SampleSettings| {
        let mut out = Vec::new();
        start(&n, s).run(|f| {
            let v = |t: Tensor<4>| t.try_into_vec_as::<f32>().unwrap();
            out.push((v(f.x_t.clone()), p_of(f), f.push.clone().map(v)));
            ControlFlow::Continue(())
        });
        out
    };
    let px = 28 * 28;
    // Every sampler with the paper's gradient; the solver with the other forms too (the
    // normalised form sizes each sample's gradient by its own eps).
    let forms = Method::ALL.into_iter().map(|m| (m, Grad::Xt)).chain([
        (Method::DpmSolver, Grad::Norm),
        (Method::DpmSolver, Grad::X0),
    ]);
    for (method, grad) in forms {
        let mut compare = compare_settings(method);
        for g in &mut compare.per_sample {
            *g = with_form(*g, grad);
        }
        let batched = run(compare.clone());
        for (i, g) in compare.per_sample.iter().enumerate() {
            let alone = run(SampleSettings {
                classes: vec![7],
                guidance: *g,
                per_sample: Vec::new(),
                same_noise: false,
                ..compare.clone()
            });
            assert_eq!(alone.len(), batched.len());
            for (step, ((x, p, push), (bx, bp, bpush))) in alone.iter().zip(&batched).enumerate() {
                let worst = |a: &[f32], b: &[f32]| {
                    assert_eq!(a.len(), b.len());
                    a.iter().zip(b).fold(0f32, |m, (a, b)| m.max((a - b).abs()))
                };
                let tile = |v: &[f32], len: usize| v[i * len..(i + 1) * len].to_vec();
                let what = format!(
                    "{method:?} {grad:?} {:?} s={} step {}",
                    g.mode,
                    g.scale,
                    step + 1
                );
                assert!(worst(x, &tile(bx, px)) < 1e-4, "x_t of {what}");
                assert!(worst(p, &tile(bp, 1)) < 1e-4, "p of {what}");
                let bpush = tile(bpush.as_ref().expect("the batch uses the classifier"), px);
                match push {
                    Some(push) => assert!(worst(push, &bpush) < 1e-5, "push of {what}"),
                    None => assert!(bpush.iter().all(|&v| v == 0.0), "push of {what}"),
                }
            }
        }
    }
}

/// Per-sample settings that are all equal run exactly as the one setting does (the scalar path),
/// and the table-driven run gives the sampler's frames for a comparison too.
#[test]
fn equal_per_sample_settings_are_the_plain_run_and_replay_agrees() {
    let n = nets();
    let plain = settings(Mode::Both, 2.0, Method::Ddpm, 5);
    let same = SampleSettings {
        per_sample: vec![plain.guidance; plain.classes.len()],
        ..plain.clone()
    };
    assert_eq!(frames(&n, same), frames(&n, plain));
    for method in Method::ALL {
        assert_table_driven_is_plain(&n, compare_settings(method), &format!("{method:?}"));
    }
}

/// The table-driven run (src/replay.rs) of `s` gives the sampler's frames, to 1e-6.
fn assert_table_driven_is_plain(n: &(UNet, Classifier, Device), s: SampleSettings, what: &str) {
    let want = frames(n, s.clone());
    let (got, _) = table_driven_frames(n, s);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        let worst = g.iter().zip(w).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst <= 1e-6, "{what}: {worst}");
    }
}

/// `g` with its classifier's gradient in `form`; s divided by 20 for the normalised form, whose s
/// is a ratio to the model's own push (at most 1).
fn with_form(g: Guidance, form: Grad) -> Guidance {
    Guidance {
        grad: form,
        scale: match form {
            Grad::Norm => g.scale / 20.0,
            Grad::Xt | Grad::X0 => g.scale,
        },
        ..g
    }
}

/// The normalised and x0 forms of the classifier's gradient change the run (each draws other
/// images than the paper's gradient at the same s) and run the same through the table-driven
/// step as through the sampler, for every sampler and for a comparison of modes.
#[test]
fn every_form_of_the_gradient_runs_the_same_replayed_and_plain() {
    let n = nets();
    for method in Method::ALL {
        let paper = frames(&n, settings(Mode::Both, 2.0, method, 9));
        for grad in [Grad::Norm, Grad::X0] {
            let mut s = settings(Mode::Both, 2.0, method, 9);
            s.guidance = with_form(s.guidance, grad);
            let want = frames(&n, s.clone());
            let last = want.len() - 1;
            let apart = want[last]
                .iter()
                .zip(&paper[last])
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                apart > 1e-3,
                "{method:?} {grad:?}: the same images as the paper's gradient ({apart})"
            );
            let mut compare = compare_settings(method);
            for g in &mut compare.per_sample {
                *g = with_form(*g, grad);
            }
            for s in [s, compare] {
                assert_table_driven_is_plain(&n, s, &format!("{method:?} {grad:?}"));
            }
        }
    }
}
