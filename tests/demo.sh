#!/usr/bin/env bash
# make demo: the whole liftkit pipeline against the engine simulator serving the demo lab
# (tests/worlds/demo.json), over TLS with the simulator's own CA. Outputs go to demo-out/.
# Needs the built binaries only (Rust; no Go, no cluster). When the Kubernetes test bed is built
# (make test or make demo-cluster build it once, with Go) or DEMO_CLUSTER=1 (make demo-cluster),
# the plans also run live on it: kube-apiserver with forklift-sim playing Forklift and KubeVirt,
# then vm-verify checks every moved VM and owner-notice writes the after-the-move notices.
# Every step either succeeds or stops the demo saying which step failed and how.
set -euo pipefail
bin=${1:-target/debug}
bin=$(cd "$bin" && pwd)
export PATH="$bin:$PATH"
out=${DEMO_OUT:-demo-out}
mkdir -p "$out"
work=$(mktemp -d)
sim_pid=
fsim_pid=
kube=
step=starting
trap 'status=$?; [ -z "$sim_pid" ] || kill "$sim_pid" 2>/dev/null || true
  [ -z "$fsim_pid" ] || kill "$fsim_pid" 2>/dev/null || true
  [ -z "$kube" ] || tests/kube-testbed/stop.sh "$kube" >/dev/null 2>&1 || true; rm -rf "$work"
  [ "$status" = 0 ] || echo "make demo: stopped at \"$step\" (exit $status): see the message above" >&2' EXIT

section() { step=$1; printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$work/sim.json"; }

section "Engine simulator: demo lab over https"
ovirt-sim --world tests/worlds/demo.json --tls --cert-dir "$work/pki" >"$work/sim.json" 2>"$work/sim.log" &
sim_pid=$!
for _ in $(seq 600); do [ -s "$work/sim.json" ] && break; sleep 0.1; done
[ -s "$work/sim.json" ] || { cat "$work/sim.log" >&2; echo "ovirt-sim did not start" >&2; exit 69; }
# What every engine tool reads (README, step 0): the URL, the user, the CA, the password.
export OVIRT_URL OVIRT_USER OVIRT_CA OVIRT_PASSWORD
OVIRT_URL=$(field url); OVIRT_USER=$(field user); OVIRT_CA=$(field ca_file); OVIRT_PASSWORD=$(field password)
echo "engine: $OVIRT_URL (user $OVIRT_USER, CA $OVIRT_CA)" >&2

section "ovirt-dump: the inventory"
ovirt-dump -o "$out/inventory.jsonl"
echo "$(wc -l <"$out/inventory.jsonl") VM records in $out/inventory.jsonl" >&2
capacity-calc --by data-center,cluster --storage-map '*=trident-nfs' --format table "$out/inventory.jsonl"

section "vm-select | owner-group: VMs used in the last 180 days, their owners and namespaces"
vm-select --active-within 180d --now 2026-11-26T00:00:00Z "$out/inventory.jsonl" \
  | owner-group --exclude admin@internal --exclude svc-backup \
  | tee "$out/selected.jsonl" \
  | owner-group --summary >"$out/namespaces.jsonl"
echo "$(wc -l <"$out/selected.jsonl") VMs selected into $(wc -l <"$out/namespaces.jsonl") namespaces" >&2

section "capacity-calc: what the target needs per namespace, kept (PVC) and while copying (PEAK)"
echo "(NFS data domains to trident-nfs; sizes as Forklift v2.12.5's volume populators request them)" >&2
capacity-calc --by namespace --storage-map '*=trident-nfs' --available trident-nfs=40TiB \
  --format table "$out/selected.jsonl"
capacity-calc --quota --headroom 20% --storage-map '*=trident-nfs' "$out/selected.jsonl" >"$out/quotas.jsonl"
capacity-calc --by namespace --storage-map '*=trident-nfs' --available trident-nfs=40TiB -q \
  -o "$out/capacity.jsonl" "$out/selected.jsonl"

section "ip-budget: addresses on the target networks"
# TLV2's vlan400 moves to a /28 that is too small: ip-budget shows the shortfall and exits 1.
subnets=(--subnet vm-networks/rdu-vlan201=10.10.0.0/22 --subnet vm-networks/rdu-vlan202=10.10.4.0/24
  --subnet vm-networks/rdu-vlan203=10.10.5.0/24 --subnet vm-networks/tlv-vlan201=10.20.1.0/24
  --subnet osp/osp-internal=172.16.0.0/24 --subnet vm-networks/tlv-apps=10.20.0.0/28
  --reserve 10.10.0.1 --reserve 10.20.0.1 --reserve 10.10.0.2-10.10.0.50)
# Exit 1 is that shortfall (stderr names it); any other status stops the demo.
status=0
ip-budget --map-file tests/fixtures/demo-networks.map "${subnets[@]}" \
  --format table "$out/selected.jsonl" || status=$?
case $status in
  0) ;;
  1) echo "(ip-budget exits 1: the shortfall above is the point of this step)" >&2 ;;
  *) exit "$status" ;;
