package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// Errors returned by the task queries. Callers test them with errors.Is.
var (
	// ErrNotFound means no task has the requested id.
	ErrNotFound = errors.New("task not found")
	// ErrIdempotencyConflict means the idempotency key was used before with a different request.
	ErrIdempotencyConflict = errors.New("idempotency key reused with a different request")
	// ErrFinished means the task already reached SUCCESS or FAILURE and cannot be revoked.
	ErrFinished = errors.New("task already finished")
)

// Task is one stored task.
type Task struct {
	ID         uuid.UUID
	Name       string
	Args       json.RawMessage
	State      task.State
	Result     json.RawMessage // nil unless State is SUCCESS
	Error      string          // message of the latest failed attempt
	Traceback  string          // stack of the latest panic, if any
	Attempts   int             // attempts started so far
	MaxRetries int             // retries allowed after the first attempt
	Timeout    time.Duration   // deadline of one attempt
	Queue      string
	Worker     string     // worker of the latest attempt
	ETA        *time.Time // earliest start of the next attempt, for countdowns and retries
	CreatedAt  time.Time
	StartedAt  *time.Time // start of the first attempt
	FinishedAt *time.Time
}

// NewTask is a task to create together with the outbox message that announces it to workers.
type NewTask struct {
	ID         uuid.UUID
	Name       string
	Args       json.RawMessage // canonical JSON
	MaxRetries int
	Timeout    time.Duration
	Queue      string
	// ETA delays the first attempt; the zero value means now.
	ETA time.Time
	// IdempotencyKey is optional. A second create with the same key returns the first task when
	// RequestHash is equal, and ErrIdempotencyConflict when it differs.
	IdempotencyKey string
	RequestHash    []byte
	// Message is the broker payload the outbox relay publishes to Queue.
	Message []byte
}

const taskColumns = `id, task, args, state, result, error, traceback, attempts, max_retries,
	timeout_ms, queue, worker, eta, created_at, started_at, finished_at`

// CreateTask inserts the task and its outbox message in one statement, so that both or neither are
// committed. created is false when an earlier task with the same idempotency key and request hash
// is returned instead.
func (s *Store) CreateTask(ctx context.Context, t NewTask) (stored Task, created bool, err error) {
	var eta *time.Time
	notBefore := time.Now()
	if !t.ETA.IsZero() {
		eta, notBefore = &t.ETA, t.ETA
	}
	var key *string
	if t.IdempotencyKey != "" {
		key = &t.IdempotencyKey
	}

	row := s.pool.QueryRow(ctx, `
		WITH inserted AS (
			INSERT INTO tasks (id, task, args, state, attempts, max_retries, timeout_ms, queue, eta,
				idempotency_key, request_hash)
			VALUES ($1, $2, $3, 'PENDING', 0, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
			RETURNING `+taskColumns+`
		), queued AS (
			INSERT INTO outbox (task_id, queue, payload, not_before)
			SELECT id, queue, $10, $11 FROM inserted
		)
		SELECT `+taskColumns+` FROM inserted`,
		t.ID, t.Name, t.Args, t.MaxRetries, t.Timeout.Milliseconds(), t.Queue, eta,
		key, t.RequestHash, t.Message, notBefore)
	stored, err = scanTask(row)
	if err == nil {
		return stored, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) || key == nil {
		return Task{}, false, fmt.Errorf("insert task: %w", err)
	}

	// The key exists: the earlier request wins if it was the same request.
	var hash []byte
	row = s.pool.QueryRow(ctx, `SELECT `+taskColumns+`, request_hash FROM tasks WHERE idempotency_key = $1`, *key)
	stored, err = scanTask(row, &hash)
	if err != nil {
		return Task{}, false, fmt.Errorf("read task by idempotency key: %w", err)
	}
	if !bytes.Equal(hash, t.RequestHash) {
		return Task{}, false, ErrIdempotencyConflict
	}
	return stored, false, nil
}

// Task returns the task with the given id, or ErrNotFound.
func (s *Store) Task(ctx context.Context, id uuid.UUID) (Task, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+taskColumns+` FROM tasks WHERE id = $1`, id)
	t, err := scanTask(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return Task{}, ErrNotFound
	}
	if err != nil {
		return Task{}, fmt.Errorf("read task %s: %w", id, err)
	}
	return t, nil
}

