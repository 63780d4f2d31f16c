#!/usr/bin/env bash
# Installs the pinned HTTP/2 and gRPC conformance tools the core/server tests run:
#   h2spec                (github.com/summerwind/h2spec v2.2.1+incompatible)
#   grpc-interop-server   (google.golang.org/grpc/interop/server v1.85.0)
#   grpc-interop-client   (google.golang.org/grpc/interop/client v1.85.0)
# into $HOME/.cache/conduit-tools/bin (or $CONDUIT_TOOLS_BIN). Built once; later runs return
# at once. Safe to run repeatedly.
set -euo pipefail

H2SPEC_VERSION=v2.2.1+incompatible
GRPC_VERSION=v1.85.0
BIN="${CONDUIT_TOOLS_BIN:-$HOME/.cache/conduit-tools/bin}"
mkdir -p "$BIN"

stamp() { [ -x "$BIN/$1" ] && [ -f "$BIN/.$1.$2" ]; }

if ! stamp h2spec "$H2SPEC_VERSION"; then
  GOBIN="$BIN" go install "github.com/summerwind/h2spec/cmd/h2spec@$H2SPEC_VERSION"
  touch "$BIN/.h2spec.$H2SPEC_VERSION"
fi

if ! stamp grpc-interop-server "$GRPC_VERSION" || ! stamp grpc-interop-client "$GRPC_VERSION"; then
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
  # The binaries are called "server" and "client": install into a scratch dir, then rename.
  GOBIN="$WORK" go install "google.golang.org/grpc/interop/server@$GRPC_VERSION"
  GOBIN="$WORK" go install "google.golang.org/grpc/interop/client@$GRPC_VERSION"
  mv "$WORK/server" "$BIN/grpc-interop-server"
  mv "$WORK/client" "$BIN/grpc-interop-client"
  touch "$BIN/.grpc-interop-server.$GRPC_VERSION" "$BIN/.grpc-interop-client.$GRPC_VERSION"
fi
