package main

import (
	"fmt"
	"strconv"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	autoscalingv2 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/autoscaling/v2"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// triggerAuthName names the KEDA TriggerAuthentication for RabbitMQ.
const triggerAuthName = "rabbitmq-trigger-auth"

// AutoscalingArgs configures the Autoscaling component.
type AutoscalingArgs struct {
	// Namespace receives every object.
	Namespace pulumi.StringInput
	// WorkerDeployment and APIDeployment are the names of the targets.
	WorkerDeployment pulumi.StringInput
	APIDeployment    pulumi.StringInput
	// Config is the whole stack config; it reads Autoscaling, API.HPA and App.
	Config Config
	// KEDAReady, when set, is the KEDA release whose CRDs the ScaledObject needs.
	KEDAReady pulumi.Resource
}

// Autoscaling scales the worker 3→10 with exactly one autoscaler: a KEDA
// ScaledObject on RabbitMQ queue length and CPU when KEDA is on, a plain
// CPU HorizontalPodAutoscaler otherwise. KEDA creates its own HPA for the
// ScaledObject, so the program never adds a second one for the worker.
// The api gets an optional CPU HPA of its own.
type Autoscaling struct {
	pulumi.ResourceState
}

// NewAutoscaling registers the Autoscaling component.
func NewAutoscaling(ctx *pulumi.Context, name string, args *AutoscalingArgs, opts ...pulumi.ResourceOption) (*Autoscaling, error) {
	a := &Autoscaling{}
	if err := ctx.RegisterComponentResource("taskflow:infra:Autoscaling", name, a, opts...); err != nil {
		return nil, fmt.Errorf("register autoscaling component: %w", err)
	}
	cfg := args.Config
	s := cfg.Autoscaling

	// Worker.
	if s.KEDA {
		if err := newWorkerScaledObject(ctx, a, args); err != nil {
			return nil, err
		}
	} else {
		err := newCPUAutoscaler(ctx, a, componentWorker, args.Namespace, args.WorkerDeployment,
			s.MinReplicas, s.MaxReplicas, s.CPUUtilization, workerScaleDown(s))
		if err != nil {
			return nil, err
		}
	}

	// API.
	if h := cfg.API.HPA; h.Enabled {
		err := newCPUAutoscaler(ctx, a, componentAPI, args.Namespace, args.APIDeployment,
			h.MinReplicas, h.MaxReplicas, h.CPUUtilization, nil)
		if err != nil {
			return nil, err
		}
	}

	mode := "hpa"
	if s.KEDA {
		mode = "keda"
	}
	if err := ctx.RegisterResourceOutputs(a, pulumi.Map{"workerAutoscaler": pulumi.String(mode)}); err != nil {
		return nil, fmt.Errorf("register autoscaling outputs: %w", err)
	}
	return a, nil
}

// newWorkerScaledObject creates the TriggerAuthentication and the ScaledObject.
func newWorkerScaledObject(ctx *pulumi.Context, parent pulumi.Resource, args *AutoscalingArgs) error {
	s := args.Config.Autoscaling
	opts := []pulumi.ResourceOption{pulumi.Parent(parent)}
	if args.KEDAReady != nil {
		opts = append(opts, pulumi.DependsOn([]pulumi.Resource{args.KEDAReady}))
	}

	// The host carries no credentials: KEDA takes user name and password
	// as separate parameters, so a password needs no URL encoding.
	secretRef := func(parameter, key string) map[string]any {
		return map[string]any{"parameter": parameter, "name": secretRabbitMQ, "key": key}
	}
	auth, err := apiextensions.NewCustomResource(ctx, "worker-trigger-auth", &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("keda.sh/v1alpha1"),
		Kind:       pulumi.String("TriggerAuthentication"),
		Metadata:   objectMeta(triggerAuthName, args.Namespace, componentWorker, "autoscaling"),
		OtherFields: kubernetes.UntypedArgs{
			"spec": map[string]any{
				"secretTargetRef": []any{
					secretRef("host", keyKEDAHost),
					secretRef("username", keyUsername),
					secretRef("password", keyPassword),
				},
			},
		},
	}, opts...)
	if err != nil {
		return fmt.Errorf("create keda trigger authentication: %w", err)
	}

	// The rabbitmq trigger reads the queue through the management API,
	// whose message count includes unacknowledged deliveries, so tasks
	// that workers hold in prefetch still count as load.
	_, err = apiextensions.NewCustomResource(ctx, "worker-scaledobject", &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("keda.sh/v1alpha1"),
		Kind:       pulumi.String("ScaledObject"),
		Metadata:   objectMeta(componentWorker, args.Namespace, componentWorker, "autoscaling"),
		OtherFields: kubernetes.UntypedArgs{
			"spec": map[string]any{
				"scaleTargetRef":  map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": args.WorkerDeployment},
				"minReplicaCount": s.MinReplicas,
				"maxReplicaCount": s.MaxReplicas,
				"pollingInterval": s.PollingIntervalSeconds,
				"advanced": map[string]any{
					"horizontalPodAutoscalerConfig": map[string]any{
						"behavior": map[string]any{"scaleDown": scaleDownRules(s)},
					},
				},
				"triggers": []any{
					map[string]any{
						"type": "rabbitmq",
						"metadata": map[string]any{
							"protocol":  "http",
							"mode":      "QueueLength",
							"queueName": args.Config.App.TaskQueue,
							"value":     strconv.Itoa(s.MessagesPerReplica),
						},
						"authenticationRef": map[string]any{"name": triggerAuthName},
					},
					map[string]any{
						"type":       "cpu",
						"metricType": "Utilization",
						"metadata":   map[string]any{"value": strconv.Itoa(s.CPUUtilization)},
					},
				},
			},
		},
	}, append(opts, pulumi.DependsOn([]pulumi.Resource{auth}))...)
	if err != nil {
		return fmt.Errorf("create keda scaled object: %w", err)
	}
	return nil
}

