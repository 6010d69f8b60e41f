#!/usr/bin/env bash
# start.sh DIR [PORT]: starts etcd, a kube-apiserver on 127.0.0.1 and a kube-controller-manager
# (quota, garbage collection, namespaces, service accounts, PV binding and protection) with their
# state in DIR, installs the CRDs in crds/ and the objects in cluster/ (StorageClasses), and prints
# the admin kubeconfig's path on stdout (logs go to stderr).
# PORT (or KUBE_TESTBED_PORT) fixes the API server's port; otherwise a free one is picked.
# KUBE_TESTBED_WATCH_PID=PID stops the test bed when that process exits (a test runner that dies).
set -euo pipefail
PROG=kube-testbed/start.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -ge 1 && $# -le 2 && -n $1 ]] || die "usage: start.sh DIR [PORT]"
mkdir -p "$1" || die "$1: cannot create the state directory"
DIR=$(cd "$1" && pwd)
PORT=${2:-${KUBE_TESTBED_PORT:-}}
[[ -z $PORT || $PORT =~ ^[0-9]+$ ]] || die "$PORT: not a port number"
command -v curl >/dev/null || die "curl not found: apt-get install curl"
command -v openssl >/dev/null || die "openssl not found: apt-get install openssl"

if pid_alive "$DIR/kube-apiserver.pid" kube-apiserver || pid_alive "$DIR/etcd.pid" etcd ||
  pid_alive "$DIR/kube-controller-manager.pid" kube-controller-manager; then
  die "$DIR: a test bed is already running there (stop it with stop.sh $DIR)"
fi

BIN_DIR=$(resolve_bin_dir)
printf '%s\n' "$BIN_DIR" >"$DIR/bin-dir"
# From here on, a failed start leaves nothing running.
trap 'rc=$?; ((rc == 0)) || "$TESTBED_SRC/stop.sh" "$DIR" >/dev/null 2>&1 || true' EXIT

# --- credentials: kept across restarts of the same DIR, so kubeconfigs stay valid ---
pki=$DIR/pki
if [[ ! -s $pki/tokens.csv ]]; then
  log "generating a CA, serving certificate, service-account keys and tokens in $pki"
  rm -rf "$pki"
  mkdir -p "$pki"
  chmod 700 "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=liftkit-testbed-ca" -keyout ca.key -out ca.crt
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
      >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key
    openssl pkey -in sa.key -pubout -out sa.pub
    {
      printf '%s,admin,admin,"system:masters"\n' "$(openssl rand -hex 24)"
      for user in "${TESTBED_USERS[@]}"; do
        printf '%s,%s,%s\n' "$(openssl rand -hex 24)" "$user" "$user"
      done
    } >tokens.csv.tmp
    mv tokens.csv.tmp tokens.csv
  ) >"$DIR/openssl.log" 2>&1 || die "openssl failed (see $DIR/openssl.log)"
fi

# --- etcd ---
etcd_port=$(free_port)
peer_port=$(free_port)
while [[ $peer_port == "$etcd_port" ]]; do peer_port=$(free_port); done
etcd_url=http://127.0.0.1:$etcd_port
log "starting etcd on $etcd_url (data in $DIR/etcd)"
mkdir -p "$DIR/etcd"
chmod 700 "$DIR/etcd"
# --unsafe-no-fsync: test data need not survive a power cut, and fsync dominates etcd's latency.
setsid "$BIN_DIR/etcd" --name=testbed --data-dir="$DIR/etcd" \
  --listen-client-urls="$etcd_url" --advertise-client-urls="$etcd_url" \
  --listen-peer-urls="http://127.0.0.1:$peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
  --initial-cluster="testbed=http://127.0.0.1:$peer_port" --unsafe-no-fsync --log-level=warn \
  </dev/null >>"$DIR/etcd.log" 2>&1 &
echo $! >"$DIR/etcd.pid"
deadline=$((SECONDS + 30))
until [[ $(curl -sS --max-time 2 "$etcd_url/health" 2>/dev/null) == *'"health":"true"'* ]]; do
  running "$(<"$DIR/etcd.pid")" ||
    die "etcd exited during start-up; last lines of $DIR/etcd.log: $(tail -n 3 "$DIR/etcd.log" | tr '\n' ' ')"
  ((SECONDS < deadline)) || die "etcd not healthy after 30 s (see $DIR/etcd.log)"
  sleep 0.2
done

# --- kube-apiserver ---
[[ -n $PORT ]] || PORT=$(free_port)
url=https://127.0.0.1:$PORT
printf '%s\n' "$url" >"$DIR/url"
# One argument a line, so restart-apiserver.sh starts the same server again.
cat >"$DIR/kube-apiserver.args" <<EOF
--bind-address=127.0.0.1
--advertise-address=127.0.0.1
--secure-port=$PORT
--cert-dir=$pki
--tls-cert-file=$pki/apiserver.crt
--tls-private-key-file=$pki/apiserver.key
--client-ca-file=$pki/ca.crt
--token-auth-file=$pki/tokens.csv
--authorization-mode=RBAC
--service-account-issuer=https://kubernetes.default.svc.cluster.local
--service-account-key-file=$pki/sa.pub
--service-account-signing-key-file=$pki/sa.key
--etcd-servers=$etcd_url
--service-cluster-ip-range=10.96.0.0/16
--endpoint-reconciler-type=none
--allow-privileged=true
--profiling=false
EOF
log "starting kube-apiserver on $url (log in $DIR/kube-apiserver.log)"
start_apiserver
wait_ready 120

