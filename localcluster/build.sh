#!/usr/bin/env bash
# Builds the local cluster's binaries from Go modules into a cache folder
# keyed by their versions, and prints that folder. Only missing binaries
# are built, so a warm run takes about a second.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/versions.env"

bin_dir="${TRAINHOOK_CLUSTER_CACHE:-$HOME/.cache/trainhook}/bin-k8s${KUBERNETES_VERSION}-etcd${ETCD_VERSION}-kwok${KWOK_VERSION}-helm${HELM_VERSION}"
mkdir -p "$bin_dir"

log() { echo "localcluster/build: $*" >&2; }

# Builds one command from a module under tools/ unless it is already there.
build() {
  local module="$1" package="$2" name="$3" ldflags="$4"
  if [[ -x "$bin_dir/$name" ]]; then
    return
  fi

  log "building $name from $package (a cold build takes several minutes)"
  (cd "$here/tools/$module" &&
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$bin_dir/$name.partial" "$package")
  mv "$bin_dir/$name.partial" "$bin_dir/$name"
}

# Unstamped Kubernetes builds report v0.0.0-master, which breaks version
# discovery and Helm's kubeVersion checks.
minor="${KUBERNETES_VERSION#v1.}"
minor="${minor%%.*}"
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

build kubernetes k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver "$k8s_ldflags"
build kubernetes k8s.io/kubernetes/cmd/kube-controller-manager kube-controller-manager "$k8s_ldflags"
build kubernetes k8s.io/kubernetes/cmd/kube-scheduler kube-scheduler "$k8s_ldflags"
build kubernetes k8s.io/kubernetes/cmd/kubectl kubectl "$k8s_ldflags"
build etcd go.etcd.io/etcd/server/v3 etcd "-X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION"
build kwok sigs.k8s.io/kwok/cmd/kwok kwok "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
build helm helm.sh/helm/v4/cmd/helm helm "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"

echo "$bin_dir"
