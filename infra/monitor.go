package main

import (
	"fmt"
	"strconv"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// MonitorArgs configures the Monitor component.
type MonitorArgs struct {
	// Namespace receives every object.
	Namespace pulumi.StringInput
	// Image is the monitor image reference.
	Image pulumi.StringInput
	// Config is the whole stack config; the monitor reads Monitor, App and Nodes.
	Config Config
}

// Monitor runs the dashboard as a Deployment on stateless nodes behind the
// ClusterIP Service "monitor" on 5555. It serves every path under
// URL_PREFIX, so the Ingress forwards paths unchanged.
type Monitor struct {
	pulumi.ResourceState

	// ServiceName is the Service the Ingress routes the URL prefix to.
	ServiceName pulumi.StringOutput
}

// NewMonitor registers the Monitor component.
func NewMonitor(ctx *pulumi.Context, name string, args *MonitorArgs, opts ...pulumi.ResourceOption) (*Monitor, error) {
	m := &Monitor{}
	if err := ctx.RegisterComponentResource("taskflow:infra:Monitor", name, m, opts...); err != nil {
		return nil, fmt.Errorf("register monitor component: %w", err)
	}
	cfg := args.Config
	const tier = "monitor"
	prefix := cfg.Monitor.URLPrefix

	env := corev1.EnvVarArray{
		literalEnv("HTTP_ADDR", ":"+strconv.Itoa(portMonitor)),
		literalEnv("URL_PREFIX", prefix),
		literalEnv("TASK_QUEUE", cfg.App.TaskQueue),
		literalEnv("LOG_LEVEL", cfg.App.LogLevel),
		secretEnv("RABBITMQ_MANAGEMENT_URL", secretRabbitMQ, keyManagementURL),
		secretEnv("MONITOR_READ_TOKEN", secretTokens, keyMonitorRead),
		secretEnv("MONITOR_ADMIN_TOKEN", secretTokens, keyMonitorAdmin),
	}
	spec := podSpec{
		Component:     componentMonitor,
		Tier:          tier,
		Image:         args.Image,
		Ports:         []namedPort{{"http", portMonitor}},
		Env:           append(env, connectionEnv()...),
		Resources:     cfg.Monitor.Resources,
		QoSClass:      cfg.Monitor.QoSClass,
		Liveness:      httpProbe(prefix+"/healthz", "http", 10, 3),
		Readiness:     httpProbe(prefix+"/readyz", "http", 5, 3),
		PriorityClass: priorityClassName(componentMonitor),
		UID:           appUID,
		Role:          roleStateless,
		SingleNode:    cfg.Nodes.SingleNode,
	}
	if _, err := newDeployment(ctx, spec, cfg.Monitor.Replicas, args.Namespace, m); err != nil {
		return nil, err
	}
	svc, err := newService(ctx, serviceSpec{Name: componentMonitor, Component: componentMonitor, Tier: tier, Ports: spec.Ports}, args.Namespace, m)
	if err != nil {
		return nil, err
	}

	m.ServiceName = svc.Metadata.Name().Elem()
	if err := ctx.RegisterResourceOutputs(m, pulumi.Map{"serviceName": m.ServiceName}); err != nil {
		return nil, fmt.Errorf("register monitor outputs: %w", err)
	}
	return m, nil
}
