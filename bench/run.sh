#!/usr/bin/env bash
# make bench: liftkit against its peers, in one run on this machine; prints one markdown table of
# ratios (peer ÷ liftkit) with the absolute figures and writes it to bench/RESULTS.md.
# What is measured, how, and what is extrapolated: bench/README.md.
#
# Needs (make bench installs them): release binaries in target/release, the jsonl criterion bench
# built, jq, curl, GNU time at /usr/bin/time, and a venv with ovirtsdk4.
# BENCH_QUICK=1: small sizes, to check the script itself; results go to bench/raw/ only.
# BENCH_PARTS="A B C" (the default): the parts to run; BENCH_ROUNDS=3: alternate runs of capacity-calc
# and DuckDB per size (their medians are reported).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${LIFTKIT_BIN:-$ROOT/target/release}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CACHE=${LIFTKIT_BENCH_CACHE:-$HOME/.cache/liftkit/bench}
VENV=${LIFTKIT_BENCH_VENV:-$HOME/.cache/liftkit/bench-venv}
RAW=$ROOT/bench/raw
SEED=1
LATENCIES=(1 20)
COPIES=10 # the large streaming input is the base dump replicated this many times
if [[ ${BENCH_QUICK:-0} == 1 ]]; then
    A_SIZES=(200 1000)
    B_BASE=10000
    SDK_SAMPLE=100
    RESULTS=$RAW/RESULTS-quick.md
    CACHE=$CACHE/quick
else
    A_SIZES=(1000 10000)
    B_BASE=100000
    SDK_SAMPLE=500
    RESULTS=$ROOT/bench/RESULTS.md
