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

// Started is the result of starting one attempt.
type Started struct {
	Claim Claim
	// Err is a *NotRunnableError for a task in SUCCESS, FAILURE or REVOKED or one that does not
	// exist, or a database error.
	Err error
}

// StartAttempt starts one attempt; see StartAttempts.
func (s *Store) StartAttempt(ctx context.Context, id uuid.UUID, worker string) (Claim, error) {
	r := s.StartAttempts(ctx, []uuid.UUID{id}, worker)[0]
	return r.Claim, r.Err
}

// StartAttempts moves each task to STARTED, counts the attempt and records it for worker, and
// returns one result per id, in order. Earlier attempts still marked STARTED are closed as lost,
// because their message came back. An id listed twice is started twice, one after the other.
//
// The update commits with synchronous_commit off: if the database crashes before flushing it, a
// task merely looks not started, and the broker redelivers its message anyway.
func (s *Store) StartAttempts(ctx context.Context, ids []uuid.UUID, worker string) []Started {
	results := make([]Started, len(ids))
	for _, round := range uniqueRounds(ids, func(id uuid.UUID) uuid.UUID { return id }) {
		s.startRound(ctx, ids, round, worker, results)
	}
	return results
}

// startRound starts the attempts of ids[i] for i in idx, whose ids are distinct.
func (s *Store) startRound(ctx context.Context, ids []uuid.UUID, idx []int, worker string, results []Started) {
	batchIDs := make([]uuid.UUID, len(idx))
	for j, i := range idx {
		batchIDs[j] = ids[i]
	}
	batch := &pgx.Batch{}
	batch.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
	batch.Queue(`
		WITH started AS (
			UPDATE tasks t SET state = 'STARTED', attempts = t.attempts + 1, worker = $2,
				started_at = coalesce(t.started_at, now()), updated_at = now()
			WHERE t.id = ANY($1) AND t.state IN ('PENDING', 'STARTED', 'RETRY')
			RETURNING t.id, t.task, t.args, t.attempts, t.retry_base, t.max_retries, t.timeout_ms
		), lost AS (
			UPDATE task_attempts a SET state = 'FAILURE', error = $3, finished_at = now()
			FROM started s WHERE a.task_id = s.id AND a.state = 'STARTED'
		), recorded AS (
			INSERT INTO task_attempts (task_id, attempt, worker, state)
			SELECT id, attempts, $2, 'STARTED' FROM started
		)
		SELECT id, task, args, attempts, retry_base, max_retries, timeout_ms FROM started`,
		batchIDs, worker, lostAttempt)

	claims := map[uuid.UUID]Claim{}
	br := s.pool.SendBatch(ctx, batch)
	err := func() error {
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		var c Claim
		var timeoutMS int64
		_, err = pgx.ForEachRow(rows, []any{&c.ID, &c.Name, &c.Args, &c.Attempt, &c.RetryBase, &c.MaxRetries, &timeoutMS}, func() error {
			c.Timeout = time.Duration(timeoutMS) * time.Millisecond
			claims[c.ID] = c
			c.Args = nil // json.RawMessage scans by appending; the next row must not reuse this array
			return nil
		})
		return err
	}()

	// The states of tasks that did not start say why; this query runs only when some did not.
	states := map[uuid.UUID]task.State{}
	if err == nil && len(claims) < len(batchIDs) {
		rows, queryErr := s.pool.Query(ctx, `SELECT id, state FROM tasks WHERE id = ANY($1)`, batchIDs)
		if queryErr == nil {
			var id uuid.UUID
			var state task.State
			_, queryErr = pgx.ForEachRow(rows, []any{&id, &state}, func() error {
				states[id] = state
				return nil
			})
		}
		err = queryErr
	}
	for _, i := range idx {
		id := ids[i]
		switch c, ok := claims[id]; {
		case err != nil:
			results[i].Err = fmt.Errorf("start task %s: %w", id, err)
		case ok:
			results[i].Claim = c
		default:
			results[i].Err = &NotRunnableError{ID: id, State: states[id]}
		}
	}
}
// Outcome is the end of one attempt.
type Outcome struct {
	ID      uuid.UUID
	Attempt int
	// State is SUCCESS, RETRY or FAILURE, or REVOKED for an attempt cancelled by a revoke.
	State     task.State
	Result    json.RawMessage // for SUCCESS
	Error     string          // for RETRY, FAILURE and REVOKED
	Traceback string          // stack of a recovered panic
	RetryAt   time.Time       // for RETRY
}

