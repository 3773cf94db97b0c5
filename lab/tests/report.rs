//! The committed evaluation (docs/eval.json) against the shipped weights and the demo's default,
//! and the lab's command line.

use std::path::PathBuf;
use std::process::Command;

/// A path in the repository (the tests run in lab/).
fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// The default run (the page's and the CLI's guidance, sampler and steps) is the front rule's
/// pick on the committed evaluation of these very weights (`targets::front_pick`: of the rows
/// that take the classifier's gradient and meet every target, realism's among them, the fewest
/// steps, then the lowest two-sample accuracy, ties broken by FD), it was measured at 50 per
/// class with int8 and float weights, and every target EVAL.md checks is met, issue 43's
/// realism targets among them (the moonshot aside). Checked by hand: with DEFAULT set back to
/// `both s=0.75 w=0` (which misses the realism targets' judged accuracy and ink) this fails,
/// naming `both s=16 w=0 g=x0 placed` as the pick; with DEFAULT_STEPS back at 100 it fails too.
#[test]
fn the_default_guidance_is_the_front_rules_pick_and_meets_every_target() {
    use guided_ddpm::guidance::DEFAULT;
    use guided_ddpm_lab::targets::{checks, front_pick};
    use guided_ddpm_lab::Report;
    let m = guided_ddpm::weights::read_manifest(&repo("weights")).expect("weights/manifest.json");
    let text =
        std::fs::read_to_string(repo("docs/eval.json")).expect("docs/eval.json is committed");
    let report: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(
        report.unet_sha256, m.unet.sha256,
        "docs/eval.json judged other weights than the shipped U-Net: run `guided-ddpm-lab eval`"
    );
    use guided_ddpm::settings::{DEFAULT_METHOD, DEFAULT_PLACE, DEFAULT_STEPS};
    let pick = front_pick(&report).expect("a setting meets the default's targets");
    assert_eq!(
        (pick.guidance, pick.method, pick.steps, pick.placed),
        (DEFAULT, DEFAULT_METHOD, DEFAULT_STEPS, DEFAULT_PLACE),
        "the front rule picks {} on docs/eval.json, the default is {}",
        pick.name(),
        guided_ddpm_lab::run_name(&DEFAULT.label(), DEFAULT_METHOD, DEFAULT_STEPS)
    );
    assert!(pick.n_per_class >= 50, "{pick:?}");
    let float = report
        .settings
        .iter()
        .find(|r| guided_ddpm_lab::targets::is_default_drawing(r) && r.weights != "int8");
    assert!(
        float.is_some(),
        "no float evaluation of the default {}: run `guided-ddpm-lab eval`",
        DEFAULT.label()
    );
    let held = guided_ddpm_lab::targets::realism_checks(&report);
    assert!(
        !held.is_empty(),
        "the default has no realism measures: run `guided-ddpm-lab eval`"
    );
    let missed: Vec<String> = checks(&report)
        .into_iter()
        .chain(
            held.into_iter()
                .filter(|c| !guided_ddpm_lab::targets::is_moonshot(c)),
        )
        .filter(|c| !c.met)
        .map(|c| format!("{}: {} (bound {})", c.what, c.measured, c.bound))
        .collect();
    assert!(missed.is_empty(), "targets missed: {missed:#?}");
}

/// `guided-ddpm-lab` with `args`: its exit code and standard error.
fn lab(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_guided-ddpm-lab"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_input_gets_one_line_and_exit_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["eval", "--n-per-class", "0"],
            "--n-per-class must be from 1 to 750, got 0",
        ),
        (
            &["eval", "--steps", "0"],
            "--steps must be from 1 to 1000, got 0",
        ),
        (
            &["curve", "--n-per-class", "0"],
            "--n-per-class must be from 1 to 750, got 0",
        ),
        (
            &["curve", "--setting", "both s=3 w=1"],
            "--setting \"both s=3 w=1\" is neither \"default\" nor one of eval's settings: none, classifier s=0.5",
        ),
        (
            &["curve", "--dir", "/nonexistent-run"],
            "reading /nonexistent-run/unet-state.json",
        ),
    ];
    for (args, msg) in cases {
        let (code, stderr) = lab(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(msg), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{stderr}"
        );
    }
}

/// The FD-against-steps rows are the only record of past measurements: a damaged file is an
/// error naming the line, and is left as it was.
#[test]
fn curve_refuses_a_damaged_rows_file_and_keeps_it() {
    let dir = std::env::temp_dir().join(format!("guided-ddpm-curve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("training-eval.csv");
    let damaged = "run,step\ncheckpoints/run,12,oops\n";
    std::fs::write(&csv, damaged).unwrap();
    let out = dir.to_str().unwrap();
    let (code, stderr) = lab(&["curve", "--report-only", "--out", out]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("training-eval.csv line 2 is not a row"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), damaged);
    assert!(!dir.join("EVAL.md").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
