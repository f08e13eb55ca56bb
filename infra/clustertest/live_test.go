//go:build cluster

package clustertest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The checks below read the live objects after `pulumi up`. Each returns
// nil when its claim holds and otherwise an error that states what differs.

// checkPreviewPushesNothing runs the first preview and checks that the
// registry, empty before, is still empty afterwards.
func (h *harness) checkPreviewPushesNothing(ctx context.Context) error {
	before, err := h.catalog(ctx)
	if err != nil {
		return err
	}
	if len(before) > 0 {
		return fmt.Errorf("registry %s already holds %v before the first preview: start a fresh cluster", h.registry, before)
	}
	p, err := h.preview(ctx, "preview-first")
	if err != nil {
		return err
	}
	if len(p.changes()) == 0 {
		return errors.New("first preview plans no change on an empty cluster")
	}
	after, err := h.catalog(ctx)
	if err != nil {
		return err
	}
	if len(after) > 0 {
		return fmt.Errorf("preview pushed %v to %s", after, h.registry)
	}
	return nil
}

// catalog returns the repositories in the cluster's registry.
func (h *harness) catalog(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.registry+"/v2/_catalog", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read registry catalog: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read registry catalog: %s", resp.Status)
	}
	var catalog struct {
		Repositories []string `json:"repositories"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&catalog); err != nil {
		return nil, fmt.Errorf("decode registry catalog: %w", err)
	}
	return catalog.Repositories, nil
}

// checkTaintRepels creates two pods that select the stateful nodes, one
// without and one with the stateful toleration, in a namespace of its own.
// The first must stay unschedulable because of the taint, and the second
// must land on a stateful node, which shows the taint, not the selector,
// kept the first away.
func (h *harness) checkTaintRepels(ctx context.Context) error {
	const probeNamespace = "clustertest-taint-probe"
	if _, err := h.kubectl(ctx, nil, "create", "namespace", probeNamespace); err != nil {
		return err
	}
	defer func() {
		if _, err := h.kubectl(ctx, nil, "delete", "namespace", probeNamespace, "--wait=true", "--timeout=90s"); err != nil {
			h.t.Errorf("delete probe namespace: %v", err)
		}
	}()
	// The API server rejects pods until the namespace's default service account exists.
	err := waitFor(ctx, time.Minute, func() (bool, string, error) {
		out, err := h.kubectl(ctx, nil, "get", "serviceaccount", "default", "-n", probeNamespace, "--ignore-not-found", "-o", "name")
		return len(bytes.TrimSpace(out)) > 0, "no default service account", err
	})
	if err != nil {
		return err
	}

	probe := func(podName string, tolerate bool) map[string]any {
		spec := map[string]any{
			"nodeSelector":                 map[string]any{labelRole: "stateful"},
			"automountServiceAccountToken": false,
			"containers":                   []any{map[string]any{"name": "probe", "image": "registry.invalid/probe:1"}},
		}
		if tolerate {
			spec["tolerations"] = []any{map[string]any{"key": labelRole, "operator": "Equal", "value": "stateful", "effect": "NoSchedule"}}
		}
		return map[string]any{
			"apiVersion": "v1",
			"kind":       "Pod",
			"metadata":   map[string]any{"name": podName, "namespace": probeNamespace},
			"spec":       spec,
		}
	}
	manifest, err := json.Marshal(map[string]any{
		"apiVersion": "v1",
		"kind":       "List",
		"items":      []any{probe("untolerated", false), probe("tolerated", true)},
	})
	if err != nil {
		return err
	}
	if _, err := h.kubectl(ctx, manifest, "create", "-f", "-"); err != nil {
		return err
	}

	var nodes list[node]
	if err := h.get(ctx, &nodes, "nodes"); err != nil {
		return err
	}
	byName := nodesByName(nodes.Items)
	return waitFor(ctx, time.Minute, func() (bool, string, error) {
		var pods list[pod]
		if err := h.get(ctx, &pods, "pods", "-n", probeNamespace); err != nil {
			return false, "", err
		}
		var repelled, placed bool
		var status []string
		for _, p := range pods.Items {
			switch p.Metadata.Name {
			case "untolerated":
				if p.Spec.NodeName != "" {
					return false, "", fmt.Errorf("pod without the toleration scheduled to %s", p.Spec.NodeName)
				}
				for _, c := range p.Status.Conditions {
					if c.Type == "PodScheduled" && c.Status == "False" {
						repelled = c.Reason == "Unschedulable" && strings.Contains(c.Message, "untolerated taint")
						status = append(status, "untolerated: "+c.Message)
					}
				}
			case "tolerated":
				n, ok := byName[p.Spec.NodeName]
				placed = ok && n.Metadata.Labels[labelRole] == "stateful"
				status = append(status, fmt.Sprintf("tolerated: on node %q", p.Spec.NodeName))
			}
		}
		return repelled && placed, strings.Join(status, "; "), nil
	})
}

// checkWorkerSpread checks the workers against the hostname spread
// constraint of the live worker Deployment.
func (h *harness) checkWorkerSpread(ctx context.Context, pods []pod, nodes []node) error {
	var w workload
	if err := h.get(ctx, &w, "deployment", "worker", "-n", namespace); err != nil {
		return err
	}
	for _, c := range w.Spec.Template.Spec.TopologySpreadConstraints {
		if c.TopologyKey == hostnameTopologyKey {
			return checkSpread(pods, nodes, "worker", "stateless", c)
		}
	}
	return fmt.Errorf("worker deployment has no spread constraint on %s: %v", hostnameTopologyKey, w.Spec.Template.Spec.TopologySpreadConstraints)
}

// checkClaims checks the PVCs of the StatefulSets.
func (h *harness) checkClaims(ctx context.Context) error {
	var claims list[persistentVolumeClaim]
	if err := h.get(ctx, &claims, "persistentvolumeclaims", "-n", namespace); err != nil {
		return err
	}
	return checkPVCs(claims.Items, claimSizes)
}

// checkNamespaceEnforces checks the namespace's Pod Security labels.
func (h *harness) checkNamespaceEnforces(ctx context.Context) error {
	var ns struct {
		Metadata objectMeta `json:"metadata"`
	}
	if err := h.get(ctx, &ns, "namespace", namespace); err != nil {
		return err
	}
	if got := ns.Metadata.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		return fmt.Errorf("namespace %s has pod-security.kubernetes.io/enforce=%q, want restricted", namespace, got)
	}
	return nil
}

// checkAdmitted checks that each workload reached its replica count with
// ready pods, that no controller failed to create a pod, and that the API
// server sent no Pod Security warning during `pulumi up`.
func (h *harness) checkAdmitted(ctx context.Context, pods []pod) error {
	var errs []error
	counts := map[string]int{}
	for _, p := range pods {
		counts[p.Metadata.Labels[labelName]]++
	}
	for _, tr := range tiers {
		var w workload
		if err := h.get(ctx, &w, tr.kind, tr.component, "-n", namespace); err != nil {
			errs = append(errs, err)
			continue
		}
		if w.Spec.Replicas == nil || *w.Spec.Replicas != tr.replicas || w.Status.ReadyReplicas != tr.replicas || counts[tr.component] != tr.replicas {
			errs = append(errs, fmt.Errorf("%s %s: %d ready and %d pods, want %d", tr.kind, tr.component, w.Status.ReadyReplicas, counts[tr.component], tr.replicas))
		}
	}

	var events list[event]
	if err := h.get(ctx, &events, "events", "-n", namespace); err != nil {
		errs = append(errs, err)
	}
	for _, e := range events.Items {
		if e.Reason == "FailedCreate" {
			errs = append(errs, fmt.Errorf("%s %s: %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message))
		}
	}

	up, err := os.ReadFile(filepath.Join(h.logs, "up.log"))
	if err != nil {
		errs = append(errs, err)
	}
	for _, line := range strings.Split(string(up), "\n") {
		if strings.Contains(line, "PodSecurity") {
			errs = append(errs, fmt.Errorf("pulumi up printed: %s", strings.TrimSpace(line)))
		}
	}
	return errors.Join(errs...)
}

// checkNonCompliantRejected sends a privileged pod that runs as root to the
// namespace as a server-side dry run. Pod Security "restricted" must reject it.
func (h *harness) checkNonCompliantRejected(ctx context.Context) error {
	manifest := fmt.Sprintf(`{"apiVersion": "v1", "kind": "Pod",
		"metadata": {"name": "non-compliant", "namespace": %q},
		"spec": {"containers": [{"name": "root", "image": "registry.invalid/root:1",
			"securityContext": {"privileged": true, "runAsUser": 0}}]}}`, namespace)
	_, err := h.kubectl(ctx, []byte(manifest), "create", "--dry-run=server", "-f", "-")
	if err == nil {
		return errors.New("the API server admitted a privileged root pod")
	}
	if !strings.Contains(err.Error(), `violates PodSecurity "restricted`) {
		return fmt.Errorf("rejected, but not by Pod Security restricted: %w", err)
	}
	return nil
}

