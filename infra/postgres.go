package main

import (
	"fmt"
	"strconv"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// postgresDataMount is the PVC's mount path. From major version 18 on, the
// postgres image expects its volume here and keeps the cluster in PGDATA, a
// subdirectory of it.
const postgresDataMount = "/var/lib/postgresql"

// PostgresArgs configures the Postgres component.
type PostgresArgs struct {
	// Namespace receives every object.
	Namespace pulumi.StringInput
	// Config holds the PostgreSQL settings.
	Config PostgresConfig
	// SingleNode turns the stateful-node requirement into a preference.
	SingleNode bool
}

// Postgres runs PostgreSQL as a one-replica StatefulSet with a PVC, behind
// a ClusterIP Service named "postgres" on 5432. Credentials come from the
// postgres-credentials Secret.
type Postgres struct {
	pulumi.ResourceState

	// ServiceName is the DNS name clients in the namespace connect to.
	ServiceName pulumi.StringOutput
}

// NewPostgres registers the Postgres component.
func NewPostgres(ctx *pulumi.Context, name string, args *PostgresArgs, opts ...pulumi.ResourceOption) (*Postgres, error) {
	p := &Postgres{}
	if err := ctx.RegisterComponentResource("taskflow:infra:Postgres", name, p, opts...); err != nil {
		return nil, fmt.Errorf("register postgres component: %w", err)
	}
	cfg := args.Config
	const tier = "database"
	ports := []namedPort{{"postgres", portPostgres}}

	// Services: a headless one that governs the StatefulSet's pod DNS
	// names, and the ClusterIP one that clients use.
	headless, err := newService(ctx, serviceSpec{Name: componentPostgres + "-headless", Component: componentPostgres, Tier: tier, Ports: ports, Headless: true}, args.Namespace, p)
	if err != nil {
		return nil, err
	}
	svc, err := newService(ctx, serviceSpec{Name: componentPostgres, Component: componentPostgres, Tier: tier, Ports: ports}, args.Namespace, p)
	if err != nil {
		return nil, err
	}
	sa, err := newServiceAccount(ctx, componentPostgres, tier, args.Namespace, p)
	if err != nil {
		return nil, err
	}

	// Pod. pg_isready checks that the server accepts connections; the
	// startup probe gives initdb on a fresh volume up to 5 minutes.
	ready := []string{"pg_isready", "-h", "127.0.0.1", "-p", strconv.Itoa(portPostgres), "-U", cfg.Username, "-d", cfg.Database}
	spec := podSpec{
		Component: componentPostgres,
		Tier:      tier,
		Image:     pulumi.String(cfg.Image),
		Ports:     ports,
		Env: corev1.EnvVarArray{
			secretEnv("POSTGRES_USER", secretPostgres, keyUsername),
			secretEnv("POSTGRES_PASSWORD", secretPostgres, keyPassword),
			secretEnv("POSTGRES_DB", secretPostgres, keyDatabase),
			literalEnv("PGDATA", cfg.PGData),
		},
		Resources:     cfg.Resources,
		QoSClass:      cfg.QoSClass,
		Startup:       execProbe(ready, 5, 3, 60),
		Liveness:      execProbe(ready, 10, 5, 6),
		Readiness:     execProbe(ready, 5, 3, 3),
		PriorityClass: priorityClassName(componentPostgres),
		UID:           cfg.UID,
		Role:          roleStateful,
		SingleNode:    args.SingleNode,
		// A fast shutdown checkpoints and closes connections cleanly.
		TerminationGracePeriodSeconds: 60,
		Volumes: corev1.VolumeArray{
			// The server's Unix socket and lock file.
			emptyDirVolume("run", "", "16Mi"),
			emptyDirVolume("tmp", "", "256Mi"),
			// Dynamic shared memory; a container's default /dev/shm is 64 MB.
			emptyDirVolume("shm", "Memory", "256Mi"),
		},
		VolumeMounts: corev1.VolumeMountArray{
			mount("data", postgresDataMount, false),
			mount("run", "/var/run/postgresql", false),
			mount("tmp", "/tmp", false),
			mount("shm", "/dev/shm", false),
		},
	}

	_, err = appsv1.NewStatefulSet(ctx, name+"-statefulset", &appsv1.StatefulSetArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name:      pulumi.String(componentPostgres),
			Namespace: args.Namespace,
			Labels:    stringMap(podLabels(componentPostgres, tier)),
		},
		Spec: &appsv1.StatefulSetSpecArgs{
			Replicas:    pulumi.Int(1),
			ServiceName: pulumi.String(componentPostgres + "-headless"),
			Selector:    labelSelector(componentPostgres),
			Template:    podTemplate(spec),
			VolumeClaimTemplates: corev1.PersistentVolumeClaimTypeArray{
				volumeClaim("data", componentPostgres, tier, cfg.Storage, cfg.StorageClass),
			},
		},
	}, pulumi.Parent(p), pulumi.DependsOn([]pulumi.Resource{headless, sa}))
	if err != nil {
		return nil, fmt.Errorf("create postgres statefulset: %w", err)
	}

	p.ServiceName = svc.Metadata.Name().Elem()
	if err := ctx.RegisterResourceOutputs(p, pulumi.Map{"serviceName": p.ServiceName}); err != nil {
		return nil, fmt.Errorf("register postgres outputs: %w", err)
	}
	return p, nil
}

// volumeClaim is a ReadWriteOnce claim template of size; an empty
// storageClass uses the cluster's default StorageClass.
func volumeClaim(name, component, tier, size, storageClass string) corev1.PersistentVolumeClaimTypeArgs {
	spec := &corev1.PersistentVolumeClaimSpecArgs{
		AccessModes: pulumi.ToStringArray([]string{"ReadWriteOnce"}),
		Resources: &corev1.VolumeResourceRequirementsArgs{
			Requests: pulumi.StringMap{"storage": pulumi.String(size)},
		},
	}
	if storageClass != "" {
		spec.StorageClassName = pulumi.String(storageClass)
	}
	return corev1.PersistentVolumeClaimTypeArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name:   pulumi.String(name),
			Labels: stringMap(podLabels(component, tier)),
		},
		Spec: spec,
	}
}
