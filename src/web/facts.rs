//! The calls of [`Demo`] that hold no state: what the page starts from, the steps and the
//! comparisons a setting makes, and the checks of a manifest, a weight file and a drawing, so
//! that the page asks the crate rather than restating it.

use wasm_bindgen::prelude::*;

use super::Demo;
use crate::grid::push_scale;
use crate::settings::SampleSettings;
use crate::weights::Manifest;
use crate::Error;

#[wasm_bindgen]
impl Demo {
    /// What the page starts from, as JSON, so that the page and the CLI share one default:
    /// `"guidance"`, the setting its sliders start at ([`STARTING`](crate::guidance::STARTING):
    /// `{"mode", "scale", "cfg_scale", "grad"}`, and `"interval": [lo, hi]` where the classifier
    /// acts at some steps only); `"start_scales"`, the s each form of the gradient starts from when
    /// it is picked (`{"xt", "norm", "x0"}`, [`Grad::start_scale`](crate::guidance::Grad::start_scale));
    /// `"run"`, the sampler, steps and finish (`{"method", "steps", "place"}`:
    /// [`DEFAULT_METHOD`](crate::settings::DEFAULT_METHOD),
    /// [`DEFAULT_STEPS`](crate::settings::DEFAULT_STEPS),
    /// [`DEFAULT_PLACE`](crate::settings::DEFAULT_PLACE)); and `"push_per_step"`, the push
    /// view's full-colour shift times a run's steps ([`push_scale`] of one step).
    pub fn starting() -> String {
        use crate::guidance::Grad;
        let scales: serde_json::Map<String, serde_json::Value> = Grad::ALL
            .into_iter()
            .map(|g| (g.word().to_string(), g.start_scale().into()))
            .collect();
        serde_json::json!({
            "guidance": crate::guidance::STARTING,
            "start_scales": scales,
            "run": {
                "method": crate::settings::DEFAULT_METHOD,
                "steps": crate::settings::DEFAULT_STEPS,
                "place": crate::settings::DEFAULT_PLACE,
            },
            "push_per_step": push_scale(1),
        })
        .to_string()
    }

    /// How many steps a run of `settings_json` (a [`SampleSettings`] as JSON) takes: its steps,
    /// or an edit's share of them ([`SampleSettings::steps_run`]), so the page counts a run's
    /// steps as the sampler does.
    pub fn steps_run(settings_json: &str) -> Result<usize, JsError> {
        let settings: SampleSettings = serde_json::from_str(settings_json)
            .map_err(|e| JsError::new(&format!("the settings are not valid: {e}")))?;
        Ok(settings.steps_run())
    }

    /// The settings of a comparison (`preset` "scales" or "modes", the latter at classifier scale
    /// `scale`, classifier-free weight `cfg_scale`, the classifier's `interval`, "all" or
    /// "LO-HI", and the form of its gradient `grad`, "xt", "norm" or "x0") as JSON,
    /// `[{"mode", "scale", "cfg_scale", "interval", "grad", "label"}, ...]` in the
    /// order shown: the page and `sample --compare` share one definition
    /// ([`Compare::settings`](crate::guidance::Compare::settings)).
    pub fn compare_settings(
        preset: &str,
        scale: f64,
        cfg_scale: f64,
        interval: &str,
        grad: &str,
    ) -> Result<String, JsError> {
        use crate::guidance::{parse_interval, Compare, Grad, Guidance};
        let compare: Compare = serde_json::from_value(serde_json::Value::from(preset))
            .map_err(|_| JsError::new(&format!("there is no comparison named {preset:?}")))?;
        let at = Guidance {
            scale,
            cfg_scale,
            interval: parse_interval(interval).map_err(|e| JsError::new(&e))?,
            grad: Grad::from_word(grad)?,
            ..crate::guidance::DEFAULT
        };
        let list: Vec<serde_json::Value> = compare
            .settings(at)
            .into_iter()
            .map(|g| {
                let mut v = serde_json::to_value(g).expect("guidance serializes");
                v["label"] = g.label().into();
                v
            })
            .collect();
        Ok(serde_json::Value::from(list).to_string())
    }

    /// Checks the manifest's format version; returns it normalised as JSON for the page.
    pub fn check_manifest(manifest_json: &str) -> Result<String, JsError> {
        Ok(Manifest::parse(manifest_json)?.to_json())
    }

    /// The pad's drawing (28 x 28 bytes, light ink on black) as the digit "Edit drawing" starts
    /// from: its ink scaled into a 20 x 20 box and centred by mass, as MNIST's digits were and as
    /// `sample --init` prepares any image ([`Fit::drawing`](crate::digit::Fit::drawing)); 28 x 28
    /// bytes.
    pub fn prepare_drawing(ink: &[u8]) -> Result<Vec<u8>, JsError> {
        let fit = crate::digit::Fit::drawing(ink)?;
        Ok(fit.image(ink))
    }

    /// Checks one downloaded file (`"unet"` or `"classifier"`) against the manifest: size, then
    /// sha256.
    pub fn check_file(manifest_json: &str, which: &str, bytes: &[u8]) -> Result<(), JsError> {
        let m = Manifest::parse(manifest_json)?;
        Ok(match which {
            "unet" => m.unet.verify(bytes),
            "classifier" => m.classifier.verify(bytes),
            other => Err(Error::Setting(format!("unknown weight file {other:?}"))),
        }?)
    }
}
