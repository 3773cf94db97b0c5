//! What the wasm tests, the page tests and `make bench` reach into (feature `test-hooks`); the
//! site's build has none of it.

use burn::tensor::Device;
use wasm_bindgen::prelude::*;

use super::Demo;

/// Test hook for the wasm tests, which share one WebGPU device (a second init fails): a Demo on
/// `device`, as [`Demo::create`] makes one.
impl Demo {
    pub fn on_device(device: Device, gpu: bool) -> Demo {
        Demo {
            backend: format!("test device (gpu: {gpu})"),
            ..Demo::blank(device, gpu)
        }
    }
}

#[wasm_bindgen]
impl Demo {
    /// Whether this module was built with the test hooks: the page installs its own hooks
    /// (`globalThis.guidedDdpm`) only then.
    pub fn test_hooks() -> bool {
        true
    }

    /// Whether later runs on WebGPU replay one recorded step (true, the default) or run every
    /// step eagerly; the CPU path always runs eagerly.
    pub fn set_replay(&self, replay: bool) {
        self.replay.set(replay);
    }

    /// Times a guided step phase by phase and a whole run on this page's device
    /// (`bench::BenchSettings` as JSON in, `bench::StepReport` as JSON out); `make bench` drives it.
    pub async fn bench(&self, settings_json: &str) -> Result<String, JsError> {
        let settings: crate::bench::BenchSettings = serde_json::from_str(settings_json)
            .map_err(|e| JsError::new(&format!("the benchmark settings are not valid: {e}")))?;
        let (unet, classifier) = {
            let nets = self.nets()?;
            (nets.unet.clone(), nets.classifier.clone())
        };
        let report = crate::bench::steps(&unet, &classifier, &settings, &self.device).await?;
        Ok(serde_json::to_string(&report).expect("the report serializes"))
    }

    /// GFLOP/s of `reps` products of two `n x n` matrices on this page's device, as JSON.
    pub async fn bench_matmul(&self, n: usize, reps: usize) -> Result<String, JsError> {
        let report = crate::bench::matmul(n, reps, &self.device).await?;
        Ok(serde_json::to_string(&report).expect("the report serializes"))
    }

    /// Bytes of WebAssembly linear memory: it only grows, so this is its peak so far.
    pub fn wasm_memory_bytes() -> f64 {
        wasm_bindgen::memory()
            .unchecked_into::<js_sys::WebAssembly::Memory>()
            .buffer()
            .unchecked_into::<js_sys::ArrayBuffer>()
            .byte_length() as f64
    }
}
