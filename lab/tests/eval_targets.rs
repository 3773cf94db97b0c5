//! The targets EVAL.md checks, on a hand-made report.
#![cfg(not(target_family = "wasm"))]

use guided_ddpm::guidance::{Guidance, Mode, DEFAULT};
use guided_ddpm::settings::{Method, DEFAULT_METHOD, DEFAULT_PLACE, DEFAULT_STEPS};
use guided_ddpm_lab::fidelity::Ink;
use guided_ddpm_lab::realism::{Copying, RealismReference, RowRealism, TwoSample};
use guided_ddpm_lab::targets::{checks, front_pick, meeting_realism_targets, realism_checks};
use guided_ddpm_lab::{run_name, Report, SettingResult};

fn row(label: &str, guidance: Guidance, weights: &str, accuracy: f64, fd: f64) -> SettingResult {
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
fn named(label: &str) -> String {
    run_name(label, DEFAULT_METHOD, DEFAULT_STEPS)
}

fn g(mode: Mode, scale: f64, cfg_scale: f64) -> Guidance {
    Guidance::new(mode, scale, cfg_scale)
}

/// A setting of the default's own mode at other strengths (so the front rule, which prefers
/// settings that take the classifier's gradient, weighs it as it weighs the default).
fn kin(more: f64) -> Guidance {
    Guidance {
        scale: DEFAULT.scale + more,
        cfg_scale: DEFAULT.cfg_scale + more,
        ..DEFAULT
    }
}

fn report() -> Report {
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
fn front_check(r: &Report) -> guided_ddpm_lab::targets::Check {
    checks(r)
        .into_iter()
        .find(|c| c.what.starts_with("default is, of the rows"))
        .unwrap()
}

fn met(r: &Report, starts: &str) -> bool {
    let found: Vec<_> = checks(r)
        .into_iter()
        .filter(|c| c.what.starts_with(starts))
        .collect();
    assert_eq!(found.len(), 1, "one check starts with {starts:?}");
    found[0].met
}

#[test]
fn the_front_pick_is_the_lowest_fd_judged_at_99_percent() {
    let r = report();
    assert_eq!(front_pick(&r).unwrap().label, "kin");
    assert!(!met(&r, "default is, of the rows"));
    let mut r = report();
    r.settings[2].frechet = 0.15;
    assert_eq!(front_pick(&r).unwrap().label, "default");
    assert!(met(&r, "default is, of the rows"));
}

/// The default's row is the one finished as the demo finishes it (`DEFAULT_PLACE`); the int8
/// against float check holds the default as drawn to the float row, which is never finished.
#[test]
fn the_default_is_the_row_finished_as_the_demo_finishes_and_int8_is_checked_as_drawn() {
    let mut r = report();
    let judged = format!("default ({}): judged", named("default"));
    assert!(met(&r, &judged) && met(&r, "default: int8"));
    // As drawn, 1.5 points under the float weights: the int8 check fails, the default's own
    // judged accuracy (finished) is untouched.
    r.settings[5].accuracy = 0.981;
    assert!(!met(&r, "default: int8"));
    assert!(met(&r, &judged));
    // The rows swapped: the default's checks read the other row.
    let mut r = report();
    r.settings[3].placed = !DEFAULT_PLACE;
    r.settings[3].accuracy = 0.98;
    r.settings[5].placed = DEFAULT_PLACE;
    let judged = format!("default ({}): judged", named("default as drawn"));
    assert!(met(&r, &judged), "the judged check reads the finished row");
    assert!(
        !met(&r, "default: int8"),
        "the int8 check reads the row as drawn"
    );
}

/// A setting of lower FD that misses another of the default's targets (here, too much ink) is
/// not the pick, and the check says which and why.
#[test]
fn the_front_pick_meets_the_default_s_other_targets_too() {
    let mut r = report();
    r.settings[2].frechet = 0.15; // the default is the pick, as above
    let mut bold = row("both s=1 w=0", g(Mode::Both, 1.0, 0.0), "int8", 0.998, 0.13);
    bold.ink.mean = 0.1436; // +12.2% against 0.128
    r.settings.push(bold);
    assert_eq!(front_pick(&r).unwrap().label, "default");
    assert!(met(&r, "default is, of the rows"));
    let c = front_check(&r);
    assert_eq!(
        c.measured,
        format!(
            "picked: {} (FD 0.140); lower FD: {} (FD 0.130), outside a target: mean ink \
             against the held-out digits': 0.144 against 0.128 (+12.2%)",
            named("default"),
            named("both s=1 w=0")
        )
    );
    // A classifier-free row of lower FD that meets every target is passed by for that.
    let mut free = row("free w=0.5", g(Mode::Free, 0.0, 0.5), "int8", 0.995, 0.12);
    free.ink.mean = 0.130;
    r.settings.push(free);
    assert_eq!(front_pick(&r).unwrap().label, "default");
    assert!(front_check(&r).measured.ends_with(&format!(
        "lower FD: {} (FD 0.120), takes no classifier gradient",
        named("free w=0.5")
    )));
    r.settings.pop();
    // Within the ink bound it is the pick, and the default no longer meets the check.
    r.settings.last_mut().unwrap().ink.mean = 0.139;
    assert_eq!(front_pick(&r).unwrap().label, "both s=1 w=0");
    assert!(!met(&r, "default is, of the rows"));
    // And so is a precision or recall too far from the real digits'.
    r.settings.last_mut().unwrap().recall = 0.79;
    assert_eq!(front_pick(&r).unwrap().label, "default");
    // With none meeting them, the check says so.
    for x in &mut r.settings {
        x.accuracy = 0.9;
    }
    assert!(front_pick(&r).is_none());
    assert!(!met(&r, "default is, of the rows"));
}

#[test]
fn each_target_against_its_bound() {
    let mut r = report();
    // FD 0.14 against the same-N floor 0.1: 1.4x, under 1.5x; unguided 0.29 against the random
    // floor 0.1: 2.9x, under 3x.
    assert!(met(&r, "default: FD"));
    assert!(met(&r, "unguided: FD"));
    // Ink 0.139 against 0.128 is +8.6%; precision 0.05 off, recall 0.05 off.
    assert!(met(&r, "default: mean ink"));
    assert!(met(&r, "default: precision"));
    assert!(met(&r, "default: recall"));
    // int8 100% against float 99.6%: 0.4 points.
    assert!(met(&r, "default: int8"));
    let judged = format!("default ({}): judged", named("default"));
    assert!(met(&r, &judged));

    // Each FD target has its own floor.
    r.real_vs_real_same_n_frechet = 0.09; // the default at 1.56x
    assert!(!met(&r, "default: FD"));
    assert!(met(&r, "unguided: FD"));
    r.real_vs_real_random_frechet = vec![0.09, 0.09]; // unguided at 3.2x
    assert!(!met(&r, "unguided: FD"));
    r.settings[3].ink.mean = 0.143; // +11.7%
    assert!(!met(&r, "default: mean ink"));
    // The bound holds both ways: digits too thin miss it as digits too bold do.
    r.settings[3].ink.mean = 0.113; // -11.7%
    assert!(!met(&r, "default: mean ink"));
    r.settings[3].ink.mean = 0.117; // -8.6%
    assert!(met(&r, "default: mean ink"));
    r.settings[3].recall = 0.79; // 0.11 under 0.90
    assert!(!met(&r, "default: recall"));
    r.settings[4].accuracy = 0.994; // 0.6 points
    assert!(!met(&r, "default: int8"));
    r.settings[3].accuracy = 0.985;
    assert!(!met(&r, &judged));
}

#[test]
fn fd_targets_wait_for_their_floors() {
    let mut r = report();
    r.real_vs_real_same_n_frechet = 0.0;
    let whats: Vec<String> = checks(&r).into_iter().map(|c| c.what).collect();
    assert!(
        !whats.iter().any(|w| w.starts_with("default: FD")),
        "{whats:?}"
    );
    assert!(whats.iter().any(|w| w.starts_with("unguided: FD")));
    assert!(whats.iter().any(|w| w.starts_with("default: mean ink")));
    // The unguided target waits for its own floor, the random draws.
    r.real_vs_real_random_frechet.clear();
    let whats: Vec<String> = checks(&r).into_iter().map(|c| c.what).collect();
    assert!(whats.iter().all(|w| !w.contains("FD /")), "{whats:?}");
}

/// The ink check is held to the held-out digits' ink; the train digits' ink is shown beside it for
/// scale, never as the bound, and only once a report records it.
#[test]
fn the_ink_check_shows_the_train_digits_but_holds_to_the_held_out_ones() {
    let ink_check = |r: &Report| {
        checks(r)
            .into_iter()
            .find(|c| c.what.starts_with("default: mean ink"))
            .unwrap()
    };
    let mut r = report();
    r.settings[3].ink.mean = 0.1412; // +10.3% against 0.128: shown to a tenth, not "+10%"
    let c = ink_check(&r);
    assert_eq!(c.measured, "0.141 against 0.128 (+10.3%)");
    assert!(!c.met);
    r.train_ink = Ink {
        mean: 0.1323,
        stroke: 0.134,
    };
    let c = ink_check(&r);
    assert_eq!(
        c.measured,
        "0.141 against 0.128 (+10.3%); the train digits, classes weighted equally: 0.132 (+3.4%)"
    );
    // Within 10% of the train digits' ink, but the bound is the held-out digits'.
    assert!(!c.met);
}

/// This is a classifier-guidance demo: a setting that takes the classifier's gradient and meets
/// every row target is the pick over a classifier-free one of lower FD, and the classifier check
/// holds the default's FD to the best classifier-free setting's plus one standard deviation of FD
/// between draws of real digits.
#[test]
fn the_front_pick_takes_the_classifier_gradient_where_one_meets_the_targets() {
    use guided_ddpm_lab::targets::{best_without_classifier, classifier_check};
    let mut r = Report {
        settings: vec![
            row("free w=0.25", g(Mode::Free, 0.0, 0.25), "int8", 0.99, 0.12),
            row("free w=0.5", g(Mode::Free, 0.0, 0.5), "int8", 1.0, 0.14),
        ],
        ..report()
    };
    assert_eq!(front_pick(&r).unwrap().label, "free w=0.25");
    let mut guided = row(
        "both s=0.5 w=0",
        g(Mode::Both, 0.5, 0.0),
        "int8",
        0.995,
        0.145,
    );
    r.settings.push(guided.clone());
    // Its FD 0.145 is above both classifier-free settings', yet it is the pick.
    assert_eq!(front_pick(&r).unwrap().label, "both s=0.5 w=0");
    let free = best_without_classifier(&r, &guided).unwrap().clone();
    assert_eq!(free.label, "free w=0.25");
    // Only rows of the same sampler and steps count: a classifier-free row of more steps and
    // lower FD is not the yardstick.
    let mut longer = free.clone();
    (longer.steps, longer.frechet) = (4 * guided.steps, 0.05);
    r.settings.push(longer);
    assert_eq!(
        best_without_classifier(&r, &guided).unwrap().frechet,
        free.frechet
    );
    r.settings.pop();
    // Held to the best classifier-free FD (0.12) plus the spread of real draws (sd 0.002).
    r.real_vs_real_same_n_draws = vec![0.100, 0.102, 0.104];
    guided.frechet = 0.1215;
    let c = classifier_check(&r, &guided);
    assert!(c.met, "{c:?}");
    guided.frechet = 0.1225;
    assert!(!classifier_check(&r, &guided).met);
    // A classifier-free default never meets it, however low its FD.
    let mut plain = free.clone();
    plain.frechet = 0.01;
    assert!(!classifier_check(&r, &plain).met);
    // Too much ink: no classifier setting meets the targets, and the pick falls back to the
    // lowest FD of those that do.
    r.settings.last_mut().unwrap().ink.mean = 0.15;
    assert_eq!(front_pick(&r).unwrap().label, "free w=0.25");
}

/// Every setting the evaluation lists reads back from its label (what `eval --only` and the
/// reports use), and a label that is not a setting's is refused.
#[test]
fn every_evaluated_setting_reads_back_from_its_label() {
    for (label, g, _) in guided_ddpm_lab::settings() {
        assert_eq!(Guidance::from_label(&label).unwrap(), g, "{label}");
    }
    for bad in [
        "both s=1",
        "free w=x",
        "classifier s=2 t=9-3",
        "both s=1 w=0 q=2",
        "all",
    ] {
        assert!(Guidance::from_label(bad).is_err(), "{bad}");
    }
    assert_eq!(
        Guidance::from_label("both s=1 w=0 t=500-999")
            .unwrap()
            .interval,
        Some([500, 999])
    );
}

/// Of the rows that meet the default's targets, the one of fewest steps is the pick, even at a
/// higher FD; a row of fewer steps that misses a target is passed by, and one of more steps and
/// lower FD is not named as ruled out.
#[test]
fn the_front_pick_takes_the_fewest_steps_that_meet_the_targets() {
    let mut r = report();
    r.settings[2].frechet = 0.15; // the default's row is the pick, as above
    let few = DEFAULT_STEPS / 4;
    let mut quick = row("default", DEFAULT, "int8", 0.995, 0.145);
    (quick.method, quick.steps) = (Method::DpmSolver, few);
    r.settings.push(quick);
    let pick = front_pick(&r).unwrap();
    assert_eq!((pick.method, pick.steps), (Method::DpmSolver, few));
    assert!(!met(&r, "default is, of the rows"));
    let c = front_check(&r);
    assert_eq!(
        c.measured,
        format!("picked: default · dpm {few} (FD 0.145)")
    );
    // Judged below 99%, the fewer steps are passed by.
    r.settings.last_mut().unwrap().accuracy = 0.98;
    assert_eq!(front_pick(&r).unwrap().steps, DEFAULT_STEPS);
    assert!(met(&r, "default is, of the rows"));
}

/// `x` with a two-sample test accuracy and a copy share (the other realism measures zero).
fn with_realism(mut x: SettingResult, two_sample: f64, copy_share: f64) -> SettingResult {
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

fn realism_reference() -> RealismReference {
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
fn spread_reference() -> RealismReference {
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

fn label_of(r: &Report) -> String {
    front_pick(r).unwrap().label.clone()
}

#[test]
fn the_front_pick_ranks_by_the_two_sample_test_once_rows_have_it_and_refuses_copying() {
    let mut r = report();
    // By FD alone, "kin" (0.12) is ahead of the default (0.14).
    assert_eq!(label_of(&r), "kin");
    r.realism_reference = Some(realism_reference());
    let at = |r: &Report, label: &str| r.settings.iter().position(|x| x.label == label).unwrap();
    let (kin, default) = (at(&r, "kin"), at(&r, "default"));
    r.settings[kin] = with_realism(r.settings[kin].clone(), 0.70, 0.0);
    r.settings[default] = with_realism(r.settings[default].clone(), 0.62, 0.004);
    // The discriminator tells the default's digits from real ones less often: it is the pick,
    // and the front check says what it was ranked by.
    assert_eq!(label_of(&r), "default");
    let front = front_check(&r);
    assert!(front.met, "{front:?}");
    assert!(front.what.contains("two-sample"), "{}", front.what);
    assert!(front.measured.contains("62.0%"), "{}", front.measured);
    // A row judged below 99% is no candidate, however real its digits look.
    let weaker = at(&r, "weaker");
    r.settings[weaker] = with_realism(r.settings[weaker].clone(), 0.55, 0.0);
    assert_eq!(label_of(&r), "default");
    // A row that comes nearer the train digits than the held-out digits do is refused: the
    // default copying 3% (held-out: 1%) loses to "kin", and its own copy target fails.
    r.settings[default] = with_realism(r.settings[default].clone(), 0.62, 0.03);
    assert_eq!(label_of(&r), "kin");
    assert!(!met(&r, "default: copy share"));
    r.settings[default] = with_realism(r.settings[default].clone(), 0.62, 0.01);
    assert!(met(&r, "default: copy share"));
    // Within one sd of the difference of two binomial shares of the held-out digits' 1%, one
    // of the row's 500 samples and one of the 1,000 held-out digits (0.545 points), a share is
    // noise: 1.5% passes, 1.6% is copying.
    r.settings[default] = with_realism(r.settings[default].clone(), 0.62, 0.015);
    assert!(met(&r, "default: copy share"));
    assert_eq!(label_of(&r), "default");
    r.settings[default] = with_realism(r.settings[default].clone(), 0.62, 0.016);
    assert!(!met(&r, "default: copy share"));
    assert_eq!(label_of(&r), "kin");
    // Rows within one sd of the difference of two draws are tied, and FD breaks the tie: with
    // real draws at 52% and 56% (sd 2.83 points, so 4 points for a difference), the default at
    // 62% and "kin" at 65.5% are tied and "kin" has the lower FD; at 66.5% it is behind.
    r.settings[default] = with_realism(r.settings[default].clone(), 0.62, 0.0);
    r.settings[kin] = with_realism(r.settings[kin].clone(), 0.655, 0.0);
    assert_eq!(label_of(&r), "default", "no spread: 62% beats 65.5%");
    r.realism_reference = Some(spread_reference());
    assert_eq!(label_of(&r), "kin", "tied within the spread, lower FD");
    r.settings[kin] = with_realism(r.settings[kin].clone(), 0.665, 0.0);
    assert_eq!(
        label_of(&r),
        "default",
        "4.5 points behind is past the spread"
    );
    r.realism_reference = Some(realism_reference());
    // A lever's row (here the default centred, far ahead on the test) is neither picked nor
    // named as a row the rule passed by: the demo does not draw it.
    let mut centred = with_realism(r.settings[default].clone(), 0.55, 0.0);
    centred.centred = true;
    centred.label = "default centred".into();
    r.settings.push(centred);
    assert_eq!(label_of(&r), "default");
    let front = front_check(&r);
    assert!(!front.measured.contains("centred"), "{}", front.measured);
    r.settings.pop();
    // A row without the test is not ranked among rows that have it.
    r.settings[kin].realism = None;
    r.settings[default] = with_realism(r.settings[default].clone(), 0.80, 0.0);
    assert_eq!(label_of(&r), "default");
}

/// The front rule picks among the rows that meet every realism target where some do, though a
/// row that misses one is told from real digits less often; where none does, it ranks the rows
/// that meet the row targets. Checked by hand: with `front_pick`'s realism tier removed, the
/// first assertion names "kin".
#[test]
fn the_front_pick_prefers_rows_that_meet_every_realism_target() {
    let mut r = report();
    r.realism_reference = Some(realism_reference());
    let at = |r: &Report, label: &str| r.settings.iter().position(|x| x.label == label).unwrap();
    let (kin, default) = (at(&r, "kin"), at(&r, "default"));
    // "kin" is judged 99.0%, under the realism targets' 99.5%, and is told from real digits
    // less often (56%) than the default (59%), which meets every realism target: ink +3.1%,
    // black 80% against 81%, no copying.
    r.settings[kin] = with_realism(r.settings[kin].clone(), 0.56, 0.0);
    r.settings[kin].realism.as_mut().unwrap().black = 0.80;
    let mut d = with_realism(r.settings[default].clone(), 0.59, 0.0);
    d.realism.as_mut().unwrap().black = 0.80;
    d.ink.mean = 0.132;
    r.settings[default] = d;
    assert_eq!(meeting_realism_targets(&r).len(), 1);
    assert_eq!(label_of(&r), "default");
    // With the default's ink at +8.6% no row meets them all, and the lower two-sample wins.
    r.settings[default].ink.mean = 0.139;
    assert!(meeting_realism_targets(&r).is_empty());
    assert_eq!(label_of(&r), "kin");
}

#[test]
fn the_realism_targets_hold_the_default_to_issue_43s_bounds() {
    let mut r = report();
    r.realism_reference = Some(realism_reference());
    let at = r
        .settings
        .iter()
        .position(|x| x.label == "default")
        .unwrap();
    let mut d = with_realism(r.settings[at].clone(), 0.61, 0.0);
    d.realism.as_mut().unwrap().black = 0.70;
    r.settings[at] = d;
    let aims = realism_checks(&r);
    let find = |starts: &str| {
        aims.iter()
            .find(|c| c.what.starts_with(starts))
            .unwrap_or_else(|| panic!("no aim starts with {starts:?}: {aims:?}"))
            .clone()
    };
    // 61% is over the 60% bound; judged 100% meets 99.5%; ink +8.6% is outside 5%; black 70%
    // is 11 points under the held-out digits' 81%.
    assert!(!find("default (").met);
    assert!(find("default: judged").met);
    assert!(!find("default: mean ink").met);
    assert!(!find("default: exactly black").met);
    assert!(find("default: copy share").met);
    let mut d = r.settings[at].clone();
    d.realism.as_mut().unwrap().two_sample.folds = vec![0.6; 5];
    d.realism.as_mut().unwrap().black = 0.72;
    r.settings[at] = d;
    let aims = realism_checks(&r);
    assert!(
        aims.iter()
            .find(|c| c.what.starts_with("default ("))
            .unwrap()
            .met
    );
    assert!(
        aims.iter()
            .find(|c| c.what.starts_with("default: exactly"))
            .unwrap()
            .met
    );
    assert!(
        !aims
            .iter()
            .find(|c| c.what.starts_with("moonshot"))
            .unwrap()
            .met
    );
    // The default still has ink +8.6%: no row meets every realism target. With ink +3.1% it
    // does, and it is the only row listed (the others have no realism measured); the moonshot
    // (55%) is not required.
    let names = |r: &Report| -> Vec<String> {
        meeting_realism_targets(r)
            .iter()
            .map(|x| x.label.clone())
            .collect()
    };
    assert!(names(&r).is_empty());
    r.settings[at].ink.mean = 0.132;
    assert_eq!(names(&r), ["default"]);
    // No reference, no realism targets.
    r.realism_reference = None;
    assert!(realism_checks(&r).is_empty());
    assert!(names(&r).is_empty());
}

/// EVAL.md's verdict on autoguidance: each autoguided row against the same row without the
/// guide, finished alike; "earns no place" unless one is ahead by more than the test's noise.
#[test]
fn autoguidance_earns_a_place_only_ahead_of_its_twin_by_more_than_the_noise() {
    use guided_ddpm_lab::report::autoguidance_verdict;
    let mut r = report();
    r.realism_reference = Some(realism_reference());
    assert_eq!(
        autoguidance_verdict(&r),
        "",
        "no autoguided row, no verdict"
    );
    let at = r
        .settings
        .iter()
        .position(|x| x.label == "default")
        .unwrap();
    r.settings[at] = with_realism(r.settings[at].clone(), 0.62, 0.0);
    let mut ag = with_realism(r.settings[at].clone(), 0.61, 0.0);
    ag.autoguide = Some(1.5);
    ag.label = "default ag=1.5".into();
    r.settings.push(ag);
    // One reference draw: no spread, so any lower accuracy is ahead.
    let v = autoguidance_verdict(&r);
    assert!(v.contains("61.0% against 62.0% without it"), "{v}");
    assert!(v.contains("Some autoguided row is ahead"), "{v}");
    // With real draws at 52% and 56% (4 points of noise between two rows), 1 point is not.
    r.realism_reference = Some(spread_reference());
    let v = autoguidance_verdict(&r);
    assert!(v.contains("earns no place"), "{v}");
    // A twin finished otherwise is no twin.
    r.settings.last_mut().unwrap().placed = !DEFAULT_PLACE;
    assert_eq!(autoguidance_verdict(&r), "");
}
