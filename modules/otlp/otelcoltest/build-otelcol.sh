#!/usr/bin/env bash
# Builds a minimal OpenTelemetry Collector for the otlp module's integration test: the core
# OTLP receiver (gRPC + HTTP) and the contrib file exporter, at pinned versions, into
# $HOME/.cache/conduit-tools/bin/otelcol-test. Built once; later runs return at once.
#
# The file exporter's test-only dependency otlpencodingextension@v0.162.0 is refused by the
# module proxy used here, so builder only generates the sources (--skip-get-modules
# --skip-compilation) and the module is resolved with `go mod tidy -e`, which tolerates it.
set -euo pipefail

COLLECTOR_VERSION=v0.162.0   # builder, receiver and exporter versions (v0.163+ needs a refused module)
CONFMAP_VERSION=v1.68.0      # the confmap providers builder v0.162.0 generates imports for
BIN="${CONDUIT_TOOLS_BIN:-$HOME/.cache/conduit-tools/bin}"
OUT="$BIN/otelcol-test"
STAMP="$BIN/.otelcol-test.$COLLECTOR_VERSION"

if [ -x "$OUT" ] && [ -f "$STAMP" ]; then
  exit 0
fi
mkdir -p "$BIN"

WORK="$(mktemp -d)"
export TMPDIR="$WORK"   # builder leaves otelcol-distribution* dirs in the temp dir
trap 'rm -rf "$WORK"' EXIT

GOBIN="$WORK/bin" go install "go.opentelemetry.io/collector/cmd/builder@$COLLECTOR_VERSION"

cat >"$WORK/manifest.yaml" <<MANIFEST
dist:
  name: otelcol-test
  description: minimal OTLP collector for Conduit's tests
  output_path: $WORK/build
receivers:
  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver $COLLECTOR_VERSION
exporters:
  - gomod: go.opentelemetry.io/collector/exporter/debugexporter $COLLECTOR_VERSION
  - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter $COLLECTOR_VERSION
MANIFEST

"$WORK/bin/builder" --config "$WORK/manifest.yaml" --skip-get-modules --skip-compilation >"$WORK/builder.log" 2>&1 || {
  cat "$WORK/builder.log" >&2
  exit 1
}
cd "$WORK/build"
# builder does not write go.mod with --skip-get-modules: make one and pin every direct import.
go mod init otelcol-test >/dev/null 2>&1
export GOFLAGS=-mod=mod
go get \
  "go.opentelemetry.io/collector/receiver/otlpreceiver@$COLLECTOR_VERSION" \
  "go.opentelemetry.io/collector/exporter/debugexporter@$COLLECTOR_VERSION" \
  "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter@$COLLECTOR_VERSION" \
  "go.opentelemetry.io/collector/otelcol@$COLLECTOR_VERSION" \
  "go.opentelemetry.io/collector/service@$COLLECTOR_VERSION" \
  "go.opentelemetry.io/collector/confmap/provider/envprovider@$CONFMAP_VERSION" \
  "go.opentelemetry.io/collector/confmap/provider/fileprovider@$CONFMAP_VERSION" \
  "go.opentelemetry.io/collector/confmap/provider/httpprovider@$CONFMAP_VERSION" \
  "go.opentelemetry.io/collector/confmap/provider/httpsprovider@$CONFMAP_VERSION" \
  "go.opentelemetry.io/collector/confmap/provider/yamlprovider@$CONFMAP_VERSION" >"$WORK/get.log" 2>&1 || {
  cat "$WORK/get.log" >&2
  exit 1
}
# -e: the refused module is only needed by fileexporter's own tests.
go mod tidy -e >"$WORK/tidy.log" 2>&1 || true
go build -trimpath -tags grpcnotrace -ldflags='-s -w' -o "$OUT.tmp" .
mv "$OUT.tmp" "$OUT"
touch "$STAMP"
echo "built $OUT ($COLLECTOR_VERSION)"
