#!/usr/bin/env bash
# Runs every Fuzz* target in the module for a short time ($1, default 5s).
set -euo pipefail
dur="${1:-5s}"
go list -f '{{.Dir}} {{.ImportPath}}' ./... | while read -r dir pkg; do
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz $pkg $f ($dur)"
    go test -tags grpcnotrace -run '^$' -fuzz "^${f}\$" -fuzztime "$dur" "$pkg" >/tmp/fuzz-$$.log 2>&1 || { cat /tmp/fuzz-$$.log; exit 1; }
  done
done
