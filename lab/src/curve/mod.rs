//! `guided-ddpm-lab curve`: how a training run's U-Net improves with steps. Samples its latest EMA
//! checkpoint (float) at the default guidance and unguided, judges the samples as `eval` does,
//! and adds one row per setting to `docs/training-eval.csv` (keyed by run, step, setting, N and
//! sampling steps, so a rerun at the same step replaces its rows). A row names its setting by
//! its label ("free w=0.375"), never as "default": the default changes as the front moves, and
//! a row must say what it measured. From that file and the run's loss log it draws
//! `docs/training-curve.svg` (loss and FD against optimizer steps) and writes the "Training
//! progress" section of `docs/EVAL.md`, which `eval` keeps when it rewrites the file.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;

use super::judge::{first_per_class, run_setting, RealDigits};
use super::kept::{slug, EvalOptions};
use super::plot::{self, Axis, Canvas, Panel};
use guided_ddpm::data::Digits;
use guided_ddpm::guidance::{Guidance, DEFAULT};
use guided_ddpm::nn::{ClassifierConfig, UNetConfig};
use guided_ddpm::settings::Method;
use guided_ddpm::{grid, Error};

/// The lines `docs/EVAL.md` keeps between `eval` runs.
pub const START: &str = "<!-- training:start -->";
pub const END: &str = "<!-- training:end -->";
/// The rows, in `--out`.
pub const CSV: &str = "training-eval.csv";
/// The curve's N per class: its default, and the only N its plot draws (FD depends on N, so
/// rows at other N are in the table, not on the line).
pub const CURVE_N: usize = 20;
const HEADER: &str = "run,step,samples_seen,setting,n_per_class,steps,accuracy,frechet,floor,precision,recall,real_precision,real_recall,ink,held_ink,seconds";

#[derive(clap::Args)]
pub struct CurveOptions {
    /// The run's checkpoint folder (unet-ema.bpk, unet-state.json, unet-log.csv).
    #[arg(long, default_value = "checkpoints/run")]
    pub dir: PathBuf,
    /// Folder with the judge and the guidance classifier's EMA checkpoints.
    #[arg(long, default_value = "checkpoints")]
    pub checkpoints: PathBuf,
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Where training-eval.csv, training-curve.svg and EVAL.md are.
    #[arg(long, default_value = "docs")]
    pub out: PathBuf,
    /// Samples per class and setting (FD at small N sits above the large-N floor, so each row
    /// carries the real-vs-real FD at its own N).
    #[arg(long, default_value_t = CURVE_N)]
    pub n_per_class: usize,
    /// Reverse steps per sample.
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Judge this setting: "default" or a label of `eval`'s (e.g. "none", "both s=2 w=0.5");
    /// repeatable [default: "default" and "none"].
    #[arg(long)]
    pub setting: Vec<String>,
    /// Only redraw the plot and the section from the rows already measured.
    #[arg(long)]
    pub report_only: bool,
}

/// One setting of one checkpoint, judged: a row of [`CSV`] (its columns in this order, the
/// header the field names; measurements to 4 decimals, seconds whole).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    pub run: String,
    pub step: usize,
    pub samples_seen: usize,
    pub setting: String,
    pub n_per_class: usize,
    pub steps: usize,
    #[serde(serialize_with = "decimals4")]
    pub accuracy: f64,
    #[serde(serialize_with = "decimals4")]
    pub frechet: f64,
    /// Real-vs-real FD at the same N: the first `n_per_class` train digits of each class against
    /// the held-out digits.
    #[serde(serialize_with = "decimals4")]
    pub floor: f64,
    #[serde(serialize_with = "decimals4")]
    pub precision: f64,
    #[serde(serialize_with = "decimals4")]
    pub recall: f64,
    #[serde(serialize_with = "decimals4")]
    pub real_precision: f64,
    #[serde(serialize_with = "decimals4")]
    pub real_recall: f64,
    #[serde(serialize_with = "decimals4")]
    pub ink: f64,
    #[serde(serialize_with = "decimals4")]
    pub held_ink: f64,
    #[serde(serialize_with = "whole")]
    pub seconds: f64,
}

fn decimals4<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:.4}"))
}

fn whole<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:.0}"))
}

impl Row {
    fn key(&self) -> (&str, usize, &str, usize, usize) {
        (
            &self.run,
            self.step,
            &self.setting,
            self.n_per_class,
            self.steps,
        )
    }
}

