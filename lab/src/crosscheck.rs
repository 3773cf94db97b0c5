//! `guided-ddpm-lab crosscheck`: a second judge, independent of eval's, for the settings the default
//! is picked among. Eval's judge is a convolutional network trained on the clean train digits and
//! its FD is taken in that network's features; this one has no network and no training: it
//! labels a sample by its nearest train digit in pixel space (the kernel reader of
//! `knowable` at t = 0, where its bandwidth is 0.01), and takes the FD in pixels averaged over
//! 4 x 4 blocks (a 7 x 7 image, 49 numbers). A setting that drew digits close to real ones in
//! the judge's features but not in pixels, or that the network reads as the asked digit where
//! the nearest real digit is another, shows up here.

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::Device;

use super::frechet;
use super::judge::{argmax, batch_settings, first_per_class, PER_BATCH};
use super::knowable::{kernel_probs, KernelPrior};
use guided_ddpm::data::Digits;
use guided_ddpm::guidance::Guidance;
use guided_ddpm::nn::{NUM_CLASSES, SIDE};
use guided_ddpm::sampler::Sampler;
use guided_ddpm::schedule::Schedule;
use guided_ddpm::settings::Method;
use guided_ddpm::{weights, Error};

#[derive(clap::Args)]
pub struct CrosscheckOptions {
    #[arg(long, default_value = "weights")]
    pub weights: PathBuf,
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Samples of each class per setting, drawn with eval's seeds.
    #[arg(long, default_value_t = 50)]
    pub n_per_class: usize,
    /// A run to check, `LABEL@SAMPLER:STEPS` (e.g. `both s=0.75 w=0@dpm:8`); repeatable.
    #[arg(long, required = true)]
    pub run: Vec<String>,
}

/// Side of the blocks the pixel FD averages over.
const BLOCK: usize = 4;

/// One row of the cross-check.
pub struct Row {
    pub what: String,
    /// Share of the samples whose nearest train digit is of the asked class.
    pub nearest_accuracy: f64,
    /// FD of the block-averaged pixels to the held-out digits'.
    pub pixel_frechet: f64,
}

/// The 7 x 7 block means of 28 x 28 images (rows of 784).
fn blocks(x: &[f32]) -> Vec<f32> {
    let side = SIDE / BLOCK;
    x.chunks(SIDE * SIDE)
        .flat_map(|img| {
            (0..side * side).map(move |b| {
                let (r, c) = (b / side * BLOCK, b % side * BLOCK);
                let mut sum = 0.0;
                for dr in 0..BLOCK {
                    for dc in 0..BLOCK {
                        sum += img[(r + dr) * SIDE + c + dc];
                    }
                }
                sum / (BLOCK * BLOCK) as f32
            })
        })
        .collect()
}

fn pixels(digits: &Digits, idx: &[usize]) -> Vec<f32> {
    idx.iter().flat_map(|&i| digits.image(i)).collect()
}

/// The row of images `x` (asked classes `asked`) against the held-out digits' block features.
fn row(what: &str, x: &[f32], asked: &[usize], prior: &KernelPrior, held: &[f32]) -> Row {
    let abar = Schedule::new(guided_ddpm::schedule::TRAINED).alphas_cumprod[0];
    let probs = kernel_probs(x, prior, abar);
    let hits = probs
        .chunks(NUM_CLASSES)
        .zip(asked)
        .filter(|(p, &c)| {
            let p: Vec<f32> = p.iter().map(|&v| v as f32).collect();
            argmax(&p) == c
        })
        .count();
    let side = SIDE / BLOCK;
    Row {
        what: what.to_string(),
        nearest_accuracy: hits as f64 / asked.len() as f64,
        pixel_frechet: frechet::between(&blocks(x), held, side * side),
    }
}

/// Parses `LABEL@SAMPLER:STEPS`.
fn parse_run(s: &str) -> Result<(String, Guidance, Method, usize), Error> {
    let bad = || Error::Setting(format!("--run takes LABEL@SAMPLER:STEPS, got {s:?}"));
    let (label, rest) = s.rsplit_once('@').ok_or_else(bad)?;
    let (method, steps) = rest.split_once(':').ok_or_else(bad)?;
    let method = Method::ALL
        .into_iter()
        .find(|m| m.name() == method)
        .ok_or_else(bad)?;
    let steps: usize = steps.parse().map_err(|_| bad())?;
    Ok((
        label.to_string(),
        Guidance::from_label(label)?,
        method,
        steps,
    ))
}

