//! The CLI's `sample`: a run of one digit class (or a comparison of settings side by side, or
//! an edit of a given image) with the shipped weights, shown as a progress bar and written as a
//! PNG grid, a NumPy archive and the classifier's push, as asked.

use std::path::{Path, PathBuf};

use burn::module::Module;

use crate::digit::{Fit, Ink};
use crate::guidance::{self, Compare, Grad, Guidance, Mode};
use crate::nn::{ClassifierConfig, UNetConfig, SIDE};
use crate::sampler::Sampler;
use crate::settings::{Edit, Method, SampleSettings};
use crate::{grid, npz, weights, Error};
use burn::tensor::Device;

#[derive(clap::Args)]
pub struct SampleOptions {
    /// The digit to draw, 0-9.
    #[arg(long = "class")]
    pub class: usize,
    /// How many samples.
    #[arg(long, default_value_t = 4)]
    pub n: usize,
    /// One sample per guidance setting, all from the same noise, side by side: `scales` (the
    /// classifier alone at s = 0, 1, 2, 4, 8) or `modes` (none, classifier, free, both, at the
    /// given or default s and w); prints each setting's final p(class).
    #[arg(long, value_enum, conflicts_with = "n")]
    pub compare: Option<Compare>,
    /// Guidance mode [default: the demo's default, see the README].
    #[arg(long, value_enum)]
    pub guidance: Option<Mode>,
    /// Classifier guidance scale s [default: the demo's default; 4 where the default takes no
    /// classifier gradient].
    #[arg(long, allow_negative_numbers = true)]
    pub scale: Option<f64>,
    /// Classifier-free guidance weight w [default: the demo's default].
    #[arg(long, allow_negative_numbers = true)]
    pub cfg_scale: Option<f64>,
    /// Where the classifier's gradient acts: `LO-HI` (original timesteps, inclusive; e.g.
    /// 250-749, a guidance interval) or `all` [default: the demo's default].
    #[arg(long, value_parser = guidance::parse_interval)]
    pub interval: Option<Option<[usize; 2]>>,
    /// Where the classifier's gradient is taken: xt (at x_t, the paper's), norm (at x_t,
    /// rescaled to the length of the model's score, so s is the ratio of the two pushes) or x0
    /// (at the predicted x0, a step of s times it on x0) [default: the demo's default].
    #[arg(long, value_enum)]
    pub grad: Option<Grad>,
    /// Reverse steps (1-1000), respaced from the 1000 training steps; the demo's default
    /// unless given.
    #[arg(long, default_value_t = crate::settings::DEFAULT_STEPS)]
    pub steps: usize,
    /// The reverse step: ddpm, ddim, dpm (DPM-Solver++(2M)) or dpm-sde (its SDE form); the
    /// demo's default unless given.
    #[arg(long, value_enum, default_value_t = crate::settings::DEFAULT_METHOD)]
    pub sampler: Method,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Folder with manifest.json and the .safetensors files.
    #[arg(long, default_value = "weights")]
    pub weights: PathBuf,
    /// Write the samples as a PNG grid.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Write the samples as a NumPy archive: x uint8 [N, 28, 28], y int64 [N] (the asked class).
    #[arg(long)]
    pub npz: Option<PathBuf>,
    /// Edit this image instead of drawing from noise (SDEdit): any PNG (any size, grey or
    /// colour), made a 28 x 28 digit as MNIST's were (the ink's box scaled into 20 x 20, centred
    /// by its mass; a 28 x 28 light-on-dark image, such as the samples, is taken as it is).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Which way round --init's ink is: auto (a light border is paper, so the ink is dark),
    /// light (on dark, as the samples) or dark (on light, as on paper).
    #[arg(long, value_enum, default_value_t = Ink::Auto, requires = "init")]
    pub ink: Ink,
    /// How much of the --init image to change, 0-1: the share of the reverse steps run from the
    /// image noised to that level (0 returns it, 1 starts from noise) [default: 0.5, or 1 with
    /// --mask].
    #[arg(long, requires = "init", allow_negative_numbers = true)]
    pub strength: Option<f64>,
    /// Keep the --init image's pixels where this PNG is white and let the model draw the rest
    /// (inpainting): 28 x 28, or the size of --init (then moved and scaled as it is).
    #[arg(long, requires = "init")]
    pub mask: Option<PathBuf>,
    /// Write the classifier's push (the shift each step's guidance applied) as a PNG: a row per
    /// sample (the first 8), six steps from first to last, red where a step brightened a pixel,
    /// blue where it darkened it, full colour at the page's scale for the run's steps (1 / steps).
    #[arg(long)]
    pub push_png: Option<PathBuf>,
    /// Write the samples as the network drew them, without the finish a run from noise gets by
    /// default (its faint haze cleared to black and each digit moved by whole pixels to centre
    /// its mass, as MNIST's digits were; `digit::placed`). An edit (--init) is always as drawn.
    #[arg(long)]
    pub as_drawn: bool,
    /// Smoke test only: untrained, randomly initialised networks instead of weights (noise out).
    #[arg(long)]
    pub random_init: bool,
}

