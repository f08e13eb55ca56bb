package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Container ports.
const (
	portPostgres   = 5432
	portAMQP       = 5672
	portManagement = 15672
	portEPMD       = 4369
	portDist       = 25672
	portAPI        = 5000
	portWorker     = 9000
	portMonitor    = 5555
)

// hostnameTopologyKey is the well-known node label that spreads pods per node.
const hostnameTopologyKey = "kubernetes.io/hostname"

// podSpec describes the pod of one component. podTemplate turns it into a
// template that passes Pod Security "restricted".
type podSpec struct {
	// Component names the pod's labels, container and service account.
	Component string
	// Tier is the app.kubernetes.io/component label.
	Tier string
	// Image is the main container's image reference.
	Image pulumi.StringInput
	// Command replaces the image's entrypoint when set.
	Command []string
	// Ports are the main container's named ports.
	Ports []namedPort
	// Env is the main container's environment. Order matters because a
	// $(VAR) reference expands only variables listed before it.
	Env corev1.EnvVarArray
	// EnvFrom imports whole ConfigMaps.
	EnvFrom corev1.EnvFromSourceArray
	// Resources apply to the main container and to every init container.
	Resources Resources
	// QoSClass is the declared class, recorded in the qosAnnotation.
	QoSClass string
	// Probes of the main container; nil leaves a probe out.
	Startup, Liveness, Readiness *corev1.ProbeArgs
	// PriorityClass is the PriorityClass name.
	PriorityClass string
	// UID runs every container as this user and group, and owns volumes.
	UID int
	// Role is the node role the pod belongs on.
	Role string
	// SingleNode turns the role requirement into a preference.
	SingleNode bool
	// AntiAffinity prefers nodes without another pod of the component.
	AntiAffinity bool
	// TopologySpread spreads the component's pods over nodes.
	TopologySpread corev1.TopologySpreadConstraintArray
	// TerminationGracePeriodSeconds is how long the kubelet waits after
	// SIGTERM. Zero keeps the Kubernetes default of 30.
	TerminationGracePeriodSeconds int
	// InitContainers run before the main container with its security
	// context and resources.
	InitContainers []initContainer
	// Volumes and VolumeMounts of the pod and its main container.
	Volumes      corev1.VolumeArray
	VolumeMounts corev1.VolumeMountArray
	// Annotations are added to the pod template.
	Annotations map[string]string
}

// namedPort is a container port with its name.
type namedPort struct {
	Name string
	Port int
}

// initContainer is an init container that shares the main container's
// image, security context and resources.
type initContainer struct {
	Name         string
	Command      []string
	VolumeMounts corev1.VolumeMountArray
}

// podTemplate builds the pod template of spec.
func podTemplate(spec podSpec) *corev1.PodTemplateSpecArgs {
	annotations := map[string]string{qosAnnotation: spec.QoSClass}
	for k, v := range spec.Annotations {
		annotations[k] = v
	}

	var initContainers corev1.ContainerArray
	for _, ic := range spec.InitContainers {
		initContainers = append(initContainers, corev1.ContainerArgs{
			Name:            pulumi.String(ic.Name),
			Image:           spec.Image,
			Command:         pulumi.ToStringArray(ic.Command),
			Resources:       resourceRequirements(spec.Resources),
			SecurityContext: restrictedContainerSecurityContext(spec.UID),
			VolumeMounts:    ic.VolumeMounts,
		})
	}

	var ports corev1.ContainerPortArray
	for _, p := range spec.Ports {
		ports = append(ports, corev1.ContainerPortArgs{
			Name:          pulumi.String(p.Name),
			ContainerPort: pulumi.Int(p.Port),
			Protocol:      pulumi.String("TCP"),
		})
	}
	main := corev1.ContainerArgs{
		Name:            pulumi.String(spec.Component),
		Image:           spec.Image,
		ImagePullPolicy: pulumi.String("IfNotPresent"),
		Ports:           ports,
		Env:             spec.Env,
		EnvFrom:         spec.EnvFrom,
		Resources:       resourceRequirements(spec.Resources),
		SecurityContext: restrictedContainerSecurityContext(spec.UID),
		StartupProbe:    spec.Startup,
		LivenessProbe:   spec.Liveness,
		ReadinessProbe:  spec.Readiness,
		VolumeMounts:    spec.VolumeMounts,
	}
	if len(spec.Command) > 0 {
		main.Command = pulumi.ToStringArray(spec.Command)
	}

	pod := &corev1.PodSpecArgs{
		ServiceAccountName: pulumi.String(spec.Component),
		// No tier talks to the Kubernetes API.
		AutomountServiceAccountToken: pulumi.Bool(false),
		// Service links would put variables such as RABBITMQ_PORT into
		// every pod, and RabbitMQ reads RABBITMQ_* variables as settings.
		EnableServiceLinks:        pulumi.Bool(false),
		PriorityClassName:         pulumi.String(spec.PriorityClass),
		SecurityContext:           restrictedPodSecurityContext(spec.UID),
		Affinity:                  affinity(spec),
		Tolerations:               tolerations(spec),
		TopologySpreadConstraints: spec.TopologySpread,
		InitContainers:            initContainers,
		Containers:                corev1.ContainerArray{main},
		Volumes:                   spec.Volumes,
	}
	if spec.TerminationGracePeriodSeconds > 0 {
		pod.TerminationGracePeriodSeconds = pulumi.Int(spec.TerminationGracePeriodSeconds)
	}

	return &corev1.PodTemplateSpecArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Labels:      stringMap(podLabels(spec.Component, spec.Tier)),
			Annotations: stringMap(annotations),
		},
		Spec: pod,
	}
}

