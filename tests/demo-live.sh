# Sourced by tests/demo.sh (make demo, make demo-cluster): the demo's plans run live on the
# Kubernetes test bed (kube-apiserver, etcd, kube-controller-manager; tests/kube-testbed) with
# forklift-sim playing Forklift v2.12.5 and KubeVirt, then vm-verify checks every moved VM against
# its source record and owner-notice tells each owner what moved and what failed. Uses demo.sh's
# $out, $work, section and the engine variables; outputs go to $out/live/.

section "Live: a Kubernetes test bed with forklift-sim playing Forklift v2.12.5 and KubeVirt"
mkdir -p "$out/live"
kube=$work/kube
# KUBE_TESTBED_WATCH_PID: the test bed stops with this shell even if the trap cannot run.
KUBECONFIG=$(KUBE_TESTBED_WATCH_PID=$$ tests/kube-testbed/start.sh "$kube" 2>"$work/kube.log") || {
  cat "$work/kube.log" >&2
  echo "the Kubernetes test bed did not start (its log is above)" >&2
  exit 69
}
export KUBECONFIG
echo "API server: $(sed -n 's/^ *server: //p' "$KUBECONFIG" | head -n1) (admin kubeconfig $KUBECONFIG)" >&2
forklift_ns=openshift-mtv
printf '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"%s"}}\n' "$forklift_ns" \
  >"$out/live/forklift-namespace.jsonl"
# The Provider's Secret carries the engine's user, password and CA (from OVIRT_*, never argv).
plan-gen --url "$OVIRT_URL" --ca-file "$OVIRT_CA" --with-secret --namespace "$forklift_ns" \
  --map-file tests/fixtures/demo-networks.map --max-vms-per-plan 20 -q \
  -o "$out/live/plans.jsonl" "$out/selected.jsonl" || [ $? = 1 ]
# forklift-sim: an hour of migration per second; DHCP hands out ip-budget's allocations;
# rdu-web-03's disk transfer fails (a failed migration for the notices to report).
forklift-sim --world tests/worlds/demo.json --namespace "$forklift_ns" --time-scale 3600 \
  --status-interval 500ms --dhcp "$out/allocations.jsonl" --fail-vm rdu-web-03 \
  2>"$work/forklift-sim.log" &
fsim_pid=$!

section "plan-run: apply the manifests and run the plans live, 4 at a time"
status=0
plan-run --ready-timeout 120s --max-running-plans 4 "$out/manifests/rbac.jsonl" \
  "$out/live/forklift-namespace.jsonl" "$out/live/plans.jsonl" >"$out/live/events.jsonl" || status=$?
# Exit 1: a plan ended with a failed VM (rdu-web-03, on purpose); anything else stops the demo.
[ "$status" -le 1 ] || { tail -n 20 "$work/forklift-sim.log" >&2; exit "$status"; }
echo "$(grep -c '"event":"vm-succeeded"' "$out/live/events.jsonl") VMs moved," \
  "$(grep -c '"event":"vm-failed"' "$out/live/events.jsonl") failed ($out/live/events.jsonl)" >&2

section "vm-verify: does every moved VM boot, keep its MACs and get its addresses?"
echo "(the demo world plants five after-the-move faults: no boot, no guest agent, another address," >&2
echo " a missing NIC, stale DNS; the DNS check needs --dns-server and is left out here)" >&2
# The findings for owner-notice and report, and the table for you: two runs side by side, so the
# VM that never boots is waited for (--boot-timeout) once.
vm-verify -n "$forklift_ns" --allocations "$out/allocations.jsonl" --boot-timeout 60s --all \
  -o "$out/live/findings.jsonl" "$out/selected.jsonl" &
verify_pid=$!
vm-verify -n "$forklift_ns" --allocations "$out/allocations.jsonl" --boot-timeout 60s \
  --format table -q "$out/selected.jsonl" || [ $? = 1 ]
status=0
wait "$verify_pid" || status=$?
[ "$status" -le 1 ] || exit "$status"

section "owner-notice --verify: what moved, what failed, what to check, per owner"
owner-notice "${notice[@]}" --verify "$out/live/findings.jsonl" -o "$out/live/notices-after" \
  "$out/selected.jsonl"
echo "notices: $(find "$out/live/notices-after" -name '*.md' | wc -l) owners in $out/live/notices-after/" >&2
