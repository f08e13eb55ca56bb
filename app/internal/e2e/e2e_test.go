package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/taskflow-dev/taskflow/app/internal/backoff"
	"github.com/taskflow-dev/taskflow/app/internal/builtin"
	"github.com/taskflow-dev/taskflow/app/internal/stack"
	"github.com/taskflow-dev/taskflow/app/internal/task"
	"github.com/taskflow-dev/taskflow/app/internal/testenv"
	"github.com/taskflow-dev/taskflow/app/internal/worker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testTasks are handlers that exist only in tests, next to the built-in ones.
type testTasks struct {
	flakyCalls atomic.Int64
}

type emptyArgs struct{}

func (emptyArgs) Validate() error { return nil }

type flakyArgs struct {
	Failures int `json:"failures"`
}

func (flakyArgs) Validate() error { return nil }

type echoArgs struct {
	Value json.RawMessage `json:"value"`
}

func (echoArgs) Validate() error { return nil }

// registry returns the built-in tasks plus:
//   - "panic", which always panics;
//   - "flaky", which fails its first `failures` attempts with a transient error;
//   - "echo", which returns its argument "value".
func (tt *testTasks) registry() *task.Registry {
	r := task.NewRegistry()
	builtin.Register(r)
	task.Register(r, task.Definition[emptyArgs]{
		Name: "panic", Description: "always panics", MaxRetries: 2,
		Run: func(context.Context, emptyArgs) (any, error) { panic("this handler always panics") },
	})
	task.Register(r, task.Definition[flakyArgs]{
		Name: "flaky", Description: "fails a given number of times", MaxRetries: 5,
		Run: func(ctx context.Context, a flakyArgs) (any, error) {
			n := tt.flakyCalls.Add(1)
			if int(n) <= a.Failures {
				return nil, fmt.Errorf("transient failure %d of %d", n, a.Failures)
			}
			return map[string]int64{"calls": n}, nil
		},
	})
	task.Register(r, task.Definition[echoArgs]{
		Name: "echo", Description: "returns its value",
		Run: func(_ context.Context, a echoArgs) (any, error) { return a.Value, nil },
	})
	return r
}

// fastWorker is a worker configuration with short retry delays for tests.
func fastWorker() worker.Config {
	return worker.Config{
		Name: "test", Concurrency: 4,
		Retry:             backoff.Policy{Base: 50 * time.Millisecond, Max: 400 * time.Millisecond},
		DrainTimeout:      5 * time.Second,
		Reconnect:         backoff.Policy{Base: 50 * time.Millisecond, Max: time.Second},
		HeartbeatInterval: 200 * time.Millisecond,
	}
}

