package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	typeDeployment  = "kubernetes:apps/v1:Deployment"
	typeStatefulSet = "kubernetes:apps/v1:StatefulSet"
	typeService     = "kubernetes:core/v1:Service"
	typeConfigMap   = "kubernetes:core/v1:ConfigMap"
	typeSecret      = "kubernetes:core/v1:Secret"
	typeNodePatch   = "kubernetes:core/v1:NodePatch"
	typeNamespace   = "kubernetes:core/v1:Namespace"
	typePriority    = "kubernetes:scheduling.k8s.io/v1:PriorityClass"
	typeHPA         = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
	typePDB         = "kubernetes:policy/v1:PodDisruptionBudget"
	typeNetPol      = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
	typeIngress     = "kubernetes:networking.k8s.io/v1:Ingress"
	typeRelease     = "kubernetes:helm.sh/v3:Release"
	typeProvider    = "pulumi:providers:kubernetes"
	typeScaledObj   = "kubernetes:keda.sh/v1alpha1:ScaledObject"
	typeTriggerAuth = "kubernetes:keda.sh/v1alpha1:TriggerAuthentication"
	typeCertificate = "kubernetes:cert-manager.io/v1:Certificate"
	typeIssuer      = "kubernetes:cert-manager.io/v1:Issuer"
	typeClusterIss  = "kubernetes:cert-manager.io/v1:ClusterIssuer"
)

func TestWorkloadShape(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())

	type shape struct {
		Kind     string
		Replicas int
		Storage  string
		Requests map[string]string
		Limits   map[string]string
	}
	want := map[string]shape{
		"rabbitmq": {typeStatefulSet, 1, "10Gi", map[string]string{"cpu": "250m", "memory": "512Mi"}, map[string]string{"cpu": "500m", "memory": "1Gi"}},
		"postgres": {typeStatefulSet, 1, "20Gi", map[string]string{"cpu": "1", "memory": "2Gi"}, map[string]string{"cpu": "1", "memory": "2Gi"}},
		"worker":   {typeDeployment, 3, "", map[string]string{"cpu": "500m", "memory": "512Mi"}, map[string]string{"cpu": "1", "memory": "1Gi"}},
		"api":      {typeDeployment, 2, "", map[string]string{"cpu": "300m", "memory": "256Mi"}, map[string]string{"cpu": "500m", "memory": "512Mi"}},
		"monitor":  {typeDeployment, 1, "", map[string]string{"cpu": "100m", "memory": "128Mi"}, map[string]string{"cpu": "300m", "memory": "256Mi"}},
	}

	got := map[string]shape{}
	for _, typ := range []string{typeDeployment, typeStatefulSet} {
		for _, r := range d.ofType(typ) {
			s := shape{
				Kind:     typ,
				Replicas: number(r.Inputs, "spec", "replicas"),
				Storage:  fmt.Sprint(dig(r.Inputs, "spec", "volumeClaimTemplates", 0, "spec", "resources", "requests", "storage")),
				Requests: stringMapOf(r.Inputs, "spec", "template", "spec", "containers", 0, "resources", "requests"),
				Limits:   stringMapOf(r.Inputs, "spec", "template", "spec", "containers", 0, "resources", "limits"),
			}
			if s.Storage == "<nil>" {
				s.Storage = ""
			}
			got[r.ObjectName()] = s
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("workloads (-want +got):\n%s", diff)
	}
}

func TestServicePorts(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())

	want := map[string]map[string]int{
		"rabbitmq":          {"amqp": 5672, "management": 15672},
		"rabbitmq-headless": {"epmd": 4369, "amqp": 5672, "dist": 25672},
		"postgres":          {"postgres": 5432},
		"postgres-headless": {"postgres": 5432},
		"api":               {"http": 5000},
		"monitor":           {"http": 5555},
	}
	got := map[string]map[string]int{}
	for _, r := range d.ofType(typeService) {
		ports := map[string]int{}
		for _, p := range list(r.Inputs, "spec", "ports") {
			ports[fmt.Sprint(dig(p, "name"))] = number(p, "port")
		}
		got[r.ObjectName()] = ports
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("service ports (-want +got):\n%s", diff)
	}

	for _, name := range []string{"rabbitmq", "postgres", "api", "monitor"} {
		if typ := dig(d.object(t, typeService, name).Inputs, "spec", "type"); typ != "ClusterIP" {
			t.Errorf("service %s type = %v, want ClusterIP", name, typ)
		}
	}
	for _, name := range []string{"rabbitmq-headless", "postgres-headless"} {
		if ip := dig(d.object(t, typeService, name).Inputs, "spec", "clusterIP"); ip != "None" {
			t.Errorf("service %s clusterIP = %v, want None", name, ip)
		}
	}
}

func TestProbePaths(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())

	type probes struct{ Liveness, Readiness, Port string }
	want := map[string]probes{
		"api":     {"/api/healthz", "/api/readyz", "http"},
		"worker":  {"/healthz", "/readyz", "http"},
		"monitor": {"/flower/healthz", "/flower/readyz", "http"},
	}
	got := map[string]probes{}
	for name, tmpl := range d.podTemplates() {
		c := dig(tmpl, "spec", "containers", 0)
		if dig(c, "livenessProbe", "httpGet") == nil {
			continue
		}
		got[name] = probes{
			Liveness:  fmt.Sprint(dig(c, "livenessProbe", "httpGet", "path")),
			Readiness: fmt.Sprint(dig(c, "readinessProbe", "httpGet", "path")),
			Port:      fmt.Sprint(dig(c, "readinessProbe", "httpGet", "port")),
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("http probes (-want +got):\n%s", diff)
	}

	pg := dig(d.podTemplates()["postgres"], "spec", "containers", 0)
	for _, probe := range []string{"startupProbe", "livenessProbe", "readinessProbe"} {
		if cmd := list(pg, probe, "exec", "command"); len(cmd) == 0 || cmd[0] != "pg_isready" {
			t.Errorf("postgres %s command = %v, want pg_isready", probe, cmd)
		}
	}
	rmq := dig(d.podTemplates()["rabbitmq"], "spec", "containers", 0)
	for _, probe := range []string{"livenessProbe", "readinessProbe"} {
		if cmd := list(rmq, probe, "exec", "command"); len(cmd) == 0 || cmd[0] != "rabbitmq-diagnostics" {
			t.Errorf("rabbitmq %s command = %v, want rabbitmq-diagnostics", probe, cmd)
		}
	}
}

