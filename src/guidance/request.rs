//! The request: which guidance a run asks for, its strengths, where the classifier's gradient
//! acts and in what form; the labels eval, the URL and the CLI write, and the checks that refuse
//! an impossible setting with a sentence.

use serde::{Deserialize, Serialize};

use crate::Error;

/// Which guidance the sampler applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The unconditional model alone: the class is ignored.
    None,
    /// The unconditional model steered by the noise-aware classifier (the paper's setting).
    Classifier,
    /// Classifier-free: the conditional and unconditional model mixed.
    Free,
    /// Classifier-free mixing plus the classifier gradient.
    Both,
}

impl Mode {
    /// Whether the classifier gradient is taken.
    pub const fn uses_classifier(self) -> bool {
        matches!(self, Mode::Classifier | Mode::Both)
    }

    /// Whether the conditional U-Net branch is run.
    pub const fn uses_free(self) -> bool {
        matches!(self, Mode::Free | Mode::Both)
    }
}

/// A guidance setting: the mode, its two strengths, and where the classifier's gradient acts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Guidance {
    pub mode: Mode,
    /// Classifier scale s.
    pub scale: f64,
    /// Classifier-free weight w.
    pub cfg_scale: f64,
    /// A guidance interval (Kynkaanniemi et al. 2024, "Applying Guidance in a Limited Interval
    /// Improves Sample and Distribution Quality in Diffusion Models"): the classifier's gradient
    /// acts only at the steps whose original timestep t lies in `[lo, hi]` (inclusive), and the
    /// other steps take s = 0 (their backward pass is skipped where steps run eagerly); `None`
    /// guides at every step. Classifier-free mixing is not limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<[usize; 2]>,
    /// Where the classifier's gradient is taken and how it is sized ([`Grad`]); the paper's
    /// gradient at x_t unless asked.
    #[serde(default, skip_serializing_if = "Grad::is_xt")]
    pub grad: Grad,
}

/// Where the classifier's gradient is taken and how a step sizes it. Each form hands the step a
/// gradient in x_t's terms, which the step applies as the paper's does (`s * Sigma_t * g` added
/// to the DDPM mean, `s * sqrt(1 - abar_t) * g` taken from eps; [`condition_mean`],
/// [`condition_score`]), so s keeps its place and only its meaning changes ([`applied_grad`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Grad {
    /// g = grad_{x_t} log p_phi(y | x_t, t), the paper's (Dhariwal & Nichol 2021, Algorithm 1).
    #[default]
    Xt,
    /// The paper's gradient rescaled, per sample, to the length of the model's own score
    /// estimate -eps / sqrt(1 - abar_t): `g = grad * |eps| / (sqrt(1 - abar_t) |grad|)`, so that
    /// s is the ratio of the classifier's push to the model's at every step, whether the
    /// classifier is unsure (a large gradient) or sure (a vanishing one). Gradient
    /// normalisation in the spirit of normalised classifier guidance (nrCG, arXiv 2507.00687);
    /// the length is that of the model's score here.
    Norm,
    /// The gradient of the clean-digit reading, taken at the predicted x0 (clipped, as the step
    /// clips it) and with the classifier told t = 0: `g0 = grad_{x0} log p_phi(y | x0_hat, 0)`,
    /// handed to the step as `g = g0 sqrt(abar_t) / (1 - abar_t)`, so that the step moves its
    /// predicted x0 by `s * g0` at every t (where x0 is not clipped): guidance as a step on the
    /// data estimate, as manifold-preserving guided diffusion takes it (He et al. 2024), with the
    /// U-Net's Jacobian left out. The progress chart still reads p(y | x_t, t).
    X0,
}

impl Grad {
    /// Every form, in the order the page's menu and the reports list them.
    pub const ALL: [Grad; 3] = [Grad::Xt, Grad::Norm, Grad::X0];

    /// The paper's gradient, which labels and URLs leave unnamed.
    pub const fn is_xt(&self) -> bool {
        matches!(self, Grad::Xt)
    }

    /// The word labels, the command line and the page's URL use.
    pub const fn word(self) -> &'static str {
        match self {
            Grad::Xt => "xt",
            Grad::Norm => "norm",
            Grad::X0 => "x0",
        }
    }

    /// Reads [`word`](Self::word).
    pub fn from_word(word: &str) -> Result<Grad, Error> {
        Grad::ALL
            .into_iter()
            .find(|g| g.word() == word)
            .ok_or_else(|| {
                Error::Setting(format!(
                    "the classifier's gradient is taken at xt, norm or x0, got {word:?}"
                ))
            })
    }
}

