package main

import (
	"fmt"
	"strconv"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// appUID is the non-root user the api, worker and monitor images run as.
const appUID = 65532

// APIArgs configures the API component.
type APIArgs struct {
	// Namespace receives every object.
	Namespace pulumi.StringInput
	// Image is the api image reference.
	Image pulumi.StringInput
	// Config is the whole stack config; the api reads API, App and Nodes.
	Config Config
}

// API runs the producer API as a Deployment on stateless nodes behind the
// ClusterIP Service "api" on 5000.
type API struct {
	pulumi.ResourceState

	// DeploymentName is the name autoscalers target.
	DeploymentName pulumi.StringOutput
	// ServiceName is the Service the Ingress routes /api to.
	ServiceName pulumi.StringOutput
}

// NewAPI registers the API component.
func NewAPI(ctx *pulumi.Context, name string, args *APIArgs, opts ...pulumi.ResourceOption) (*API, error) {
	a := &API{}
	if err := ctx.RegisterComponentResource("taskflow:infra:API", name, a, opts...); err != nil {
		return nil, fmt.Errorf("register api component: %w", err)
	}
	cfg := args.Config
	const tier = "api"

	env := corev1.EnvVarArray{
		literalEnv("HTTP_ADDR", ":"+strconv.Itoa(portAPI)),
		literalEnv("TASK_QUEUE", cfg.App.TaskQueue),
		literalEnv("LOG_LEVEL", cfg.App.LogLevel),
		secretEnv("API_TOKEN", secretTokens, keyAPIToken),
	}
	spec := podSpec{
		Component: componentAPI,
		Tier:      tier,
		Image:     args.Image,
		Ports:     []namedPort{{"http", portAPI}},
		Env:       append(env, connectionEnv()...),
		// The api resolves DEFAULT_MAX_RETRIES of the retry policy when it accepts a task, so it
		// reads the same ConfigMap as the worker and ignores the worker's other settings.
		EnvFrom: corev1.EnvFromSourceArray{
			corev1.EnvFromSourceArgs{ConfigMapRef: &corev1.ConfigMapEnvSourceArgs{Name: pulumi.String(workerConfigMap)}},
		},
		Resources:     cfg.API.Resources,
		QoSClass:      cfg.API.QoSClass,
		Liveness:      httpProbe("/api/healthz", "http", 10, 3),
		Readiness:     httpProbe("/api/readyz", "http", 5, 3),
		PriorityClass: priorityClassName(componentAPI),
		UID:           appUID,
		Role:          roleStateless,
		SingleNode:    cfg.Nodes.SingleNode,
		AntiAffinity:  true,
	}
	d, err := newDeployment(ctx, spec, cfg.API.Replicas, args.Namespace, a)
	if err != nil {
		return nil, err
	}
	svc, err := newService(ctx, serviceSpec{Name: componentAPI, Component: componentAPI, Tier: tier, Ports: spec.Ports}, args.Namespace, a)
	if err != nil {
		return nil, err
	}

	a.DeploymentName = d.Metadata.Name().Elem()
	a.ServiceName = svc.Metadata.Name().Elem()
	if err := ctx.RegisterResourceOutputs(a, pulumi.Map{
		"deploymentName": a.DeploymentName,
		"serviceName":    a.ServiceName,
	}); err != nil {
		return nil, fmt.Errorf("register api outputs: %w", err)
	}
	return a, nil
}