// Finished is the result of storing one outcome.
type Finished struct {
	// Applied reports whether the outcome changed the task.
	Applied bool
	Err     error
}

// Finish stores one outcome; see FinishMany.
func (s *Store) Finish(ctx context.Context, o Outcome) (applied bool, err error) {
	r := s.FinishMany(ctx, []Outcome{o})[0]
	return r.Applied, r.Err
}

// FinishMany records the outcomes of attempts, in one transaction, and reports for each whether
// it changed its task. It always records the attempt's own outcome. A task changes only while it
// is PENDING, STARTED or RETRY, so a result is applied at most once and a revoked task keeps its
// state. A RETRY or FAILURE outcome applies only if no later attempt has started, so a stale
// duplicate delivery cannot undo newer progress. A SUCCESS from any attempt wins, because the work
// is done. Two outcomes for one task are stored one after the other.
//
// The commit is durable (unless the server runs with synchronous_commit off), so the caller may
// acknowledge the messages once FinishMany returns.
func (s *Store) FinishMany(ctx context.Context, outcomes []Outcome) []Finished {
	results := make([]Finished, len(outcomes))
	for _, round := range uniqueRounds(outcomes, func(o Outcome) uuid.UUID { return o.ID }) {
		s.finishRound(ctx, outcomes, round, results)
	}
	return results
}

// finishRound stores outcomes[i] for i in idx, whose task ids are distinct.
func (s *Store) finishRound(ctx context.Context, outcomes []Outcome, idx []int, results []Finished) {
	n := len(idx)
	ids, attempts, states := make([]uuid.UUID, n), make([]int32, n), make([]string, n)
	resultJSON, errs, tracebacks := make([]*string, n), make([]string, n), make([]string, n)
	etas := make([]*time.Time, n)
	for j, i := range idx {
		o := outcomes[i]
		ids[j], attempts[j], states[j], errs[j], tracebacks[j] = o.ID, int32(o.Attempt), string(o.State), o.Error, o.Traceback
		if o.State == task.Success && o.Result != nil {
			r := string(o.Result)
			resultJSON[j] = &r
		}
		if o.State == task.Retry {
			etas[j] = &outcomes[i].RetryAt
		}
	}
	rows, err := s.pool.Query(ctx, `
		WITH input AS (
			SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::jsonb[], $5::text[], $6::text[], $7::timestamptz[])
				AS o(id, attempt, state, result, error, traceback, eta)
		), finished AS (
			UPDATE tasks t SET state = o.state, result = o.result, error = nullif(o.error, ''),
				traceback = nullif(o.traceback, ''), eta = o.eta, updated_at = now(),
				finished_at = CASE WHEN o.state = 'RETRY' THEN NULL ELSE now() END
			FROM input o
			WHERE t.id = o.id AND t.state IN ('PENDING', 'STARTED', 'RETRY') AND o.state <> 'REVOKED'
				AND (o.state = 'SUCCESS' OR t.attempts = o.attempt)
			RETURNING t.id
		), recorded AS (
			UPDATE task_attempts a SET state = o.state, error = nullif(o.error, ''), finished_at = now()
			FROM input o WHERE a.task_id = o.id AND a.attempt = o.attempt
		)
		SELECT id FROM finished`, ids, attempts, states, resultJSON, errs, tracebacks, etas)
	applied := map[uuid.UUID]bool{}
	if err == nil {
		var id uuid.UUID
		_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
			applied[id] = true
			return nil
		})
	}
	for _, i := range idx {
		if err != nil {
			results[i].Err = fmt.Errorf("store outcome of task %s attempt %d: %w", outcomes[i].ID, outcomes[i].Attempt, err)
			continue
		}
		results[i].Applied = applied[outcomes[i].ID]
	}
}

// uniqueRounds splits the indexes of items into rounds in which no key appears twice, keeping
// their order, so that one statement never updates the same row twice.
func uniqueRounds[T any](items []T, key func(T) uuid.UUID) [][]int {
	var rounds [][]int
	seen := map[uuid.UUID]int{} // key -> number of rounds that already hold it
	for i, item := range items {
		k := key(item)
		r := seen[k]
		seen[k] = r + 1
		if r == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[r] = append(rounds[r], i)
	}
	return rounds
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