func TestPriorityOrder(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())

	values := map[string]int{}
	for _, r := range d.ofType(typePriority) {
		values[r.ObjectName()] = number(r.Inputs, "value")
	}
	order := []string{"postgres", "rabbitmq", "worker", "api", "monitor"}
	for i := 1; i < len(order); i++ {
		hi, lo := values[priorityClassName(order[i-1])], values[priorityClassName(order[i])]
		if hi <= lo {
			t.Errorf("priority of %s (%d) is not above %s (%d)", order[i-1], hi, order[i], lo)
		}
	}

	templates := d.podTemplates()
	for _, name := range order {
		got := dig(templates[name], "spec", "priorityClassName")
		if _, ok := values[fmt.Sprint(got)]; !ok || got != priorityClassName(name) {
			t.Errorf("%s priorityClassName = %v, want %s, a declared class", name, got, priorityClassName(name))
		}
	}
}

func TestDeclaredQoSMatchesPodSpec(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())

	want := map[string]string{
		"postgres": qosGuaranteed, "rabbitmq": qosBurstable, "worker": qosBurstable,
		"api": qosBurstable, "monitor": qosBurstable,
	}
	got := map[string]string{}
	for name, tmpl := range d.podTemplates() {
		var resources []Resources
		for _, c := range containersOf(tmpl) {
			resources = append(resources, Resources{
				Requests: ResourceList{CPU: str(dig(c, "resources", "requests", "cpu")), Memory: str(dig(c, "resources", "requests", "memory"))},
				Limits:   ResourceList{CPU: str(dig(c, "resources", "limits", "cpu")), Memory: str(dig(c, "resources", "limits", "memory"))},
			})
		}
		computed, err := qosClass(resources)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		declared := dig(tmpl, "metadata", "annotations", qosAnnotation)
		if declared != computed {
			t.Errorf("%s declares QoS %v but its pod spec gives %s", name, declared, computed)
		}
		got[name] = computed
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("QoS classes (-want +got):\n%s", diff)
	}
}

// str returns a string value, or "" for anything else.
func str(v any) string {
	s, _ := v.(string)
	return s
}

func TestSelectorsMatchLabels(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())
	templates := d.podTemplates()
	podLabelsOf := map[string]map[string]string{}
	for name, tmpl := range templates {
		podLabelsOf[name] = stringMapOf(tmpl, "metadata", "labels")
	}
	// matching returns the workloads whose pods selector selects.
	matching := func(selector map[string]string) []string {
		var out []string
		for name, labels := range podLabelsOf {
			if len(selector) > 0 && isSubset(selector, labels) {
				out = append(out, name)
			}
		}
		slices.Sort(out)
		return out
	}

	t.Run("workload selectors", func(t *testing.T) {
		t.Parallel()
		for _, typ := range []string{typeDeployment, typeStatefulSet} {
			for _, r := range d.ofType(typ) {
				sel := stringMapOf(r.Inputs, "spec", "selector", "matchLabels")
				if got := matching(sel); !slices.Equal(got, []string{r.ObjectName()}) {
					t.Errorf("%s selector %v selects %v, want only its own pods", r.ObjectName(), sel, got)
				}
			}
		}
	})
	t.Run("services", func(t *testing.T) {
		t.Parallel()
		for _, r := range d.ofType(typeService) {
			want := strings.TrimSuffix(r.ObjectName(), "-headless")
			if got := matching(stringMapOf(r.Inputs, "spec", "selector")); !slices.Equal(got, []string{want}) {
				t.Errorf("service %s selects %v, want [%s]", r.ObjectName(), got, want)
			}
		}
	})
	t.Run("disruption budgets", func(t *testing.T) {
		t.Parallel()
		for _, r := range d.ofType(typePDB) {
			if got := matching(stringMapOf(r.Inputs, "spec", "selector", "matchLabels")); !slices.Equal(got, []string{r.ObjectName()}) {
				t.Errorf("pdb %s selects %v, want [%s]", r.ObjectName(), got, r.ObjectName())
			}
		}
	})
	t.Run("network policies", func(t *testing.T) {
		t.Parallel()
		for _, r := range d.ofType(typeNetPol) {
			sel := stringMapOf(r.Inputs, "spec", "podSelector", "matchLabels")
			if len(sel) == 0 {
				continue // selects every pod of the namespace
			}
			if got := matching(sel); len(got) != 1 {
				t.Errorf("network policy %s selects %v, want one workload", r.ObjectName(), got)
			}
			for _, rule := range slices.Concat(list(r.Inputs, "spec", "ingress"), list(r.Inputs, "spec", "egress")) {
				for _, p := range slices.Concat(list(rule, "from"), list(rule, "to")) {
					if dig(p, "namespaceSelector") != nil {
						continue
					}
					if got := matching(stringMapOf(p, "podSelector", "matchLabels")); len(got) != 1 {
						t.Errorf("network policy %s peer selects %v, want one workload", r.ObjectName(), got)
					}
				}
			}
		}
	})
	t.Run("spread and anti-affinity", func(t *testing.T) {
		t.Parallel()
		for name, tmpl := range templates {
			for _, c := range list(tmpl, "spec", "topologySpreadConstraints") {
				if got := matching(stringMapOf(c, "labelSelector", "matchLabels")); !slices.Equal(got, []string{name}) {
					t.Errorf("%s spread constraint selects %v", name, got)
				}
			}
			for _, term := range list(tmpl, "spec", "affinity", "podAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution") {
				if got := matching(stringMapOf(term, "podAffinityTerm", "labelSelector", "matchLabels")); !slices.Equal(got, []string{name}) {
					t.Errorf("%s anti-affinity selects %v", name, got)
				}
			}
		}
	})
}

