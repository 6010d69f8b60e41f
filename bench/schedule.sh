#!/usr/bin/env bash
# bench/schedule.sh: part C of make bench. Makespan of migrating a world over a shared link the
# scheduler does not know, on the named link models forklift-sim runs (common::linkmodel:
# clean-10g, collapse-1g, storage-25g), computed by `plan-run --simulate --link-model M` with
# per-disk sizes and storage classes (--records). Four ways to run the same plans:
#   adaptive:        plan-run --bandwidth auto (the default): its controller measures the
#                    throughput in the simulation and limits the disk copies, --order largest-first;
#   best fixed:      plan-run --bandwidth fixed --max-running-plans N, the best N of a sweep
#                    (1 2 3 4 6 8 12 16), found in hindsight;
#   all at once:     every plan started together and every VM let through (max_vm_inflight raised
#                    to the VM count, as operators do to "go faster");
#   Forklift alone:  every plan started together, in the given order, Forklift's max_vm_inflight 20.
# Each makespan is reported as a multiple of the model's honest lower bound (bench/README.md).
# Prints markdown table rows (the 8 columns of bench/run.sh) on stdout; BENCH_SCHEDULE_RAW=FILE
# also writes every simulation's summary line there.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${LIFTKIT_BIN:-$ROOT/target/release}
MODELS=${BENCH_MODELS:-clean-10g collapse-1g storage-25g}
SWEEP=${BENCH_SWEEP:-1 2 3 4 6 8 12 16}
RAW=${BENCH_SCHEDULE_RAW:-/dev/null}
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

simulate() { # NAME MODEL ARGS... -> the simulation summary line
    local line
    line=$("$BIN/plan-run" -q --simulate --link-model "$2" --start 2026-11-27T22:00:00Z \
        --records "$WORK/$1.owned.jsonl" "${@:3}" "$WORK/$1.plans.jsonl" | tail -1)
    echo "$1 $2 ${*:3} $line" >>"$RAW"
    echo "$line"
}

hms() { awk -v s="$1" 'BEGIN { printf "%dh %02dm", s / 3600, (s % 3600) / 60 }'; }
ratio() { jq -r '.makespan_secs / .lower_bound_secs' <<<"$1"; }

row() { # NAME LABEL MODEL
    local name=$1 label=$2 model=$3 ours vms best="" best_n=0 n line
    ours=$(simulate "$name" "$model" --order largest-first)
    vms=$(jq -r .vms <<<"$ours")
    for n in $SWEEP; do
        line=$(simulate "$name" "$model" --bandwidth fixed --max-running-plans "$n" --order largest-first)
        if [[ -z $best ]] || awk -v a="$(jq -r .makespan_secs <<<"$line")" \
            -v b="$(jq -r .makespan_secs <<<"$best")" 'BEGIN { exit !(a < b) }'; then
            best=$line best_n=$n
        fi
    done
    local all forklift
    all=$(simulate "$name" "$model" --bandwidth fixed --max-vm-inflight "$vms" --order as-given)
    forklift=$(simulate "$name" "$model" --bandwidth fixed --max-vm-inflight 20 --order as-given)
    local lb r_ours r_best status
    lb=$(jq -r .lower_bound_secs <<<"$ours")
    r_ours=$(ratio "$ours")
    r_best=$(ratio "$best")
    status=$(awk -v o="$r_ours" -v b="$r_best" 'BEGIN {
        m1 = (o <= 1.10); m2 = (o <= b * 1.05)
        if (m1 && m2) print "**met**"
        else printf "**missed**: %s%s%s\n", (m1 ? "" : sprintf("%.2f× the bound", o)),
            (!m1 && !m2 ? "; " : ""), (m2 ? "" : sprintf("%.2f× best fixed", o / b)) }')
    local plans bytes case
    plans=$(jq -r .plans <<<"$ours")
    bytes=$(jq -r '.total_bytes / 1099511627776 | . * 100 | floor / 100' <<<"$ours")
    case="$model: $plans plans, $vms VMs, $bytes TiB (lower bound $(hms "$lb"))"
    emit "$label" "$case" "best fixed (--max-running-plans $best_n)" "$best" "$ours" \
        "adaptive ≤ 1.10× bound and ≤ 1.05× best fixed" "$status"
    emit "$label" "$case" "all at once" "$all" "$ours" "" ""
    emit "$label" "$case" "Forklift alone" "$forklift" "$ours" "" ""
}

emit() { # LABEL CASE PEER PEER-JSON OURS-JSON TARGET STATUS
    local rp ro
    rp=$(ratio "$4")
    ro=$(ratio "$5")
    printf '| C. schedule, %s | %s | makespan ÷ lower bound | %s: %.2f× (%s) | adaptive: %.2f× (%s, peak limit %s disk copies) | %.2f | %s | %s |\n' \
        "$1" "$2" "$3" "$rp" "$(hms "$(jq -r .makespan_secs <<<"$4")")" \
        "$ro" "$(hms "$(jq -r .makespan_secs <<<"$5")")" "$(jq -r .peak_disk_limit <<<"$5")" \
        "$(awk -v p="$rp" -v o="$ro" 'BEGIN { print p / o }')" "$6" "$7"
}

say "C: demo world"
records demo --world "$ROOT/tests/worlds/demo.json"
for model in $MODELS; do row demo "demo world" "$model"; done
# The same VMs one to a plan: plan-run starts plans, Forklift all of a plan's VMs at once, so
# plans of 20 VMs leave the controller little to choose on a link that collapses past 4 streams.
"$BIN/plan-gen" -q --url https://engine.example.com/ovirt-engine/api --namespace rhv-migration \
    --secret ovirt-engine --map-file "$ROOT/tests/fixtures/demo-networks.map" \
    --max-vms-per-plan 1 -o "$WORK/demo1.plans.jsonl" "$WORK/demo.owned.jsonl" || (($? == 1))
cp "$WORK/demo.owned.jsonl" "$WORK/demo1.owned.jsonl"
for model in $MODELS; do row demo1 "demo world, 1 VM a plan" "$model"; done
say "C: generated 2,000-VM world"
records gen2000 --generate 2000 --seed 1
for model in $MODELS; do row gen2000 "generated 2,000 VMs" "$model"; done
