#!/usr/bin/env bash
# smoke.sh: starts a test bed in a temporary directory, checks that the API server behaves like a
# cluster's (server-side apply, CRD validation and pruning, RBAC, watches, an API server restart),
# and stops it. Prints one line per check and a closing "N passed, N failed"; exits 1 on a failure.
set -euo pipefail
PROG=kube-testbed/smoke.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR=$(mktemp -d "${TMPDIR:-/tmp}/kube-testbed-smoke.XXXXXX")
cleanup() {
  "$TESTBED_SRC/stop.sh" "$DIR" || true
  if ((failed == 0)); then rm -rf "$DIR"; else log "kept $DIR for a look (logs: *.log)"; fi
}
passed=0 failed=0
trap cleanup EXIT

check() { # NAME COMMAND...: runs COMMAND, counts and reports the outcome
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    printf 'ok   %s\n' "$name"
  else
    failed=$((failed + 1))
    printf 'FAIL %s\n' "$name"
  fi
}

# call TOKEN METHOD PATH [curl args]: the body goes to $DIR/body, the HTTP status to stdout.
call() {
  local token=$1 method=$2 path=$3
  shift 3
  curl -sS --max-time 30 -A liftkit-testbed --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $token" \
    -o "$DIR/body" -D "$DIR/headers" -w '%{http_code}' -X "$method" "$@" "$KUBE_TESTBED_URL$path"
}
body_has() { grep -qF -- "$1" "$DIR/body"; }
apply() { # TOKEN PATH YAML [query]: server-side apply as field manager liftkit
  call "$1" PATCH "$2?fieldManager=liftkit${4:+&$4}" -H 'Content-Type: application/apply-patch+yaml' --data-binary "$3"
}

plans=/apis/forklift.konveyor.io/v1beta1/namespaces/smoke/plans
plan_yaml() { # DESCRIPTION [EXTRA SPEC LINES]
  cat <<EOF
apiVersion: forklift.konveyor.io/v1beta1
kind: Plan
metadata:
  name: wave-1
  namespace: smoke
  labels:
    app.kubernetes.io/managed-by: liftkit
spec:
  description: $1
  targetNamespace: vms-finance
  type: cold
  provider:
    source: {name: ovirt-lab, namespace: smoke}
    destination: {name: host, namespace: smoke}
  map:
    network: {name: wave-1-net, namespace: smoke}
    storage: {name: wave-1-storage, namespace: smoke}
  vms:
  - id: 6b1e3b5c-3a52-4d1f-9f55-0c2c1a0d0001
    name: fin-db-01
${2:-}
EOF
}

started=$SECONDS
kubeconfig=$("$TESTBED_SRC/start.sh" "$DIR") || { failed=1; die "start.sh $DIR failed"; }
log "test bed up in $((SECONDS - started)) s"
check "start.sh prints the admin kubeconfig path" test "$kubeconfig" = "$DIR/kubeconfig" -a -s "$kubeconfig"
source "$DIR/testbed.env"
admin=$KUBE_TESTBED_TOKEN_ADMIN alice=$KUBE_TESTBED_TOKEN_ALICE
check "kubeconfig for each test user" test -s "$DIR/kubeconfig-alice" -a -s "$DIR/kubeconfig-bob" -a -s "$DIR/kubeconfig-carol" -a -s "$DIR/kubeconfig-dave"
check "TLS with the test bed's CA, /version answers" \
  test "$(call "$admin" GET /version)" = 200
# /version is always pretty-printed, whatever the user agent.
check "/version reports $KUBE_VERSION" grep -qE "\"gitVersion\": ?\"$KUBE_VERSION\"" "$DIR/body"
check "no anonymous admin: a bad token is refused (401)" test "$(call nonsense GET /api/v1/namespaces)" = 401
check "VirtualMachine CRD served at kubevirt.io/v1" \
  test "$(call "$admin" GET /apis/kubevirt.io/v1/namespaces/default/virtualmachines)" = 200

vm='apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata: {name: fin-db-01, namespace: default}
spec:
  runStrategy: Halted
  template: {spec: {domain: {cpu: {cores: 2}, devices: {}}}}'
code=$(apply "$admin" /apis/kubevirt.io/v1/namespaces/default/virtualmachines/fin-db-01 "$vm")
check "a VirtualMachine applies (201) and keeps its free-form spec" \
  bash -c 'test "$1" = 201 && grep -q "\"cores\":2" "$2"' _ "$code" "$DIR/body"

for ns in smoke alice-lab; do
  apply "$admin" "/api/v1/namespaces/$ns" "$(printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$ns")" >/dev/null
done

# Server-side apply.
code=$(apply "$admin" "$plans/wave-1" "$(plan_yaml "first wave")")
check "server-side apply creates a Plan (201)" test "$code" = 201
check "the Plan's managedFields name manager liftkit, operation Apply" body_has '"manager":"liftkit","operation":"Apply"'
code=$(apply "$admin" "$plans/wave-1" "$(plan_yaml "first wave")")
check "re-applying the same Plan is a no-op (200)" test "$code" = 200
rv1=$(sed -n 's/.*"resourceVersion":"\([0-9]*\)".*/\1/p' "$DIR/body")

# A field the schema does not know: an apply is refused outright (as on a cluster: the typed patch
# cannot be built), a create prunes it with a warning, or refuses it under fieldValidation=Strict.
code=$(apply "$admin" "$plans/wave-1" "$(plan_yaml "first wave" "  unknownKnob: 7")")
check "server-side apply with an unknown spec field is refused ($code)" \
  bash -c '(($1 >= 400)) && grep -q "unknownKnob: field not declared in schema" "$2"' _ "$code" "$DIR/body"