// restrictedPodSecurityContext satisfies Pod Security "restricted" at pod
// level: non-root, RuntimeDefault seccomp, and volumes owned by uid's group.
func restrictedPodSecurityContext(uid int) *corev1.PodSecurityContextArgs {
	return &corev1.PodSecurityContextArgs{
		RunAsNonRoot: pulumi.Bool(true),
		RunAsUser:    pulumi.Int(uid),
		RunAsGroup:   pulumi.Int(uid),
		FsGroup:      pulumi.Int(uid),
		// The kubelet then sets ownership only on a fresh volume, instead of
		// walking the whole volume on every start and adding group write to
		// every file, PostgreSQL's data files included.
		FsGroupChangePolicy: pulumi.String("OnRootMismatch"),
		SeccompProfile:      &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
	}
}

// restrictedContainerSecurityContext satisfies Pod Security "restricted"
// per container and makes the root filesystem read-only. Every image here
// writes only to mounted volumes.
func restrictedContainerSecurityContext(uid int) *corev1.SecurityContextArgs {
	return &corev1.SecurityContextArgs{
		RunAsNonRoot:             pulumi.Bool(true),
		RunAsUser:                pulumi.Int(uid),
		RunAsGroup:               pulumi.Int(uid),
		AllowPrivilegeEscalation: pulumi.Bool(false),
		ReadOnlyRootFilesystem:   pulumi.Bool(true),
		Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.ToStringArray([]string{"ALL"})},
		SeccompProfile:           &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
	}
}

// resourceRequirements converts r, leaving out empty quantities.
func resourceRequirements(r Resources) *corev1.ResourceRequirementsArgs {
	list := func(l ResourceList) pulumi.StringMap {
		m := pulumi.StringMap{}
		if l.CPU != "" {
			m["cpu"] = pulumi.String(l.CPU)
		}
		if l.Memory != "" {
			m["memory"] = pulumi.String(l.Memory)
		}
		return m
	}
	return &corev1.ResourceRequirementsArgs{Requests: list(r.Requests), Limits: list(r.Limits)}
}

// affinity requires the pod's node role, or prefers it in single-node mode,
// and optionally prefers nodes without another pod of the same component.
func affinity(spec podSpec) *corev1.AffinityArgs {
	term := corev1.NodeSelectorTermArgs{
		MatchExpressions: corev1.NodeSelectorRequirementArray{
			corev1.NodeSelectorRequirementArgs{
				Key:      pulumi.String(roleLabel),
				Operator: pulumi.String("In"),
				Values:   pulumi.ToStringArray([]string{spec.Role}),
			},
		},
	}
	node := &corev1.NodeAffinityArgs{}
	if spec.SingleNode {
		node.PreferredDuringSchedulingIgnoredDuringExecution = corev1.PreferredSchedulingTermArray{
			corev1.PreferredSchedulingTermArgs{Weight: pulumi.Int(100), Preference: term},
		}
	} else {
		node.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelectorArgs{
			NodeSelectorTerms: corev1.NodeSelectorTermArray{term},
		}
	}

	a := &corev1.AffinityArgs{NodeAffinity: node}
	if spec.AntiAffinity {
		a.PodAntiAffinity = &corev1.PodAntiAffinityArgs{
			PreferredDuringSchedulingIgnoredDuringExecution: corev1.WeightedPodAffinityTermArray{
				corev1.WeightedPodAffinityTermArgs{
					Weight: pulumi.Int(100),
					PodAffinityTerm: corev1.PodAffinityTermArgs{
						LabelSelector: labelSelector(spec.Component),
						TopologyKey:   pulumi.String(hostnameTopologyKey),
					},
				},
			},
		}
	}
	return a
}

