package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"
)

// testCAPEM replaces the CA certificate that cert-manager would write.
const testCAPEM = "-----BEGIN CERTIFICATE-----\ntest-ca\n-----END CERTIFICATE-----\n"

// recorded is one resource the program registered or read under mocks.
type recorded struct {
	Type   string
	Name   string
	Custom bool
	Read   bool
	// Parent is the parent's URN; empty or the stack's URN means top level.
	Parent string
	// Dependencies are the URNs the resource waits for.
	Dependencies []string
	// Inputs are the inputs with secrets unwrapped; SecretPaths lists the
	// dotted paths of values that arrived as secrets.
	Inputs      map[string]any
	SecretPaths []string
}

// ParentType returns the type token of the resource's parent, or "" for
// a top-level resource.
func (r recorded) ParentType() string {
	if r.Parent == "" {
		return ""
	}
	t := string(resource.URN(r.Parent).Type())
	if t == string(resource.RootStackType) {
		return ""
	}
	return t
}

// ObjectName returns metadata.name, or "" when the resource has none.
func (r recorded) ObjectName() string {
	s, _ := dig(r.Inputs, "metadata", "name").(string)
	return s
}

// recorder implements pulumi.MockResourceMonitor and records every resource.
type recorder struct {
	// preview makes every created resource new, as in a first preview:
	// its ID stays unknown.
	preview bool

	mu        sync.Mutex
	resources []recorded
}

func (m *recorder) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	var secrets []string
	inputs, _ := plain(resource.NewObjectProperty(args.Inputs), "", &secrets).(map[string]any)
	rec := recorded{
		Type:        args.TypeToken,
		Name:        args.Name,
		Custom:      args.Custom,
		Read:        args.ReadRPC != nil,
		Inputs:      inputs,
		SecretPaths: secrets,
	}
	if args.RegisterRPC != nil {
		rec.Parent = args.RegisterRPC.GetParent()
		rec.Dependencies = args.RegisterRPC.GetDependencies()
	}
	if args.ReadRPC != nil {
		rec.Parent = args.ReadRPC.GetParent()
	}
	m.mu.Lock()
	m.resources = append(m.resources, rec)
	m.mu.Unlock()

	id := args.ID
	if id == "" && !m.preview {
		id = args.Name + "-id"
	}
	outputs := args.Inputs.Copy()
	if args.TypeToken == "kubernetes:core/v1:Secret" && args.ReadRPC != nil {
		outputs = resource.PropertyMap{
			"data": resource.MakeSecret(resource.NewObjectProperty(resource.PropertyMap{
				"tls.crt": resource.NewStringProperty(base64.StdEncoding.EncodeToString([]byte(testCAPEM))),
			})),
		}
	}
	return id, outputs, nil
}

func (m *recorder) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return args.Args, nil
}

// all returns a copy of the recorded resources.
func (m *recorder) all() []recorded {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.resources)
}

