#!/usr/bin/env bash
# make testbed: a real kube-apiserver (with etcd, the Forklift and VirtualMachine CRDs) and
# forklift-sim playing Forklift, in the foreground for people and benchmarks. Prints the KUBECONFIG
# to use; Ctrl-C stops both. TESTBED_DIR keeps the state somewhere known (default: a temp dir);
# FORKLIFT_SIM_ARGS passes options to forklift-sim (default: the demo world, 10Gbit/s, time x60).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${TESTBED_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/liftkit-testbed.XXXXXX")}
sim_bin=${FORKLIFT_SIM:-$root/target/debug/forklift-sim}
[[ -x $sim_bin ]] || (cd "$root" && cargo build -q --bin forklift-sim)

kubeconfig=$("$here/start.sh" "$dir")
trap '"$here/stop.sh" "$dir" >/dev/null 2>&1 || true' EXIT
cat >&2 <<MSG

kube-apiserver and etcd are up (state in $dir); forklift-sim plays Forklift.
In another shell:

  export KUBECONFIG=$kubeconfig
  plan-run rbac.jsonl plans.jsonl

Ctrl-C stops everything.
MSG
echo "KUBECONFIG=$kubeconfig"
# shellcheck disable=SC2086 # FORKLIFT_SIM_ARGS is a list of options
KUBECONFIG=$kubeconfig "$sim_bin" ${FORKLIFT_SIM_ARGS:---world "$root/tests/worlds/demo.json" --bandwidth 10Gbit/s --time-scale 60}