// stackResource is a resource in the output of `pulumi stack export`.
type stackResource struct {
	Type   string         `json:"type"`
	Inputs map[string]any `json:"inputs"`
}

// exportStack runs `pulumi stack export`, which keeps secrets encrypted,
// and returns its output.
func (h *harness) exportStack(ctx context.Context) ([]byte, error) {
	return h.pulumi(ctx, "stack-export", "stack", "export")
}

// checkCustomResources checks that the API server stored every KEDA and
// cert-manager object of the stack with each field of its spec as Pulumi
// sent it. A structural CRD schema silently drops unknown fields, so an
// object that was merely accepted could still have lost settings.
func (h *harness) checkCustomResources(ctx context.Context) error {
	out, err := h.exportStack(ctx)
	if err != nil {
		return err
	}
	var state struct {
		Deployment struct {
			Resources []stackResource `json:"resources"`
		} `json:"deployment"`
	}
	if err := json.Unmarshal(out, &state); err != nil {
		return fmt.Errorf("decode stack export: %w", err)
	}

	var errs []error
	kinds := map[string]int{}
	for _, res := range state.Deployment.Resources {
		// Type tokens read kubernetes:<group>/<version>:<kind>.
		parts := strings.Split(res.Type, ":")
		if len(parts) != 3 || parts[0] != "kubernetes" {
			continue
		}
		group, version, _ := strings.Cut(parts[1], "/")
		if group != "keda.sh" && group != "cert-manager.io" {
			continue
		}
		kind := parts[2]
		kinds[kind]++

		meta, _ := res.Inputs["metadata"].(map[string]any)
		objectName, _ := meta["name"].(string)
		args := []string{kind + "." + version + "." + group, objectName}
		if ns, ok := meta["namespace"].(string); ok {
			args = append(args, "-n", ns)
		}
		var live map[string]any
		if err := h.get(ctx, &live, args...); err != nil {
			errs = append(errs, err)
			continue
		}
		if diffs := subsetDiff("spec", res.Inputs["spec"], live["spec"]); len(diffs) > 0 {
			errs = append(errs, fmt.Errorf("%s %s: %s", kind, objectName, strings.Join(diffs, "; ")))
		}
	}
	want := map[string]int{"ScaledObject": 1, "TriggerAuthentication": 1, "ClusterIssuer": 1, "Issuer": 1, "Certificate": 2}
	if !maps.Equal(kinds, want) {
		errs = append(errs, fmt.Errorf("custom resources per kind in the state: %v, want %v", kinds, want))
	}
	return errors.Join(errs...)
}

