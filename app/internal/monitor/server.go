package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/taskflow-dev/taskflow/app/internal/store"
)

// ServeHTTP implements http.Handler.
func (m *Monitor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.handler.ServeHTTP(w, r)
}

// router is the monitor's request multiplexer with per-route metrics.
type router struct {
	mux      *http.ServeMux
	auth     *authenticator
	requests *prometheus.CounterVec
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	rt.mux.ServeHTTP(w, r)
}

// handlerFunc is an HTTP handler that returns its error for the route's error writer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// access is the role a route needs.
type access int

const (
	open      access = iota // probes, metrics and static assets
	readOnly                // pages and JSON reads
	adminOnly               // actions
)

// routes registers every route under the prefix.
func (m *Monitor) routes(gatherer prometheus.Gatherer) *router {
	rt := &router{
		mux:  http.NewServeMux(),
		auth: newAuthenticator(m.cfg),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taskflow_monitor_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
	}
	m.metrics.register(rt.requests)
	p := m.cfg.base()

	// Pages render errors as HTML, everything under /api/ as JSON.
	page := func(pattern string, a access, h handlerFunc) { m.handle(rt, pattern, a, h, m.writePageError) }
	api := func(pattern string, a access, h handlerFunc) { m.handle(rt, pattern, a, h, m.writeAPIError) }

	if p != "" {
		rt.mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, p+"/", http.StatusMovedPermanently)
		})
	}
	page("GET "+p+"/{$}", readOnly, m.overviewPage)
	page("GET "+p+"/tasks", readOnly, m.tasksPage)
	page("GET "+p+"/tasks/{id}", readOnly, m.taskPage)
	page("GET "+p+"/queues", readOnly, m.queuesPage)
	page("GET "+p+"/static/{file}", open, m.static)
	page(p+"/", readOnly, func(w http.ResponseWriter, r *http.Request) error {
		return &requestError{status: http.StatusNotFound, msg: "no page at " + r.URL.Path}
	})

	api("GET "+p+"/healthz", open, m.healthz)
	api("GET "+p+"/readyz", open, m.readyz)
	metricsHandler := promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})
	rt.mux.Handle("GET /metrics", metricsHandler)
	if p != "" {
		rt.mux.Handle("GET "+p+"/metrics", metricsHandler)
	}

	api("GET "+p+"/api/overview", readOnly, m.apiOverview)
	api("GET "+p+"/api/workers", readOnly, m.apiWorkers)
	api("GET "+p+"/api/tasks", readOnly, m.apiTasks)
	api("GET "+p+"/api/tasks/{id}", readOnly, m.apiTask)
	api("GET "+p+"/api/queues", readOnly, m.apiQueues)
	api("GET "+p+"/api/queues/{name}/messages", readOnly, m.apiDeadLetters)
	api("GET "+p+"/api/stats", readOnly, m.apiStats)
	api("GET "+p+"/api/events", readOnly, m.stream)

	api("POST "+p+"/api/tasks/{id}/retry", adminOnly, m.retryTask)
	api("POST "+p+"/api/tasks/{id}/revoke", adminOnly, m.revokeTask)
	api("POST "+p+"/api/queues/{name}/purge", adminOnly, m.purgeQueue)
	api("POST "+p+"/api/queues/{name}/pause", adminOnly, m.pauseQueue)
	api("POST "+p+"/api/queues/{name}/resume", adminOnly, m.resumeQueue)
	api("POST "+p+"/api/queues/{name}/requeue", adminOnly, m.requeueQueue)
	api(p+"/api/", readOnly, func(w http.ResponseWriter, r *http.Request) error {
		return &requestError{status: http.StatusNotFound, msg: "no such endpoint: " + r.Method + " " + r.URL.Path}
	})
	return rt
}

// handle registers h under pattern behind the access check, with error mapping and metrics.
func (m *Monitor) handle(rt *router, pattern string, a access, h handlerFunc, writeErr func(http.ResponseWriter, *http.Request, error)) {
	rt.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		role := rt.auth.roleOf(r)
		r = r.WithContext(withRole(r.Context(), role))
		err := checkAccess(r, a, role)
		if err == nil {
			err = h(rec, r)
		}
		if err != nil {
			writeErr(rec, r, err)
		}
		rt.requests.WithLabelValues(pattern, strconv.Itoa(rec.status)).Inc()
	})
}

