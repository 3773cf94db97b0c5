//! `guided-ddpm-lab probe`: what makes one setting's digits tell-tale (issue 43 point 2). It
//! draws eval's samples of the setting and runs the two-sample test (`realism`) on variants that
//! each take one difference away: the faint background haze zeroed in both sets (does the tell
//! live there?), the samples' own near-black pixels set to black (the output-clipping lever),
//! and per class; and it draws the samples the discriminator finds least and most real beside
//! the real digits it finds most real. Writes `probe.md` and `probe-extremes.png` in --out.

use std::fmt::Write as _;
use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::Device;
use rand::rngs::StdRng;
use rand::SeedableRng;

use guided_ddpm::guidance::Guidance;
use guided_ddpm::nn::NUM_CLASSES;
use guided_ddpm::sampler::Sampler;
use guided_ddpm::settings::{Method, DEFAULT_METHOD, DEFAULT_STEPS};
use guided_ddpm::{grid, weights, Error};

use crate::judge::{batch_settings, PER_BATCH};
use crate::realism::{black_share, stratified, two_sample_scored, unit_pixels, TwoSample};

#[derive(clap::Args)]
pub struct ProbeOptions {
    /// The setting, as eval labels it ("both s=0.75 w=0"); the demo's default by default.
    #[arg(long, default_value_t = guided_ddpm::guidance::DEFAULT.label())]
    pub label: String,
    #[arg(long, value_enum, default_value_t = DEFAULT_METHOD)]
    pub method: Method,
    #[arg(long, default_value_t = DEFAULT_STEPS)]
    pub steps: usize,
    /// Samples of each class (at most the 100 held-out digits of a class).
    #[arg(long, default_value_t = 50)]
    pub n_per_class: usize,
    /// Autoguidance by this training run's U-Net (its float EMA) at --autoguide-w.
    #[arg(long)]
    pub autoguide: Option<PathBuf>,
    #[arg(long, default_value_t = 1.5)]
    pub autoguide_w: f64,
    #[arg(long, default_value = "weights")]
    pub weights: PathBuf,
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Where probe.md and probe-extremes.png go.
    #[arg(long, default_value = "docs/realism")]
    pub out: PathBuf,
}

/// Grey levels at or below which a pixel is taken as background haze.
const HAZE: [u8; 3] = [8, 16, 30];

/// Each digit's centre of mass (row, column) in pixels, digits in [0, 1] (blanks left out).
fn centres(px: &[f32]) -> Vec<(f64, f64)> {
    px.chunks(784)
        .filter_map(|d| guided_ddpm::digit::mass_centre(d, 0.0))
        .collect()
}

/// Mean and standard deviation of each coordinate of `v`.
fn spread(v: &[(f64, f64)]) -> [(f64, f64); 2] {
    let n = v.len().max(1) as f64;
    let pick = |f: fn(&(f64, f64)) -> f64| {
        let mean = v.iter().map(f).sum::<f64>() / n;
        let sd = (v.iter().map(|p| (f(p) - mean).powi(2)).sum::<f64>() / n).sqrt();
        (mean, sd)
    };
    [pick(|p| p.0), pick(|p| p.1)]
}

/// Each digit of `px` (in [0, 1]) moved by whole pixels so its centre of mass lands nearest
/// `at` (as MNIST's digits were centred), what is moved past an edge dropped.
fn recentred(px: &[f32], at: (f64, f64)) -> Vec<f32> {
    px.chunks(784)
        .flat_map(|d| guided_ddpm::digit::moved_to(d, 0.0, at))
        .collect()
}

/// `px` with every pixel at or below `level / 255` set to 0.
fn floored(px: &[f32], level: u8) -> Vec<f32> {
    let at = f32::from(level) / 255.0 + 1e-6;
    px.iter().map(|&p| if p <= at { 0.0 } else { p }).collect()
}

fn row(what: &str, t: &TwoSample, black: Option<f64>) -> String {
    format!(
        "| {what} | {:.1}% | {:.1} | {} |\n",
        100.0 * t.accuracy(),
        100.0 * t.fold_sd(),
        black.map_or("–".into(), |b| format!("{:.1}%", 100.0 * b))
    )
}