// checkSchemasReject sends invalid KEDA and cert-manager objects as dry runs
// and checks that the CRD schemas reject them, so the acceptance of the
// stack's objects means something.
func (h *harness) checkSchemasReject(ctx context.Context) error {
	cases := []struct {
		object   string
		manifest string
		// want is part of the expected validation error.
		want string
	}{
		{
			object: "a Certificate without issuerRef and with a string isCA",
			manifest: `{"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
				"metadata": {"name": "invalid", "namespace": "` + namespace + `"},
				"spec": {"secretName": "invalid", "isCA": "yes"}}`,
			want: "spec.issuerRef: Required value",
		},
		{
			object: "a ScaledObject with a string maxReplicaCount",
			manifest: `{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
				"metadata": {"name": "invalid", "namespace": "` + namespace + `"},
				"spec": {"scaleTargetRef": {"name": "worker"}, "maxReplicaCount": "ten",
					"triggers": [{"type": "cpu", "metadata": {"value": "70"}}]}}`,
			want: "spec.maxReplicaCount in body must be of type integer",
		},
	}
	var errs []error
	for _, c := range cases {
		_, err := h.kubectl(ctx, []byte(c.manifest), "create", "--dry-run=server", "-f", "-")
		switch {
		case err == nil:
			errs = append(errs, fmt.Errorf("the API server accepted %s", c.object))
		case !strings.Contains(err.Error(), c.want):
			errs = append(errs, fmt.Errorf("%s rejected without %q: %w", c.object, c.want, err))
		}
	}
	return errors.Join(errs...)
}

