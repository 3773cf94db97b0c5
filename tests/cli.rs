//! The command line as a user runs it: exit codes, one-line errors, and the smoke-test outputs.

use std::process::Command;

fn cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_guided-ddpm"))
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
            &["sample", "--class", "12", "--random-init"],
            "the class must be a digit from 0 to 9, got 12",
        ),
        (
            &["sample", "--class", "3", "--steps", "0", "--random-init"],
            "steps must be between 1 and 1000, got 0",
        ),
        (
            &["sample", "--class", "3", "--steps", "1001", "--random-init"],
            "steps must be between 1 and 1000, got 1001",
        ),
        (
            &["sample", "--class", "3", "--scale", "-1", "--random-init"],
            "the classifier scale must be a finite number >= 0, got -1",
        ),
        (
            &[
                "sample",
                "--class",
                "3",
                "--cfg-scale",
                "inf",
                "--random-init",
            ],
            "the classifier-free scale must be a finite number >= 0",
        ),
        (
            &["sample", "--class", "3", "--scale", "1e30", "--random-init"],
            "the classifier scale must be at most 100 (s = 8 already draws the boldest digits of the sweep, ink +37%; docs/EVAL.md), got 1000000000000000000000000000000",
        ),
        (
            &["sample", "--class", "3", "--cfg-scale", "1e300", "--random-init"],
            "the classifier-free scale must be at most 20",
        ),
        (
            &[
                "sample",
                "--class",
                "3",
                "--grad",
                "norm",
                "--scale",
                "2",
                "--random-init",
            ],
            "the classifier scale must be at most 1 (with the normalised gradient, s = 1 pushes as hard as the model itself; docs/EVAL.md), got 2",
        ),
        (
            &["sample", "--class", "3", "--n", "0", "--random-init"],
            "the number of samples must be between 1 and 256, got 0",
        ),
        (
            &["sample", "--class", "3", "--weights", "/nonexistent-folder"],
            "cannot read /nonexistent-folder/manifest.json",
        ),
        // Checked before anything is allocated for it (this aborted on the allocation before).
        (
            &[
                "sample",
                "--class",
                "3",
                "--n",
                "100000000000",
                "--random-init",
            ],
            "the number of samples must be between 1 and 256, got 100000000000",
        ),
        // Training flags are checked before the data is read or a network is built (these
        // panicked inside std or burn before).
        (
            &[
                "train",
                "unet",
                "--steps",
                "1",
                "--checkpoint-minutes",
                "-1",
            ],
            "--checkpoint-minutes must be a positive number of minutes, got -1",
        ),
        (
            &[
                "train",
                "unet",
                "--steps",
                "1",
                "--checkpoint-minutes",
                "nan",
            ],
            "--checkpoint-minutes must be a positive number of minutes, got NaN",
        ),
        (
            &["train", "unet", "--steps", "1", "--batch", "0"],
            "--batch must be between 1 and 1024, got 0",
        ),
        (
            &["train", "classifier", "--steps", "1", "--lr", "nan"],
            "--lr must be a learning rate above 0 and at most 1, got NaN",
        ),
        (
            &["train", "judge", "--steps", "1", "--ema-decay", "1"],
            "--ema-decay must be at least 0 and below 1, got 1",
        ),
        (
            &["train", "unet", "--steps", "1", "--shards", "0"],
            "--shards must be between 1 and the batch size (64), got 0",
        ),
        (
            &["train", "unet", "--steps", "1", "--batch", "4", "--shards", "8"],
            "--shards must be between 1 and the batch size (4), got 8",
        ),
        (
            &["train", "unet", "--steps", "1", "--p-uncond", "1.5"],
            "--p-uncond must be a probability from 0 to 1, got 1.5",
        ),
        (
            &["train", "classifier", "--steps", "1", "--p-uncond", "0.3"],
            "--p-uncond is the U-Net's label dropout; the classifier has none",
        ),
        (
            &["bench", "--batches", "0"],
            "the number of samples must be between 1 and 256, got 0",
        ),
        (
            &["bench", "--matmul", "0"],
            "--matmul must be from 1 to 8192, got 0",
        ),
        (
            &["bench", "--train-steps", "0"],
            "--train-steps must be at least 1, got 0",
        ),
        (
            &["bench", "--train-batches", "64,0"],
            "--train-batches must list sizes from 1 to 1024, got [64, 0]",
        ),
    ];
    for (args, msg) in cases {
        let (code, stderr) = cli(args);
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

#[test]
fn random_init_smoke_run_writes_a_png_and_an_npz() {
    let dir = std::env::temp_dir().join(format!("guided-ddpm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (png, npz) = (dir.join("x.png"), dir.join("x.npz"));
    let (code, stderr) = cli(&[
        "sample",
        "--random-init",
        "--class",
        "3",
        "--n",
        "4",
        "--steps",
        "5",
        "--png",
        png.to_str().unwrap(),
        "--npz",
        npz.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let png_bytes = std::fs::read(&png).unwrap();
    assert_eq!(&png_bytes[..8], b"\x89PNG\r\n\x1a\n");
    // Read back: the images, their shape and the asked class.
    let guided_ddpm::npz::Samples {
        images,
        shape,
        labels,
    } = guided_ddpm::npz::read_samples(&npz).unwrap();
    assert_eq!(shape, [4, 28, 28]);
    assert_eq!(labels, [3; 4]);
    assert_eq!(images.len(), 4 * 28 * 28);
    assert!(
        images.iter().any(|&v| v != images[0]),
        "the images are one flat grey"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A run from noise is finished as MNIST's digits were unless `--as-drawn` asks otherwise
/// (`SampleSettings::place`): the same digits (every pixel above the haze level, the same
/// values), with no faint haze left and each digit's centre of mass within half a pixel of
/// MNIST's. Checked by hand: with the CLI's `place` forced off, the first assertion on haze
/// fails; with `digit::placed` centring nothing, the centre's.
#[test]
fn a_run_from_noise_is_placed_as_mnist_digits_unless_asked_as_drawn() {
    use guided_ddpm::digit::{mass_centre, HAZE_LEVEL, MASS_CENTRE};
    let dir = std::env::temp_dir().join(format!("guided-ddpm-place-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let draw = |name: &str, extra: &[&str]| {
        let path = dir.join(name);
        let args = [
            &["sample", "--class", "2", "--n", "4", "--seed", "5"][..],
            extra,
            &["--npz", path.to_str().unwrap()],
        ]
        .concat();
        let (code, stderr) = cli(&args);
        assert_eq!(code, 0, "{stderr}");
        guided_ddpm::npz::read_samples(&path).unwrap().images
    };
    let placed = draw("placed.npz", &[]);
    let drawn = draw("drawn.npz", &["--as-drawn"]);
    let haze = |d: &[u8]| d.iter().filter(|&&b| (1..=HAZE_LEVEL).contains(&b)).count();
    assert!(
        haze(&drawn) > 100,
        "the digits as drawn have haze: {}",
        haze(&drawn)
    );
    for (p, d) in placed.chunks(784).zip(drawn.chunks(784)) {
        assert_eq!(haze(p), 0, "haze left in a placed digit");
        let ink = |d: &[u8]| {
            let mut v: Vec<u8> = d.iter().copied().filter(|&b| b > HAZE_LEVEL).collect();
            v.sort();
            v
        };
        assert_eq!(
            ink(p),
            ink(d),
            "the placed digit's strokes are the drawn one's"
        );
        let grey: Vec<f32> = p.iter().map(|&b| f32::from(b) / 255.0).collect();
        let (r, c) = mass_centre(&grey, 0.0).unwrap();
        assert!(
            (r - MASS_CENTRE.0).abs() <= 0.5 && (c - MASS_CENTRE.1).abs() <= 0.5,
            "centre of mass ({r:.2}, {c:.2})"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Width and height from a PNG's header.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// `sample --compare scales` with the shipped weights: five settings from the same noise in one
/// row, each with its final p(class), which rises with s (within 0.02; from seed 0 at 25 steps
/// the weights of step 26,089 gave 0.000, 0.000, 0.896, 0.995, 0.998, and the first weights
/// 0.993 at s = 4 and 0.987 at s = 8); the push picture has a row per sample
/// and a column per pictured step. `--compare` with `--n` is refused.
#[test]
fn compare_draws_one_sample_per_setting_and_p_rises_with_s() {
    let dir = std::env::temp_dir().join(format!("guided-ddpm-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (png, push) = (dir.join("compare.png"), dir.join("push.png"));
    let out = Command::new(env!("CARGO_BIN_EXE_guided-ddpm"))
        .args([
            "sample",
            "--class",
            "7",
            "--compare",
            "scales",
            "--steps",
            "25",
        ])
        .args([
            "--png",
            png.to_str().unwrap(),
            "--push-png",
            push.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: Vec<f32> = stdout
        .lines()
        .map(|l| l.rsplit("= ").next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        stdout.lines().next().unwrap().split("  ").next(),
        Some("classifier s=0")
    );
    assert_eq!(p.len(), 5, "{stdout}");
    assert!(
        p.windows(2).all(|w| w[1] > w[0] - 0.02),
        "p(7) does not rise with s: {p:?}"
    );
    assert!(p[0] < 0.5 && p[4] > 0.9, "{p:?}");
    // 5 digits of 28 + 2 px gaps in one row, zoomed 4x; pushes: 6 steps x 5 samples, zoomed 3x.
    assert_eq!(png_size(&std::fs::read(&png).unwrap()), (608, 128));
    assert_eq!(png_size(&std::fs::read(&push).unwrap()), (546, 456));
    std::fs::remove_dir_all(&dir).ok();
    let (code, stderr) = cli(&["sample", "--class", "7", "--compare", "modes", "--n", "3"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

/// `sample --init PNG --mask PNG`: inpainting with the shipped weights keeps the kept pixels of
/// the image in the written samples; bad edit input gets one line.
#[test]
fn init_and_mask_edit_an_image_and_keep_its_pixels() {
    use guided_ddpm::grid;
    let dir = std::env::temp_dir().join(format!("guided-ddpm-edit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str| dir.join(name).to_str().unwrap().to_string();
    // A vertical bar (a stroke of a 1), kept; the rest free.
    let bar: Vec<u8> = (0..28 * 28)
        .map(|i| {
            if (13..16).contains(&(i % 28)) && (5..23).contains(&(i / 28)) {
                255
            } else {
                0
            }
        })
        .collect();
    grid::write_png(std::path::Path::new(&file("init.png")), 28, 28, &bar, 1).unwrap();
    grid::write_png(std::path::Path::new(&file("mask.png")), 28, 28, &bar, 1).unwrap();
    grid::write_png(
        std::path::Path::new(&file("big.png")),
        28,
        14,
        &bar[..392],
        2,
    )
    .unwrap();
    grid::write_png(
        std::path::Path::new(&file("blank.png")),
        40,
        30,
        &[90; 1200],
        1,
    )
    .unwrap();
    let (code, stderr) = cli(&[
        "sample",
        "--class",
        "4",
        "--n",
        "2",
        "--steps",
        "10",
        "--init",
        &file("init.png"),
        "--mask",
        &file("mask.png"),
        "--png",
        &file("out.png"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    // The grid: 2-pixel gaps, zoomed 4x; sample k's pixel (r, c) at ((2 + r) 4, (2 + k 30 + c) 4).
    let (w, _, px) = grid::read_png(std::path::Path::new(&file("out.png"))).unwrap();
    let mut free_ink = 0;
    for k in 0..2 {
        for (i, &v) in bar.iter().enumerate() {
            let (r, c) = (i / 28, i % 28);
            let got = px[(2 + r) * 4 * w + (2 + k * 30 + c) * 4];
            match v {
                255 => assert_eq!(got, 255, "sample {k}: kept pixel ({r}, {c}) changed"),
                _ => free_ink += (got > 128) as usize,
            }
        }
    }
    assert!(
        free_ink > 10,
        "the model drew nothing beside the bar ({free_ink} pixels)"
    );
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["--init".into(), file("blank.png")],
            "has no ink".into(),
        ),
        (
            vec![
                "--init".into(),
                file("big.png"),
                "--mask".into(),
                file("blank.png"),
            ],
            "the mask must be the size of the image it masks (56 x 28), or 28 x 28; got 40 x 30"
                .into(),
        ),
        (
            vec![
                "--init".into(),
                file("init.png"),
                "--strength".into(),
                "2".into(),
            ],
            "the edit strength must be from 0 to 1, got 2".into(),
        ),
        (
            vec!["--init".into(), file("missing.png")],
            format!("reading {}", file("missing.png")),
        ),
        (
            vec!["--mask".into(), file("mask.png")],
            "--init <INIT>".into(),
        ),
    ];
    for (args, msg) in &cases {
        let mut all = vec!["sample", "--class", "4", "--steps", "5"];
        all.extend(args.iter().map(String::as_str));
        let (code, stderr) = cli(&all);
        assert_eq!(code, 2, "{all:?}: {stderr}");
        assert!(stderr.contains(msg.as_str()), "{all:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `sample` without strengths runs the demo's default; a mode the user picks starts from the
/// default's strengths, so `--guidance classifier` alone steers (it was s = 0, unguided, when the
/// default took no classifier gradient), and a form of the gradient picked starts from its own s
/// (`Grad::start_scale`: the forms' scales differ a thousandfold). Checked by hand: with the
/// command line reading s from DEFAULT alone, `--grad xt` ran at s = 16.
#[test]
fn sample_starts_from_the_default_and_a_picked_mode_steers() {
    use guided_ddpm::guidance::{starting, Grad, Guidance, Mode, DEFAULT, STARTING};
    let png = std::env::temp_dir().join(format!("guided-ddpm-start-{}.png", std::process::id()));
    let run = |extra: &[&str]| {
        let mut args = vec!["sample", "--class", "3", "--n", "1", "--steps", "2"];
        args.extend_from_slice(&["--png", png.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let (code, err) = cli(&args);
        assert_eq!(code, 0, "{err}");
        err
    };
    assert!(run(&[]).contains(&format!("({})", DEFAULT.label())));
    let classifier = Guidance {
        mode: Mode::Classifier,
        ..STARTING
    };
    const { assert!(STARTING.scale > 0.0) };
    assert!(run(&["--guidance", "classifier"]).contains(&format!("({})", classifier.label())));
    let xt = starting(Grad::Xt);
    assert_eq!((xt.grad, xt.scale), (Grad::Xt, 0.75));
    assert!(run(&["--grad", "xt"]).contains(&format!("({})", xt.label())));
    std::fs::remove_file(&png).ok();
}

/// `sample --init` takes the command line's own `--png` output (a 112 x 112 grid of one sample)
/// and any photo-like image, made a 28 x 28 digit as MNIST's were (src/digit.rs): an edit at low
/// strength of a written 3 keeps most of its strokes. It refused anything but 28 x 28 before.
#[test]
fn init_takes_the_command_line_s_own_png_and_keeps_its_strokes() {
    use guided_ddpm::digit::{Fit, Ink};
    use guided_ddpm::grid;
    let dir = std::env::temp_dir().join(format!("guided-ddpm-init-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let base = ["sample", "--class", "3", "--n", "1", "--steps", "8"];
    let (code, stderr) = cli(&[&base[..], &["--png", &file("three.png")]].concat());
    assert_eq!(code, 0, "{stderr}");
    let (w, h, px) = grid::read_png(std::path::Path::new(&file("three.png"))).unwrap();
    assert!(w > 28 && h > 28, "the grid is zoomed: {w} x {h}");
    let prepared = Fit::of(w, h, &px, Ink::Auto).unwrap().image(&px);
    let args = [
        "--init",
        &file("three.png"),
        "--strength",
        "0.25",
        "--npz",
        &file("edit.npz"),
    ];
    let (code, stderr) = cli(&[&base[..], &args].concat());
    assert_eq!(code, 0, "{stderr}");
    let edited = guided_ddpm::npz::read_samples(std::path::Path::new(&file("edit.npz")))
        .unwrap()
        .images;
    let strokes: Vec<usize> = (0..28 * 28).filter(|&i| prepared[i] > 128).collect();
    let kept = strokes.iter().filter(|&&i| edited[i] > 128).count();
    assert!(
        strokes.len() > 30 && kept * 10 >= strokes.len() * 6,
        "{kept} of {} stroke pixels kept",
        strokes.len()
    );
    std::fs::remove_dir_all(&dir).ok();
}
