#!/usr/bin/env bash
# Stops every process of a local cluster started by up.sh, checks that none
# is left, releases its ports and removes its directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

# Children of this script must not carry the variable that marks cluster
# processes, or the search below would find them.
unset "$cluster_env_var"

usage() {
  cat <<'EOF_USAGE'
Usage: localcluster/down.sh [--dir DIR] [--keep-dir]

Stops the local cluster in DIR and removes DIR.

Options:
  --dir DIR    the cluster's directory (default: the directory of $KUBECONFIG)
  --keep-dir   keep DIR, with its logs and certificates
  -h, --help   print this help
EOF_USAGE
}

cluster_dir=""
keep_dir=false
# Seconds that processes get to exit after SIGTERM before they get SIGKILL.
readonly stop_grace_seconds=10

parse_args() {
  while (($# > 0)); do
    case "$1" in
      --dir) cluster_dir="${2:?--dir needs a directory}"; shift 2 ;;
      --keep-dir) keep_dir=true; shift ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; die "unknown option: $1" ;;
    esac
  done

  if [[ -z "$cluster_dir" ]]; then
    [[ -n "${KUBECONFIG:-}" ]] || die "missing --dir, and KUBECONFIG is not set"
    # KUBECONFIG may list several files, and up.sh sets exactly one.
    cluster_dir="$(dirname "${KUBECONFIG%%:*}")"
  fi
  if [[ ! -d "$cluster_dir" ]]; then
    log "cluster directory $cluster_dir not found, so there is nothing to stop"
    exit 0
  fi
  cluster_dir="$(cd "$cluster_dir" && pwd)"
  [[ -f "$cluster_dir/$cluster_marker" ]] ||
    die "$cluster_dir has no $cluster_marker, so it is not a cluster directory of localcluster/up.sh. Nothing was stopped."
}

# Prints the live processes of the cluster except etcd, one id a line.
pids_except_etcd() {
  local etcd_pid=""
  [[ -f "$cluster_dir/pids/etcd.pid" ]] && etcd_pid="$(cat "$cluster_dir/pids/etcd.pid")"
  cluster_pids "$cluster_dir" | grep -vx "${etcd_pid:-none}" || true
}

# Sends SIGTERM to the processes that LIST_COMMAND prints and waits up to
# stop_grace_seconds for them to exit. Sends SIGKILL to any that are left
# and fails if one still runs 5 seconds later.
stop_listed() {
  local list_command="$1"
  local -a pids
  mapfile -t pids < <("$list_command")
  ((${#pids[@]} > 0)) || return 0
  log "stopping ${#pids[@]} process(es): ${pids[*]}"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  if wait_until_gone "$list_command" "$stop_grace_seconds"; then
    return 0
  fi

  mapfile -t pids < <("$list_command")
  log "sending SIGKILL to processes still running after ${stop_grace_seconds}s: ${pids[*]}"
  kill -KILL "${pids[@]}" 2>/dev/null || true
  wait_until_gone "$list_command" 5 ||
    die "processes still running after SIGKILL: $("$list_command" | tr '\n' ' ')"
}

# Waits up to SECONDS until LIST_COMMAND prints nothing.
wait_until_gone() {
  local list_command="$1" deadline=$((SECONDS + $2))
  while [[ -n "$("$list_command")" ]]; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

all_cluster_pids() {
  cluster_pids "$cluster_dir"
}

# Stops etcd last: the API server keeps retrying a missing etcd and then
# does not finish its shutdown in time.
stop_processes() {
  if [[ -z "$(all_cluster_pids)" ]]; then
    log "no process of $cluster_dir was running"
    return
  fi
  stop_listed pids_except_etcd
  stop_listed all_cluster_pids
}

main() {
  parse_args "$@"
  stop_processes
  rm -f "$cluster_dir"/pids/*.pid
  release_ports "$cluster_dir"
  if [[ "$keep_dir" == true ]]; then
    log "stopped; kept $cluster_dir"
  else
    rm -rf "$cluster_dir"
    log "stopped; removed $cluster_dir"
  fi
}

main "$@"
