# Conduit — build, run, test, bench.
#
#   make run     build and start Conduit on examples/quickstart.yaml (http://127.0.0.1:8080;
#                make run PORT=9000 serves the demo site on port 9000)
#   make test    install what the tests need, then run every test
#   make bench   side-by-side benchmark against nginx, Caddy and HAProxy (see docs/benchmarks.md)

GO        ?= go
TAGS      ?= grpcnotrace
LDFLAGS   ?= -s -w
BIN       ?= bin
# VERSION is what `conduit version` prints for make builds (goreleaser sets the release tag).
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null)
VERSION_X  = $(if $(VERSION),-X github.com/conduitproxy/conduit/core/cli.version=$(VERSION))
# Release builds are static (CGO_ENABLED=0), as goreleaser and xbuild build them.
GOFLAGS_BUILD = -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS) $(VERSION_X)'
TEST_TIMEOUT ?= 15m
# PORT is the port `make run` serves the quickstart's demo site on.
PORT      ?= 8080

.PHONY: all build build-full build-minimal xbuild sizes notice release-snapshot run test test-deps test-go test-plugins wasm-guests fuzz-smoke fuzz vet fmt-check bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/conduit ./cmd/conduit

build-full:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN)/conduit-full ./cmd/conduit-full

build-minimal:
	$(GO) run ./cmd/xbuild --bundle minimal -o $(BIN)/conduit-minimal

xbuild:
	$(GO) build -o $(BIN)/xbuild ./cmd/xbuild

# sizes builds minimal, standard and full and checks their size budgets.
sizes:
	CONDUIT_SIZE_BUDGETS=all $(GO) test -run SizeBudgetAll -v ./xbuild

# notice regenerates NOTICE from the full binary's build list (checked by cmd/notice's test).
notice:
	$(GO) run ./cmd/notice -o NOTICE

# release-snapshot builds every release archive locally (goreleaser v2.16.0, installed into
# $$HOME/.cache/conduit-tools/bin by .ci/tools.sh).
release-snapshot:
	./.ci/tools.sh goreleaser
	$$HOME/.cache/conduit-tools/bin/goreleaser release --snapshot --clean --skip=publish

run: build
	cd examples && ../$(BIN)/conduit -c quickstart.yaml --bind 127.0.0.1:$(PORT)

# test-deps installs the Debian packages and pinned Go tools the tests use. It is idempotent
# and quiet when everything is present.
test-deps:
	@./.ci/deps.sh

test: test-deps vet fmt-check test-go test-plugins fuzz-smoke

# HTTP1_MATRIX are the packages whose HTTP/1 tests run a second time with the HTTP/1 engine
# that is not the default (global.http1Engine; CONDUIT_HTTP1_ENGINE sets the default for
# configurations without the key), so that both engines are tested.
HTTP1_MATRIX ?= ./core/server/... ./core/h1guard/... ./core/h1engine/... ./modules/proxy/... ./test/...
HTTP1_OTHER ?= std

test-go:
	$(GO) test -tags '$(TAGS)' -timeout $(TEST_TIMEOUT) ./...
	CONDUIT_HTTP1_ENGINE=$(HTTP1_OTHER) $(GO) test -tags '$(TAGS)' -timeout $(TEST_TIMEOUT) -count=1 $(HTTP1_MATRIX)

# test-plugins builds, vets and tests plugins/example-header (its own Go module, which
# `go test ./...` does not reach) with its go.mod and go.sum exactly as committed. The xbuild
# --with build of it runs in test-go (TestIntegrationExampleHeader in ./xbuild).
test-plugins:
	cd plugins/example-header && GOWORK=off GOFLAGS=-mod=readonly $(GO) vet ./... && GOWORK=off GOFLAGS=-mod=readonly $(GO) test -count=1 ./...

# wasm-guests rebuilds the WASM guests of plugins/wasm (WAT, Rust and Go) from their sources;
# modules/wasm/guests_test.go checks that they still build to the committed .wasm files.
wasm-guests:
	$(MAKE) -C plugins/wasm

# fuzz-smoke fuzzes the untrusted-input parsers for a few seconds (go test already runs every
# fuzz target's seeds); `make fuzz` fuzzes every target.
fuzz-smoke:
	@./.ci/fuzz-smoke.sh 5s

fuzz:
	@FUZZ_ALL=1 ./.ci/fuzz-smoke.sh $${FUZZTIME:-30s}

vet:
	$(GO) vet -tags '$(TAGS)' ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench:
	$(GO) run ./cmd/conduit-bench $(BENCH_ARGS)

clean:
	rm -rf $(BIN)
