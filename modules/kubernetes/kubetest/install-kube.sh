#!/usr/bin/env bash
# Builds the real Kubernetes control plane the kubernetes module's integration tests run
# against: kube-apiserver v1.36.3 (k8s.io/kubernetes) and etcd v3.6.16 (go.etcd.io/etcd/server/v3),
# into $HOME/.cache/conduit-tools/bin (or $CONDUIT_TOOLS_BIN), the layout controller-runtime's
# envtest calls KUBEBUILDER_ASSETS: one directory holding `kube-apiserver` and `etcd`.
# Built once (about 3 minutes cold); later runs return at once. Safe to run repeatedly.
#
# Neither module can be `go install`ed (their go.mod files use replace directives), so each is
# built from a throwaway module that requires it; for k8s.io/kubernetes the replaces of its
# ./staging modules are rewritten to the published v0.36.3 versions.
set -euo pipefail

KUBE_VERSION=v1.36.3
STAGING_VERSION=v0.36.3
ETCD_VERSION=v3.6.16
BIN="${CONDUIT_TOOLS_BIN:-$HOME/.cache/conduit-tools/bin}"
DIR="$BIN"
mkdir -p "$DIR"
if [ -x "$DIR/kube-apiserver" ] && [ -f "$DIR/.kube-apiserver.$KUBE_VERSION" ] &&
   [ -x "$DIR/etcd" ] && [ -f "$DIR/.etcd.$ETCD_VERSION" ]; then
  exit 0
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export GOFLAGS=-mod=mod

if ! [ -x "$DIR/etcd" ] || ! [ -f "$DIR/.etcd.$ETCD_VERSION" ]; then
  mkdir "$WORK/etcd"
  (cd "$WORK/etcd" &&
    go mod init conduit-tools/etcd >/dev/null 2>&1 &&
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" &&
    go build -trimpath -ldflags='-s -w' -o "$DIR/etcd" go.etcd.io/etcd/server/v3)
  touch "$DIR/.etcd.$ETCD_VERSION"
fi

if ! [ -x "$DIR/kube-apiserver" ] || ! [ -f "$DIR/.kube-apiserver.$KUBE_VERSION" ]; then
  mkdir "$WORK/kas"
  gomod="$(go list -m -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  {
    echo 'module conduit-tools/kas'
    echo 'go 1.26.0'
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo 'replace ('
    grep -E '=> \./staging' "$gomod" | awk -v v="$STAGING_VERSION" '{print "\t"$1" => "$1" "v}'
    echo ')'
  } >"$WORK/kas/go.mod"
  (cd "$WORK/kas" &&
    go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" &&
    go build -trimpath -ldflags='-s -w' -o "$DIR/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
  touch "$DIR/.kube-apiserver.$KUBE_VERSION"
fi
