//! What the lab's target tests share: a report of a few rows around the demo's default, and the
//! realism measures a row or the real digits' reference may carry.

#![allow(dead_code)]

use guided_ddpm::guidance::{Guidance, Mode, DEFAULT};
use guided_ddpm::settings::{DEFAULT_METHOD, DEFAULT_PLACE, DEFAULT_STEPS};
use guided_ddpm_lab::fidelity::Ink;
use guided_ddpm_lab::realism::{Copying, RealismReference, RowRealism, TwoSample};
use guided_ddpm_lab::targets::{checks, front_pick};
use guided_ddpm_lab::{run_name, Report, SettingResult};

pub fn row(
    label: &str,
    guidance: Guidance,
    weights: &str,
    accuracy: f64,
    fd: f64,
) -> SettingResult {
    SettingResult {
        label: label.into(),
        guidance,
        weights: weights.into(),
        n_per_class: 50,
        method: DEFAULT_METHOD,
        steps: DEFAULT_STEPS,
        accuracy_per_class: vec![accuracy; 10],
        accuracy,
        frechet: fd,
        precision: 0.90,
        recall: 0.85,
        ink: Ink {
            mean: 0.139,
            stroke: 0.14,
        },
        judged_share: vec![0.1; 10],
        seconds: 1.0,
        realism: None,
        autoguide: None,
        autoguide_by: String::new(),
        centred: false,
        placed: DEFAULT_PLACE,
    }
}

/// A row's name at the default's sampler and steps, as the checks write it.
pub fn named(label: &str) -> String {
    run_name(label, DEFAULT_METHOD, DEFAULT_STEPS)
}

pub fn g(mode: Mode, scale: f64, cfg_scale: f64) -> Guidance {
    Guidance::new(mode, scale, cfg_scale)
}

/// A setting of the default's own mode at other strengths (so the front rule, which prefers
/// settings that take the classifier's gradient, weighs it as it weighs the default).
pub fn kin(more: f64) -> Guidance {
    Guidance {
        scale: DEFAULT.scale + more,
        cfg_scale: DEFAULT.cfg_scale + more,
        ..DEFAULT
    }
}

pub fn report() -> Report {
    Report {
        real_vs_real_same_n_frechet: 0.1,
        // The unguided floor: mean 0.1 of real digits drawn at random.
        real_vs_real_random_frechet: vec![0.08, 0.1, 0.12],
        real_vs_real_precision_recall: [0.95, 0.90],
        held_out_ink: Ink {
            mean: 0.128,
            stroke: 0.13,
        },
        settings: vec![
            row("none", g(Mode::None, 0.0, 0.0), "int8", 0.1, 0.29),
            // The lowest FD of all, but judged below 99%: not a candidate.
            row("weaker", kin(0.1), "int8", 0.98, 0.08),
            row("kin", kin(0.25), "int8", 0.99, 0.12),
            row("default", DEFAULT, "int8", 1.0, 0.14),
            // Float rows never count for the front. They are drawn as the network draws, and
            // the int8 check holds them against the default drawn so (the last row).
            SettingResult {
                placed: false,
                ..row("default (float)", DEFAULT, "float EMA", 0.996, 0.11)
            },
            SettingResult {
                placed: !DEFAULT_PLACE,
                ..row("default as drawn", DEFAULT, "int8", 1.0, 0.145)
            },
        ],
        ..Report::default()
    }
}

/// The check that the default is the front rule's pick.
pub fn front_check(r: &Report) -> guided_ddpm_lab::targets::Check {
    checks(r)
        .into_iter()
        .find(|c| c.what.starts_with("default is, of the rows"))
        .unwrap()
}

pub fn met(r: &Report, starts: &str) -> bool {
    let found: Vec<_> = checks(r)
        .into_iter()
        .filter(|c| c.what.starts_with(starts))
        .collect();
    assert_eq!(found.len(), 1, "one check starts with {starts:?}");
    found[0].met
}

/// `x` with a two-sample test accuracy and a copy share (the other realism measures zero).
pub fn with_realism(mut x: SettingResult, two_sample: f64, copy_share: f64) -> SettingResult {
    x.realism = Some(RowRealism {
        two_sample: TwoSample {
            folds: vec![two_sample; 5],
        },
        copying: Copying {
            share: copy_share,
            median: 6.0,
        },
        ..RowRealism::default()
    });
    x
}

pub fn realism_reference() -> RealismReference {
    RealismReference {
        n_per_class: 50,
        two_sample: vec![TwoSample {
            folds: vec![0.52; 5],
        }],
        held_copying: Copying {
            share: 0.01,
            median: 5.0,
        },
        copy_threshold: 4.0,
        held_black: 0.81,
        ..RealismReference::default()
    }
}

/// The reference with two draws of real digits, at 52% and 56%: a spread of 2.83 points, so
/// 4 points of noise between two rows.
pub fn spread_reference() -> RealismReference {
    RealismReference {
        two_sample: vec![
            TwoSample {
                folds: vec![0.52; 5],
            },
            TwoSample {
                folds: vec![0.56; 5],
            },
        ],
        ..realism_reference()
    }
}

pub fn label_of(r: &Report) -> String {
    front_pick(r).unwrap().label.clone()
}
