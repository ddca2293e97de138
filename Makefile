# Outpost: `make run` installs what is missing, builds and starts the daemon;
# `make test` builds and runs every test.
SWIFT ?= swift
CONFIG ?= release
ARGS ?=

export SWIFT_BACKTRACE ?= enable=no

# Release builds link the Swift runtime into the binary: retain/release become direct calls and
# the runtime's thread-locals need no __tls_get_addr, which cut the gateway's CPU per request by
# about a tenth in an A/B (bench/README.md, Gateway). They also compile every module, SwiftNIO's
# included, without the run-time exclusivity checks and with cross-module optimisation (generic
# code of other modules specialised where it is used): together about 13 % less CPU per
# proxied request in side-by-side A/Bs (bench/README.md, Gateway, 2026-11-30). Debug builds,
# which run the tests, keep the checks, so an overlapping access in tested code still traps.
# bench/inference/run.py builds its binary with the same flags (other flags would rebuild all).
RELEASE_FLAGS = --static-swift-stdlib -Xswiftc -enforce-exclusivity=unchecked -Xswiftc -cross-module-optimization
BUILD_FLAGS = $(if $(filter release,$(CONFIG)),$(RELEASE_FLAGS),)

.PHONY: all deps build build-debug run test clean bench

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build -c $(CONFIG) $(BUILD_FLAGS) --product outpost
	$(SWIFT) build -c $(CONFIG) $(BUILD_FLAGS) --product outpost-echo
	@echo "built: $$($(SWIFT) build -c $(CONFIG) $(BUILD_FLAGS) --show-bin-path)/outpost"

build-debug: deps
	$(SWIFT) build

run: build
	"$$($(SWIFT) build -c $(CONFIG) $(BUILD_FLAGS) --show-bin-path)/outpost" serve $(ARGS)

test: deps
	@scripts/install-test-deps.sh
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

clean:
	rm -rf .build

# Benchmarks run by hand, one at a time (they share the cores), against the release build.
bench: build
	bench/cold-start/run.py
	bench/autoscale/run.py
	bench/footprint/run.py
	bench/gateway/run.py
	bench/gateway/tls.py
	bench/inference/run.py
	bench/inference/v2-http.py
	bench/eventing/run.py
