package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/taskflow-dev/taskflow/app/internal/store"
	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// submitFields are the JSON names of submitRequest's fields.
var submitFields = []string{"task", "args", "max_retries", "timeout_ms", "countdown_ms"}

// submitRequest is the body of POST /api/tasks. Optional numbers are pointers so that an explicit
// 0 differs from an absent field.
type submitRequest struct {
	Task        string          `json:"task"`
	Args        json.RawMessage `json:"args"`
	MaxRetries  *int            `json:"max_retries"`
	TimeoutMS   *int64          `json:"timeout_ms"`
	CountdownMS *int64          `json:"countdown_ms"`
}

// taskResponse is the JSON form of a task.
type taskResponse struct {
	ID         string          `json:"id"`
	Task       string          `json:"task"`
	Args       json.RawMessage `json:"args"`
	State      task.State      `json:"state"`
	Result     json.RawMessage `json:"result"`
	Error      *string         `json:"error"`
	Traceback  *string         `json:"traceback,omitempty"`
	Attempts   int             `json:"attempts"`
	MaxRetries int             `json:"max_retries"`
	TimeoutMS  int64           `json:"timeout_ms"`
	ETA        *time.Time      `json:"eta"`
	CreatedAt  time.Time       `json:"created_at"`
	StartedAt  *time.Time      `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at"`
	// WorkflowID names the workflow the task belongs to, if any.
	WorkflowID string `json:"workflow_id,omitempty"`
}

func newTaskResponse(t store.Task) taskResponse {
	resp := taskResponse{
		ID: t.ID.String(), Task: t.Name, Args: t.Args, State: t.State, Result: t.Result,
		Attempts: t.Attempts, MaxRetries: t.MaxRetries, TimeoutMS: t.Timeout.Milliseconds(),
		ETA: t.ETA, CreatedAt: t.CreatedAt, StartedAt: t.StartedAt, FinishedAt: t.FinishedAt,
	}
	if resp.Result == nil {
		resp.Result = json.RawMessage("null")
	}
	if t.Error != "" {
		resp.Error = &t.Error
	}
	if t.Workflow != uuid.Nil {
		resp.WorkflowID = t.Workflow.String()
	}
	if t.Traceback != "" {
		resp.Traceback = &t.Traceback
	}
	return resp
}

// submit handles POST /api/tasks.
func (s *Server) submit(w http.ResponseWriter, r *http.Request) error {
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	req, err := s.decodeSubmit(w, r)
	if err != nil {
		return err
	}
	nt, err := s.newTask(req, "")
	if err != nil {
		return err
	}
	if key != "" {
		nt.IdempotencyKey = key
		nt.RequestHash = requestHash(req, nt.Args)
	}

	result, err := s.creator.Do(r.Context(), nt)
	if err != nil {
		return err
	}
	stored := result.Task
	if result.New {
		s.relay.Notify()
		s.submitted.WithLabelValues(stored.Name).Inc()
	} else {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/api/tasks/"+stored.ID.String())
	s.writeJSON(w, r, http.StatusAccepted, newTaskResponse(stored))
	return nil
}

// decodeSubmit reads and checks the JSON shape of a submit body.
func (s *Server) decodeSubmit(w http.ResponseWriter, r *http.Request) (submitRequest, error) {
	body, err := s.readJSONBody(w, r)
	if err != nil {
		return submitRequest{}, err
	}

	// encoding/json matches field names without regard to case, so the names are checked
	// exactly first: {"TASK": ...} is an unknown field, as it would be for a task's args.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return submitRequest{}, decodeError(err)
	}
	if fields == nil {
		return submitRequest{}, badRequest("", "request body must be a JSON object, not null")
	}
	for name := range fields {
		if !slices.Contains(submitFields, name) {
			return submitRequest{}, unprocessable(name, "unknown field %q; allowed fields are %s", name, strings.Join(submitFields, ", "))
		}
	}

	var req submitRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return submitRequest{}, decodeError(err)
	}
	return req, nil
}

// readJSONBody reads the request body, which must be one JSON value within the size limit.
func (s *Server) readJSONBody(w http.ResponseWriter, r *http.Request) (json.RawMessage, error) {
	if err := checkContentType(r); err != nil {
		return nil, err
	}
	body, err := readBody(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return nil, decodeError(err)
	}
	if dec.More() {
		return nil, badRequest("", "request body has data after the JSON object")
	}
	return v, nil
}

// checkContentType accepts a JSON media type or none.
func checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mediaType, _, err := mime.ParseMediaType(ct)
	if err != nil || (mediaType != "application/json" && !strings.HasSuffix(mediaType, "+json")) {
		return &requestError{status: http.StatusUnsupportedMediaType, field: "Content-Type",
			msg: fmt.Sprintf("Content-Type %q is not supported; send application/json", ct)}
	}
	return nil
}