// tolerations lets stateful pods onto the tainted stateful nodes.
func tolerations(spec podSpec) corev1.TolerationArray {
	if spec.Role != roleStateful {
		return nil
	}
	return corev1.TolerationArray{
		corev1.TolerationArgs{
			Key:      pulumi.String(roleLabel),
			Operator: pulumi.String("Equal"),
			Value:    pulumi.String(roleStateful),
			Effect:   pulumi.String("NoSchedule"),
		},
	}
}

// labelSelector selects the pods of component.
func labelSelector(component string) *metav1.LabelSelectorArgs {
	return &metav1.LabelSelectorArgs{MatchLabels: stringMap(selectorLabels(component))}
}

// hostnameSpread spreads a component's pods evenly over nodes.
// matchLabelKeys counts only pods of the same ReplicaSet, so a rolling
// update does not skew the spread.
func hostnameSpread(component, whenUnsatisfiable string) corev1.TopologySpreadConstraintArray {
	return corev1.TopologySpreadConstraintArray{
		corev1.TopologySpreadConstraintArgs{
			MaxSkew:           pulumi.Int(1),
			TopologyKey:       pulumi.String(hostnameTopologyKey),
			WhenUnsatisfiable: pulumi.String(whenUnsatisfiable),
			LabelSelector:     labelSelector(component),
			MatchLabelKeys:    pulumi.ToStringArray([]string{"pod-template-hash"}),
		},
	}
}

// httpProbe probes GET path on the named port.
func httpProbe(path, port string, periodSeconds, failureThreshold int) *corev1.ProbeArgs {
	return &corev1.ProbeArgs{
		HttpGet: &corev1.HTTPGetActionArgs{
			Path: pulumi.String(path),
			Port: pulumi.String(port),
		},
		PeriodSeconds:    pulumi.Int(periodSeconds),
		TimeoutSeconds:   pulumi.Int(2),
		FailureThreshold: pulumi.Int(failureThreshold),
	}
}

// execProbe runs command in the container.
func execProbe(command []string, periodSeconds, timeoutSeconds, failureThreshold int) *corev1.ProbeArgs {
	return &corev1.ProbeArgs{
		Exec:             &corev1.ExecActionArgs{Command: pulumi.ToStringArray(command)},
		PeriodSeconds:    pulumi.Int(periodSeconds),
		TimeoutSeconds:   pulumi.Int(timeoutSeconds),
		FailureThreshold: pulumi.Int(failureThreshold),
	}
}

// literalEnv sets a plain variable.
func literalEnv(name, value string) corev1.EnvVarArgs {
	return corev1.EnvVarArgs{Name: pulumi.String(name), Value: pulumi.String(value)}
}

// secretEnv reads a variable from a Secret key, so the value never
// appears in the pod spec.
func secretEnv(name, secret, key string) corev1.EnvVarArgs {
	return corev1.EnvVarArgs{
		Name: pulumi.String(name),
		ValueFrom: &corev1.EnvVarSourceArgs{
			SecretKeyRef: &corev1.SecretKeySelectorArgs{Name: pulumi.String(secret), Key: pulumi.String(key)},
		},
	}
}

// fieldEnv reads a variable from the pod's own metadata through the downward API.
func fieldEnv(name, fieldPath string) corev1.EnvVarArgs {
	return corev1.EnvVarArgs{
		Name: pulumi.String(name),
		ValueFrom: &corev1.EnvVarSourceArgs{
			FieldRef: &corev1.ObjectFieldSelectorArgs{FieldPath: pulumi.String(fieldPath)},
		},
	}
}

// emptyDirVolume is a scratch volume; sizeLimit may be empty.
func emptyDirVolume(name, medium, sizeLimit string) corev1.VolumeArgs {
	dir := &corev1.EmptyDirVolumeSourceArgs{}
	if medium != "" {
		dir.Medium = pulumi.String(medium)
	}
	if sizeLimit != "" {
		dir.SizeLimit = pulumi.String(sizeLimit)
	}
	return corev1.VolumeArgs{Name: pulumi.String(name), EmptyDir: dir}
}

