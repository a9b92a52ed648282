# The local cluster's directory. cluster-down finds the cluster there, and
# .gitignore keeps it out of git.
LOCALCLUSTER_DIR := $(CURDIR)/.localcluster

.PHONY: run test crds cluster-up cluster-down

# Runs trainhook: against $KUBECONFIG (or ~/.kube/config) when set up,
# otherwise against a local cluster started in $(LOCALCLUSTER_DIR). Installs
# the CRDs and an example TrainingTemplate, and prints a curl command that
# starts a training.
run:
	@bash localcluster/run.sh

# Runs every test: formatting, unit tests, the local cluster's self-test,
# the Labelbox SDK check and the end-to-end tests on a local cluster.
test:
	bash localcluster/build.sh >/dev/null
	@if cargo fmt --version >/dev/null 2>&1; then cargo fmt --check; else echo "skipping the format check: rustfmt is not installed"; fi
	cargo test --locked --no-fail-fast
	bash localcluster/selftest.sh

# Regenerates crds/crds.yaml from the Rust types.
crds:
	cargo run --quiet --bin trainhook -- crds > crds/crds.yaml

# Starts a local Kubernetes cluster in $(LOCALCLUSTER_DIR) and prints
# `export KUBECONFIG=...` on stdout, so `eval "$(make -s cluster-up)"`
# points kubectl at it. See localcluster/README.md.
cluster-up:
	@bash localcluster/up.sh --dir "$(LOCALCLUSTER_DIR)"

# Stops the cluster that cluster-up started and removes its directory.
cluster-down:
	@bash localcluster/down.sh --dir "$(LOCALCLUSTER_DIR)"