/// Reads the rows file; a missing file is no rows, a line that does not parse is an error naming
/// it (the file is the only record of past measurements, so it is never silently dropped).
pub fn read_rows(path: &Path) -> Result<Vec<Row>, Error> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()))(e)),
    };
    csv::Reader::from_reader(file)
        .deserialize()
        .map(|row| {
            row.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                Error::Data(format!(
                    "{} line {line} is not a row of {HEADER}: {e}",
                    path.display()
                ))
            })
        })
        .collect()
}

fn write_rows(path: &Path, rows: &[Row]) -> Result<(), Error> {
    let bad = |e: csv::Error| Error::Data(format!("writing {}: {e}", path.display()));
    let mut w = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        w.write_record(HEADER.split(',')).map_err(bad)?;
    }
    for r in rows {
        w.serialize(r).map_err(bad)?;
    }
    let text = w.into_inner().map_err(|e| bad(e.into_error().into()))?;
    guided_ddpm::atomic::write(path, &text)
}

/// The settings a checkpoint is judged at: each label of `asked` ("default" for the demo's
/// default, or one of `eval`'s labels, e.g. "none" or "both s=2 w=0.5"), by default the demo's
/// default and unguided; "default" comes back as the default's own label, and a setting asked
/// twice (as "default" and by its label, say) is judged once. An unknown label is an error that
/// lists the known ones.
fn settings(asked: &[String]) -> Result<Vec<(String, Guidance)>, Error> {
    let known = super::kept::settings();
    let defaults = ["default".to_string(), "none".to_string()];
    let asked = if asked.is_empty() {
        &defaults[..]
    } else {
        asked
    };
    let mut out: Vec<(String, Guidance)> = Vec::new();
    for label in asked {
        let setting = match label.as_str() {
            "default" => (DEFAULT.label(), DEFAULT),
            _ => match known.iter().find(|(l, _, _)| l == label) {
                Some((l, g, _)) => (l.clone(), *g),
                None => {
                    let names: Vec<&str> = known.iter().map(|(l, _, _)| l.as_str()).collect();
                    return Err(Error::Setting(format!(
                        "--setting {label:?} is neither \"default\" nor one of eval's settings: {}",
                        names.join(", ")
                    )));
                }
            },
        };
        if !out.iter().any(|(l, _)| *l == setting.0) {
            out.push(setting);
        }
    }
    Ok(out)
}

/// The grid of a run's default samples at its latest measured step, in `--out`.
fn samples_png(run: &str) -> String {
    format!("training-samples-{}.png", slug(run))
}

/// A run's name in the rows: its folder as given (e.g. `checkpoints/run`).
fn run_name(dir: &Path) -> String {
    dir.display().to_string().trim_end_matches('/').to_string()
}

pub fn run(opts: &CurveOptions) -> Result<Vec<Row>, Error> {
    let csv = opts.out.join(CSV);
    let mut rows = read_rows(&csv)?;
    if !opts.report_only {
        measure(opts, &mut rows)?;
        write_rows(&csv, &rows)?;
    }
    let name = run_name(&opts.dir);
    let losses = read_losses(&guided_ddpm::train::CheckpointFiles::new(&opts.dir, "unet").log)?;
    draw(&losses, &rows, &name).write_svg(&opts.out.join("training-curve.svg"))?;
    let eval_md = opts.out.join("EVAL.md");
    let old = std::fs::read_to_string(&eval_md).unwrap_or_default();
    let section = section(&name, &rows, &losses);
    guided_ddpm::atomic::write(&eval_md, splice(&old, &section).as_bytes())?;
    Ok(rows)
}

