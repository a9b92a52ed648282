# The local cluster's directory. cluster-down finds the cluster there, and
# .gitignore keeps it out of git.
LOCALCLUSTER_DIR := $(CURDIR)/.localcluster

.PHONY: run test crds manifests fuzz cluster-up cluster-down

# Runs trainhook: against $KUBECONFIG (or ~/.kube/config) when set up,
# otherwise against a local cluster started in $(LOCALCLUSTER_DIR). Installs
# the CRDs and an example TrainingTemplate, and prints a curl command that
# starts a training.
run:
	@bash localcluster/run.sh

# Runs every test: unit tests, the Labelbox SDK check, the chart checks,
# the end-to-end tests on local clusters, the local cluster's self-test and,
# last so that it hides no test result, the format check.
test:
	bash localcluster/build.sh >/dev/null
	cargo test --locked --no-fail-fast
	cargo check --locked --quiet --manifest-path fuzz/Cargo.toml
	bash localcluster/selftest.sh
	@if cargo fmt --version >/dev/null 2>&1; then cargo fmt --check; else echo "skipping the format check: rustfmt is not installed"; fi

# Regenerates crds/crds.yaml from the Rust types, and the chart's copy of
# it. The copy is a file, not a symlink, because Helm logs every symlink it
# follows on every command.
crds:
	cargo run --quiet --bin trainhook -- crds > crds/crds.yaml
	cp crds/crds.yaml charts/trainhook/crds/crds.yaml

# Regenerates the plain manifests in deploy/ from charts/trainhook and
# deploy/values.yaml. Run it after changing either, or crds/crds.yaml;
# tests/chart.rs fails until deploy/ matches.
manifests:
	bash deploy/generate.sh

# Runs each fuzz target for FUZZ_SECONDS (10 minutes unless set) with
# cargo-fuzz on a nightly toolchain. A crash is saved under
# fuzz/artifacts/; turn it into a unit test before fixing it.
FUZZ_SECONDS ?= 600
fuzz:
	@command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
	cd fuzz && cargo +nightly fuzz run --release webhook_body -- \
		-max_total_time=$(FUZZ_SECONDS) -dict=webhook_body.dict
	cd fuzz && cargo +nightly fuzz run --release run_name -- \
		-max_total_time=$(FUZZ_SECONDS)

# Starts a local Kubernetes cluster in $(LOCALCLUSTER_DIR) and prints
# `export KUBECONFIG=...` on stdout, so `eval "$(make -s cluster-up)"`
# points kubectl at it. See localcluster/README.md.
cluster-up:
	@bash localcluster/up.sh --dir "$(LOCALCLUSTER_DIR)"

# Stops the cluster that cluster-up started and removes its directory.
cluster-down:
	@bash localcluster/down.sh --dir "$(LOCALCLUSTER_DIR)"
