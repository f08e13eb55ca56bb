//go:build cluster

package clustertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// namespace is the stack's namespace: the infra default, which
// Pulumi.dev.yaml keeps.
const namespace = "workflow"

// tier is one workload of the stack as the infra program declares it.
type tier struct {
	component string
	// role is the node role the tier's pods must run on.
	role string
	// kind is "deployment" or "statefulset".
	kind     string
	replicas int
}

// tiers lists the workloads in the order of their priority, highest first.
var tiers = []tier{
	{component: "postgres", role: "stateful", kind: "statefulset", replicas: 1},
	{component: "rabbitmq", role: "stateful", kind: "statefulset", replicas: 1},
	{component: "worker", role: "stateless", kind: "deployment", replicas: 3},
	{component: "api", role: "stateless", kind: "deployment", replicas: 2},
	{component: "monitor", role: "stateless", kind: "deployment", replicas: 1},
}

// claimSizes maps the StatefulSets' PVCs to their requested sizes.
var claimSizes = map[string]string{"data-postgres-0": "20Gi", "data-rabbitmq-0": "10Gi"}

// podsTimeout bounds the wait for every pod to run after `pulumi up`.
const podsTimeout = 3 * time.Minute

// TestCluster applies the dev stack to the cluster in TASKFLOW_CLUSTER_DIR,
// checks the live objects, previews twice, destroys the stack and checks
// that nothing of it is left. Each claim prints one PASS or FAIL line.
func TestCluster(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	r := &report{out: os.Stdout}
	defer func() {
		fmt.Println(r.summary())
		if r.failed > 0 {
			t.Errorf("%s; Pulumi output is in %s", r.summary(), h.logs)
		}
	}()

	// Stack.
	if !r.check("dev stack set up for a cluster without addon controllers", h.createStack(ctx)) {
		return
	}
	cfg, err := h.readStackConfig()
	if err != nil {
		t.Fatalf("read stack config: %v", err)
	}
	var nodesBefore list[node]
	if err := h.get(ctx, &nodesBefore, "nodes"); err != nil {
		t.Fatalf("list nodes before up: %v", err)
	}
	r.check("preview pushes no image", h.checkPreviewPushesNothing(ctx))

	destroyed := false
	t.Cleanup(func() {
		if destroyed {
			return
		}
		// The test stopped early, perhaps in the middle of `up`. Keep the
		// objects for inspection, then leave the cluster as it was.
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		defer cancel()
		if err := h.writeObjects(ctx); err != nil {
			t.Logf("write live objects: %v", err)
		}
		if _, err := h.pulumi(ctx, "destroy-cleanup", "destroy", "--yes", "--skip-preview"); err != nil {
			t.Errorf("destroy after a failed test: %v", err)
		}
	})
	_, err = h.pulumi(ctx, "up", "up", "--yes", "--skip-preview")
	if !r.check("pulumi up applies the stack", err) {
		return
	}

	// Live objects.
	pods, err := h.waitForPods(ctx)
	if !r.check("pods of every tier Running", err) {
		return
	}
	var nodes list[node]
	if err := h.get(ctx, &nodes, "nodes"); err != nil {
		t.Fatalf("list nodes: %v", err)
	}
	roles := map[string]string{}
	var order []string
	for _, tr := range tiers {
		roles[tr.component] = tr.role
		order = append(order, tr.component)
	}
	r.check("nodes labelled and tainted as the stack config says",
		checkNodeRoles(nodes.Items, cfg.Config.Nodes.Stateful, cfg.Config.Nodes.Stateless))
	r.check("pods run on nodes of their role", checkPlacement(pods, nodes.Items, roles))
	r.check("stateful taint keeps pods without its toleration off", h.checkTaintRepels(ctx))
	r.check("workers spread over the stateless nodes", h.checkWorkerSpread(ctx, pods, nodes.Items))
	r.check("qos class of every pod equals the declared class", checkQoS(pods))
	r.check("pod priority postgres > rabbitmq > worker > api > monitor", checkPriorityOrder(pods, order))
	r.check("pvcs bound with the requested sizes", h.checkClaims(ctx))
	r.check("namespace enforces pod security restricted", h.checkNamespaceEnforces(ctx))
	r.check("every pod of the stack admitted", h.checkAdmitted(ctx, pods))
	r.check("non-compliant pod rejected", h.checkNonCompliantRejected(ctx))
	r.check("keda and cert-manager objects stored as declared", h.checkCustomResources(ctx))
	r.check("crd schemas reject invalid objects", h.checkSchemasReject(ctx))
	r.check("ingress routes /api and /flower with tls", h.checkIngress(ctx, cfg.Config.Ingress.Host))
	r.check("network policies exist and select pods", h.checkNetworkPolicies(ctx, pods))
	r.check("images pushed and referenced by digest", h.checkImages(ctx, pods))
	r.check("credentials not in plain text in state or config", h.checkSecretsEncrypted(ctx))
	r.check("live objects written", h.writeObjects(ctx))
	fmt.Printf("live objects: %s\n", h.objects)

	// Diffs.
	r.check("second preview plans no change", h.checkNoChangePreview(ctx))
	r.check("one config change previews one change", h.checkConfigChange(ctx))

	// Teardown.
	_, err = h.pulumi(ctx, "destroy", "destroy", "--yes", "--skip-preview")
	destroyed = err == nil
	if !r.check("pulumi destroy deletes the stack", err) {
		return
	}
	r.check("destroy removes the namespace", h.checkNamespaceGone(ctx))
	r.check("destroy removes cluster-scoped objects", h.checkClusterScopedGone(ctx))
	r.check("destroy restores node labels and taints", h.checkNodesRestored(ctx, nodesBefore.Items))
	r.check("destroy leaves no labelled object", h.checkNoLabelledObjects(ctx))
	if _, err := h.pulumi(ctx, "stack-rm", "stack", "rm", stack, "--yes"); err != nil {
		t.Errorf("remove stack: %v", err)
	}
}