create_wave0() { # [fieldValidation]
  call "$admin" POST "$plans${1:+?fieldValidation=$1}" -H 'Content-Type: application/yaml' \
    --data-binary "$(plan_yaml "pruned" "  unknownKnob: 7" | sed 's/wave-1$/wave-0/')"
}
check "fieldValidation=Strict refuses a create with an unknown field (400)" test "$(create_wave0 Strict)" = 400
check "... as a strict decoding error naming it" body_has 'strict decoding error: unknown field \"spec.unknownKnob\"'
check "a plain create with an unknown field succeeds (201)" test "$(create_wave0)" = 201
check "... the field is pruned" bash -c '! grep -q unknownKnob "$1" && grep -q "\"name\":\"wave-0\"" "$1"' _ "$DIR/body"
check "... and the server warns about it" grep -qi '^warning:.*unknownKnob' "$DIR/headers"

# Schema validation.
code=$(apply "$admin" "$plans/wave-1" "$(plan_yaml "bad" | sed 's/type: cold/type: teleport/')")
check "CRD schema rejects spec.type: teleport (422)" test "$code" = 422
check "... naming the field and the allowed values" body_has 'spec.type: Unsupported value: \"teleport\"'
code=$(apply "$admin" "$plans/wave-2" "$(plan_yaml "no target" | sed -e 's/wave-1$/wave-2/' -e '/targetNamespace/d')")
check "CRD schema rejects a Plan without spec.targetNamespace (422)" test "$code" = 422
check "... saying it is required" body_has 'spec.targetNamespace: Required value'

# RBAC: alice has no binding in smoke; she may manage Plans in alice-lab only.
code=$(call "$alice" POST "$plans" -H 'Content-Type: application/yaml' --data-binary "$(plan_yaml "alice" | sed 's/wave-1$/alice-1/')")
check "RBAC: alice may not create a Plan in smoke (403)" test "$code" = 403
check "... and the message names her" body_has 'User \"alice\" cannot create resource \"plans\"'
sar='{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"alice","resourceAttributes":{"group":"forklift.konveyor.io","resource":"plans","verb":"create","namespace":"smoke"}}}'
call "$admin" POST /apis/authorization.k8s.io/v1/subjectaccessreviews -H 'Content-Type: application/json' -d "$sar" >/dev/null
check "SubjectAccessReview: alice create plans in smoke is not allowed" body_has '"allowed":false'
apply "$admin" /apis/rbac.authorization.k8s.io/v1/namespaces/alice-lab/roles/plan-editor "$(cat <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: plan-editor, namespace: alice-lab}
rules:
- apiGroups: [forklift.konveyor.io]
  resources: [plans]
  verbs: [get, list, watch, create, update, patch]
EOF
)" >/dev/null
apply "$admin" /apis/rbac.authorization.k8s.io/v1/namespaces/alice-lab/rolebindings/alice-plan-editor "$(cat <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-plan-editor, namespace: alice-lab}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: plan-editor}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}
EOF
)" >/dev/null
code=$(apply "$alice" /apis/forklift.konveyor.io/v1beta1/namespaces/alice-lab/plans/wave-1 "$(plan_yaml "alice's" | sed 's/namespace: smoke$/namespace: alice-lab/')")
check "RBAC: with a RoleBinding alice may apply a Plan in alice-lab (201)" test "$code" = 201

# Watch from the resource version the last apply returned; a change must arrive as an event.
curl -sS -N --max-time 15 -A liftkit-testbed --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $admin" \
  "$KUBE_TESTBED_URL$plans?watch=1&resourceVersion=$rv1&timeoutSeconds=10" >"$DIR/watch" 2>&1 &
watcher=$!
sleep 1
code=$(apply "$admin" "$plans/wave-1" "$(plan_yaml "second wave")")
check "server-side apply updates the Plan (200)" test "$code" = 200
for ((i = 0; i < 50; i++)); do grep -q '"type":"MODIFIED"' "$DIR/watch" && break; sleep 0.2; done
kill "$watcher" 2>/dev/null || true
wait "$watcher" 2>/dev/null || true
check "a watch from resourceVersion $rv1 sees the MODIFIED event" grep -q '"type":"MODIFIED".*second wave' "$DIR/watch"
rv2=$(grep -o '"resourceVersion":"[0-9]*"' "$DIR/watch" | head -n1 | tr -dc 0-9)
check "... with a newer resourceVersion ($rv2 > $rv1)" test "${rv2:-0}" -gt "$rv1"

# The API server restarts alone; the objects (in etcd) and the credentials survive.
uid=$(call "$admin" GET "$plans/wave-1" >/dev/null; sed -n 's/.*"uid":"\([^"]*\)".*/\1/p' "$DIR/body")
started=$SECONDS
check "restart-apiserver.sh" "$TESTBED_SRC/restart-apiserver.sh" "$DIR"
log "API server restarted in $((SECONDS - started)) s"
check "after the restart the Plan is there with the same uid" \
  bash -c 'test "$1" = 200 && grep -qF "\"uid\":\"$3\"" "$2"' _ "$(call "$admin" GET "$plans/wave-1")" "$DIR/body" "$uid"

pids="$(<"$DIR/kube-apiserver.pid") $(<"$DIR/etcd.pid")"
"$TESTBED_SRC/stop.sh" "$DIR"
stopped() { local pid; for pid; do ! running "$pid" || return 1; done; }
check "stop.sh stops kube-apiserver and etcd ($pids)" stopped $pids
check "stop.sh twice is fine" "$TESTBED_SRC/stop.sh" "$DIR"

printf '%d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
