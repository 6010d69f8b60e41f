#!/usr/bin/env bash
# make demo: the whole liftkit pipeline against the engine simulator serving the demo lab
# (tests/worlds/demo.json), over TLS with the simulator's own CA. Outputs go to demo-out/.
set -euo pipefail
bin=${1:-target/debug}
bin=$(cd "$bin" && pwd)
export PATH="$bin:$PATH"
out=${DEMO_OUT:-demo-out}
mkdir -p "$out"
work=$(mktemp -d)
trap 'kill "$sim_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

section() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$work/sim.json"; }

section "Engine simulator: demo lab over https"
ovirt-sim --world tests/worlds/demo.json --tls --cert-dir "$work/pki" >"$work/sim.json" 2>"$work/sim.log" &
sim_pid=$!
for _ in $(seq 50); do [ -s "$work/sim.json" ] && break; sleep 0.1; done
url=$(field url); user=$(field user); ca=$(field ca_file)
export OVIRT_PASSWORD; OVIRT_PASSWORD=$(field password)
echo "engine: $url (user $user)" >&2

section "ovirt-dump: the inventory"
ovirt-dump --url "$url" --user "$user" --ca-file "$ca" -o "$out/inventory.jsonl"
echo "$(wc -l <"$out/inventory.jsonl") VM records in $out/inventory.jsonl" >&2
capacity-calc --by data-center,cluster --format table "$out/inventory.jsonl"

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
subnets=(--subnet vm-networks/rdu-vlan201=10.10.0.0/22 --subnet vm-networks/tlv-apps=10.20.0.0/28
  --reserve 10.10.0.1 --reserve 10.20.0.1 --reserve 10.10.0.2-10.10.0.50)
ip-budget --map-file tests/fixtures/demo-networks.map "${subnets[@]}" \
  --format table "$out/selected.jsonl" || echo "(ip-budget found a shortfall: exit $?)" >&2
ip-budget --map-file tests/fixtures/demo-networks.map "${subnets[@]}" -q \
  -o "$out/addresses.jsonl" "$out/selected.jsonl" || [ $? = 1 ]

section "rbac-gen + plan-gen: manifests into $out/manifests, with Forklift's preflight"
mkdir -p "$out/manifests"
rbac-gen --strip-domain --quota "$out/quotas.jsonl" -o "$out/manifests/rbac.jsonl" "$out/selected.jsonl"
set +e
plan-gen --url "https://engine.rdu.lab.example.com/ovirt-engine/api" --namespace rhv-migration \
  --secret ovirt-engine --map-file tests/fixtures/demo-networks.map --max-vms-per-plan 20 \
  --report "$out/manifests/preflight.jsonl" -o "$out/manifests/plans.jsonl" "$out/selected.jsonl"
status=$?
set -e
[ "$status" -le 1 ] || exit "$status"
echo "manifests: $(wc -l <"$out/manifests/rbac.jsonl") RBAC objects, $(grep -c '"kind":"Plan"' "$out/manifests/plans.jsonl") Plans in $out/manifests/" >&2

section "plan-run --simulate: the schedule over a 10 Gbit/s link, 4 plans at a time"
plan-run --simulate --bandwidth 10Gbit/s --max-running-plans 4 --start 2026-11-27T22:00:00Z \
  "$out/manifests/rbac.jsonl" "$out/manifests/plans.jsonl" >"$out/schedule.jsonl"

section "owner-notice: one notice per owner (Markdown and e-mail), from the plans and the schedule"
ip-budget --map-file tests/fixtures/demo-networks.map "${subnets[@]}" --allocate -q \
  -o "$out/allocations.jsonl" "$out/selected.jsonl" || [ $? = 1 ]
notice=(--manifests "$out/manifests/rbac.jsonl" --manifests "$out/manifests/plans.jsonl"
  --preflight "$out/manifests/preflight.jsonl" --schedule "$out/schedule.jsonl"
  --allocations "$out/allocations.jsonl" --address-map tests/fixtures/demo-addresses.csv
  --window 22:00-06:00 --time-zone UTC)
owner-notice "${notice[@]}" -o "$out/notices" "$out/selected.jsonl"
owner-notice "${notice[@]}" --format eml --from "Migration team <migration@example.com>" -q \
  -o "$out/notices" "$out/selected.jsonl"
awk '/^### /{on = /ba_shared_vm_1/} on' "$out/notices/user-alice.md" >&2

section "report: the whole migration on one page"
report --vms "$out/selected.jsonl" --inventory "$out/inventory.jsonl" --capacity "$out/capacity.jsonl" \
  --addresses "$out/addresses.jsonl" --preflight "$out/manifests/preflight.jsonl" \
  --events "$out/schedule.jsonl" --window 22:00-06:00 --time-zone UTC --title "liftkit demo lab" \
  -o "$out/report.html"
echo "(the tests render it in headless Chromium: docs/report.png is that screenshot)" >&2
echo "$out/report.html"