// mount mounts volume name at path.
func mount(name, path string, readOnly bool) corev1.VolumeMountArgs {
	return corev1.VolumeMountArgs{Name: pulumi.String(name), MountPath: pulumi.String(path), ReadOnly: pulumi.Bool(readOnly)}
}

// dataChecksum returns a stable hash of a ConfigMap's data. As a pod
// template annotation it rolls the pods when the data changes, because a
// running container never rereads variables taken from a ConfigMap.
func dataChecksum(data map[string]string) string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, data[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// newServiceAccount creates the component's own service account, which
// mounts no API token.
func newServiceAccount(ctx *pulumi.Context, component, tier string, namespace pulumi.StringInput, parent pulumi.Resource) (*corev1.ServiceAccount, error) {
	sa, err := corev1.NewServiceAccount(ctx, component+"-sa", &corev1.ServiceAccountArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name:      pulumi.String(component),
			Namespace: namespace,
			Labels:    stringMap(podLabels(component, tier)),
		},
		AutomountServiceAccountToken: pulumi.Bool(false),
	}, pulumi.Parent(parent))
	if err != nil {
		return nil, fmt.Errorf("create service account %s: %w", component, err)
	}
	return sa, nil
}

// serviceSpec describes a Service in front of one component.
type serviceSpec struct {
	// Name is the Service name and DNS name.
	Name string
	// Component is the component whose pods it selects.
	Component string
	// Tier is the app.kubernetes.io/component label.
	Tier string
	// Ports are exposed on the same numbers as the container ports.
	Ports []namedPort
	// Headless gives each pod a stable DNS name instead of a virtual IP.
	Headless bool
}

// newService creates a Service for spec.
func newService(ctx *pulumi.Context, spec serviceSpec, namespace pulumi.StringInput, parent pulumi.Resource) (*corev1.Service, error) {
	var ports corev1.ServicePortArray
	for _, p := range spec.Ports {
		ports = append(ports, corev1.ServicePortArgs{
			Name:       pulumi.String(p.Name),
			Port:       pulumi.Int(p.Port),
			TargetPort: pulumi.String(p.Name),
			Protocol:   pulumi.String("TCP"),
		})
	}
	args := &corev1.ServiceSpecArgs{
		Type:     pulumi.String("ClusterIP"),
		Selector: stringMap(selectorLabels(spec.Component)),
		Ports:    ports,
	}
	if spec.Headless {
		args.ClusterIP = pulumi.String("None")
		// Peers must resolve a pod's name before it is ready, for example
		// while a RabbitMQ node boots under its own DNS name.
		args.PublishNotReadyAddresses = pulumi.Bool(true)
	}

	svc, err := corev1.NewService(ctx, spec.Name+"-svc", &corev1.ServiceArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name:      pulumi.String(spec.Name),
			Namespace: namespace,
			Labels:    stringMap(podLabels(spec.Component, spec.Tier)),
		},
		Spec: args,
	}, pulumi.Parent(parent))
	if err != nil {
		return nil, fmt.Errorf("create service %s: %w", spec.Name, err)
	}
	return svc, nil
}

// newDeployment creates the service account and Deployment of a stateless component.
func newDeployment(ctx *pulumi.Context, spec podSpec, replicas int, namespace pulumi.StringInput, parent pulumi.Resource, deps ...pulumi.Resource) (*appsv1.Deployment, error) {
	sa, err := newServiceAccount(ctx, spec.Component, spec.Tier, namespace, parent)
	if err != nil {
		return nil, err
	}
	d, err := appsv1.NewDeployment(ctx, spec.Component+"-deployment", &appsv1.DeploymentArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name:      pulumi.String(spec.Component),
			Namespace: namespace,
			Labels:    stringMap(podLabels(spec.Component, spec.Tier)),
		},
		Spec: &appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(replicas),
			Selector: labelSelector(spec.Component),
			Template: podTemplate(spec),
		},
	}, pulumi.Parent(parent), pulumi.DependsOn(append([]pulumi.Resource{sa}, deps...)))
	if err != nil {
		return nil, fmt.Errorf("create deployment %s: %w", spec.Component, err)
	}
	return d, nil
}

// connectionEnv returns DATABASE_URL and RABBITMQ_URL from the credential
// Secrets. Both URLs are built with percent-encoded credentials when the
// Secrets are created, so any password works in them.
func connectionEnv() corev1.EnvVarArray {
	return corev1.EnvVarArray{
		secretEnv("DATABASE_URL", secretPostgres, keyDatabaseURL),
		secretEnv("RABBITMQ_URL", secretRabbitMQ, keyAMQPURL),
	}
}
