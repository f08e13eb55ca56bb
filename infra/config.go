package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// configNamespace is the Pulumi config namespace of every key below, as in
// `pulumi config set taskflow:namespace workflow`.
const configNamespace = "taskflow"

// renderDirEnv names the environment variable that switches the program into
// render mode. It takes precedence over the kubernetes.renderDir config key.
const renderDirEnv = "TASKFLOW_RENDER_DIR"

// Config is the whole stack configuration. loadConfig fills it from Pulumi
// config on top of defaultConfig; tests build it directly. Every field has a
// default, except Secrets.Seed, which each stack must set as a secret.
type Config struct {
	// Namespace is the Kubernetes namespace of every workload. Default "workflow".
	Namespace string `json:"namespace"`
	// Kubernetes selects the cluster or the render directory.
	Kubernetes KubernetesConfig `json:"kubernetes"`
	// Nodes assigns node roles. Kind names its nodes <cluster>-control-plane,
	// <cluster>-worker, <cluster>-worker2 and so on.
	Nodes NodesConfig `json:"nodes"`
	// Images holds the image reference of each service.
	Images ImagesConfig `json:"images"`
	// App holds settings that api, worker and monitor share.
	App AppConfig `json:"app"`
	// Postgres configures the PostgreSQL StatefulSet.
	Postgres PostgresConfig `json:"postgres"`
	// RabbitMQ configures the RabbitMQ StatefulSet.
	RabbitMQ RabbitMQConfig `json:"rabbitmq"`
	// Worker configures the worker Deployment and its backpressure settings.
	Worker WorkerConfig `json:"worker"`
	// API configures the api Deployment.
	API APIConfig `json:"api"`
	// Monitor configures the monitor Deployment.
	Monitor MonitorConfig `json:"monitor"`
	// Autoscaling configures the worker's ScaledObject or HPA.
	Autoscaling AutoscalingConfig `json:"autoscaling"`
	// Ingress configures the Ingress and its cert-manager TLS chain.
	Ingress IngressConfig `json:"ingress"`
	// Addons toggles the Helm releases of cluster addons.
	Addons AddonsConfig `json:"addons"`
	// Secrets holds the secret inputs. They are never read from JSON.
	Secrets SecretsConfig `json:"-"`
}

// KubernetesConfig selects where the objects go.
type KubernetesConfig struct {
	// Context is the kubeconfig context to use. Empty uses the current context.
	Context string `json:"context"`
	// RenderDir, when set, makes the provider write YAML manifests into this
	// directory instead of applying them. The TASKFLOW_RENDER_DIR variable
	// overrides it. Secrets are written there in plain text.
	RenderDir string `json:"renderDir"`
}

// NodesConfig lists the cluster's nodes by role.
type NodesConfig struct {
	// SingleNode turns the role rules into scheduling preferences and sets no
	// taint, for one-node clusters such as minikube. Default false.
	SingleNode bool `json:"singleNode"`
	// Stateful lists the nodes labelled role=stateful. Outside single-node
	// mode they are also tainted role=stateful:NoSchedule.
	Stateful []string `json:"stateful"`
	// Stateless lists the nodes labelled role=stateless.
	Stateless []string `json:"stateless"`
}

// AppConfig holds settings shared by the services.
type AppConfig struct {
	// TaskQueue is the RabbitMQ work queue. Default "tasks".
	TaskQueue string `json:"taskQueue"`
	// LogLevel is passed as LOG_LEVEL. Default "info".
	LogLevel string `json:"logLevel"`
}

// Resources holds a container's requests and limits as Kubernetes quantities.
type Resources struct {
	// Requests are the amounts the scheduler reserves for the container.
	Requests ResourceList `json:"requests"`
	// Limits are the caps the kubelet enforces.
	Limits ResourceList `json:"limits"`
}

// ResourceList holds a CPU and a memory quantity, such as "500m" and "512Mi".
// An empty string leaves that resource unset.
type ResourceList struct {
	// CPU in cores or millicores.
	CPU string `json:"cpu"`
	// Memory in bytes with an optional binary or decimal suffix.
	Memory string `json:"memory"`
}

