package clustertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// hostnameTopologyKey is the node label that gives every node its own topology domain.
const hostnameTopologyKey = "kubernetes.io/hostname"

// report prints one line per claim, "PASS name" or "FAIL name: why", and
// counts the results.
type report struct {
	out    io.Writer
	passed int
	failed int
}

// check records the claim name as passed when err is nil and as failed
// otherwise, prints its line and returns whether it passed.
func (r *report) check(name string, err error) bool {
	if err != nil {
		r.failed++
		fmt.Fprintf(r.out, "FAIL %s: %s\n", name, strings.ReplaceAll(err.Error(), "\n", "; "))
		return false
	}
	r.passed++
	fmt.Fprintf(r.out, "PASS %s\n", name)
	return true
}

// summary returns "N passed, M failed".
func (r *report) summary() string {
	return fmt.Sprintf("%d passed, %d failed", r.passed, r.failed)
}

// checkNodeRoles checks that the stateful nodes carry the label role=stateful
// and the taint role=stateful:NoSchedule, that the stateless nodes carry
// role=stateless and no role taint, and that no other node has a role label.
func checkNodeRoles(nodes []node, stateful, stateless []string) error {
	var errs []error
	byName := nodesByName(nodes)
	for _, name := range slices.Concat(stateful, stateless) {
		if _, ok := byName[name]; !ok {
			errs = append(errs, fmt.Errorf("node %s from the stack config not found", name))
		}
	}
	for _, n := range nodes {
		name := n.Metadata.Name
		want := ""
		switch {
		case slices.Contains(stateful, name):
			want = "stateful"
		case slices.Contains(stateless, name):
			want = "stateless"
		}
		if got := n.Metadata.Labels[labelRole]; got != want {
			errs = append(errs, fmt.Errorf("node %s has label %s=%q, want %q", name, labelRole, got, want))
		}
		tainted := slices.ContainsFunc(n.Spec.Taints, func(t taint) bool { return t.Key == labelRole })
		wantTaint := taint{Key: labelRole, Value: "stateful", Effect: "NoSchedule"}
		switch {
		case want == "stateful" && !slices.Contains(n.Spec.Taints, wantTaint):
			errs = append(errs, fmt.Errorf("node %s has taints %v, want one of them %v", name, n.Spec.Taints, wantTaint))
		case want != "stateful" && tainted:
			errs = append(errs, fmt.Errorf("node %s has a %s taint: %v", name, labelRole, n.Spec.Taints))
		}
	}
	return errors.Join(errs...)
}

// checkPlacement checks that every pod belongs to a component of roles, is
// Running, and runs on a node whose role label is its component's role,
// and that every component has at least one pod.
func checkPlacement(pods []pod, nodes []node, roles map[string]string) error {
	var errs []error
	byName := nodesByName(nodes)
	seen := map[string]bool{}
	for _, p := range pods {
		component := p.Metadata.Labels[labelName]
		want, ok := roles[component]
		if !ok {
			errs = append(errs, fmt.Errorf("pod %s has unknown component %q", p.Metadata.Name, component))
			continue
		}
		seen[component] = true
		if p.Status.Phase != "Running" {
			errs = append(errs, fmt.Errorf("pod %s is %s, want Running", p.Metadata.Name, p.Status.Phase))
		}
		n, ok := byName[p.Spec.NodeName]
		if !ok {
			errs = append(errs, fmt.Errorf("pod %s is not bound to a known node (nodeName %q)", p.Metadata.Name, p.Spec.NodeName))
			continue
		}
		if got := n.Metadata.Labels[labelRole]; got != want {
			errs = append(errs, fmt.Errorf("pod %s (%s) runs on node %s with role %q, want %q", p.Metadata.Name, component, n.Metadata.Name, got, want))
		}
	}
	for _, component := range slices.Sorted(maps.Keys(roles)) {
		if !seen[component] {
			errs = append(errs, fmt.Errorf("no pod of component %s", component))
		}
	}
	return errors.Join(errs...)
}

// checkSpread checks that the pods of component are spread over the nodes
// labelled role as constraint demands, which means that the pod counts of
// any two such nodes differ by at most constraint.MaxSkew. Only the
// hostname topology key is supported.
func checkSpread(pods []pod, nodes []node, component, role string, constraint topologySpreadConstraint) error {
	if constraint.TopologyKey != hostnameTopologyKey {
		return fmt.Errorf("spread constraint has topologyKey %q, want %q", constraint.TopologyKey, hostnameTopologyKey)
	}
	if constraint.MaxSkew < 1 {
		return fmt.Errorf("spread constraint has maxSkew %d, want at least 1", constraint.MaxSkew)
	}
	counts := map[string]int{}
	for _, n := range nodes {
		if n.Metadata.Labels[labelRole] == role {
			counts[n.Metadata.Name] = 0
		}
	}
	if len(counts) == 0 {
		return fmt.Errorf("no node has label %s=%s", labelRole, role)
	}
	for _, p := range pods {
		if p.Metadata.Labels[labelName] != component {
			continue
		}
		if _, ok := counts[p.Spec.NodeName]; !ok {
			return fmt.Errorf("pod %s runs on node %q, which is not a %s node", p.Metadata.Name, p.Spec.NodeName, role)
		}
		counts[p.Spec.NodeName]++
	}
	values := slices.Collect(maps.Values(counts))
	if skew := slices.Max(values) - slices.Min(values); skew > constraint.MaxSkew {
		return fmt.Errorf("%s pods per %s node %v: skew %d exceeds maxSkew %d", component, role, counts, skew, constraint.MaxSkew)
	}
	return nil
}

