package api

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/taskflow-dev/taskflow/app/internal/store"
	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// Limits on a submitted workflow.
const (
	maxWorkflowTasks = 1000
	maxWorkflowDepth = 32
)

// stepFields are the JSON names a task step of a workflow accepts.
var stepFields = append(slices.Clone(submitFields), "pipe")

// workflowResponse is the JSON form of a workflow.
type workflowResponse struct {
	ID    string     `json:"id"`
	State task.State `json:"state"`
	// Result is the result of the workflow's last step once every task succeeded: one task's
	// result, or the array of a group's results.
	Result    json.RawMessage `json:"result"`
	Error     *string         `json:"error"`
	Workflow  json.RawMessage `json:"workflow"`
	Tasks     []workflowTask  `json:"tasks"`
	CreatedAt time.Time       `json:"created_at"`
}

// workflowTask is a task of a workflow with the tasks it waits for.
type workflowTask struct {
	taskResponse
	WaitsFor []string `json:"waits_for"`
}

// compiledStep is a task of a workflow being compiled.
type compiledStep struct {
	store.WorkflowTask
	path      string
	countdown time.Duration
	parents   int
}

// part is the compiled form of one node of a workflow: the tasks that start it, and the tasks
// whose results are its result.
type part struct {
	entries []int
	outputs []int
	// many is true when the result is the array of the outputs' results (a group), false when
	// it is the result of its only output.
	many bool
}

// workflowCompiler turns a workflow request into tasks and edges.
type workflowCompiler struct {
	s     *Server
	steps []compiledStep
	edges []store.Edge
}