esac
status=0
ip-budget --map-file tests/fixtures/demo-networks.map "${subnets[@]}" -q \
  -o "$out/addresses.jsonl" "$out/selected.jsonl" || status=$?
[ "$status" -le 1 ] || exit "$status"

section "rbac-gen + plan-gen: manifests into $out/manifests, with Forklift's preflight"
mkdir -p "$out/manifests"
rbac-gen --strip-domain --quota "$out/quotas.jsonl" -o "$out/manifests/rbac.jsonl" "$out/selected.jsonl"
# Exit 1: the preflight left VMs out (the summary above says which and why).
status=0
plan-gen --url "https://engine.rdu.lab.example.com/ovirt-engine/api" --namespace rhv-migration \
  --secret ovirt-engine --map-file tests/fixtures/demo-networks.map --max-vms-per-plan 20 \
  --report "$out/manifests/preflight.jsonl" -o "$out/manifests/plans.jsonl" "$out/selected.jsonl" \
  || status=$?
[ "$status" -le 1 ] || exit "$status"
plan-gen --url "https://engine.rdu.lab.example.com/ovirt-engine/api" --namespace rhv-migration \
  --map-file tests/fixtures/demo-networks.map --format table -q "$out/selected.jsonl" \
  >"$out/manifests/preflight.txt" || [ $? = 1 ]
echo "manifests: $(wc -l <"$out/manifests/rbac.jsonl") RBAC objects, $(grep -c '"kind":"Plan"' "$out/manifests/plans.jsonl") Plans in $out/manifests/" >&2

section "plan-run --simulate: the schedule over a 10 Gbit/s link, 4 plans at a time"
plan-run --simulate --bandwidth 10Gbit/s --max-running-plans 4 --start 2026-11-27T22:00:00Z \
  "$out/manifests/rbac.jsonl" "$out/manifests/plans.jsonl" >"$out/schedule.jsonl"

section "owner-notice: one notice per owner (Markdown and e-mail), from the plans and the schedule"
ip-budget --map-file tests/fixtures/demo-networks.map "${subnets[@]}" --allocate -q \
  -o "$out/allocations.jsonl" "$out/selected.jsonl" || [ $? = 1 ]
notice=(--manifests "$out/manifests/rbac.jsonl" --manifests "$out/manifests/plans.jsonl"
  --preflight "$out/manifests/preflight.jsonl" --events "$out/schedule.jsonl"
  --allocations "$out/allocations.jsonl" --address-map tests/fixtures/demo-addresses.csv
  --window 22:00-06:00 --time-zone UTC)
owner-notice "${notice[@]}" -o "$out/notices" "$out/selected.jsonl"
owner-notice "${notice[@]}" --format eml --from "Migration team <migration@example.com>" -q \
  -o "$out/notices" "$out/selected.jsonl"
awk '/^### /{on = /ba_shared_vm_1/} on' "$out/notices/user-alice.md" >&2

live=()
if [ -n "${DEMO_CLUSTER:-}" ] || tests/kube-testbed/build.sh --cached >/dev/null ||
  [ -x "${KUBEBUILDER_ASSETS:-/nonexistent}/kube-apiserver" ]; then
  source tests/demo-live.sh
  live=(--verify "$out/live/findings.jsonl")
else
  section "Live run on a test cluster: skipped"
  echo "(the Kubernetes test bed is not built here; make demo-cluster builds it once, with Go, in about" >&2
  echo " 15 minutes on two cores, and then runs the plans live, vm-verify and the after-the-move notices)" >&2
fi

section "report: the whole migration on one page"
report --vms "$out/selected.jsonl" --inventory "$out/inventory.jsonl" --capacity "$out/capacity.jsonl" \
  --addresses "$out/addresses.jsonl" --preflight "$out/manifests/preflight.jsonl" \
  --events "$out/schedule.jsonl" --window 22:00-06:00 --time-zone UTC --title "liftkit demo lab" \
  "${live[@]}" -o "$out/report.html"
step=done
cat >&2 <<NEXT

== Done. What to look at next:
  $out/report.html              the whole migration on one page (open it in a browser)
  $out/manifests/               what plan-run would apply: rbac.jsonl, plans.jsonl;
                                the preflight's findings in preflight.jsonl and, as a table, preflight.txt
  $out/schedule.jsonl           the simulated schedule (plan-run --simulate --format table shows it as a table)
  $out/live/                   with the test bed: the live run's events, vm-verify's findings and the
                                after-the-move notices (notices-after/)
  man man/plan-gen.1            any tool's manual (man/), or TOOL --help
  README.md, "Step 0"           start ovirt-sim yourself and run the tools by hand
NEXT
echo "$out/report.html"
