#!/usr/bin/env bash
# Installs pinned Go tools into $HOME/.cache/conduit-tools/bin (built once, then cached).
# Usage: .ci/tools.sh TOOL...   (tools: goreleaser)
set -euo pipefail
BIN="$HOME/.cache/conduit-tools/bin"
mkdir -p "$BIN"
for tool in "$@"; do
  case "$tool" in
    goreleaser)
      [ -x "$BIN/goreleaser" ] || GOBIN="$BIN" go install github.com/goreleaser/goreleaser/v2@v2.16.0 ;;
    *) echo "unknown tool $tool" >&2; exit 1 ;;
  esac
done