impl SampleOptions {
    /// The run these options ask for, checked ([`SampleSettings::validate`]); its schedule is
    /// the one the networks were trained with until the weights' manifest says otherwise.
    pub fn settings(&self) -> Result<SampleSettings, Error> {
        let a = self;
        // A form of the gradient asked for starts from its own s (`Grad::start_scale`).
        let start = guidance::starting(a.grad.unwrap_or(guidance::STARTING.grad));
        let guidance = Guidance {
            mode: a.guidance.unwrap_or(start.mode),
            scale: a.scale.unwrap_or(start.scale),
            cfg_scale: a.cfg_scale.unwrap_or(start.cfg_scale),
            interval: a.interval.unwrap_or(start.interval),
            grad: start.grad,
        };
        let per_sample = a.compare.map(|c| c.settings(guidance)).unwrap_or_default();
        let n = match a.compare {
            Some(_) => per_sample.len(),
            None => a.n,
        };
        crate::settings::check_batch(n)?; // before `vec![class; n]` allocates
        let settings = SampleSettings {
            classes: vec![a.class; n],
            guidance,
            steps: a.steps,
            method: a.sampler,
            seed: a.seed,
            schedule: crate::schedule::TRAINED, // replaced by the manifest's in `run`
            first_image: 0,
            same_noise: a.compare.is_some(),
            per_sample,
            edit: match &a.init {
                None => None,
                Some(init) => Some(a.edit(init)?),
            },
            place: crate::settings::DEFAULT_PLACE && a.init.is_none() && !a.as_drawn,
        };
        settings.validate()?;
        Ok(settings)
    }

    /// The edit of `init` (with `--mask`, `--strength` and `--ink`): the image as a 28 x 28
    /// digit ([`Fit`]), its mask moved with it.
    fn edit(&self, init: &Path) -> Result<Edit, Error> {
        let (w, h, px) = grid::read_png(init)?;
        let fit = Fit::of(w, h, &px, self.ink)
            .map_err(|e| Error::Setting(format!("{}: {e}", init.display())))?;
        let mask = match &self.mask {
            None => None,
            Some(m) => {
                let (mw, mh, mpx) = grid::read_png(m)?;
                let kept = fit
                    .mask(mw, mh, &mpx)
                    .map_err(|e| Error::Setting(format!("{}: {e}", m.display())))?;
                Some(kept.iter().map(|&v| (v > 127) as u8 as f32).collect())
            }
        };
        Ok(Edit {
            image: fit
                .image(&px)
                .iter()
                .map(|&v| v as f32 / 127.5 - 1.0)
                .collect(),
            strength: self
                .strength
                .unwrap_or(if self.mask.is_some() { 1.0 } else { 0.5 }),
            mask,
        })
    }
}

