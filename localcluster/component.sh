#!/usr/bin/env bash
# Stops or starts again one component of a running local cluster, such as
# kube-apiserver, so that tests can show what happens while it is down.
# `stop` saves the component's command line and environment; `start` runs
# it again from them, in the same way up.sh started it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

usage() {
  cat <<'EOF_USAGE'
Usage: localcluster/component.sh --dir DIR stop|start COMPONENT

Stops COMPONENT (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler or kwok) of the cluster in DIR, or starts it again after a
stop. `start` returns once the process runs; a caller that needs the
component ready waits for that itself.
EOF_USAGE
}

cluster_dir=""
action=""
component=""

parse_args() {
  while (($# > 0)); do
    case "$1" in
      --dir) cluster_dir="${2:?--dir needs a directory}"; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      stop | start) action="$1"; component="${2:?$1 needs a component name}"; shift 2 ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
  done
  [[ -n "$cluster_dir" && -n "$action" ]] || { usage >&2; die "missing --dir or action"; }
  [[ -f "$cluster_dir/$cluster_marker" ]] || die "$cluster_dir is not a cluster directory of localcluster/up.sh"
  [[ -f "$cluster_dir/pids/$component.pid" ]] || die "the cluster in $cluster_dir has no component $component"
}

# Saves the command line and environment of the running component, then
# stops it and waits until it has exited.
stop_component() {
  local pid
  pid="$(cat "$cluster_dir/pids/$component.pid")"
  kill -0 "$pid" 2>/dev/null || die "$component (pid $pid) is not running"

  cp "/proc/$pid/cmdline" "$cluster_dir/pids/$component.cmdline"
  cp "/proc/$pid/environ" "$cluster_dir/pids/$component.environ"
  kill -TERM "$pid"
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    ((waited++ < 100)) || { kill -KILL "$pid"; break; }
    sleep 0.1
  done
  log "stopped $component (pid $pid)"
}

# Starts the component again from its saved command line and environment.
start_component_again() {
  local cmdline="$cluster_dir/pids/$component.cmdline"
  [[ -f "$cmdline" ]] || die "$component was not stopped by this script, so its command line is unknown"

  local -a command environment
  mapfile -d '' -t command <"$cmdline"
  mapfile -d '' -t environment <"$cluster_dir/pids/$component.environ"
  setsid env -i "${environment[@]}" "${command[@]}" \
    </dev/null >>"$cluster_dir/logs/$component.log" 2>&1 &
  echo "$!" >"$cluster_dir/pids/$component.pid"
  log "started $component again (pid $!)"
}

parse_args "$@"
case "$action" in
  stop) stop_component ;;
  start) start_component_again ;;
esac