func isSubset(sub, of map[string]string) bool {
	for k, v := range sub {
		if of[k] != v {
			return false
		}
	}
	return true
}

func TestEveryChildHasParent(t *testing.T) {
	t.Parallel()
	for _, keda := range []bool{true, false} {
		t.Run(fmt.Sprintf("keda=%v", keda), func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.Autoscaling.KEDA = keda
			cfg.API.HPA.Enabled = true
			d := runDeploy(t, cfg)

			components := 0
			for _, r := range d.all() {
				switch {
				case r.Type == typeProvider:
					if r.ParentType() != "" {
						t.Errorf("provider has parent %s, want the stack", r.ParentType())
					}
				case !r.Custom && !r.Read:
					components++
					if !strings.HasPrefix(r.Type, "taskflow:infra:") {
						t.Errorf("component %s has type %s outside taskflow:infra", r.Name, r.Type)
					}
					if r.ParentType() != "" {
						t.Errorf("component %s has parent %s, want the stack", r.Name, r.ParentType())
					}
				default:
					if !strings.HasPrefix(r.ParentType(), "taskflow:infra:") {
						t.Errorf("%s %s has parent %q, want a taskflow:infra component", r.Type, r.Name, r.ParentType())
					}
				}
			}
			if components != 12 {
				t.Errorf("found %d components, want 12", components)
			}
		})
	}
}

func TestPodSecurityRestricted(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())

	ns := d.object(t, typeNamespace, "workflow")
	if got := dig(ns.Inputs, "metadata", "labels", "pod-security.kubernetes.io/enforce"); got != "restricted" {
		t.Errorf("namespace enforce label = %v, want restricted", got)
	}

	templates := d.podTemplates()
	if len(templates) != 5 {
		t.Fatalf("found %d pod templates, want 5", len(templates))
	}
	for name, tmpl := range templates {
		spec := dig(tmpl, "spec")
		checks := map[string]any{
			"automountServiceAccountToken":          false,
			"securityContext.runAsNonRoot":          true,
			"securityContext.seccompProfile.type":   "RuntimeDefault",
			"securityContext.fsGroupChangePolicy":   "OnRootMismatch",
			"enableServiceLinks":                    false,
			"serviceAccountName (own account)":      name,
			"hostNetwork, hostPID, hostIPC (unset)": nil,
		}
		got := map[string]any{
			"automountServiceAccountToken":          dig(spec, "automountServiceAccountToken"),
			"securityContext.runAsNonRoot":          dig(spec, "securityContext", "runAsNonRoot"),
			"securityContext.seccompProfile.type":   dig(spec, "securityContext", "seccompProfile", "type"),
			"securityContext.fsGroupChangePolicy":   dig(spec, "securityContext", "fsGroupChangePolicy"),
			"enableServiceLinks":                    dig(spec, "enableServiceLinks"),
			"serviceAccountName (own account)":      dig(spec, "serviceAccountName"),
			"hostNetwork, hostPID, hostIPC (unset)": firstNonNil(dig(spec, "hostNetwork"), dig(spec, "hostPID"), dig(spec, "hostIPC")),
		}
		if diff := cmp.Diff(checks, got); diff != "" {
			t.Errorf("%s pod spec (-want +got):\n%s", name, diff)
		}
		if uid := number(spec, "securityContext", "runAsUser"); uid == 0 {
			t.Errorf("%s runs as uid 0", name)
		}
		for _, v := range list(spec, "volumes") {
			if dig(v, "hostPath") != nil {
				t.Errorf("%s mounts a hostPath volume", name)
			}
		}

		for _, c := range containersOf(tmpl) {
			sc := dig(c, "securityContext")
			want := map[string]any{
				"allowPrivilegeEscalation": false,
				"capabilities.drop":        []any{"ALL"},
				"readOnlyRootFilesystem":   true,
				"runAsNonRoot":             true,
				"privileged":               nil,
				"capabilities.add":         nil,
			}
			got := map[string]any{
				"allowPrivilegeEscalation": dig(sc, "allowPrivilegeEscalation"),
				"capabilities.drop":        dig(sc, "capabilities", "drop"),
				"readOnlyRootFilesystem":   dig(sc, "readOnlyRootFilesystem"),
				"runAsNonRoot":             dig(sc, "runAsNonRoot"),
				"privileged":               dig(sc, "privileged"),
				"capabilities.add":         dig(sc, "capabilities", "add"),
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s container %v security context (-want +got):\n%s", name, dig(c, "name"), diff)
			}
		}
	}

	for _, r := range d.ofType("kubernetes:core/v1:ServiceAccount") {
		if dig(r.Inputs, "automountServiceAccountToken") != false {
			t.Errorf("service account %s mounts its token", r.ObjectName())
		}
	}
}

