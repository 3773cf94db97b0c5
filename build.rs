//! Tells the wasm tests (tests/web.rs) which weight files the shipped manifest names: `export`
//! names them by content (`unet-<hash>.safetensors`), and `include_bytes!` needs the name at
//! compile time. Nothing else reads these variables.
//!
//! Also turns on `cfg(test_hooks)`, what the wasm tests, the page tests and `make bench` reach
//! into, with feature `test-hooks` (cargo's own builds) or `GUIDED_DDPM_TEST_HOOKS=1` (trunk's
//! build of the test site: trunk takes the page's cargo features from www/index.html, so the
//! site and the test site differ by this variable).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(test_hooks)");
    println!("cargo:rerun-if-env-changed=GUIDED_DDPM_TEST_HOOKS");
    let asked = std::env::var("GUIDED_DDPM_TEST_HOOKS").is_ok_and(|v| v == "1");
    if asked || std::env::var_os("CARGO_FEATURE_TEST_HOOKS").is_some() {
        println!("cargo:rustc-cfg=test_hooks");
    }
    println!("cargo:rerun-if-changed=weights/manifest.json");
    let text = std::fs::read_to_string("weights/manifest.json").unwrap_or_default();
    for (net, var) in [
        ("unet", "GUIDED_DDPM_UNET_FILE"),
        ("classifier", "GUIDED_DDPM_CLASSIFIER_FILE"),
    ] {
        let name = file_of(&text, net).unwrap_or_else(|| format!("{net}.safetensors"));
        println!("cargo:rustc-env={var}={name}");
    }
}

/// The `file` of the manifest's top-level `"<net>": { "file": ... }` entry (the first one: the
/// provenance's entries of the same name come after it and have no `file`).
fn file_of(text: &str, net: &str) -> Option<String> {
    let entry = text.find(&format!("\"{net}\": {{"))?;
    let rest = &text[entry..];
    let key = rest.find("\"file\": \"")? + "\"file\": \"".len();
    let end = rest[key..].find('"')?;
    Some(rest[key..key + end].to_string())
}
