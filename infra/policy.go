package main

import (
	"fmt"
	"slices"

	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// namespaceNameLabel is the label the API server sets on every namespace
// to its own name, since Kubernetes 1.22.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// PolicyArgs configures the Policy component.
type PolicyArgs struct {
	// Namespace receives every object.
	Namespace pulumi.StringInput
	// Config is the whole stack config; it reads Addons for the namespaces
	// of the ingress controller and KEDA.
	Config Config
}

// Policy hardens the namespace: PodDisruptionBudgets for the api and the
// worker, and NetworkPolicies that deny all traffic by default and open
// only the connections each tier needs.
type Policy struct {
	pulumi.ResourceState
}

// peer is one allowed source or destination: the pods of a component in
// our namespace, or every pod of another namespace.
type peer struct {
	Component string
	Namespace string
}

// flow allows traffic between the pods of one component and peers on ports.
type flow struct {
	// Name is the NetworkPolicy name.
	Name string
	// Component selects the pods the policy applies to.
	Component string
	// Ingress allows traffic from Peers when true, and to Peers when false.
	Ingress bool
	Peers   []peer
	Ports   []int
}

// NewPolicy registers the Policy component.
func NewPolicy(ctx *pulumi.Context, name string, args *PolicyArgs, opts ...pulumi.ResourceOption) (*Policy, error) {
	p := &Policy{}
	if err := ctx.RegisterComponentResource("taskflow:infra:Policy", name, p, opts...); err != nil {
		return nil, fmt.Errorf("register policy component: %w", err)
	}

	// PodDisruptionBudgets: a node drain takes down at most one pod of each
	// at a time.
	for _, component := range []string{componentAPI, componentWorker} {
		_, err := policyv1.NewPodDisruptionBudget(ctx, component+"-pdb", &policyv1.PodDisruptionBudgetArgs{
			Metadata: objectMeta(component, args.Namespace, component, "policy"),
			Spec: &policyv1.PodDisruptionBudgetSpecArgs{
				MaxUnavailable: pulumi.Int(1),
				Selector:       labelSelector(component),
			},
		}, pulumi.Parent(p))
		if err != nil {
			return nil, fmt.Errorf("create %s pod disruption budget: %w", component, err)
		}
	}

	// NetworkPolicies. Policies add up, so the default deny closes
	// everything and each flow below opens one direction of one path.
	if err := newDefaultDeny(ctx, p, args.Namespace); err != nil {
		return nil, err
	}
	for _, f := range networkFlows(args.Config) {
		if err := newFlowPolicy(ctx, p, args.Namespace, f); err != nil {
			return nil, err
		}
	}

	if err := ctx.RegisterResourceOutputs(p, pulumi.Map{}); err != nil {
		return nil, fmt.Errorf("register policy outputs: %w", err)
	}
	return p, nil
}

// networkFlows returns every connection the stack needs besides DNS.
func networkFlows(cfg Config) []flow {
	ingressNS := cfg.Addons.IngressNginx.Namespace
	kedaNS := cfg.Addons.KEDA.Namespace
	apps := []peer{{Component: componentAPI}, {Component: componentWorker}, {Component: componentMonitor}}

	return []flow{
		// Into the data tiers. Only the monitor and KEDA use the management API.
		{Name: "postgres-ingress", Component: componentPostgres, Ingress: true, Peers: apps, Ports: []int{portPostgres}},
		{Name: "rabbitmq-amqp-ingress", Component: componentRabbitMQ, Ingress: true,
			Peers: slices.Concat(apps, []peer{{Namespace: kedaNS}}), Ports: []int{portAMQP}},
		{Name: "rabbitmq-management-ingress", Component: componentRabbitMQ, Ingress: true,
			Peers: []peer{{Component: componentMonitor}, {Namespace: kedaNS}}, Ports: []int{portManagement}},

		// Into the HTTP services, from the ingress controller only.
		{Name: "api-ingress", Component: componentAPI, Ingress: true, Peers: []peer{{Namespace: ingressNS}}, Ports: []int{portAPI}},
		{Name: "monitor-ingress", Component: componentMonitor, Ingress: true, Peers: []peer{{Namespace: ingressNS}}, Ports: []int{portMonitor}},

		// Out of the services.
		{Name: "api-egress", Component: componentAPI, Peers: []peer{{Component: componentPostgres}}, Ports: []int{portPostgres}},
		{Name: "api-broker-egress", Component: componentAPI, Peers: []peer{{Component: componentRabbitMQ}}, Ports: []int{portAMQP}},
		{Name: "worker-egress", Component: componentWorker, Peers: []peer{{Component: componentPostgres}}, Ports: []int{portPostgres}},
		{Name: "worker-broker-egress", Component: componentWorker, Peers: []peer{{Component: componentRabbitMQ}}, Ports: []int{portAMQP}},
		{Name: "monitor-egress", Component: componentMonitor, Peers: []peer{{Component: componentPostgres}}, Ports: []int{portPostgres}},
		{Name: "monitor-broker-egress", Component: componentMonitor, Peers: []peer{{Component: componentRabbitMQ}}, Ports: []int{portAMQP, portManagement}},
	}
}

// newDefaultDeny denies all traffic in and out of every pod of the
// namespace, then allows DNS lookups to the cluster DNS in kube-system.
func newDefaultDeny(ctx *pulumi.Context, parent pulumi.Resource, namespace pulumi.StringInput) error {
	all := &metav1.LabelSelectorArgs{}
	_, err := networkingv1.NewNetworkPolicy(ctx, "default-deny", &networkingv1.NetworkPolicyArgs{
		Metadata: objectMeta("default-deny", namespace, appName, "policy"),
		Spec: &networkingv1.NetworkPolicySpecArgs{
			PodSelector: all,
			PolicyTypes: pulumi.ToStringArray([]string{"Ingress", "Egress"}),
		},
	}, pulumi.Parent(parent))
	if err != nil {
		return fmt.Errorf("create default-deny network policy: %w", err)
	}

	dnsPorts := networkingv1.NetworkPolicyPortArray{}
	for _, protocol := range []string{"UDP", "TCP"} {
		dnsPorts = append(dnsPorts, networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String(protocol), Port: pulumi.Int(53)})
	}
	_, err = networkingv1.NewNetworkPolicy(ctx, "allow-dns", &networkingv1.NetworkPolicyArgs{
		Metadata: objectMeta("allow-dns", namespace, appName, "policy"),
		Spec: &networkingv1.NetworkPolicySpecArgs{
			PodSelector: all,
			PolicyTypes: pulumi.ToStringArray([]string{"Egress"}),
			Egress: networkingv1.NetworkPolicyEgressRuleArray{
				networkingv1.NetworkPolicyEgressRuleArgs{
					To: networkingv1.NetworkPolicyPeerArray{
						networkingv1.NetworkPolicyPeerArgs{
							NamespaceSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{namespaceNameLabel: pulumi.String("kube-system")}},
							PodSelector:       &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{"k8s-app": pulumi.String("kube-dns")}},
						},
					},
					Ports: dnsPorts,
				},
			},
		},
	}, pulumi.Parent(parent))
	if err != nil {
		return fmt.Errorf("create allow-dns network policy: %w", err)
	}
	return nil
}

