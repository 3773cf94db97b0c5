//! Steering a run on small random networks: the new class and guidance from the next step on.

mod common;

use burn::tensor::Device;
use guided_ddpm::bench::native::block_on;
use guided_ddpm::guidance::{Guidance, Mode};
use guided_ddpm::nn::{Classifier, UNet};
use guided_ddpm::sampler::Sampler;
use guided_ddpm::settings::{Method, SampleSettings, Steer};

use common::sampling::{compare_settings, frames, settings, start};
use common::small_nets as nets;

/// Every frame's x_t of a run of `s` steered by `steer` just before step `at` + 1 (after `at`
/// frames), on the plain sampler or the table-driven run (src/replay.rs; eager on flex).
fn steered_frames(
    nets: &(UNet, Classifier, Device),
    s: SampleSettings,
    at: usize,
    steer: &Steer,
    table_driven: bool,
) -> Vec<Vec<f32>> {
    let (unet, classifier, device) = nets.clone();
    let mut out = Vec::new();
    if table_driven {
        let mut run = guided_ddpm::replay::ReplayRun::new(unet, classifier, s, &device).unwrap();
        loop {
            if out.len() == at {
                run.steer(steer).unwrap();
            }
            let Some(step) = run.step().unwrap() else {
                break;
            };
            out.push(block_on(step.read()).unwrap().x_t);
        }
    } else {
        let mut run = Sampler::new(unet, classifier, s, &device).unwrap();
        loop {
            if out.len() == at {
                run.steer(steer).unwrap();
            }
            let Some(frame) = run.step() else {
                break;
            };
            out.push(frame.x_t.try_into_vec_as::<f32>().unwrap());
        }
    }
    out
}

/// Live steering (issue 32): a steer changes the class and guidance from the next step on and
/// nothing before it. Steered before the first step, a run is the run of the new settings from
/// the same seed, exactly; steered to its own settings it is unchanged; steered mid-run its
/// frames up to the steer are the unsteered run's and the later ones differ. The table-driven
/// run (what WebGPU records) steers to the same frames as the plain sampler, for every sampler.
/// A comparison is not steered: the steer is refused with a sentence and the run goes on.
#[test]
fn a_steer_changes_the_run_from_the_next_step_on() {
    let n = nets();
    let to = Steer {
        class: 4,
        guidance: Guidance {
            cfg_scale: 0.5,
            ..Guidance::new(Mode::Both, 1.0, 0.0)
        },
    };
    for method in Method::ALL {
        let s = settings(Mode::Classifier, 2.0, method, 11);
        let plain = frames(&n, s.clone());
        let new = SampleSettings {
            classes: vec![to.class; s.classes.len()],
            guidance: to.guidance,
            ..s.clone()
        };
        assert!(
            steered_frames(&n, s.clone(), 0, &to, false) == frames(&n, new),
            "{method:?}: steered before the first step, not the new settings' run"
        );
        let own = Steer {
            class: 1,
            guidance: s.guidance,
        };
        let one_class = SampleSettings {
            classes: vec![1; 2],
            ..s.clone()
        };
        assert!(
            steered_frames(&n, one_class.clone(), 3, &own, false) == frames(&n, one_class),
            "{method:?}: steered to its own settings, the run changed"
        );
        let steered = steered_frames(&n, s.clone(), 3, &to, false);
        assert!(
            steered[..3] == plain[..3],
            "{method:?}: a frame before the steer changed"
        );
        assert!(
            (3..plain.len()).all(|i| steered[i] != plain[i]),
            "{method:?}: a frame after the steer is the unsteered run's"
        );
        let table = steered_frames(&n, s, 3, &to, true);
        for (i, (g, w)) in table.iter().zip(&steered).enumerate() {
            let worst = g.iter().zip(w).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                worst <= 1e-6,
                "{method:?} table-driven step {}: {worst}",
                i + 1
            );
        }
    }
    let mut compare = start(&n, compare_settings(Method::Ddpm));
    let err = compare.steer(&to).unwrap_err().to_string();
    assert!(err.contains("comparison cannot be steered"), "{err}");
    let refused: Vec<Vec<f32>> = std::iter::from_fn(|| compare.step())
        .map(|f| f.x_t.try_into_vec_as::<f32>().unwrap())
        .collect();
    assert!(
        refused == frames(&n, compare_settings(Method::Ddpm)),
        "a refused steer changed the comparison"
    );
}
