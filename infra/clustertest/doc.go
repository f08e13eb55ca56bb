// Package clustertest checks the infra program's claims on a real API
// server: it runs `pulumi up` on the dev stack against the local control
// plane that scripts/cluster starts, with kwok nodes, and reads the live
// objects back with kubectl.
//
// The cluster test sits behind the build tag "cluster", so `go test ./...`
// runs only the unit tests of the checks in this package. `make
// test-cluster` builds the toolchain, starts a fresh cluster, runs
//
//	TASKFLOW_CLUSTER_DIR=DIR go test -tags cluster -count=1 -v ./infra/clustertest/
//
// and stops the cluster again. DIR is the directory given to `scripts/cluster
// up`. The test prints one line per claim, "PASS name" or "FAIL name: why",
// then "N passed, M failed", and fails when any claim fails.
//
// It drives the Pulumi CLI the way a user does, from a copy of Pulumi.yaml
// and Pulumi.dev.yaml in a temporary directory, with a file backend and a
// passphrase secrets provider there too, so the repository's files stay
// untouched. It changes only the settings a cluster without addon
// controllers needs (see "Clusters without controllers" in docs/kubernetes.md)
// and the registry address, and it sets a random secret seed.
//
// Outputs go to TASKFLOW_CLUSTER_ARTIFACTS (default .run/cluster in the
// repository): the live objects as YAML in objects/, with the data of
// Secrets left out, and the output of every Pulumi command in logs/.
package clustertest