/// Checks each `--run`, beside real train digits (as many of each class) and the held-out
/// digits themselves; returns the rows, real ones first.
pub fn run(opts: &CrosscheckOptions) -> Result<Vec<Row>, Error> {
    let runs: Vec<_> = opts
        .run
        .iter()
        .map(|r| parse_run(r))
        .collect::<Result<_, _>>()?;
    if !(1..=750).contains(&opts.n_per_class) {
        return Err(Error::Setting(format!(
            "--n-per-class must be from 1 to 750, got {}",
            opts.n_per_class
        )));
    }
    let device = Device::flex();
    let (train, held) = guided_ddpm::data::load(&opts.data)?.split();
    let all: Vec<usize> = (0..train.len()).collect();
    let train_labels: Vec<usize> = train.labels.iter().map(|&l| l as usize).collect();
    let prior = KernelPrior::new(&pixels(&train, &all), &train_labels, &device);
    let held_idx: Vec<usize> = (0..held.len()).collect();
    let held_px = pixels(&held, &held_idx);
    let held_feats = blocks(&held_px);
    let held_labels: Vec<usize> = held.labels.iter().map(|&l| l as usize).collect();
    let mut rows = vec![row(
        "real: the held-out digits themselves",
        &held_px,
        &held_labels,
        &prior,
        &held_feats,
    )];
    let same_n = first_per_class(&train, opts.n_per_class);
    let same_n_labels: Vec<usize> = same_n.iter().map(|&i| train.labels[i] as usize).collect();
    // The train digits are the nearest reader's own data: each is its own nearest digit, so
    // their accuracy is 100% by construction; their FD is the floor.
    rows.push(row(
        &format!("real: {} train digits of each class", opts.n_per_class),
        &pixels(&train, &same_n),
        &same_n_labels,
        &prior,
        &held_feats,
    ));
    let (manifest, unet, classifier) = weights::load_dir(&opts.weights, &device)?;
    let classifier = classifier.to_device(&device.clone().autodiff()).freeze();
    for (label, guidance, method, steps) in runs {
        let mut x = Vec::new();
        let mut asked = Vec::new();
        for b in 0..opts.n_per_class.div_ceil(PER_BATCH) {
            let settings = batch_settings(b, guidance, (method, steps), manifest.schedule.kind);
            let classes = settings.classes.clone();
            let out = Sampler::new(unet.clone(), classifier.clone(), settings, &device)?
                .run(|_| std::ops::ControlFlow::Continue(()))
                .expect("never cancelled");
            x.extend(out.try_into_vec_as::<f32>().expect("samples"));
            asked.extend(classes);
        }
        let what = super::kept::run_name(&label, method, steps);
        eprintln!("{what}: {} samples", asked.len());
        rows.push(row(&what, &x, &asked, &prior, &held_feats));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Block means average each 4 x 4 block of each image, in row-major block order.
    #[test]
    fn blocks_average_each_block_of_each_image() {
        let mut img = vec![0f32; 2 * SIDE * SIDE];
        // Image 0: block (0, 1) holds one 16.0 (mean 1); image 1: every pixel 2.
        img[SIDE + BLOCK + 2] = 16.0;
        img[SIDE * SIDE..].fill(2.0);
        let b = blocks(&img);
        assert_eq!(b.len(), 2 * 49);
        assert_eq!(b[1], 1.0);
        assert_eq!(b.iter().take(49).sum::<f32>(), 1.0);
        assert!(b[49..].iter().all(|&v| v == 2.0));
    }

    #[test]
    fn a_run_reads_as_label_sampler_and_steps() {
        let (label, g, m, n) = parse_run("both s=0.75 w=0@dpm:8").unwrap();
        assert_eq!(
            (label.as_str(), m, n),
            ("both s=0.75 w=0", Method::DpmSolver, 8)
        );
        assert_eq!(g, Guidance::from_label("both s=0.75 w=0").unwrap());
        for bad in [
            "both s=0.75 w=0",
            "both s=0.75 w=0@dpm",
            "both s=0.75 w=0@rk4:8",
            "x@dpm:8",
        ] {
            assert!(parse_run(bad).is_err(), "{bad}");
        }
    }
}