// submitWorkflow handles POST /api/workflows.
func (s *Server) submitWorkflow(w http.ResponseWriter, r *http.Request) error {
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	body, err := s.readJSONBody(w, r)
	if err != nil {
		return err
	}
	c := &workflowCompiler{s: s}
	root, spec, err := c.node(body, "", 1)
	if err != nil {
		return err
	}
	nw, err := c.workflow(root, spec)
	if err != nil {
		return err
	}
	if key != "" {
		nw.IdempotencyKey = key
		h := sha256.Sum256(spec)
		nw.RequestHash = h[:]
	}

	stored, created, err := s.store.CreateWorkflow(r.Context(), nw)
	if err != nil {
		return err
	}
	if created {
		s.relay.Notify()
		for _, st := range c.steps {
			s.submitted.WithLabelValues(st.Name).Inc()
		}
	} else {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/api/workflows/"+stored.ID.String())
	s.writeJSON(w, r, http.StatusAccepted, newWorkflowResponse(stored))
	return nil
}

// workflow checks the compiled steps and builds the workflow to store.
func (c *workflowCompiler) workflow(root part, spec json.RawMessage) (store.NewWorkflow, error) {
	nw := store.NewWorkflow{ID: uuid.Must(uuid.NewV7()), Spec: spec, Edges: c.edges, Many: root.many}
	for _, st := range c.steps {
		if st.Pipe != "" && st.parents == 0 {
			return store.NewWorkflow{}, unprocessable(joinPath(st.path, "pipe"),
				"%s: pipe takes the results of the previous step, but this step comes first", stepName(st.path))
		}
		if st.parents > 0 {
			st.ReleaseDelay, st.ETA = st.countdown, time.Time{}
		}
		nw.Tasks = append(nw.Tasks, st.WorkflowTask)
	}
	for _, i := range root.outputs {
		nw.Outputs = append(nw.Outputs, c.steps[i].ID)
	}
	return nw, nil
}

// node compiles the workflow node raw found at path and returns it with its canonical JSON.
func (c *workflowCompiler) node(raw json.RawMessage, path string, depth int) (part, json.RawMessage, error) {
	if depth > maxWorkflowDepth {
		return part{}, nil, unprocessable(path, "%s: workflows nest at most %d levels deep", stepName(path), maxWorkflowDepth)
	}
	fields, err := objectFields(raw, path)
	if err != nil {
		return part{}, nil, err
	}
	if _, ok := fields["task"]; ok {
		return c.taskStep(raw, fields, path)
	}

	var kinds []string
	for _, kind := range []string{"chain", "group", "chord"} {
		if _, ok := fields[kind]; ok {
			kinds = append(kinds, kind)
		}
	}
	if len(kinds) != 1 || len(fields) != 1 {
		return part{}, nil, unprocessable(path, `%s must be a task such as {"task": "fib", "args": {"n": 10}}, `+
			`or an object with exactly one of "chain", "group" or "chord"`, stepName(path))
	}

	kind := kinds[0]
	value := fields[kind]
	path = joinPath(path, kind)
	switch kind {
	case "chain":
		return c.chain(value, path, depth)
	case "group":
		return c.group(value, path, depth)
	default:
		return c.chord(value, path, depth)
	}
}

// chain compiles {"chain": [...]}: each step starts after the one before it succeeded.
func (c *workflowCompiler) chain(raw json.RawMessage, path string, depth int) (part, json.RawMessage, error) {
	parts, specs, err := c.list(raw, path, depth)
	if err != nil {
		return part{}, nil, err
	}
	for i := 1; i < len(parts); i++ {
		c.link(parts[i-1], parts[i])
	}
	last := parts[len(parts)-1]
	return part{entries: parts[0].entries, outputs: last.outputs, many: last.many},
		mustMarshal(map[string]any{"chain": specs}), nil
}

// group compiles {"group": [...]}: the steps run in parallel, and the result is one flat array of
// their results.
func (c *workflowCompiler) group(raw json.RawMessage, path string, depth int) (part, json.RawMessage, error) {
	parts, specs, err := c.list(raw, path, depth)
	if err != nil {
		return part{}, nil, err
	}
	g := groupOf(parts)
	return g, mustMarshal(map[string]any{"group": specs}), nil
}

// chord compiles {"chord": {"header": [...], "body": step}}: the body starts once every header
// step succeeded, and can take the array of their results.
func (c *workflowCompiler) chord(raw json.RawMessage, path string, depth int) (part, json.RawMessage, error) {
	fields, err := objectFields(raw, path)
	if err != nil {
		return part{}, nil, err
	}
	for name := range fields {
		if name != "header" && name != "body" {
			return part{}, nil, unprocessable(joinPath(path, name), `%s: unknown field %q; a chord has "header" and "body"`, stepName(path), name)
		}
	}
	headerRaw, ok := fields["header"]
	if !ok {
		return part{}, nil, unprocessable(joinPath(path, "header"), `%s needs "header", the list of steps that run in parallel`, stepName(path))
	}
	bodyRaw, ok := fields["body"]
	if !ok {
		return part{}, nil, unprocessable(joinPath(path, "body"), `%s needs "body", the step that runs after the header`, stepName(path))
	}
	headerParts, headerSpecs, err := c.list(headerRaw, joinPath(path, "header"), depth)
	if err != nil {
		return part{}, nil, err
	}
	body, bodySpec, err := c.node(bodyRaw, joinPath(path, "body"), depth+1)
	if err != nil {
		return part{}, nil, err
	}
	header := groupOf(headerParts)
	c.link(header, body)
	return part{entries: header.entries, outputs: body.outputs, many: body.many},
		mustMarshal(map[string]any{"chord": map[string]any{"header": headerSpecs, "body": bodySpec}}), nil
}

// list compiles a non-empty JSON array of workflow nodes.
func (c *workflowCompiler) list(raw json.RawMessage, path string, depth int) ([]part, []json.RawMessage, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return nil, nil, unprocessable(path, "%s must be an array of steps", stepName(path))
	}
	if len(items) == 0 {
		return nil, nil, unprocessable(path, "%s must contain at least one step", stepName(path))
	}
	parts, specs := make([]part, len(items)), make([]json.RawMessage, len(items))
	for i, item := range items {
		var err error
		parts[i], specs[i], err = c.node(item, path+"["+strconv.Itoa(i)+"]", depth+1)
		if err != nil {
			return nil, nil, err
		}
	}
	return parts, specs, nil
}

