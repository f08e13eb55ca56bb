package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string // empty means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"single node with one node", func(c *Config) {
			c.Nodes = NodesConfig{SingleNode: true, Stateful: []string{"minikube"}}
		}, ""},
		{"postgres requests below limits", func(c *Config) {
			c.Postgres.Resources.Limits = ResourceList{CPU: "2", Memory: "4Gi"}
		}, `postgres.qosClass is "Guaranteed" but its resources give "Burstable"`},
		{"worker declared best effort", func(c *Config) {
			c.Worker.QoSClass = qosBestEffort
		}, `worker.qosClass is "BestEffort" but its resources give "Burstable"`},
		{"grace period not above drain timeout", func(c *Config) {
			c.Worker.TerminationGracePeriodSeconds = 25
		}, "must exceed worker.drainTimeout"},
		{"bad drain timeout", func(c *Config) { c.Worker.DrainTimeout = "soon" }, "worker.drainTimeout"},
		{"bad quantity", func(c *Config) { c.API.Resources.Limits.Memory = "lots" }, "api.resources"},
		{"no stateless node", func(c *Config) { c.Nodes.Stateless = nil }, "nodes.stateless is empty"},
		{"node in both roles", func(c *Config) {
			c.Nodes.Stateless = append(c.Nodes.Stateless, "taskflow-worker")
		}, "listed as both stateful and stateless"},
		{"autoscaling bounds reversed", func(c *Config) { c.Autoscaling.MinReplicas = 11 }, "minReplicas <= maxReplicas"},
		{"api hpa bounds reversed", func(c *Config) {
			c.API.HPA = HPAConfig{Enabled: true, MinReplicas: 4, MaxReplicas: 2, CPUUtilization: 70}
		}, "api.hpa"},
		{"pgdata outside the volume", func(c *Config) { c.Postgres.PGData = "/pgdata" }, "postgres.pgdata"},
		{"monitor prefix without slash", func(c *Config) { c.Monitor.URLPrefix = "flower" }, "monitor.urlPrefix"},
		{"unknown spread mode", func(c *Config) { c.Worker.SpreadWhenUnsatisfiable = "Never" }, "spreadWhenUnsatisfiable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultConfig()
			tt.change(&cfg)
			err := cfg.validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("validate returned no error, want one containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("validate error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestWorkerPrefetchDefaultsToConcurrency(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	cfg.Worker.Concurrency = 12
	if got := cfg.workerPrefetch(); got != 12 {
		t.Errorf("workerPrefetch = %d, want 12", got)
	}
	cfg.Worker.Prefetch = 4
	if got := cfg.workerPrefetch(); got != 4 {
		t.Errorf("workerPrefetch with prefetch 4 = %d, want 4", got)
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	seed := map[string]string{"taskflow:secretSeed": "s3cret"}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range seed {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}

	tests := []struct {
		name       string
		values     map[string]string
		secretKeys []string
		check      func(t *testing.T, cfg Config)
		wantErr    string
	}{
		{
			name:       "defaults with seed",
			values:     seed,
			secretKeys: []string{"taskflow:secretSeed"},
			check: func(t *testing.T, cfg Config) {
				want := defaultConfig()
				if diff := cmp.Diff(want.Nodes, cfg.Nodes); diff != "" {
					t.Errorf("nodes (-want +got):\n%s", diff)
				}
				if cfg.Worker.Replicas != 3 || cfg.Postgres.Storage != "20Gi" {
					t.Errorf("worker replicas %d, postgres storage %q: want the defaults 3 and 20Gi", cfg.Worker.Replicas, cfg.Postgres.Storage)
				}
			},
		},
		{
			name: "structured keys override single fields",
			values: with(map[string]string{
				"taskflow:namespace":   "tasks",
				"taskflow:nodes":       `{"singleNode": true, "stateful": ["minikube"], "stateless": []}`,
				"taskflow:worker":      `{"replicas": 5, "concurrency": 16}`,
				"taskflow:autoscaling": `{"keda": false}`,
			}),
			secretKeys: []string{"taskflow:secretSeed"},
			check: func(t *testing.T, cfg Config) {
				got := struct {
					Namespace           string
					Nodes               NodesConfig
					Replicas            int
					Concurrency         int
					DrainTimeout        string
					KEDA                bool
					AutoscalingMaxPods  int
					PostgresCPURequest  string
					MonitorURLPrefix    string
					RabbitMQStorageSize string
				}{cfg.Namespace, cfg.Nodes, cfg.Worker.Replicas, cfg.Worker.Concurrency, cfg.Worker.DrainTimeout,
					cfg.Autoscaling.KEDA, cfg.Autoscaling.MaxReplicas, cfg.Postgres.Resources.Requests.CPU,
					cfg.Monitor.URLPrefix, cfg.RabbitMQ.Storage}
				want := got
				want.Namespace = "tasks"
				want.Nodes = NodesConfig{SingleNode: true, Stateful: []string{"minikube"}, Stateless: []string{}}
				want.Replicas, want.Concurrency, want.DrainTimeout = 5, 16, "25s"
				want.KEDA, want.AutoscalingMaxPods = false, 10
				want.PostgresCPURequest, want.MonitorURLPrefix, want.RabbitMQStorageSize = "1", "/flower", "10Gi"
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("config (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:       "secret override is read",
			values:     with(map[string]string{"taskflow:rabbitmqPassword": "p@ss"}),
			secretKeys: []string{"taskflow:secretSeed", "taskflow:rabbitmqPassword"},
			check: func(t *testing.T, cfg Config) {
				if _, ok := cfg.Secrets.Overrides["rabbitmqPassword"]; !ok {
					t.Errorf("overrides %v lack rabbitmqPassword", cfg.Secrets.Overrides)
				}
				if _, ok := cfg.Secrets.Overrides["postgresPassword"]; ok {
					t.Errorf("overrides contain postgresPassword, which the stack does not set")
				}
			},
		},
		{name: "missing seed", values: map[string]string{}, wantErr: "secretSeed is missing"},
		{name: "plain text seed", values: seed, wantErr: "taskflow:secretSeed is plain text"},
		{
			name:       "plain text override",
			values:     with(map[string]string{"taskflow:apiToken": "abc"}),
			secretKeys: []string{"taskflow:secretSeed"},
			wantErr:    "taskflow:apiToken is plain text",
		},
		{
			name:       "malformed object",
			values:     with(map[string]string{"taskflow:worker": `{"replicas": "many"}`}),
			secretKeys: []string{"taskflow:secretSeed"},
			wantErr:    "taskflow:worker",
		},
		{
			name:       "invalid values",
			values:     with(map[string]string{"taskflow:postgres": `{"resources": {"limits": {"cpu": "4"}}}`}),
			secretKeys: []string{"taskflow:secretSeed"},
			wantErr:    "postgres.qosClass",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cfg Config
			err := pulumi.RunErr(func(ctx *pulumi.Context) error {
				var err error
				cfg, err = loadConfig(ctx)
				return err
			}, pulumi.WithMocks("taskflow", "test", &recorder{}), withConfig(tt.values, tt.secretKeys...))

			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("loadConfig error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			tt.check(t, cfg)
		})
	}
}