// ingressRoute is one path of an Ingress rule.
type ingressRoute struct {
	Path, PathType, Service string
	Port                    int
}

// ingressTLS is one TLS entry of an Ingress.
type ingressTLS struct {
	Hosts  []string
	Secret string
}

// ingressSummary contains the Ingress fields that checkIngress compares.
type ingressSummary struct {
	Class  string
	Host   string
	Routes []ingressRoute
	TLS    []ingressTLS
}

// checkIngress checks that the Ingress routes /api to the api and /flower to
// the monitor on host, under the nginx class, with the cert-manager TLS Secret.
func (h *harness) checkIngress(ctx context.Context, host string) error {
	var in ingress
	if err := h.get(ctx, &in, "ingress", "taskflow", "-n", namespace); err != nil {
		return err
	}
	got := ingressSummary{Class: in.Spec.IngressClassName}
	for _, rule := range in.Spec.Rules {
		got.Host += rule.Host
		for _, p := range rule.HTTP.Paths {
			got.Routes = append(got.Routes, ingressRoute{p.Path, p.PathType, p.Backend.Service.Name, p.Backend.Service.Port.Number})
		}
	}
	for _, tls := range in.Spec.TLS {
		got.TLS = append(got.TLS, ingressTLS{tls.Hosts, tls.SecretName})
	}
	want := ingressSummary{
		Class: "nginx",
		Host:  host,
		Routes: []ingressRoute{
			{Path: "/api", PathType: "Prefix", Service: "api", Port: 5000},
			{Path: "/flower", PathType: "Prefix", Service: "monitor", Port: 5555},
		},
		TLS: []ingressTLS{{Hosts: []string{host}, Secret: "taskflow-tls"}},
	}

	var errs []error
	if got.Class != want.Class || got.Host != want.Host {
		errs = append(errs, fmt.Errorf("class %q and host %q, want %q and %q", got.Class, got.Host, want.Class, want.Host))
	}
	if !cmp.Equal(got.Routes, want.Routes) {
		errs = append(errs, fmt.Errorf("routes %+v, want %+v", got.Routes, want.Routes))
	}
	if !cmp.Equal(got.TLS, want.TLS) {
		errs = append(errs, fmt.Errorf("tls %+v, want %+v", got.TLS, want.TLS))
	}
	return errors.Join(errs...)
}

