#!/usr/bin/env bash
# Installs what the test suite needs: Debian packages (only those missing) and pinned Go tools
# (built once into $HOME/.cache/conduit-tools). Safe to run repeatedly.
set -euo pipefail

# wabt, rustc, libstd-rust-dev-wasm32 and lld-14 (its linker rust-lld, only recommended
# by rustc, so not installed without recommends) rebuild the WASM guests of plugins/wasm
# (modules/wasm/guests_test.go checks that their sources still build to the committed .wasm).
PKGS=(curl redis-server wabt rustc libstd-rust-dev-wasm32 lld-14 systemd chromium bash tmux fish zsh mandoc groff-base)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages (run as root to install): ${missing[*]}" >&2
  fi
fi

# Pinned test tools, built once into $HOME/.cache/conduit-tools/bin.
"$(dirname "$0")/../modules/otlp/otelcoltest/build-otelcol.sh"
"$(dirname "$0")/../core/server/testdata/install-conformance-tools.sh"
"$(dirname "$0")/../modules/acme/pebbletest/install-pebble.sh"
"$(dirname "$0")/../modules/kubernetes/kubetest/install-kube.sh"