pub fn run(opts: &ProbeOptions) -> Result<String, Error> {
    let per_class = opts.n_per_class;
    if !(1..=guided_ddpm::data::HELD_OUT_PER_CLASS).contains(&per_class) {
        return Err(Error::Setting(format!(
            "--n-per-class must be from 1 to {}, got {per_class}",
            guided_ddpm::data::HELD_OUT_PER_CLASS
        )));
    }
    let guidance = Guidance::from_label(&opts.label)?;
    let device = Device::flex();
    let (manifest, unet, classifier) = weights::load_dir(&opts.weights, &device)?;
    let classifier = classifier.to_device(&device.clone().autodiff()).freeze();
    let guide = match &opts.autoguide {
        Some(dir) => Some(guided_ddpm::train::load_unet_ema(dir, &device)?),
        None => None,
    };
    let (_, held) = guided_ddpm::data::load(&opts.data)?.split();
    // The samples, eval's seeds and order (PER_BATCH of each class a batch).
    let (mut bytes, mut classes) = (Vec::new(), Vec::new());
    for b in 0..per_class.div_ceil(PER_BATCH) {
        let settings = batch_settings(
            b,
            guidance,
            (opts.method, opts.steps),
            manifest.schedule.kind,
        );
        classes.extend_from_slice(&settings.classes);
        let mut sampler = Sampler::new(unet.clone(), classifier.clone(), settings, &device)?;
        if let Some(g) = &guide {
            sampler = sampler.with_autoguide(g.clone(), opts.autoguide_w);
        }
        let x = sampler
            .run(|_| std::ops::ControlFlow::Continue(()))
            .expect("never cancelled");
        bytes.extend(grid::to_bytes(
            &x.try_into_vec_as::<f32>().expect("samples"),
        ));
        eprintln!("  batch {}", b + 1);
    }
    // The first `per_class` of each class, against as many held-out digits of each class.
    let mut seen = [0usize; NUM_CLASSES];
    let kept: Vec<usize> = (0..classes.len())
        .filter(|&i| {
            seen[classes[i]] += 1;
            seen[classes[i]] <= per_class
        })
        .collect();
    let px: Vec<f32> = kept
        .iter()
        .flat_map(|&i| {
            bytes[i * 784..(i + 1) * 784]
                .iter()
                .map(|&b| f32::from(b) / 255.0)
        })
        .collect();
    let cls: Vec<usize> = kept.iter().map(|&i| classes[i]).collect();
    let mut rng = StdRng::seed_from_u64(43);
    let held_idx = stratified(&held.labels, per_class, &mut rng);
    let real = unit_pixels(&held, &held_idx);
    let real_cls: Vec<usize> = held_idx.iter().map(|&i| held.labels[i] as usize).collect();
    let test = |a: &[f32], b: &[f32]| two_sample_scored(a, &cls, b, &real_cls, 43, &device);

    let name = match &opts.autoguide {
        Some(dir) => format!(
            "{} · {} {} + autoguidance w={} ({})",
            opts.label,
            opts.method.name(),
            opts.steps,
            opts.autoguide_w,
            dir.display()
        ),
        None => format!("{} · {} {}", opts.label, opts.method.name(), opts.steps),
    };
    let mut md = format!("# What tells {name} from real digits\n\nGenerated by `guided-ddpm-lab probe` ({per_class} samples of each class, eval's seeds, against as many held-out digits of each class; the two-sample test of `lab/src/realism/two_sample.rs`, one draw of held-out digits).\n\n| variant | two-sample | fold sd | samples' black pixels |\n|---|---|---|---|\n");
    let (raw, scores) = test(&px, &real);
    md += &row("as drawn", &raw, Some(black_share(&px)));
    for level in HAZE {
        let (t, _) = test(&floored(&px, level), &floored(&real, level));
        md += &row(
            &format!("haze at or below {level}/255 zeroed in both sets"),
            &t,
            None,
        );
    }
    for level in HAZE {
        let clipped = floored(&px, level);
        let (t, _) = test(&clipped, &real);
        md += &row(
            &format!("samples' pixels at or below {level}/255 set to black (output clipping)"),
            &t,
            Some(black_share(&clipped)),
        );
    }
    let [(sr, srd), (sc, scd)] = spread(&centres(&px));
    let [(rr, rrd), (rc, rcd)] = spread(&centres(&real));
    let (t, _) = test(&recentred(&px, (rr, rc)), &real);
    md += &row(
        "samples moved by whole pixels to the real digits' mean centre of mass",
        &t,
        None,
    );
    let (t, _) = test(&recentred(&px, (rr, rc)), &recentred(&real, (rr, rc)));
    md += &row("both sets so moved", &t, None);
    for level in HAZE {
        let finished = recentred(&floored(&px, level), (rr, rc));
        let (t, _) = test(&finished, &real);
        md += &row(
            &format!("samples' pixels at or below {level}/255 set to black, then so moved"),
            &t,
            Some(black_share(&finished)),
        );
    }
    md += &format!(
        "\nCentre of mass (row, column), mean and sd: samples ({sr:.2} sd {srd:.2}, {sc:.2} sd {scd:.2}); real digits ({rr:.2} sd {rrd:.2}, {rc:.2} sd {rcd:.2}).\n"
    );
    md += &format!(
        "\nReal digits' black pixels: {:.1}%.\n\nPer class, the share of the held-out folds' rows the test got right (as drawn):\n\n| class | right |\n|---|---|\n",
        100.0 * black_share(&real)
    );
    let n = cls.len();
    for c in 0..NUM_CLASSES {
        let rows: Vec<usize> = (0..2 * n)
            .filter(|&i| {
                if i < n {
                    cls[i] == c
                } else {
                    real_cls[i - n] == c
                }
            })
            .collect();
        let right = rows
            .iter()
            .filter(|&&i| (scores[i] > 0.0) == (i >= n))
            .count();
        let _ = writeln!(
            md,
            "| {c} | {:.1}% |",
            100.0 * right as f64 / rows.len().max(1) as f64
        );
    }
    // Extremes: B (real) is the positive set, so a low score is "generated".
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut real_order: Vec<usize> = (n..2 * n).collect();
    real_order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let to_bytes = |set: &[f32], i: usize| -> Vec<u8> {
        set[i * 784..(i + 1) * 784]
            .iter()
            .map(|&p| (p * 255.0).round() as u8)
            .collect()
    };
    let mut cells = Vec::new();
    for &i in order.iter().take(10) {
        cells.extend(to_bytes(&px, i));
    }
    for &i in order.iter().rev().take(10) {
        cells.extend(to_bytes(&px, i));
    }
    for &i in real_order.iter().take(10) {
        cells.extend(to_bytes(&real, i - n));
    }
    std::fs::create_dir_all(&opts.out)
        .map_err(Error::io(format!("creating {}", opts.out.display())))?;
    let (w, h, img) = grid::layout(&cells, 10);
    grid::write_png(&opts.out.join("probe-extremes.png"), w, h, &img, 3)?;
    md += "\n![the test's extremes](probe-extremes.png)\n\nTop row: the ten samples the test is surest are generated; middle: the ten it finds most real; bottom: the ten held-out digits it finds most real.\n";
    guided_ddpm::atomic::write(&opts.out.join("probe.md"), md.as_bytes())?;
    Ok(md)
}