# --- kubeconfigs: admin (system:masters) and one per test user ---
ca_data=$(base64 -w0 <"$pki/ca.crt")
write_kubeconfig() { # FILE USER TOKEN
  cat >"$1.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: liftkit-testbed
  cluster:
    server: $url
    certificate-authority-data: $ca_data
users:
- name: $2
  user:
    token: $3
contexts:
- name: $2@liftkit-testbed
  context:
    cluster: liftkit-testbed
    user: $2
    namespace: default
current-context: $2@liftkit-testbed
EOF
  chmod 600 "$1.tmp"
  mv "$1.tmp" "$1"
}
write_kubeconfig "$DIR/kubeconfig" admin "$(admin_token)"
{
  printf 'KUBECONFIG=%s\n' "$DIR/kubeconfig"
  printf 'KUBE_TESTBED_URL=%s\n' "$url"
  printf 'KUBE_TESTBED_CA=%s\n' "$pki/ca.crt"
  printf 'KUBE_TESTBED_TOKEN_ADMIN=%s\n' "$(admin_token)"
} >"$DIR/testbed.env.tmp"
for user in "${TESTBED_USERS[@]}"; do
  write_kubeconfig "$DIR/kubeconfig-$user" "$user" "$(user_token "$user")"
  printf 'KUBE_TESTBED_TOKEN_%s=%s\n' "${user^^}" "$(user_token "$user")" >>"$DIR/testbed.env.tmp"
done
mv "$DIR/testbed.env.tmp" "$DIR/testbed.env"

# --- CRDs: server-side apply, then wait until each is Established and its resource is served ---
crds=("$TESTBED_SRC"/crds/*.yaml)
names=()
for file in "${crds[@]}"; do
  name=$(awk '/^metadata:/ { m = 1; next } m && /^  name:/ { print $2; exit }' "$file")
  [[ -n $name ]] || die "$file: no metadata.name found"
  api PATCH "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/$name?fieldManager=liftkit-testbed&force=true" \
    -H 'Content-Type: application/apply-patch+yaml' --data-binary "@$file" >/dev/null ||
    die "$file: applying CRD $name failed"
  names+=("$name")
done
deadline=$((SECONDS + 60))
for name in "${names[@]}"; do
  plural=${name%%.*} group=${name#*.}
  until crd=$(api GET "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/$name" 2>/dev/null) &&
    [[ $crd == *'"type":"Established","status":"True"'* ]] &&
    version=$(sed -n 's/.*"storedVersions":\["\([^"]*\)".*/\1/p' <<<"$crd") && [[ -n $version ]] &&
    api GET "/apis/$group/$version/$plural?limit=1" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "CRD $name not established and served after 60 s"
    sleep 0.2
  done
done
log "installed ${#names[@]} CRDs: ${names[*]}"

# --- kube-controller-manager: what makes quotas, owner references, namespace deletion and PV
# binding real. Started after the CRDs so its first discovery sees them (it rediscovers anyway).
write_kubeconfig "$DIR/kubeconfig-controller-manager" admin "$(admin_token)"
log "starting kube-controller-manager ($KCM_CONTROLLERS; log in $DIR/kube-controller-manager.log)"
start_controller_manager
wait_controller_manager 60

# --- cluster objects (StorageClasses...): server-side apply, one object per file in cluster/ ---
shopt -s nullglob
objects=("$TESTBED_SRC"/cluster/*.yaml)
shopt -u nullglob
for file in "${objects[@]}"; do
  apply_object "$file" || die "$file: applying it failed"
done
((${#objects[@]} == 0)) || log "applied ${#objects[@]} cluster objects from $TESTBED_SRC/cluster"

# --- optional watchdog: stops the test bed when the given process exits ---
if [[ -n ${KUBE_TESTBED_WATCH_PID:-} ]]; then
  [[ $KUBE_TESTBED_WATCH_PID =~ ^[0-9]+$ ]] || die "KUBE_TESTBED_WATCH_PID=$KUBE_TESTBED_WATCH_PID: not a pid"
  setsid bash -c 'while kill -0 "$1" 2>/dev/null && [[ -e $2/watchdog.pid ]]; do sleep 1; done
    [[ -e $2/watchdog.pid ]] && rm -f "$2/watchdog.pid" && exec "$3/stop.sh" "$2"' \
    kube-testbed-watchdog "$KUBE_TESTBED_WATCH_PID" "$DIR" "$TESTBED_SRC" \
    </dev/null >>"$DIR/watchdog.log" 2>&1 &
  echo $! >"$DIR/watchdog.pid"
fi

log "ready: $url (admin kubeconfig $DIR/kubeconfig, users ${TESTBED_USERS[*]}: $DIR/kubeconfig-<user>)"
printf '%s\n' "$DIR/kubeconfig"