/// Runs `a`: loads the weights (or untrained networks with `--random-init`), samples with a
/// progress bar, prints each compared setting's final p(class), and writes the files asked for.
pub fn run(a: &SampleOptions) -> Result<(), Error> {
    let mut settings = a.settings()?;
    let n = settings.classes.len();
    let guidance = settings.guidance;
    let labels: Vec<String> = (0..n).map(|i| settings.guidance_of(i).label()).collect();
    let device = Device::flex();
    let ad = device.clone().autodiff();
    let (unet, classifier) = if a.random_init {
        eprintln!(
            "warning: --random-init: untrained networks, the output is noise (smoke test only)"
        );
        device.seed(a.seed);
        (
            UNetConfig::new().init(&device),
            ClassifierConfig::new().init(&ad),
        )
    } else {
        let (manifest, unet, classifier) = weights::load_dir(&a.weights, &device)?;
        settings.schedule = manifest.schedule.kind;
        (unet, classifier.to_device(&ad))
    };
    let run_steps = settings.steps_run();
    let settings_steps = settings.steps;
    let sampler = Sampler::new(unet, classifier.freeze(), settings.clone(), &device)?;
    let bar = indicatif::ProgressBar::new(run_steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "sampling {bar:30} step {pos}/{len} t={msg} {per_sec} ETA {eta}",
        )
        .expect("valid template"),
    );
    let started = std::time::Instant::now();
    // The steps whose push is pictured: six, first to last.
    let pictured: Vec<usize> = (0..6)
        .map(|i| 1 + i * run_steps.saturating_sub(1) / 5)
        .collect();
    let mut pushes: Vec<(usize, Vec<f32>)> = Vec::new();
    let mut last_p = Vec::new();
    let x = sampler
        .run(|frame| {
            let p: Vec<f32> = frame
                .log_p_target
                .clone()
                .exp()
                .try_into_vec_as::<f32>()
                .unwrap_or_default();
            let mean_p = p.iter().sum::<f32>() / p.len().max(1) as f32;
            if a.push_png.is_some() && pictured.contains(&frame.step) {
                let push = match &frame.push {
                    Some(push) => push.clone().try_into_vec_as::<f32>().unwrap_or_default(),
                    None => vec![0.0; n * SIDE * SIDE],
                };
                pushes.push((frame.step, push));
            }
            last_p = p;
            bar.set_position(frame.step as u64);
            bar.set_message(format!("{} p(class)={mean_p:.2}", frame.t));
            std::ops::ControlFlow::Continue(())
        })
        .expect("the observer never cancels");
    bar.finish();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{} samples of class {} ({}) in {:.1} s ({:.2} steps/s)",
        n,
        a.class,
        match a.compare {
            Some(c) => format!("compare {c:?}").to_lowercase(),
            None => guidance.label(),
        },
        secs,
        run_steps as f64 / secs
    );
    if a.compare.is_some() {
        for (label, p) in labels.iter().zip(&last_p) {
            println!("{label:<20} final p({}) = {p:.3}", a.class);
        }
    }
    let values: Vec<f32> = settings.finished(
        x.try_into_vec_as::<f32>()
            .map_err(|e| Error::Setting(format!("reading the samples: {e:?}")))?,
    );
    let bytes = grid::to_bytes(&values);
    if let Some(path) = &a.push_png {
        write_push_png(path, &pushes, n.min(8), settings_steps)?;
    }
    if let Some(path) = &a.png {
        let cols = match a.compare {
            Some(_) => n,
            None => (n as f64).sqrt().ceil() as usize,
        };
        let (w, h, px) = grid::layout(&bytes, cols);
        grid::write_png(path, w, h, &px, 4)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &a.npz {
        npz::write_samples(path, &bytes, &vec![a.class as i64; n])?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The push maps of `rows` samples at the pictured steps as one PNG: a row per sample, a column
/// per step, coloured by [`grid::signed_rgba`] at [`grid::push_scale`] of `steps`; prints each pictured step's
/// largest shift.
fn write_push_png(
    path: &Path,
    pushes: &[(usize, Vec<f32>)],
    rows: usize,
    steps: usize,
) -> Result<(), Error> {
    let px = SIDE * SIDE;
    let mut tiles = Vec::with_capacity(rows * pushes.len() * px);
    for r in 0..rows {
        for (_, push) in pushes {
            tiles.extend_from_slice(&push[r * px..(r + 1) * px]);
        }
    }
    for (step, push) in pushes {
        let largest = push.iter().fold(0f32, |m, v| m.max(v.abs()));
        eprintln!("step {step}: largest push {largest:.4}");
    }
    let rgba = grid::signed_rgba(&tiles, grid::push_scale(steps));
    let (w, h, px) = grid::layout_pixels(&rgba, pushes.len(), 4);
    grid::write_png(path, w, h, &px, 3)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
