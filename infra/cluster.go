package main

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	schedulingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/scheduling/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// priorityClass is one PriorityClass of the stack.
type priorityClass struct {
	// Name is the cluster-wide object name.
	Name string
	// Value orders preemption and scheduling: higher goes first.
	Value int
	// Description is shown by kubectl describe.
	Description string
}

// priorityClasses returns the stack's PriorityClasses, highest first. The
// data tiers come first because every other tier fails without them, and
// the monitor last because nothing depends on it.
func priorityClasses() []priorityClass {
	return []priorityClass{
		{"taskflow-postgres", 100000, "PostgreSQL: the task store every tier depends on."},
		{"taskflow-rabbitmq", 90000, "RabbitMQ: the broker between api and workers."},
		{"taskflow-worker", 80000, "Workers: they drain the queue."},
		{"taskflow-api", 70000, "API: accepts tasks; it keeps working while workers lag."},
		{"taskflow-monitor", 60000, "Monitor: read-mostly dashboard, first to give way."},
	}
}

// priorityClassName returns the PriorityClass name of component.
func priorityClassName(component string) string {
	return "taskflow-" + component
}

// ClusterArgs configures the Cluster component.
type ClusterArgs struct {
	// Namespace is the name of the namespace to create.
	Namespace string
}

// Cluster creates the cluster-wide objects that every tier needs: the
// namespace, which enforces Pod Security "restricted", and the PriorityClasses.
type Cluster struct {
	pulumi.ResourceState

	// Namespace is the created namespace's name. Using it as an input
	// makes a resource wait for the namespace.
	Namespace pulumi.StringOutput
}

// NewCluster registers the Cluster component.
func NewCluster(ctx *pulumi.Context, name string, args *ClusterArgs, opts ...pulumi.ResourceOption) (*Cluster, error) {
	c := &Cluster{}
	if err := ctx.RegisterComponentResource("taskflow:infra:Cluster", name, c, opts...); err != nil {
		return nil, fmt.Errorf("register cluster component: %w", err)
	}

	// Namespace. The API server rejects any pod that breaks the
	// restricted profile; warn and audit report the same profile.
	labels := podLabels(appName, "namespace")
	for _, mode := range []string{"enforce", "warn", "audit"} {
		labels["pod-security.kubernetes.io/"+mode] = "restricted"
		labels["pod-security.kubernetes.io/"+mode+"-version"] = "latest"
	}
	ns, err := corev1.NewNamespace(ctx, name+"-namespace", &corev1.NamespaceArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name:   pulumi.String(args.Namespace),
			Labels: stringMap(labels),
		},
	}, pulumi.Parent(c))
	if err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", args.Namespace, err)
	}
	c.Namespace = ns.Metadata.Name().Elem()

	// PriorityClasses.
	for _, pc := range priorityClasses() {
		_, err := schedulingv1.NewPriorityClass(ctx, pc.Name, &schedulingv1.PriorityClassArgs{
			Metadata: &metav1.ObjectMetaArgs{
				Name:   pulumi.String(pc.Name),
				Labels: stringMap(podLabels(appName, "scheduling")),
			},
			Value:         pulumi.Int(pc.Value),
			GlobalDefault: pulumi.Bool(false),
			Description:   pulumi.String(pc.Description),
		}, pulumi.Parent(c))
		if err != nil {
			return nil, fmt.Errorf("create priority class %s: %w", pc.Name, err)
		}
	}

	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{"namespace": c.Namespace}); err != nil {
		return nil, fmt.Errorf("register cluster outputs: %w", err)
	}
	return c, nil
}