func firstNonNil(values ...any) any {
	for _, v := range values {
		if v != nil {
			return v
		}
	}
	return nil
}

func TestNodeRoles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		nodes      NodesConfig
		wantLabels map[string]string
		wantTaints map[string]bool
		required   bool
	}{
		{
			name:  "kind nodes",
			nodes: defaultConfig().Nodes,
			wantLabels: map[string]string{
				"taskflow-worker": "stateful", "taskflow-worker2": "stateless", "taskflow-worker3": "stateless",
			},
			wantTaints: map[string]bool{"taskflow-worker": true, "taskflow-worker2": false, "taskflow-worker3": false},
			required:   true,
		},
		{
			name:       "single node",
			nodes:      NodesConfig{SingleNode: true, Stateful: []string{"minikube"}},
			wantLabels: map[string]string{"minikube": "stateful"},
			wantTaints: map[string]bool{"minikube": false},
			required:   false,
		},
		{
			// The minikube steps of the docs set only singleNode and stateful[0], so the stateless
			// default of kind's node names stays in the config and must be ignored.
			name:       "single node with the stateless default",
			nodes:      NodesConfig{SingleNode: true, Stateful: []string{"minikube"}, Stateless: defaultConfig().Nodes.Stateless},
			wantLabels: map[string]string{"minikube": "stateful"},
			wantTaints: map[string]bool{"minikube": false},
			required:   false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.Nodes = tt.nodes
			d := runDeploy(t, cfg)

			labels := map[string]string{}
			taints := map[string]bool{}
			for _, r := range d.ofType(typeNodePatch) {
				labels[r.ObjectName()] = fmt.Sprint(dig(r.Inputs, "metadata", "labels", roleLabel))
				taint := dig(r.Inputs, "spec", "taints", 0)
				taints[r.ObjectName()] = taint != nil
				if taint != nil {
					want := map[string]any{"key": "role", "value": "stateful", "effect": "NoSchedule"}
					if diff := cmp.Diff(want, taint); diff != "" {
						t.Errorf("taint of %s (-want +got):\n%s", r.ObjectName(), diff)
					}
				}
			}
			if diff := cmp.Diff(tt.wantLabels, labels); diff != "" {
				t.Errorf("node labels (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantTaints, taints); diff != "" {
				t.Errorf("node taints (-want +got):\n%s", diff)
			}

			wantRole := map[string]string{
				"postgres": "stateful", "rabbitmq": "stateful", "worker": "stateless", "api": "stateless", "monitor": "stateless",
			}
			for name, tmpl := range d.podTemplates() {
				na := dig(tmpl, "spec", "affinity", "nodeAffinity")
				req := dig(na, "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms", 0, "matchExpressions", 0)
				pref := dig(na, "preferredDuringSchedulingIgnoredDuringExecution", 0, "preference", "matchExpressions", 0)
				expr, other := req, pref
				if !tt.required {
					expr, other = pref, req
				}
				if other != nil {
					t.Errorf("%s has both kinds of node affinity", name)
				}
				want := map[string]any{"key": "role", "operator": "In", "values": []any{wantRole[name]}}
				if diff := cmp.Diff(want, expr); diff != "" {
					t.Errorf("%s node affinity (-want +got):\n%s", name, diff)
				}

				tolerates := false
				for _, tol := range list(tmpl, "spec", "tolerations") {
					tolerates = tolerates || (dig(tol, "key") == "role" && dig(tol, "value") == "stateful" && dig(tol, "effect") == "NoSchedule")
				}
				if tolerates != (wantRole[name] == "stateful") {
					t.Errorf("%s tolerates the stateful taint: %v, want %v", name, tolerates, wantRole[name] == "stateful")
				}
			}
		})
	}
}

func TestWorkerScheduling(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())
	w := d.object(t, typeDeployment, "worker")
	spec := dig(w.Inputs, "spec", "template", "spec")

	spread := dig(spec, "topologySpreadConstraints", 0)
	if dig(spread, "topologyKey") != hostnameTopologyKey || number(spread, "maxSkew") != 1 {
		t.Errorf("worker spread = %v, want maxSkew 1 on %s", spread, hostnameTopologyKey)
	}
	anti := dig(spec, "affinity", "podAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution", 0, "podAffinityTerm", "topologyKey")
	if anti != hostnameTopologyKey {
		t.Errorf("worker anti-affinity topology key = %v, want %s", anti, hostnameTopologyKey)
	}
	if dig(spec, "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution") != nil {
		t.Errorf("worker anti-affinity is required, want preferred only")
	}
	if grace := number(spec, "terminationGracePeriodSeconds"); grace <= 25 {
		t.Errorf("worker terminationGracePeriodSeconds = %d, want more than the 25s drain timeout", grace)
	}
}