fn measure(opts: &CurveOptions, rows: &mut Vec<Row>) -> Result<(), Error> {
    let eval_opts = EvalOptions {
        weights: PathBuf::from("weights"),
        checkpoints: opts.checkpoints.clone(),
        data: opts.data.clone(),
        out: opts.out.clone(),
        n_per_class: opts.n_per_class,
        steps: vec![opts.steps],
        method: vec![Method::Ddpm],
        float_check: None,
        only: Vec::new(),
        report_only: false,
        autoguide: None,
        autoguide_w: Vec::new(),
        centre: false,
        place: false,
    };
    eval_opts.validate()?;
    let asked = settings(&opts.setting)?;
    let name = run_name(&opts.dir);
    let files = guided_ddpm::train::CheckpointFiles::new(&opts.dir, "unet");
    let state = guided_ddpm::train::read_state(&files.state)?;
    let todo: Vec<(String, Guidance)> = asked
        .into_iter()
        .filter(|(label, _)| {
            !rows
                .iter()
                .any(|r| r.key() == (&name, state.step, label, opts.n_per_class, opts.steps))
        })
        .collect();
    if todo.is_empty() {
        eprintln!("{name} at step {} is measured already", state.step);
        return Ok(());
    }
    let device = Device::flex();
    let ad = device.clone().autodiff();
    let unet = guided_ddpm::train::load_ema(UNetConfig::new().init(&device), &opts.dir, "unet")?;
    let classifier = guided_ddpm::train::load_ema(
        ClassifierConfig::new().init(&ad),
        &opts.checkpoints,
        "classifier",
    )?
    .freeze();
    let judge_net = guided_ddpm::train::load_ema(
        ClassifierConfig::new().init(&device),
        &opts.checkpoints,
        "judge",
    )?;
    let (train_set, held) = guided_ddpm::data::load(&opts.data)?.split();
    write_real_grid(&held, opts)?;
    let real = RealDigits::judge(&judge_net, &train_set, &held, opts.n_per_class, &device);
    let floor = real.same_n_frechet;
    eprintln!(
        "{name} at step {}: real-vs-real FD at {}/class {floor:.3}",
        state.step, opts.n_per_class
    );
    for (label, guidance) in todo {
        let label = label.as_str();
        let (r, grid_rows, _) = run_setting(
            label,
            guidance,
            (Method::Ddpm, opts.steps),
            &unet,
            &classifier,
            &judge_net,
            &real.held_feats,
            &eval_opts,
            "float EMA",
            guided_ddpm::schedule::TRAINED,
            Default::default(),
            &device,
        )?;
        if guidance == DEFAULT {
            let (w, h, px) = grid::layout(&grid_rows, 10);
            grid::write_png(&opts.out.join(samples_png(&name)), w, h, &px, 2)?;
        }
        eprintln!(
            "  {label}: judged accuracy {:.1}%, FD {:.3} ({:.2}x the floor)",
            100.0 * r.accuracy,
            r.frechet,
            r.frechet / floor
        );
        let mix: Vec<String> = r.judged_share.iter().map(|s| format!("{s:.3}")).collect();
        eprintln!(
            "  {label}: judged share of each class 0-9: {}",
            mix.join(" ")
        );
        rows.push(Row {
            run: name.clone(),
            step: state.step,
            samples_seen: state.samples_seen,
            setting: label.to_string(),
            n_per_class: r.n_per_class,
            steps: r.steps,
            accuracy: r.accuracy,
            frechet: r.frechet,
            floor,
            precision: r.precision,
            recall: r.recall,
            real_precision: real.precision,
            real_recall: real.recall,
            ink: r.ink.mean,
            held_ink: real.held_ink.mean,
            seconds: r.seconds,
        });
    }
    rows.sort_by(|a, b| (&a.run, a.step, &a.setting).cmp(&(&b.run, b.step, &b.setting)));
    Ok(())
}

/// `real-held-out.png`: the first ten held-out digits of each class, a row per class, laid out
/// as the `training-samples-*.png` grids are, to set beside them.
fn write_real_grid(held: &Digits, opts: &CurveOptions) -> Result<(), Error> {
    let mut idx = first_per_class(held, 10);
    idx.sort_by_key(|&i| held.labels[i]); // stable: each class keeps its first ten in order
    let bytes: Vec<u8> = idx
        .iter()
        .flat_map(|&i| grid::to_bytes(&held.image(i).collect::<Vec<f32>>()))
        .collect();
    let (w, h, px) = grid::layout(&bytes, 10);
    grid::write_png(&opts.out.join("real-held-out.png"), w, h, &px, 2)
}

/// (step, loss) of every line of a training log (`step,loss,...`).
pub fn read_losses(path: &Path) -> Result<Vec<(usize, f64)>, Error> {
    let text =
        std::fs::read_to_string(path).map_err(Error::io(format!("reading {}", path.display())))?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split(',');
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect())
}

/// Mean loss over consecutive windows of `width` optimizer steps: (the last logged step in the
/// window, mean), so a window the run has not finished is labelled with where it stands;
/// windows without a logged step are skipped.
pub fn windowed(losses: &[(usize, f64)], width: usize) -> Vec<(usize, f64)> {
    let mut out: Vec<(usize, usize, f64, usize)> = Vec::new();
    for &(step, loss) in losses {
        let w = step.saturating_sub(1) / width;
        match out.last_mut() {
            Some(last) if last.0 == w => {
                last.1 = step;
                last.2 += loss;
                last.3 += 1;
            }
            _ => out.push((w, step, loss, 1)),
        }
    }
    out.into_iter()
        .map(|(_, step, sum, n)| (step, sum / n as f64))
        .collect()
}

