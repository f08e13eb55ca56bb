package main

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// NodeRolesArgs configures the NodeRoles component.
type NodeRolesArgs struct {
	// Nodes lists the nodes per role and selects single-node mode.
	Nodes NodesConfig
}

// NodeRoles labels existing nodes role=stateful or role=stateless with
// server-side apply patches. Outside single-node mode it also taints the
// stateful nodes role=stateful:NoSchedule, so only PostgreSQL and RabbitMQ,
// which tolerate the taint, run there. Destroying the stack removes the
// labels and taints again.
type NodeRoles struct {
	pulumi.ResourceState
}

// NewNodeRoles registers the NodeRoles component and one NodePatch per node.
func NewNodeRoles(ctx *pulumi.Context, name string, args *NodeRolesArgs, opts ...pulumi.ResourceOption) (*NodeRoles, error) {
	n := &NodeRoles{}
	if err := ctx.RegisterComponentResource("taskflow:infra:NodeRoles", name, n, opts...); err != nil {
		return nil, fmt.Errorf("register node roles component: %w", err)
	}

	patched := pulumi.StringArray{}
	for _, role := range []string{roleStateful, roleStateless} {
		nodes := args.Nodes.Stateless
		if role == roleStateful {
			nodes = args.Nodes.Stateful
		} else if args.Nodes.SingleNode {
			// The one node is listed under stateful; the stateless default names kind's nodes,
			// which a single-node cluster does not have.
			continue
		}
		for _, node := range nodes {
			if err := patchNode(ctx, n, node, role, role == roleStateful && !args.Nodes.SingleNode); err != nil {
				return nil, err
			}
			patched = append(patched, pulumi.String(node))
		}
	}

	if err := ctx.RegisterResourceOutputs(n, pulumi.Map{"nodes": patched}); err != nil {
		return nil, fmt.Errorf("register node roles outputs: %w", err)
	}
	return n, nil
}

// patchNode labels node with role and, when taint is set, adds the
// stateful taint.
func patchNode(ctx *pulumi.Context, parent pulumi.Resource, node, role string, taint bool) error {
	spec := &corev1.NodeSpecPatchArgs{}
	var annotations pulumi.StringMap
	if taint {
		spec.Taints = corev1.TaintPatchArray{
			corev1.TaintPatchArgs{
				Key:    pulumi.String(roleLabel),
				Value:  pulumi.String(roleStateful),
				Effect: pulumi.String("NoSchedule"),
			},
		}
		// Node.spec.taints is an atomic list for server-side apply, and the
		// node lifecycle controller also writes it (not-ready and
		// unreachable taints). Forcing takes ownership instead of failing
		// with a conflict; the controller re-adds its taints when it needs them.
		annotations = pulumi.StringMap{"pulumi.com/patchForce": pulumi.String("true")}
	}

	_, err := corev1.NewNodePatch(ctx, "node-"+node, &corev1.NodePatchArgs{
		Metadata: &metav1.ObjectMetaPatchArgs{
			Name:        pulumi.String(node),
			Labels:      pulumi.StringMap{roleLabel: pulumi.String(role)},
			Annotations: annotations,
		},
		Spec: spec,
	}, pulumi.Parent(parent))
	if err != nil {
		return fmt.Errorf("patch node %s: %w", node, err)
	}
	return nil
}