func TestWorkerConfigMap(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())

	cm := d.object(t, typeConfigMap, workerConfigMap)
	want := map[string]string{
		"WORKER_CONCURRENCY":   "8",
		"WORKER_PREFETCH":      "8",
		"RETRY_BASE_DELAY":     "1s",
		"RETRY_MAX_DELAY":      "5m",
		"DEFAULT_MAX_RETRIES":  "3",
		"DELIVERY_LIMIT":       "10",
		"WORKER_DRAIN_TIMEOUT": "25s",
	}
	if diff := cmp.Diff(want, stringMapOf(cm.Inputs, "data")); diff != "" {
		t.Errorf("worker config (-want +got):\n%s", diff)
	}

	c := dig(d.object(t, typeDeployment, "worker").Inputs, "spec", "template", "spec", "containers", 0)
	if got := dig(c, "envFrom", 0, "configMapRef", "name"); got != workerConfigMap {
		t.Errorf("worker envFrom = %v, want %s", got, workerConfigMap)
	}
	// The api applies DEFAULT_MAX_RETRIES when it accepts a task.
	apiContainer := dig(d.object(t, typeDeployment, "api").Inputs, "spec", "template", "spec", "containers", 0)
	if got := dig(apiContainer, "envFrom", 0, "configMapRef", "name"); got != workerConfigMap {
		t.Errorf("api envFrom = %v, want %s", got, workerConfigMap)
	}
	if got := dig(envByName(c)["WORKER_NAME"], "valueFrom", "fieldRef", "fieldPath"); got != "metadata.name" {
		t.Errorf("WORKER_NAME source = %v, want the pod name", got)
	}
}

// envByName indexes a container's env entries by name.
func envByName(container any) map[string]any {
	out := map[string]any{}
	for _, e := range list(container, "env") {
		out[fmt.Sprint(dig(e, "name"))] = e
	}
	return out
}

func TestServiceEnvironment(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())

	// Each variable maps to a literal value or to secret/key.
	want := map[string]map[string]string{
		"api": {
			"HTTP_ADDR": ":5000", "TASK_QUEUE": "tasks", "LOG_LEVEL": "info",
			"API_TOKEN":    "app-tokens/api-token",
			"DATABASE_URL": "postgres-credentials/database-url", "RABBITMQ_URL": "rabbitmq-credentials/amqp-url",
		},
		"worker": {
			"HTTP_ADDR": ":9000", "TASK_QUEUE": "tasks", "LOG_LEVEL": "info", "WORKER_NAME": "",
			"DATABASE_URL": "postgres-credentials/database-url", "RABBITMQ_URL": "rabbitmq-credentials/amqp-url",
		},
		"monitor": {
			"HTTP_ADDR": ":5555", "URL_PREFIX": "/flower", "TASK_QUEUE": "tasks", "LOG_LEVEL": "info",
			"RABBITMQ_MANAGEMENT_URL": "rabbitmq-credentials/management-url",
			"MONITOR_READ_TOKEN":      "app-tokens/monitor-read-token",
			"MONITOR_ADMIN_TOKEN":     "app-tokens/monitor-admin-token",
			"DATABASE_URL":            "postgres-credentials/database-url", "RABBITMQ_URL": "rabbitmq-credentials/amqp-url",
		},
	}
	for name, wantEnv := range want {
		c := dig(d.object(t, typeDeployment, name).Inputs, "spec", "template", "spec", "containers", 0)
		got := map[string]string{}
		for k, e := range envByName(c) {
			if ref := dig(e, "valueFrom", "secretKeyRef"); ref != nil {
				got[k] = fmt.Sprintf("%v/%v", dig(ref, "name"), dig(ref, "key"))
				continue
			}
			got[k] = str(dig(e, "value"))
		}
		if diff := cmp.Diff(wantEnv, got); diff != "" {
			t.Errorf("%s env (-want +got):\n%s", name, diff)
		}
	}
}

func TestIngressRoutes(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())

	ing := d.object(t, typeIngress, ingressName)
	type route struct {
		Service string
		Port    int
		Type    string
	}
	got := map[string]route{}
	rule := dig(ing.Inputs, "spec", "rules", 0)
	for _, p := range list(rule, "http", "paths") {
		got[fmt.Sprint(dig(p, "path"))] = route{
			Service: fmt.Sprint(dig(p, "backend", "service", "name")),
			Port:    number(p, "backend", "service", "port", "number"),
			Type:    fmt.Sprint(dig(p, "pathType")),
		}
	}
	want := map[string]route{"/api": {"api", 5000, "Prefix"}, "/flower": {"monitor", 5555, "Prefix"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ingress paths (-want +got):\n%s", diff)
	}

	meta := map[string]any{
		"class":       dig(ing.Inputs, "spec", "ingressClassName"),
		"host":        dig(rule, "host"),
		"tls hosts":   dig(ing.Inputs, "spec", "tls", 0, "hosts"),
		"tls secret":  dig(ing.Inputs, "spec", "tls", 0, "secretName"),
		"annotations": dig(ing.Inputs, "metadata", "annotations"),
	}
	wantMeta := map[string]any{
		"class":       "nginx",
		"host":        "taskflow.localhost",
		"tls hosts":   []any{"taskflow.localhost"},
		"tls secret":  tlsSecret,
		"annotations": nil, // no rewrite: the monitor serves under its prefix
	}
	if diff := cmp.Diff(wantMeta, meta); diff != "" {
		t.Errorf("ingress (-want +got):\n%s", diff)
	}

	urls, _ := await(t, d.Outputs.URLs)
	wantURLs := map[string]any{"api": "https://taskflow.localhost/api", "monitor": "https://taskflow.localhost/flower"}
	if diff := cmp.Diff(wantURLs, stringMapAny(urls)); diff != "" {
		t.Errorf("url outputs (-want +got):\n%s", diff)
	}
}

