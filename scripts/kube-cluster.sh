#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1 for lastgood's Kubernetes
# tests: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
# kwok (fake nodes that mark pods Running/Ready without running
# containers), all built from Go modules into a cache outside the
# repository, so clean clones (and CI) reuse the binaries.
#
# Usage: scripts/kube-cluster.sh up|down|env|build|status
#   build   build what is missing into the cache (idempotent)
#   up      build, then start every component on free loopback ports,
#           create one kwok node, install the Gateway API standard CRDs,
#           lastgood's App CRD (deploy/kubernetes/crd.yaml) and the fault Stages; fails if a cluster of this run dir is up
#   env     print `export KUBECONFIG=… PATH=…` for the running cluster
#           (eval "$(scripts/kube-cluster.sh env)")
#   down    stop what `up` started (by the pids it recorded) and remove
#           the run directory
#   status  say which components run
#
# Pods misbehave on purpose by an annotation (kwok Stages in
# scripts/kube/kwok-stages.yaml):
#   lastgood.dev/test-fault: never-ready | crash-loop | oom | image-pull | evicted
#
# Environment:
#   LASTGOOD_KUBE_CACHE  binaries and module builds (default
#                        /var/cache/lastgood-kube when writable, else
#                        ~/.cache/lastgood-kube)
#   LASTGOOD_KUBE_RUN    certificates, logs, pids, kubeconfig of the running
#                        cluster (default ${TMPDIR:-/tmp}/lastgood-kube-$UID)
set -euo pipefail

K8S_VERSION=1.36.3      # k8s.io/kubernetes: the control plane (Go 1.26)
ETCD_VERSION=3.6.8      # go.etcd.io/etcd/server/v3
KWOK_VERSION=0.8.0      # sigs.k8s.io/kwok
GATEWAY_VERSION=1.6.3   # sigs.k8s.io/gateway-api: the CRDs installed (the module lastgood uses)
SERVICE_CIDR=10.96.0.0/16   # virtual: nothing routes there (no kube-proxy, no kubelet)
POD_CIDR=10.244.0.0/16      # virtual: kwok writes these IPs into pod status

here=$(cd "$(dirname "$0")" && pwd)
if [[ -z ${LASTGOOD_KUBE_CACHE:-} ]]; then
  if mkdir -p /var/cache/lastgood-kube 2>/dev/null && [[ -w /var/cache/lastgood-kube ]]; then
    LASTGOOD_KUBE_CACHE=/var/cache/lastgood-kube
  else
    LASTGOOD_KUBE_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/lastgood-kube
  fi
fi
CACHE=$LASTGOOD_KUBE_CACHE
BIN=$CACHE/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION
RUN=${LASTGOOD_KUBE_RUN:-${TMPDIR:-/tmp}/lastgood-kube-$(id -u)}
PKI=$RUN/pki
LOGS=$RUN/log
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
export PATH=$BIN:$PATH

log() { echo "[kube-cluster $(date +%H:%M:%S)] $*" >&2; }

# ------------------------------------------------------------------ build
# Each component is built from a throwaway module under $CACHE/src, so the
# versions live here and not in lastgood's go.mod.

build_etcd() {
  [[ -x $BIN/etcd ]] && return 0
  local d=$CACHE/src/etcd-$ETCD_VERSION s=$SECONDS
  mkdir -p "$d" "$BIN"
  (
    cd "$d"
    rm -f go.mod go.sum
    go mod init lastgood-etcd >/dev/null 2>&1
    # server/v3's go.mod has replace directives, which `go install pkg@v`
    # refuses: build it as a dependency of a module instead.
    go mod edit -require "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
    go mod tidy
    go build -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
    mv "$BIN/etcd.tmp" "$BIN/etcd"
  )
  log "built etcd $ETCD_VERSION in $((SECONDS - s))s"
}

build_kubernetes() {
  local c missing=()
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [[ -x $BIN/$c ]] || missing+=("$c")
  done
  ((${#missing[@]})) || return 0
  local d=$CACHE/src/kubernetes-$K8S_VERSION staging="v0.${K8S_VERSION#1.}"
  mkdir -p "$d" "$BIN"
  (
    cd "$d"
    rm -f go.mod go.sum
    go mod init lastgood-kubernetes >/dev/null 2>&1
    go mod edit -require "k8s.io/kubernetes@v$K8S_VERSION"
    # k8s.io/kubernetes requires its staging modules at v0.0.0 with replace
    # directives into ./staging, which its module zip does not carry: point
    # each at its published tag of the same release.
    local gomod m
    gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    for m in $(awk '/^require/,/^\)/' "$gomod" | awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}'); do
      go mod edit -replace "$m=$m@$staging"
    done
    {
      printf '//go:build tools\n\npackage tools\n\nimport (\n'
      for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
        printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"
      done
      printf ')\n'
    } >tools.go
    go mod tidy
    local ld="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION"
    for c in "${missing[@]}"; do
      local s=$SECONDS
      go build -ldflags "$ld" -o "$BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c"
      mv "$BIN/$c.tmp" "$BIN/$c"
      log "built $c $K8S_VERSION in $((SECONDS - s))s"
    done
  )
}

build_kwok() {
  [[ -x $BIN/kwok ]] && return 0
  local s=$SECONDS
  mkdir -p "$BIN"
  GOBIN=$BIN go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  log "built kwok $KWOK_VERSION in $((SECONDS - s))s"
}

do_build() {
  local s=$SECONDS
  build_etcd
  build_kubernetes
  build_kwok
  log "binaries ready in $BIN ($((SECONDS - s))s)"
}

# ------------------------------------------------------------------ run

# free_port prints a TCP port on 127.0.0.1 that nothing listens on and that
# this run has not handed out yet.
taken=" "
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 25000))
    [[ $taken == *" $p "* ]] && continue
    if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then
      taken+="$p "
      echo "$p"
      return
    fi
  done
}