// checkNetworkPolicies checks that exactly the stack's NetworkPolicies exist
// and that each one with a pod selector selects at least one running pod.
func (h *harness) checkNetworkPolicies(ctx context.Context, pods []pod) error {
	var policies list[networkPolicy]
	if err := h.get(ctx, &policies, "networkpolicies", "-n", namespace); err != nil {
		return err
	}
	var errs []error
	var names []string
	for _, np := range policies.Items {
		names = append(names, np.Metadata.Name)
		selector := np.Spec.PodSelector.MatchLabels
		if len(selector) == 0 {
			continue
		}
		selected := slices.ContainsFunc(pods, func(p pod) bool {
			for k, v := range selector {
				if p.Metadata.Labels[k] != v {
					return false
				}
			}
			return true
		})
		if !selected {
			errs = append(errs, fmt.Errorf("network policy %s selects no pod with %v", np.Metadata.Name, selector))
		}
	}
	want := []string{
		"allow-dns", "api-broker-egress", "api-egress", "api-ingress", "default-deny",
		"monitor-broker-egress", "monitor-egress", "monitor-ingress", "postgres-ingress",
		"rabbitmq-amqp-ingress", "rabbitmq-management-ingress", "worker-broker-egress", "worker-egress",
	}
	if err := checkSameSet("network policies", want, names); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkImages checks that each service's Deployment and pods run the image
// the stack exports, that the reference names the cluster's registry by
// digest, and that the registry serves it as an index for linux/amd64 and
// linux/arm64.
func (h *harness) checkImages(ctx context.Context, pods []pod) error {
	out, err := h.pulumi(ctx, "", "stack", "output", "images", "--json")
	if err != nil {
		return err
	}
	var refs map[string]string
	if err := json.Unmarshal(out, &refs); err != nil {
		return fmt.Errorf("decode stack output images: %w", err)
	}

	var errs []error
	for _, service := range []string{"api", "worker", "monitor"} {
		ref := refs[service]
		if err := checkDigestRef(ref, h.registry+"/taskflow/"+service); err != nil {
			errs = append(errs, err)
			continue
		}
		var d workload
		if err := h.get(ctx, &d, "deployment", service, "-n", namespace); err != nil {
			errs = append(errs, err)
			continue
		}
		images := containerImages(d.Spec.Template.Spec.Containers)
		for _, p := range pods {
			if p.Metadata.Labels[labelName] == service {
				images = append(images, containerImages(p.Spec.Containers)...)
			}
		}
		for _, image := range images {
			if image != ref {
				errs = append(errs, fmt.Errorf("%s runs %s, the stack exports %s", service, image, ref))
			}
		}
		platforms, err := indexPlatforms(ctx, ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
			errs = append(errs, fmt.Errorf("%s has platforms %v, want %v", ref, platforms, want))
		}
	}
	return errors.Join(errs...)
}

// containerImages returns the image of each container.
func containerImages(containers []container) []string {
	var images []string
	for _, c := range containers {
		images = append(images, c.Image)
	}
	return images
}

// indexPlatforms fetches the image index ref over plain HTTP and returns its
// platforms, sorted.
func indexPlatforms(ctx context.Context, ref string) ([]string, error) {
	reference, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", ref, err)
	}
	index, err := remote.Index(reference, remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("fetch index %s: %w", ref, err)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read index %s: %w", ref, err)
	}
	var platforms []string
	for _, m := range manifest.Manifests {
		if m.Platform != nil {
			platforms = append(platforms, m.Platform.OS+"/"+m.Platform.Architecture)
		}
	}
	slices.Sort(platforms)
	return platforms, nil
}

// credentialKeys are the Secret keys that hold generated credentials.
var credentialKeys = []string{"password", "cookie", "api-token", "monitor-read-token", "monitor-admin-token"}

