#!/usr/bin/env bash
# restart-apiserver.sh DIR: stops the test bed's kube-apiserver and starts it again with the same
# port, flags and credentials, leaving etcd (and so every object) untouched; returns once it is ready.
set -euo pipefail
PROG=kube-testbed/restart-apiserver.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 1 && -n $1 ]] || die "usage: restart-apiserver.sh DIR"
[[ -f $1/kube-apiserver.args ]] || die "$1: no test bed was started here (no kube-apiserver.args)"
DIR=$(cd "$1" && pwd)
pid_alive "$DIR/etcd.pid" etcd || die "$DIR: etcd is not running (start the test bed with start.sh $DIR)"
log "stopping kube-apiserver"
stop_pid "$DIR/kube-apiserver.pid" kube-apiserver
log "starting kube-apiserver on $(<"$DIR/url")"
start_apiserver
wait_ready 120
log "ready"
