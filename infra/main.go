// Command infra is the taskflow Pulumi program: it declares the whole
// cluster (namespace, node roles, PostgreSQL, RabbitMQ, worker, api,
// monitor, autoscaling, ingress with TLS, policies and addons) from one
// typed Config.
package main

import (
	"slices"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		cfg, err := loadConfig(ctx)
		if err != nil {
			return err
		}
		// Building stays out of deploy, so tests under mocks never run it.
		cfg.Images, err = buildImages(ctx, cfg)
		if err != nil {
			return err
		}
		out, err := deploy(ctx, cfg)
		if err != nil {
			return err
		}
		out.export(ctx)
		return nil
	})
}

// Outputs are the stack outputs.
type Outputs struct {
	// Namespace is the workloads' namespace.
	Namespace pulumi.StringOutput
	// URLs maps "api" and "monitor" to their external URLs.
	URLs pulumi.StringMapOutput
	// CACertificate is the PEM certificate that signs the ingress
	// certificate, or empty when it is not exported.
	CACertificate pulumi.StringOutput
	// Images are the image references the Deployments run.
	Images Images
	// Secrets gives tests access to the generated credentials.
	Secrets *Secrets
}

// deploy declares every resource of the stack for cfg. main calls it with
// the loaded config, and tests call it under Pulumi mocks.
func deploy(ctx *pulumi.Context, cfg Config) (*Outputs, error) {
	provider, err := newProvider(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// Components pass the provider on to their children.
	opts := []pulumi.ResourceOption{pulumi.Providers(provider)}
	after := func(deps ...pulumi.Resource) []pulumi.ResourceOption {
		return append([]pulumi.ResourceOption{pulumi.DependsOn(deps)}, opts...)
	}

	// Cluster-wide objects and addons.
	nodes, err := NewNodeRoles(ctx, "nodes", &NodeRolesArgs{Nodes: cfg.Nodes}, opts...)
	if err != nil {
		return nil, err
	}
	cluster, err := NewCluster(ctx, "cluster", &ClusterArgs{Namespace: cfg.Namespace}, opts...)
	if err != nil {
		return nil, err
	}
	addons, err := NewAddons(ctx, "addons", &AddonsArgs{Config: cfg}, opts...)
	if err != nil {
		return nil, err
	}
	ns := cluster.Namespace
	secrets, err := NewSecrets(ctx, "secrets", &SecretsArgs{Namespace: ns, Config: cfg}, opts...)
	if err != nil {
		return nil, err
	}

	// Data tiers. Pods need their node labels, priority classes and
	// credentials before they can start.
	base := []pulumi.Resource{nodes, cluster, secrets}
	postgres, err := NewPostgres(ctx, "postgres", &PostgresArgs{Namespace: ns, Config: cfg.Postgres, SingleNode: cfg.Nodes.SingleNode}, after(base...)...)
	if err != nil {
		return nil, err
	}
	rabbitmq, err := NewRabbitMQ(ctx, "rabbitmq", &RabbitMQArgs{Namespace: ns, Config: cfg.RabbitMQ, SingleNode: cfg.Nodes.SingleNode}, after(base...)...)
	if err != nil {
		return nil, err
	}

	// Services. Their readiness probes pass only once both data tiers serve.
	images := resolveImages(cfg.Images)
	services := slices.Concat(base, []pulumi.Resource{postgres, rabbitmq})
	worker, err := NewWorker(ctx, "worker", &WorkerArgs{Namespace: ns, Image: images.Worker, Config: cfg}, after(services...)...)
	if err != nil {
		return nil, err
	}
	api, err := NewAPI(ctx, "api", &APIArgs{Namespace: ns, Image: images.API, Config: cfg}, after(services...)...)
	if err != nil {
		return nil, err
	}
	monitor, err := NewMonitor(ctx, "monitor", &MonitorArgs{Namespace: ns, Image: images.Monitor, Config: cfg}, after(services...)...)
	if err != nil {
		return nil, err
	}

	// Scaling, routing and hardening.
	_, err = NewAutoscaling(ctx, "autoscaling", &AutoscalingArgs{
		Namespace:        ns,
		WorkerDeployment: worker.DeploymentName,
		APIDeployment:    api.DeploymentName,
		Config:           cfg,
		KEDAReady:        addons.KEDA,
	}, opts...)
	if err != nil {
		return nil, err
	}
	ingress, err := NewIngress(ctx, "ingress", &IngressArgs{
		Namespace:        ns,
		APIService:       api.ServiceName,
		MonitorService:   monitor.ServiceName,
		Config:           cfg,
		CertManagerReady: addons.CertManager,
		ControllerReady:  addons.IngressNginx,
	}, opts...)
	if err != nil {
		return nil, err
	}
	if _, err := NewPolicy(ctx, "policy", &PolicyArgs{Namespace: ns, Config: cfg}, opts...); err != nil {
		return nil, err
	}

	return &Outputs{
		Namespace:     ns,
		URLs:          ingress.URLs,
		CACertificate: ingress.CACertificate,
		Images:        images,
		Secrets:       secrets,
	}, nil
}

// export publishes the stack outputs.
func (o *Outputs) export(ctx *pulumi.Context) {
	ctx.Export("namespace", o.Namespace)
	ctx.Export("apiUrl", o.URLs.MapIndex(pulumi.String("api")))
	ctx.Export("monitorUrl", o.URLs.MapIndex(pulumi.String("monitor")))
	ctx.Export("caCertificate", o.CACertificate)
	ctx.Export("images", pulumi.StringMap{
		componentAPI:     o.Images.API,
		componentWorker:  o.Images.Worker,
		componentMonitor: o.Images.Monitor,
	})
}