/// Where the kept section is in `doc`, markers included.
fn span(doc: &str) -> Option<std::ops::Range<usize>> {
    match (doc.find(START), doc.find(END)) {
        (Some(a), Some(b)) if a < b => Some(a..b + END.len()),
        _ => None,
    }
}

/// `section` in place of the kept section of `doc` (between [`START`] and [`END`]), or appended
/// when `doc` has none.
pub fn splice(doc: &str, section: &str) -> String {
    match span(doc) {
        Some(r) => format!("{}{section}{}", &doc[..r.start], &doc[r.end..]),
        None => format!("{}\n\n{section}\n", doc.trim_end()),
    }
}

/// The kept section of `doc` (markers included), if it has one.
pub fn kept(doc: &str) -> Option<&str> {
    span(doc).map(|r| &doc[r])
}

fn section(name: &str, rows: &[Row], losses: &[(usize, f64)]) -> String {
    let mut s = format!("{START}\n## Training progress\n\n");
    s += &format!(
        "Generated by `guided-ddpm-lab curve --dir {name}` (the README), run at each stop of the long \
         run; each row is one measurement on this machine, of the run's EMA U-Net (float) and \
         the float guidance classifier, DDPM, fixed seeds. FD at a small N sits above the \
         1,000-digit floor of the table above, so each row has the real-vs-real FD at its own N \
         (\"floor\") and the ratio. That floor has exactly N digits of each class; unguided \
         rows (\"none\") draw their own mix of classes, and FD in judge features follows the \
         mix: real digits drawn at random score far above it and vary widely from draw to draw \
         (the unguided floor of the table above), so for those rows the ratio overstates the \
         distance to real digits, and two of them differ by noise of that size. Real P / R: \
         train digits against the held-out ones at the same N. Each row names the setting it \
         measured (the demo's default has changed as the front moved, so no row says \
         \"default\"). The plot draws the rows at {CURVE_N} per class only: a line for the \
         default ({}, marked so in the legend) where it was measured, for unguided, and for \
         each other setting measured at two steps or more.\n\n",
        DEFAULT.label()
    );
    s += "![training loss and FD against optimizer steps](training-curve.svg)\n\n";
    s += "| run | step | samples seen | setting | N/class | judged acc. | FD | floor | FD / floor | precision | recall | real P / R | ink | held-out ink | time |\n";
    s += "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|\n";
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {} | {} | {:.1}% | {:.3} | {:.3} | {:.2}x | {:.3} | {:.3} | {:.3} / {:.3} | {:.3} | {:.3} | {:.0} s |\n",
            r.run,
            r.step,
            r.samples_seen,
            r.setting,
            r.n_per_class,
            100.0 * r.accuracy,
            r.frechet,
            r.floor,
            r.frechet / r.floor,
            r.precision,
            r.recall,
            r.real_precision,
            r.real_recall,
            r.ink,
            r.held_ink,
            r.seconds
        );
    }
    if rows
        .iter()
        .any(|r| r.run == name && r.setting == DEFAULT.label())
    {
        s += &format!("\nThe default's ({}) samples at its latest measured step (one row per class), beside held-out digits:\n\n", DEFAULT.label());
        s += "| samples, latest checkpoint | real held-out digits |\n|---|---|\n";
        s += &format!(
            "| ![samples of the latest checkpoint]({}) | ![held-out digits](real-held-out.png) |\n",
            samples_png(name)
        );
    }
    s += &format!("\nTraining loss of `{name}` (the mean of the logged losses in each 1,000 steps; one logged loss per 25 steps, each a batch of 64):\n\n");
    s += "| steps to | mean loss |\n|---:|---:|\n";
    for (step, loss) in windowed(losses, 1000) {
        s += &format!("| {step} | {loss:.4} |\n");
    }
    s += END;
    s
}