// checkQoS checks that each pod's status.qosClass, which the API server
// computes, equals the class declared in its qosAnnotation.
func checkQoS(pods []pod) error {
	var errs []error
	for _, p := range pods {
		declared := p.Metadata.Annotations[qosAnnotation]
		switch {
		case declared == "":
			errs = append(errs, fmt.Errorf("pod %s has no %s annotation", p.Metadata.Name, qosAnnotation))
		case p.Status.QOSClass != declared:
			errs = append(errs, fmt.Errorf("pod %s has qosClass %q, declared %q", p.Metadata.Name, p.Status.QOSClass, declared))
		}
	}
	return errors.Join(errs...)
}

// checkPriorityOrder checks that all pods of a component share one
// spec.priority and that the priorities strictly decrease along order, a
// list of components.
func checkPriorityOrder(pods []pod, order []string) error {
	var errs []error
	priorities := map[string]int{}
	for _, p := range pods {
		component := p.Metadata.Labels[labelName]
		if p.Spec.Priority == nil {
			errs = append(errs, fmt.Errorf("pod %s has no spec.priority", p.Metadata.Name))
			continue
		}
		got := *p.Spec.Priority
		if prev, ok := priorities[component]; ok && prev != got {
			errs = append(errs, fmt.Errorf("pods of %s have priorities %d and %d", component, prev, got))
		}
		priorities[component] = got
	}
	for i, component := range order {
		if _, ok := priorities[component]; !ok {
			errs = append(errs, fmt.Errorf("no pod of %s with a priority", component))
			continue
		}
		if i == 0 {
			continue
		}
		above := order[i-1]
		if prev, ok := priorities[above]; ok && prev <= priorities[component] {
			errs = append(errs, fmt.Errorf("priority of %s (%d) is not above %s (%d)", above, prev, component, priorities[component]))
		}
	}
	return errors.Join(errs...)
}

// checkPVCs checks that each claim named in sizes exists, is Bound, and
// both requests and has the capacity given in sizes.
func checkPVCs(claims []persistentVolumeClaim, sizes map[string]string) error {
	var errs []error
	byName := map[string]persistentVolumeClaim{}
	for _, c := range claims {
		byName[c.Metadata.Name] = c
	}
	for _, name := range slices.Sorted(maps.Keys(sizes)) {
		want := sizes[name]
		c, ok := byName[name]
		if !ok {
			errs = append(errs, fmt.Errorf("pvc %s not found", name))
			continue
		}
		if c.Status.Phase != "Bound" {
			errs = append(errs, fmt.Errorf("pvc %s is %q, want Bound", name, c.Status.Phase))
		}
		if got := c.Spec.Resources.Requests["storage"]; got != want {
			errs = append(errs, fmt.Errorf("pvc %s requests %q, want %q", name, got, want))
		}
		if got := c.Status.Capacity["storage"]; got != want {
			errs = append(errs, fmt.Errorf("pvc %s has capacity %q, want %q", name, got, want))
		}
	}
	return errors.Join(errs...)
}

// subsetDiff returns one line per value in want that is missing or different
// in got, so a field that the API server pruned or changed shows up. Maps
// in got may have extra keys, such as defaults from a CRD schema, but lists
// must have the same length. Values compare as encoding/json decodes them,
// so numbers in want must be float64.
func subsetDiff(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %s, want an object", path, describe(got))}
		}
		var diffs []string
		for _, key := range slices.Sorted(maps.Keys(w)) {
			value, ok := g[key]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing", path, key))
				continue
			}
			diffs = append(diffs, subsetDiff(path+"."+key, w[key], value)...)
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: got %s, want a list of %d", path, describe(got), len(w))}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, subsetDiff(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return diffs
	default:
		if !reflect.DeepEqual(want, got) {
			return []string{fmt.Sprintf("%s: got %s, want %s", path, describe(got), describe(want))}
		}
		return nil
	}
}

