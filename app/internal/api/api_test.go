package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskflow-dev/taskflow/app/internal/api"
	"github.com/taskflow-dev/taskflow/app/internal/builtin"
	"github.com/taskflow-dev/taskflow/app/internal/stack"
	"github.com/taskflow-dev/taskflow/app/internal/task"
	"github.com/taskflow-dev/taskflow/app/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// startAPI runs the api and its relay, without workers, on a fresh database and vhost.
func startAPI(t *testing.T, cfg api.Config) *stack.Stack {
	t.Helper()
	registry := task.NewRegistry()
	builtin.Register(registry)
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 4096
	}
	s, err := stack.Start(context.Background(), stack.Config{
		DatabaseURL: testenv.Database(t), RabbitMQURL: testenv.RabbitMQ(t), Registry: registry, API: cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

type result struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func do(t *testing.T, method, url, body string, headers map[string]string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := headers["Content-Type"]; !ok && body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := result{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
	}
	return r
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	s := startAPI(t, api.Config{})
	cases := []struct {
		name      string
		method    string
		path      string
		body      string
		headers   map[string]string
		status    int
		field     string // "" when the response names no field
		errSubstr string
	}{
		{"malformed json", "POST", "/api/tasks", `{"task": "fib", `, nil, 400, "", "malformed JSON"},
		{"invalid json token", "POST", "/api/tasks", `{task: fib}`, nil, 400, "", "malformed JSON"},
		{"empty body", "POST", "/api/tasks", ``, map[string]string{"Content-Type": "application/json"}, 400, "", "empty"},
		{"array body", "POST", "/api/tasks", `[1, 2]`, nil, 400, "", "JSON object"},
		{"null body", "POST", "/api/tasks", `null`, nil, 400, "", "JSON object"},
		{"field name in other case", "POST", "/api/tasks", `{"TASK": "fib", "args": {"n": 1}}`, nil, 422, "TASK", "unknown field"},
		{"trailing data", "POST", "/api/tasks", `{"task":"fib","args":{"n":1}} {}`, nil, 400, "", "after the JSON object"},
		{"missing task", "POST", "/api/tasks", `{"args": {"n": 1}}`, nil, 422, "task", "task is required"},
		{"unknown task", "POST", "/api/tasks", `{"task": "nope"}`, nil, 422, "task", "csvstats, fib, sleep, sum, wordstats"},
		{"task not a string", "POST", "/api/tasks", `{"task": 5}`, nil, 422, "task", "must be a string"},
		{"unknown top-level field", "POST", "/api/tasks", `{"task": "fib", "argz": {}}`, nil, 422, "argz", "unknown field"},
		{"args not an object", "POST", "/api/tasks", `{"task": "fib", "args": [1]}`, nil, 422, "args", ""},
		{"arg of wrong type", "POST", "/api/tasks", `{"task": "fib", "args": {"n": "ten"}}`, nil, 422, "args.n", "integer"},
		{"arg fractional", "POST", "/api/tasks", `{"task": "fib", "args": {"n": 3.5}}`, nil, 422, "args.n", "integer"},
		{"arg below range", "POST", "/api/tasks", `{"task": "fib", "args": {"n": -1}}`, nil, 422, "args.n", "0 and 100000"},
		{"arg above range", "POST", "/api/tasks", `{"task": "fib", "args": {"n": 100001}}`, nil, 422, "args.n", "0 and 100000"},
		{"missing arg", "POST", "/api/tasks", `{"task": "fib", "args": {}}`, nil, 422, "args.n", ""},
		{"unknown arg", "POST", "/api/tasks", `{"task": "fib", "args": {"n": 1, "m": 2}}`, nil, 422, "args.m", ""},
		{"max_retries negative", "POST", "/api/tasks", `{"task": "fib", "args": {"n": 1}, "max_retries": -1}`, nil, 422, "max_retries", "between 0 and 100"},
		{"max_retries wrong type", "POST", "/api/tasks", `{"task": "fib", "args": {"n": 1}, "max_retries": "3"}`, nil, 422, "max_retries", "integer"},
		{"timeout zero", "POST", "/api/tasks", `{"task": "fib", "args": {"n": 1}, "timeout_ms": 0}`, nil, 422, "timeout_ms", "between 1"},
		{"countdown too long", "POST", "/api/tasks", `{"task": "fib", "args": {"n": 1}, "countdown_ms": 99999999999}`, nil, 422, "countdown_ms", "between 0"},
		{"body too large", "POST", "/api/tasks", `{"task": "wordstats", "args": {"text": "` + strings.Repeat("a", 5000) + `"}}`, nil, 413, "", "4096 bytes (the api's MAX_BODY_BYTES setting)"},
		{"form content type", "POST", "/api/tasks", `{"task": "fib", "args": {"n": 1}}`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "Content-Type", "application/json"},
		{"idempotency key too long", "POST", "/api/tasks", `{"task": "fib", "args": {"n": 1}}`, map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}, 400, "Idempotency-Key", "255"},
		{"idempotency key with space", "POST", "/api/tasks", `{"task": "fib", "args": {"n": 1}}`, map[string]string{"Idempotency-Key": "a b"}, 400, "Idempotency-Key", "printable"},
		{"id not a uuid", "GET", "/api/tasks/42", ``, nil, 400, "id", "not a UUID"},
		{"unknown id", "GET", "/api/tasks/0192f7e0-0000-7000-8000-000000000000", ``, nil, 404, "id", "no task"},
		{"cancel id not a uuid", "POST", "/api/tasks/xyz/cancel", ``, nil, 400, "id", "not a UUID"},
		{"cancel unknown id", "POST", "/api/tasks/0192f7e0-0000-7000-8000-000000000000/cancel", ``, nil, 404, "id", ""},
		{"list bad state", "GET", "/api/tasks?state=DONE", ``, nil, 400, "state", "PENDING"},
		{"list bad limit", "GET", "/api/tasks?limit=0", ``, nil, 400, "limit", "between 1 and 500"},
		{"list limit not a number", "GET", "/api/tasks?limit=ten", ``, nil, 400, "limit", ""},
		{"list bad cursor", "GET", "/api/tasks?after=nope", ``, nil, 400, "after", "cursor"},
		{"list task with NUL", "GET", "/api/tasks?task=%00", ``, nil, 400, "task", "UTF-8"},
		{"list task not UTF-8", "GET", "/api/tasks?task=%ff%fe", ``, nil, 400, "task", "UTF-8"},
		{"wrong method", "DELETE", "/api/tasks", ``, nil, 405, "", "use GET, POST"},
		{"wrong method on metrics", "POST", "/metrics", ``, nil, 405, "", "use GET"},
		{"unknown path", "GET", "/api/nothing", ``, nil, 404, "", "no such endpoint"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := do(t, c.method, s.URL+c.path, c.body, c.headers)
			if got.status != c.status {
				t.Fatalf("status = %d, want %d; body %s", got.status, c.status, got.raw)
			}
			if got.body == nil {
				t.Fatalf("body %q is not a JSON error", got.raw)
			}
			if field, _ := got.body["field"].(string); field != c.field {
				t.Errorf("field = %q, want %q (error %q)", field, c.field, got.body["error"])
			}
			if msg, _ := got.body["error"].(string); !strings.Contains(msg, c.errSubstr) {
				t.Errorf("error = %q, want it to mention %q", msg, c.errSubstr)
			}
		})
	}
}