// checkSecretsEncrypted reads the credentials from the live Secrets and
// checks that neither they nor the secret seed appear in the Pulumi state
// or the stack settings file, in plain text or base64 encoded.
func (h *harness) checkSecretsEncrypted(ctx context.Context) error {
	var secrets list[secret]
	if err := h.get(ctx, &secrets, "secrets", "-n", namespace); err != nil {
		return err
	}
	values := map[string]string{"taskflow:secretSeed": h.seed}
	for _, s := range secrets.Items {
		for key, encoded := range s.Data {
			if !slices.Contains(credentialKeys, key) {
				continue
			}
			value, err := base64.StdEncoding.DecodeString(encoded)
			if err != nil {
				return fmt.Errorf("decode secret %s key %s: %w", s.Metadata.Name, key, err)
			}
			values[s.Metadata.Name+"/"+key] = string(value)
		}
	}
	// postgres and rabbitmq passwords, the Erlang cookie and three tokens.
	if got := len(values) - 1; got != 6 {
		return fmt.Errorf("found %d credentials in the Secrets, want 6: %v", got, slices.Sorted(maps.Keys(values)))
	}

	state, err := h.exportStack(ctx)
	if err != nil {
		return err
	}
	settings, err := os.ReadFile(h.stackFile())
	if err != nil {
		return err
	}
	var errs []error
	for _, source := range []struct {
		name string
		data []byte
	}{{"state", state}, {"stack settings", settings}} {
		for _, key := range slices.Sorted(maps.Keys(values)) {
			value := values[key]
			for _, form := range []string{value, base64.StdEncoding.EncodeToString([]byte(value))} {
				if bytes.Contains(source.data, []byte(form)) {
					errs = append(errs, fmt.Errorf("%s contains %s in plain text", source.name, key))
					break
				}
			}
		}
	}
	return errors.Join(errs...)
}

// checkNoChangePreview runs `pulumi preview --expect-no-changes` on the
// unchanged stack.
func (h *harness) checkNoChangePreview(ctx context.Context) error {
	p, err := h.preview(ctx, "preview-no-changes", "--expect-no-changes", "--diff")
	if len(p.Steps) > 0 {
		if changes := checkNoChanges(p); changes != nil {
			return changes
		}
	}
	return err
}

// checkConfigChange raises the worker's maximum replica count by two in the
// stack config, checks that a preview plans exactly the matching update of
// the ScaledObject, and restores the setting.
func (h *harness) checkConfigChange(ctx context.Context) error {
	const key = "taskflow:autoscaling.maxReplicas"
	var scaledObject struct {
		Spec struct {
			MaxReplicaCount int `json:"maxReplicaCount"`
		} `json:"spec"`
	}
	if err := h.get(ctx, &scaledObject, "scaledobject.keda.sh", "worker", "-n", namespace); err != nil {
		return err
	}
	newMax := scaledObject.Spec.MaxReplicaCount + 2

	previous, getErr := h.pulumi(ctx, "", "config", "get", "--path", key)
	if _, err := h.pulumi(ctx, "", "config", "set", "--path", key, fmt.Sprint(newMax)); err != nil {
		return err
	}
	p, previewErr := h.preview(ctx, "preview-one-change", "--diff")

	// Restore the setting, or remove it when the stack did not set it.
	var restoreErr error
	if getErr == nil {
		_, restoreErr = h.pulumi(ctx, "", "config", "set", "--path", key, strings.TrimSpace(string(previous)))
	} else {
		_, restoreErr = h.pulumi(ctx, "", "config", "rm", "--path", key)
	}

	if previewErr != nil {
		return errors.Join(previewErr, restoreErr)
	}
	change := checkOneChange(p, "kubernetes:keda.sh/v1alpha1:ScaledObject", "worker-scaledobject",
		[]string{"spec.maxReplicaCount"}, map[string]any{"spec": map[string]any{"maxReplicaCount": float64(newMax)}})
	return errors.Join(change, restoreErr)
}
