package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// ErrNotRunnable means a delivered task must not run: it is finished, revoked or unknown.
// The error returned with it is a *NotRunnableError that carries the state.
var ErrNotRunnable = errors.New("task is not runnable")

// NotRunnableError says why StartAttempt did not start a task.
type NotRunnableError struct {
	ID    uuid.UUID
	State task.State // empty when no task has the id
}

func (e *NotRunnableError) Error() string {
	if e.State == "" {
		return fmt.Sprintf("task %s does not exist", e.ID)
	}
	return fmt.Sprintf("task %s is %s", e.ID, e.State)
}

// Is makes errors.Is(err, ErrNotRunnable) true.
func (e *NotRunnableError) Is(target error) bool { return target == ErrNotRunnable }

// lostAttempt is the error recorded for an attempt that was still STARTED when the task was
// delivered again: its worker stopped before reporting an outcome.
const lostAttempt = "the worker stopped before the attempt finished"

// Claim is a started attempt: the task's inputs and the attempt number.
type Claim struct {
	ID      uuid.UUID
	Name    string
	Args    json.RawMessage
	Attempt int // 1 for the first attempt
	// RetryBase is the number of attempts made before the latest manual requeue; the retry
	// budget counts from there.
	RetryBase  int
	MaxRetries int
	Timeout    time.Duration
}

// StartAttempt moves a task to STARTED, counts the attempt and records it for worker. Earlier
// attempts still marked STARTED are closed as lost, because their message came back. A task in
// SUCCESS, FAILURE or REVOKED, or one that does not exist, gives a *NotRunnableError.
//
// The update commits with synchronous_commit off: if the database crashes before flushing it, the
// task merely looks not started, and the broker redelivers the message anyway.
func (s *Store) StartAttempt(ctx context.Context, id uuid.UUID, worker string) (Claim, error) {
	batch := &pgx.Batch{}
	batch.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
	batch.Queue(`
		WITH started AS (
			UPDATE tasks SET state = 'STARTED', attempts = attempts + 1, worker = $2,
				started_at = coalesce(started_at, now()), updated_at = now()
			WHERE id = $1 AND state IN ('PENDING', 'STARTED', 'RETRY')
			RETURNING id, task, args, attempts, retry_base, max_retries, timeout_ms
		), lost AS (
			UPDATE task_attempts SET state = 'FAILURE', error = $3, finished_at = now()
			WHERE task_id IN (SELECT id FROM started) AND state = 'STARTED'
		), recorded AS (
			INSERT INTO task_attempts (task_id, attempt, worker, state)
			SELECT id, attempts, $2, 'STARTED' FROM started
		)
		SELECT id, task, args, attempts, retry_base, max_retries, timeout_ms FROM started`, id, worker, lostAttempt)

	results := s.pool.SendBatch(ctx, batch)
	defer results.Close()
	if _, err := results.Exec(); err != nil {
		return Claim{}, fmt.Errorf("start task %s: %w", id, err)
	}
	var c Claim
	var timeoutMS int64
	err := results.QueryRow().Scan(&c.ID, &c.Name, &c.Args, &c.Attempt, &c.RetryBase, &c.MaxRetries, &timeoutMS)
	if errors.Is(err, pgx.ErrNoRows) {
		if err := results.Close(); err != nil {
			return Claim{}, fmt.Errorf("start task %s: %w", id, err)
		}
		return Claim{}, s.notRunnable(ctx, id)
	}
	if err != nil {
		return Claim{}, fmt.Errorf("start task %s: %w", id, err)
	}
	c.Timeout = time.Duration(timeoutMS) * time.Millisecond
	return c, results.Close()
}

func (s *Store) notRunnable(ctx context.Context, id uuid.UUID) error {
	var state task.State
	err := s.pool.QueryRow(ctx, `SELECT state FROM tasks WHERE id = $1`, id).Scan(&state)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("read state of task %s: %w", id, err)
	}
	return &NotRunnableError{ID: id, State: state}
}

// Outcome is the end of one attempt.
type Outcome struct {
	ID      uuid.UUID
	Attempt int
	// State is SUCCESS, RETRY or FAILURE.
	State     task.State
	Result    json.RawMessage // for SUCCESS
	Error     string          // for RETRY and FAILURE
	Traceback string          // stack of a recovered panic
	RetryAt   time.Time       // for RETRY
}

// Finish records the outcome of an attempt and reports whether it changed the task. It always
// records the attempt's own outcome. The task changes only while it is PENDING, STARTED or RETRY,
// so a result is applied at most once and a revoked task keeps its state. A RETRY or FAILURE
// outcome applies only if no later attempt has started, so a stale duplicate delivery cannot
// undo newer progress. A SUCCESS from any attempt wins, because the work is done.
//
// The commit is durable (unless the server runs with synchronous_commit off), so the caller may
// acknowledge the message once Finish returns.
func (s *Store) Finish(ctx context.Context, o Outcome) (applied bool, err error) {
	var eta *time.Time
	if o.State == task.Retry {
		eta = &o.RetryAt
	}
	var result json.RawMessage
	if o.State == task.Success {
		result = o.Result
	}
	var count int
	err = s.pool.QueryRow(ctx, `
		WITH finished AS (
			UPDATE tasks SET state = $3, result = $4, error = nullif($5, ''),
				traceback = nullif($6, ''), eta = $7, updated_at = now(),
				finished_at = CASE WHEN $3::text = 'RETRY' THEN NULL ELSE now() END
			WHERE id = $1 AND state IN ('PENDING', 'STARTED', 'RETRY')
				AND ($3::text = 'SUCCESS' OR attempts = $2)
			RETURNING id
		), recorded AS (
			UPDATE task_attempts SET state = $3, error = nullif($5, ''), finished_at = now()
			WHERE task_id = $1 AND attempt = $2
		)
		SELECT count(*) FROM finished`,
		o.ID, o.Attempt, string(o.State), result, o.Error, o.Traceback, eta).Scan(&count)
	if err != nil {
		return false, fmt.Errorf("store outcome of task %s attempt %d: %w", o.ID, o.Attempt, err)
	}
	return count == 1, nil
}

// FailUndelivered moves a task that is not finished to FAILURE with reason as its error, and
// closes its attempts still marked STARTED. It is used for a message that reached the delivery
// limit, whose attempts never reported an outcome. A finished or unknown task is left alone.
func (s *Store) FailUndelivered(ctx context.Context, id uuid.UUID, reason string) error {
	_, err := s.pool.Exec(ctx, `
		WITH failed AS (
			UPDATE tasks SET state = 'FAILURE', error = $2, finished_at = now(), updated_at = now()
			WHERE id = $1 AND state IN ('PENDING', 'STARTED', 'RETRY')
			RETURNING id
		)
		UPDATE task_attempts SET state = 'FAILURE', error = $3, finished_at = now()
		WHERE task_id IN (SELECT id FROM failed) AND state = 'STARTED'`, id, reason, lostAttempt)
	if err != nil {
		return fmt.Errorf("fail undelivered task %s: %w", id, err)
	}
	return nil
}
