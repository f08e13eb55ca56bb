package monitor

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/taskflow-dev/taskflow/app/internal/store"
	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// taskJSON is the JSON form of a task, with the fields of the producer API plus the queue and
// the worker of the latest attempt.
type taskJSON struct {
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
	Queue      string          `json:"queue"`
	Worker     string          `json:"worker"`
	ETA        *time.Time      `json:"eta"`
	CreatedAt  time.Time       `json:"created_at"`
	StartedAt  *time.Time      `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at"`
	// WorkflowID names the task's workflow, and Waiting counts the tasks of it that this one
	// still waits for.
	WorkflowID string `json:"workflow_id,omitempty"`
	Waiting    int    `json:"waiting,omitempty"`
}

func newTaskJSON(t store.Task) taskJSON {
	j := taskJSON{
		ID: t.ID.String(), Task: t.Name, Args: t.Args, State: t.State, Result: t.Result,
		Attempts: t.Attempts, MaxRetries: t.MaxRetries, TimeoutMS: t.Timeout.Milliseconds(),
		Queue: t.Queue, Worker: t.Worker, ETA: t.ETA, CreatedAt: t.CreatedAt,
		StartedAt: t.StartedAt, FinishedAt: t.FinishedAt, Waiting: t.Waiting,
	}
	if t.Workflow != uuid.Nil {
		j.WorkflowID = t.Workflow.String()
	}
	if j.Result == nil {
		j.Result = json.RawMessage("null")
	}
	if t.Error != "" {
		j.Error = &t.Error
	}
	if t.Traceback != "" {
		j.Traceback = &t.Traceback
	}
	return j
}