// startStack runs an api and workers on a fresh database and vhost.
func startStack(t *testing.T, workers int, tt *testTasks) (*stack.Stack, string) {
	t.Helper()
	amqpURL := testenv.RabbitMQ(t)
	s, err := stack.Start(context.Background(), stack.Config{
		DatabaseURL: testenv.Database(t), RabbitMQURL: amqpURL,
		Registry: tt.registry(), Workers: workers, Worker: fastWorker(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s, amqpURL
}

// taskJSON is the API's task representation, as far as the tests read it.
type taskJSON struct {
	ID        string          `json:"id"`
	Task      string          `json:"task"`
	State     task.State      `json:"state"`
	Result    json.RawMessage `json:"result"`
	Error     *string         `json:"error"`
	Traceback *string         `json:"traceback"`
	Attempts  int             `json:"attempts"`
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func request(t *testing.T, method, url, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// submit posts a task and requires 202.
func submit(t *testing.T, s *stack.Stack, body string) taskJSON {
	t.Helper()
	resp := request(t, http.MethodPost, s.URL+"/api/tasks", body)
	if resp.status != http.StatusAccepted {
		t.Fatalf("submit %s: status %d %s, want 202", body, resp.status, resp.body)
	}
	var tj taskJSON
	resp.decode(t, &tj)
	if tj.State != task.Pending {
		t.Fatalf("submitted task state = %s, want PENDING", tj.State)
	}
	return tj
}

func getTask(t *testing.T, s *stack.Stack, id string) taskJSON {
	t.Helper()
	resp := request(t, http.MethodGet, s.URL+"/api/tasks/"+id, "")
	if resp.status != http.StatusOK {
		t.Fatalf("get task %s: status %d %s", id, resp.status, resp.body)
	}
	var tj taskJSON
	resp.decode(t, &tj)
	return tj
}

// waitFor polls the task until it reaches one of states or the timeout passes.
func waitFor(t *testing.T, s *stack.Stack, id string, timeout time.Duration, states ...task.State) taskJSON {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		tj := getTask(t, s, id)
		if slices.Contains(states, tj.State) {
			return tj
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s is %s after %s, want one of %v (error %v)", id, tj.State, timeout, states, deref(tj.Error))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// queueDepth returns the number of ready messages in queue, using a passive declare.
func queueDepth(t *testing.T, amqpURL, queue string) int {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	if err != nil {
		t.Fatalf("inspect queue %s: %v", queue, err)
	}
	return q.Messages
}

// getMessage takes one message from queue, acknowledging it, or fails the test after timeout.
func getMessage(t *testing.T, amqpURL, queue string, timeout time.Duration) amqp.Delivery {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("get from %s: %v", queue, err)
		}
		if ok {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message in %s after %s", queue, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBuiltinTasksSucceed(t *testing.T) {
	t.Parallel()
	s, _ := startStack(t, 2, &testTasks{})
	cases := []struct {
		name string
		body string
		want string // the result, compared as JSON
	}{
		{"fib", `{"task":"fib","args":{"n":100}}`, `{"n":100,"value":"354224848179261915075"}`},
		{"fib zero", `{"task":"fib","args":{"n":0}}`, `{"n":0,"value":"0"}`},
		{"sleep", `{"task":"sleep","args":{"ms":30}}`, `{"slept_ms":30}`},
		{"csvstats", `{"task":"csvstats","args":{"csv":"city,amount\nOslo,10\nRome,5\nOslo,2.5\n","group_by":"city","value":"amount","ops":["count","sum"]}}`,
			`{"group_by":"city","value":"amount","rows":3,"groups":[{"key":"Oslo","count":2,"sum":12.5},{"key":"Rome","count":1,"sum":5}]}`},
	}
	ids := make([]string, len(cases))
	for i, c := range cases {
		ids[i] = submit(t, s, c.body).ID
	}
	for i, c := range cases {
		got := waitFor(t, s, ids[i], 20*time.Second, task.Success, task.Failure)
		if got.State != task.Success {
			t.Errorf("%s: state %s error %q, want SUCCESS", c.name, got.State, deref(got.Error))
			continue
		}
		if diff := cmp.Diff(jsonValue(t, c.want), jsonValue(t, string(got.Result))); diff != "" {
			t.Errorf("%s: result (-want +got):\n%s", c.name, diff)
		}
		if got.Attempts != 1 {
			t.Errorf("%s: attempts = %d, want 1", c.name, got.Attempts)
		}
	}
}

func TestWordStatsCountsWords(t *testing.T) {
	t.Parallel()
	s, _ := startStack(t, 1, &testTasks{})
	tj := submit(t, s, `{"task":"wordstats","args":{"text":"The cat saw the other cat. The end!","top":2}}`)
	got := waitFor(t, s, tj.ID, 20*time.Second, task.Success, task.Failure)
	var result struct {
		Words int `json:"words"`
		Top   []struct {
			Word  string `json:"word"`
			Count int    `json:"count"`
		} `json:"top"`
	}
	if err := json.Unmarshal(got.Result, &result); err != nil {
		t.Fatalf("decode result %s: %v", got.Result, err)
	}
	if result.Words != 8 {
		t.Errorf("words = %d, want 8", result.Words)
	}
	type wc struct {
		Word  string
		Count int
	}
	var top []wc
	for _, w := range result.Top {
		top = append(top, wc{w.Word, w.Count})
	}
	if diff := cmp.Diff([]wc{{"the", 3}, {"cat", 2}}, top); diff != "" {
		t.Errorf("top words (-want +got):\n%s", diff)
	}
}

func jsonValue(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

func TestMalformedInputFailsWithoutRetry(t *testing.T) {
	t.Parallel()
	s, amqpURL := startStack(t, 1, &testTasks{})
	cases := []struct {
		name    string
		body    string
		wantErr string
	}{
		{"ragged csv", `{"task":"csvstats","args":{"csv":"a,b\n1,2\n3\n","group_by":"a","value":"b"}}`, "line 3"},
		{"non-numeric value", `{"task":"csvstats","args":{"csv":"a,b\nx,abc\n","group_by":"a","value":"b"}}`, `"abc"`},
		{"missing column", `{"task":"csvstats","args":{"csv":"a,b\nx,1\n","group_by":"zzz","value":"b"}}`, "zzz"},
	}
	for _, c := range cases {
		id := submit(t, s, c.body).ID
		got := waitFor(t, s, id, 20*time.Second, task.Success, task.Failure)
		if got.State != task.Failure {
			t.Errorf("%s: state %s, want FAILURE", c.name, got.State)
		}
		if got.Attempts != 1 {
			t.Errorf("%s: attempts = %d, want 1: a permanent error must not be retried", c.name, got.Attempts)
		}
		if !strings.Contains(deref(got.Error), c.wantErr) {
			t.Errorf("%s: error %q does not mention %s", c.name, deref(got.Error), c.wantErr)
		}
	}
	if n := queueDepth(t, amqpURL, "tasks.dlq"); n != 0 {
		t.Errorf("dead-letter queue holds %d messages; permanent failures do not go there", n)
	}
}

func TestTransientFailureRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	tt := &testTasks{}
	s, _ := startStack(t, 1, tt)
	id := submit(t, s, `{"task":"flaky","args":{"failures":3}}`).ID
	got := waitFor(t, s, id, 30*time.Second, task.Success, task.Failure)
	if got.State != task.Success {
		t.Fatalf("state %s error %q, want SUCCESS after retries", got.State, deref(got.Error))
	}
	if got.Attempts != 4 {
		t.Errorf("attempts = %d, want 4 (3 failures, then success)", got.Attempts)
	}
	attempts, err := s.Store.Attempts(context.Background(), mustUUID(t, id))
	if err != nil {
		t.Fatal(err)
	}
	var states []task.State
	for i, a := range attempts {
		states = append(states, a.State)
		if i > 0 {
			// Equal jitter on a 50ms base never waits less than 25ms.
			gap := a.StartedAt.Sub(*attempts[i-1].FinishedAt)
			if gap < 20*time.Millisecond {
				t.Errorf("attempt %d started %s after attempt %d finished; want a backoff", a.Number, gap, i)
			}
		}
	}
	want := []task.State{task.Retry, task.Retry, task.Retry, task.Success}
	if diff := cmp.Diff(want, states); diff != "" {
		t.Errorf("attempt states (-want +got):\n%s", diff)
	}
}

func TestPanickingTaskIsDeadLettered(t *testing.T) {
	t.Parallel()
	s, amqpURL := startStack(t, 2, &testTasks{})
	panicID := submit(t, s, `{"task":"panic"}`).ID
	var neighbours []string
	for n := range 10 {
		neighbours = append(neighbours, submit(t, s, fmt.Sprintf(`{"task":"fib","args":{"n":%d}}`, n+10)).ID)
	}

	got := waitFor(t, s, panicID, 30*time.Second, task.Failure, task.Success)
	if got.State != task.Failure {
		t.Fatalf("panic task state = %s, want FAILURE", got.State)
	}
	if got.Attempts != 3 {
		t.Errorf("panic task attempts = %d, want 3 (max_retries 2)", got.Attempts)
	}
	if !strings.Contains(deref(got.Error), "this handler always panics") {
		t.Errorf("error %q does not carry the panic value", deref(got.Error))
	}
	if !strings.Contains(deref(got.Traceback), "goroutine") {
		t.Errorf("traceback %q is not a stack", deref(got.Traceback))
	}
	for _, id := range neighbours {
		if n := waitFor(t, s, id, 20*time.Second, task.Success, task.Failure); n.State != task.Success {
			t.Errorf("neighbour %s state = %s, want SUCCESS", id, n.State)
		}
	}

	dead := getMessage(t, amqpURL, "tasks.dlq", 10*time.Second)
	if dead.MessageId != panicID {
		t.Errorf("dead letter message id = %s, want %s", dead.MessageId, panicID)
	}
	if reason := dead.Headers["x-taskflow-reason"]; reason != "retries_exhausted" {
		t.Errorf("dead letter reason = %v, want retries_exhausted", reason)
	}
}

func TestTimeoutFailsAttempt(t *testing.T) {
	t.Parallel()
	s, _ := startStack(t, 1, &testTasks{})
	id := submit(t, s, `{"task":"sleep","args":{"ms":10000},"timeout_ms":100,"max_retries":0}`).ID
	got := waitFor(t, s, id, 20*time.Second, task.Failure, task.Success)
	if got.State != task.Failure {
		t.Fatalf("state = %s, want FAILURE", got.State)
	}
	if !strings.Contains(deref(got.Error), "timed out after 100ms") {
		t.Errorf("error = %q, want a timeout after 100ms", deref(got.Error))
	}
}

func TestCountdownDelaysStart(t *testing.T) {
	t.Parallel()
	s, _ := startStack(t, 1, &testTasks{})
	submitted := time.Now()
	id := submit(t, s, `{"task":"fib","args":{"n":5},"countdown_ms":1500}`).ID
	time.Sleep(500 * time.Millisecond)
	if got := getTask(t, s, id); got.State != task.Pending {
		t.Errorf("state 0.5s into a 1.5s countdown = %s, want PENDING", got.State)
	}
	waitFor(t, s, id, 20*time.Second, task.Success)
	stored, err := s.Store.Task(context.Background(), mustUUID(t, id))
	if err != nil {
		t.Fatal(err)
	}
	if started := stored.StartedAt.Sub(submitted); started < 1400*time.Millisecond {
		t.Errorf("task started %s after submit, want at least the 1.5s countdown", started)
	}
}

func TestCancelRunningTaskKeepsRevoked(t *testing.T) {
	t.Parallel()
	s, _ := startStack(t, 1, &testTasks{})
	id := submit(t, s, `{"task":"sleep","args":{"ms":800}}`).ID
	waitFor(t, s, id, 20*time.Second, task.Started)
	resp := request(t, http.MethodPost, s.URL+"/api/tasks/"+id+"/cancel", "")
	if resp.status != http.StatusOK {
		t.Fatalf("cancel: status %d %s", resp.status, resp.body)
	}
	// The sleep ends after 800ms; its result must be discarded.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if got := getTask(t, s, id); got.State != task.Revoked || string(got.Result) != "null" {
			t.Fatalf("task after cancel = %s result %s, want REVOKED without result", got.State, got.Result)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestGracefulDrainFinishesRunningTasks(t *testing.T) {
	t.Parallel()
	s, _ := startStack(t, 1, &testTasks{})
	var ids []string
	for range 3 {
		ids = append(ids, submit(t, s, `{"task":"sleep","args":{"ms":700}}`).ID)
	}
	for _, id := range ids {
		waitFor(t, s, id, 20*time.Second, task.Started)
	}
	s.StopWorkers() // returns after the drain
	for _, id := range ids {
		got := getTask(t, s, id)
		if got.State != task.Success || got.Attempts != 1 {
			t.Errorf("task %s after drain = %s with %d attempts, want SUCCESS with 1", id, got.State, got.Attempts)
		}
	}
}

func mustUUID(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