func TestCertificateChain(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())

	self := d.object(t, typeClusterIss, selfSignedIssuer)
	if dig(self.Inputs, "spec", "selfSigned") == nil {
		t.Errorf("cluster issuer %s is not self-signed: %v", selfSignedIssuer, self.Inputs["spec"])
	}
	ca := d.object(t, typeCertificate, caName)
	caWant := map[string]any{"isCA": true, "issuer": selfSignedIssuer, "issuerKind": "ClusterIssuer", "secret": caName, "waitFor": "condition=Ready"}
	caGot := map[string]any{
		"isCA": dig(ca.Inputs, "spec", "isCA"), "issuer": dig(ca.Inputs, "spec", "issuerRef", "name"),
		"issuerKind": dig(ca.Inputs, "spec", "issuerRef", "kind"), "secret": dig(ca.Inputs, "spec", "secretName"),
		"waitFor": dig(ca.Inputs, "metadata", "annotations", "pulumi.com/waitFor"),
	}
	if diff := cmp.Diff(caWant, caGot); diff != "" {
		t.Errorf("ca certificate (-want +got):\n%s", diff)
	}
	issuer := d.object(t, typeIssuer, caName)
	if got := dig(issuer.Inputs, "spec", "ca", "secretName"); got != caName {
		t.Errorf("ca issuer secret = %v, want %s", got, caName)
	}
	leaf := d.object(t, typeCertificate, tlsSecret)
	leafGot := map[string]any{
		"dnsNames": dig(leaf.Inputs, "spec", "dnsNames"), "issuer": dig(leaf.Inputs, "spec", "issuerRef", "name"),
		"issuerKind": dig(leaf.Inputs, "spec", "issuerRef", "kind"), "secret": dig(leaf.Inputs, "spec", "secretName"),
	}
	leafWant := map[string]any{"dnsNames": []any{"taskflow.localhost"}, "issuer": caName, "issuerKind": "Issuer", "secret": tlsSecret}
	if diff := cmp.Diff(leafWant, leafGot); diff != "" {
		t.Errorf("tls certificate (-want +got):\n%s", diff)
	}

	pem, secret := await(t, d.Outputs.CACertificate)
	if pem != testCAPEM || secret {
		t.Errorf("ca certificate output = %q (secret %v), want the PEM from the CA secret, not secret", pem, secret)
	}
}

func TestPreviewSkipsCARead(t *testing.T) {
	t.Parallel()
	d, err := tryDeploy(testConfig(), true)
	if err != nil {
		t.Fatalf("preview: %v", err)
	}
	if len(d.ofType(typeDeployment)) != 3 {
		t.Fatalf("preview declared %d deployments, want 3", len(d.ofType(typeDeployment)))
	}
	for _, r := range d.all() {
		if r.Read {
			t.Errorf("preview read %s %s, want no read before the CA certificate exists", r.Type, r.Name)
		}
	}
}

func TestAutoscalingModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		keda        bool
		apiHPA      bool
		wantScaled  []string // ScaledObject targets
		wantHPA     []string // HPA targets
		wantTrigger bool
	}{
		{"keda", true, false, []string{"worker"}, nil, true},
		{"keda with api hpa", true, true, []string{"worker"}, []string{"api"}, true},
		{"keda off", false, false, nil, []string{"worker"}, false},
		{"keda off with api hpa", false, true, nil, []string{"api", "worker"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.Autoscaling.KEDA = tt.keda
			cfg.API.HPA.Enabled = tt.apiHPA
			d := runDeploy(t, cfg)

			var scaled, hpas []string
			for _, r := range d.ofType(typeScaledObj) {
				scaled = append(scaled, fmt.Sprint(dig(r.Inputs, "spec", "scaleTargetRef", "name")))
			}
			for _, r := range d.ofType(typeHPA) {
				hpas = append(hpas, fmt.Sprint(dig(r.Inputs, "spec", "scaleTargetRef", "name")))
			}
			slices.Sort(hpas)
			if diff := cmp.Diff(tt.wantScaled, scaled); diff != "" {
				t.Errorf("scaled objects (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantHPA, hpas); diff != "" {
				t.Errorf("hpas (-want +got):\n%s", diff)
			}
			if got := len(d.ofType(typeTriggerAuth)) == 1; got != tt.wantTrigger {
				t.Errorf("trigger authentication present: %v, want %v", got, tt.wantTrigger)
			}

			// Never two autoscalers on one Deployment.
			counts := map[string]int{}
			for _, target := range slices.Concat(scaled, hpas) {
				counts[target]++
			}
			for target, n := range counts {
				if n > 1 {
					t.Errorf("deployment %s has %d autoscalers", target, n)
				}
			}
		})
	}
}