// checkAccess returns a 401 or 403 error when role may not use a route that needs a, and a 403 for
// an action that a browser sent from another site.
func checkAccess(r *http.Request, a access, role role) error {
	if a == open {
		return nil
	}
	if role == roleNone {
		return errUnauthorized
	}
	if a != adminOnly {
		return nil
	}
	if role != roleAdmin && r.Header.Get("Authorization") == "" {
		return errUnauthorized // open read access: the client may still sign in as admin
	}
	if role != roleAdmin {
		return &requestError{status: http.StatusForbidden,
			msg: "this action needs the admin token; the token you sent is read-only"}
	}
	// Browsers send Basic credentials on their own, so actions must not be triggerable from
	// another site. A cross-site form cannot send application/json without a CORS preflight,
	// which the monitor never allows, and modern browsers label cross-site requests.
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return &requestError{status: http.StatusForbidden, msg: "actions are only accepted from the monitor's own pages"}
	}
	if mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mediaType != "application/json" {
		return &requestError{status: http.StatusUnsupportedMediaType, field: "Content-Type",
			msg: "actions need Content-Type: application/json (the body may be {})"}
	}
	return nil
}

// requestError is a client mistake with the status that reports it.
type requestError struct {
	status int
	field  string
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(field, format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, field: field, msg: fmt.Sprintf(format, args...)}
}

var errUnauthorized = &requestError{status: http.StatusUnauthorized, field: "Authorization",
	msg: "missing or wrong token; send Authorization: Bearer <token>, or the token as the Basic auth password"}

// errorBody is the JSON body of every API error response.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// classify maps err to a status and a message that is safe to show. Unexpected errors are
// logged here, once.
func (m *Monitor) classify(r *http.Request, err error) (status int, field, msg string) {
	var reqErr *requestError
	switch {
	case errors.As(err, &reqErr):
		return reqErr.status, reqErr.field, reqErr.msg
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "id", "no task has id " + r.PathValue("id")
	case errors.Is(err, store.ErrNotFinished):
		return http.StatusConflict, "", "the task has not finished; only FAILURE and REVOKED tasks can be retried"
	case errors.Is(err, store.ErrFinished):
		return http.StatusConflict, "", "the task already finished; a SUCCESS task is never run again"
	case errors.Is(err, store.ErrUpstreamFailed):
		return http.StatusConflict, "", "the task waits for a task of its workflow that failed or was revoked; retry that task, and this one follows"
	case errors.Is(err, errDeadLetterNotFound):
		return http.StatusNotFound, "task_id", "the queue has no message for that task"
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return 499, "", "request cancelled"
	case store.Unavailable(err):
		m.log.ErrorContext(r.Context(), "server unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		return http.StatusServiceUnavailable, "", "the monitor cannot reach PostgreSQL or RabbitMQ right now; retry later"
	default:
		m.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		return http.StatusInternalServerError, "", "internal error"
	}
}

func (m *Monitor) writeAPIError(w http.ResponseWriter, r *http.Request, err error) {
	status, field, msg := m.classify(r, err)
	if status == 499 {
		return // the client went away
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="taskflow monitor", charset="UTF-8"`)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	m.writeJSON(w, r, status, errorBody{Error: msg, Field: field})
}

// writeJSON writes v as the JSON response body with the given status.
func (m *Monitor) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		m.log.DebugContext(r.Context(), "write response", "err", err)
	}
}

// healthz returns 200 while the process serves requests.
func (m *Monitor) healthz(w http.ResponseWriter, r *http.Request) error {
	m.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readiness is the body of readyz.
type readiness struct {
	// Status is "ok", "degraded" (RabbitMQ unreachable: history is still shown) or "unavailable"
	// (PostgreSQL unreachable).
	Status   string `json:"status"`
	Postgres string `json:"postgres"`
	RabbitMQ string `json:"rabbitmq"`
}

// readyz returns 503 only while PostgreSQL is unreachable: without RabbitMQ the monitor still
// shows the task history, so it stays in its Service and reports "degraded".
func (m *Monitor) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	resp := readiness{Status: "ok", Postgres: "ok", RabbitMQ: "ok"}
	status := http.StatusOK
	if err := m.store.Ping(ctx); err != nil {
		m.log.WarnContext(ctx, "readiness: database unreachable", "err", err)
		resp.Postgres, resp.Status, status = "unreachable", "unavailable", http.StatusServiceUnavailable
	}
	if err := m.broker.Check(); err != nil {
		m.log.WarnContext(ctx, "readiness: broker unreachable", "err", err)
		resp.RabbitMQ = "unreachable"
		if status == http.StatusOK {
			resp.Status = "degraded"
		}
	}
	m.writeJSON(w, r, status, resp)
	return nil
}

// statusRecorder remembers the status code for metrics. It passes Flush through, which the event
// stream needs.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
