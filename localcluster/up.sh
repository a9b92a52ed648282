#!/usr/bin/env bash
# Starts a local Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok, which simulates the
# kubelet of fake Nodes. Every process runs in the background, and everything the
# cluster writes stays in one directory. The last line on stdout is
# `export KUBECONFIG=<path>`; progress and errors go to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/versions.env"
source "$here/lib.sh"

usage() {
  cat <<EOF
Usage: localcluster/up.sh [options]

Starts a local Kubernetes $KUBERNETES_VERSION cluster on 127.0.0.1 and prints
\`export KUBECONFIG=<path>\` as the last line on stdout.

Options:
  --dir DIR             directory for the cluster's files; it must not exist or
                        be empty (default: a new directory from mktemp)
  --nodes N             number of fake Nodes (default: 1)
  --node-cpu QUANTITY   allocatable CPU of each Node (default: 32)
  --node-memory QUANTITY
                        allocatable memory of each Node (default: 256Gi)
  --node-gpus N         allocatable nvidia.com/gpu of each Node (default: 8)
  --node-pods N         allocatable pods of each Node (default: 110)
  --timeout SECONDS     time each component gets to become ready (default: 60)
  --stop-with-pid PID   stop the cluster and remove DIR when process PID exits
  -h, --help            print this help

Stop the cluster with: localcluster/down.sh --dir DIR
EOF
}

# The annotation by which kwok selects the Nodes it simulates. Nodes without
# it stay untouched, so a test can add Nodes that never become Ready.
readonly managed_node_annotation="localcluster.trainhook.dev/kwok-managed"
# Service ClusterIPs are only recorded in the API: nothing routes them.
readonly service_cidr="10.96.0.0/16"
readonly kubernetes_service_ip="10.96.0.1"
# kwok writes pod and node addresses from loopback, so a client that does
# connect to one of them stays on this machine.
readonly pod_cidr="127.66.0.0/16"
readonly node_ip="127.0.0.1"

cluster_dir=""
node_count=1
node_cpu="32"
node_memory="256Gi"
node_gpus="8"
node_pods="110"
timeout_seconds=60
stop_with_pid=""
started_components=()

parse_args() {
  while (($# > 0)); do
    case "$1" in
      --dir) cluster_dir="${2:?--dir needs a directory}"; shift 2 ;;
      --nodes) node_count="${2:?--nodes needs a number}"; shift 2 ;;
      --node-cpu) node_cpu="${2:?--node-cpu needs a quantity}"; shift 2 ;;
      --node-memory) node_memory="${2:?--node-memory needs a quantity}"; shift 2 ;;
      --node-gpus) node_gpus="${2:?--node-gpus needs a number}"; shift 2 ;;
      --node-pods) node_pods="${2:?--node-pods needs a number}"; shift 2 ;;
      --timeout) timeout_seconds="${2:?--timeout needs a number of seconds}"; shift 2 ;;
      --stop-with-pid) stop_with_pid="${2:?--stop-with-pid needs a process id}"; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; die "unknown option: $1" ;;
    esac
  done

  require_whole_number --nodes "$node_count"
  require_whole_number --node-gpus "$node_gpus"
  require_whole_number --node-pods "$node_pods"
  require_whole_number --timeout "$timeout_seconds"
  ((node_count >= 1)) || die "invalid --nodes '$node_count': at least 1 Node is needed"
  if [[ -n "$stop_with_pid" ]]; then
    [[ "$stop_with_pid" =~ ^[0-9]+$ ]] || die "invalid --stop-with-pid '$stop_with_pid': expected a process id"
    kill -0 "$stop_with_pid" 2>/dev/null || die "process $stop_with_pid given to --stop-with-pid is not running"
  fi
}

require_whole_number() {
  local option="$1" value="$2"
  [[ "$value" =~ ^[0-9]+$ ]] || die "invalid $option '$value': expected a whole number"
}

require_tools() {
  local tool
  for tool in openssl curl ss flock setsid base64; do
    command -v "$tool" >/dev/null || die "$tool not found: install it (Debian: apt-get install openssl curl iproute2 util-linux coreutils)"
  done
}

# Creates the cluster directory, or checks that an existing one is empty, so
# that up.sh never mixes two clusters in one directory.
prepare_cluster_dir() {
  if [[ -z "$cluster_dir" ]]; then
    cluster_dir="$(mktemp -d "${TMPDIR:-/tmp}/trainhook-cluster.XXXXXX")"
  else
    mkdir -p "$cluster_dir"
    if [[ -n "$(ls -A "$cluster_dir")" ]]; then
      if [[ -f "$cluster_dir/$cluster_marker" ]]; then
        die "$cluster_dir already contains a local cluster: stop it with localcluster/down.sh --dir $cluster_dir"
      fi
      die "$cluster_dir is not empty: pass an empty or missing directory to --dir"
    fi
  fi
  cluster_dir="$(cd "$cluster_dir" && pwd)"
  mkdir -p "$cluster_dir"/{pki,kubeconfigs,logs,pids,etcd,kwok,cache}
  # etcd warns about a data directory that others can read.
  chmod 700 "$cluster_dir/etcd" "$cluster_dir/pki"
}

# Writes the file that marks the directory as a local cluster, with the
# binaries' folder and the ports. down.sh removes only directories that
# contain it. It is written before the ports are picked, so that a failure
# at any later step can call down.sh, and again after.
write_cluster_env() {
  cat >"$cluster_dir/$cluster_marker" <<EOF
# Written by localcluster/up.sh.
KUBERNETES_VERSION=$KUBERNETES_VERSION
BIN_DIR=$(printf '%q' "$bin_dir")
ETCD_CLIENT_PORT=${etcd_client_port:-}
ETCD_PEER_PORT=${etcd_peer_port:-}
APISERVER_PORT=${apiserver_port:-}
CONTROLLER_MANAGER_PORT=${controller_manager_port:-}
SCHEDULER_PORT=${scheduler_port:-}
NODES=$node_count
EOF
}

# Stops whatever this run started when it fails or is interrupted, and keeps
# the directory so that the logs stay readable.
cleanup_after_failure() {
  local status=$?
  if ((status == 0)); then
    return
  fi
  # A signal can arrive while a check runs with stderr sent to /dev/null.
  exec 2>&"$original_stderr"
  log "stopping the components that were started; logs stay in $cluster_dir/logs"
  "$here/down.sh" --dir "$cluster_dir" --keep-dir >&2 || true
  log "remove the directory with: localcluster/down.sh --dir $cluster_dir"
}

# Picks a free TCP port for every component. A lock and a reservation file
# per port keep two up.sh runs from picking the same port before either has
# bound it. Ports that other programs listen on, as ss lists them, are
# skipped.
reserve_ports() {
  mkdir -p "$port_reservations_dir"
  local lock_fd
  exec {lock_fd}>"$port_reservations_dir/.lock"
  flock "$lock_fd"

  release_stale_reservations
  local listening name port
  listening="$(ss -Htln | awk '{ sub(/.*:/, "", $4); print $4 }' | sort -u)"
  for name in etcd_client_port etcd_peer_port apiserver_port controller_manager_port scheduler_port; do
    port="$(pick_free_port "$listening")"
    echo "$cluster_dir" >"$port_reservations_dir/$port"
    printf -v "$name" '%s' "$port"
  done

  flock -u "$lock_fd"
  exec {lock_fd}>&-
}

# Removes reservations whose cluster directory no longer contains a cluster.
release_stale_reservations() {
  local reservation owner
  for reservation in "$port_reservations_dir"/[0-9]*; do
    [[ -f "$reservation" ]] || continue
    owner="$(cat "$reservation")"
    [[ -f "$owner/$cluster_marker" ]] || rm -f "$reservation"
  done
}

# Prints a random port between 20000 and 31999 that is neither reserved nor
# listening. The range stays below Linux's default ephemeral range (32768 to
# 60999), where client connections get their local ports.
pick_free_port() {
  local listening="$1" attempt port
  for ((attempt = 0; attempt < 500; attempt++)); do
    port=$((20000 + RANDOM % 12000))
    [[ -e "$port_reservations_dir/$port" ]] && continue
    grep -qx "$port" <<<"$listening" && continue
    echo "$port"
    return
  done
  die "found no free port between 20000 and 31999 after 500 attempts"
}

# Creates a CA, one serving certificate shared by the API server, controller
# manager and scheduler, a client certificate per component and the service
# account key pair. TLS keys are ECDSA P-256 because they are fast to create.
make_pki() {
  local pki="$cluster_dir/pki"
  cat >"$pki/openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost, IP:$kubernetes_service_ip, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
EOF

  make_key "$pki/ca.key"
  openssl req -x509 -new -config "$pki/openssl.cnf" -extensions ca -key "$pki/ca.key" \
    -subj "/CN=trainhook-localcluster-ca" -days 365 -out "$pki/ca.crt" 2>/dev/null

  make_cert serving "/CN=kube-apiserver" server
  make_cert admin "/O=system:masters/CN=trainhook-admin" client
  # The API server's front-proxy identity. Without it the controller manager
  # and scheduler log errors about a missing requestheader CA bundle.
  make_cert front-proxy-client "/CN=front-proxy-client" client
  make_cert controller-manager "/CN=system:kube-controller-manager" client
  make_cert scheduler "/CN=system:kube-scheduler" client
  # kwok acts as cluster-admin: it patches the status of every Node and Pod
  # and deletes pods.
  make_cert kwok "/O=system:masters/CN=kwok-controller" client

  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/service-account.key" 2>/dev/null
  openssl pkey -in "$pki/service-account.key" -pubout -out "$pki/service-account.pub"
}

make_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# Creates pki/NAME.key and pki/NAME.crt, signed by the CA, with the subject
# and the openssl.cnf extension section given.
make_cert() {
  local name="$1" subject="$2" extensions="$3" pki="$cluster_dir/pki"
  make_key "$pki/$name.key"
  openssl req -new -config "$pki/openssl.cnf" -key "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 365 \
    -extfile "$pki/openssl.cnf" -extensions "$extensions" -out "$pki/$name.crt" 2>/dev/null
  rm "$pki/$name.csr"
}

# Writes a kubeconfig with the CA and the client certificate of pki/NAME
# embedded, so it stays valid when copied elsewhere.
write_kubeconfig() {
  local name="$1" path="$2" pki="$cluster_dir/pki"
  (
    umask 077
    cat >"$path" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: trainhook-local
  cluster:
    server: https://127.0.0.1:$apiserver_port
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 "$pki/$name.crt")
    client-key-data: $(base64 -w0 "$pki/$name.key")
contexts:
- name: trainhook-local
  context:
    cluster: trainhook-local
    user: $name
current-context: trainhook-local
EOF
  )
}

# Starts a component in its own session, so that a signal sent to the
# caller's process group does not stop half the cluster. The environment
# variable marks the process for down.sh.
start_component() {
  local name="$1"
  shift
  setsid env "$cluster_env_var=$cluster_dir" "$@" \
    </dev/null >"$cluster_dir/logs/$name.log" 2>&1 &
  echo "$!" >"$cluster_dir/pids/$name.pid"
  started_components+=("$name")
}

component_running() {
  local pid
  pid="$(cat "$cluster_dir/pids/$1.pid")"
  kill -0 "$pid" 2>/dev/null
}

# Fails with the log of the first started component that is no longer
# running.
check_components_running() {
  local name
  for name in "${started_components[@]}"; do
    component_running "$name" || fail_component "$name" "exited unexpectedly"
  done
}

# Exits with MESSAGE and the tail of the component's log.
fail_component() {
  local name="$1" message="$2" log_file="$cluster_dir/logs/$1.log"
  log "error: $name $message"
  log "last 40 lines of $log_file:"
  tail -n 40 "$log_file" | sed 's/^/  | /' >&2
  exit 1
}

# Runs CHECK every 0.1 s until it succeeds. Fails when any started
# component exits first or when --timeout seconds pass. A timeout shows the
# log of component NAME.
wait_for() {
  local name="$1" description="$2"
  shift 2
  local deadline=$((SECONDS + timeout_seconds))
  until "$@" >/dev/null 2>&1; do
    check_components_running
    ((SECONDS < deadline)) || fail_component "$name" "was not $description after ${timeout_seconds}s"
    sleep 0.1
  done
}

etcd_healthy() {
  curl -sf "http://127.0.0.1:$etcd_client_port/health" | grep -q '"health":"true"'
}

# Checks an HTTPS health endpoint of a component, with the admin certificate.
endpoint_ok() {
  local port="$1" path="$2" pki="$cluster_dir/pki"
  curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://127.0.0.1:$port$path"
}

start_etcd() {
  # --unsafe-no-fsync trades crash safety, which a throwaway cluster does
  # not need, for much faster writes.
  start_component etcd "$bin_dir/etcd" \
    --name=default \
    --data-dir="$cluster_dir/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_client_port" \
    --advertise-client-urls="http://127.0.0.1:$etcd_client_port" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster="default=http://127.0.0.1:$etcd_peer_port" \
    --unsafe-no-fsync \
    --log-level=warn
  wait_for etcd "healthy" etcd_healthy
}

start_apiserver() {
  local pki="$cluster_dir/pki"
  # TaintNodesByCondition is off because it taints every new Node with
  # node.kubernetes.io/not-ready, and only the node lifecycle controller,
  # which does not run here, would remove that taint.
  # The endpoint reconciler is off because it would publish 127.0.0.1 as
  # the endpoint of the kubernetes Service, which validation rejects.
  start_component kube-apiserver "$bin_dir/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_client_port" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$apiserver_port" \
    --tls-cert-file="$pki/serving.crt" \
    --tls-private-key-file="$pki/serving.key" \
    --client-ca-file="$pki/ca.crt" \
    --requestheader-client-ca-file="$pki/ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User \
    --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$pki/front-proxy-client.crt" \
    --proxy-client-key-file="$pki/front-proxy-client.key" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction,OwnerReferencesPermissionEnforcement \
    --disable-admission-plugins=TaintNodesByCondition \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/service-account.pub" \
    --service-account-signing-key-file="$pki/service-account.key" \
    --service-cluster-ip-range="$service_cidr" \
    --endpoint-reconciler-type=none \
    --allow-privileged=true
  wait_for kube-apiserver "ready (/readyz)" endpoint_ok "$apiserver_port" /readyz
}

start_controller_manager() {
  local pki="$cluster_dir/pki" kubeconfig="$cluster_dir/kubeconfigs/controller-manager.kubeconfig"
  write_kubeconfig controller-manager "$kubeconfig"
  # Each controller acts as its own service account in kube-system, with the
  # built-in RBAC role it has in a real cluster.
  start_component kube-controller-manager "$bin_dir/kube-controller-manager" \
    --kubeconfig="$kubeconfig" \
    --authentication-kubeconfig="$kubeconfig" \
    --authorization-kubeconfig="$kubeconfig" \
    --bind-address=127.0.0.1 \
    --secure-port="$controller_manager_port" \
    --tls-cert-file="$pki/serving.crt" \
    --tls-private-key-file="$pki/serving.key" \
    --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$pki/service-account.key" \
    --root-ca-file="$pki/ca.crt" \
    --controllers=job-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,ttl-after-finished-controller,root-ca-certificate-publisher-controller
}

start_scheduler() {
  local pki="$cluster_dir/pki" kubeconfig="$cluster_dir/kubeconfigs/scheduler.kubeconfig"
  write_kubeconfig scheduler "$kubeconfig"
  start_component kube-scheduler "$bin_dir/kube-scheduler" \
    --kubeconfig="$kubeconfig" \
    --authentication-kubeconfig="$kubeconfig" \
    --authorization-kubeconfig="$kubeconfig" \
    --bind-address=127.0.0.1 \
    --secure-port="$scheduler_port" \
    --tls-cert-file="$pki/serving.crt" \
    --tls-private-key-file="$pki/serving.key" \
    --leader-elect=false
}

start_kwok() {
  local kubeconfig="$cluster_dir/kubeconfigs/kwok.kubeconfig" stage_file
  local -a stage_args=()
  write_kubeconfig kwok "$kubeconfig"
  for stage_file in "$here"/stages/*.yaml; do
    stage_args+=(--config="$stage_file")
  done
  # KWOK_WORKDIR keeps kwok from also loading ~/.kwok/kwok.yaml.
  start_component kwok env KWOK_WORKDIR="$cluster_dir/kwok" "$bin_dir/kwok" \
    --kubeconfig="$kubeconfig" \
    "${stage_args[@]}" \
    --manage-nodes-with-annotation-selector="$managed_node_annotation=true" \
    --node-ip="$node_ip" \
    --cidr="$pod_cidr"
}

# Prints the fake Nodes as YAML. The status is kept on create, and kwok's
# node-initialize stage keeps its resources and nodeInfo.
render_nodes() {
  local index name
  for ((index = 0; index < node_count; index++)); do
    name="kwok-node-$index"
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    $managed_node_annotation: "true"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    node.kubernetes.io/instance-type: kwok
    type: kwok
status:
  allocatable: &resources
    cpu: "$node_cpu"
    memory: "$node_memory"
    pods: "$node_pods"
    nvidia.com/gpu: "$node_gpus"
  capacity: *resources
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: $KUBERNETES_VERSION
EOF
  done
}

kubectl_admin() {
  "$bin_dir/kubectl" --kubeconfig="$cluster_dir/kubeconfig" --cache-dir="$cluster_dir/cache" "$@"
}

create_nodes() {
  render_nodes | kubectl_admin create -f - >/dev/null
}

ready_node_count() {
  kubectl_admin get nodes \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    grep -cx True || true
}

all_nodes_ready() {
  (($(ready_node_count) == node_count))
}

default_service_account_exists() {
  kubectl_admin get serviceaccount default --namespace=default
}

root_ca_published() {
  kubectl_admin get configmap kube-root-ca.crt --namespace=default
}

# Waits until the cluster can run a pod: controller manager and scheduler
# healthy, the default ServiceAccount and the root CA ConfigMap in place,
# and every Node Ready.
wait_for_cluster() {
  wait_for kube-controller-manager "healthy (/healthz)" endpoint_ok "$controller_manager_port" /healthz
  wait_for kube-scheduler "healthy (/healthz)" endpoint_ok "$scheduler_port" /healthz
  wait_for kube-controller-manager "done creating ServiceAccount default/default" default_service_account_exists
  wait_for kube-controller-manager "done publishing ConfigMap default/kube-root-ca.crt" root_ca_published
  wait_for kwok "done marking all $node_count Node(s) Ready" all_nodes_ready
}

# Starts a watcher that runs down.sh once process PID exits, so that a test
# binary that dies without cleanup does not leave the cluster running.
# down.sh runs without the variable that marks cluster processes: its
# subshells would otherwise count as processes of the cluster.
start_watchdog() {
  # shellcheck disable=SC2016 # The inner script expands its own arguments.
  start_component watchdog bash -c \
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec env -u "$2" "$3" --dir "$4"' \
    watchdog "$stop_with_pid" "$cluster_env_var" "$here/down.sh" "$cluster_dir"
}

main() {
  parse_args "$@"
  require_tools
  local started_at=$EPOCHREALTIME

  bin_dir="$("$here/build.sh")" || die "building the cluster's binaries failed; see the output above"
  prepare_cluster_dir
  exec {original_stderr}>&2
  trap cleanup_after_failure EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  write_cluster_env
  log "starting a cluster in $cluster_dir"

  reserve_ports
  write_cluster_env
  make_pki
  write_kubeconfig admin "$cluster_dir/kubeconfig"

  start_etcd
  start_apiserver
  start_controller_manager
  start_scheduler
  start_kwok
  create_nodes
  wait_for_cluster
  if [[ -n "$stop_with_pid" ]]; then
    start_watchdog
  fi

  log "cluster ready in $(elapsed_seconds "$started_at")s (API server https://127.0.0.1:$apiserver_port)"
  echo "export KUBECONFIG=$cluster_dir/kubeconfig"
}

main "$@"