// scaleDownRules removes at most ScaleDownPodsPerMinute pods a minute, and
// only after the load stayed low for the whole stabilization window.
func scaleDownRules(s AutoscalingConfig) map[string]any {
	return map[string]any{
		"stabilizationWindowSeconds": s.ScaleDownStabilizationSeconds,
		"policies": []any{
			map[string]any{"type": "Pods", "value": s.ScaleDownPodsPerMinute, "periodSeconds": 60},
		},
	}
}

// workerScaleDown is scaleDownRules for a typed HPA.
func workerScaleDown(s AutoscalingConfig) *autoscalingv2.HPAScalingRulesArgs {
	return &autoscalingv2.HPAScalingRulesArgs{
		StabilizationWindowSeconds: pulumi.Int(s.ScaleDownStabilizationSeconds),
		Policies: autoscalingv2.HPAScalingPolicyArray{
			autoscalingv2.HPAScalingPolicyArgs{Type: pulumi.String("Pods"), Value: pulumi.Int(s.ScaleDownPodsPerMinute), PeriodSeconds: pulumi.Int(60)},
		},
	}
}

// newCPUAutoscaler creates an autoscaling/v2 HPA that keeps the average CPU
// of a Deployment at utilization percent of its requests.
func newCPUAutoscaler(ctx *pulumi.Context, parent pulumi.Resource, component string, namespace, deployment pulumi.StringInput,
	minReplicas, maxReplicas, utilization int, scaleDown *autoscalingv2.HPAScalingRulesArgs) error {
	spec := &autoscalingv2.HorizontalPodAutoscalerSpecArgs{
		ScaleTargetRef: &autoscalingv2.CrossVersionObjectReferenceArgs{
			ApiVersion: pulumi.String("apps/v1"),
			Kind:       pulumi.String("Deployment"),
			Name:       deployment,
		},
		MinReplicas: pulumi.Int(minReplicas),
		MaxReplicas: pulumi.Int(maxReplicas),
		Metrics: autoscalingv2.MetricSpecArray{
			autoscalingv2.MetricSpecArgs{
				Type: pulumi.String("Resource"),
				Resource: &autoscalingv2.ResourceMetricSourceArgs{
					Name: pulumi.String("cpu"),
					Target: &autoscalingv2.MetricTargetArgs{
						Type:               pulumi.String("Utilization"),
						AverageUtilization: pulumi.Int(utilization),
					},
				},
			},
		},
	}
	if scaleDown != nil {
		spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehaviorArgs{ScaleDown: scaleDown}
	}

	_, err := autoscalingv2.NewHorizontalPodAutoscaler(ctx, component+"-hpa", &autoscalingv2.HorizontalPodAutoscalerArgs{
		Metadata: objectMeta(component, namespace, component, "autoscaling"),
		Spec:     spec,
	}, pulumi.Parent(parent))
	if err != nil {
		return fmt.Errorf("create %s hpa: %w", component, err)
	}
	return nil
}

// objectMeta names an object of component in namespace with the stack's labels.
func objectMeta(name string, namespace pulumi.StringInput, component, tier string) *metav1.ObjectMetaArgs {
	return &metav1.ObjectMetaArgs{
		Name:      pulumi.String(name),
		Namespace: namespace,
		Labels:    stringMap(podLabels(component, tier)),
	}
}
