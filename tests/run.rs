//! The run as the page drives it (src/run.rs), natively on the CPU: each run's token, the steer
//! that waits for a run's next step, and a cancel. The wasm tests run the same code through
//! `Demo` in the browser (tests/web.rs).

mod common;

use std::cell::RefCell;

use guided_ddpm::bench::native::block_on;
use guided_ddpm::guidance::{Guidance, Mode};
use guided_ddpm::run::{Nets, Run, Runs};
use guided_ddpm::schedule::BetaSchedule;
use guided_ddpm::settings::{Method, SampleSettings, Steer};

fn nets() -> (Nets, burn::tensor::Device) {
    let (unet, classifier, device) = common::small_nets();
    let nets = Nets {
        unet,
        classifier,
        schedule: BetaSchedule::Linear,
    };
    (nets, device)
}

/// Four DDPM steps of one 7, classifier-guided.
fn settings() -> SampleSettings {
    SampleSettings::new(
        vec![7],
        Guidance::new(Mode::Classifier, 2.0, 0.0),
        4,
        Method::Ddpm,
        3,
        BetaSchedule::Linear,
    )
}

/// The steps of run `token` left, by their numbers.
fn steps(runs: &RefCell<Runs>, token: u32) -> Vec<usize> {
    let mut out = Vec::new();
    while let Some(done) = block_on(Runs::step(runs, token)).unwrap() {
        out.push(done.step);
    }
    out
}

/// Every start and cancel makes a new token: a run steps to its end and no further, a cancelled
/// run and a replaced one step nothing, and a new run starts at its own step 1. Checked by hand:
/// without `Runs::step`'s token check first, the replaced run's token stepped the newest run to
/// its end, which then had no step left. (A cancel or a replacement that lands while a step
/// awaits the GPU is the wasm tests': natively a readback is done before anything can land.)
#[test]
fn each_run_has_its_token_and_a_stale_token_steps_nothing() {
    let (nets, device) = nets();
    let runs = RefCell::new(Runs::default());
    let new = || Run::new(&nets, settings(), &device, false).unwrap();
    let first = runs.borrow_mut().start(new());
    assert_eq!(steps(&runs, first), [1, 2, 3, 4]);
    let run = runs.borrow_mut().start(new());
    assert_ne!(run, first);
    assert_eq!(block_on(Runs::step(&runs, run)).unwrap().unwrap().step, 1);
    runs.borrow_mut().cancel();
    assert!(
        steps(&runs, run).is_empty(),
        "a cancelled run steps nothing"
    );
    let next = runs.borrow_mut().start(new());
    let newest = runs.borrow_mut().start(new());
    assert!(
        steps(&runs, next).is_empty(),
        "a replaced run steps nothing"
    );
    assert_eq!(steps(&runs, newest), [1, 2, 3, 4]);
}

/// A steer waits for the run's next step and takes effect there: the frame after it reports
/// p(new class). A steer of a run that is over is no error and changes nothing; an impossible
/// one (a class outside 0-9, or of a comparison) is a sentence, and the run goes on as it was.
/// Checked by hand: with the waiting steer left unapplied, the frame after it reported p(7).
#[test]
fn a_steer_takes_effect_at_the_next_step_and_an_impossible_one_is_refused() {
    let (nets, device) = nets();
    let runs = RefCell::new(Runs::default());
    let token = runs
        .borrow_mut()
        .start(Run::new(&nets, settings(), &device, false).unwrap());
    let first = block_on(Runs::step(&runs, token)).unwrap().unwrap();
    assert_eq!(first.data.p[0], first.data.probs[7]);
    let to = |class| Steer {
        class,
        guidance: Guidance::new(Mode::Classifier, 2.0, 0.0),
    };
    let err = runs.borrow_mut().steer(token, to(11)).unwrap_err();
    assert!(err.to_string().contains("0 to 9"), "{err}");
    runs.borrow_mut().steer(token, to(8)).unwrap();
    runs.borrow_mut()
        .steer(token.wrapping_sub(1), to(2))
        .unwrap();
    let steered = block_on(Runs::step(&runs, token)).unwrap().unwrap();
    assert_eq!(steered.step, 2);
    assert_eq!(
        steered.data.p[0], steered.data.probs[8],
        "p(8) after the steer"
    );
    // A comparison is not steered.
    let mut compare = settings();
    compare.classes = vec![7, 7];
    compare.per_sample = vec![
        Guidance::new(Mode::Classifier, 0.0, 0.0),
        Guidance::new(Mode::Classifier, 4.0, 0.0),
    ];
    compare.same_noise = true;
    let token = runs
        .borrow_mut()
        .start(Run::new(&nets, compare, &device, false).unwrap());
    let err = runs.borrow_mut().steer(token, to(8)).unwrap_err();
    assert_eq!(err.to_string(), guided_ddpm::settings::NOT_STEERABLE);
    assert_eq!(steps(&runs, token), [1, 2, 3, 4]);
}
