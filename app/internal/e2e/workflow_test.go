package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskflow-dev/taskflow/app/internal/relay"
	"github.com/taskflow-dev/taskflow/app/internal/stack"
	"github.com/taskflow-dev/taskflow/app/internal/task"
	"github.com/taskflow-dev/taskflow/app/internal/testenv"
)

// workflowJSON is the API's workflow representation, as far as the tests read it.
type workflowJSON struct {
	ID     string          `json:"id"`
	State  task.State      `json:"state"`
	Result json.RawMessage `json:"result"`
	Error  *string         `json:"error"`
	Tasks  []taskJSON      `json:"tasks"`
}

// startWorkflowStack runs an api and two workers whose relay never polls: only the api's own
// submits and PostgreSQL's notifications about released tasks wake it.
func startWorkflowStack(t *testing.T) *stack.Stack {
	t.Helper()
	tt := &testTasks{}
	s, err := stack.Start(context.Background(), stack.Config{
		DatabaseURL: testenv.Database(t), RabbitMQURL: testenv.RabbitMQ(t),
		Registry: tt.registry(), Workers: 2, Worker: fastWorker(),
		Relay: relay.Config{PollInterval: time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func submitWorkflow(t *testing.T, s *stack.Stack, body string) workflowJSON {
	t.Helper()
	resp := request(t, http.MethodPost, s.URL+"/api/workflows", body)
	if resp.status != http.StatusAccepted {
		t.Fatalf("submit workflow: status %d %s, want 202", resp.status, resp.body)
	}
	var wf workflowJSON
	resp.decode(t, &wf)
	return wf
}

// waitForWorkflow polls the workflow until every task finished or the timeout passes.
func waitForWorkflow(t *testing.T, s *stack.Stack, id string, timeout time.Duration) workflowJSON {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var wf workflowJSON
		request(t, http.MethodGet, s.URL+"/api/workflows/"+id, "").decode(t, &wf)
		if wf.State.Terminal() {
			return wf
		}
		if time.Now().After(deadline) {
			t.Fatalf("workflow %s is %s after %s", id, wf.State, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestChordSumsHeaderResults(t *testing.T) {
	t.Parallel()
	s := startWorkflowStack(t)
	wf := submitWorkflow(t, s, `{"chord": {
		"header": [{"task": "fib", "args": {"n": 10}}, {"task": "fib", "args": {"n": 20}}, {"task": "fib", "args": {"n": 30}}],
		"body": {"task": "sum", "pipe": "values"}}}`)
	done := waitForWorkflow(t, s, wf.ID, 30*time.Second)
	if done.State != task.Success {
		t.Fatalf("workflow state = %s (error %s), want SUCCESS", done.State, deref(done.Error))
	}
	// F(10) + F(20) + F(30) = 55 + 6765 + 832040.
	if diff := cmp.Diff(`{"count":3,"value":"838860"}`, string(done.Result)); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	for _, tj := range done.Tasks {
		if tj.Attempts != 1 {
			t.Errorf("task %s (%s) ran %d attempts, want 1", tj.ID, tj.Task, tj.Attempts)
		}
	}
}

func TestChainPipesResultsForward(t *testing.T) {
	t.Parallel()
	s := startWorkflowStack(t)
	// Each step is released by the result before it, so five steps need five notifications.
	wf := submitWorkflow(t, s, `{"chain": [
		{"task": "echo", "args": {"value": 1}},
		{"task": "echo", "pipe": "value"},
		{"group": [{"task": "echo", "pipe": "value"}, {"task": "echo", "args": {"value": "b"}}]},
		{"task": "echo", "pipe": "value"},
		{"task": "echo", "pipe": "value", "countdown_ms": 50}]}`)
	done := waitForWorkflow(t, s, wf.ID, 30*time.Second)
	if done.State != task.Success {
		t.Fatalf("workflow state = %s (error %s), want SUCCESS", done.State, deref(done.Error))
	}
	if diff := cmp.Diff(`[1,"b"]`, string(done.Result)); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

func TestFailedStepRevokesDownstream(t *testing.T) {
	t.Parallel()
	s := startWorkflowStack(t)
	wf := submitWorkflow(t, s, `{"chain": [
		{"group": [{"task": "flaky", "args": {"failures": 1000}, "max_retries": 0}, {"task": "fib", "args": {"n": 5}}]},
		{"task": "sum", "pipe": "values"},
		{"task": "echo", "pipe": "value"}]}`)
	done := waitForWorkflow(t, s, wf.ID, 30*time.Second)
	if done.State != task.Failure {
		t.Fatalf("workflow state = %s, want FAILURE", done.State)
	}
	var states []task.State
	for _, tj := range done.Tasks {
		states = append(states, tj.State)
	}
	if diff := cmp.Diff([]task.State{task.Failure, task.Success, task.Revoked, task.Revoked}, states); diff != "" {
		t.Errorf("task states (-want +got):\n%s", diff)
	}
	if done.Error == nil || done.Tasks[2].Error == nil {
		t.Fatalf("workflow error %v, revoked step error %v; want both set", done.Error, done.Tasks[2].Error)
	}
	if want := "not run: task " + done.Tasks[0].ID; !strings.HasPrefix(*done.Tasks[2].Error, want) {
		t.Errorf("revoked step error = %q, want it to start with %q", *done.Tasks[2].Error, want)
	}
}

func TestBadPipedArgsFailPermanently(t *testing.T) {
	t.Parallel()
	s := startWorkflowStack(t)
	// fib's result is an object, and sum wants an array: the worker rejects the piped args.
	wf := submitWorkflow(t, s, `{"chain": [{"task": "fib", "args": {"n": 3}}, {"task": "sum", "pipe": "values"}]}`)
	done := waitForWorkflow(t, s, wf.ID, 30*time.Second)
	step := done.Tasks[1]
	if step.State != task.Failure || step.Attempts != 1 {
		t.Fatalf("step = %s after %d attempts, want FAILURE after 1", step.State, step.Attempts)
	}
	if want := "args.values must be an array"; !strings.HasPrefix(deref(step.Error), want) {
		t.Errorf("step error = %q, want it to start with %q", deref(step.Error), want)
	}
}