/// The demo's default setting: the conditional model (classifier-free w = 0) steered by the
/// noise-aware classifier's gradient taken at the predicted x0 ([`Grad::X0`]) at s = 16, drawn
/// with DPM-Solver++(2M) in 8 steps ([`DEFAULT_METHOD`](crate::settings::DEFAULT_METHOD),
/// [`DEFAULT_STEPS`](crate::settings::DEFAULT_STEPS)) and placed as MNIST's digits were
/// ([`DEFAULT_PLACE`](crate::settings::DEFAULT_PLACE)). Picked by the evaluation's front rule
/// (`guided_ddpm_lab::targets::front_pick`, lab/src/targets.rs; docs/EVAL.md has the numbers):
/// of the rows that take the classifier's gradient and meet every target the default is held
/// to, issue 43's realism targets among them (a two-sample test, ink, black pixels, copying),
/// the fewest steps, then the least often told from real digits, ties within a draw's noise
/// broken by the lowest FD. At w = 0 a step runs the U-Net's conditional branch alone. The
/// page's s slider for this form moves in whole steps (www/url.js), so it can show this s.
pub const DEFAULT: Guidance = Guidance {
    grad: Grad::X0,
    ..Guidance::new(Mode::Both, 16.0, 0.0)
};

/// A setting that runs every part of a guided step: both U-Net branches (classifier-free w = 1)
/// and the classifier gradient (s = 4); the default until 2026-12-03. Tests that must exercise
/// the whole step use it, whatever the default is.
pub const FULL_STEP: Guidance = Guidance::new(Mode::Both, 4.0, 1.0);

impl Grad {
    /// The classifier scale s a run with this form of the gradient starts from (the CLI's
    /// `--scale` left out, the page's s slider when the form is picked): the s of the form's row
    /// beside the default's mode in eval's list (lab/src/kept.rs, `settings`; docs/EVAL.md):
    /// `both s=0.75 w=0` for the paper's gradient (the default until 2026-12-07),
    /// `both s=0.01 w=0 g=norm`, and the default's own `both s=16 w=0 g=x0` (a test holds
    /// `STARTING` to `DEFAULT`). The forms' scales differ by orders of magnitude, so no one s
    /// serves them all.
    pub const fn start_scale(self) -> f64 {
        match self {
            Grad::Xt => 0.75,
            Grad::Norm => 0.01,
            Grad::X0 => 16.0,
        }
    }
}

/// The strengths a user starts from: the page's sliders, and `sample` without `--scale` or
/// `--cfg-scale`: the default's own, s its form's [`start_scale`](Grad::start_scale), which is
/// the default's s where the default takes the classifier's gradient.
pub const STARTING: Guidance = starting(DEFAULT.grad);

/// [`STARTING`] with the classifier's gradient in form `grad`, at that form's start scale.
pub const fn starting(grad: Grad) -> Guidance {
    Guidance {
        scale: grad.start_scale(),
        grad,
        ..DEFAULT
    }
}

/// The largest classifier scale a run accepts: over ten times the strongest setting evaluated
/// (s = 8, already the boldest digits of the sweep); a larger one only saturates the image.
pub const MAX_SCALE: f64 = 100.0;
/// The largest classifier scale a run with the normalised gradient ([`Grad::Norm`]) accepts:
/// the classifier's push as long as the model's own.
pub const MAX_NORM_SCALE: f64 = 1.0;
/// The largest classifier-free weight a run accepts: ten times the strongest evaluated (w = 2).
pub const MAX_CFG_SCALE: f64 = 20.0;

/// The classifier scales of the "scales" comparison (the page's Compare, `sample --compare
/// scales`): the classifier alone from off to strong.
pub const COMPARE_SCALES: [f64; 5] = [0.0, 1.0, 2.0, 4.0, 8.0];

/// A side-by-side comparison of guidance settings from the same noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Compare {
    /// The classifier alone at each of [`COMPARE_SCALES`].
    Scales,
    /// The four modes, at the given classifier scale s and classifier-free weight w.
    Modes,
}

impl Compare {
    /// The settings compared, in the order they are shown; `at` gives s and w for `Modes`.
    pub fn settings(self, at: Guidance) -> Vec<Guidance> {
        // Compared settings share one interval and one form of the gradient (a batched step has
        // one of each): the modes take the given setting's, the classifier's scales guide at
        // every step with the paper's gradient, as they always have.
        let g = |mode, scale, cfg_scale| Guidance {
            interval: at.interval,
            grad: at.grad,
            ..Guidance::new(mode, scale, cfg_scale)
        };
        match self {
            Compare::Scales => COMPARE_SCALES
                .iter()
                .map(|&s| Guidance::new(Mode::Classifier, s, 0.0))
                .collect(),
            Compare::Modes => vec![
                g(Mode::None, 0.0, 0.0),
                g(Mode::Classifier, at.scale, 0.0),
                g(Mode::Free, 0.0, at.cfg_scale),
                g(Mode::Both, at.scale, at.cfg_scale),
            ],
        }
    }
}

impl Guidance {
    /// A setting that guides at every step.
    pub const fn new(mode: Mode, scale: f64, cfg_scale: f64) -> Guidance {
        Guidance {
            mode,
            scale,
            cfg_scale,
            interval: None,
            grad: Grad::Xt,
        }
    }