gen_pki() {
  mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl genrsa -out ca.key 2048 2>/dev/null
    printf '[req]\ndistinguished_name=dn\nx509_extensions=v3\n[dn]\n[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature,keyEncipherment,keyCertSign\nsubjectKeyIdentifier=hash\n' >ca.cnf
    openssl req -x509 -new -nodes -key ca.key -subj "/CN=lastgood-test-ca" -days 3650 -config ca.cnf -out ca.crt 2>/dev/null
    # leaf NAME SUBJECT EXTENDED-KEY-USAGE [SUBJECT-ALT-NAME]
    leaf() {
      openssl genrsa -out "$1.key" 2048 2>/dev/null
      openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
      {
        echo "basicConstraints=CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$3"
        [[ -n ${4:-} ]] && echo "subjectAltName=$4"
      } >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    }
    leaf apiserver "/CN=kube-apiserver" serverAuth \
      "IP:127.0.0.1,IP:${SERVICE_CIDR%.0/*}.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
    leaf admin "/O=system:masters/CN=lastgood-test-admin" clientAuth
    leaf kcm "/CN=system:kube-controller-manager" clientAuth
    leaf scheduler "/CN=system:kube-scheduler" clientAuth
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

# kubeconfig NAME USER writes $RUN/NAME.kubeconfig; its context is
# lastgood-test, which the tests insist on before they create anything.
kubeconfig() {
  local f=$RUN/$1.kubeconfig
  kubectl config set-cluster lastgood-test --server="https://127.0.0.1:$API_PORT" \
    --certificate-authority="$PKI/ca.crt" --embed-certs=true --kubeconfig="$f" >/dev/null
  kubectl config set-credentials "$2" --client-certificate="$PKI/$2.crt" --client-key="$PKI/$2.key" \
    --embed-certs=true --kubeconfig="$f" >/dev/null
  kubectl config set-context lastgood-test --cluster=lastgood-test --user="$2" --kubeconfig="$f" >/dev/null
  kubectl config use-context lastgood-test --kubeconfig="$f" >/dev/null
}

# spawn NAME COMMAND… starts a component in its own session, its output in
# $LOGS/NAME.log and its pid in $RUN/NAME.pid.
spawn() {
  local n=$1
  shift
  setsid "$@" >"$LOGS/$n.log" 2>&1 </dev/null &
  echo $! >"$RUN/$n.pid"
}

# wait_for WHAT SECONDS COMMAND… polls COMMAND until it succeeds.
wait_for() {
  local what=$1 limit=$2 s=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS - s > limit)); then
      log "timed out after ${limit}s waiting for $what; logs in $LOGS"
      return 1
    fi
    sleep 0.2
  done
}

