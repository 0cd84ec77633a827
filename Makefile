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
# RelWithDebInfo compiles (-g) would otherwise hash the build folder: no hits across clones/build folders.
export CCACHE_NOHASHDIR := 1

.PHONY: setup-dev configure build test test-unit test-parity test-e2e test-arm64 fuzz demo bench clean
.PHONY: wheel docker-build docker-run docker-lint
.PHONY: wave

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

test: test-unit test-parity test-e2e fuzz test-arm64

# aarch64: cross-compiled (build-arm64, aarch64 CPU torch wheel) and tested under qemu-aarch64 (scripts/test-arm64.sh).
test-arm64:
	JOBS=$(JOBS) bash scripts/test-arm64.sh

# The main job for now: what the machine offers, then a forward pass through a model folder.
demo: build
	bash scripts/demo.sh

# The studio (web UI + API) on http://127.0.0.1:10101/ (`llmstudio ui`; UI_FLAGS="--allow-path /models ...").
wave: build
	$(LLMS) ui $(UI_FLAGS)

bench: build
	$(PY) bench/run_all.py

# `pip install .` as a wheel in dist/ (pyproject.toml; build folder build-wheel/, shared ccache).
wheel:
	@bash scripts/setup-dev.sh
	bash scripts/build-wheel.sh $(or $(WHEEL_DIR),dist)

# Docker (docs/PLATFORMS.md, "Docker"): DOCKER_FLAVOR=cuda|cpu, DOCKER_PLATFORM=linux/arm64|linux/amd64.
DOCKER_FLAVOR ?= cuda
DOCKER_PLATFORM ?= linux/$(shell uname -m | sed -e s/x86_64/amd64/ -e s/aarch64/arm64/)
DOCKER_IMAGE ?= llmstudio:$(DOCKER_FLAVOR)
docker-build:
	docker buildx build --platform $(DOCKER_PLATFORM) -f docker/Dockerfile.$(DOCKER_FLAVOR) -t $(DOCKER_IMAGE) --load .

# The studio on port 10101; binding 0.0.0.0 inside the container needs a token: LLMSTUDIO_TOKEN=... make docker-run
docker-run:
	@test -n "$$LLMSTUDIO_TOKEN" || { echo "docker-run: set LLMSTUDIO_TOKEN (the studio refuses a public bind without a token)" >&2; exit 1; }
	docker run --rm -it -p 10101:10101 -e LLMSTUDIO_TOKEN -v llmstudio-data:/data \
	  $(if $(filter cuda,$(DOCKER_FLAVOR)),--gpus all) $(DOCKER_IMAGE)

docker-lint:
	@bash scripts/setup-dev.sh
	.venv/bin/hadolint docker/Dockerfile.cuda docker/Dockerfile.cpu

clean:
	rm -rf $(BUILD) build-fuzz build-wheel dist