// describe formats a decoded JSON value for a difference line.
func describe(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

// checkDigestRef checks that ref names an image of repository by digest:
// repository@sha256:<64 hex digits>.
func checkDigestRef(ref, repository string) error {
	pattern := regexp.MustCompile(`^` + regexp.QuoteMeta(repository) + `@sha256:[0-9a-f]{64}$`)
	if !pattern.MatchString(ref) {
		return fmt.Errorf("image %q is not %s@sha256:<digest>", ref, repository)
	}
	return nil
}

// previewResult is the output of `pulumi preview --json`.
type previewResult struct {
	Steps         []previewStep  `json:"steps"`
	ChangeSummary map[string]int `json:"changeSummary"`
	Diagnostics   []struct {
		Message  string `json:"message"`
		Severity string `json:"severity"`
	} `json:"diagnostics"`
}

// previewStep is one planned step of a preview.
type previewStep struct {
	// Op is the operation, such as "same", "create", "update" or "replace".
	Op  string `json:"op"`
	URN string `json:"urn"`
	// DetailedDiff maps each changed property path to its kind of change.
	DetailedDiff map[string]json.RawMessage `json:"detailedDiff"`
	NewState     struct {
		Inputs map[string]any `json:"inputs"`
	} `json:"newState"`
}

// resourceType returns the type token of the step's resource, such as
// "kubernetes:apps/v1:Deployment".
func (s previewStep) resourceType() string {
	parts := strings.Split(s.URN, "::")
	if len(parts) < 4 {
		return ""
	}
	types := strings.Split(parts[2], "$")
	return types[len(types)-1]
}

// resourceName returns the Pulumi name of the step's resource.
func (s previewStep) resourceName() string {
	return s.URN[strings.LastIndex(s.URN, "::")+2:]
}

// changedPaths returns the sorted property paths of the step's detailed diff.
func (s previewStep) changedPaths() []string {
	return slices.Sorted(maps.Keys(s.DetailedDiff))
}

// String describes the step as "op type name [paths]".
func (s previewStep) String() string {
	return fmt.Sprintf("%s %s %s %v", s.Op, s.resourceType(), s.resourceName(), s.changedPaths())
}

// changes returns the steps that would change something. A read step only
// reads an existing object, so it is no change.
func (p previewResult) changes() []previewStep {
	var out []previewStep
	for _, s := range p.Steps {
		if s.Op != "same" && s.Op != "read" {
			out = append(out, s)
		}
	}
	return out
}

// checkNoChanges fails when the preview plans any change.
func checkNoChanges(p previewResult) error {
	if len(p.Steps) == 0 {
		return errors.New("preview lists no steps")
	}
	if changes := p.changes(); len(changes) > 0 {
		return fmt.Errorf("preview plans %d changes: %v", len(changes), changes)
	}
	return nil
}

// checkOneChange fails unless the preview plans exactly one step: an update
// of the resource resourceType named name that changes exactly paths and
// whose new inputs contain the values in inputs.
func checkOneChange(p previewResult, resourceType, name string, paths []string, inputs map[string]any) error {
	changes := p.changes()
	if len(changes) != 1 {
		return fmt.Errorf("preview plans %d changes, want 1: %v", len(changes), changes)
	}
	s := changes[0]
	if s.Op != "update" || s.resourceType() != resourceType || s.resourceName() != name {
		return fmt.Errorf("preview plans %v, want update %s %s", s, resourceType, name)
	}
	if got := s.changedPaths(); !slices.Equal(got, paths) {
		return fmt.Errorf("%s %s changes %v, want %v", resourceType, name, got, paths)
	}
	if diffs := subsetDiff("inputs", inputs, s.NewState.Inputs); len(diffs) > 0 {
		return fmt.Errorf("new inputs of %s %s: %s", resourceType, name, strings.Join(diffs, "; "))
	}
	return nil
}

// checkSameSet fails when got and want, lists of names, differ as sets, and
// names the missing and the unexpected entries.
func checkSameSet(what string, want, got []string) error {
	var missing, unexpected []string
	for _, name := range want {
		if !slices.Contains(got, name) {
			missing = append(missing, name)
		}
	}
	for _, name := range got {
		if !slices.Contains(want, name) {
			unexpected = append(unexpected, name)
		}
	}
	if len(missing) == 0 && len(unexpected) == 0 {
		return nil
	}
	return fmt.Errorf("%s: missing %v, unexpected %v", what, missing, unexpected)
}

// nodesByName indexes nodes by name.
func nodesByName(nodes []node) map[string]node {
	byName := make(map[string]node, len(nodes))
	for _, n := range nodes {
		byName[n.Metadata.Name] = n
	}
	return byName
}

// errorMessages returns the first distinct messages after "error: " in
// output, joined by "; ", or the last lines of output when it has none.
// Pulumi prints an error on each resource's progress line and again in its
// summary, and kubectl prefixes its errors with "error: " or "Error from server".
func errorMessages(output string) string {
	const limit = 4
	var messages, lines []string
	for _, line := range strings.Split(output, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		lines = append(lines, line)
		message := ""
		if _, after, ok := strings.Cut(line, "error: "); ok {
			message = strings.TrimSpace(after)
		} else if strings.HasPrefix(line, "Error from server") {
			message = line
		}
		if message != "" && !slices.Contains(messages, message) && len(messages) < limit {
			messages = append(messages, message)
		}
	}
	if len(messages) == 0 {
		messages = lines[max(0, len(lines)-limit):]
	}
	return strings.Join(messages, "; ")
}
