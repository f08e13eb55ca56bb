package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskflow-dev/taskflow/app/internal/api"
)

func TestWorkflowBadInput(t *testing.T) {
	t.Parallel()
	s := startAPI(t, api.Config{MaxBodyBytes: 1 << 20})
	fib := `{"task": "fib", "args": {"n": 1}}`
	deep := fib
	for range 40 {
		deep = `{"chain": [` + deep + `]}`
	}
	cases := []struct {
		name      string
		body      string
		status    int
		field     string
		errSubstr string
	}{
		{"malformed json", `{"chain": [`, 400, "", "malformed JSON"},
		{"not an object", `[1]`, 400, "", "JSON object"},
		{"null", `null`, 400, "", "JSON object"},
		{"no kind", `{"steps": []}`, 422, "", `exactly one of "chain", "group" or "chord"`},
		{"two kinds", `{"chain": [` + fib + `], "group": [` + fib + `]}`, 422, "", "exactly one"},
		{"empty chain", `{"chain": []}`, 422, "chain", "at least one step"},
		{"chain not an array", `{"chain": {"task": "fib"}}`, 422, "chain", "array of steps"},
		{"step not an object", `{"group": [` + fib + `, 5]}`, 422, "group[1]", "JSON object"},
		{"unknown task", `{"chain": [` + fib + `, {"task": "nope"}]}`, 422, "chain[1].task", `unknown task "nope"`},
		{"bad argument", `{"group": [{"task": "fib", "args": {"n": -1}}]}`, 422, "group[0].args.n", "between 0 and 100000"},
		{"bad option", `{"chain": [{"task": "fib", "args": {"n": 1}, "max_retries": 1000}]}`, 422, "chain[0].max_retries", "step chain[0]: max_retries"},
		{"option of wrong type", `{"chain": [{"task": "fib", "max_retries": "3"}]}`, 422, "chain[0].max_retries", "must be an integer"},
		{"unknown step field", `{"chain": [{"task": "fib", "args": {"n": 1}, "after": 1}]}`, 422, "chain[0].after", "unknown field"},
		{"pipe on first step", `{"chain": [{"task": "sum", "pipe": "values"}]}`, 422, "chain[0].pipe", "comes first"},
		{"pipe to unknown argument", `{"chain": [` + fib + `, {"task": "sum", "pipe": "items"}]}`, 422, "chain[1].pipe", "not an argument"},
		{"pipe given too", `{"chain": [` + fib + `, {"task": "sum", "pipe": "values", "args": {"values": [1]}}]}`, 422, "chain[1].args.values", "leave it out"},
		{"empty pipe", `{"chain": [` + fib + `, {"task": "sum", "pipe": ""}]}`, 422, "chain[1].pipe", "must name"},
		{"chord without body", `{"chord": {"header": [` + fib + `]}}`, 422, "chord.body", `needs "body"`},
		{"chord with extra field", `{"chord": {"header": [` + fib + `], "body": ` + fib + `, "x": 1}}`, 422, "chord.x", "unknown field"},
		{"chord with empty header", `{"chord": {"header": [], "body": ` + fib + `}}`, 422, "chord.header", "at least one step"},
		{"too deep", deep, 422, "", "at most 32 levels"},
		{"too many tasks", `{"group": [` + strings.Repeat(fib+",", 1000) + fib + `]}`, 422, "group[1000]", "at most 1000 tasks"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := do(t, "POST", s.URL+"/api/workflows", c.body, nil)
			if got.status != c.status {
				t.Fatalf("status = %d, want %d; body %s", got.status, c.status, got.raw)
			}
			if field, _ := got.body["field"].(string); !strings.HasPrefix(field, c.field) || (c.field != "" && field != c.field) {
				t.Errorf("field = %q, want %q (error %q)", field, c.field, got.body["error"])
			}
			if msg, _ := got.body["error"].(string); !strings.Contains(msg, c.errSubstr) {
				t.Errorf("error = %q, want it to mention %q", msg, c.errSubstr)
			}
		})
	}

	t.Run("unknown task lists known names", func(t *testing.T) {
		got := do(t, "POST", s.URL+"/api/workflows", `{"group": [{"task": "nope"}]}`, nil)
		if _, ok := got.body["known_tasks"].([]any); !ok {
			t.Errorf("known_tasks missing: %s", got.raw)
		}
	})
	t.Run("unknown workflow", func(t *testing.T) {
		got := do(t, "GET", s.URL+"/api/workflows/0192f7e0-0000-7000-8000-000000000000", "", nil)
		if got.status != http.StatusNotFound || got.body["field"] != "id" {
			t.Errorf("status = %d %s, want 404 on id", got.status, got.raw)
		}
	})
	t.Run("workflow id not a UUID", func(t *testing.T) {
		got := do(t, "POST", s.URL+"/api/workflows/42/cancel", "", nil)
		if got.status != http.StatusBadRequest || got.body["field"] != "id" {
			t.Errorf("status = %d %s, want 400 on id", got.status, got.raw)
		}
	})
}