fi
A_LAST=${A_SIZES[-1]}
PARTS=${BENCH_PARTS:-A B C}
ROUNDS=${BENCH_ROUNDS:-3}
want() { [[ " $PARTS " == *" $1 "* ]]; }
# Some parts only: their own results file, so bench/RESULTS.md keeps one whole run.
if [[ $PARTS != "A B C" && ${BENCH_QUICK:-0} != 1 ]]; then
    RESULTS=$ROOT/bench/RESULTS-part-${PARTS// /}.md
fi
A_TARGET_SPEEDUP=30
B_TARGET_SPEEDUP=10
# A streaming tool's peak memory counts as flat when the large input's peak is within this much of
# the small one's: 10%, or 4 MiB, whichever is more (allocator and page-cache noise).
FLAT_PERCENT=10
FLAT_KIB=4096

mkdir -p "$RAW" "$CACHE"
declare -A WALL RSS REQ CPU CPUS
NOISY=() # measurements during which a compiler or test run was on the machine

say() { echo "bench: $*" >&2; }
die() {
    say "$*"
    exit 1
}

for tool in ovirt-sim ovirt-dump owner-group capacity-calc plan-gen plan-run; do
    [[ -x $BIN/$tool ]] || die "$BIN/$tool missing: run 'cargo build --release --bins' (make bench does)"
done
for cmd in jq curl; do command -v "$cmd" >/dev/null || die "$cmd missing (make bench installs it)"; done
[[ -x /usr/bin/time ]] || die "/usr/bin/time missing: apt-get install time (make bench does)"
"$VENV/bin/python" -c 'import ovirtsdk4' 2>/dev/null ||
    die "$VENV has no ovirtsdk4 (make bench creates it: python3 -m venv; pip install ovirt-engine-sdk-python)"
"$VENV/bin/python" -c 'import duckdb' 2>/dev/null ||
    die "$VENV has no duckdb (make bench installs it: pip install duckdb)"

# ---------------------------------------------------------------------------------------------
# The simulator; stopped on any exit.
SIM_PID=
start_sim() { # N LATENCY_MS (empty: none)
    local n=$1 latency=$2 i
    rm -f "$RAW/sim.json"
    local args=(--generate "$n" --seed "$SEED" -q)
    [[ -n $latency ]] && args+=(--latency "${latency}ms")
    "$BIN/ovirt-sim" "${args[@]}" >"$RAW/sim.json" 2>"$RAW/sim.err" &
    SIM_PID=$!
    for ((i = 0; i < 1200; i++)); do
        [[ -s $RAW/sim.json ]] && break
        kill -0 "$SIM_PID" 2>/dev/null || die "ovirt-sim exited: $(cat "$RAW/sim.err")"
        sleep 0.1
    done
    [[ -s $RAW/sim.json ]] || die "ovirt-sim did not start in 120 s"
    export OVIRT_URL OVIRT_USER OVIRT_PASSWORD
    OVIRT_URL=$(jq -r .url "$RAW/sim.json")
    OVIRT_USER=$(jq -r .user "$RAW/sim.json")
    OVIRT_PASSWORD=$(jq -r .password "$RAW/sim.json")
    SIM_ADMIN=$(jq -r .admin_url "$RAW/sim.json")
}
stop_sim() {
    if [[ -n $SIM_PID ]]; then
        kill "$SIM_PID" 2>/dev/null || true
        wait "$SIM_PID" 2>/dev/null || true
        SIM_PID=
    fi
}
trap stop_sim EXIT
trap 'exit 130' INT TERM
reset_requests() { curl -fsS -X POST "$SIM_ADMIN/reset" >/dev/null; }
count_requests() { curl -fsS "$SIM_ADMIN/requests" | jq .total; }

# ---------------------------------------------------------------------------------------------
# Timing. Compilers and test runs of people working on the same machine (2 cores) would distort
# the figures: wait for them (up to BENCH_WAIT_MAX seconds in all), and note any that overlap.
WAITED=0
busy() { pgrep -x cargo >/dev/null || pgrep -x rustc >/dev/null; }
wait_quiet() {
    local announced=0
    while busy && ((WAITED < ${BENCH_WAIT_MAX:-900})); do
        ((announced)) || say "waiting for a running cargo/rustc to finish (timings need a quiet machine)"
        announced=1
        sleep 5
        WAITED=$((WAITED + 5))
    done
}

# measure NAME OUTPUT CMD...: runs CMD under GNU time; WALL[NAME] in seconds, RSS[NAME] in KiB.
measure() {
    local name=$1 out=$2 t0 t1 was_busy=0
    shift 2
    wait_quiet
    busy && was_busy=1
    say "$name: $*"
    t0=$(date +%s%N)
    if ! /usr/bin/time -v -o "$RAW/$name.time" "$@" >"$out" 2>"$RAW/$name.err"; then
        tail -5 "$RAW/$name.err" >&2
        die "$name failed: $*"
    fi
    t1=$(date +%s%N)
    busy && was_busy=1
    ((was_busy)) && NOISY+=("$name")
    WALL[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    RSS[$name]=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$RAW/$name.time")
    CPU[$name]=$(awk -F': ' '/Percent of CPU this job got/ { print $2 }' "$RAW/$name.time")
    CPUS[$name]=$(awk -F': ' '/(User|System) time \(seconds\)/ { s += $2 } END { printf "%.2f", s }' "$RAW/$name.time")
    say "$name: ${WALL[$name]} s, max RSS ${RSS[$name]} KiB"
}

# Formatting.
calc() { awk "BEGIN { printf \"%s\", $1 }"; }
secs() { awk -v s="$1" 'BEGIN { if (s < 10) printf "%.2f s", s; else if (s < 100) printf "%.1f s", s; else printf "%.0f s", s }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }'; }
int() { printf "%d" "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; if (r >= 100) printf "%.0f×", r; else if (r >= 10) printf "%.1f×", r; else printf "%.2f×", r }'; }
mbps() { awk -v bytes="$1" -v s="$2" 'BEGIN { printf "%.0f MB/s", bytes / 1e6 / s }'; }
label() { awk -v n="$1" 'BEGIN { if (n >= 1e6 && n % 1e6 == 0) printf "%dM", n / 1e6; else if (n >= 1000 && n % 1000 == 0) printf "%dk", n / 1000; else printf "%d", n }'; }
count_lines() { wc -l <"$1" | tr -d ' '; }

ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 | $6 | $7 | $8 |"); }

# ---------------------------------------------------------------------------------------------
# A. Inventory export: ovirt-dump against a plain script on the official Python SDK.
A_NOTE=""
if want A; then
    SDK=("$VENV/bin/python" "$ROOT/bench/sdk_owners.py")
    for n in "${A_SIZES[@]}"; do
        for lat in "${LATENCIES[@]}"; do
            key=$n-${lat}ms
            start_sim "$n" "$lat"

            reset_requests
            measure "dump-$key" "$RAW/dump-$key.jsonl" "$BIN/ovirt-dump"
            REQ[dump-$key]=$(count_requests)
            [[ $(count_lines "$RAW/dump-$key.jsonl") == "$n" ]] || die "dump-$key: expected $n records"

            if [[ $n == "$A_LAST" && $lat != "${LATENCIES[0]}" ]]; then
                # Too long to run in full (about an hour at 20 ms): two runs on the first VMs of the
                # full list, 1 and SDK_SAMPLE, give the fixed cost and the cost per VM.
                reset_requests
                measure "sdk-$key-first1" "$RAW/sdk-$key-first1.jsonl" env LIMIT=1 "${SDK[@]}"
                REQ[sdk-$key-first1]=$(count_requests)
                reset_requests
                measure "sdk-$key-first$SDK_SAMPLE" "$RAW/sdk-$key-first$SDK_SAMPLE.jsonl" env LIMIT="$SDK_SAMPLE" "${SDK[@]}"
                REQ[sdk-$key-first$SDK_SAMPLE]=$(count_requests)
            else
                reset_requests
                measure "sdk-$key" "$RAW/sdk-$key.jsonl" "${SDK[@]}"
                REQ[sdk-$key]=$(count_requests)
                [[ $(count_lines "$RAW/sdk-$key.jsonl") == "$n" ]] || die "sdk-$key: expected $n VMs"
            fi
            stop_sim
        done
    done

    for n in "${A_SIZES[@]}"; do
        for lat in "${LATENCIES[@]}"; do
            key=$n-${lat}ms
            case_="$(int "$n") VMs, ${lat} ms/request"
            target="" status=""
            [[ $n == "$A_LAST" && $lat == "${LATENCIES[-1]}" ]] && target="≥ ${A_TARGET_SPEEDUP}× faster"
            dump_wall=${WALL[dump-$key]}
            if [[ -n ${WALL[sdk-$key]:-} ]]; then
                sdk_wall=${WALL[sdk-$key]}
                sdk_wall_cell="$(secs "$sdk_wall")"
                sdk_req_cell=$(int "${REQ[sdk-$key]}")
                sdk_req=${REQ[sdk-$key]}
                sdk_rss=${RSS[sdk-$key]}
                sdk_rss_cell=$(mib "$sdk_rss")
            else
                # Extrapolated: fixed cost (LIMIT=1) + cost per further VM × (n - 1).
                one=sdk-$key-first1 many=sdk-$key-first$SDK_SAMPLE
                full1=sdk-$n-${LATENCIES[0]}ms
                sdk_wall=$(calc "${WALL[$one]} + (${WALL[$many]} - ${WALL[$one]}) / ($SDK_SAMPLE - 1) * ($n - 1)")
                req_est=$(calc "int(${REQ[$one]} + (${REQ[$many]} - ${REQ[$one]}) / ($SDK_SAMPLE - 1) * ($n - 1) + 0.5)")
                sdk_req=${REQ[$full1]}
                sdk_rss=${RSS[$full1]}
                sdk_wall_cell="≈ $(secs "$sdk_wall") **extrapolated** ¹"
                sdk_req_cell="$(int "$sdk_req") ²"
                sdk_rss_cell="$(mib "$sdk_rss") ²"
                cross=$(calc "${WALL[$full1]} + ${REQ[$full1]} * ($lat - ${LATENCIES[0]}) / 1000")
                A_NOTE="¹ Not run in full (it would take about $(secs "$sdk_wall")). Measured: the script with LIMIT=1 ($(secs "${WALL[$one]}"), ${REQ[$one]} requests: login, the full list of $(int "$n") VMs, one VM) and with LIMIT=$SDK_SAMPLE (the first $SDK_SAMPLE VMs of the same full list: $(secs "${WALL[$many]}"), $(int "${REQ[$many]}") requests) against the same world at ${lat} ms; extrapolated linearly to $(int "$n") VMs: fixed + (per VM × $(int "$((n - 1))")). Cross-check: the full ${LATENCIES[0]} ms run plus ${lat}-${LATENCIES[0]} ms for each of its requests gives $(secs "$cross"); the sample's requests extrapolate to $(int "$req_est").
² Requests and peak memory of the full run at ${LATENCIES[0]} ms on the same world (the script's requests and data do not depend on the latency)."
            fi
            if [[ -n $target ]]; then
                if awk -v a="$sdk_wall" -v b="$dump_wall" -v t="$A_TARGET_SPEEDUP" 'BEGIN { exit !(a / b >= t) }'; then
                    status="**met**"
                else
                    status="**missed**"
                fi
            fi
            row "A. inventory export" "$case_" "wall time" "$sdk_wall_cell" "$(secs "$dump_wall")" "$(ratio "$sdk_wall" "$dump_wall")" "$target" "$status"
            row "" "" "HTTP requests" "$sdk_req_cell" "$(int "${REQ[dump-$key]}")" "$(ratio "$sdk_req" "${REQ[dump-$key]}")" "" ""
            row "" "" "peak memory (max RSS)" "$sdk_rss_cell" "$(mib "${RSS[dump-$key]}")" "$(ratio "$sdk_rss" "${RSS[dump-$key]}")" "" ""
        done
    done
fi

# ---------------------------------------------------------------------------------------------
# B. Streaming tools against jq. Inputs, made once and cached (bench/README.md says how):
#   vms-<base>.jsonl   ovirt-dump of a generated world of B_BASE VMs
#   vms-<big>.jsonl    the same replicated COPIES times with new ids and names (replicate.py)
#   owned-*.jsonl      owner-group's output of each (capacity-calc reads target_namespace)
B_BIG=$((B_BASE * COPIES))
SMALL=$(label "$B_BASE") BIG=$(label "$B_BIG")
stamp="base=$B_BASE seed=$SEED copies=$COPIES $("$BIN/ovirt-dump" --version) $("$BIN/owner-group" --version) $(sha256sum "$ROOT/bench/replicate.py" | cut -c1-16)"
if [[ ${BENCH_REFRESH:-0} == 1 || ! -s $CACHE/owned-$BIG.jsonl || $(cat "$CACHE/stamp-$SMALL" 2>/dev/null) != "$stamp" ]]; then
    say "making the streaming inputs in $CACHE (once; a few minutes)"
    rm -f "$CACHE"/{vms,owned}-{"$SMALL","$BIG"}.jsonl "$CACHE/stamp-$SMALL"
    start_sim "$B_BASE" ""
    # Larger pages: the simulator spends time per page that grows with the world (see README).
    "$BIN/ovirt-dump" -q --page-size 1000 -o "$CACHE/vms-$SMALL.jsonl"
    stop_sim
    python3 "$ROOT/bench/replicate.py" "$COPIES" <"$CACHE/vms-$SMALL.jsonl" >"$CACHE/vms-$BIG.jsonl.tmp"
    mv "$CACHE/vms-$BIG.jsonl.tmp" "$CACHE/vms-$BIG.jsonl"
    for size in "$SMALL" "$BIG"; do
        "$BIN/owner-group" -q -o "$CACHE/owned-$size.jsonl" "$CACHE/vms-$size.jsonl"
    done
    echo "$stamp" >"$CACHE/stamp-$SMALL"
fi

declare -A BYTES
for size in "$SMALL" "$BIG"; do
    BYTES[vms-$size]=$(stat -c %s "$CACHE/vms-$size.jsonl")
    BYTES[owned-$size]=$(stat -c %s "$CACHE/owned-$size.jsonl")
    # Both read from the page cache: warm it the same way for each.
    cat "$CACHE/vms-$size.jsonl" "$CACHE/owned-$size.jsonl" >/dev/null
    measure "owner-group-$size" /dev/null "$BIN/owner-group" "$CACHE/vms-$size.jsonl"
    measure "jq-owner-group-$size" /dev/null jq -c -f "$ROOT/bench/jq/owner-group.jq" "$CACHE/vms-$size.jsonl"
    measure "capacity-calc-$size" "$RAW/capacity-calc-$size.out" "$BIN/capacity-calc" --by namespace "$CACHE/owned-$size.jsonl"
    measure "jq-capacity-calc-$size" "$RAW/jq-capacity-calc-$size.out" jq -n -c -f "$ROOT/bench/jq/capacity-calc.jq" "$CACHE/owned-$size.jsonl"
done
# jq runs on one core; the tools decode on all of them. Each on one core too, for comparison.
measure "owner-group-$SMALL-1thread" /dev/null env LIFTKIT_THREADS=1 "$BIN/owner-group" "$CACHE/vms-$SMALL.jsonl"
measure "capacity-calc-$SMALL-1thread" /dev/null env LIFTKIT_THREADS=1 "$BIN/capacity-calc" --by namespace "$CACHE/owned-$SMALL.jsonl"

# A peer must agree with capacity-calc, or the comparison means nothing: agreement CC PEER NAME.
agreement() {
    jq -n -r --slurpfile a "$1" --slurpfile b "$2" --arg peer "$3" '
    def table: map(select(.total != true) | {key: .namespace, value: [.vms, .provisioned_bytes]}) | from_entries;
    ($a | table) as $x | ($b | table) as $y
    | [$x | keys[] | select($x[.] == $y[.])] | length as $same
    | "\($same) of \($x | length) namespaces (\($y | length) from \($peer))"'
}
agree=$(agreement "$RAW/capacity-calc-$SMALL.out" "$RAW/jq-capacity-calc-$SMALL.out" jq)

# B. capacity-calc against DuckDB's read_json (bench/duckdb_capacity.py) on the same files: ROUNDS
# runs of each, alternating, so drift in the machine's state hits both alike; the medians count.
DUCK=("$VENV/bin/python" "$ROOT/bench/duckdb_capacity.py")
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
for size in "$SMALL" "$BIG"; do
    for ((i = 1; i <= ROUNDS; i++)); do
        measure "cc-duck-$size-$i" "$RAW/cc-duck-$size.out" "$BIN/capacity-calc" --by namespace "$CACHE/owned-$size.jsonl"
        measure "duckdb-$size-$i" "$RAW/duckdb-$size.out" "${DUCK[@]}" "$CACHE/owned-$size.jsonl"
    done
    for who in cc-duck duckdb; do
        walls=() cpus=() rsss=()
        for ((i = 1; i <= ROUNDS; i++)); do
            walls+=("${WALL[$who-$size-$i]}") cpus+=("${CPUS[$who-$size-$i]}") rsss+=("${RSS[$who-$size-$i]}")
        done
        WALL[$who-$size]=$(median "${walls[@]}")
        CPUS[$who-$size]=$(median "${cpus[@]}")
        RSS[$who-$size]=$(median "${rsss[@]}")
    done
done
duck_agree=$(agreement "$RAW/cc-duck-$SMALL.out" "$RAW/duckdb-$SMALL.out" DuckDB)
measure duckdb-startup /dev/null "$VENV/bin/python" -c 'import duckdb'

for tool in owner-group capacity-calc; do
    input=vms
    [[ $tool == capacity-calc ]] && input=owned
    for size in "$SMALL" "$BIG"; do
        lk=$tool-$size peer=jq-$tool-$size bytes=${BYTES[$input-$size]}
        r=$(ratio "${WALL[$peer]}" "${WALL[$lk]}")
        if awk -v a="${WALL[$peer]}" -v b="${WALL[$lk]}" -v t="$B_TARGET_SPEEDUP" 'BEGIN { exit !(a / b >= t) }'; then
            status="**met**"
        else
            status="**missed**"
        fi
        row "B. $tool" "$size records ($(awk -v b="$bytes" 'BEGIN { printf "%.0f MB", b / 1e6 }'))" \
            "wall time (throughput)" "$(secs "${WALL[$peer]}") ($(mbps "$bytes" "${WALL[$peer]}"))" \
            "$(secs "${WALL[$lk]}") ($(mbps "$bytes" "${WALL[$lk]}"), ${CPU[$lk]} CPU)" "$r" "≥ ${B_TARGET_SPEEDUP}× jq's throughput" "$status"
        row "" "" "peak memory (max RSS)" "$(mib "${RSS[$peer]}")" "$(mib "${RSS[$lk]}")" "$(ratio "${RSS[$peer]}" "${RSS[$lk]}")" "" ""
        if [[ $size == "$SMALL" ]]; then
            one=$tool-$SMALL-1thread
            row "" "" "wall time on one core (LIFTKIT_THREADS=1)" "$(secs "${WALL[$peer]}") (${CPU[$peer]} CPU)" \
                "$(secs "${WALL[$one]}") ($(mbps "$bytes" "${WALL[$one]}"), ${CPU[$one]} CPU)" "$(ratio "${WALL[$peer]}" "${WALL[$one]}")" "(informational)" ""
        fi
    done
    small=${RSS[$tool-$SMALL]} big=${RSS[$tool-$BIG]}
    if awk -v s="$small" -v b="$big" -v p="$FLAT_PERCENT" -v k="$FLAT_KIB" 'BEGIN { m = s * p / 100; if (m < k) m = k; exit !(b <= s + m) }'; then
        status="**met**"
    else
        status="**missed**: grows $(awk -v s="$small" -v b="$big" 'BEGIN { printf "%.1f×", b / s }') for $COPIES× the input"
    fi
    row "B. $tool" "$BIG vs $SMALL records" "peak memory growth" "jq: $(mib "${RSS[jq-$tool-$SMALL]}") → $(mib "${RSS[jq-$tool-$BIG]}")" \
        "$(mib "$small") → $(mib "$big")" "" "flat (within ${FLAT_PERCENT}% or $((FLAT_KIB / 1024)) MiB)" "$status"
done

at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }' && echo "**met**" || echo "**missed**"; }
for size in "$SMALL" "$BIG"; do
    lk=cc-duck-$size peer=duckdb-$size bytes=${BYTES[owned-$size]}
    row "B. capacity-calc vs DuckDB" "$size records ($(awk -v b="$bytes" 'BEGIN { printf "%.0f MB", b / 1e6 }')), median of $ROUNDS alternate runs" \
        "wall time" "$(secs "${WALL[$peer]}")" "$(secs "${WALL[$lk]}")" "$(ratio "${WALL[$peer]}" "${WALL[$lk]}")" "≥ 1× (as fast)" \
        "$(at_least "${WALL[$peer]}" "${WALL[$lk]}")"
    row "" "" "CPU time (user + system)" "$(secs "${CPUS[$peer]}")" "$(secs "${CPUS[$lk]}")" "$(ratio "${CPUS[$peer]}" "${CPUS[$lk]}")" "≥ 1×" \
        "$(at_least "${CPUS[$peer]}" "${CPUS[$lk]}")"
    row "" "" "peak memory (max RSS)" "$(mib "${RSS[$peer]}")" "$(mib "${RSS[$lk]}")" "$(ratio "${RSS[$peer]}" "${RSS[$lk]}")" "" ""
done

# ---------------------------------------------------------------------------------------------
# B. Criterion: common::jsonl reader and writer against plain serde_json on the same bytes.
wait_quiet
say "criterion: cargo bench -p common --bench jsonl"
(cd "$ROOT" && LIFTKIT_BENCH_JSONL=$CACHE/vms-$SMALL.jsonl cargo bench -q -p common --bench jsonl) >"$RAW/criterion.log" 2>&1 ||
    die "criterion failed: $(tail -5 "$RAW/criterion.log")"
crit() { # GROUP FUNCTION -> MB/s
    local dir=$TARGET_DIR/criterion/$1/$2/new
    jq -n -r --slurpfile e "$dir/estimates.json" --slurpfile b "$dir/benchmark.json" \
        '($b[0].throughput.Bytes) / ($e[0].mean.point_estimate / 1e9) / 1e6 | floor'
}
crit_bytes=$(jq -r .throughput.Bytes "$TARGET_DIR/criterion/jsonl_read/serde_json/new/benchmark.json")
for pair in "jsonl_read common_input reader common::jsonl::Input" "jsonl_write common_writer writer common::jsonl::Writer"; do
    read -r group fn what api <<<"$pair"
    ceiling=$(crit "$group" serde_json) ours=$(crit "$group" "$fn")
    row "B. JSON-lines $what (criterion)" "$(awk -v b="$crit_bytes" 'BEGIN { printf "%.0f MB", b / 1e6 }') of VM records, in memory" \
        "throughput" "plain serde_json: $ceiling MB/s" "$api: $ours MB/s" "$(ratio "$ceiling" "$ours")" "near the ceiling (informational)" \
        "$(awk -v a="$ours" -v b="$ceiling" 'BEGIN { printf "%.0f%% of serde_json", 100 * a / b }')"
done

# ---------------------------------------------------------------------------------------------
# C. Scheduling on the shared-link model (what it runs: bench/schedule.sh).
if want C; then
    say "C: makespans of plan-run's scheduler, all plans at once, Forklift's queue alone"
    while IFS= read -r line; do ROWS+=("$line"); done < <(LIFTKIT_BIN=$BIN "$ROOT/bench/schedule.sh")
fi

# ---------------------------------------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
ram=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1024 / 1024 }' /proc/meminfo)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ", with uncommitted changes" || true)
{
    echo "## Benchmark results"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), commit $commit$dirty; machine: $(nproc) CPUs ($cpu), $ram RAM; \`make bench\`."
    echo "Ratios are peer ÷ liftkit (time, requests, memory): above 1 means liftkit is faster or smaller."
    echo "Every figure is one run (no repeats) except capacity-calc against DuckDB, the median of $ROUNDS runs of each, alternating; wall time is measured around the process, CPU time and peak memory are GNU time's (user + system, max RSS)."
    echo
    echo "| part | case | measure | peer | liftkit | peer ÷ liftkit | target | status |"
    echo "|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Peers: A. \`bench/sdk_owners.py\` on ovirtsdk4 $("$VENV/bin/python" -c 'import ovirtsdk4.version as v; print(v.VERSION)') (lists VMs, then per VM its permissions and each permission's user or group link), against \`ovirt-dump\` (the full export: disks, NICs, IPs, permissions, owners), both over plain http to \`ovirt-sim --generate N --seed $SEED --latency L\`. B. $(jq --version) running \`bench/jq/owner-group.jq\` (per record; no hash suffixes, input read once) and \`bench/jq/capacity-calc.jq\` (provisioned bytes and VMs per namespace only, as pairs grouped with group_by: it holds one small pair per VM); owner-group is run as a user runs it, on a file it reads twice; outputs go to /dev/null (capacity-calc's to a small file). jq and capacity-calc agree on vms and provisioned bytes for $agree at $SMALL records (jq counts direct LUN disks in, capacity-calc apart). DuckDB $("$VENV/bin/python" -c 'import duckdb; print(duckdb.__version__)') runs \`bench/duckdb_capacity.py\` (read_json with the two fields the sums need declared, GROUP BY in SQL, every core, LUN disks left out as capacity-calc does), agreeing on $duck_agree at $SMALL records; its times include starting Python and importing duckdb, $(secs "${WALL[duckdb-startup]}") alone. Throughput is input bytes ÷ wall time. jq decodes on one core; owner-group and capacity-calc decode on all of them (at most 8; CPU is GNU time's share, 100% = one core), and the rows on one core show what they do without that. The reading thread and the in-order consumer mean one thread (LIFTKIT_THREADS=1) still uses a little more than one core."
    [[ -n $A_NOTE ]] && { echo; echo "$A_NOTE"; }
    if ((${#NOISY[@]})); then
        echo
        echo "Caution: cargo or rustc was running on this machine during: ${NOISY[*]}; those figures may be slower than on a quiet machine."
    fi
} >"$RESULTS"

cat "$RESULTS"
say "wrote $RESULTS (raw figures in $RAW)"