func TestScaledObject(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Autoscaling.MessagesPerReplica = 25
	d := runDeploy(t, cfg)

	so := d.object(t, typeScaledObj, "worker")
	spec := dig(so.Inputs, "spec")
	got := map[string]any{
		"min":           number(spec, "minReplicaCount"),
		"max":           number(spec, "maxReplicaCount"),
		"queue trigger": dig(spec, "triggers", 0),
		"cpu trigger":   dig(spec, "triggers", 1),
		"scale down":    dig(spec, "advanced", "horizontalPodAutoscalerConfig", "behavior", "scaleDown"),
	}
	want := map[string]any{
		"min": 3,
		"max": 10,
		"queue trigger": map[string]any{
			"type": "rabbitmq",
			"metadata": map[string]any{
				"protocol": "http", "mode": "QueueLength", "queueName": "tasks", "value": "25",
			},
			"authenticationRef": map[string]any{"name": triggerAuthName},
		},
		"cpu trigger": map[string]any{"type": "cpu", "metricType": "Utilization", "metadata": map[string]any{"value": "70"}},
		"scale down": map[string]any{
			"stabilizationWindowSeconds": 300.0,
			"policies":                   []any{map[string]any{"type": "Pods", "value": 1.0, "periodSeconds": 60.0}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scaled object (-want +got):\n%s", diff)
	}

	auth := d.object(t, typeTriggerAuth, triggerAuthName)
	refs := map[string]string{}
	for _, ref := range list(auth.Inputs, "spec", "secretTargetRef") {
		refs[fmt.Sprint(dig(ref, "parameter"))] = fmt.Sprintf("%v/%v", dig(ref, "name"), dig(ref, "key"))
	}
	wantRefs := map[string]string{
		"host":     "rabbitmq-credentials/keda-host",
		"username": "rabbitmq-credentials/username",
		"password": "rabbitmq-credentials/password",
	}
	if diff := cmp.Diff(wantRefs, refs); diff != "" {
		t.Errorf("trigger authentication refs (-want +got):\n%s", diff)
	}
}

func TestPlainHPAWhenKEDAOff(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Autoscaling.KEDA = false
	d := runDeploy(t, cfg)

	hpa := d.object(t, typeHPA, "worker")
	spec := dig(hpa.Inputs, "spec")
	got := map[string]any{
		"target":      dig(spec, "scaleTargetRef"),
		"min":         number(spec, "minReplicas"),
		"max":         number(spec, "maxReplicas"),
		"metric":      dig(spec, "metrics", 0),
		"scale down":  dig(spec, "behavior", "scaleDown", "stabilizationWindowSeconds"),
		"keda object": len(d.ofType(typeScaledObj)),
	}
	want := map[string]any{
		"target": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"},
		"min":    3,
		"max":    10,
		"metric": map[string]any{
			"type": "Resource",
			"resource": map[string]any{
				"name": "cpu", "target": map[string]any{"type": "Utilization", "averageUtilization": 70.0},
			},
		},
		"scale down":  300.0,
		"keda object": 0,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("worker hpa (-want +got):\n%s", diff)
	}
}

func TestNetworkPolicies(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())

	deny := d.object(t, typeNetPol, "default-deny")
	if sel := dig(deny.Inputs, "spec", "podSelector", "matchLabels"); sel != nil {
		t.Errorf("default-deny selects %v, want every pod", sel)
	}
	if diff := cmp.Diff([]any{"Ingress", "Egress"}, dig(deny.Inputs, "spec", "policyTypes")); diff != "" {
		t.Errorf("default-deny policy types (-want +got):\n%s", diff)
	}
	dns := d.object(t, typeNetPol, "allow-dns")
	if got := number(dns.Inputs, "spec", "egress", 0, "ports", 0, "port"); got != 53 {
		t.Errorf("allow-dns port = %d, want 53", got)
	}

	// Every allowed connection as "from -> to:port", where a namespace
	// peer is written ns/<name>.
	var got []string
	peerName := func(p any) string {
		if ns := dig(p, "namespaceSelector", "matchLabels", namespaceNameLabel); ns != nil {
			return "ns/" + fmt.Sprint(ns)
		}
		return fmt.Sprint(dig(p, "podSelector", "matchLabels", labelName))
	}
	for _, r := range d.ofType(typeNetPol) {
		self := fmt.Sprint(dig(r.Inputs, "spec", "podSelector", "matchLabels", labelName))
		for _, rule := range list(r.Inputs, "spec", "ingress") {
			for _, p := range list(rule, "from") {
				for _, port := range list(rule, "ports") {
					got = append(got, fmt.Sprintf("%s -> %s:%d", peerName(p), self, number(port, "port")))
				}
			}
		}
		if r.ObjectName() == "allow-dns" {
			continue
		}
		for _, rule := range list(r.Inputs, "spec", "egress") {
			for _, p := range list(rule, "to") {
				for _, port := range list(rule, "ports") {
					got = append(got, fmt.Sprintf("%s -> %s:%d", self, peerName(p), number(port, "port")))
				}
			}
		}
	}
	slices.Sort(got)
	got = slices.Compact(got)
	want := []string{
		"api -> postgres:5432",
		"api -> rabbitmq:5672",
		"monitor -> postgres:5432",
		"monitor -> rabbitmq:15672",
		"monitor -> rabbitmq:5672",
		"ns/ingress-nginx -> api:5000",
		"ns/ingress-nginx -> monitor:5555",
		"ns/keda -> rabbitmq:15672",
		"ns/keda -> rabbitmq:5672",
		"worker -> postgres:5432",
		"worker -> rabbitmq:5672",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("allowed connections (-want +got):\n%s", diff)
	}
}

func TestDisruptionBudgets(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())
	got := map[string]int{}
	for _, r := range d.ofType(typePDB) {
		got[r.ObjectName()] = number(r.Inputs, "spec", "maxUnavailable")
	}
	if diff := cmp.Diff(map[string]int{"api": 1, "worker": 1}, got); diff != "" {
		t.Errorf("pod disruption budgets (-want +got):\n%s", diff)
	}
}

func TestAddons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"all on", func(*Config) {}, []string{"cert-manager", "ingress-nginx", "keda"}},
		{"keda off", func(c *Config) { c.Addons.KEDA.Enabled = false }, []string{"cert-manager", "ingress-nginx"}},
		{"all off", func(c *Config) {
			c.Addons.KEDA.Enabled, c.Addons.CertManager.Enabled, c.Addons.IngressNginx.Enabled = false, false, false
		}, nil},
		{"render mode", func(c *Config) { c.Kubernetes.RenderDir = "/tmp/rendered" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			tt.change(&cfg)
			d := runDeploy(t, cfg)

			var got []string
			for _, r := range d.ofType(typeRelease) {
				got = append(got, fmt.Sprint(dig(r.Inputs, "chart")))
			}
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("releases (-want +got):\n%s", diff)
			}
		})
	}

	d := runDeploy(t, testConfig())
	for _, r := range d.ofType(typeRelease) {
		if dig(r.Inputs, "chart") != "cert-manager" {
			continue
		}
		if got := dig(r.Inputs, "values", "crds", "enabled"); got != true {
			t.Errorf("cert-manager crds.enabled = %v, want true", got)
		}
	}
}