// attemptJSON is the JSON form of one attempt.
type attemptJSON struct {
	Attempt    int        `json:"attempt"`
	Worker     string     `json:"worker"`
	State      task.State `json:"state"`
	Error      string     `json:"error,omitempty"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	// RuntimeMS is the attempt's run time, or the time it has run so far while STARTED.
	RuntimeMS float64 `json:"runtime_ms"`
}

// taskList is the body of GET api/tasks.
type taskList struct {
	Tasks []taskJSON `json:"tasks"`
	// Next is the cursor of the following page, for the after parameter; empty on the last page.
	Next string `json:"next"`
}

// taskFilter is a parsed task list request. Form holds the values as sent, for the page's form.
type taskFilter struct {
	Query store.TaskQuery
	Form  url.Values
}

// maxSearchLength bounds the search text.
const maxSearchLength = 200

// parseTaskFilter reads state (repeated or comma-separated), task, from, to (RFC 3339 or
// YYYY-MM-DDTHH:MM in UTC), q, limit and after.
func parseTaskFilter(r *http.Request) (taskFilter, error) {
	q := r.URL.Query()
	f := taskFilter{Query: store.TaskQuery{Name: strings.TrimSpace(q.Get("task")), Limit: defaultPageSize}, Form: q}
	for _, field := range []string{"task", "q"} {
		if v := q.Get(field); !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return f, badRequest(field, "%s must be valid UTF-8 text without NUL characters", field)
		}
	}
	for _, v := range q["state"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name == "" {
				continue
			}
			st, err := task.ParseState(name)
			if err != nil {
				return f, badRequest("state", "%v", err)
			}
			if !slices.Contains(f.Query.States, st) {
				f.Query.States = append(f.Query.States, st)
			}
		}
	}
	var err error
	if f.Query.SubmittedFrom, err = parseTime(q.Get("from"), "from"); err != nil {
		return f, err
	}
	if f.Query.SubmittedTo, err = parseTime(q.Get("to"), "to"); err != nil {
		return f, err
	}
	f.Query.Search = strings.TrimSpace(q.Get("q"))
	if len(f.Query.Search) > maxSearchLength {
		return f, badRequest("q", "the search text is %d bytes long; the maximum is %d", len(f.Query.Search), maxSearchLength)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return f, badRequest("limit", "limit must be an integer between 1 and %d, got %q", maxPageSize, v)
		}
		f.Query.Limit = n
	}
	if v := q.Get("after"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return f, badRequest("after", "after must be the next cursor of a previous page, got %q", v)
		}
		f.Query.Before = id
	}
	return f, nil
}

// timeLayouts are the accepted forms of from and to: RFC 3339, and the value of an HTML
// datetime-local input, read as UTC.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"}

func parseTime(v, field string) (time.Time, error) {
	if v = strings.TrimSpace(v); v == "" {
		return time.Time{}, nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, badRequest(field, "%s must be a time such as 2024-05-01T13:45:00Z or 2024-05-01T13:45 (UTC), got %q", field, v)
}

// searchTasks runs the filter and returns the page.
func (m *Monitor) searchTasks(r *http.Request, f taskFilter) (taskList, error) {
	tasks, more, err := m.store.SearchTasks(r.Context(), f.Query)
	if err != nil {
		return taskList{}, err
	}
	list := taskList{Tasks: make([]taskJSON, len(tasks))}
	for i, t := range tasks {
		list.Tasks[i] = newTaskJSON(t)
	}
	if more {
		list.Next = tasks[len(tasks)-1].ID.String()
	}
	return list, nil
}

// apiTasks handles GET api/tasks.
func (m *Monitor) apiTasks(w http.ResponseWriter, r *http.Request) error {
	f, err := parseTaskFilter(r)
	if err != nil {
		return err
	}
	list, err := m.searchTasks(r, f)
	if err != nil {
		return err
	}
	m.writeJSON(w, r, http.StatusOK, list)
	return nil
}

// taskDetail is the body of GET api/tasks/{id}.
type taskDetail struct {
	Task     taskJSON        `json:"task"`
	Attempts []attemptJSON   `json:"attempts"`
	Timeline []timelineEntry `json:"timeline"`
	// WaitsFor and NeededBy list the tasks of its workflow that the task waits for and that wait
	// for it.
	WaitsFor []string `json:"waits_for,omitempty"`
	NeededBy []string `json:"needed_by,omitempty"`
}

// loadedTask is a task with what its detail shows.
type loadedTask struct {
	task     store.Task
	attempts []store.Attempt
	parents  []uuid.UUID
	children []uuid.UUID
}

// loadTask reads the task named by the {id} path segment, its attempts and its neighbours in its
// workflow.
func (m *Monitor) loadTask(r *http.Request) (loadedTask, error) {
	raw := r.PathValue("id")
	id, err := uuid.Parse(raw)
	if err != nil {
		return loadedTask{}, badRequest("id", "task id %q is not a UUID", raw)
	}
	var l loadedTask
	if l.task, err = m.store.Task(r.Context(), id); err != nil {
		return loadedTask{}, err
	}
	if l.attempts, err = m.store.Attempts(r.Context(), id); err != nil {
		return loadedTask{}, err
	}
	if l.task.Workflow != uuid.Nil {
		if l.parents, l.children, err = m.store.TaskEdges(r.Context(), id); err != nil {
			return loadedTask{}, err
		}
	}
	return l, nil
}

// newTaskDetail returns the JSON form of a task with its attempts and timeline. Attempts still
// running report their run time up to now.
func newTaskDetail(l loadedTask, now time.Time) taskDetail {
	d := taskDetail{Task: newTaskJSON(l.task), Attempts: make([]attemptJSON, len(l.attempts)),
		Timeline: timeline(l.task, l.attempts), WaitsFor: idStrings(l.parents), NeededBy: idStrings(l.children)}
	for i, a := range l.attempts {
		end := now
		if a.FinishedAt != nil {
			end = *a.FinishedAt
		}
		d.Attempts[i] = attemptJSON{Attempt: a.Number, Worker: a.Worker, State: a.State, Error: a.Error,
			StartedAt: a.StartedAt, FinishedAt: a.FinishedAt, RuntimeMS: milliseconds(end.Sub(a.StartedAt))}
	}
	return d
}

func idStrings(ids []uuid.UUID) []string {
	var out []string
	for _, id := range ids {
		out = append(out, id.String())
	}
	return out
}

// apiTask handles GET api/tasks/{id}.
func (m *Monitor) apiTask(w http.ResponseWriter, r *http.Request) error {
	l, err := m.loadTask(r)
	if err != nil {
		return err
	}
	m.writeJSON(w, r, http.StatusOK, newTaskDetail(l, m.now()))
	return nil
}

// workerList is the body of GET api/workers.
type workerList struct {
	Online  int          `json:"online"`
	Workers []WorkerInfo `json:"workers"`
}

func (m *Monitor) workerList() workerList {
	workers := m.workers.Workers()
	online := 0
	for _, w := range workers {
		if w.Status == StatusOnline {
			online++
		}
	}
	return workerList{Online: online, Workers: workers}
}

// apiWorkers handles GET api/workers.
func (m *Monitor) apiWorkers(w http.ResponseWriter, r *http.Request) error {
	m.writeJSON(w, r, http.StatusOK, m.workerList())
	return nil
}

// minuteJSON is the JSON form of store.MinuteStats.
type minuteJSON struct {
	Minute       time.Time `json:"minute"`
	Submitted    int64     `json:"submitted"`
	Succeeded    int64     `json:"succeeded"`
	Failed       int64     `json:"failed"`
	Revoked      int64     `json:"revoked"`
	LatencyP50MS float64   `json:"latency_p50_ms"`
	LatencyP95MS float64   `json:"latency_p95_ms"`
	RuntimeP50MS float64   `json:"runtime_p50_ms"`
	RuntimeP95MS float64   `json:"runtime_p95_ms"`
}

func newMinutesJSON(stats []store.MinuteStats) []minuteJSON {
	out := make([]minuteJSON, len(stats))
	for i, s := range stats {
		out[i] = minuteJSON{Minute: s.Minute, Submitted: s.Submitted, Succeeded: s.Succeeded,
			Failed: s.Failed, Revoked: s.Revoked,
			LatencyP50MS: milliseconds(s.LatencyP50), LatencyP95MS: milliseconds(s.LatencyP95),
			RuntimeP50MS: milliseconds(s.RuntimeP50), RuntimeP95MS: milliseconds(s.RuntimeP95)}
	}
	return out
}

func milliseconds(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// overview is the body of GET api/overview.
type overview struct {
	Workers workerList `json:"workers"`
	*Snapshot
	Throughput      []minuteJSON `json:"throughput"`
	OldestWaitingMS float64      `json:"oldest_waiting_ms"`
}

// apiOverview handles GET api/overview.
func (m *Monitor) apiOverview(w http.ResponseWriter, r *http.Request) error {
	s := m.currentSnapshot(r.Context())
	m.writeJSON(w, r, http.StatusOK, overview{Workers: m.workerList(), Snapshot: s,
		Throughput: newMinutesJSON(s.Stats), OldestWaitingMS: milliseconds(s.OldestWaiting)})
	return nil
}

// apiStats handles GET api/stats?minutes=N: per-minute throughput and latency of the last N
// minutes (default ChartMinutes, 1..1440), read from PostgreSQL.
func (m *Monitor) apiStats(w http.ResponseWriter, r *http.Request) error {
	minutes := m.cfg.ChartMinutes
	if v := r.URL.Query().Get("minutes"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxChartMinutes {
			return badRequest("minutes", "minutes must be an integer between 1 and %d, got %q", maxChartMinutes, v)
		}
		minutes = n
	}
	stats, err := m.store.Throughput(r.Context(), minutes)
	if err != nil {
		return err
	}
	m.writeJSON(w, r, http.StatusOK, map[string]any{"minutes": newMinutesJSON(stats)})
	return nil
}

// queueList is the body of GET api/queues.
type queueList struct {
	Queues []QueueInfo `json:"queues"`
}

// apiQueues handles GET api/queues with the figures of the latest refresh.
func (m *Monitor) apiQueues(w http.ResponseWriter, r *http.Request) error {
	s := m.currentSnapshot(r.Context())
	if s.QueuesError != "" {
		return &requestError{status: http.StatusServiceUnavailable, msg: s.QueuesError + "; retry later"}
	}
	m.writeJSON(w, r, http.StatusOK, queueList{Queues: s.Queues})
	return nil
}

// deadLetterList is the body of GET api/queues/{name}/messages.
type deadLetterList struct {
	Queue string `json:"queue"`
	// Total is the number of messages in the queue when it was read.
	Total    int          `json:"total"`
	Messages []DeadLetter `json:"messages"`
}

// browseDeadLetters reads the first messages of a dead-letter or poison queue without removing
// them, with each task's current state.
func (m *Monitor) browseDeadLetters(r *http.Request, queue string, limit int) (deadLetterList, error) {
	if !m.isDeadLetterQueue(queue) {
		return deadLetterList{}, &requestError{status: http.StatusBadRequest, field: "name",
			msg: "only " + m.topology.DeadLetterQueue() + " and " + m.topology.PoisonQueue() + " can be browsed; " +
				"browsing a work or delay queue would count as a delivery of its messages"}
	}
	ch, err := m.broker.Channel()
	if err != nil {
		return deadLetterList{}, err
	}
	defer ch.Close()
	letters, total, err := browse(ch, queue, limit)
	if err != nil {
		return deadLetterList{}, err
	}
	for i := range letters {
		id, err := uuid.Parse(letters[i].TaskID)
		if err != nil {
			continue
		}
		if t, err := m.store.Task(r.Context(), id); err == nil {
			letters[i].State = t.State
		}
	}
	if letters == nil {
		letters = []DeadLetter{}
	}
	return deadLetterList{Queue: queue, Total: total, Messages: letters}, nil
}

// apiDeadLetters handles GET api/queues/{name}/messages?limit=N.
func (m *Monitor) apiDeadLetters(w http.ResponseWriter, r *http.Request) error {
	limit := defaultBrowseLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxBrowseLimit {
			return badRequest("limit", "limit must be an integer between 1 and %d, got %q", maxBrowseLimit, v)
		}
		limit = n
	}
	list, err := m.browseDeadLetters(r, r.PathValue("name"), limit)
	if err != nil {
		return err
	}
	m.writeJSON(w, r, http.StatusOK, list)
	return nil
}