// taskStep compiles one task of the workflow.
func (c *workflowCompiler) taskStep(raw json.RawMessage, fields map[string]json.RawMessage, path string) (part, json.RawMessage, error) {
	if len(c.steps) == maxWorkflowTasks {
		return part{}, nil, unprocessable(path, "a workflow can contain at most %d tasks", maxWorkflowTasks)
	}

	for name := range fields {
		if !slices.Contains(stepFields, name) {
			return part{}, nil, unprocessable(joinPath(path, name), "%s: unknown field %q; allowed fields are %s",
				stepName(path), name, strings.Join(stepFields, ", "))
		}
	}

	var req submitRequest
	if err := json.Unmarshal(raw, &req); err != nil { // the unknown "pipe" is skipped
		return part{}, nil, atStep(path, decodeError(err))
	}
	pipe := ""
	if rawPipe, ok := fields["pipe"]; ok {
		if err := json.Unmarshal(rawPipe, &pipe); err != nil || pipe == "" {
			return part{}, nil, unprocessable(joinPath(path, "pipe"), "%s: pipe must name the argument that receives the previous step's results", stepName(path))
		}
	}
	nt, err := c.s.newTask(req, pipe)
	if err != nil {
		return part{}, nil, atStep(path, err)
	}

	st := compiledStep{WorkflowTask: store.WorkflowTask{NewTask: nt, Pipe: pipe}, path: path}
	if req.CountdownMS != nil {
		st.countdown = time.Duration(*req.CountdownMS) * time.Millisecond
	}
	c.steps = append(c.steps, st)
	i := len(c.steps) - 1
	spec := stepSpec{Task: nt.Name, Args: nt.Args, MaxRetries: req.MaxRetries, TimeoutMS: req.TimeoutMS,
		CountdownMS: req.CountdownMS, Pipe: pipe}
	return part{entries: []int{i}, outputs: []int{i}}, mustMarshal(spec), nil
}

// stepSpec is the canonical JSON of a task step: the arguments as validated and the options as
// sent.
type stepSpec struct {
	Task        string          `json:"task"`
	Args        json.RawMessage `json:"args"`
	MaxRetries  *int            `json:"max_retries,omitempty"`
	TimeoutMS   *int64          `json:"timeout_ms,omitempty"`
	CountdownMS *int64          `json:"countdown_ms,omitempty"`
	Pipe        string          `json:"pipe,omitempty"`
}

// link makes every entry task of next wait for every output task of prev.
func (c *workflowCompiler) link(prev, next part) {
	for _, e := range next.entries {
		for position, o := range prev.outputs {
			c.edges = append(c.edges, store.Edge{Parent: c.steps[o].ID, Child: c.steps[e].ID, Position: position})
		}
		c.steps[e].parents += len(prev.outputs)
		c.steps[e].PipeMany = prev.many
	}
}

// groupOf combines parts that run in parallel.
func groupOf(parts []part) part {
	g := part{many: true}
	for _, p := range parts {
		g.entries = append(g.entries, p.entries...)
		g.outputs = append(g.outputs, p.outputs...)
	}
	return g
}

// objectFields decodes raw as one JSON object.
func objectFields(raw json.RawMessage, path string) (map[string]json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		if path == "" {
			return nil, badRequest("", `request body must be a JSON object such as {"chain": [...]}`)
		}
		return nil, unprocessable(path, "%s must be a JSON object", stepName(path))
	}
	return fields, nil
}

// atStep places a client error from a task step at the step's path.
func atStep(path string, err error) error {
	var (
		reqErr   *requestError
		fieldErr *task.FieldError
		unknown  *task.UnknownTaskError
	)
	switch {
	case errors.As(err, &reqErr):
		return &requestError{status: reqErr.status, field: joinPath(path, reqErr.field),
			msg: stepName(path) + ": " + reqErr.msg, known: reqErr.known}
	case errors.As(err, &fieldErr):
		return &task.FieldError{Field: joinPath(path, fieldErr.Field), Message: fieldErr.Message}
	case errors.As(err, &unknown):
		return &requestError{status: http.StatusUnprocessableEntity, field: joinPath(path, "task"),
			msg: stepName(path) + ": " + unknown.Error(), known: unknown.Known}
	default:
		return err
	}
}

func joinPath(path, field string) string {
	switch {
	case path == "":
		return field
	case field == "":
		return path
	default:
		return path + "." + field
	}
}

