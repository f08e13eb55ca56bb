package main

import (
	"fmt"
	"strconv"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// workerConfigMap names the ConfigMap with the worker's backpressure settings.
const workerConfigMap = "worker-config"

// WorkerArgs configures the Worker component.
type WorkerArgs struct {
	// Namespace receives every object.
	Namespace pulumi.StringInput
	// Image is the worker image reference.
	Image pulumi.StringInput
	// Config is the whole stack config; the worker reads Worker, App and Nodes.
	Config Config
}

// Worker runs the task workers as a Deployment on stateless nodes, spread
// over them by preferred anti-affinity and a topology spread constraint.
// Concurrency, prefetch and the retry policy come from a ConfigMap.
type Worker struct {
	pulumi.ResourceState

	// DeploymentName is the name autoscalers target.
	DeploymentName pulumi.StringOutput
}

// NewWorker registers the Worker component.
func NewWorker(ctx *pulumi.Context, name string, args *WorkerArgs, opts ...pulumi.ResourceOption) (*Worker, error) {
	w := &Worker{}
	if err := ctx.RegisterComponentResource("taskflow:infra:Worker", name, w, opts...); err != nil {
		return nil, fmt.Errorf("register worker component: %w", err)
	}
	cfg := args.Config
	const tier = "worker"

	// Backpressure settings.
	data := workerConfigData(cfg)
	cm, err := corev1.NewConfigMap(ctx, name+"-config", &corev1.ConfigMapArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name:      pulumi.String(workerConfigMap),
			Namespace: args.Namespace,
			Labels:    stringMap(podLabels(componentWorker, tier)),
		},
		Data: pulumi.ToStringMap(data),
	}, pulumi.Parent(w))
	if err != nil {
		return nil, fmt.Errorf("create worker configmap: %w", err)
	}

	// Deployment.
	env := corev1.EnvVarArray{
		fieldEnv("WORKER_NAME", "metadata.name"),
		literalEnv("HTTP_ADDR", ":"+strconv.Itoa(portWorker)),
		literalEnv("TASK_QUEUE", cfg.App.TaskQueue),
		literalEnv("LOG_LEVEL", cfg.App.LogLevel),
	}
	spec := podSpec{
		Component: componentWorker,
		Tier:      tier,
		Image:     args.Image,
		Ports:     []namedPort{{"http", portWorker}},
		Env:       append(env, connectionEnv()...),
		EnvFrom: corev1.EnvFromSourceArray{
			corev1.EnvFromSourceArgs{ConfigMapRef: &corev1.ConfigMapEnvSourceArgs{Name: pulumi.String(workerConfigMap)}},
		},
		Resources:                     cfg.Worker.Resources,
		QoSClass:                      cfg.Worker.QoSClass,
		Liveness:                      httpProbe("/healthz", "http", 10, 3),
		Readiness:                     httpProbe("/readyz", "http", 5, 3),
		PriorityClass:                 priorityClassName(componentWorker),
		UID:                           appUID,
		Role:                          roleStateless,
		SingleNode:                    cfg.Nodes.SingleNode,
		AntiAffinity:                  true,
		TopologySpread:                hostnameSpread(componentWorker, cfg.Worker.SpreadWhenUnsatisfiable),
		TerminationGracePeriodSeconds: cfg.Worker.TerminationGracePeriodSeconds,
		Annotations:                   map[string]string{"taskflow.dev/config-checksum": dataChecksum(data)},
	}
	d, err := newDeployment(ctx, spec, cfg.Worker.Replicas, args.Namespace, w, cm)
	if err != nil {
		return nil, err
	}

	w.DeploymentName = d.Metadata.Name().Elem()
	if err := ctx.RegisterResourceOutputs(w, pulumi.Map{"deploymentName": w.DeploymentName}); err != nil {
		return nil, fmt.Errorf("register worker outputs: %w", err)
	}
	return w, nil
}

// workerConfigData returns the backpressure settings as the worker's
// environment variables.
func workerConfigData(cfg Config) map[string]string {
	return map[string]string{
		"WORKER_CONCURRENCY":   strconv.Itoa(cfg.Worker.Concurrency),
		"WORKER_PREFETCH":      strconv.Itoa(cfg.workerPrefetch()),
		"RETRY_BASE_DELAY":     cfg.Worker.RetryBaseDelay,
		"RETRY_MAX_DELAY":      cfg.Worker.RetryMaxDelay,
		"DEFAULT_MAX_RETRIES":  strconv.Itoa(cfg.Worker.DefaultMaxRetries),
		"DELIVERY_LIMIT":       strconv.Itoa(cfg.Worker.DeliveryLimit),
		"WORKER_DRAIN_TIMEOUT": cfg.Worker.DrainTimeout,
	}
}