// PostgresConfig configures PostgreSQL.
type PostgresConfig struct {
	// Image is the PostgreSQL image. Default "postgres:18-alpine".
	Image string `json:"image"`
	// UID is the image's postgres user id: 70 on Alpine images, 999 on Debian ones.
	UID int `json:"uid"`
	// PGData is the cluster directory, a subdirectory of the volume mounted
	// at /var/lib/postgresql. Default "/var/lib/postgresql/18/docker", the
	// layout of the postgres 18 images; keep the major version in step with Image.
	PGData string `json:"pgdata"`
	// Storage is the PVC size. Default "20Gi".
	Storage string `json:"storage"`
	// StorageClass is the PVC storage class. Empty uses the cluster default.
	StorageClass string `json:"storageClass"`
	// Database is the database name. Default "taskflow".
	Database string `json:"database"`
	// Username is the database owner. Default "taskflow".
	Username string `json:"username"`
	// Resources default to 1 CPU and 2Gi for both requests and limits.
	Resources Resources `json:"resources"`
	// QoSClass is the class the resources must produce. Default "Guaranteed".
	QoSClass string `json:"qosClass"`
}

// RabbitMQConfig configures RabbitMQ.
type RabbitMQConfig struct {
	// Image is the RabbitMQ image with the management plugin.
	// Default "rabbitmq:4.1-management".
	Image string `json:"image"`
	// UID is the image's rabbitmq user id: 999 on the Ubuntu-based images.
	UID int `json:"uid"`
	// Storage is the PVC size. Default "10Gi".
	Storage string `json:"storage"`
	// StorageClass is the PVC storage class. Empty uses the cluster default.
	StorageClass string `json:"storageClass"`
	// Username is the default user. Default "taskflow".
	Username string `json:"username"`
	// Resources default to requests 250m/512Mi and limits 500m/1Gi.
	Resources Resources `json:"resources"`
	// QoSClass is the class the resources must produce. Default "Burstable".
	QoSClass string `json:"qosClass"`
}

// WorkerConfig configures the worker and the backpressure ConfigMap it reads.
type WorkerConfig struct {
	// Replicas is the Deployment's initial replica count. Default 3.
	Replicas int `json:"replicas"`
	// Resources default to requests 500m/512Mi and limits 1/1Gi.
	Resources Resources `json:"resources"`
	// QoSClass is the class the resources must produce. Default "Burstable".
	QoSClass string `json:"qosClass"`
	// Concurrency is WORKER_CONCURRENCY, the tasks run at once per pod. Default 8.
	Concurrency int `json:"concurrency"`
	// Prefetch is WORKER_PREFETCH. Zero means equal to Concurrency.
	Prefetch int `json:"prefetch"`
	// RetryBaseDelay is RETRY_BASE_DELAY as a Go duration. Default "1s".
	RetryBaseDelay string `json:"retryBaseDelay"`
	// RetryMaxDelay is RETRY_MAX_DELAY as a Go duration. Default "5m".
	RetryMaxDelay string `json:"retryMaxDelay"`
	// DefaultMaxRetries is DEFAULT_MAX_RETRIES. Default 3.
	DefaultMaxRetries int `json:"defaultMaxRetries"`
	// DeliveryLimit is DELIVERY_LIMIT, the quorum queue's x-delivery-limit. Default 10.
	DeliveryLimit int `json:"deliveryLimit"`
	// DrainTimeout is WORKER_DRAIN_TIMEOUT as a Go duration. Default "25s".
	DrainTimeout string `json:"drainTimeout"`
	// TerminationGracePeriodSeconds must exceed DrainTimeout so the kubelet
	// does not kill a draining worker. Default 40.
	TerminationGracePeriodSeconds int `json:"terminationGracePeriodSeconds"`
	// SpreadWhenUnsatisfiable is the topology spread constraint's
	// whenUnsatisfiable: "ScheduleAnyway" (default) or "DoNotSchedule".
	SpreadWhenUnsatisfiable string `json:"spreadWhenUnsatisfiable"`
}

// APIConfig configures the api.
type APIConfig struct {
	// Replicas is the Deployment's initial replica count. Default 2.
	Replicas int `json:"replicas"`
	// Resources default to requests 300m/256Mi and limits 500m/512Mi.
	Resources Resources `json:"resources"`
	// QoSClass is the class the resources must produce. Default "Burstable".
	QoSClass string `json:"qosClass"`
	// HPA configures the optional CPU autoscaler. Off by default.
	HPA HPAConfig `json:"hpa"`
}

