#!/usr/bin/env bash
# bench/schedule.sh: part C of make bench. Makespan of migrating a world over one shared link, on
# the model forklift-sim runs (common::linkmodel: aggregate bandwidth split among running disk
# transfers, efficiency falling past 10 at once, 60 s per VM outside the copy), computed by
# `plan-run --simulate` with per-disk sizes (--records). Three ways to run the same plans:
#   plan-run:        its scheduler, --max-running-plans 4 --order largest-first (the demo's
#                    setting, not tuned per world), over Forklift's max_vm_inflight 20;
#   all at once:     every plan started together and every VM let through (max_vm_inflight raised
#                    to the VM count, as operators do to "go faster");
#   Forklift alone:  every plan started together, in the given order, Forklift's max_vm_inflight 20.
# Each makespan is reported as a multiple of the lower bound, total bytes ÷ link bandwidth.
# Prints markdown table rows (the 8 columns of bench/run.sh) on stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${LIFTKIT_BIN:-$ROOT/target/release}
BANDWIDTH=${BENCH_BANDWIDTH:-10Gbit/s}
WORK=$(mktemp -d)
SIM_PID=
trap '[[ -n $SIM_PID ]] && kill "$SIM_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
say() { echo "bench: $*" >&2; }

records() { # NAME SIM-ARGS... -> $WORK/NAME.owned.jsonl
    local name=$1
    shift
    "$BIN/ovirt-sim" -q "$@" >"$WORK/sim.json" &
    SIM_PID=$!
    for _ in $(seq 100); do [[ -s $WORK/sim.json ]] && break; sleep 0.1; done
    local url password
    url=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$WORK/sim.json")
    password=$(sed -n 's/.*"password":"\([^"]*\)".*/\1/p' "$WORK/sim.json")
    OVIRT_PASSWORD=$password "$BIN/ovirt-dump" -q --url "$url" --user admin@internal -o "$WORK/$name.jsonl"
    kill "$SIM_PID"
    wait "$SIM_PID" 2>/dev/null || true
    SIM_PID=
    "$BIN/owner-group" -q --exclude admin@internal "$WORK/$name.jsonl" >"$WORK/$name.owned.jsonl"
    # Exit 1 = the preflight left VMs out; those are not migrated, in every variant alike.
    "$BIN/plan-gen" -q --url https://engine.example.com/ovirt-engine/api --namespace rhv-migration \
        --secret ovirt-engine --map-file "$ROOT/tests/fixtures/demo-networks.map" \
        --max-vms-per-plan 20 -o "$WORK/$name.plans.jsonl" "$WORK/$name.owned.jsonl" || (($? == 1))
}

simulate() { # NAME ARGS... -> the simulation summary line
    "$BIN/plan-run" -q --simulate --bandwidth "$BANDWIDTH" --start 2026-11-27T22:00:00Z \
        --records "$WORK/$1.owned.jsonl" "${@:2}" "$WORK/$1.plans.jsonl" | tail -1
}

hms() { awk -v s="$1" 'BEGIN { printf "%dh %02dm", s / 3600, (s % 3600) / 60 }'; }

row() { # NAME LABEL
    local name=$1 label=$2 ours all forklift vms
    ours=$(simulate "$name" --max-running-plans 4 --order largest-first)
    vms=$(jq -r .vms <<<"$ours")
    all=$(simulate "$name" --max-vm-inflight "$vms" --order as-given)
    forklift=$(simulate "$name" --max-vm-inflight 20 --order as-given)
    local lb ratio_ours ratio_all ratio_fl status
    lb=$(jq -r .lower_bound_secs <<<"$ours")
    ratio_ours=$(jq -r '.makespan_secs / .lower_bound_secs' <<<"$ours")
    ratio_all=$(jq -r '.makespan_secs / .lower_bound_secs' <<<"$all")
    ratio_fl=$(jq -r '.makespan_secs / .lower_bound_secs' <<<"$forklift")
    status=$(awk -v o="$ratio_ours" -v a="$ratio_all" -v f="$ratio_fl" 'BEGIN {
        if (o <= a && o <= f) print "plan-run shortest"; else print "MISSED: plan-run not shortest" }')
    local plans bytes
    plans=$(jq -r .plans <<<"$ours")
    bytes=$(jq -r '.total_bytes / 1099511627776 | . * 100 | floor / 100' <<<"$ours")
    emit "$label" "$plans" "$vms" "$bytes" "$lb" "all at once" "$all" "$ratio_all" "$ours" "$ratio_ours" "$status"
    emit "$label" "$plans" "$vms" "$bytes" "$lb" "Forklift alone" "$forklift" "$ratio_fl" "$ours" "$ratio_ours" "$status"
}

emit() { # LABEL PLANS VMS TIB LB PEER PEER-JSON PEER-RATIO OURS-JSON OURS-RATIO STATUS
    printf '| C. schedule, %s | %s plans, %s VMs, %s TiB over %s (lower bound %s) | makespan ÷ lower bound | %s: %.2f× (%s) | plan-run: %.2f× (%s) | %.2f | shortest of the three | %s |\n' \
        "$1" "$2" "$3" "$4" "$BANDWIDTH" "$(hms "$5")" "$6" "$8" "$(hms "$(jq -r .makespan_secs <<<"$7")")" \
        "${10}" "$(hms "$(jq -r .makespan_secs <<<"$9")")" \
        "$(awk -v p="$8" -v o="${10}" 'BEGIN { print p / o }')" "${11}"
}

say "C: demo world"
records demo --world "$ROOT/tests/worlds/demo.json"
row demo "demo world"
say "C: generated 2,000-VM world"
records gen2000 --generate 2000 --seed 1
row gen2000 "generated 2,000 VMs"
