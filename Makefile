# tenantlake: `make help` lists the targets.
#
# The two commands a newcomer needs:
#   make demo   sample tenants in a throwaway PostgreSQL, then the pipeline on them
#   make test   every test, with every service it needs started and stopped by itself

SHELL := /usr/bin/env bash
GO    ?= go
BIN   := bin/tenantlake
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.DEFAULT_GOAL := help
.PHONY: help build test emulators demo bench package fmt vet clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build the command into bin/tenantlake
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/tenantlake

# ---- services the tests need, built before `make test` runs ----
# The BigQuery emulator (goccy/bigquery-emulator, pinned in
# scripts/bigquery-emulator/go.mod) is built once into .cache/bin; the first
# build takes about 11 minutes and needs clang, later ones reuse Go's cache.
# The tests start it (and PostgreSQL) themselves.
emulators: ## build the BigQuery emulator the tests use, once (scripts/bigquery-emulator.sh)
	scripts/bigquery-emulator.sh

test: emulators ## gofmt check, go vet and every test, with a throwaway PostgreSQL (scripts/test.sh)
	scripts/test.sh

demo: build ## run the demo on sample tenants (scripts/demo.sh)
	scripts/demo.sh

bench: build ## benchmarks: read and warehouse load against raw COPY (scripts/bench.sh; ROWS, ROUNDS), the event-driven cycle and as-of (scripts/bench-cycle.sh; TENANTS, SNAPSHOTS)
	TENANTLAKE=$(BIN) scripts/bench.sh
	TENANTLAKE=$(BIN) scripts/bench-cycle.sh

package: ## the Cloud Functions source archive dist/tenantlake-functions.zip, checked to build as the Go buildpack builds it (scripts/package.sh)
	scripts/package.sh

fmt: ## format every Go file
	gofmt -w $$(find . -name '*.go' -not -path './.cache/*' -not -path './.git/*')

vet: ## go vet every package
	$(GO) vet ./...

clean: ## remove built binaries and demo state (keeps the emulator build cache)
	rm -rf bin dist .cache/demo
