//! The front rule and the targets on the realism measures (issue 43): ranking by the two-sample
//! test, refusing copying, the realism targets, and the verdict on autoguidance.

mod common;

use guided_ddpm::settings::DEFAULT_PLACE;
use guided_ddpm_lab::targets::{meeting_realism_targets, realism_checks};
use guided_ddpm_lab::Report;

use common::*;

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
