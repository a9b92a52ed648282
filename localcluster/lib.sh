# shellcheck shell=bash disable=SC2034
# Functions and names shared by up.sh, down.sh and selftest.sh, which source
# this file. The names that only the other scripts use are the reason for
# disabling SC2034 (unused variable).

# The file that marks a directory as a local cluster. down.sh rejects a
# directory without it.
readonly cluster_marker="cluster.env"
# Every process of a cluster gets this variable set to the cluster
# directory, so down.sh finds them even when a pid file is missing.
readonly cluster_env_var="TRAINHOOK_LOCALCLUSTER_DIR"
# One file per port that a running cluster uses, named after the port and
# containing the cluster directory.
readonly port_reservations_dir="${TRAINHOOK_CLUSTER_CACHE:-$HOME/.cache/trainhook}/port-reservations"

log() {
  echo "localcluster/$(basename "$0" .sh): $*" >&2
}

die() {
  log "error: $*"
  exit 1
}

# Prints the seconds since START, a value of $EPOCHREALTIME, with one decimal.
elapsed_seconds() {
  awk -v start="$1" -v now="$EPOCHREALTIME" 'BEGIN { printf "%.1f", now - start }'
}

# Prints the ids of the live processes that belong to the cluster in DIR,
# found through their environment, except the calling shell itself.
cluster_pids() {
  local dir="$1" environ pid
  grep -lsxzF "$cluster_env_var=$dir" /proc/[0-9]*/environ 2>/dev/null |
    while read -r environ; do
      pid="${environ#/proc/}"
      pid="${pid%/environ}"
      [[ "$pid" != "$$" ]] && echo "$pid"
    done || true
}

# Deletes the port reservations of the cluster in DIR.
release_ports() {
  local dir="$1" reservation lock_fd
  [[ -d "$port_reservations_dir" ]] || return 0
  exec {lock_fd}>"$port_reservations_dir/.lock"
  flock "$lock_fd"
  for reservation in "$port_reservations_dir"/[0-9]*; do
    [[ -f "$reservation" ]] || continue
    if [[ "$(cat "$reservation")" == "$dir" ]]; then
      rm -f "$reservation"
    fi
  done
  flock -u "$lock_fd"
  exec {lock_fd}>&-
}
