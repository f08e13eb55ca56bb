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
	// Workflow is the workflow the task belongs to, or uuid.Nil.
	Workflow uuid.UUID
	// Waiting is the number of tasks of its workflow it still waits for; it gets no message
	// before that reaches 0.
	Waiting int
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
}

const taskColumns = `id, task, args, state, result, error, traceback, attempts, max_retries,
	timeout_ms, queue, worker, eta, created_at, started_at, finished_at, workflow_id, waiting`

// Created is the result of creating one task.
type Created struct {
	Task Task
	// New is false when an earlier task with the same idempotency key and request hash was
	// returned instead of creating one.
	New bool
	// Err is ErrIdempotencyConflict for a reused key with another request hash, or a database
	// error.
	Err error
}

// CreateTask creates one task; see CreateTasks.
func (s *Store) CreateTask(ctx context.Context, t NewTask) (Task, bool, error) {
	r := s.CreateTasks(ctx, []NewTask{t})[0]
	return r.Task, r.New, r.Err
}

// CreateTasks inserts the tasks and their outbox messages in one statement, so that each task and
// its message are committed together, and all of them share one commit. It returns one result per
// task, in order. A task whose idempotency key already exists is not inserted: the existing task
// is returned when its request hash is equal, and ErrIdempotencyConflict otherwise.
func (s *Store) CreateTasks(ctx context.Context, tasks []NewTask) []Created {
	results := make([]Created, len(tasks))
	n := len(tasks)
	ids, names, queues := make([]uuid.UUID, n), make([]string, n), make([]string, n)
	args := make([]string, n)
	maxRetries, timeouts := make([]int32, n), make([]int64, n)
	etas := make([]*time.Time, n)
	keys, hashes := make([]*string, n), make([][]byte, n)
	for i, t := range tasks {
		ids[i], names[i], queues[i], args[i] = t.ID, t.Name, t.Queue, string(t.Args)
		maxRetries[i], timeouts[i] = int32(t.MaxRetries), t.Timeout.Milliseconds()
		if !t.ETA.IsZero() {
			etas[i] = &tasks[i].ETA
		}
		if t.IdempotencyKey != "" {
			keys[i] = &tasks[i].IdempotencyKey
		}
		hashes[i] = t.RequestHash
	}

	// The outbox payload is a JSON array of broker.TaskMessage objects, built here in SQL so that
	// only inserted tasks (not idempotent replays) are announced.
	rows, err := s.pool.Query(ctx, `
		WITH input AS (
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::int[], $5::int[], $6::text[],
				$7::timestamptz[], $8::text[], $9::bytea[])
				WITH ORDINALITY AS i(id, task, args, max_retries, timeout_ms, queue, eta, key, hash, ord)
		), inserted AS (
			INSERT INTO tasks (id, task, args, state, attempts, max_retries, timeout_ms, queue, eta,
				idempotency_key, request_hash)
			SELECT id, task, args, 'PENDING', 0, max_retries, timeout_ms, queue, eta, key, hash
			FROM input ORDER BY ord
			ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
			RETURNING `+taskColumns+`
		), announced AS (
			SELECT i.* FROM inserted t JOIN input i ON i.id = t.id
		), queued AS (
			INSERT INTO outbox (queue, payload, task_id, not_before)
			SELECT queue, jsonb_agg(jsonb_build_object('id', id, 'task', task) ORDER BY ord), NULL, now()
			FROM announced WHERE eta IS NULL GROUP BY queue
			UNION ALL
			SELECT queue, jsonb_build_array(jsonb_build_object('id', id, 'task', task)), id, eta
			FROM announced WHERE eta IS NOT NULL
		)
		SELECT `+taskColumns+` FROM inserted`,
		ids, names, args, maxRetries, timeouts, queues, etas, keys, hashes)
	if err != nil {
		return failAll(results, fmt.Errorf("insert tasks: %w", err))
	}
	inserted := map[uuid.UUID]Task{}
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			rows.Close()
			return failAll(results, fmt.Errorf("insert tasks: %w", err))
		}
		inserted[t.ID] = t
	}
	if err := rows.Err(); err != nil {
		return failAll(results, fmt.Errorf("insert tasks: %w", err))
	}

	for i, t := range tasks {
		if stored, ok := inserted[t.ID]; ok {
			results[i] = Created{Task: stored, New: true}
			continue
		}
		if t.IdempotencyKey == "" {
			results[i].Err = fmt.Errorf("insert task %s: no row returned", t.ID)
			continue
		}
		results[i] = s.existing(ctx, t)
	}
	return results
}

// existing returns the committed task that holds t's idempotency key, if the request hash matches.
func (s *Store) existing(ctx context.Context, t NewTask) Created {
	var hash []byte
	row := s.pool.QueryRow(ctx, `SELECT `+taskColumns+`, request_hash FROM tasks WHERE idempotency_key = $1`, t.IdempotencyKey)
	stored, err := scanTask(row, &hash)
	if err != nil {
		return Created{Err: fmt.Errorf("read task by idempotency key: %w", err)}
	}
	if !bytes.Equal(hash, t.RequestHash) {
		return Created{Err: ErrIdempotencyConflict}
	}
	return Created{Task: stored}
}

func failAll(results []Created, err error) []Created {
	for i := range results {
		results[i].Err = err
	}
	return results
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
	err := s.inTx(ctx, func(tx pgx.Tx) error {
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
	var workflow *uuid.UUID
	dest := []any{&t.ID, &t.Name, &t.Args, &t.State, &t.Result, &errText, &traceback, &t.Attempts,
		&t.MaxRetries, &timeoutMS, &t.Queue, &worker, &t.ETA, &t.CreatedAt, &t.StartedAt, &t.FinishedAt,
		&workflow, &t.Waiting}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return Task{}, err
	}
	if workflow != nil {
		t.Workflow = *workflow
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
