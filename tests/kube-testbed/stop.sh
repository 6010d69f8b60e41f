#!/usr/bin/env bash
# stop.sh DIR: stops the test bed that start.sh DIR started (controller manager, API server, etcd).
# Keeps DIR and its data, so start.sh DIR can bring the same cluster back; safe to run twice.
set -euo pipefail
PROG=kube-testbed/stop.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 1 && -n $1 ]] || die "usage: stop.sh DIR"
[[ -d $1 ]] || exit 0
DIR=$(cd "$1" && pwd)
# The watchdog polls for its pid file and exits by itself once the file is gone.
rm -f "$DIR/watchdog.pid"
stop_pid "$DIR/kube-controller-manager.pid" kube-controller-manager
stop_pid "$DIR/kube-apiserver.pid" kube-apiserver
stop_pid "$DIR/etcd.pid" etcd