func TestCRDUsersWaitForAddons(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())

	// Each object and the Helm release whose CRDs or webhook it needs.
	tests := []struct {
		typ, name, release string
	}{
		{typeScaledObj, "worker", "keda"},
		{typeTriggerAuth, triggerAuthName, "keda"},
		{typeClusterIss, selfSignedIssuer, "cert-manager"},
		{typeCertificate, caName, "cert-manager"},
		{typeIssuer, caName, "cert-manager"},
		{typeCertificate, tlsSecret, "cert-manager"},
		{typeIngress, ingressName, "ingress-nginx"},
	}
	for _, tt := range tests {
		r := d.object(t, tt.typ, tt.name)
		want := "::" + tt.release
		found := slices.ContainsFunc(r.Dependencies, func(urn string) bool {
			return strings.Contains(urn, typeRelease) && strings.HasSuffix(urn, want)
		})
		if !found {
			t.Errorf("%s %s dependencies %v lack the %s release", tt.typ, tt.name, r.Dependencies, tt.release)
		}
	}
}

func TestRenderMode(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Kubernetes.RenderDir = "/tmp/rendered"
	cfg.Kubernetes.Context = "kind-taskflow"
	d := runDeploy(t, cfg)

	providers := d.ofType(typeProvider)
	if len(providers) != 1 {
		t.Fatalf("found %d providers, want 1", len(providers))
	}
	got := map[string]any{
		"renderYamlToDirectory": dig(providers[0].Inputs, "renderYamlToDirectory"),
		// The provider rejects a context in render mode.
		"context": dig(providers[0].Inputs, "context"),
	}
	if diff := cmp.Diff(map[string]any{"renderYamlToDirectory": "/tmp/rendered", "context": nil}, got); diff != "" {
		t.Errorf("render provider (-want +got):\n%s", diff)
	}
	for _, r := range d.all() {
		if r.Read {
			t.Errorf("render mode read %s %s from a cluster", r.Type, r.Name)
		}
	}
	ca := d.object(t, typeCertificate, caName)
	if w := dig(ca.Inputs, "metadata", "annotations", "pulumi.com/waitFor"); w != nil {
		t.Errorf("render mode CA waits for %v, want no wait", w)
	}
}

func TestTLSOff(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Ingress.TLS = false
	d := runDeploy(t, cfg)

	for _, typ := range []string{typeCertificate, typeIssuer, typeClusterIss} {
		if n := len(d.ofType(typ)); n != 0 {
			t.Errorf("found %d %s with TLS off, want 0", n, typ)
		}
	}
	if tls := dig(d.object(t, typeIngress, ingressName).Inputs, "spec", "tls"); tls != nil {
		t.Errorf("ingress tls = %v with TLS off, want none", tls)
	}
	urls, _ := await(t, d.Outputs.URLs)
	if got := stringMapAny(urls)["api"]; got != "http://taskflow.localhost/api" {
		t.Errorf("api url = %v, want http://taskflow.localhost/api", got)
	}
}

func TestRabbitMQNodeName(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())
	sts := d.object(t, typeStatefulSet, "rabbitmq")
	if got := dig(sts.Inputs, "spec", "serviceName"); got != "rabbitmq-headless" {
		t.Errorf("serviceName = %v, want rabbitmq-headless", got)
	}
	env := envByName(dig(sts.Inputs, "spec", "template", "spec", "containers", 0))
	got := map[string]any{
		"RABBITMQ_NODENAME":     dig(env["RABBITMQ_NODENAME"], "value"),
		"RABBITMQ_USE_LONGNAME": dig(env["RABBITMQ_USE_LONGNAME"], "value"),
	}
	want := map[string]any{
		"RABBITMQ_NODENAME":     "rabbit@$(POD_NAME).rabbitmq-headless.$(POD_NAMESPACE).svc.cluster.local",
		"RABBITMQ_USE_LONGNAME": "true",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("node name env (-want +got):\n%s", diff)
	}
	// $(VAR) expands only variables defined earlier in the list.
	names := slices.Collect(maps.Keys(env))
	order := list(dig(sts.Inputs, "spec", "template", "spec", "containers", 0), "env")
	index := func(name string) int {
		return slices.IndexFunc(order, func(e any) bool { return dig(e, "name") == name })
	}
	if index("POD_NAME") > index("RABBITMQ_NODENAME") || index("POD_NAMESPACE") > index("RABBITMQ_NODENAME") {
		t.Errorf("env order %v puts RABBITMQ_NODENAME before the variables it references", names)
	}
}

func TestPostgresData(t *testing.T) {
	t.Parallel()
	d := runDeploy(t, testConfig())
	c := dig(d.object(t, typeStatefulSet, "postgres").Inputs, "spec", "template", "spec", "containers", 0)
	pgdata := str(dig(envByName(c)["PGDATA"], "value"))
	var dataMount string
	for _, m := range list(c, "volumeMounts") {
		if dig(m, "name") == "data" {
			dataMount = str(dig(m, "mountPath"))
		}
	}
	if dataMount == "" || !strings.HasPrefix(pgdata, dataMount+"/") {
		t.Errorf("PGDATA %q is not a subdirectory of the data volume at %q", pgdata, dataMount)
	}
	if image := str(dig(c, "image")); strings.Contains(image, "postgres:10") {
		t.Errorf("postgres image %s is end of life", image)
	}
}
