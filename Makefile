# Conduit — build, run, test, bench.
#
#   make run     build and start Conduit on examples/quickstart.yaml (http://127.0.0.1:8080)
#   make test    install what the tests need, then run every test
#   make bench   side-by-side benchmark against nginx, Caddy and HAProxy (see docs/benchmarks.md)

GO        ?= go
TAGS      ?= grpcnotrace
LDFLAGS   ?= -s -w
BIN       ?= bin
GOFLAGS_BUILD = -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)'
TEST_TIMEOUT ?= 15m

.PHONY: all build build-full run test test-deps test-go fuzz-smoke vet fmt-check bench clean

all: build

build:
	$(GO) build $(GOFLAGS_BUILD) -o $(BIN)/conduit ./cmd/conduit

build-full:
	$(GO) build $(GOFLAGS_BUILD) -o $(BIN)/conduit-full ./cmd/conduit-full

run: build
	cd examples && ../$(BIN)/conduit -c quickstart.yaml --bind 127.0.0.1

# test-deps installs the Debian packages and pinned Go tools the tests use. It is idempotent
# and quiet when everything is present.
test-deps:
	@./.ci/deps.sh

test: test-deps vet fmt-check test-go fuzz-smoke

test-go:
	$(GO) test -tags '$(TAGS)' -timeout $(TEST_TIMEOUT) ./...

# fuzz-smoke runs every fuzz target for a few seconds so that parsers stay panic-free.
fuzz-smoke:
	@./.ci/fuzz-smoke.sh 5s

vet:
	$(GO) vet -tags '$(TAGS)' ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench:
	$(GO) run ./cmd/conduit-bench $(BENCH_ARGS)

clean:
	rm -rf $(BIN)