// readBody reads a request body of at most limit bytes that is not empty.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		return nil, badRequest("", "read request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest("", "request body is empty; send a JSON object such as {\"task\": \"fib\", \"args\": {\"n\": 10}}")
	}
	return body, nil
}

// decodeError turns a JSON decoding error into a 400 for malformed JSON or a 422 for a field of
// the wrong type or an unknown field.
func decodeError(err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		return badRequest("", "malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "malformed JSON: the body ends before the object is complete")
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return badRequest("", "request body must be a JSON object, not %s", typeErr.Value)
	case errors.As(err, &typeErr):
		return unprocessable(typeErr.Field, "%s must be %s, got %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), article(typeErr.Value))
	default:
		return badRequest("", "malformed JSON: %v", err)
	}
}

// article turns a JSON type name from encoding/json ("string", "number 1.5", "array") into
// words such as "a string", "the number 1.5" or "an array".
func article(value string) string {
	switch {
	case strings.HasPrefix(value, "number "):
		return "the " + value
	case strings.HasPrefix(value, "a"), strings.HasPrefix(value, "o"):
		return "an " + value
	default:
		return "a " + value
	}
}

// jsonKind names a Go kind the way a JSON user would.
func jsonKind(kind string) string {
	switch kind {
	case "int", "int64", "int32", "uint", "uint64":
		return "an integer"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	default:
		return "an object"
	}
}

// newTask validates a decoded request against the registry and fills in the defaults. A workflow
// step whose argument pipe receives earlier results passes its name; see Registry.ValidatePiped.
func (s *Server) newTask(req submitRequest, pipe string) (store.NewTask, error) {
	if req.Task == "" {
		return store.NewTask{}, unprocessable("task", "task is required: the name of a registered task")
	}
	validate := s.registry.Validate
	if pipe != "" {
		validate = func(name string, raw json.RawMessage) (json.RawMessage, error) {
			return s.registry.ValidatePiped(name, raw, pipe)
		}
	}
	args, err := validate(req.Task, req.Args)
	if err != nil {
		return store.NewTask{}, err // a *task.UnknownTaskError or a *task.FieldError
	}
	info, _ := s.registry.Info(req.Task)
	if info.DefaultRetries && s.cfg.DefaultMaxRetries != nil {
		info.MaxRetries = *s.cfg.DefaultMaxRetries
	}

	nt := store.NewTask{
		ID: uuid.Must(uuid.NewV7()), Name: req.Task, Args: args, Queue: s.cfg.Queue,
		MaxRetries: info.MaxRetries, Timeout: info.Timeout,
	}
	if req.MaxRetries != nil {
		if *req.MaxRetries < 0 || *req.MaxRetries > maxRetriesLimit {
			return store.NewTask{}, unprocessable("max_retries", "max_retries must be between 0 and %d, got %d", maxRetriesLimit, *req.MaxRetries)
		}
		nt.MaxRetries = *req.MaxRetries
	}
	if req.TimeoutMS != nil {
		if *req.TimeoutMS < 1 || *req.TimeoutMS > maxTimeout.Milliseconds() {
			return store.NewTask{}, unprocessable("timeout_ms", "timeout_ms must be between 1 and %d, got %d", maxTimeout.Milliseconds(), *req.TimeoutMS)
		}
		nt.Timeout = time.Duration(*req.TimeoutMS) * time.Millisecond
	}
	if req.CountdownMS != nil {
		if *req.CountdownMS < 0 || *req.CountdownMS > maxCountdown.Milliseconds() {
			return store.NewTask{}, unprocessable("countdown_ms", "countdown_ms must be between 0 and %d, got %d", maxCountdown.Milliseconds(), *req.CountdownMS)
		}
		if *req.CountdownMS > 0 {
			nt.ETA = time.Now().Add(time.Duration(*req.CountdownMS) * time.Millisecond).UTC()
		}
	}
	return nt, nil
}

// idempotencyKey returns the Idempotency-Key header, or "" when absent.
func idempotencyKey(r *http.Request) (string, error) {
	values := r.Header.Values("Idempotency-Key")
	if len(values) == 0 {
		return "", nil
	}
	key := values[0]
	switch {
	case len(values) > 1:
		return "", badRequest("Idempotency-Key", "send one Idempotency-Key header, not %d", len(values))
	case key == "" || len(key) > maxKeyLength:
		return "", badRequest("Idempotency-Key", "Idempotency-Key must be 1 to %d characters long", maxKeyLength)
	}
	for _, c := range key {
		if c < 0x21 || c > 0x7e {
			return "", badRequest("Idempotency-Key", "Idempotency-Key must be printable ASCII without spaces")
		}
	}
	return key, nil
}

// requestHash identifies the logical request behind an idempotency key: the same task, the same
// arguments in any key order or spacing, and the same options as sent.
func requestHash(req submitRequest, canonicalArgs json.RawMessage) []byte {
	h := sha256.Sum256(mustMarshal(struct {
		Task        string          `json:"task"`
		Args        json.RawMessage `json:"args"`
		MaxRetries  *int            `json:"max_retries"`
		TimeoutMS   *int64          `json:"timeout_ms"`
		CountdownMS *int64          `json:"countdown_ms"`
	}{req.Task, canonicalArgs, req.MaxRetries, req.TimeoutMS, req.CountdownMS}))
	return h[:]
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err))
	}
	return b
}

