//go:build cluster

package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gopkg.in/yaml.v3"
)

// deleteTimeout bounds the wait for an object to disappear after `pulumi destroy`.
const deleteTimeout = 2 * time.Minute

// namespacedKinds are the kinds of the stack's namespaced objects that
// writeObjects saves.
var namespacedKinds = []string{
	"statefulsets", "deployments", "replicasets", "pods", "services", "serviceaccounts",
	"configmaps", "secrets", "persistentvolumeclaims", "networkpolicies", "poddisruptionbudgets",
	"ingresses", "horizontalpodautoscalers", "scaledobjects.keda.sh", "triggerauthentications.keda.sh",
	"issuers.cert-manager.io", "certificates.cert-manager.io", "events",
}

// writeObjects saves the live objects of the stack, the nodes and the
// cluster-scoped objects as YAML files in the objects directory, one file
// per kind. Secret values are replaced by "(redacted)".
func (h *harness) writeObjects(ctx context.Context) error {
	queries := map[string][]string{
		"namespace":         {"namespace", namespace},
		"nodes":             {"nodes"},
		"priorityclasses":   {"priorityclasses", "-l", labelPartOf + "=taskflow"},
		"clusterissuers":    {"clusterissuers.cert-manager.io"},
		"persistentvolumes": {"persistentvolumes"},
	}
	for _, kind := range namespacedKinds {
		queries[kind] = []string{kind, "-n", namespace}
	}
	var errs []error
	for file, args := range queries {
		out, err := h.kubectl(ctx, nil, append(append([]string{"get"}, args...), "-o", "json")...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		text, err := jsonToYAML(out, file == "secrets")
		if err != nil {
			errs = append(errs, fmt.Errorf("convert %s: %w", file, err))
			continue
		}
		if err := os.WriteFile(filepath.Join(h.objects, file+".yaml"), text, 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// jsonToYAML converts kubectl's JSON output into YAML. Numbers keep their
// JSON text, so 2000000000 stays an integer instead of becoming 2e+09.
// With redact, every value under an item's data or stringData becomes
// "(redacted)".
func jsonToYAML(data []byte, redact bool) ([]byte, error) {
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	var value any
	if err := decoder.Decode(&value); err != nil {
		return nil, err
	}
	if redact {
		items, _ := value.(map[string]any)["items"].([]any)
		for _, item := range items {
			object, _ := item.(map[string]any)
			for _, field := range []string{"data", "stringData"} {
				values, _ := object[field].(map[string]any)
				for key := range values {
					values[key] = "(redacted)"
				}
			}
		}
	}
	var out bytes.Buffer
	encoder := yaml.NewEncoder(&out)
	encoder.SetIndent(2)
	if err := encoder.Encode(yamlNumbers(value)); err != nil {
		return nil, err
	}
	if err := encoder.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// yamlNumbers replaces each json.Number in v with an int64, or a float64
// when it has a fraction or exponent, so YAML writes it unquoted.
func yamlNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, item := range t {
			t[k] = yamlNumbers(item)
		}
	case []any:
		for i, item := range t {
			t[i] = yamlNumbers(item)
		}
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		if f, err := t.Float64(); err == nil {
			return f
		}
	}
	return v
}

// checkNamespaceGone waits until the namespace no longer exists.
func (h *harness) checkNamespaceGone(ctx context.Context) error {
	return waitFor(ctx, deleteTimeout, func() (bool, string, error) {
		out, err := h.kubectl(ctx, nil, "get", "namespace", namespace, "--ignore-not-found", "-o", "jsonpath={.status.phase}")
		return len(out) == 0, fmt.Sprintf("namespace %s is %s", namespace, out), err
	})
}

// checkClusterScopedGone checks that no PriorityClass of the stack, no
// ClusterIssuer and no PersistentVolume of the namespace's claims remains.
// The volumes go asynchronously after their claims, so it waits for them.
func (h *harness) checkClusterScopedGone(ctx context.Context) error {
	var errs []error
	var classes list[struct {
		Metadata objectMeta `json:"metadata"`
	}]
	if err := h.get(ctx, &classes, "priorityclasses"); err != nil {
		errs = append(errs, err)
	}
	for _, c := range classes.Items {
		if strings.HasPrefix(c.Metadata.Name, "taskflow-") || c.Metadata.Labels[labelPartOf] == "taskflow" {
			errs = append(errs, fmt.Errorf("priority class %s remains", c.Metadata.Name))
		}
	}

	out, err := h.kubectl(ctx, nil, "get", "clusterissuers.cert-manager.io", "-o", "name")
	if err != nil {
		errs = append(errs, err)
	}
	if names := strings.Fields(string(out)); len(names) > 0 {
		errs = append(errs, fmt.Errorf("cluster issuers remain: %v", names))
	}

	err = waitFor(ctx, deleteTimeout, func() (bool, string, error) {
		var volumes list[struct {
			Metadata objectMeta `json:"metadata"`
			Spec     struct {
				ClaimRef struct {
					Namespace string `json:"namespace"`
					Name      string `json:"name"`
				} `json:"claimRef"`
			} `json:"spec"`
		}]
		if err := h.get(ctx, &volumes, "persistentvolumes"); err != nil {
			return false, "", err
		}
		var left []string
		for _, v := range volumes.Items {
			if v.Spec.ClaimRef.Namespace == namespace {
				left = append(left, v.Metadata.Name+" for "+v.Spec.ClaimRef.Name)
			}
		}
		return len(left) == 0, fmt.Sprintf("persistent volumes remain: %v", left), nil
	})
	return errors.Join(append(errs, err)...)
}

// checkNodesRestored checks that every node has the labels and taints it
// had before `pulumi up`.
func (h *harness) checkNodesRestored(ctx context.Context, before []node) error {
	var after list[node]
	if err := h.get(ctx, &after, "nodes"); err != nil {
		return err
	}
	var errs []error
	now := nodesByName(after.Items)
	for _, old := range before {
		n, ok := now[old.Metadata.Name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("node %s is gone", old.Metadata.Name))
		case !maps.Equal(n.Metadata.Labels, old.Metadata.Labels):
			errs = append(errs, fmt.Errorf("node %s has labels %v, before up %v", old.Metadata.Name, n.Metadata.Labels, old.Metadata.Labels))
		case !cmp.Equal(n.Spec.Taints, old.Spec.Taints, cmpopts.EquateEmpty()):
			errs = append(errs, fmt.Errorf("node %s has taints %v, before up %v", old.Metadata.Name, n.Spec.Taints, old.Spec.Taints))
		}
	}
	return errors.Join(errs...)
}

// checkNoLabelledObjects lists every resource type the API server serves,
// across all namespaces, and checks that no object carries the stack's
// app.kubernetes.io/part-of=taskflow label.
func (h *harness) checkNoLabelledObjects(ctx context.Context) error {
	out, err := h.kubectl(ctx, nil, "api-resources", "--verbs=list", "-o", "name")
	if err != nil {
		return err
	}
	types := strings.Fields(string(out))
	if len(types) == 0 {
		return errors.New("kubectl api-resources listed no resource type")
	}
	out, err = h.kubectl(ctx, nil, "get", strings.Join(types, ","), "--all-namespaces", "-l", labelPartOf+"=taskflow", "-o", "name")
	if err != nil {
		return err
	}
	if left := strings.Fields(string(out)); len(left) > 0 {
		return fmt.Errorf("objects remain: %v", left)
	}
	return nil
}
