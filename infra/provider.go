package main

import (
	"fmt"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// newProvider creates the Kubernetes provider every resource uses. In
// render mode it writes YAML manifests to the render directory instead of
// applying them; secrets appear there in plain text.
func newProvider(ctx *pulumi.Context, cfg Config) (*kubernetes.Provider, error) {
	args := &kubernetes.ProviderArgs{
		// Server-side apply lets NodePatch change nodes that other
		// managers own, and it is the provider's default since v4.
		EnableServerSideApply: pulumi.Bool(true),
	}
	switch {
	case cfg.renderMode():
		// The provider rejects a kubeconfig context together with
		// renderYamlToDirectory, and rendering needs no cluster.
		args.RenderYamlToDirectory = pulumi.String(cfg.Kubernetes.RenderDir)
	case cfg.Kubernetes.Context != "":
		args.Context = pulumi.String(cfg.Kubernetes.Context)
	}

	p, err := kubernetes.NewProvider(ctx, "k8s", args)
	if err != nil {
		return nil, fmt.Errorf("create kubernetes provider: %w", err)
	}
	return p, nil
}