running() { [[ -f $RUN/$1.pid ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

do_up() {
  do_build
  local n
  for n in "${COMPONENTS[@]}"; do
    if running "$n"; then
      log "a cluster already runs from $RUN ($n, pid $(cat "$RUN/$n.pid")); '$0 down' first"
      exit 1
    fi
  done
  # Only a directory this script made (it has a ports file) is cleared.
  if [[ -f $RUN/ports ]]; then rm -rf "$RUN"; fi
  mkdir -p "$RUN" "$LOGS"
  local s=$SECONDS
  ETCD_PORT=$(free_port) ETCD_PEER_PORT=$(free_port) API_PORT=$(free_port)
  KCM_PORT=$(free_port) SCHED_PORT=$(free_port) KWOK_PORT=$(free_port)
  echo "api=$API_PORT etcd=$ETCD_PORT etcd-peer=$ETCD_PEER_PORT kcm=$KCM_PORT scheduler=$SCHED_PORT kwok=$KWOK_PORT" >"$RUN/ports"
  gen_pki
  kubeconfig admin admin
  kubeconfig kcm kcm
  kubeconfig scheduler scheduler
  up_ok=0
  trap '((up_ok)) || { log "up failed; stopping what started (logs were in $LOGS)"; tail -n 20 "$LOGS"/*.log >&2 || true; do_down; }' EXIT

  spawn etcd etcd --name=lastgood-test --data-dir="$RUN/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="lastgood-test=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level=warn
  wait_for etcd 60 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

  spawn kube-apiserver kube-apiserver --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
    --cert-dir="$RUN/apiserver-certs" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC --endpoint-reconciler-type=none --profiling=false
  wait_for kube-apiserver 120 curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$API_PORT/readyz"

  spawn kube-controller-manager kube-controller-manager --kubeconfig="$RUN/kcm.kubeconfig" \
    --authentication-kubeconfig="$RUN/kcm.kubeconfig" --authorization-kubeconfig="$RUN/kcm.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --cert-dir="$RUN/kcm-certs" \
    --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" --profiling=false

  spawn kube-scheduler kube-scheduler --kubeconfig="$RUN/scheduler.kubeconfig" \
    --authentication-kubeconfig="$RUN/scheduler.kubeconfig" --authorization-kubeconfig="$RUN/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --cert-dir="$RUN/scheduler-certs" \
    --leader-elect=false --profiling=false

  # kwok's own pod Stages are replaced by lastgood's (fault annotations);
  # the node Stages come from the kwok module.
  local kwokdir f
  kwokdir=$(go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  {
    for f in "$kwokdir"/kustomize/stage/node/fast/node-*.yaml "$kwokdir"/kustomize/stage/node/heartbeat-with-lease/node-*.yaml; do
      echo "---"
      cat "$f"
    done
    echo "---"
    cat "$here/kube/kwok-stages.yaml"
  } >"$RUN/kwok-stages.yaml"
  spawn kwok kwok --kubeconfig="$RUN/admin.kubeconfig" --config="$RUN/kwok-stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds=40 --cidr="$POD_CIDR" --node-ip=127.0.0.1 \
    --server-address="127.0.0.1:$KWOK_PORT"

  export KUBECONFIG=$RUN/admin.kubeconfig
  kubectl apply -f - >/dev/null <<NODE
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations: {node.alpha.kubernetes.io/ttl: "0", kwok.x-k8s.io/node: fake}
  labels: {kubernetes.io/hostname: kwok-node-0, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok}
status:
  allocatable: {cpu: "64", memory: 256Gi, pods: "1000"}
  capacity: {cpu: "64", memory: 256Gi, pods: "1000"}
NODE
  # The Gateway API standard channel, from the module lastgood builds with.
  local gw
  gw=$(go mod download -json "sigs.k8s.io/gateway-api@v$GATEWAY_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  kubectl apply --server-side -f "$gw/config/crd/standard/gateway.networking.k8s.io_gateways.yaml" \
    -f "$gw/config/crd/standard/gateway.networking.k8s.io_gatewayclasses.yaml" \
    -f "$gw/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml" \
    -f "$gw/config/crd/standard/gateway.networking.k8s.io_referencegrants.yaml" >/dev/null
  # lastgood's own CRD, apps.lastgood.dev (GitOps).
  kubectl apply --server-side -f "$here/../deploy/kubernetes/crd.yaml" >/dev/null
  wait_for "kube-controller-manager" 60 curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz"
  wait_for "kube-scheduler" 60 curl -fsSk "https://127.0.0.1:$SCHED_PORT/healthz"
  wait_for "the kwok node" 60 kubectl wait --for=condition=Ready node/kwok-node-0 --timeout=1s
  wait_for "the default service account" 60 kubectl -n default get serviceaccount default
  wait_for "the HTTPRoute CRD" 60 kubectl wait --for=condition=Established crd/httproutes.gateway.networking.k8s.io --timeout=1s
  wait_for "the App CRD" 60 kubectl wait --for=condition=Established crd/apps.lastgood.dev --timeout=1s
  up_ok=1
  log "cluster up in $((SECONDS - s))s; eval \"\$($0 env)\""
}

do_down() {
  local n pid
  for n in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    [[ -f $RUN/$n.pid ]] || continue
    pid=$(cat "$RUN/$n.pid")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$RUN/$n.pid"
  done
  if [[ -f $RUN/ports ]]; then rm -rf "$RUN"; fi
}

do_env() {
  if ! running kube-apiserver; then
    echo "no cluster runs from $RUN; start one with: $0 up" >&2
    exit 1
  fi
  echo "export KUBECONFIG=$RUN/admin.kubeconfig"
  echo "export PATH=$BIN:\$PATH"
}

do_status() {
  local n
  for n in "${COMPONENTS[@]}"; do
    if running "$n"; then
      echo "$n pid=$(cat "$RUN/$n.pid") rss_kib=$(ps -o rss= -p "$(cat "$RUN/$n.pid")" | tr -d ' ')"
    else
      echo "$n not running"
    fi
  done
}

case ${1:-} in
  build) do_build ;;
  up) do_up ;;
  down) do_down ;;
  env) do_env ;;
  status) do_status ;;
  *) echo "usage: $0 up|down|env|build|status" >&2; exit 2 ;;
esac