// ofType returns the recorded resources of a type token, such as
// "kubernetes:apps/v1:Deployment".
func (m *recorder) ofType(typ string) []recorded {
	var out []recorded
	for _, r := range m.all() {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// object returns the resource of typ whose metadata.name is name.
func (m *recorder) object(t *testing.T, typ, name string) recorded {
	t.Helper()
	var found []recorded
	for _, r := range m.ofType(typ) {
		if r.ObjectName() == name && !r.Read {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("found %d %s objects named %q, want 1", len(found), typ, name)
	}
	return found[0]
}

// deployment contains the resources and outputs of one test run.
type deployment struct {
	*recorder
	Outputs *Outputs
}

// withConfig sets stack config as the engine passes it: plain strings, with
// the secret keys listed separately.
func withConfig(values map[string]string, secretKeys ...string) pulumi.RunOption {
	return func(info *pulumi.RunInfo) {
		info.Config = values
		info.ConfigSecretKeys = secretKeys
	}
}

// testConfig returns defaultConfig with a fixed secret seed.
func testConfig() Config {
	cfg := defaultConfig()
	cfg.Secrets = SecretsConfig{
		Seed:      pulumi.ToSecret(pulumi.String("test-seed")).(pulumi.StringOutput),
		Overrides: map[string]pulumi.StringOutput{},
	}
	return cfg
}

// runDeploy runs deploy for cfg under mocks as an update and fails the
// test on an error.
func runDeploy(t *testing.T, cfg Config) deployment {
	t.Helper()
	d, err := tryDeploy(cfg, false)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	return d
}

// tryDeploy runs deploy for cfg under mocks, as a first preview of a new
// stack when preview is set and as an update otherwise.
func tryDeploy(cfg Config, preview bool) (deployment, error) {
	m := &recorder{preview: preview}
	var out *Outputs
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		o, err := deploy(ctx, cfg)
		out = o
		return err
	}, pulumi.WithMocks("taskflow", "test", m), func(info *pulumi.RunInfo) { info.DryRun = preview })
	return deployment{recorder: m, Outputs: out}, err
}

// await resolves o and reports whether it is secret.
func await(t *testing.T, o pulumi.Output) (any, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := internals.UnsafeAwaitOutput(ctx, o)
	if err != nil {
		t.Fatalf("await output: %v", err)
	}
	return r.Value, r.Secret
}

// plain converts a property value to plain Go values, appending the path of
// every secret it unwraps to secrets.
func plain(v resource.PropertyValue, path string, secrets *[]string) any {
	switch {
	case v.IsSecret():
		*secrets = append(*secrets, path)
		return plain(v.SecretValue().Element, path, secrets)
	case v.IsOutput():
		if v.OutputValue().Secret {
			*secrets = append(*secrets, path)
		}
		return plain(v.OutputValue().Element, path, secrets)
	case v.IsObject():
		out := map[string]any{}
		for k, e := range v.ObjectValue() {
			out[string(k)] = plain(e, strings.TrimPrefix(path+"."+string(k), "."), secrets)
		}
		return out
	case v.IsArray():
		var out []any
		for i, e := range v.ArrayValue() {
			out = append(out, plain(e, fmt.Sprintf("%s[%d]", path, i), secrets))
		}
		return out
	case v.IsComputed():
		return nil
	default:
		return v.Mappable()
	}
}

// dig walks nested maps and lists: a string key indexes a map, an int a list.
// It returns nil when a step is missing.
func dig(v any, path ...any) any {
	for _, step := range path {
		switch s := step.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[s]
		case int:
			l, ok := v.([]any)
			if !ok || s >= len(l) {
				return nil
			}
			v = l[s]
		}
	}
	return v
}

// list returns dig's result as a list, or nil.
func list(v any, path ...any) []any {
	l, _ := dig(v, path...).([]any)
	return l
}

// stringMapAny converts a map of strings for comparison with dig results.
func stringMapAny(v any) map[string]any {
	out := map[string]any{}
	switch m := v.(type) {
	case map[string]string:
		for k, e := range m {
			out[k] = e
		}
	case map[string]any:
		return m
	}
	return out
}

// stringMapOf returns dig's result as a map of strings.
func stringMapOf(v any, path ...any) map[string]string {
	m, _ := dig(v, path...).(map[string]any)
	out := map[string]string{}
	for k, e := range m {
		out[k] = fmt.Sprint(e)
	}
	return out
}

// number returns dig's result as an int; property numbers are float64.
func number(v any, path ...any) int {
	f, _ := dig(v, path...).(float64)
	return int(f)
}

// podTemplates returns every workload's pod template by workload name.
func (m *recorder) podTemplates() map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, typ := range []string{"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"} {
		for _, r := range m.ofType(typ) {
			tmpl, _ := dig(r.Inputs, "spec", "template").(map[string]any)
			out[r.ObjectName()] = tmpl
		}
	}
	return out
}

// containersOf returns a pod template's init containers and containers.
func containersOf(tmpl map[string]any) []any {
	return slices.Concat(list(tmpl, "spec", "initContainers"), list(tmpl, "spec", "containers"))
}
