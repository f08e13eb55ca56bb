//go:build tools

// Package tools lists the commands that scripts/cluster-tools builds from
// this module. The build tag keeps the file out of every build, and the
// imports keep the commands' packages in go.mod and go.sum for go mod tidy.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