// get handles GET /api/tasks/{id}.
func (s *Server) get(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	t, err := s.store.Task(r.Context(), id)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, newTaskResponse(t))
	return nil
}

// cancel handles POST /api/tasks/{id}/cancel. Cancelling a task that is already REVOKED succeeds
// again; a task in SUCCESS or FAILURE gets 409.
func (s *Server) cancel(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	t, err := s.store.Revoke(r.Context(), id)
	if err != nil {
		return err
	}
	if s.commands != nil {
		if err := s.commands.Revoked(r.Context(), id); err != nil {
			s.log.WarnContext(r.Context(), "cannot tell workers about a revoked task; a running attempt finishes and its result is discarded",
				"task_id", id, "err", err)
		}
	}
	s.writeJSON(w, r, http.StatusOK, newTaskResponse(t))
	return nil
}

// listResponse is the body of GET /api/tasks.
type listResponse struct {
	Tasks []taskResponse `json:"tasks"`
	// Next is the cursor for the following page ("after" parameter), empty on the last page.
	Next string `json:"next"`
}

// list handles GET /api/tasks?state=&task=&limit=&after=, newest first.
func (s *Server) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.Filter{Name: q.Get("task"), Limit: defaultPageSize}
	if !validText(f.Name) {
		return badRequest("task", "task must be valid UTF-8 text without NUL characters")
	}
	if v := q.Get("state"); v != "" {
		state, err := task.ParseState(strings.ToUpper(v))
		if err != nil {
			return badRequest("state", "state %q is not one of %s", v, joinStates())
		}
		f.State = state
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return badRequest("limit", "limit must be an integer between 1 and %d, got %q", maxPageSize, v)
		}
		f.Limit = n
	}
	if v := q.Get("after"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return badRequest("after", "after must be the next cursor of a previous page")
		}
		f.Before = id
	}

	tasks, more, err := s.store.ListTasks(r.Context(), f)
	if err != nil {
		return err
	}
	resp := listResponse{Tasks: make([]taskResponse, len(tasks))}
	for i, t := range tasks {
		resp.Tasks[i] = newTaskResponse(t)
	}
	if more {
		resp.Next = tasks[len(tasks)-1].ID.String()
	}
	s.writeJSON(w, r, http.StatusOK, resp)
	return nil
}

// validText reports whether s can be stored and compared as PostgreSQL text: valid UTF-8 without
// NUL characters.
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

func joinStates() string {
	names := make([]string, 0, 6)
	for _, st := range task.States() {
		names = append(names, string(st))
	}
	return strings.Join(names, ", ")
}

// pathID parses the {id} path segment of a task route.
func pathID(r *http.Request) (uuid.UUID, error) {
	return pathUUID(r, "task")
}

// pathUUID parses the {id} path segment, the id of a kind of object such as "task".
func pathUUID(r *http.Request, kind string) (uuid.UUID, error) {
	raw := r.PathValue("id")
	id, err := uuid.Parse(raw)
	if err != nil {
		return uuid.Nil, badRequest("id", "%s id %q is not a UUID", kind, raw)
	}
	return id, nil
}

// authorized requires the bearer token when one is configured.
func (s *Server) authorized(h handlerFunc) handlerFunc {
	if s.cfg.Token == "" {
		return h
	}
	want := []byte(s.cfg.Token)
	return func(w http.ResponseWriter, r *http.Request) error {
		// The scheme name is case-insensitive (RFC 9110, section 11.1); the token is not.
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="taskflow"`)
			return &requestError{status: http.StatusUnauthorized, field: "Authorization",
				msg: "missing or wrong bearer token; send Authorization: Bearer <API token>"}
		}
		return h(w, r)
	}
}
