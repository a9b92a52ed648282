#!/usr/bin/env bash
# Checks a local cluster end to end. It starts one with up.sh and runs Jobs
# to Complete and Failed through the real job controller, with the exit
# codes and termination messages that pod annotations set. It also checks
# that deleting a Job garbage-collects its pods, that a failing pod with
# restartPolicy OnFailure restarts and that service account tokens work.
# Then it stops the cluster with down.sh and checks that no process is left.
# The last line is "N passed, M failed", and the exit status is non-zero
# when a check failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

readonly namespace="selftest"
# Seconds that each wait in a check may take.
readonly wait_seconds=60

passed=0
failed=0
cluster_dir=""
kubectl_bin=""

pass() {
  passed=$((passed + 1))
  echo "PASS: $*"
}

fail() {
  failed=$((failed + 1))
  echo "FAIL: $*"
}

# Runs a check function and records its result under its description.
run_check() {
  local description="$1"
  shift
  local started_at=$EPOCHREALTIME
  if "$@"; then
    pass "$description ($(elapsed_seconds "$started_at")s)"
  else
    fail "$description"
  fi
}

kubectl() {
  "$kubectl_bin" --cache-dir="$cluster_dir/cache" "$@"
}

# Runs CHECK every 0.2 s until it succeeds or $wait_seconds pass.
wait_until() {
  local deadline=$((SECONDS + wait_seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "  timed out after ${wait_seconds}s waiting for: $*"
      return 1
    fi
    sleep 0.2
  done
}

# Fails with a message unless ACTUAL equals EXPECTED.
expect_equal() {
  local what="$1" expected="$2" actual="$3"
  if [[ "$actual" != "$expected" ]]; then
    echo "  $what: expected '$expected', got '$actual'"
    return 1
  fi
}

job_condition_true() {
  local job="$1" condition="$2"
  [[ "$(kubectl get job "$job" -n "$namespace" -o jsonpath="{.status.conditions[?(@.type==\"$condition\")].status}")" == True ]]
}

pod_of_job() {
  kubectl get pods -n "$namespace" -l "batch.kubernetes.io/job-name=$1" -o jsonpath='{.items[0].metadata.name}'
}

pod_field() {
  kubectl get pod "$1" -n "$namespace" -o jsonpath="$2"
}

pod_phase_is() {
  [[ "$(pod_field "$1" '{.status.phase}')" == "$2" ]]
}

no_pods_of_job() {
  [[ -z "$(kubectl get pods -n "$namespace" -l "batch.kubernetes.io/job-name=$1" -o name)" ]]
}

# Prints a Job whose pod has an init container, a GPU container and a
# second container, with EXTRA_ANNOTATIONS (YAML lines) on the pod.
render_job() {
  local name="$1" extra_annotations="$2"
  cat <<EOF
apiVersion: batch/v1
kind: Job
metadata:
  name: $name
  namespace: $namespace
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations:
        localcluster.trainhook.dev/run-seconds: "3"
$extra_annotations
    spec:
      restartPolicy: Never
      initContainers:
      - name: fetch-data
        image: example.invalid/fetch-data:1
      containers:
      - name: trainer
        image: example.invalid/trainer:1
        resources:
          limits:
            nvidia.com/gpu: "1"
      - name: logger
        image: example.invalid/logger:1
EOF
}

check_cluster_up() {
  local output last_line
  output="$("$here/up.sh" --dir "$cluster_dir" --stop-with-pid $$)" || return 1
  last_line="$(tail -n 1 <<<"$output")"
  expect_equal "last line of up.sh" "export KUBECONFIG=$cluster_dir/kubeconfig" "$last_line" || return 1
  eval "$last_line"
  # shellcheck source=/dev/null
  kubectl_bin="$(source "$cluster_dir/$cluster_marker" && echo "$BIN_DIR/kubectl")"
}

check_server_version() {
  local version
  version="$(kubectl version -o json | jq -r .serverVersion.gitVersion)"
  expect_equal "server version" "$(source "$here/versions.env" && echo "$KUBERNETES_VERSION")" "$version"
}

check_node_resources() {
  expect_equal "allocatable nvidia.com/gpu of kwok-node-0" 8 \
    "$(kubectl get node kwok-node-0 -o jsonpath='{.status.allocatable.nvidia\.com/gpu}')" &&
    expect_equal "Ready of kwok-node-0" True \
      "$(kubectl get node kwok-node-0 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')"
}

check_job_succeeds() {
  render_job train-ok '        localcluster.trainhook.dev/termination-message: "{\"loss\":0.125}"' |
    kubectl create -f - >/dev/null || return 1
  wait_until pod_of_job train-ok || return 1
  local pod
  pod="$(pod_of_job train-ok)"

  wait_until pod_phase_is "$pod" Running || return 1
  expect_equal "running containers" "trainer logger" \
    "$(pod_field "$pod" '{range .status.containerStatuses[*]}{.name}{" "}{.state.running.startedAt}{"\n"}{end}' |
      awk 'NF == 2 { printf "%s%s", sep, $1; sep = " " }')" || return 1
  expect_equal "init container exit code" 0 \
    "$(pod_field "$pod" '{.status.initContainerStatuses[0].state.terminated.exitCode}')" || return 1

  wait_until job_condition_true train-ok Complete || return 1
  expect_equal "pod phase" Succeeded "$(pod_field "$pod" '{.status.phase}')" &&
    expect_equal "trainer exit code" 0 \
      "$(pod_field "$pod" '{.status.containerStatuses[?(@.name=="trainer")].state.terminated.exitCode}')" &&
    expect_equal "trainer termination message" '{"loss":0.125}' \
      "$(pod_field "$pod" '{.status.containerStatuses[?(@.name=="trainer")].state.terminated.message}')"
}

check_job_fails() {
  render_job train-fail '        localcluster.trainhook.dev/outcome: fail
        localcluster.trainhook.dev/exit-code: "3"
        localcluster.trainhook.dev/termination-message: "loss diverged at step 7"' |
    kubectl create -f - >/dev/null || return 1
  wait_until job_condition_true train-fail Failed || return 1
  local pod
  pod="$(pod_of_job train-fail)"
  expect_equal "pod phase" Failed "$(pod_field "$pod" '{.status.phase}')" &&
    expect_equal "trainer exit code" 3 \
      "$(pod_field "$pod" '{.status.containerStatuses[?(@.name=="trainer")].state.terminated.exitCode}')" &&
    expect_equal "trainer reason" Error \
      "$(pod_field "$pod" '{.status.containerStatuses[?(@.name=="trainer")].state.terminated.reason}')" &&
    expect_equal "trainer termination message" "loss diverged at step 7" \
      "$(pod_field "$pod" '{.status.containerStatuses[?(@.name=="trainer")].state.terminated.message}')"
}

check_job_deletion_collects_pods() {
  [[ -n "$(pod_of_job train-ok)" ]] || return 1
  kubectl delete job train-ok -n "$namespace" --wait=false >/dev/null || return 1
  wait_until no_pods_of_job train-ok
}

restart_count_at_least_one() {
  (($(pod_field restarting '{.status.containerStatuses[0].restartCount}') >= 1))
}

check_pod_restarts_on_failure() {
  kubectl create -f - >/dev/null <<EOF || return 1
apiVersion: v1
kind: Pod
metadata:
  name: restarting
  namespace: $namespace
  annotations:
    localcluster.trainhook.dev/outcome: fail
    localcluster.trainhook.dev/exit-code: "4"
    localcluster.trainhook.dev/run-seconds: "1"
spec:
  restartPolicy: OnFailure
  containers:
  - name: worker
    image: example.invalid/worker:1
EOF
  wait_until restart_count_at_least_one || return 1
  expect_equal "pod phase" Running "$(pod_field restarting '{.status.phase}')" &&
    expect_equal "last exit code" 4 \
      "$(pod_field restarting '{.status.containerStatuses[0].lastState.terminated.exitCode}')"
}

check_service_account_token() {
  local token username pki="$cluster_dir/pki" port
  token="$(kubectl create token default -n "$namespace")" || return 1
  # shellcheck source=/dev/null
  port="$(source "$cluster_dir/$cluster_marker" && echo "$APISERVER_PORT")"
  # curl sends only the token, so the API server must authenticate it.
  username="$(curl -sf --cacert "$pki/ca.crt" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -X POST \
    -d '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' \
    "https://127.0.0.1:$port/apis/authentication.k8s.io/v1/selfsubjectreviews" |
    jq -r .status.userInfo.username)"
  expect_equal "token user" "system:serviceaccount:$namespace:default" "$username"
}

check_cluster_down() {
  "$here/down.sh" --dir "$cluster_dir" || return 1
  local leftovers
  # shellcheck disable=SC2009 # ps lists every process, with its arguments.
  leftovers="$(ps -eo pid=,args= | grep -F "$cluster_dir" | grep -v grep || true)"
  if [[ -n "$leftovers" ]]; then
    echo "  processes left: $leftovers"
    return 1
  fi
  [[ ! -e "$cluster_dir" ]] || {
    echo "  $cluster_dir still exists"
    return 1
  }
}

# Stops the cluster if a check left it running.
cleanup() {
  if [[ -f "$cluster_dir/$cluster_marker" ]]; then
    "$here/down.sh" --dir "$cluster_dir" >/dev/null 2>&1 || true
  fi
}

main() {
  local tool
  for tool in curl jq; do
    command -v "$tool" >/dev/null || die "$tool not found: install it (Debian: apt-get install $tool)"
  done
  cluster_dir="$(mktemp -d "${TMPDIR:-/tmp}/trainhook-selftest.XXXXXX")"
  trap cleanup EXIT

  run_check "up.sh starts a cluster" check_cluster_up
  if ((failed == 0)); then
    run_check "server reports the built Kubernetes version" check_server_version
    run_check "fake node is Ready with 8 GPUs" check_node_resources
    kubectl create namespace "$namespace" >/dev/null
    run_check "Job with a succeeding pod becomes Complete" check_job_succeeds
    run_check "Job with a failing pod becomes Failed with exit code 3" check_job_fails
    run_check "deleting a Job garbage-collects its pods" check_job_deletion_collects_pods
    run_check "pod with restartPolicy OnFailure restarts on failure" check_pod_restarts_on_failure
    run_check "kubectl create token returns a working token" check_service_account_token
  fi
  run_check "down.sh stops every process and removes the directory" check_cluster_down

  echo "$passed passed, $failed failed"
  ((failed == 0))
}

main "$@"
