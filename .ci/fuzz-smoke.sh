#!/usr/bin/env bash
# Fuzzes for a short time ($1, default 5s). `go test ./...` already runs every fuzz target's
# seed corpus; this adds real fuzzing. By default it covers the parsers that face untrusted
# input first (request framing, config loading, env substitution, route matching, tap filters,
# upstream responses); with FUZZ_ALL=1 it runs every Fuzz* target of the module (what
# `make fuzz` does).
set -euo pipefail
dur="${1:-5s}"
core_targets=(
  "./core/h1guard FuzzGuard"
  "./core/config FuzzParse"
  "./core/config FuzzSubstitute"
  "./core/router FuzzGlobMatch"
  "./modules/tap FuzzParseFilter"
  "./modules/proxy FuzzH1ClientResponse"
)
run() {
  echo "fuzz $1 $2 ($dur)"
  go test -tags grpcnotrace -run '^$' -fuzz "^$2\$" -fuzztime "$dur" "$1" >/tmp/fuzz-$$.log 2>&1 || { cat /tmp/fuzz-$$.log; exit 1; }
}
if [ "${FUZZ_ALL:-}" = 1 ]; then
  go list -f '{{.Dir}} {{.ImportPath}}' ./... | while read -r dir pkg; do
    for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
      run "$pkg" "$f"
    done
  done
else
  for t in "${core_targets[@]}"; do
    # shellcheck disable=SC2086
    run $t
  done
fi
