# LLM Studio — every target installs what it needs (idempotent), so a fresh clone needs only `make demo`/`make test`.
SHELL := /bin/bash
BUILD ?= build
PRESET_FLAGS ?=
JOBS ?= $(shell nproc)
PY := .venv/bin/python
LLMS := $(BUILD)/bin/llmstudio
SHARED ?= $(abspath ../shared)

# Fresh clones in other folders reuse the compiler cache.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_SLOPPINESS := pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_MAXSIZE ?= 10G

.PHONY: setup-dev configure build test test-unit test-parity test-e2e fuzz demo bench clean

setup-dev:
	@bash scripts/setup-dev.sh
	@$(MAKE) --no-print-directory configure

configure: $(BUILD)/build.ninja

$(BUILD)/build.ninja: CMakeLists.txt cmake/Dependencies.cmake scripts/requirements-dev.txt
	@bash scripts/setup-dev.sh
	cmake -S . -B $(BUILD) -G Ninja $(PRESET_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-parity: build
	LLMS_BIN=$(abspath $(LLMS)) LLMS_BUILD_DIR=$(abspath $(BUILD)) LLMS_SHARED_FIXTURES=$(SHARED)/fixtures $(PY) -m pytest -q tests/parity

test-e2e: build
	LLMS_BIN=$(abspath $(LLMS)) LLMS_BUILD_DIR=$(abspath $(BUILD)) $(PY) -m pytest -q tests/e2e

fuzz:
	bash scripts/run-fuzz.sh $(or $(FUZZ_SECONDS),30)

test: test-unit test-parity test-e2e fuzz

# The main job for now: what the machine offers, then a forward pass through a model folder.
demo: build
	bash scripts/demo.sh

bench: build
	$(PY) bench/run_all.py

clean:
	rm -rf $(BUILD) build-fuzz