/// The settings the FD panel draws as lines, with their colours: the demo's default (red) and
/// unguided (orange) where they were measured at [`CURVE_N`] (in any run), then every other setting of run `name`
/// measured at two steps or more at [`CURVE_N`] (a former default, say), in label order. A
/// setting measured at one step only stays in the table.
pub fn curve_settings(rows: &[&Row], name: &str) -> Vec<(String, plot::Rgb)> {
    let steps = |label: &str| {
        let mut s: Vec<usize> = rows
            .iter()
            .filter(|r| r.run == name && r.n_per_class == CURVE_N && r.setting == label)
            .map(|r| r.step)
            .collect();
        s.sort_unstable();
        s.dedup();
        s.len()
    };
    let measured = |label: &str| {
        rows.iter()
            .any(|r| r.n_per_class == CURVE_N && r.setting == label)
    };
    let mut out: Vec<(String, plot::Rgb)> = [
        (DEFAULT.label(), plot::RED),
        ("none".to_string(), plot::ORANGE),
    ]
    .into_iter()
    .filter(|(label, _)| measured(label))
    .collect();
    let mut rest: Vec<String> = rows
        .iter()
        .map(|r| r.setting.clone())
        .filter(|l| !out.iter().any(|(o, _)| o == l) && steps(l) >= 2)
        .collect();
    rest.sort();
    rest.dedup();
    let palette = [plot::BLUE, plot::GREEN, plot::PURPLE];
    out.extend(
        rest.into_iter()
            .enumerate()
            .map(|(i, l)| (l, palette[i % palette.len()])),
    );
    out
}

/// Two panels: the training loss of run `name` (per-250-step means) and the FD against optimizer
/// steps of each of [`curve_settings`], with each step's floor: run `name`'s rows joined by
/// lines, other runs' (the first weights' folder, recipe branches) as lone hollow squares.
fn draw(losses: &[(usize, f64)], all: &[Row], name: &str) -> Canvas {
    let all: Vec<&Row> = all.iter().filter(|r| r.n_per_class == CURVE_N).collect();
    let rows: Vec<&Row> = all.iter().copied().filter(|r| r.run == name).collect();
    let others: Vec<&Row> = all.iter().copied().filter(|r| r.run != name).collect();
    let series = curve_settings(&rows, name);
    let drawn = |r: &Row| series.iter().any(|(l, _)| *l == r.setting);
    let mut c = Canvas::new(960, 440);
    let loss = windowed(losses, 250);
    let loss_pts: Vec<(f64, f64)> = loss.iter().map(|&(s, l)| (s as f64, l)).collect();
    let max_step = loss_pts.last().map_or(1.0, |p| p.0);
    let x = Axis::covering([0.0, max_step], false);
    let left = Panel {
        left: 80,
        top: 40,
        width: 360,
        height: 270,
        x,
        y: Axis::covering(loss_pts.iter().map(|p| p.1), true),
    };
    left.draw_axes(
        &mut c,
        "TRAINING LOSS",
        "optimizer steps",
        "loss (mean of 250 steps)",
    );
    left.polyline(&mut c, &loss_pts, plot::BLUE, 2);

    let right = Panel {
        left: 580,
        top: 40,
        width: 360,
        height: 270,
        x,
        y: Axis::covering(
            all.iter()
                .filter(|r| drawn(r))
                .flat_map(|r| [r.frechet, r.floor]),
            true,
        ),
    };
    right.draw_axes(
        &mut c,
        &format!("FD TO HELD-OUT, {CURVE_N} PER CLASS"),
        "optimizer steps",
        "frechet distance",
    );
    for (i, (label, colour)) in series.iter().enumerate() {
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.setting == *label)
            .map(|r| (r.step as f64, r.frechet))
            .collect();
        right.polyline(&mut c, &pts, *colour, 2);
        for &(s, f) in &pts {
            right.marker(&mut c, s, f, *colour, 6);
        }
        for r in others.iter().filter(|r| r.setting == *label) {
            right.marker(&mut c, r.step as f64, r.frechet, *colour, 9);
            right.marker(&mut c, r.step as f64, r.frechet, plot::WHITE, 5);
        }
        let text = if *label == DEFAULT.label() {
            format!("{label} (default)")
        } else {
            label.clone()
        };
        right.legend(&mut c, i % 2, i / 2, &text, *colour);
    }
    let mut floor: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| drawn(r))
        .map(|r| (r.step as f64, r.floor))
        .collect();
    floor.dedup_by(|a, b| a.0 == b.0);
    right.polyline(&mut c, &floor, plot::GREY, 1);
    for &(s, f) in &floor {
        right.marker(&mut c, s, f, plot::GREY, 4);
    }
    let n = series.len();
    right.legend(&mut c, n % 2, n / 2, "real vs real", plot::GREY);
    if !others.is_empty() {
        let y = right.legend_y(n / 2 + 1) + 6;
        c.hollow_square(right.left, y, 8, plot::BLACK);
        c.text(
            right.left + 16,
            y + 1,
            "hollow: other runs (first weights, recipe branches)",
            plot::BLACK,
            1,
        );
    }
    c
}

#[cfg(test)]
mod tests;