// waitForPods waits until every tier has its replica count of pods, all
// Running and none terminating, and returns them.
func (h *harness) waitForPods(ctx context.Context) ([]pod, error) {
	var pods list[pod]
	err := waitFor(ctx, podsTimeout, func() (bool, string, error) {
		if err := h.get(ctx, &pods, "pods", "-n", namespace); err != nil {
			return false, "", err
		}
		running := map[string]int{}
		total := map[string]int{}
		for _, p := range pods.Items {
			component := p.Metadata.Labels[labelName]
			total[component]++
			if p.Status.Phase == "Running" && p.Metadata.DeletionTimestamp == "" {
				running[component]++
			}
		}
		var status []string
		done := true
		for _, tr := range tiers {
			status = append(status, fmt.Sprintf("%s %d of %d Running (%d pods)", tr.component, running[tr.component], tr.replicas, total[tr.component]))
			done = done && running[tr.component] == tr.replicas && total[tr.component] == tr.replicas
		}
		// A pod of no tier, such as a leftover, also keeps the wait going.
		return done && len(pods.Items) == podCount(), strings.Join(status, ", "), nil
	})
	if err != nil {
		return nil, errors.Join(err, h.warnings(ctx))
	}
	return pods.Items, nil
}

// warnings returns the namespace's first distinct Warning events as an
// error, such as a pod that Pod Security rejected or that no node fits, or
// nil when there are none.
func (h *harness) warnings(ctx context.Context) error {
	const limit = 5
	var events list[event]
	if err := h.get(ctx, &events, "events", "-n", namespace); err != nil {
		return err
	}
	var lines []string
	for _, e := range events.Items {
		line := fmt.Sprintf("%s %s: %s: %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		if e.Type == "Warning" && !slices.Contains(lines, line) {
			lines = append(lines, line)
		}
	}
	switch {
	case len(lines) == 0:
		return nil
	case len(lines) > limit:
		return fmt.Errorf("warning events: %s; and %d more", strings.Join(lines[:limit], "; "), len(lines)-limit)
	default:
		return fmt.Errorf("warning events: %s", strings.Join(lines, "; "))
	}
}

// podCount returns the number of pods the tiers declare.
func podCount() int {
	n := 0
	for _, tr := range tiers {
		n += tr.replicas
	}
	return n
}

// createStack creates the stack from the copied Pulumi.dev.yaml, turns off
// what needs controllers that the cluster lacks, points the image push at
// the cluster's registry and sets a random secret seed.
func (h *harness) createStack(ctx context.Context) error {
	if _, err := h.pulumi(ctx, "stack-init", "stack", "init", stack, "--secrets-provider", "passphrase"); err != nil {
		return err
	}
	overrides := []struct{ path, value string }{
		// Helm charts cannot be downloaded here.
		{"taskflow:addons.ingressNginx.enabled", "false"},
		{"taskflow:addons.keda.enabled", "false"},
		{"taskflow:addons.certManager.enabled", "false"},
		// No cert-manager writes the CA Secret that the export reads.
		{"taskflow:ingress.exportCa", "false"},
		// No ingress controller publishes an address.
		{"taskflow:ingress.skipAwait", "true"},
		{"taskflow:images.registry", h.registry},
	}
	for _, o := range overrides {
		if _, err := h.pulumi(ctx, "", "config", "set", "--path", o.path, o.value); err != nil {
			return err
		}
	}
	// The seed goes through stdin, so it appears in no command line or log.
	_, err := h.run(ctx, "", []byte(h.seed), "pulumi", "config", "set", "--secret", "taskflow:secretSeed", "--non-interactive")
	return err
}
