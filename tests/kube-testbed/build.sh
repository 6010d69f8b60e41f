#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and etcd from the Go module proxy into ~/.cache/liftkit/kube-<version>/bin,
# once: a cached build whose stamp matches go.mod and go.sum is kept. Prints the bin dir on stdout.
set -euo pipefail
PROG=kube-testbed/build.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin=$TESTBED_CACHE/bin
stamp=$(expected_stamp)
# Whether a build matching go.mod and go.sum is in the cache.
cached() {
  [[ -x $bin/kube-apiserver && -x $bin/kube-controller-manager && -x $bin/etcd && -f $TESTBED_CACHE/stamp && $(<"$TESTBED_CACHE/stamp") == "$stamp" ]]
}
# build.sh --cached: prints the bin dir if a current build is cached, else exits 3 (no Go needed).
if [[ ${1:-} == --cached ]]; then
  cached || exit 3
  printf '%s\n' "$bin"
  exit 0
fi
command -v go >/dev/null || die "go not found: install Go $(sed -n 's/^go //p' "$TESTBED_SRC/go.mod") or newer"
grep -q "k8s.io/kubernetes $KUBE_VERSION" "$TESTBED_SRC/go.mod" ||
  die "go.mod does not require k8s.io/kubernetes $KUBE_VERSION (update KUBE_VERSION in lib.sh)"
grep -q "go.etcd.io/etcd/server/v3 $ETCD_VERSION" "$TESTBED_SRC/go.mod" ||
  die "go.mod does not require go.etcd.io/etcd/server/v3 $ETCD_VERSION (update ETCD_VERSION in lib.sh)"

if cached; then
  printf '%s\n' "$bin"
  exit 0
fi

mkdir -p "$TESTBED_CACHE"
# One build at a time: parallel test processes wait here for the first one's build.
exec 9>"$TESTBED_CACHE/build.lock"
flock 9
if cached; then
  printf '%s\n' "$bin"
  exit 0
fi

log "building kube-apiserver, kube-controller-manager $KUBE_VERSION and etcd $ETCD_VERSION into $bin (first time: about 15 minutes on 2 cores)"
tmp=$TESTBED_CACHE/bin.tmp
rm -rf "$tmp"
mkdir -p "$tmp"
started=$SECONDS
version_flags="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
version_flags+=" -X k8s.io/component-base/version.gitMajor=$(cut -d. -f1 <<<"${KUBE_VERSION#v}")"
version_flags+=" -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$KUBE_VERSION")"
version_flags+=" -X k8s.io/component-base/version.gitTreeState=clean"
cd "$TESTBED_SRC"
log "go build -trimpath -ldflags='-s -w ...' k8s.io/kubernetes/cmd/kube-apiserver"
go build -mod=readonly -trimpath -ldflags="-s -w $version_flags" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver ||
  die "go build k8s.io/kubernetes/cmd/kube-apiserver failed (see the go output above)"
log "go build -trimpath -ldflags='-s -w ...' k8s.io/kubernetes/cmd/kube-controller-manager"
go build -mod=readonly -trimpath -ldflags="-s -w $version_flags" -o "$tmp/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager ||
  die "go build k8s.io/kubernetes/cmd/kube-controller-manager failed (see the go output above)"
log "go build -trimpath -ldflags='-s -w' go.etcd.io/etcd/server/v3 (the etcd binary)"
go build -mod=readonly -trimpath -ldflags="-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3 ||
  die "go build go.etcd.io/etcd/server/v3 failed (see the go output above)"
"$tmp/kube-apiserver" --version >&2 || die "the built kube-apiserver does not run"
"$tmp/kube-controller-manager" --version >&2 || die "the built kube-controller-manager does not run"
rm -rf "$bin"
mv "$tmp" "$bin"
printf '%s\n' "$stamp" >"$TESTBED_CACHE/stamp"
log "built in $((SECONDS - started)) s: $(du -sh "$bin" | cut -f1) in $bin"
printf '%s\n' "$bin"