    /// A short label of the setting: "none", "classifier s=4", "free w=1", "both s=4 w=1",
    /// "both s=1 w=0 g=norm t=250-749" (with the gradient's form where it is not the paper's,
    /// and an interval; both only where the classifier is used).
    pub fn label(&self) -> String {
        let mut label = match self.mode {
            Mode::None => "none".into(),
            Mode::Classifier => format!("classifier s={}", self.scale),
            Mode::Free => format!("free w={}", self.cfg_scale),
            Mode::Both => format!("both s={} w={}", self.scale, self.cfg_scale),
        };
        if self.mode.uses_classifier() {
            if !self.grad.is_xt() {
                label += &format!(" g={}", self.grad.word());
            }
            if let Some([lo, hi]) = self.interval {
                label += &format!(" t={lo}-{hi}");
            }
        }
        label
    }

    /// Reads a setting from its [`label`](Self::label) ("both s=1 w=0 g=norm t=250-749"), so that a
    /// setting no list names can be asked for by the words the reports use.
    pub fn from_label(label: &str) -> Result<Guidance, Error> {
        let bad = || {
            Error::Setting(format!(
                "{label:?} is not a guidance setting like \"both s=1 w=0 t=250-749\""
            ))
        };
        let mut words = label.split_whitespace();
        let mode = match words.next() {
            Some("none") => Mode::None,
            Some("classifier") => Mode::Classifier,
            Some("free") => Mode::Free,
            Some("both") => Mode::Both,
            _ => return Err(bad()),
        };
        let mut g = Guidance::new(mode, 0.0, 0.0);
        for word in words {
            let (key, value) = word.split_once('=').ok_or_else(bad)?;
            match key {
                "s" => g.scale = value.parse().map_err(|_| bad())?,
                "w" => g.cfg_scale = value.parse().map_err(|_| bad())?,
                "t" => g.interval = parse_interval(value).map_err(|_| bad())?,
                "g" => g.grad = Grad::from_word(value).map_err(|_| bad())?,
                _ => return Err(bad()),
            }
        }
        g.validate()?;
        if g.label() != label {
            return Err(bad());
        }
        Ok(g)
    }

    /// The classifier scale at original timestep `t`: s inside the interval, 0 outside it, and
    /// 0 wherever the mode takes no classifier gradient.
    pub fn scale_at(&self, t: usize) -> f64 {
        match self.mode.uses_classifier() && holds(self.interval, t) {
            true => self.scale,
            false => 0.0,
        }
    }

    /// Whether a step under this setting runs both U-Net branches to mix them: classifier-free
    /// at a w other than 0 (at w = 0 the mix is the conditional branch alone).
    pub fn runs_both_branches(&self) -> bool {
        self.mode.uses_free() && self.cfg_scale != 0.0
    }

    /// Rejects negative or non-finite strengths and an empty or out-of-range interval.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some([lo, hi]) = self.interval {
            if lo > hi || hi >= crate::schedule::T {
                return Err(Error::Setting(format!(
                    "the guidance interval must be two timesteps lo <= hi below {}, got {lo}-{hi}",
                    crate::schedule::T
                )));
            }
        }
        let (max_scale, why_scale) = match self.grad {
            Grad::Norm => (
                MAX_NORM_SCALE,
                "with the normalised gradient, s = 1 pushes as hard as the model itself",
            ),
            Grad::Xt | Grad::X0 => (
                MAX_SCALE,
                "s = 8 already draws the boldest digits of the sweep, ink +37%",
            ),
        };
        for (name, v, max, why) in [
            ("classifier scale", self.scale, max_scale, why_scale),
            (
                "classifier-free scale",
                self.cfg_scale,
                MAX_CFG_SCALE,
                "w = 2 already draws ink +23%",
            ),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::Setting(format!(
                    "the {name} must be a finite number >= 0, got {v}"
                )));
            }
            if v > max {
                return Err(Error::Setting(format!(
                    "the {name} must be at most {max} ({why}; docs/EVAL.md), got {v}"
                )));
            }
        }
        Ok(())
    }
}

/// Whether a guidance interval holds original timestep `t` (`None`, every step, holds all).
pub(super) fn holds(interval: Option<[usize; 2]>, t: usize) -> bool {
    interval.is_none_or(|[lo, hi]| (lo..=hi).contains(&t))
}

/// Reads a guidance interval as the command line and the page's URL write it: `LO-HI`
/// (original timesteps, inclusive) or `all` (`None`, every step); the range is checked by
/// [`Guidance::validate`].
pub fn parse_interval(text: &str) -> Result<Option<[usize; 2]>, String> {
    if text == "all" {
        return Ok(None);
    }
    let bad =
        || format!("the guidance interval must be LO-HI (timesteps 0-999) or all, got {text:?}");
    let (lo, hi) = text.split_once('-').ok_or_else(bad)?;
    let n = |v: &str| v.trim().parse::<usize>().map_err(|_| bad());
    Ok(Some([n(lo)?, n(hi)?]))
}
