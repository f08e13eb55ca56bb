package main

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"gopkg.in/yaml.v3"
)

// readStackConfig returns a stack file's config as the engine hands it to
// the program: strings stay strings, structured values become JSON.
func readStackConfig(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read stack file: %v", err)
	}
	var file struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	out := map[string]string{}
	for k, v := range file.Config {
		if s, ok := v.(string); ok {
			out[k] = s
			continue
		}
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("encode %s: %v", k, err)
		}
		out[k] = string(js)
	}
	return out
}

func TestDevStackFile(t *testing.T) {
	t.Parallel()
	values := readStackConfig(t, "../Pulumi.dev.yaml")
	if _, ok := values["taskflow:secretSeed"]; !ok {
		values["taskflow:secretSeed"] = "seed"
	}

	var cfg Config
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		var err error
		cfg, err = loadConfig(ctx)
		return err
	}, pulumi.WithMocks("taskflow", "dev", &recorder{}), withConfig(values, "taskflow:secretSeed"))
	if err != nil {
		t.Fatalf("load dev stack: %v", err)
	}

	got := map[string]any{
		"context":     cfg.Kubernetes.Context,
		"nodes":       cfg.Nodes,
		"keda":        cfg.Autoscaling.KEDA,
		"addons":      []bool{cfg.Addons.IngressNginx.Enabled, cfg.Addons.KEDA.Enabled, cfg.Addons.CertManager.Enabled},
		"addon repo":  cfg.Addons.KEDA.Repo,
		"api image":   cfg.Images.API,
		"tls":         cfg.Ingress.TLS,
		"worker reps": cfg.Worker.Replicas,
	}
	want := map[string]any{
		"context": "kind-taskflow",
		"nodes": NodesConfig{
			Stateful:  []string{"taskflow-worker"},
			Stateless: []string{"taskflow-worker2", "taskflow-worker3"},
		},
		"keda":        true,
		"addons":      []bool{true, true, true},
		"addon repo":  "https://kedacore.github.io/charts",
		"api image":   "localhost:5001/taskflow/api:dev",
		"tls":         true,
		"worker reps": 3,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dev stack config (-want +got):\n%s", diff)
	}
}
