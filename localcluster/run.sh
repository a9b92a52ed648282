#!/usr/bin/env bash
# Runs trainhook against the configured cluster, or against a local cluster
# started here when none is configured, with the CRDs and an example
# TrainingTemplate installed. Without a Labelbox API key it also starts the
# Labelbox stand-in, so the whole flow runs on this machine.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state_dir="$repo/.localcluster"
run_dir="$repo/target/trainhook-run"
listen="${TRAINHOOK_LISTEN:-127.0.0.1:8080}"
standin_listen="${LABELBOX_STANDIN_LISTEN:-127.0.0.1:8081}"

log() { echo "make run: $*" >&2; }

# Uses $KUBECONFIG or ~/.kube/config when one is set up; otherwise starts,
# or reuses, the local cluster in .localcluster/.
choose_cluster() {
  if [[ -n "${KUBECONFIG:-}" || -f "$HOME/.kube/config" ]]; then
    local context
    context="$(kubectl config current-context 2>/dev/null || echo '<none>')"
    log "using context $context of ${KUBECONFIG:-$HOME/.kube/config}; unset KUBECONFIG and move ~/.kube/config away to use a local cluster instead"
    return
  fi
  local_cluster=1

  if [[ -f "$state_dir/kubeconfig" ]] &&
    kubectl --kubeconfig "$state_dir/kubeconfig" get --raw /readyz >/dev/null 2>&1; then
    log "reusing the local cluster in $state_dir"
  else
    if [[ -d "$state_dir" ]]; then
      bash "$repo/localcluster/down.sh" --dir "$state_dir" >/dev/null 2>&1 || rm -rf "$state_dir"
    fi
    log "no cluster configured; starting a local one in $state_dir"
    bash "$repo/localcluster/up.sh" --dir "$state_dir" >/dev/null
  fi
  export KUBECONFIG="$state_dir/kubeconfig"
}

install_resources() {
  log "installing the CRDs and the example TrainingTemplate"
  kubectl apply --server-side -f "$repo/crds/crds.yaml" >/dev/null
  local crd
  for crd in trainingruns.trainhook.dev trainingtemplates.trainhook.dev; do
    until [[ "$(kubectl get crd "$crd" -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' 2>/dev/null)" == "True" ]]; do
      sleep 0.2
    done
  done
  kubectl apply --server-side -n default -f "$repo/deploy/examples/bounding-box-template.yaml" >/dev/null
}

# Writes a random webhook secret once, so that curl commands keep working
# across restarts.
webhook_secret() {
  local secret_file="$run_dir/webhook-secret"
  if [[ ! -s "$secret_file" ]]; then
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$secret_file"
  fi
  export TRAINHOOK_WEBHOOK_SECRET_FILE="$secret_file"
}

# Starts the Labelbox stand-in unless a real API key is configured.
start_labelbox_standin() {
  if [[ -n "${LABELBOX_API_KEY:-}${LABELBOX_API_KEY_FILE:-}" ]]; then
    log "reporting to ${LABELBOX_ENDPOINT:-the default Labelbox endpoint}"
    return
  fi

  "$repo/target/debug/labelbox-standin" --listen "$standin_listen" --api-key local-demo \
    >"$run_dir/standin.out" 2>"$run_dir/standin.log" &
  standin_pid=$!
  trap 'kill "$standin_pid" 2>/dev/null || true' EXIT
  export LABELBOX_ENDPOINT="http://$standin_listen/_gql"
  export LABELBOX_API_KEY="local-demo"
  log "no LABELBOX_API_KEY set; reporting to the Labelbox stand-in at http://$standin_listen"
}

print_instructions() {
  local body='{"modelType":"bounding_box","modelRunId":"demo-run-1","modelId":"demo-model"}'
  local sign="target/debug/trainhook sign --secret-file $TRAINHOOK_WEBHOOK_SECRET_FILE"
  {
    echo
    echo "trainhook is starting on http://$listen. In another terminal, from $repo:"
    echo
    echo "  export PATH=\"$bin_dir:\$PATH\" KUBECONFIG=\"$KUBECONFIG\""
    echo "  body='$body'"
    echo "  curl -sS -X POST http://$listen/model_run -H 'Content-Type: application/json' \\"
    echo "    -H \"X-Hub-Signature: \$(printf %s \"\$body\" | $sign)\" -d \"\$body\""
    echo "  kubectl get trainingruns -n default -w"
    if [[ -n "${standin_pid:-}" ]]; then
      echo "  curl -sS http://$standin_listen/_standin/requests   # what Labelbox received"
    fi
    echo
    if [[ -n "${local_cluster:-}" ]]; then
      echo "Stop trainhook with Ctrl-C, and the local cluster with 'make cluster-down'."
    else
      echo "Stop trainhook with Ctrl-C."
    fi
    echo
  } >&2
}

bin_dir="$(bash "$repo/localcluster/build.sh")"
export PATH="$bin_dir:$PATH"
(cd "$repo" && cargo build --quiet --bins)
mkdir -p "$run_dir"

choose_cluster
install_resources
webhook_secret
start_labelbox_standin
print_instructions
"$repo/target/debug/trainhook" run --listen "$listen"