// newFlowPolicy creates the NetworkPolicy of one flow.
func newFlowPolicy(ctx *pulumi.Context, parent pulumi.Resource, namespace pulumi.StringInput, f flow) error {
	var peers networkingv1.NetworkPolicyPeerArray
	for _, pr := range f.Peers {
		if pr.Namespace != "" {
			peers = append(peers, networkingv1.NetworkPolicyPeerArgs{
				NamespaceSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{namespaceNameLabel: pulumi.String(pr.Namespace)}},
			})
			continue
		}
		// A pod selector without a namespace selector means this namespace.
		peers = append(peers, networkingv1.NetworkPolicyPeerArgs{PodSelector: labelSelector(pr.Component)})
	}
	var ports networkingv1.NetworkPolicyPortArray
	for _, port := range f.Ports {
		ports = append(ports, networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String("TCP"), Port: pulumi.Int(port)})
	}

	spec := &networkingv1.NetworkPolicySpecArgs{PodSelector: labelSelector(f.Component)}
	if f.Ingress {
		spec.PolicyTypes = pulumi.ToStringArray([]string{"Ingress"})
		spec.Ingress = networkingv1.NetworkPolicyIngressRuleArray{
			networkingv1.NetworkPolicyIngressRuleArgs{From: peers, Ports: ports},
		}
	} else {
		spec.PolicyTypes = pulumi.ToStringArray([]string{"Egress"})
		spec.Egress = networkingv1.NetworkPolicyEgressRuleArray{
			networkingv1.NetworkPolicyEgressRuleArgs{To: peers, Ports: ports},
		}
	}

	_, err := networkingv1.NewNetworkPolicy(ctx, f.Name, &networkingv1.NetworkPolicyArgs{
		Metadata: objectMeta(f.Name, namespace, f.Component, "policy"),
		Spec:     spec,
	}, pulumi.Parent(parent))
	if err != nil {
		return fmt.Errorf("create %s network policy: %w", f.Name, err)
	}
	return nil
}
