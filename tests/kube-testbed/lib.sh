# Shared by the test bed scripts (sourced, never run): versions, cache paths, logging, pid handling.
# Keep the versions here in step with go.mod; build.sh refuses to run if they disagree.
# shellcheck disable=SC2034 # the variables are used by the scripts that source this file

KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.7.0
TESTBED_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TESTBED_CACHE=${LIFTKIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/liftkit}/kube-$KUBE_VERSION
TESTBED_USERS=(alice bob carol dave)

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }

# The stamp names what the cached binaries were built from, so a changed go.mod or go.sum rebuilds
# them. Not the Go version: a Go update alone is no reason for a 15-minute rebuild.
expected_stamp() {
  printf 'kube-apiserver+kcm %s etcd %s sum %s\n' "$KUBE_VERSION" "$ETCD_VERSION" \
    "$(cat "$TESTBED_SRC/go.mod" "$TESTBED_SRC/go.sum" | sha256sum | cut -c1-16)"
}

# Where kube-apiserver and etcd live: KUBEBUILDER_ASSETS when it holds both (the envtest convention),
# else the cache, built on first use.
resolve_bin_dir() {
  if [[ -n ${KUBEBUILDER_ASSETS:-} ]]; then
    if [[ -x $KUBEBUILDER_ASSETS/kube-apiserver && -x $KUBEBUILDER_ASSETS/kube-controller-manager && -x $KUBEBUILDER_ASSETS/etcd ]]; then
      printf '%s\n' "$KUBEBUILDER_ASSETS"
      return
    fi
    log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks kube-apiserver or etcd; using the built ones"
  fi
  "$TESTBED_SRC/build.sh"
}

# pid_alive FILE NAME: true when FILE holds the pid of a live process whose executable is NAME
# (so a recycled pid is never mistaken for ours).
pid_alive() {
  local pid argv0
  [[ -s $1 ]] || return 1
  pid=$(<"$1")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" | head -n1)
  [[ $argv0 == "$2" || $argv0 == */"$2" ]]
}

