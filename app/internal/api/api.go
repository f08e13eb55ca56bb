// Package api serves the producer HTTP API: submit, read, list and cancel tasks and workflows of
// tasks (workflow.go), plus health, readiness and Prometheus metrics. Every error response is
// JSON of the form {"error": "...", "field": "..."}, and errors are mapped to status codes in one
// place (errors.go).
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/taskflow-dev/taskflow/app/internal/batch"
	"github.com/taskflow-dev/taskflow/app/internal/store"
	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// Store is the part of the task store the API uses.
type Store interface {
	CreateTasks(ctx context.Context, tasks []store.NewTask) []store.Created
	Task(ctx context.Context, id uuid.UUID) (store.Task, error)
	ListTasks(ctx context.Context, f store.Filter) ([]store.Task, bool, error)
	Revoke(ctx context.Context, id uuid.UUID) (store.Task, error)
	CreateWorkflow(ctx context.Context, w store.NewWorkflow) (store.Workflow, bool, error)
	Workflow(ctx context.Context, id uuid.UUID) (store.Workflow, error)
	RevokeWorkflow(ctx context.Context, id uuid.UUID) ([]uuid.UUID, error)
	Ping(ctx context.Context) error
	OutboxSize(ctx context.Context) (int, error)
}

// Registry validates task names and arguments.
type Registry interface {
	Validate(name string, raw json.RawMessage) (json.RawMessage, error)
	ValidatePiped(name string, raw json.RawMessage, pipe string) (json.RawMessage, error)
	Info(name string) (task.Info, bool)
}

// Broker reports whether RabbitMQ is reachable.
type Broker interface {
	Check() error
}

// Notifier is told after a task is committed, so the outbox relay publishes it at once.
type Notifier interface {
	Notify()
}

// Commander tells workers that a task was revoked, so one that runs it can stop early. Delivery
// is best effort: workers also find the REVOKED state when they store the outcome.
type Commander interface {
	Revoked(ctx context.Context, id uuid.UUID) error
}

// Deps are the collaborators of a Server. Commands may be nil.
type Deps struct {
	Store    Store
	Registry Registry
	Broker   Broker
	Relay    Notifier
	Commands Commander
	Log      *slog.Logger
	// Metrics are registered with Registerer and served from Gatherer at /metrics.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
}

// Config holds the API settings.
type Config struct {
	// Queue is the work queue new tasks go to.
	Queue string
	// MaxBodyBytes is the largest accepted request body; larger bodies get 413.
	MaxBodyBytes int64
	// DefaultMaxRetries, when set, replaces the registry's default retry count for tasks whose
	// definition does not set one.
	DefaultMaxRetries *int
	// Token, when set, is required as "Authorization: Bearer <token>" on /api/tasks and
	// /api/workflows routes.
	// Health, readiness and metrics stay open for probes and scrapers.
	Token string
}

// Limits on submitted options.
const (
	maxRetriesLimit = 100
	// DefaultMaxBodyBytes is the default of Config.MaxBodyBytes: room for the largest built-in
	// arguments (4 MiB of CSV text) after JSON escaping.
	DefaultMaxBodyBytes = 8 << 20
	maxTimeout          = 24 * time.Hour
	maxCountdown        = 30 * 24 * time.Hour
	maxKeyLength        = 255
	defaultPageSize     = 50
	maxPageSize         = 500
	checkTimeout        = 1500 * time.Millisecond // below the 2s timeout of the Kubernetes probes
	// Submits are inserted in batches of up to createBatchSize, with up to createFlushes
	// statements in flight; a batch that does not commit within createTimeout fails.
	createBatchSize = 256
	createFlushes   = 1
	createTimeout   = 30 * time.Second
)

// Server is the API's http.Handler.
type Server struct {
	cfg      Config
	store    Store
	registry Registry
	broker   Broker
	relay    Notifier
	commands Commander
	log      *slog.Logger
	mux      *http.ServeMux
	// creator groups concurrent submits into one insert and one commit.
	creator *batch.Batcher[store.NewTask, store.Created]

	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	submitted *prometheus.CounterVec
}

// New returns the API handler.
func New(cfg Config, d Deps) *Server {
	s := &Server{
		cfg: cfg, store: d.Store, registry: d.Registry, broker: d.Broker, relay: d.Relay,
		commands: d.Commands, log: d.Log,
		mux: http.NewServeMux(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taskflow_api_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "taskflow_api_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
		submitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taskflow_tasks_submitted_total",
			Help: "Tasks accepted by the API, by task name (idempotent replays not counted).",
		}, []string{"task"}),
	}
	d.Registerer.MustRegister(s.requests, s.latency, s.submitted)
	s.creator = batch.New(func(ctx context.Context, tasks []store.NewTask) []batch.Result[store.Created] {
		created := d.Store.CreateTasks(ctx, tasks)
		results := make([]batch.Result[store.Created], len(created))
		for i, c := range created {
			results[i] = batch.Result[store.Created]{Value: c, Err: c.Err}
		}
		return results
	}, createBatchSize, createFlushes, createTimeout)

	s.handle("POST /api/tasks", s.authorized(s.submit))
	s.handle("GET /api/tasks", s.authorized(s.list))
	s.handle("GET /api/tasks/{id}", s.authorized(s.get))
	s.handle("POST /api/tasks/{id}/cancel", s.authorized(s.cancel))
	s.handle("POST /api/workflows", s.authorized(s.submitWorkflow))
	s.handle("GET /api/workflows/{id}", s.authorized(s.getWorkflow))
	s.handle("POST /api/workflows/{id}/cancel", s.authorized(s.cancelWorkflow))
	s.handle("GET /api/healthz", s.healthz)
	s.handle("GET /api/readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{}))

	// Patterns without a method catch the other methods, so clients get JSON 405s with the
	// Allow header, and "/" catches unknown paths with a JSON 404.
	for path, allowed := range map[string]string{
		"/api/tasks": "GET, POST", "/api/tasks/{id}": "GET", "/api/tasks/{id}/cancel": "POST",
		"/api/workflows": "POST", "/api/workflows/{id}": "GET", "/api/workflows/{id}/cancel": "POST",
		"/api/healthz": "GET", "/api/readyz": "GET", "/metrics": "GET",
	} {
		s.handle(path, methodNotAllowed(allowed))
	}
	s.handle("/", func(w http.ResponseWriter, r *http.Request) error {
		return &requestError{status: http.StatusNotFound, msg: "no such endpoint: " + r.Method + " " + r.URL.Path}
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// handlerFunc is an HTTP handler that returns its error for writeError to report.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle registers h under pattern with error mapping and metrics.
func (s *Server) handle(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		if err := h(rec, r); err != nil {
			s.writeError(rec, r, err)
		}
		s.requests.WithLabelValues(pattern, statusLabel(rec.status)).Inc()
		s.latency.WithLabelValues(pattern).Observe(time.Since(start).Seconds())
	})
}

// methodNotAllowed answers 405 with the Allow header listing allowed methods. GET patterns of
// net/http also match HEAD, which is therefore never refused here.
func methodNotAllowed(allowed string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Allow", allowed)
		return &requestError{status: http.StatusMethodNotAllowed,
			msg: "method " + r.Method + " is not allowed on " + r.URL.Path + "; use " + allowed}
	}
}

// statusRecorder remembers the status code for metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func statusLabel(code int) string {
	return strconv.Itoa(code)
}

// writeJSON writes v as the JSON response body with the given status.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // messages such as "Bearer <token>" stay readable
	if err := enc.Encode(v); err != nil {
		s.log.DebugContext(r.Context(), "write response", "err", err)
	}
}