// HPAConfig configures a CPU HorizontalPodAutoscaler.
type HPAConfig struct {
	// Enabled creates the HPA. Default false.
	Enabled bool `json:"enabled"`
	// MinReplicas defaults to 2.
	MinReplicas int `json:"minReplicas"`
	// MaxReplicas defaults to 5.
	MaxReplicas int `json:"maxReplicas"`
	// CPUUtilization is the target average CPU in percent of requests. Default 70.
	CPUUtilization int `json:"cpuUtilization"`
}

// MonitorConfig configures the monitor.
type MonitorConfig struct {
	// Replicas is the Deployment's replica count. Default 1.
	Replicas int `json:"replicas"`
	// Resources default to requests 100m/128Mi and limits 300m/256Mi.
	Resources Resources `json:"resources"`
	// QoSClass is the class the resources must produce. Default "Burstable".
	QoSClass string `json:"qosClass"`
	// URLPrefix is URL_PREFIX, the path the monitor serves under and the
	// Ingress routes to it. Default "/flower".
	URLPrefix string `json:"urlPrefix"`
}

// AutoscalingConfig configures the worker's autoscaler.
type AutoscalingConfig struct {
	// KEDA selects a KEDA ScaledObject on queue length and CPU. When false a
	// plain autoscaling/v2 HPA on CPU scales the worker. Default true.
	KEDA bool `json:"keda"`
	// MinReplicas defaults to 3.
	MinReplicas int `json:"minReplicas"`
	// MaxReplicas defaults to 10.
	MaxReplicas int `json:"maxReplicas"`
	// MessagesPerReplica is the queue length one worker should carry, ready
	// plus unacknowledged messages. Default 20.
	MessagesPerReplica int `json:"messagesPerReplica"`
	// CPUUtilization is the target average CPU in percent of requests. Default 70.
	CPUUtilization int `json:"cpuUtilization"`
	// PollingIntervalSeconds is how often KEDA reads the queue. Default 15.
	PollingIntervalSeconds int `json:"pollingIntervalSeconds"`
	// ScaleDownStabilizationSeconds is the window over which the HPA takes the
	// highest recommendation before it scales down. Default 300.
	ScaleDownStabilizationSeconds int `json:"scaleDownStabilizationSeconds"`
	// ScaleDownPodsPerMinute is the most pods removed per minute. Default 1.
	ScaleDownPodsPerMinute int `json:"scaleDownPodsPerMinute"`
}

// IngressConfig configures the Ingress and its certificate.
type IngressConfig struct {
	// Host is the Ingress and certificate host name. Default "taskflow.localhost".
	Host string `json:"host"`
	// ClassName is the IngressClass. Default "nginx".
	ClassName string `json:"className"`
	// TLS declares the cert-manager chain and the Ingress TLS section. Default true.
	TLS bool `json:"tls"`
	// ExportCA waits for the CA Certificate to become Ready and exports its
	// certificate. It needs a running cert-manager. Default true.
	ExportCA bool `json:"exportCa"`
	// SkipAwait stops `up` from waiting until an ingress controller
	// publishes the Ingress's address, for clusters that run none. Default false.
	SkipAwait bool `json:"skipAwait"`
}

// AddonsConfig toggles the Helm releases. CRD-backed objects that an addon
// serves still get declared when its release is off, so a cluster that has
// the CRDs from elsewhere keeps working.
type AddonsConfig struct {
	// IngressNginx is the NGINX ingress controller.
	IngressNginx AddonConfig `json:"ingressNginx"`
	// KEDA is the KEDA operator and its CRDs.
	KEDA AddonConfig `json:"keda"`
	// CertManager is cert-manager and its CRDs.
	CertManager AddonConfig `json:"certManager"`
}

// AddonConfig describes one Helm release.
type AddonConfig struct {
	// Enabled installs the release.
	Enabled bool `json:"enabled"`
	// Namespace is the release namespace, and the namespace that the
	// NetworkPolicies admit traffic from.
	Namespace string `json:"namespace"`
	// Repo is the chart repository URL.
	Repo string `json:"repo"`
	// Chart is the chart name.
	Chart string `json:"chart"`
	// Version is the chart version.
	Version string `json:"version"`
	// Values are merged over the program's own chart values.
	Values map[string]any `json:"values"`
}

