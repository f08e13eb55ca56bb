package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/taskflow-dev/taskflow/app/internal/store"
	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// requestError is a client mistake with the status that reports it.
type requestError struct {
	status int
	field  string
	msg    string
	known  []string // the registered task names, for an unknown one
}

func (e *requestError) Error() string { return e.msg }

func badRequest(field, format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, field: field, msg: fmt.Sprintf(format, args...)}
}

func unprocessable(field, format string, args ...any) error {
	return &requestError{status: http.StatusUnprocessableEntity, field: field, msg: fmt.Sprintf(format, args...)}
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	// KnownTasks lists the registered task names when the requested one is unknown.
	KnownTasks []string `json:"known_tasks,omitempty"`
}

// writeError maps err to a status code and a JSON body. Client mistakes get a 4xx that says what
// to fix. Anything else is logged and reported as a 5xx without internals.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		reqErr     *requestError
		fieldErr   *task.FieldError
		unknown    *task.UnknownTaskError
		tooLarge   *http.MaxBytesError
		notRunning *store.NotRunnableError
	)
	switch {
	case errors.As(err, &reqErr):
		s.writeJSON(w, r, reqErr.status, errorBody{Error: reqErr.msg, Field: reqErr.field, KnownTasks: reqErr.known})
	case errors.As(err, &unknown):
		s.writeJSON(w, r, http.StatusUnprocessableEntity, errorBody{Error: unknown.Error(), Field: "task", KnownTasks: unknown.Known})
	case errors.As(err, &fieldErr):
		s.writeJSON(w, r, http.StatusUnprocessableEntity, errorBody{Error: fieldErr.Error(), Field: fieldErr.Field})
	case errors.As(err, &tooLarge):
		s.writeJSON(w, r, http.StatusRequestEntityTooLarge, errorBody{
			Error: fmt.Sprintf("request body is larger than the limit of %d bytes (the api's MAX_BODY_BYTES setting)", tooLarge.Limit)})
	case errors.Is(err, store.ErrNotFound):
		s.writeJSON(w, r, http.StatusNotFound, errorBody{Error: "no task has id " + r.PathValue("id"), Field: "id"})
	case errors.Is(err, store.ErrWorkflowNotFound):
		s.writeJSON(w, r, http.StatusNotFound, errorBody{Error: "no workflow has id " + r.PathValue("id"), Field: "id"})
	case errors.Is(err, store.ErrIdempotencyConflict):
		s.writeJSON(w, r, http.StatusConflict, errorBody{
			Error: "the Idempotency-Key was already used with a different request body; use a new key for a new request",
			Field: "Idempotency-Key"})
	case errors.Is(err, store.ErrFinished):
		s.writeJSON(w, r, http.StatusConflict, errorBody{Error: "the task already finished and cannot be cancelled"})
	case errors.As(err, &notRunning):
		s.writeJSON(w, r, http.StatusConflict, errorBody{Error: notRunning.Error()})
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the response.
		s.log.DebugContext(r.Context(), "request cancelled by client", "path", r.URL.Path)
	case store.Unavailable(err):
		s.log.ErrorContext(r.Context(), "database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		s.writeJSON(w, r, http.StatusServiceUnavailable, errorBody{
			Error: "the service cannot reach its database right now; retry later"})
	default:
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		s.writeJSON(w, r, http.StatusInternalServerError, errorBody{Error: "internal error"})
	}
}
