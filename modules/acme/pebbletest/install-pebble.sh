#!/usr/bin/env bash
# Installs Pebble, the ACME test CA (github.com/letsencrypt/pebble/v2 v2.10.1), for the acme
# module's end-to-end tests into $HOME/.cache/conduit-tools/bin (or $CONDUIT_TOOLS_BIN).
# Built once; later runs return at once. Safe to run repeatedly.
set -euo pipefail

PEBBLE_VERSION=v2.10.1
BIN="${CONDUIT_TOOLS_BIN:-$HOME/.cache/conduit-tools/bin}"
mkdir -p "$BIN"
if [ -x "$BIN/pebble" ] && [ -f "$BIN/.pebble.$PEBBLE_VERSION" ]; then
  exit 0
fi
GOBIN="$BIN" go install "github.com/letsencrypt/pebble/v2/cmd/pebble@$PEBBLE_VERSION"
touch "$BIN/.pebble.$PEBBLE_VERSION"
