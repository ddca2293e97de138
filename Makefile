# Outpost: `make run` installs what is missing, builds and starts the daemon;
# `make test` builds and runs every test.
SWIFT ?= swift
CONFIG ?= release
ARGS ?=

export SWIFT_BACKTRACE ?= enable=no

.PHONY: all deps build build-debug run test clean bench

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build -c $(CONFIG) --product outpost
	$(SWIFT) build -c $(CONFIG) --product outpost-echo
	@echo "built: $$($(SWIFT) build -c $(CONFIG) --show-bin-path)/outpost"

build-debug: deps
	$(SWIFT) build

run: build
	"$$($(SWIFT) build -c $(CONFIG) --show-bin-path)/outpost" serve $(ARGS)

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
