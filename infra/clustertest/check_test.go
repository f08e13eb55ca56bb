package clustertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func newNode(name, role string, taints ...taint) node {
	n := node{Metadata: objectMeta{Name: name, Labels: map[string]string{}}}
	if role != "" {
		n.Metadata.Labels[labelRole] = role
	}
	n.Spec.Taints = taints
	return n
}

func newPod(name, component, nodeName string) pod {
	p := pod{Metadata: objectMeta{
		Name:        name,
		Labels:      map[string]string{labelName: component},
		Annotations: map[string]string{},
	}}
	p.Spec.NodeName = nodeName
	p.Status.Phase = "Running"
	return p
}

func withPriority(p pod, priority int) pod {
	p.Spec.Priority = &priority
	return p
}

func withQoS(p pod, declared, got string) pod {
	p.Metadata.Annotations[qosAnnotation] = declared
	p.Status.QOSClass = got
	return p
}

var statefulTaint = taint{Key: labelRole, Value: "stateful", Effect: "NoSchedule"}

// kindNodes are the dev stack's nodes after `pulumi up`.
func kindNodes() []node {
	return []node{
		newNode("cp", "", taint{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"}),
		newNode("w1", "stateful", statefulTaint),
		newNode("w2", "stateless"),
		newNode("w3", "stateless"),
	}
}

// checkError fails t unless err contains want, or is nil when want is empty.
func checkError(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("error = %v, want nil", err)
	case want != "" && err == nil:
		t.Errorf("error = nil, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("error = %v, want one containing %q", err, want)
	}
}

func TestReportLines(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	r := &report{out: &out}

	if !r.check("first claim", nil) {
		t.Error("check(nil) = false, want true")
	}
	if r.check("second claim", errors.Join(errors.New("a is wrong"), errors.New("b is wrong"))) {
		t.Error("check(error) = true, want false")
	}

	want := "PASS first claim\nFAIL second claim: a is wrong; b is wrong\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if got := r.summary(); got != "1 passed, 1 failed" {
		t.Errorf("summary() = %q, want %q", got, "1 passed, 1 failed")
	}
}

func TestCheckNodeRoles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		nodes   []node
		wantErr string
	}{
		{name: "roles as configured", nodes: kindNodes()},
		{
			name:    "stateful node without taint",
			nodes:   []node{newNode("w1", "stateful"), newNode("w2", "stateless"), newNode("w3", "stateless")},
			wantErr: "node w1 has taints [], want one of them",
		},
		{
			name:    "stateless node tainted",
			nodes:   []node{newNode("w1", "stateful", statefulTaint), newNode("w2", "stateless", statefulTaint), newNode("w3", "stateless")},
			wantErr: "node w2 has a role taint",
		},
		{
			name:    "unlisted node labelled",
			nodes:   append(kindNodes(), newNode("w4", "stateless")),
			wantErr: `node w4 has label role="stateless", want ""`,
		},
		{
			name:    "listed node missing",
			nodes:   kindNodes()[:3],
			wantErr: "node w3 from the stack config not found",
		},
		{
			name:    "roles swapped",
			nodes:   []node{newNode("w1", "stateless"), newNode("w2", "stateful", statefulTaint), newNode("w3", "stateless")},
			wantErr: `node w1 has label role="stateless", want "stateful"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkError(t, checkNodeRoles(tt.nodes, []string{"w1"}, []string{"w2", "w3"}), tt.wantErr)
		})
	}
}

func TestCheckPlacement(t *testing.T) {
	t.Parallel()
	roles := map[string]string{"postgres": "stateful", "api": "stateless"}
	pending := newPod("api-2", "api", "w2")
	pending.Status.Phase = "Pending"
	tests := []struct {
		name    string
		pods    []pod
		wantErr string
	}{
		{name: "each on its role", pods: []pod{newPod("postgres-0", "postgres", "w1"), newPod("api-1", "api", "w2"), newPod("api-2", "api", "w3")}},
		{
			name:    "stateless pod on stateful node",
			pods:    []pod{newPod("postgres-0", "postgres", "w1"), newPod("api-1", "api", "w1")},
			wantErr: `pod api-1 (api) runs on node w1 with role "stateful", want "stateless"`,
		},
		{
			name:    "stateful pod on control plane",
			pods:    []pod{newPod("postgres-0", "postgres", "cp"), newPod("api-1", "api", "w2")},
			wantErr: `pod postgres-0 (postgres) runs on node cp with role "", want "stateful"`,
		},
		{
			name:    "pod pending",
			pods:    []pod{newPod("postgres-0", "postgres", "w1"), pending},
			wantErr: "pod api-2 is Pending, want Running",
		},
		{
			name:    "pod unscheduled",
			pods:    []pod{newPod("postgres-0", "postgres", "w1"), newPod("api-1", "api", "")},
			wantErr: `pod api-1 is not bound to a known node (nodeName "")`,
		},
		{
			name:    "unknown component",
			pods:    []pod{newPod("postgres-0", "postgres", "w1"), newPod("api-1", "api", "w2"), newPod("x", "other", "w2")},
			wantErr: `pod x has unknown component "other"`,
		},
		{
			name:    "component without pods",
			pods:    []pod{newPod("postgres-0", "postgres", "w1")},
			wantErr: "no pod of component api",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkError(t, checkPlacement(tt.pods, kindNodes(), roles), tt.wantErr)
		})
	}
}

func TestCheckSpread(t *testing.T) {
	t.Parallel()
	hostname := topologySpreadConstraint{MaxSkew: 1, TopologyKey: hostnameTopologyKey}
	workers := func(nodeNames ...string) []pod {
		var pods []pod
		for i, n := range nodeNames {
			pods = append(pods, newPod("worker-"+string(rune('a'+i)), "worker", n))
		}
		return append(pods, newPod("api-1", "api", "w2"), newPod("api-2", "api", "w2"))
	}
	tests := []struct {
		name       string
		pods       []pod
		constraint topologySpreadConstraint
		wantErr    string
	}{
		{name: "two and one", pods: workers("w2", "w3", "w2"), constraint: hostname},
		{
			name:       "three and none",
			pods:       workers("w2", "w2", "w2"),
			constraint: hostname,
			wantErr:    "worker pods per stateless node map[w2:3 w3:0]: skew 3 exceeds maxSkew 1",
		},
		{name: "skew within a larger maxSkew", pods: workers("w2", "w2", "w3"), constraint: topologySpreadConstraint{MaxSkew: 2, TopologyKey: hostnameTopologyKey}},
		{
			name:       "pod on stateful node",
			pods:       workers("w2", "w3", "w1"),
			constraint: hostname,
			wantErr:    `pod worker-c runs on node "w1", which is not a stateless node`,
		},
		{
			name:       "zone key unsupported",
			pods:       workers("w2", "w3", "w2"),
			constraint: topologySpreadConstraint{MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone"},
			wantErr:    `topologyKey "topology.kubernetes.io/zone"`,
		},
		{
			name:       "zero maxSkew",
			pods:       workers("w2", "w3", "w2"),
			constraint: topologySpreadConstraint{TopologyKey: hostnameTopologyKey},
			wantErr:    "maxSkew 0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkError(t, checkSpread(tt.pods, kindNodes(), "worker", "stateless", tt.constraint), tt.wantErr)
		})
	}
}

func TestCheckQoS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pods    []pod
		wantErr string
	}{
		{
			name: "classes as declared",
			pods: []pod{
				withQoS(newPod("postgres-0", "postgres", "w1"), "Guaranteed", "Guaranteed"),
				withQoS(newPod("api-1", "api", "w2"), "Burstable", "Burstable"),
			},
		},
		{
			name:    "computed differs",
			pods:    []pod{withQoS(newPod("postgres-0", "postgres", "w1"), "Guaranteed", "Burstable")},
			wantErr: `pod postgres-0 has qosClass "Burstable", declared "Guaranteed"`,
		},
		{
			name:    "annotation missing",
			pods:    []pod{newPod("api-1", "api", "w2")},
			wantErr: "pod api-1 has no taskflow.dev/qos-class annotation",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkError(t, checkQoS(tt.pods), tt.wantErr)
		})
	}
}

func TestCheckPriorityOrder(t *testing.T) {
	t.Parallel()
	order := []string{"postgres", "worker", "api"}
	tests := []struct {
		name    string
		pods    []pod
		wantErr string
	}{
		{
			name: "descending",
			pods: []pod{
				withPriority(newPod("postgres-0", "postgres", "w1"), 300),
				withPriority(newPod("worker-a", "worker", "w2"), 200),
				withPriority(newPod("worker-b", "worker", "w3"), 200),
				withPriority(newPod("api-1", "api", "w2"), 100),
			},
		},
		{
			name: "equal neighbours",
			pods: []pod{
				withPriority(newPod("postgres-0", "postgres", "w1"), 300),
				withPriority(newPod("worker-a", "worker", "w2"), 100),
				withPriority(newPod("api-1", "api", "w2"), 100),
			},
			wantErr: "priority of worker (100) is not above api (100)",
		},
		{
			name: "reversed",
			pods: []pod{
				withPriority(newPod("postgres-0", "postgres", "w1"), 100),
				withPriority(newPod("worker-a", "worker", "w2"), 200),
				withPriority(newPod("api-1", "api", "w2"), 50),
			},
			wantErr: "priority of postgres (100) is not above worker (200)",
		},
		{
			name: "priority missing",
			pods: []pod{
				newPod("postgres-0", "postgres", "w1"),
				withPriority(newPod("worker-a", "worker", "w2"), 200),
				withPriority(newPod("api-1", "api", "w2"), 100),
			},
			wantErr: "pod postgres-0 has no spec.priority",
		},
		{
			name: "pods of one component differ",
			pods: []pod{
				withPriority(newPod("postgres-0", "postgres", "w1"), 300),
				withPriority(newPod("worker-a", "worker", "w2"), 200),
				withPriority(newPod("worker-b", "worker", "w3"), 150),
				withPriority(newPod("api-1", "api", "w2"), 100),
			},
			wantErr: "pods of worker have priorities 200 and 150",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkError(t, checkPriorityOrder(tt.pods, order), tt.wantErr)
		})
	}
}

func TestCheckPVCs(t *testing.T) {
	t.Parallel()
	claim := func(name, phase, requested, capacity string) persistentVolumeClaim {
		var c persistentVolumeClaim
		c.Metadata.Name = name
		c.Spec.Resources.Requests = map[string]string{"storage": requested}
		c.Status.Phase = phase
		c.Status.Capacity = map[string]string{"storage": capacity}
		return c
	}
	sizes := map[string]string{"data-postgres-0": "20Gi", "data-rabbitmq-0": "10Gi"}
	tests := []struct {
		name    string
		claims  []persistentVolumeClaim
		wantErr string
	}{
		{name: "bound at size", claims: []persistentVolumeClaim{claim("data-postgres-0", "Bound", "20Gi", "20Gi"), claim("data-rabbitmq-0", "Bound", "10Gi", "10Gi")}},
		{
			name:    "pending",
			claims:  []persistentVolumeClaim{claim("data-postgres-0", "Pending", "20Gi", ""), claim("data-rabbitmq-0", "Bound", "10Gi", "10Gi")},
			wantErr: `pvc data-postgres-0 is "Pending", want Bound`,
		},
		{
			name:    "wrong request",
			claims:  []persistentVolumeClaim{claim("data-postgres-0", "Bound", "20Gi", "20Gi"), claim("data-rabbitmq-0", "Bound", "1Gi", "1Gi")},
			wantErr: `pvc data-rabbitmq-0 requests "1Gi", want "10Gi"`,
		},
		{
			name:    "missing",
			claims:  []persistentVolumeClaim{claim("data-postgres-0", "Bound", "20Gi", "20Gi")},
			wantErr: "pvc data-rabbitmq-0 not found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkError(t, checkPVCs(tt.claims, sizes), tt.wantErr)
		})
	}
}

func TestSubsetDiff(t *testing.T) {
	t.Parallel()
	decode := func(s string) any {
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatalf("decode %s: %v", s, err)
		}
		return v
	}
	tests := []struct {
		name string
		want string
		got  string
		diff []string
	}{
		{name: "equal", want: `{"a":1,"b":["x"]}`, got: `{"a":1,"b":["x"]}`},
		{name: "extra default in got", want: `{"a":{"b":1}}`, got: `{"a":{"b":1,"c":true}}`},
		{name: "pruned field", want: `{"a":{"b":1,"c":2}}`, got: `{"a":{"b":1}}`, diff: []string{"spec.a.c: missing"}},
		{name: "changed value", want: `{"a":[{"b":"x"}]}`, got: `{"a":[{"b":"y"}]}`, diff: []string{`spec.a[0].b: got "y", want "x"`}},
		{name: "list length", want: `{"a":[1,2]}`, got: `{"a":[1]}`, diff: []string{"spec.a: got [1], want a list of 2"}},
		{name: "object replaced", want: `{"a":{"b":1}}`, got: `{"a":"b"}`, diff: []string{`spec.a: got "b", want an object`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := subsetDiff("spec", decode(tt.want), decode(tt.got))
			if diff := cmp.Diff(tt.diff, got); diff != "" {
				t.Errorf("subsetDiff (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckDigestRef(t *testing.T) {
	t.Parallel()
	digest := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		ref     string
		wantErr string
	}{
		{name: "digest reference", ref: "127.0.0.1:5000/taskflow/api@" + digest},
		{name: "tag", ref: "127.0.0.1:5000/taskflow/api:dev", wantErr: "is not 127.0.0.1:5000/taskflow/api@sha256:<digest>"},
		{name: "tag and digest", ref: "127.0.0.1:5000/taskflow/api:dev@" + digest, wantErr: "is not"},
		{name: "other registry", ref: "localhost:5001/taskflow/api@" + digest, wantErr: "is not"},
		{name: "short digest", ref: "127.0.0.1:5000/taskflow/api@sha256:abcd", wantErr: "is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkError(t, checkDigestRef(tt.ref, "127.0.0.1:5000/taskflow/api"), tt.wantErr)
		})
	}
}

// previewJSON is the shape of `pulumi preview --json` output, trimmed to the
// fields the checks read.
const previewJSON = `{
  "steps": [
    {"op": "same", "urn": "urn:pulumi:dev::taskflow::pulumi:pulumi:Stack::taskflow-dev"},
    {"op": "read", "urn": "urn:pulumi:dev::taskflow::taskflow:infra:Ingress$kubernetes:core/v1:Secret::ca-secret"},
    {
      "op": "update",
      "urn": "urn:pulumi:dev::taskflow::taskflow:infra:Autoscaling$kubernetes:keda.sh/v1alpha1:ScaledObject::worker-scaledobject",
      "detailedDiff": {"spec.maxReplicaCount": {"kind": "update", "inputDiff": false}},
      "newState": {"inputs": {"spec": {"maxReplicaCount": 12, "minReplicaCount": 3}}}
    }%s
  ],
  "changeSummary": {"same": 1, "update": 1}
}`

// imageStep is a second change for previewJSON.
const imageStep = `,
    {
      "op": "update",
      "urn": "urn:pulumi:dev::taskflow::taskflow:infra:API$kubernetes:apps/v1:Deployment::api-deployment",
      "detailedDiff": {"spec.template.spec.containers[0].image": {"kind": "update"}}
    }`

func decodePreview(t *testing.T, text string) previewResult {
	t.Helper()
	var p previewResult
	if err := json.Unmarshal([]byte(text), &p); err != nil {
		t.Fatalf("decode preview: %v", err)
	}
	return p
}

func TestCheckOneChange(t *testing.T) {
	t.Parallel()
	const scaledObject = "kubernetes:keda.sh/v1alpha1:ScaledObject"
	newMax := map[string]any{"spec": map[string]any{"maxReplicaCount": 12.0}}
	tests := []struct {
		name    string
		preview string
		paths   []string
		inputs  map[string]any
		wantErr string
	}{
		{name: "one update", preview: strings.Replace(previewJSON, "%s", "", 1), paths: []string{"spec.maxReplicaCount"}, inputs: newMax},
		{
			name:    "second change",
			preview: strings.Replace(previewJSON, "%s", imageStep, 1),
			paths:   []string{"spec.maxReplicaCount"},
			inputs:  newMax,
			wantErr: "preview plans 2 changes, want 1",
		},
		{
			name:    "other path",
			preview: strings.Replace(previewJSON, "%s", "", 1),
			paths:   []string{"spec.minReplicaCount"},
			inputs:  newMax,
			wantErr: scaledObject + " worker-scaledobject changes [spec.maxReplicaCount], want [spec.minReplicaCount]",
		},
		{
			name:    "other value",
			preview: strings.Replace(previewJSON, "%s", "", 1),
			paths:   []string{"spec.maxReplicaCount"},
			inputs:  map[string]any{"spec": map[string]any{"maxReplicaCount": 11.0}},
			wantErr: "inputs.spec.maxReplicaCount: got 12, want 11",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := decodePreview(t, tt.preview)
			checkError(t, checkOneChange(p, scaledObject, "worker-scaledobject", tt.paths, tt.inputs), tt.wantErr)
		})
	}
}

func TestCheckSameSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		got     []string
		wantErr string
	}{
		{name: "same order", got: []string{"a", "b", "c"}},
		{name: "other order", got: []string{"c", "a", "b"}},
		{name: "one renamed", got: []string{"a", "b", "x"}, wantErr: "policies: missing [c], unexpected [x]"},
		{name: "one missing", got: []string{"a", "b"}, wantErr: "policies: missing [c], unexpected []"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkError(t, checkSameSet("policies", []string{"a", "b", "c"}, tt.got), tt.wantErr)
		})
	}
}

func TestCheckNoChanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		preview string
		wantErr string
	}{
		{
			name:    "same and read only",
			preview: `{"steps": [{"op": "same", "urn": "urn:pulumi:dev::taskflow::pulumi:pulumi:Stack::taskflow-dev"}, {"op": "read", "urn": "urn:pulumi:dev::taskflow::kubernetes:core/v1:Secret::ca-secret"}]}`,
		},
		{
			name:    "one update",
			preview: strings.Replace(previewJSON, "%s", "", 1),
			wantErr: "preview plans 1 changes: [update kubernetes:keda.sh/v1alpha1:ScaledObject worker-scaledobject [spec.maxReplicaCount]]",
		},
		{name: "no steps", preview: `{"steps": []}`, wantErr: "preview lists no steps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkError(t, checkNoChanges(decodePreview(t, tt.preview)), tt.wantErr)
		})
	}
}

func TestErrorMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		output string
		want   string
	}{
		{
			name: "pulumi progress and summary",
			output: "warning: using pulumi-language-go from $PATH\n" +
				" +  kubernetes:keda.sh/v1alpha1:ScaledObject worker creating (0s) error: .spec.bogus: field not declared in schema\n" +
				" +  pulumi:pulumi:Stack taskflow-dev creating (23s) error: update failed\n" +
				"    error: .spec.bogus: field not declared in schema\n",
			want: ".spec.bogus: field not declared in schema; update failed",
		},
		{
			name:   "kubectl server error",
			output: `Error from server (NotFound): namespaces "workflow" not found` + "\n",
			want:   `Error from server (NotFound): namespaces "workflow" not found`,
		},
		{
			name:   "no error line",
			output: "one\ntwo\n\nthree\nfour\nfive\n",
			want:   "two; three; four; five",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := errorMessages(tt.output); got != tt.want {
				t.Errorf("errorMessages() = %q, want %q", got, tt.want)
			}
		})
	}
}