# running PID: true while PID is a live process (not a zombie). Unlike pid_alive it holds from fork
# on, before exec has named the process, so start-up waits use it on the pid they just got.
running() {
  local state
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# stop_pid FILE NAME: SIGTERM, wait up to 15 s, then SIGKILL; removes FILE.
stop_pid() {
  local pid i
  if pid_alive "$1" "$2"; then
    pid=$(<"$1")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      running "$pid" || break
      sleep 0.1
    done
    if running "$pid"; then
      log "$2 (pid $pid) ignored SIGTERM for 15 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do running "$pid" || break; sleep 0.1; done
    fi
  fi
  rm -f "$1"
}

# A free TCP port on 127.0.0.1 for a server started after this returns: etcd and kube-apiserver
# cannot be handed a listening socket nor report the port they got for port 0, so the port is picked
# here. Below the kernel's ephemeral range (ip_local_port_range), so that no outgoing connection or
# port-0 bind takes it meanwhile; not listened on now; and reserved for test bed $DIR by a symlink
# created atomically in a directory every test bed of this user shares, so that two test beds
# starting at once never get the same port. A reservation ends when its test bed's directory is
# gone or after a day (a kept directory), and is then removed by the next call.
free_port() {
  local port i low=32768 reserved=${TMPDIR:-/tmp}/liftkit-testbed-ports-$UID owner=${DIR:-}
  [[ -n $owner && -d $owner ]] || die "free_port: DIR (the test bed's directory) is not set"
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  ((low > 11000)) || die "free_port: ephemeral ports start at $low: no room below them"
  mkdir -p "$reserved" && chmod 700 "$reserved" || die "$reserved: cannot create"
  find "$reserved" -mindepth 1 -maxdepth 1 -type l \( ! -xtype d -o -mmin +1440 \) -delete 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    port=$((10000 + RANDOM % (low - 10000)))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
    # -n: an existing reservation (a link to a directory) is the name taken, not a place to add to.
    if ln -sn "$owner" "$reserved/$port" 2>/dev/null; then
      printf '%s\n' "$port"
      return
    fi
  done
  die "no free port found on 127.0.0.1 after 200 tries"
}

# api METHOD PATH [curl args...]: a request to the API server as admin; prints the body, fails on HTTP >= 400.
# The user agent is not curl's: the API server pretty-prints JSON for curl, and the scripts grep compact JSON.
api() {
  local method=$1 path=$2
  shift 2
  curl -sS --fail-with-body --max-time 30 -A liftkit-testbed --cacert "$DIR/pki/ca.crt" \
    -H "Authorization: Bearer $(admin_token)" -X "$method" "$@" "$(<"$DIR/url")$path"
}

admin_token() { awk -F, '$2 == "admin" { print $1 }' "$DIR/pki/tokens.csv"; }
user_token() { awk -F, -v u="$1" '$2 == u { print $1 }' "$DIR/pki/tokens.csv"; }

# wait_ready SECONDS: polls /readyz until it answers ok, failing early if the API server dies.
wait_ready() {
  local deadline=$((SECONDS + $1))
  while ((SECONDS < deadline)); do
    running "$(<"$DIR/kube-apiserver.pid")" ||
      die "kube-apiserver exited during start-up; last lines of $DIR/kube-apiserver.log: $(tail -n 3 "$DIR/kube-apiserver.log" | tr '\n' ' ')"
    [[ $(api GET /readyz 2>/dev/null) == ok ]] && return 0
    sleep 0.2
  done
  die "kube-apiserver not ready after $1 s (see $DIR/kube-apiserver.log)"
}

# start_apiserver: runs the API server from the arguments start.sh saved, detached from our stdio.
start_apiserver() {
  local bin
  bin=$(<"$DIR/bin-dir")/kube-apiserver
  mapfile -t args <"$DIR/kube-apiserver.args"
  setsid "$bin" "${args[@]}" </dev/null >>"$DIR/kube-apiserver.log" 2>&1 &
  echo $! >"$DIR/kube-apiserver.pid"
}

# The controllers the test bed runs: those a real cluster has and liftkit's tests depend on.
# (Names as `kube-controller-manager --help` lists them for --controllers.)
KCM_CONTROLLERS=resourcequota-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller,persistentvolume-binder-controller,persistentvolume-protection-controller,persistentvolumeclaim-protection-controller

# start_controller_manager: runs kube-controller-manager against the test bed, detached from our stdio.
# --secure-port=0: it serves nothing (no health port to collide with other test beds).
start_controller_manager() {
  local bin
  bin=$(<"$DIR/bin-dir")/kube-controller-manager
  setsid "$bin" --kubeconfig="$DIR/kubeconfig-controller-manager" --controllers="$KCM_CONTROLLERS" \
    --leader-elect=false --secure-port=0 --use-service-account-credentials=false \
    --root-ca-file="$DIR/pki/ca.crt" --concurrent-resource-quota-syncs=5 \
    --resource-quota-sync-period=30s --v=1 \
    </dev/null >>"$DIR/kube-controller-manager.log" 2>&1 &
  echo $! >"$DIR/kube-controller-manager.pid"
}

# wait_controller_manager SECONDS: ready when the service-account controller has made `default`'s
# ServiceAccount (pods can be admitted from then on), failing early if the process dies.
wait_controller_manager() {
  local deadline=$((SECONDS + $1))
  while ((SECONDS < deadline)); do
    running "$(<"$DIR/kube-controller-manager.pid")" ||
      die "kube-controller-manager exited during start-up; last lines of $DIR/kube-controller-manager.log: $(tail -n 3 "$DIR/kube-controller-manager.log" | tr '\n' ' ')"
    api GET /api/v1/namespaces/default/serviceaccounts/default >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "kube-controller-manager not ready after $1 s (no default ServiceAccount; see $DIR/kube-controller-manager.log)"
}

# apply_object FILE: server-side apply of the one object in FILE (YAML), at the path its apiVersion
# and kind give. Cluster-scoped kinds only (what cluster/ holds); the plural is the kind lowercased
# with English's regular plural (StorageClass -> storageclasses, Policy -> policies).
apply_object() {
  local api_version kind name plural base
  api_version=$(awk '/^apiVersion:/ { print $2; exit }' "$1")
  kind=$(awk '/^kind:/ { print $2; exit }' "$1")
  name=$(awk '/^metadata:/ { m = 1; next } m && /^  name:/ { print $2; exit }' "$1")
  [[ -n $api_version && -n $kind && -n $name ]] || { log "$1: no apiVersion, kind or metadata.name"; return 1; }
  plural=${kind,,}
  case $plural in
  *s | *x | *ch | *sh) plural+=es ;;
  *[^aeiou]y) plural=${plural%y}ies ;;
  *) plural+=s ;;
  esac
  if [[ $api_version == */* ]]; then base=/apis/$api_version; else base=/api/$api_version; fi
  api PATCH "$base/$plural/$name?fieldManager=liftkit-testbed&force=true" \
    -H 'Content-Type: application/apply-patch+yaml' --data-binary "@$1" >/dev/null
}
