package main

import (
	"fmt"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// clusterDomain is the cluster's DNS suffix; kind and minikube both use the
// Kubernetes default.
const clusterDomain = "cluster.local"

// rabbitmqConfigMap names the ConfigMap with rabbitmq.conf and enabled_plugins.
const rabbitmqConfigMap = "rabbitmq-config"

// RabbitMQArgs configures the RabbitMQ component.
type RabbitMQArgs struct {
	// Namespace receives every object.
	Namespace pulumi.StringInput
	// Config holds the RabbitMQ settings.
	Config RabbitMQConfig
	// SingleNode turns the stateful-node requirement into a preference.
	SingleNode bool
}

// RabbitMQ runs one RabbitMQ node with the management plugin as a
// StatefulSet with a PVC. The node's name is its pod's DNS name under a
// headless Service, so it stays the same across restarts and the node finds
// its data directory again. Clients use the ClusterIP Service "rabbitmq" on
// 5672 (AMQP) and 15672 (management API).
type RabbitMQ struct {
	pulumi.ResourceState

	// ServiceName is the DNS name clients in the namespace connect to.
	ServiceName pulumi.StringOutput
}

// NewRabbitMQ registers the RabbitMQ component.
func NewRabbitMQ(ctx *pulumi.Context, name string, args *RabbitMQArgs, opts ...pulumi.ResourceOption) (*RabbitMQ, error) {
	r := &RabbitMQ{}
	if err := ctx.RegisterComponentResource("taskflow:infra:RabbitMQ", name, r, opts...); err != nil {
		return nil, fmt.Errorf("register rabbitmq component: %w", err)
	}
	cfg := args.Config
	const tier = "broker"
	headlessName := componentRabbitMQ + "-headless"

	// Configuration. The default user's credentials live in the Secret
	// and join this file as conf.d/10-default_user.conf.
	data := rabbitmqConfigData()
	cm, err := corev1.NewConfigMap(ctx, name+"-config", &corev1.ConfigMapArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name:      pulumi.String(rabbitmqConfigMap),
			Namespace: args.Namespace,
			Labels:    stringMap(podLabels(componentRabbitMQ, tier)),
		},
		Data: pulumi.ToStringMap(data),
	}, pulumi.Parent(r))
	if err != nil {
		return nil, fmt.Errorf("create rabbitmq configmap: %w", err)
	}

	// Services.
	headless, err := newService(ctx, serviceSpec{
		Name: headlessName, Component: componentRabbitMQ, Tier: tier, Headless: true,
		Ports: []namedPort{{"epmd", portEPMD}, {"amqp", portAMQP}, {"dist", portDist}},
	}, args.Namespace, r)
	if err != nil {
		return nil, err
	}
	svc, err := newService(ctx, serviceSpec{
		Name: componentRabbitMQ, Component: componentRabbitMQ, Tier: tier,
		Ports: []namedPort{{"amqp", portAMQP}, {"management", portManagement}},
	}, args.Namespace, r)
	if err != nil {
		return nil, err
	}
	sa, err := newServiceAccount(ctx, componentRabbitMQ, tier, args.Namespace, r)
	if err != nil {
		return nil, err
	}

	// Pod.
	_, err = appsv1.NewStatefulSet(ctx, name+"-statefulset", &appsv1.StatefulSetArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name:      pulumi.String(componentRabbitMQ),
			Namespace: args.Namespace,
			Labels:    stringMap(podLabels(componentRabbitMQ, tier)),
		},
		Spec: &appsv1.StatefulSetSpecArgs{
			Replicas:    pulumi.Int(1),
			ServiceName: pulumi.String(headlessName),
			Selector:    labelSelector(componentRabbitMQ),
			Template:    podTemplate(rabbitmqPodSpec(cfg, args.SingleNode, headlessName, data)),
			VolumeClaimTemplates: corev1.PersistentVolumeClaimTypeArray{
				volumeClaim("data", componentRabbitMQ, tier, cfg.Storage, cfg.StorageClass),
			},
		},
	}, pulumi.Parent(r), pulumi.DependsOn([]pulumi.Resource{cm, headless, sa}))
	if err != nil {
		return nil, fmt.Errorf("create rabbitmq statefulset: %w", err)
	}

	r.ServiceName = svc.Metadata.Name().Elem()
	if err := ctx.RegisterResourceOutputs(r, pulumi.Map{"serviceName": r.ServiceName}); err != nil {
		return nil, fmt.Errorf("register rabbitmq outputs: %w", err)
	}
	return r, nil
}