func TestWorkflowSubmitShape(t *testing.T) {
	t.Parallel()
	s := startAPI(t, api.Config{})
	body := `{"chord": {"header": [{"task": "fib", "args": {"n": 10}}, {"chain": [{"task": "fib", "args": {"n": 20}}, {"task": "sum", "pipe": "values", "countdown_ms": 5}]}],
		"body": {"task": "sum", "pipe": "values"}}}`
	got := do(t, "POST", s.URL+"/api/workflows", body, map[string]string{"Idempotency-Key": "shape"})
	if got.status != http.StatusAccepted {
		t.Fatalf("status = %d %s, want 202", got.status, got.raw)
	}
	id, _ := got.body["id"].(string)
	if loc := got.header.Get("Location"); loc != "/api/workflows/"+id {
		t.Errorf("Location = %q, want /api/workflows/%s", loc, id)
	}
	if got.body["state"] != "PENDING" {
		t.Errorf("state = %v, want PENDING", got.body["state"])
	}
	tasks, _ := got.body["tasks"].([]any)
	if len(tasks) != 4 {
		t.Fatalf("tasks = %d, want 4: %s", len(tasks), got.raw)
	}
	ids := make([]string, len(tasks))
	var waits [][]any
	for i, raw := range tasks {
		tk := raw.(map[string]any)
		ids[i], _ = tk["id"].(string)
		w, _ := tk["waits_for"].([]any)
		waits = append(waits, w)
		if tk["workflow_id"] != id {
			t.Errorf("task %d workflow_id = %v, want %s", i, tk["workflow_id"], id)
		}
	}
	// Steps in request order: fib 10, fib 20, the chain's sum, the chord's body.
	want := [][]any{{}, {}, {ids[1]}, {ids[0], ids[2]}}
	if diff := cmp.Diff(want, waits); diff != "" {
		t.Errorf("waits_for (-want +got):\n%s", diff)
	}

	replay := do(t, "POST", s.URL+"/api/workflows", body, map[string]string{"Idempotency-Key": "shape"})
	if replay.status != http.StatusAccepted || replay.body["id"] != id || replay.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay = %d %v %q, want 202 with the same id", replay.status, replay.body["id"], replay.header.Get("Idempotent-Replayed"))
	}
	other := do(t, "POST", s.URL+"/api/workflows", `{"group": [{"task": "fib", "args": {"n": 1}}]}`, map[string]string{"Idempotency-Key": "shape"})
	if other.status != http.StatusConflict {
		t.Errorf("same key, other workflow: status = %d, want 409", other.status)
	}

	cancel := do(t, "POST", s.URL+"/api/workflows/"+id+"/cancel", "", nil)
	if cancel.status != http.StatusOK || cancel.body["state"] != "REVOKED" {
		t.Errorf("cancel = %d %v, want 200 REVOKED", cancel.status, cancel.body["state"])
	}
	task := do(t, "GET", s.URL+"/api/tasks/"+ids[3], "", nil)
	if task.body["state"] != "REVOKED" {
		t.Errorf("body task state after cancel = %v, want REVOKED", task.body["state"])
	}
	if methods := do(t, "GET", s.URL+"/api/workflows", "", nil); methods.header.Get("Allow") != "POST" {
		t.Errorf("GET /api/workflows: status %d, Allow %q; want 405 with Allow POST", methods.status, methods.header.Get("Allow"))
	}
}