// stepName names the workflow node at path for a message.
func stepName(path string) string {
	if path == "" {
		return "the workflow"
	}
	return "step " + path
}

// getWorkflow handles GET /api/workflows/{id}.
func (s *Server) getWorkflow(w http.ResponseWriter, r *http.Request) error {
	id, err := pathUUID(r, "workflow")
	if err != nil {
		return err
	}
	wf, err := s.store.Workflow(r.Context(), id)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, newWorkflowResponse(wf))
	return nil
}

// cancelWorkflow handles POST /api/workflows/{id}/cancel: it revokes every task of the workflow
// that has not finished.
func (s *Server) cancelWorkflow(w http.ResponseWriter, r *http.Request) error {
	id, err := pathUUID(r, "workflow")
	if err != nil {
		return err
	}
	running, err := s.store.RevokeWorkflow(r.Context(), id)
	if err != nil {
		return err
	}
	if s.commands != nil {
		for _, taskID := range running {
			if err := s.commands.Revoked(r.Context(), taskID); err != nil {
				s.log.WarnContext(r.Context(), "cannot tell workers about a revoked task; a running attempt finishes and its result is discarded",
					"task_id", taskID, "err", err)
				break
			}
		}
	}
	wf, err := s.store.Workflow(r.Context(), id)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, newWorkflowResponse(wf))
	return nil
}

func newWorkflowResponse(wf store.Workflow) workflowResponse {
	resp := workflowResponse{ID: wf.ID.String(), Workflow: wf.Spec, CreatedAt: wf.CreatedAt,
		Result: json.RawMessage("null"), Tasks: make([]workflowTask, len(wf.Tasks))}
	waits := map[uuid.UUID][]string{}
	for _, e := range wf.Edges {
		waits[e.Child] = append(waits[e.Child], e.Parent.String())
	}
	byID := map[uuid.UUID]store.Task{}
	for i, t := range wf.Tasks {
		byID[t.ID] = t
		resp.Tasks[i] = workflowTask{taskResponse: newTaskResponse(t), WaitsFor: waits[t.ID]}
		if resp.Tasks[i].WaitsFor == nil {
			resp.Tasks[i].WaitsFor = []string{}
		}
	}
	resp.State, resp.Error = workflowState(wf.Tasks)
	if resp.State == task.Success {
		results := make([]json.RawMessage, len(wf.Outputs))
		for i, id := range wf.Outputs {
			results[i] = newTaskResponse(byID[id]).Result
		}
		if wf.Many {
			resp.Result = mustMarshal(results)
		} else if len(results) == 1 {
			resp.Result = results[0]
		}
	}
	return resp
}

// workflowState sums up the states of a workflow's tasks. It is SUCCESS when all succeeded,
// FAILURE or REVOKED once all finished and one did not succeed, STARTED while any task has started
// or finished, and PENDING before that. The error is that of the task that failed first.
func workflowState(tasks []store.Task) (task.State, *string) {
	var started, finished int
	var failed, revoked *store.Task
	for i, t := range tasks {
		switch t.State {
		case task.Success:
			finished++
		case task.Failure:
			finished++
			failed = earlier(failed, &tasks[i])
		case task.Revoked:
			finished++
			revoked = earlier(revoked, &tasks[i])
		case task.Started, task.Retry:
			started++
		}
	}
	switch {
	case finished < len(tasks) && started+finished > 0:
		return task.Started, nil
	case finished < len(tasks):
		return task.Pending, nil
	case failed != nil:
		msg := fmt.Sprintf("task %s (%s) failed: %s", failed.ID, failed.Name, failed.Error)
		return task.Failure, &msg
	case revoked != nil:
		msg := fmt.Sprintf("task %s (%s) was revoked", revoked.ID, revoked.Name)
		if revoked.Error != "" {
			msg += ": " + revoked.Error
		}
		return task.Revoked, &msg
	default:
		return task.Success, nil
	}
}

// earlier returns the task of a and b that finished first, or the one that is not nil.
func earlier(a, b *store.Task) *store.Task {
	if a == nil || a.FinishedAt == nil {
		return b
	}
	if b.FinishedAt != nil && b.FinishedAt.Before(*a.FinishedAt) {
		return b
	}
	return a
}