// rabbitmqConfigData returns the ConfigMap's files.
func rabbitmqConfigData() map[string]string {
	return map[string]string{
		"rabbitmq.conf": fmt.Sprintf(`listeners.tcp.default = %d
management.tcp.port = %d
log.console = true
log.console.level = info
log.file = false
disk_free_limit.absolute = 1GB
`, portAMQP, portManagement),
		"enabled_plugins": "[rabbitmq_management,rabbitmq_prometheus].\n",
	}
}

// rabbitmqPodSpec describes the broker's pod.
func rabbitmqPodSpec(cfg RabbitMQConfig, singleNode bool, headlessName string, configData map[string]string) podSpec {
	const dataDir = "/var/lib/rabbitmq"
	// The CLI tools in the probes start an Erlang VM, which takes a few seconds.
	diagnostics := func(check string) []string { return []string{"rabbitmq-diagnostics", "-q", check} }

	return podSpec{
		Component: componentRabbitMQ,
		Tier:      "broker",
		Image:     pulumi.String(cfg.Image),
		Ports: []namedPort{
			{"amqp", portAMQP}, {"management", portManagement}, {"epmd", portEPMD}, {"dist", portDist},
		},
		Env: corev1.EnvVarArray{
			fieldEnv("POD_NAME", "metadata.name"),
			fieldEnv("POD_NAMESPACE", "metadata.namespace"),
			literalEnv("RABBITMQ_USE_LONGNAME", "true"),
			literalEnv("RABBITMQ_NODENAME", fmt.Sprintf("rabbit@$(POD_NAME).%s.$(POD_NAMESPACE).svc.%s", headlessName, clusterDomain)),
		},
		Resources:     cfg.Resources,
		QoSClass:      cfg.QoSClass,
		Startup:       execProbe(diagnostics("ping"), 10, 10, 30),
		Liveness:      execProbe(diagnostics("ping"), 30, 15, 3),
		Readiness:     execProbe(diagnostics("check_port_connectivity"), 10, 10, 3),
		PriorityClass: priorityClassName(componentRabbitMQ),
		UID:           cfg.UID,
		Role:          roleStateful,
		SingleNode:    singleNode,
		// Time for the node to stop its queues and flush them to disk.
		TerminationGracePeriodSeconds: 60,
		// Erlang refuses a cookie file that others can read, and a Secret
		// volume under fsGroup is group-readable, so a copy with mode 0600
		// goes into the data directory, the rabbitmq user's home.
		InitContainers: []initContainer{{
			Name: "erlang-cookie",
			Command: []string{"sh", "-c", fmt.Sprintf(
				"cp /run/erlang-cookie/cookie %[1]s/.erlang.cookie && chmod 600 %[1]s/.erlang.cookie", dataDir)},
			VolumeMounts: corev1.VolumeMountArray{
				mount("erlang-cookie", "/run/erlang-cookie", true),
				mount("data", dataDir, false),
			},
		}},
		Volumes: corev1.VolumeArray{
			corev1.VolumeArgs{
				Name: pulumi.String("config"),
				Projected: &corev1.ProjectedVolumeSourceArgs{
					Sources: corev1.VolumeProjectionArray{
						corev1.VolumeProjectionArgs{ConfigMap: &corev1.ConfigMapProjectionArgs{
							Name: pulumi.String(rabbitmqConfigMap),
							Items: corev1.KeyToPathArray{
								corev1.KeyToPathArgs{Key: pulumi.String("rabbitmq.conf"), Path: pulumi.String("rabbitmq.conf")},
								corev1.KeyToPathArgs{Key: pulumi.String("enabled_plugins"), Path: pulumi.String("enabled_plugins")},
							},
						}},
						corev1.VolumeProjectionArgs{Secret: &corev1.SecretProjectionArgs{
							Name: pulumi.String(secretRabbitMQ),
							Items: corev1.KeyToPathArray{
								corev1.KeyToPathArgs{Key: pulumi.String(keyDefaultUserCnf), Path: pulumi.String("conf.d/10-default_user.conf")},
							},
						}},
					},
				},
			},
			corev1.VolumeArgs{
				Name: pulumi.String("erlang-cookie"),
				Secret: &corev1.SecretVolumeSourceArgs{
					SecretName: pulumi.String(secretCookie),
					Items: corev1.KeyToPathArray{
						corev1.KeyToPathArgs{Key: pulumi.String(keyCookie), Path: pulumi.String("cookie")},
					},
				},
			},
			emptyDirVolume("tmp", "", "256Mi"),
		},
		VolumeMounts: corev1.VolumeMountArray{
			mount("config", "/etc/rabbitmq", true),
			mount("data", dataDir, false),
			mount("tmp", "/tmp", false),
		},
		Annotations: map[string]string{"taskflow.dev/config-checksum": dataChecksum(configData)},
	}
}