// Filter selects tasks for ListTasks. Zero fields do not filter.
type Filter struct {
	State task.State
	Name  string
	// Before returns only tasks with a smaller id, that is created earlier: it is the cursor of
	// keyset pagination.
	Before uuid.UUID
	// Limit is the page size; it must be positive.
	Limit int
}

// ListTasks returns tasks that match f, newest first, and whether more tasks follow the page.
func (s *Store) ListTasks(ctx context.Context, f Filter) (tasks []Task, more bool, err error) {
	var where []string
	var args []any
	add := func(condition string, value any) {
		args = append(args, value)
		where = append(where, strings.ReplaceAll(condition, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.State != "" {
		add("state = ?", string(f.State))
	}
	if f.Name != "" {
		add("task = ?", f.Name)
	}
	if f.Before != uuid.Nil {
		add("id < ?", f.Before)
	}
	query := `SELECT ` + taskColumns + ` FROM tasks`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit+1)
	query += " ORDER BY id DESC LIMIT $" + strconv.Itoa(len(args))

	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, false, fmt.Errorf("list tasks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, false, fmt.Errorf("list tasks: %w", err)
		}
		tasks = append(tasks, t)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list tasks: %w", err)
	}
	if len(tasks) > f.Limit {
		return tasks[:f.Limit], true, nil
	}
	return tasks, false, nil
}

// Revoke marks a task that has not finished as REVOKED and drops its unpublished outbox message.
// Revoking a task that is already REVOKED returns it unchanged. A task in SUCCESS or FAILURE gives
// ErrFinished together with the task; an unknown id gives ErrNotFound. A worker that is running the
// task finds the state changed when it tries to store a result, and discards the result.
func (s *Store) Revoke(ctx context.Context, id uuid.UUID) (Task, error) {
	var t Task
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		row := tx.QueryRow(ctx, `
			UPDATE tasks SET state = 'REVOKED', finished_at = now(), updated_at = now()
			WHERE id = $1 AND state IN ('PENDING', 'STARTED', 'RETRY')
			RETURNING `+taskColumns, id)
		var err error
		t, err = scanTask(row)
		if err == nil {
			_, err = tx.Exec(ctx, `DELETE FROM outbox WHERE task_id = $1`, id)
			return err
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		t, err = scanTask(tx.QueryRow(ctx, `SELECT `+taskColumns+` FROM tasks WHERE id = $1`, id))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		case t.State == task.Revoked:
			return nil
		default:
			return ErrFinished
		}
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return Task{}, err
	case errors.Is(err, ErrFinished):
		return t, err
	case err != nil:
		return Task{}, fmt.Errorf("revoke task %s: %w", id, err)
	}
	return t, nil
}

// Attempt is one recorded execution of a task.
type Attempt struct {
	Number     int
	Worker     string
	State      task.State // STARTED while running or when the worker died, then its outcome
	Error      string
	StartedAt  time.Time
	FinishedAt *time.Time
}

// Attempts returns the attempts of a task in order. An unknown task has none.
func (s *Store) Attempts(ctx context.Context, id uuid.UUID) ([]Attempt, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT attempt, worker, state, coalesce(error, ''), started_at, finished_at
		FROM task_attempts WHERE task_id = $1 ORDER BY attempt`, id)
	if err != nil {
		return nil, fmt.Errorf("list attempts of %s: %w", id, err)
	}
	attempts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Attempt, error) {
		var a Attempt
		err := row.Scan(&a.Number, &a.Worker, &a.State, &a.Error, &a.StartedAt, &a.FinishedAt)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list attempts of %s: %w", id, err)
	}
	return attempts, nil
}

// scanTask reads the columns of taskColumns, then any extra destinations.
func scanTask(row pgx.Row, extra ...any) (Task, error) {
	var t Task
	var errText, traceback, worker *string
	var timeoutMS int64
	dest := []any{&t.ID, &t.Name, &t.Args, &t.State, &t.Result, &errText, &traceback, &t.Attempts,
		&t.MaxRetries, &timeoutMS, &t.Queue, &worker, &t.ETA, &t.CreatedAt, &t.StartedAt, &t.FinishedAt}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return Task{}, err
	}
	t.Timeout = time.Duration(timeoutMS) * time.Millisecond
	t.Error = deref(errText)
	t.Traceback = deref(traceback)
	t.Worker = deref(worker)
	return t, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
