//! Quality against steps: one guidance setting sampled by each sampler at several step counts
//! (`guided-ddpm-lab eval --out docs/steps --method dpm,ddim,ddpm --steps 8,10,15,...`), its table
//! and its plot of FD (and judged accuracy) against steps per sampler. The sweep is an
//! evaluation of its own, in its own folder (its floors are at its own N); docs/EVAL.md takes
//! its section from there ([`FOLDER`]).

use super::kept::{Report, SettingResult};
use super::plot::{self, Axis, Canvas, Panel};
use guided_ddpm::settings::Method;

/// The sweep's folder under the main evaluation's.
pub const FOLDER: &str = "steps";
/// The plot's file, in the sweep's folder.
pub const PLOT: &str = "fd-vs-steps.svg";

/// Whether `r` holds a steps sweep: one setting, and some sampler evaluated at two step counts
/// or more.
pub fn is_sweep(r: &Report) -> bool {
    let one_setting = r.settings.windows(2).all(|w| w[0].label == w[1].label);
    let counts = |m: Method| {
        let mut steps: Vec<usize> = series(r, m).iter().map(|x| x.steps).collect();
        steps.dedup();
        steps.len()
    };
    one_setting && Method::ALL.into_iter().any(|m| counts(m) >= 2)
}

/// The int8 rows of `method`, by steps.
fn series(r: &Report, method: Method) -> Vec<&SettingResult> {
    let mut rows: Vec<&SettingResult> = r
        .settings
        .iter()
        .filter(|x| x.weights == "int8" && x.method == method)
        .collect();
    rows.sort_by_key(|x| x.steps);
    rows
}

fn colour(m: Method) -> plot::Rgb {
    match m {
        Method::Ddpm => plot::BLUE,
        Method::Ddim => plot::ORANGE,
        Method::DpmSolver => plot::GREEN,
        Method::DpmSde => plot::PURPLE,
    }
}

fn title(m: Method) -> &'static str {
    match m {
        Method::Ddpm => "DDPM",
        Method::Ddim => "DDIM",
        Method::DpmSolver => "DPM-Solver++(2M)",
        Method::DpmSde => "DPM-Solver++(2M) SDE",
    }
}

/// FD (left, log axis) and judged accuracy (right) against steps (log axis), a line per
/// sampler, with the real-vs-real floor at the sweep's N (grey) and the 99% bar.
pub fn plot(r: &Report) -> Canvas {
    let mut c = Canvas::new(960, 440);
    let rows: Vec<&SettingResult> = r.settings.iter().filter(|x| x.weights == "int8").collect();
    let floor = r.same_n_floor().unwrap_or(r.real_vs_real_frechet);
    let x = Axis::covering(rows.iter().map(|x| x.steps as f64), true);
    let n = rows.first().map_or(0, |x| x.n_per_class);
    let left = Panel {
        left: 80,
        top: 40,
        width: 360,
        height: 290,
        x,
        y: Axis::covering(rows.iter().map(|x| x.frechet).chain([floor]), true),
    };
    left.draw_axes(
        &mut c,
        &format!("FD TO HELD-OUT, {n} PER CLASS"),
        "steps",
        "frechet distance",
    );
    let (a, b) = (left.at(x.lo, floor), left.at(x.hi, floor));
    c.line(a, b, plot::GREY, 2);
    let right = Panel {
        left: 580,
        top: 40,
        width: 360,
        height: 290,
        x,
        y: Axis::covering(
            rows.iter()
                .map(|x| 100.0 * x.accuracy)
                .chain([100.0, 100.0 * super::targets::MIN_ACCURACY]),
            false,
        ),
    };
    right.draw_axes(&mut c, "JUDGED ACCURACY", "steps", "% judged as asked");
    let bar = 100.0 * super::targets::MIN_ACCURACY;
    c.line(right.at(x.lo, bar), right.at(x.hi, bar), plot::GREY, 1);
    for (i, m) in Method::ALL.into_iter().enumerate() {
        let s = series(r, m);
        if s.is_empty() {
            continue;
        }
        let fd: Vec<(f64, f64)> = s.iter().map(|x| (x.steps as f64, x.frechet)).collect();
        let acc: Vec<(f64, f64)> = s
            .iter()
            .map(|x| (x.steps as f64, 100.0 * x.accuracy))
            .collect();
        for (panel, pts) in [(&left, &fd), (&right, &acc)] {
            panel.polyline(&mut c, pts, colour(m), 2);
            for &(sx, sy) in pts.iter() {
                panel.marker(&mut c, sx, sy, colour(m), 6);
            }
        }
        left.legend(&mut c, i % 2, i / 2, title(m), colour(m));
    }
    left.legend(&mut c, 0, 2, "real digits (same N)", plot::GREY);
    c
}

/// The sweep's section of docs/EVAL.md: the setting, a table per sampler and steps, and the
/// plot (its path relative to docs/).
pub fn section(r: &Report) -> String {
    let label = r
        .settings
        .first()
        .map_or("", |x| x.label.as_str())
        .to_string();
    let n = r.settings.first().map_or(0, |x| x.n_per_class);
    let floor = r.same_n_floor();
    let mut s = String::from("## Quality against steps\n\n");
    s += &format!(
        "`{label}` drawn by each sampler at each number of steps, {n} per class, int8 weights, \
         the same seeds (`guided-ddpm-lab eval --out docs/{FOLDER} --n-per-class {n} --only \"{label}\" \
         --method dpm,ddim,ddpm,dpm-sde --steps 8,10,15,20,25,50,100`; its own report, with its floors at \
         this N, is docs/{FOLDER}/EVAL.md). DPM-Solver++(2M) is the deterministic second-order \
         multistep solver (Lu et al. 2022); DDIM its first-order counterpart; DDPM the ancestral \
         sampler, and the SDE form of the solver its ancestral counterpart. FD / floor is against \
         the real-vs-real FD at this N{}{}.\n\n",
        floor.map_or(String::new(), |f| format!(" ({f:.3})")),
        r.same_n_spread().map_or(String::new(), |(mean, sd)| format!(
            "; FD between {} draws of real digits at this N has mean {mean:.3} and sd {sd:.3}, \
             so rows whose FDs differ by less than that differ by about the luck of a draw",
            r.real_vs_real_same_n_draws.len()
        ))
    );
    s += "| sampler | steps | judged acc. | FD | FD / floor | precision | recall | ink | time |\n";
    s += "|---|---|---|---|---|---|---|---|---|\n";
    for m in Method::ALL {
        for x in series(r, m) {
            s += &format!(
                "| {} | {} | {:.1}% | {:.3} | {} | {:.3} | {:.3} | {:.3} ({:+.1}%) | {:.0} s |\n",
                title(m),
                x.steps,
                100.0 * x.accuracy,
                x.frechet,
                floor.map_or("–".into(), |f| format!("{:.2}x", x.frechet / f)),
                x.precision,
                x.recall,
                x.ink.mean,
                100.0 * (x.ink.mean / r.held_out_ink.mean - 1.0),
                x.seconds
            );
        }
    }
    s += &format!(
        "\nFD (left) and judged accuracy (right) against steps, both on the sweep's samples; the \
         grey lines are the real-vs-real FD at this N and the 99% bar:\n\n![FD against steps]({FOLDER}/{PLOT})\n"
    );
    s
}