func TestMethodNotAllowedListsMethods(t *testing.T) {
	t.Parallel()
	s := startAPI(t, api.Config{})
	got := do(t, "DELETE", s.URL+"/api/tasks/0192f7e0-0000-7000-8000-000000000000", "", nil)
	if got.status != http.StatusMethodNotAllowed {
		t.Fatalf("status = %d, want 405", got.status)
	}
	if allow := got.header.Get("Allow"); allow != "GET" {
		t.Errorf("Allow = %q, want GET", allow)
	}
}

func TestUnknownTaskListsKnownNames(t *testing.T) {
	t.Parallel()
	s := startAPI(t, api.Config{})
	got := do(t, "POST", s.URL+"/api/tasks", `{"task": "fibonacci"}`, nil)
	if got.status != http.StatusUnprocessableEntity {
		t.Fatalf("status = %d, want 422", got.status)
	}
	want := []any{"csvstats", "fib", "sleep", "sum", "wordstats"}
	if diff := cmp.Diff(want, got.body["known_tasks"]); diff != "" {
		t.Errorf("known_tasks (-want +got):\n%s", diff)
	}
}

func TestSubmitAndGet(t *testing.T) {
	t.Parallel()
	s := startAPI(t, api.Config{})
	sub := do(t, "POST", s.URL+"/api/tasks", `{"task":"fib","args":{"n":7},"max_retries":1,"timeout_ms":2000}`, nil)
	if sub.status != http.StatusAccepted {
		t.Fatalf("status = %d %s, want 202", sub.status, sub.raw)
	}
	id, _ := sub.body["id"].(string)
	if loc := sub.header.Get("Location"); loc != "/api/tasks/"+id {
		t.Errorf("Location = %q, want /api/tasks/%s", loc, id)
	}
	got := do(t, "GET", s.URL+"/api/tasks/"+id, "", nil)
	if got.status != http.StatusOK {
		t.Fatalf("get: status %d", got.status)
	}
	for _, key := range []string{"id", "task", "args", "state", "result", "error", "attempts", "created_at", "started_at", "finished_at"} {
		if _, ok := got.body[key]; !ok {
			t.Errorf("task JSON lacks %q: %s", key, got.raw)
		}
	}
	want := map[string]any{"task": "fib", "state": "PENDING", "max_retries": 1.0, "timeout_ms": 2000.0, "args": map[string]any{"n": 7.0}}
	for k, v := range want {
		if diff := cmp.Diff(v, got.body[k]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
}

func TestDefaultMaxRetriesSetting(t *testing.T) {
	t.Parallel()
	one := 1
	s := startAPI(t, api.Config{DefaultMaxRetries: &one})
	got := do(t, "POST", s.URL+"/api/tasks", `{"task":"fib","args":{"n":1}}`, nil)
	if got.body["max_retries"] != 1.0 {
		t.Errorf("max_retries = %v, want the configured default 1", got.body["max_retries"])
	}
	explicit := do(t, "POST", s.URL+"/api/tasks", `{"task":"fib","args":{"n":1},"max_retries":5}`, nil)
	if explicit.body["max_retries"] != 5.0 {
		t.Errorf("max_retries = %v, want the requested 5", explicit.body["max_retries"])
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := startAPI(t, api.Config{})
	key := map[string]string{"Idempotency-Key": "order-42"}
	first := do(t, "POST", s.URL+"/api/tasks", `{"task":"fib","args":{"n":10}}`, key)
	if first.status != http.StatusAccepted {
		t.Fatalf("first: status %d %s", first.status, first.raw)
	}
	// The same request with other spacing and key order.
	again := do(t, "POST", s.URL+"/api/tasks", `{ "args": {"n": 10}, "task": "fib" }`, key)
	if again.status != http.StatusAccepted {
		t.Fatalf("replay: status %d %s", again.status, again.raw)
	}
	if again.body["id"] != first.body["id"] {
		t.Errorf("replay id = %v, want %v", again.body["id"], first.body["id"])
	}
	if again.header.Get("Idempotent-Replayed") != "true" {
		t.Error("replay lacks Idempotent-Replayed: true")
	}

	other := do(t, "POST", s.URL+"/api/tasks", `{"task":"fib","args":{"n":11}}`, key)
	if other.status != http.StatusConflict || other.body["field"] != "Idempotency-Key" {
		t.Errorf("different body: status %d %s, want 409 naming Idempotency-Key", other.status, other.raw)
	}
	withOption := do(t, "POST", s.URL+"/api/tasks", `{"task":"fib","args":{"n":10},"max_retries":0}`, key)
	if withOption.status != http.StatusConflict {
		t.Errorf("different options: status %d, want 409", withOption.status)
	}

	list := do(t, "GET", s.URL+"/api/tasks", "", nil)
	if tasks, _ := list.body["tasks"].([]any); len(tasks) != 1 {
		t.Errorf("tasks listed = %d, want 1", len(tasks))
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	s := startAPI(t, api.Config{})
	// A countdown keeps the task PENDING; no worker runs here anyway.
	sub := do(t, "POST", s.URL+"/api/tasks", `{"task":"sleep","args":{"ms":1},"countdown_ms":600000}`, nil)
	id, _ := sub.body["id"].(string)

	first := do(t, "POST", s.URL+"/api/tasks/"+id+"/cancel", "", nil)
	if first.status != http.StatusOK || first.body["state"] != "REVOKED" {
		t.Fatalf("cancel: %d %s, want 200 REVOKED", first.status, first.raw)
	}
	if first.body["finished_at"] == nil {
		t.Error("a revoked task has no finished_at")
	}
	again := do(t, "POST", s.URL+"/api/tasks/"+id+"/cancel", "", nil)
	if again.status != http.StatusOK || again.body["state"] != "REVOKED" {
		t.Errorf("second cancel: %d %s, want 200 REVOKED", again.status, again.raw)
	}
}

func TestCancelFinishedTaskConflicts(t *testing.T) {
	t.Parallel()
	registry := task.NewRegistry()
	builtin.Register(registry)
	s, err := stack.Start(context.Background(), stack.Config{
		DatabaseURL: testenv.Database(t), RabbitMQURL: testenv.RabbitMQ(t), Registry: registry, Workers: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	sub := do(t, "POST", s.URL+"/api/tasks", `{"task":"fib","args":{"n":3}}`, nil)
	id, _ := sub.body["id"].(string)
	deadline := time.Now().Add(20 * time.Second)
	for do(t, "GET", s.URL+"/api/tasks/"+id, "", nil).body["state"] != "SUCCESS" {
		if time.Now().After(deadline) {
			t.Fatal("task did not succeed within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := do(t, "POST", s.URL+"/api/tasks/"+id+"/cancel", "", nil)
	if got.status != http.StatusConflict {
		t.Errorf("cancel of a finished task: %d %s, want 409", got.status, got.raw)
	}
}

func TestListPaginatesAndFilters(t *testing.T) {
	t.Parallel()
	s := startAPI(t, api.Config{})
	var want []any
	for n := range 5 {
		sub := do(t, "POST", s.URL+"/api/tasks", `{"task":"fib","args":{"n":`+string(rune('0'+n))+`}}`, nil)
		want = append([]any{sub.body["id"]}, want...)
	}
	do(t, "POST", s.URL+"/api/tasks", `{"task":"sleep","args":{"ms":1}}`, nil)

	var got []any
	url := s.URL + "/api/tasks?task=fib&state=pending&limit=2"
	for range 5 {
		page := do(t, "GET", url, "", nil)
		if page.status != http.StatusOK {
			t.Fatalf("list: %d %s", page.status, page.raw)
		}
		tasks, _ := page.body["tasks"].([]any)
		for _, tk := range tasks {
			got = append(got, tk.(map[string]any)["id"])
		}
		next, _ := page.body["next"].(string)
		if next == "" {
			break
		}
		url = s.URL + "/api/tasks?task=fib&state=pending&limit=2&after=" + next
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("listed ids (-want +got):\n%s", diff)
	}
}

func TestTokenRequired(t *testing.T) {
	t.Parallel()
	s := startAPI(t, api.Config{Token: "s3cret"})
	body := `{"task":"fib","args":{"n":1}}`
	if got := do(t, "POST", s.URL+"/api/tasks", body, nil); got.status != http.StatusUnauthorized {
		t.Errorf("without token: %d, want 401", got.status)
	}
	if got := do(t, "POST", s.URL+"/api/tasks", body, map[string]string{"Authorization": "Bearer wrong"}); got.status != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", got.status)
	}
	if got := do(t, "POST", s.URL+"/api/tasks", body, map[string]string{"Authorization": "Bearer s3cret"}); got.status != http.StatusAccepted {
		t.Errorf("right token: %d %s, want 202", got.status, got.raw)
	}
	if got := do(t, "POST", s.URL+"/api/tasks", body, map[string]string{"Authorization": "bearer s3cret"}); got.status != http.StatusAccepted {
		t.Errorf("scheme in lower case: %d %s, want 202: the scheme name is case-insensitive", got.status, got.raw)
	}
	if got := do(t, "GET", s.URL+"/api/healthz", "", nil); got.status != http.StatusOK {
		t.Errorf("healthz without token: %d, want 200", got.status)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	s := startAPI(t, api.Config{})
	if got := do(t, "GET", s.URL+"/api/healthz", "", nil); got.status != http.StatusOK || got.body["status"] != "ok" {
		t.Errorf("healthz: %d %s", got.status, got.raw)
	}
	ready := do(t, "GET", s.URL+"/api/readyz", "", nil)
	if ready.status != http.StatusOK || ready.body["status"] != "ok" || ready.body["rabbitmq"] != "ok" {
		t.Errorf("readyz: %d %s, want 200 ok", ready.status, ready.raw)
	}
	do(t, "POST", s.URL+"/api/tasks", `{"task":"fib","args":{"n":1}}`, nil)
	metrics := do(t, "GET", s.URL+"/metrics", "", nil)
	if !strings.Contains(metrics.raw, `taskflow_tasks_submitted_total{task="fib"} 1`) {
		t.Errorf("metrics lack the submitted counter:\n%s", metrics.raw)
	}
}
