# `make test-cluster` checks the infra program on a real API server. The
# root Makefile includes this file, so paths are relative to the
# repository root.
#
# The target builds the toolchain with scripts/cluster-tools (cached
# outside the repository, keyed by version), starts a fresh cluster in a
# temporary directory with scripts/cluster up, runs the cluster test
# against it and stops the cluster on exit. It fails when any claim fails.
# When it fails, it keeps the cluster's directory with the component logs
# and prints its path. The live objects and the Pulumi output go to
# .run/cluster/.
#
# Variables: CLUSTER_TEST_TIMEOUT (go test -timeout, default 40m) and
# CLUSTER_TEST_FLAGS (more go test flags).

CLUSTER_TEST_TIMEOUT ?= 40m
CLUSTER_TEST_FLAGS ?=

.PHONY: test-cluster

## test-cluster: pulumi up the dev stack on a local API server with kwok nodes, check the live objects, destroy
test-cluster:
	scripts/cluster-tools >/dev/null
	@dir=$$(mktemp -d "$${TMPDIR:-/tmp}/taskflow-cluster-XXXXXX") || exit 1; \
	finish() { \
		status=$$?; \
		scripts/cluster down "$$dir" || status=1; \
		if [ "$$status" -eq 0 ]; then rm -rf "$$dir"; else echo "test-cluster: cluster state and logs kept in $$dir" >&2; fi; \
		exit "$$status"; \
	}; \
	trap finish EXIT; \
	scripts/cluster up "$$dir" && \
	TASKFLOW_CLUSTER_DIR="$$dir" go test -tags cluster -run '^TestCluster$$' -count=1 -v -timeout $(CLUSTER_TEST_TIMEOUT) $(CLUSTER_TEST_FLAGS) ./infra/clustertest/
