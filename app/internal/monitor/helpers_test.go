package monitor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskflow-dev/taskflow/app/internal/backoff"
	"github.com/taskflow-dev/taskflow/app/internal/broker"
	"github.com/taskflow-dev/taskflow/app/internal/builtin"
	"github.com/taskflow-dev/taskflow/app/internal/event"
	"github.com/taskflow-dev/taskflow/app/internal/monitor"
	"github.com/taskflow-dev/taskflow/app/internal/stack"
	"github.com/taskflow-dev/taskflow/app/internal/store"
	"github.com/taskflow-dev/taskflow/app/internal/task"
	"github.com/taskflow-dev/taskflow/app/internal/testenv"
	"github.com/taskflow-dev/taskflow/app/internal/worker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	readToken  = "test-read-token-0123456789"
	adminToken = "test-admin-token-0123456789"
	prefix     = "/flower"
)

// switchArgs are the arguments of the test task "switch".
type switchArgs struct {
	Label string `json:"label"`
}

func (switchArgs) Validate() error { return nil }

// env is a stack (api and workers), a monitor on the same servers, and the monitor's URL.
type env struct {
	stack   *stack.Stack
	monitor *monitor.Monitor
	// URL is the monitor's base URL including the prefix, such as http://127.0.0.1:4321/flower.
	URL     string
	amqpURL string
	// failing makes the "switch" task fail (with a retryable error and no retries) while true.
	failing *atomic.Bool
}

// registry returns the built-in tasks plus "switch", which fails while failing is true.
func registry(failing *atomic.Bool) *task.Registry {
	r := task.NewRegistry()
	builtin.Register(r)
	task.Register(r, task.Definition[switchArgs]{
		Name: "switch", Description: "fails while the test says so", MaxRetries: 0,
		Run: func(ctx context.Context, a switchArgs) (any, error) {
			if failing.Load() {
				return nil, errors.New("switched off: " + a.Label)
			}
			return map[string]string{"label": a.Label}, nil
		},
	})
	return r
}

// startEnv starts a stack with the given number of workers and a monitor in front of it.
func startEnv(t *testing.T, workers int) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	dbURL, amqpURL := testenv.Database(t), testenv.RabbitMQ(t)
	failing := &atomic.Bool{}

	s, err := stack.Start(ctx, stack.Config{
		DatabaseURL: dbURL, RabbitMQURL: amqpURL, Registry: registry(failing), Workers: workers,
		Worker: worker.Config{
			Name: "w", Concurrency: 2, HeartbeatInterval: 200 * time.Millisecond,
			Retry:        backoff.Policy{Base: 50 * time.Millisecond, Max: 200 * time.Millisecond},
			DrainTimeout: 5 * time.Second,
			Reconnect:    backoff.Policy{Base: 50 * time.Millisecond, Max: time.Second},
		},
		DBMaxConns: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)

	mon, url := startMonitor(t, dbURL, amqpURL, monitor.Config{
		Prefix: prefix, ReadToken: readToken, AdminToken: adminToken,
		OfflineAfter: 2 * time.Second, ForgetAfter: 30 * time.Second, RefreshInterval: 300 * time.Millisecond,
	}, log)
	return &env{stack: s, monitor: mon, URL: url + prefix, amqpURL: amqpURL, failing: failing}
}

// startMonitor runs a monitor on its own connections and an HTTP server on loopback, and returns
// the server's root URL.
func startMonitor(t *testing.T, dbURL, amqpURL string, cfg monitor.Config, log *slog.Logger) (*monitor.Monitor, string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL, 5)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	conn := broker.NewConn(amqpURL, "test-monitor", log)
	pub := broker.NewPublisher(conn)
	t.Cleanup(func() { pub.Close(); _ = conn.Close() })
	mgmt, err := monitor.NewManagement(testenv.ManagementURL(t), amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	mon, err := monitor.New(cfg, monitor.Deps{Store: st, Broker: conn, Queues: mgmt,
		Commands: event.NewCommands(conn, pub), Log: log, Registerer: reg, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = mon.Run(runCtx)
	}()
	srv := httptest.NewServer(mon)
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return mon, srv.URL
}

// response is a received HTTP response with its body read.
type response struct {
	status int
	header http.Header
	body   string
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// call sends a request with the token as a bearer token ("" sends none). A non-empty body is
// sent as JSON.
func call(t *testing.T, method, url, token, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	client := http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// mustCall is call that requires the status.
func mustCall(t *testing.T, method, url, token, body string, status int) response {
	t.Helper()
	r := call(t, method, url, token, body)
	if r.status != status {
		t.Fatalf("%s %s = %d, want %d: %s", method, url, r.status, status, r.body)
	}
	return r
}

// submit posts a task to the stack's api and returns its id.
func (e *env) submit(t *testing.T, body string) string {
	t.Helper()
	var created struct {
		ID string `json:"id"`
	}
	mustCall(t, http.MethodPost, e.stack.URL+"/api/tasks", "", body, http.StatusAccepted).decode(t, &created)
	return created.ID
}

// taskView is the part of the monitor's task detail that tests read.
type taskView struct {
	Task struct {
		ID       string     `json:"id"`
		Task     string     `json:"task"`
		State    task.State `json:"state"`
		Attempts int        `json:"attempts"`
		Error    *string    `json:"error"`
	} `json:"task"`
	Attempts []struct {
		Attempt int        `json:"attempt"`
		Worker  string     `json:"worker"`
		State   task.State `json:"state"`
	} `json:"attempts"`
	Timeline []struct {
		Event string `json:"event"`
	} `json:"timeline"`
	WaitsFor []string `json:"waits_for"`
	NeededBy []string `json:"needed_by"`
}

// waitState polls the monitor's task API until the task is in one of the states.
func (e *env) waitState(t *testing.T, id string, timeout time.Duration, states ...task.State) taskView {
	t.Helper()
	var v taskView
	eventually(t, timeout, fmt.Sprintf("task %s in %v", id, states), func() bool {
		mustCall(t, http.MethodGet, e.URL+"/api/tasks/"+id, readToken, "", http.StatusOK).decode(t, &v)
		for _, s := range states {
			if v.Task.State == s {
				return true
			}
		}
		return false
	})
	return v
}

// eventually polls cond every 50ms until it holds, and fails the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// workers returns the monitor's worker list.
func (e *env) workers(t *testing.T) (online int, statuses map[string]string) {
	t.Helper()
	var list struct {
		Online  int `json:"online"`
		Workers []struct {
			Name   string `json:"worker"`
			Status string `json:"status"`
		} `json:"workers"`
	}
	mustCall(t, http.MethodGet, e.URL+"/api/workers", readToken, "", http.StatusOK).decode(t, &list)
	statuses = map[string]string{}
	for _, w := range list.Workers {
		statuses[w.Name] = w.Status
	}
	return list.Online, statuses
}

// deadLetters browses a dead-letter queue through the monitor.
type deadLetters struct {
	Total    int `json:"total"`
	Messages []struct {
		TaskID   string     `json:"task_id"`
		Task     string     `json:"task"`
		Reason   string     `json:"reason"`
		Error    string     `json:"error"`
		Attempts int        `json:"attempts"`
		State    task.State `json:"state"`
	} `json:"messages"`
}

func (e *env) browse(t *testing.T, queue string) deadLetters {
	t.Helper()
	var d deadLetters
	mustCall(t, http.MethodGet, e.URL+"/api/queues/"+queue+"/messages", readToken, "", http.StatusOK).decode(t, &d)
	return d
}
