# guided-ddpm: every entry point a person or CI needs. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo
# The CLI binaries, wherever cargo puts its target directory: the sampler and trainer, and the
# lab's evaluation and reports (lab/).
BIN := $(or $(CARGO_TARGET_DIR),target)/release/guided-ddpm
LAB := $(or $(CARGO_TARGET_DIR),target)/release/guided-ddpm-lab
# The wasm tests build what the page ships: burn's fusion on, the `web` profile (www/index.html).
WASM := --profile web --target wasm32-unknown-unknown --no-default-features --features fusion
# The wasm tests, the page tests and the benchmarks reach into the module's test hooks; the site
# (`make site`, `make serve`) is built without them.
WASM_TEST := --profile web --target wasm32-unknown-unknown --no-default-features --features fusion,test-hooks
TEST_SITE := target/test-site
# wasm-bindgen's CLI must match the library version that Cargo.lock pins.
WASM_BINDGEN := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/version = "\(.*\)"/\1/p;}' Cargo.lock)
TRUNK_VERSION := 0.21.14
export CHROMEDRIVER ?= /usr/bin/chromedriver
# The whole wasm suite's limit (wasm-bindgen-test-runner): 11 tests on SwiftShader and the CPU path
# took 940 s on this 2-core machine on 2026-12-07 (nothing else running).
export WASM_BINDGEN_TEST_TIMEOUT ?= 1500

.PHONY: help serve site test test-native test-wasm test-site test-page test-gpu tools browser data weights train export eval build bench profile

help:
	@echo "make serve    install the tools if missing, build, and serve the demo at http://127.0.0.1:8080"
	@echo "make test     install what the tests need and run every test (native, wasm in Chromium, page)"
	@echo "make site     the static site in dist/ (trunk build --release)"
	@echo "make test-site the site with the test hooks in target/test-site/ (page tests, bench)"
	@echo "make weights  train all networks (resumable), export int8 weights, evaluate"
	@echo "make test-gpu the replayed step on a native GPU device (software Vulkan where there is none)"
	@echo "make bench    time native flex, WebGPU and the wasm CPU fallback; writes docs/BENCHMARKS.md"
	@echo "make profile  CPU profile of the page during WebGPU steps (names kept); writes docs/BENCHMARKS.md"

# ---- tools: from the Rust crate registry, Debian and npm only; installed only when missing ----
tools:
	@rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@wasm-bindgen --version 2>/dev/null | grep -qF "$(WASM_BINDGEN)" || $(CARGO) install wasm-bindgen-cli --version "$(WASM_BINDGEN)"
	@trunk --version 2>/dev/null | grep -qF "$(TRUNK_VERSION)" || $(CARGO) install trunk --version "$(TRUNK_VERSION)" --locked

browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

# ---- the demo ----
# Trunk builds offline (Trunk.toml), so the crates are fetched first: a fresh machine has none.
serve: tools
	$(CARGO) fetch --locked
	trunk serve --release

site: tools
	$(CARGO) fetch --locked
	trunk build --release

# ---- tests ----
test: test-native test-wasm test-page
	@echo "== every test passed at $$(date +%T)"

test-native: data
	@echo "== test-native from $$(date +%T)"
	$(CARGO) test --release --locked --workspace

test-wasm: tools browser
	@echo "== test-wasm from $$(date +%T)"
	$(CARGO) test $(WASM_TEST) --locked --test web

# The site with the test hooks in, for the page tests and `make bench`.
test-site: tools
	$(CARGO) fetch --locked
	GUIDED_DDPM_TEST_HOOKS=1 trunk build --release --dist $(TEST_SITE)

# The page tests run on the test site; one of them holds the shipped site (dist/) to exporting
# no test hook.
test-page: site test-site browser
	@echo "== test-page from $$(date +%T)"
	cd tests/page && npm ci --no-audit --no-fund && DIST=../../$(TEST_SITE) SHIPPED=../../dist npm test

# Not part of `make test`: the replayed step on a native GPU device (wgpu, WGSL, burn's fusion on),
# on whatever adapter the machine has; Mesa's software Vulkan (lavapipe) where there is no GPU.
test-gpu:
	@ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers; }
	$(CARGO) test --release --locked --features wgpu,fusion --test gpu -- --nocapture

# ---- benchmarks: native flex first, then the built site in headless Chromium ----
bench: data site test-site browser
	$(BIN) bench --out target/bench/native.json
	cd tests/page && npm ci --no-audit --no-fund && node bench.mjs --native ../../target/bench/native.json --dist ../../$(TEST_SITE) --shipped ../../dist --out ../../docs/BENCHMARKS.md

# A site whose wasm keeps its name section (www/strip-wasm.mjs skips it), profiled in Chromium.
profile: tools browser
	$(CARGO) fetch --locked
	GUIDED_DDPM_KEEP_NAMES=1 GUIDED_DDPM_TEST_HOOKS=1 trunk build --release --dist target/profile-site
	cd tests/page && npm ci --no-audit --no-fund && node profile.mjs --dist ../../target/profile-site --out ../../docs/BENCHMARKS.md

# ---- data, training, weights ----
build:
	$(CARGO) build --release --locked --workspace

data: build
	$(BIN) data

# The recipe of the shipped networks (their logs in checkpoints/*-log.csv): each line resumes the
# run where the line before left it, so AdamW's state carries over and only the learning rate or
# the label dropout changes. The shipped runs were also stopped and resumed without their
# optimizer state (a warm-up again each time) and every resume reseeds the batches from its step,
# so a rebuild follows the same recipe without reproducing the weights bit for bit.
# U-Net: lr 4e-4, batch 64, shifts of up to 2 pixels; label dropout 0.15, then 0.3 from 22,900.
# Guidance classifier: lr 1e-3, 3e-4 from 1,775, 1e-4 from 12,000. Judge: 1,500 steps at 1e-3.
# The autoencoder is eval's second feature space (guided-ddpm-lab autoencoder).
train: data
	$(BIN) train unet --steps 22900 --p-uncond 0.15 --resume
	$(BIN) train unet --steps 32802 --p-uncond 0.3 --resume
	$(BIN) train classifier --steps 1775 --resume
	$(BIN) train classifier --steps 12000 --lr 3e-4 --resume
	$(BIN) train classifier --steps 15000 --lr 1e-4 --resume
	$(BIN) train judge --steps 1500 --resume
	$(LAB) autoencoder --steps 12000 --resume

export: build
	$(BIN) export

eval: data
	$(LAB) eval

weights: train export eval