// SecretsConfig holds the secret inputs as secret outputs.
type SecretsConfig struct {
	// Seed is the secret every generated credential derives from. Set it
	// once per stack: `pulumi config set --secret taskflow:secretSeed <value>`.
	Seed pulumi.StringOutput
	// Overrides replaces derived values by name (see secretNames), each read
	// from a secret config key of the same name.
	Overrides map[string]pulumi.StringOutput
}

// QoS classes as Kubernetes names them in pod.status.qosClass.
const (
	qosGuaranteed = "Guaranteed"
	qosBurstable  = "Burstable"
	qosBestEffort = "BestEffort"
)

// defaultConfig returns the settings for a three-worker kind cluster.
func defaultConfig() Config {
	return Config{
		Namespace: "workflow",
		Nodes: NodesConfig{
			Stateful:  []string{"taskflow-worker"},
			Stateless: []string{"taskflow-worker2", "taskflow-worker3"},
		},
		Images: defaultImages(),
		App:    AppConfig{TaskQueue: "tasks", LogLevel: "info"},
		Postgres: PostgresConfig{
			Image:    "postgres:18-alpine",
			UID:      70,
			PGData:   "/var/lib/postgresql/18/docker",
			Storage:  "20Gi",
			Database: "taskflow",
			Username: "taskflow",
			Resources: Resources{
				Requests: ResourceList{CPU: "1", Memory: "2Gi"},
				Limits:   ResourceList{CPU: "1", Memory: "2Gi"},
			},
			QoSClass: qosGuaranteed,
		},
		RabbitMQ: RabbitMQConfig{
			Image:    "rabbitmq:4.1-management",
			UID:      999,
			Storage:  "10Gi",
			Username: "taskflow",
			Resources: Resources{
				Requests: ResourceList{CPU: "250m", Memory: "512Mi"},
				Limits:   ResourceList{CPU: "500m", Memory: "1Gi"},
			},
			QoSClass: qosBurstable,
		},
		Worker: WorkerConfig{
			Replicas: 3,
			Resources: Resources{
				Requests: ResourceList{CPU: "500m", Memory: "512Mi"},
				Limits:   ResourceList{CPU: "1", Memory: "1Gi"},
			},
			QoSClass:                      qosBurstable,
			Concurrency:                   8,
			RetryBaseDelay:                "1s",
			RetryMaxDelay:                 "5m",
			DefaultMaxRetries:             3,
			DeliveryLimit:                 10,
			DrainTimeout:                  "25s",
			TerminationGracePeriodSeconds: 40,
			SpreadWhenUnsatisfiable:       "ScheduleAnyway",
		},
		API: APIConfig{
			Replicas: 2,
			Resources: Resources{
				Requests: ResourceList{CPU: "300m", Memory: "256Mi"},
				Limits:   ResourceList{CPU: "500m", Memory: "512Mi"},
			},
			QoSClass: qosBurstable,
			HPA:      HPAConfig{MinReplicas: 2, MaxReplicas: 5, CPUUtilization: 70},
		},
		Monitor: MonitorConfig{
			Replicas: 1,
			Resources: Resources{
				Requests: ResourceList{CPU: "100m", Memory: "128Mi"},
				Limits:   ResourceList{CPU: "300m", Memory: "256Mi"},
			},
			QoSClass:  qosBurstable,
			URLPrefix: "/flower",
		},
		Autoscaling: AutoscalingConfig{
			KEDA:                          true,
			MinReplicas:                   3,
			MaxReplicas:                   10,
			MessagesPerReplica:            20,
			CPUUtilization:                70,
			PollingIntervalSeconds:        15,
			ScaleDownStabilizationSeconds: 300,
			ScaleDownPodsPerMinute:        1,
		},
		Ingress: IngressConfig{
			Host:      "taskflow.localhost",
			ClassName: "nginx",
			TLS:       true,
			ExportCA:  true,
		},
		Addons: AddonsConfig{
			IngressNginx: AddonConfig{
				Enabled:   true,
				Namespace: "ingress-nginx",
				Repo:      "https://kubernetes.github.io/ingress-nginx",
				Chart:     "ingress-nginx",
				Version:   "4.14.3",
			},
			KEDA: AddonConfig{
				Enabled:   true,
				Namespace: "keda",
				Repo:      "https://kedacore.github.io/charts",
				Chart:     "keda",
				Version:   "2.20.2",
			},
			CertManager: AddonConfig{
				Enabled:   true,
				Namespace: "cert-manager",
				Repo:      "https://charts.jetstack.io",
				Chart:     "cert-manager",
				Version:   "v1.21.2",
			},
		},
	}
}

