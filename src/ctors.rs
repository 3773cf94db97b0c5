//! Static constructors, run once per WebAssembly instance (wasm only).
//!
//! cubecl registers its IR types through `inventory`, which on wasm32 puts one constructor per
//! registration into `.init_array`; wasm-ld gathers them into the synthetic `__wasm_call_ctors`.
//! When nothing in a module calls that function, wasm-ld treats the module as a "command" and
//! wraps *every* exported function with a call to it, so each call from JavaScript into the module
//! (several per GPU dispatch) re-ran several hundred constructors: 92% of the page's CPU profile
//! during WebGPU sampling (issue "WebGPU that earns its place"). Calling it explicitly, once, from
//! [`init`] turns the wrapping off for the whole module.
//!
//! [`init`] runs from the module's start function (wasm-bindgen calls it right after
//! instantiation) and again, as a no-op, from every entry point that may run first, such as
//! [`crate::web::Demo::create`] and the wasm tests. [`constructor_runs`] counts how often the
//! constructors ran, through a constructor of this module's own, so a test can see that it is 1
//! however many exports were called.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use wasm_bindgen::prelude::*;

extern "C" {
    /// Synthesised by wasm-ld: calls every function in `.init_array`, in priority order.
    fn __wasm_call_ctors();
}

static DONE: AtomicBool = AtomicBool::new(false);
static RUNS: AtomicU32 = AtomicU32::new(0);

extern "C" fn count_run() {
    RUNS.fetch_add(1, Ordering::Relaxed);
}

/// One constructor of our own, registered the way `inventory` registers cubecl's.
#[used]
#[link_section = ".init_array"]
static COUNT_RUN: extern "C" fn() = count_run;

/// Runs the module's static constructors if they have not run yet. wasm is single-threaded per
/// instance, so the flag needs no stronger ordering.
pub fn init() {
    if !DONE.swap(true, Ordering::Relaxed) {
        // SAFETY: `__wasm_call_ctors` only runs the constructors that the linked crates
        // registered; the flag makes sure this instance runs them exactly once, before any code
        // that reads what they register (everything reaches here first).
        unsafe { __wasm_call_ctors() };
    }
}

#[wasm_bindgen(start)]
pub fn start() {
    init();
}

/// How many times the static constructors have run in this instance: 1 once the module has
/// started. More means wasm-ld is wrapping exports again (each export call re-runs them). A
/// test hook (feature `test-hooks`).
#[cfg(test_hooks)]
#[wasm_bindgen]
pub fn constructor_runs() -> u32 {
    RUNS.load(Ordering::Relaxed)
}