// loadConfig reads the stack's config on top of defaultConfig and validates
// it. Structured keys replace only the fields they name; lists replace the
// whole default list.
func loadConfig(ctx *pulumi.Context) (Config, error) {
	cfg := defaultConfig()
	c := config.New(ctx, configNamespace)

	if v := c.Get("namespace"); v != "" {
		cfg.Namespace = v
	}
	objects := []struct {
		key    string
		target any
	}{
		{"kubernetes", &cfg.Kubernetes},
		{"nodes", &cfg.Nodes},
		{"images", &cfg.Images},
		{"app", &cfg.App},
		{"postgres", &cfg.Postgres},
		{"rabbitmq", &cfg.RabbitMQ},
		{"worker", &cfg.Worker},
		{"api", &cfg.API},
		{"monitor", &cfg.Monitor},
		{"autoscaling", &cfg.Autoscaling},
		{"ingress", &cfg.Ingress},
		{"addons", &cfg.Addons},
	}
	for _, o := range objects {
		if err := c.TryObject(o.key, o.target); err != nil && !errors.Is(err, config.ErrMissingVar) {
			return Config{}, fmt.Errorf("read config %s:%s: %w", configNamespace, o.key, err)
		}
	}
	if dir := os.Getenv(renderDirEnv); dir != "" {
		cfg.Kubernetes.RenderDir = dir
	}

	secrets, err := loadSecrets(ctx, c)
	if err != nil {
		return Config{}, err
	}
	cfg.Secrets = secrets

	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// loadSecrets reads the seed and any overrides. A key that is set in plain
// text is rejected, so no credential sits unencrypted in a stack file.
func loadSecrets(ctx *pulumi.Context, c *config.Config) (SecretsConfig, error) {
	keys := append([]string{"secretSeed"}, secretNames()...)
	for _, key := range keys {
		full := configNamespace + ":" + key
		if _, err := c.Try(key); err == nil && !ctx.IsConfigSecret(full) {
			return SecretsConfig{}, fmt.Errorf("config %s is plain text: set it with `pulumi config set --secret %s <value>`", full, full)
		}
	}

	if _, err := c.Try("secretSeed"); err != nil {
		return SecretsConfig{}, fmt.Errorf("config %s:secretSeed is missing: run `make secrets` or `pulumi config set --secret %s:secretSeed \"$(openssl rand -hex 32)\"`", configNamespace, configNamespace)
	}
	out := SecretsConfig{
		Seed:      c.RequireSecret("secretSeed"),
		Overrides: map[string]pulumi.StringOutput{},
	}
	for _, name := range secretNames() {
		if _, err := c.Try(name); err == nil {
			out.Overrides[name] = c.RequireSecret(name)
		}
	}
	return out, nil
}

// validate rejects settings that would deploy something other than what
// they describe, such as a declared QoS class the resources do not produce.
func (cfg Config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}

	check(cfg.Namespace != "", "namespace is empty")
	check(cfg.App.TaskQueue != "", "app.taskQueue is empty")

	// Node roles.
	if cfg.Nodes.SingleNode {
		check(len(cfg.Nodes.Stateful) == 1, "nodes.singleNode is set: list the one node as nodes.stateful[0] (nodes.stateless is ignored)")
	} else {
		check(len(cfg.Nodes.Stateful) > 0, "nodes.stateful is empty: list a node for PostgreSQL and RabbitMQ or set nodes.singleNode")
		check(len(cfg.Nodes.Stateless) > 0, "nodes.stateless is empty: list a node for the services or set nodes.singleNode")
		for _, n := range cfg.Nodes.Stateful {
			check(!slices.Contains(cfg.Nodes.Stateless, n), "nodes: %q is listed as both stateful and stateless", n)
		}
	}

	// Declared QoS classes against the resources.
	tiers := []struct {
		name      string
		resources Resources
		declared  string
	}{
		{"postgres", cfg.Postgres.Resources, cfg.Postgres.QoSClass},
		{"rabbitmq", cfg.RabbitMQ.Resources, cfg.RabbitMQ.QoSClass},
		{"worker", cfg.Worker.Resources, cfg.Worker.QoSClass},
		{"api", cfg.API.Resources, cfg.API.QoSClass},
		{"monitor", cfg.Monitor.Resources, cfg.Monitor.QoSClass},
	}
	for _, t := range tiers {
		got, err := qosClass([]Resources{t.resources})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.resources: %w", t.name, err))
			continue
		}
		check(got == t.declared, "%s.qosClass is %q but its resources give %q", t.name, t.declared, got)
	}

	// Worker timing.
	drain, err := time.ParseDuration(cfg.Worker.DrainTimeout)
	if err != nil {
		errs = append(errs, fmt.Errorf("worker.drainTimeout: %w", err))
	} else {
		check(time.Duration(cfg.Worker.TerminationGracePeriodSeconds)*time.Second > drain,
			"worker.terminationGracePeriodSeconds (%d) must exceed worker.drainTimeout (%s)", cfg.Worker.TerminationGracePeriodSeconds, drain)
	}
	for key, v := range map[string]string{"worker.retryBaseDelay": cfg.Worker.RetryBaseDelay, "worker.retryMaxDelay": cfg.Worker.RetryMaxDelay} {
		if _, err := time.ParseDuration(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	check(cfg.Worker.Concurrency > 0, "worker.concurrency must be positive, got %d", cfg.Worker.Concurrency)
	check(cfg.Worker.Prefetch >= 0, "worker.prefetch must not be negative, got %d", cfg.Worker.Prefetch)
	check(cfg.Worker.SpreadWhenUnsatisfiable == "ScheduleAnyway" || cfg.Worker.SpreadWhenUnsatisfiable == "DoNotSchedule",
		"worker.spreadWhenUnsatisfiable must be ScheduleAnyway or DoNotSchedule, got %q", cfg.Worker.SpreadWhenUnsatisfiable)

	// Replica counts and autoscaling bounds.
	check(cfg.Worker.Replicas > 0 && cfg.API.Replicas > 0 && cfg.Monitor.Replicas > 0, "replicas must be positive")
	a := cfg.Autoscaling
	check(a.MinReplicas > 0 && a.MinReplicas <= a.MaxReplicas, "autoscaling: need 0 < minReplicas <= maxReplicas, got %d and %d", a.MinReplicas, a.MaxReplicas)
	check(a.MessagesPerReplica > 0, "autoscaling.messagesPerReplica must be positive")
	check(a.CPUUtilization > 0, "autoscaling.cpuUtilization must be positive")
	h := cfg.API.HPA
	if h.Enabled {
		check(h.MinReplicas > 0 && h.MinReplicas <= h.MaxReplicas, "api.hpa: need 0 < minReplicas <= maxReplicas, got %d and %d", h.MinReplicas, h.MaxReplicas)
		check(h.CPUUtilization > 0, "api.hpa.cpuUtilization must be positive")
	}

	check(strings.HasPrefix(cfg.Postgres.PGData, postgresDataMount+"/"), "postgres.pgdata must lie under %s/, got %q", postgresDataMount, cfg.Postgres.PGData)
	check(cfg.Ingress.Host != "", "ingress.host is empty")
	check(cfg.Monitor.URLPrefix != "" && cfg.Monitor.URLPrefix[0] == '/', "monitor.urlPrefix must start with /, got %q", cfg.Monitor.URLPrefix)

	return errors.Join(errs...)
}

// renderMode reports whether the provider writes manifests instead of applying them.
func (cfg Config) renderMode() bool {
	return cfg.Kubernetes.RenderDir != ""
}

// workerPrefetch returns the effective WORKER_PREFETCH.
func (cfg Config) workerPrefetch() int {
	if cfg.Worker.Prefetch == 0 {
		return cfg.Worker.Concurrency
	}
	return cfg.Worker.Prefetch
}
