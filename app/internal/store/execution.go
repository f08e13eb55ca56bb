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
	// Waiting is set for a task that still waits for other tasks of its workflow. Its release
	// announces it again.
	Waiting bool
}

func (e *NotRunnableError) Error() string {
	switch {
	case e.State == "":
		return fmt.Sprintf("task %s does not exist", e.ID)
	case e.Waiting:
		return fmt.Sprintf("task %s waits for other tasks of its workflow", e.ID)
	default:
		return fmt.Sprintf("task %s is %s", e.ID, e.State)
	}
}

// Is makes errors.Is(err, ErrNotRunnable) true.
func (e *NotRunnableError) Is(target error) bool { return target == ErrNotRunnable }

// lostAttempt is the error recorded for an attempt that was still STARTED when the task was
// delivered again: its worker stopped before reporting an outcome.
const lostAttempt = "the worker stopped before the attempt finished"

// Claim is an attempt about to run: the task's inputs and the attempt number.
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

// Started is the result of loading one claim.
type Started struct {
	Claim Claim
	// Err is a *NotRunnableError for a task in SUCCESS, FAILURE or REVOKED or one that does not
	// exist, or a database error.
	Err error
}

// StartAttempt loads the claim of one task and marks it started at once; see LoadClaims and
// MarkStarted.
func (s *Store) StartAttempt(ctx context.Context, id uuid.UUID, worker string) (Claim, error) {
	r := s.LoadClaims(ctx, []uuid.UUID{id})[0]
	if r.Err != nil {
		return Claim{}, r.Err
	}
	err := s.MarkStarted(ctx, []StartMark{{ID: id, Attempt: r.Claim.Attempt, StartedAt: time.Now()}}, worker)[0]
	return r.Claim, err
}

// LoadClaims reads what workers need to run each task, one result per id, in order. It writes
// nothing: the attempt number is the next one, and a task that must not run (SUCCESS, FAILURE,
// REVOKED, unknown or waiting for other tasks of its workflow) gives a *NotRunnableError.
func (s *Store) LoadClaims(ctx context.Context, ids []uuid.UUID) []Started {
	results := make([]Started, len(ids))
	rows, err := s.pool.Query(ctx, `
		SELECT id, task, args, state, attempts, retry_base, max_retries, timeout_ms, waiting
		FROM tasks WHERE id = ANY($1)`, ids)
	type row struct {
		claim   Claim
		state   task.State
		waiting int
	}
	found := map[uuid.UUID]row{}
	if err == nil {
		var r row
		var timeoutMS int64
		_, err = pgx.ForEachRow(rows, []any{&r.claim.ID, &r.claim.Name, &r.claim.Args, &r.state, &r.claim.Attempt,
			&r.claim.RetryBase, &r.claim.MaxRetries, &timeoutMS, &r.waiting}, func() error {
			r.claim.Attempt++
			r.claim.Timeout = time.Duration(timeoutMS) * time.Millisecond
			found[r.claim.ID] = r
			r.claim.Args = nil // json.RawMessage scans by appending; the next row must not reuse this array
			return nil
		})
	}
	for i, id := range ids {
		r, ok := found[id]
		switch {
		case err != nil:
			results[i].Err = fmt.Errorf("load task %s: %w", id, err)
		case !ok:
			results[i].Err = &NotRunnableError{ID: id}
		case r.state.Terminal():
			results[i].Err = &NotRunnableError{ID: id, State: r.state}
		case r.waiting > 0:
			results[i].Err = &NotRunnableError{ID: id, State: r.state, Waiting: true}
		default:
			results[i].Claim = r.claim
		}
	}
	return results
}

// StartMark says that an attempt began running.
type StartMark struct {
	ID        uuid.UUID
	Attempt   int
	StartedAt time.Time
}

// MarkStarted moves each task that has not finished to STARTED, counts the attempt and records
// it for worker, returning one error per mark. Attempts of the same tasks that are still marked
// STARTED and older are closed as lost: their message came back, so their worker stopped. A mark
// for an attempt that is already counted changes nothing.
//
// Workers call it only for attempts that run longer than a moment or that follow a redelivery,
// and the outcome records the attempt anyway, so the common short task costs one write instead
// of two. The update commits with synchronous_commit off: losing it in a database crash only
// loses the STARTED marker.
func (s *Store) MarkStarted(ctx context.Context, marks []StartMark, worker string) []error {
	errs := make([]error, len(marks))
	for _, round := range uniqueRounds(marks, func(m StartMark) uuid.UUID { return m.ID }) {
		ids, attempts, times := make([]uuid.UUID, len(round)), make([]int32, len(round)), make([]time.Time, len(round))
		for j, i := range round {
			ids[j], attempts[j], times[j] = marks[i].ID, int32(marks[i].Attempt), marks[i].StartedAt
		}
		batch := &pgx.Batch{}
		batch.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
		batch.Queue(`
			WITH input AS (
				SELECT * FROM unnest($1::uuid[], $2::int[], $3::timestamptz[]) AS m(id, attempt, started_at)
			), started AS (
				UPDATE tasks t SET state = 'STARTED', attempts = m.attempt, worker = $4,
					started_at = coalesce(t.started_at, m.started_at), updated_at = now()
				FROM input m
				WHERE t.id = ANY($1) AND t.id = m.id AND t.state IN ('PENDING', 'STARTED', 'RETRY')
					AND t.attempts < m.attempt
				RETURNING t.id, m.attempt, m.started_at
			), lost AS (
				-- task_id = ANY($1) lets the planner use the primary key.
				UPDATE task_attempts a SET state = 'FAILURE', error = $5, finished_at = now()
				FROM started s
				WHERE a.task_id = ANY($1) AND a.task_id = s.id AND a.state = 'STARTED' AND a.attempt < s.attempt
			)
			INSERT INTO task_attempts (task_id, attempt, worker, state, started_at)
			SELECT id, attempt, $4, 'STARTED', started_at FROM started
			ON CONFLICT (task_id, attempt) DO NOTHING`, ids, attempts, times, worker, lostAttempt)
		err := s.pool.SendBatch(ctx, batch).Close()
		for _, i := range round {
			if err != nil {
				errs[i] = fmt.Errorf("mark task %s started: %w", marks[i].ID, err)
			}
		}
	}
	return errs
}

// Outcome is the end of one attempt.
type Outcome struct {
	ID      uuid.UUID
	Attempt int
	// Worker ran the attempt, which began at StartedAt (now when zero).
	Worker    string
	StartedAt time.Time
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
// it changed its task. It always records the attempt itself, whether or not MarkStarted did. A
// task changes only while it is PENDING, STARTED or RETRY, so a result is applied at most once
// and a revoked task keeps its state. A RETRY or FAILURE outcome applies only if no later attempt
// has been counted, so a stale duplicate delivery cannot undo newer progress. A SUCCESS from any
// attempt wins, because the work is done. Two outcomes for one task are stored one after the
// other.
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
	etas, workers, startedAt := make([]*time.Time, n), make([]string, n), make([]time.Time, n)
	now := time.Now()
	for j, i := range idx {
		o := outcomes[i]
		ids[j], attempts[j], states[j], errs[j], tracebacks[j] = o.ID, int32(o.Attempt), string(o.State), o.Error, o.Traceback
		workers[j], startedAt[j] = o.Worker, o.StartedAt
		if startedAt[j].IsZero() {
			startedAt[j] = now
		}
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
			SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::jsonb[], $5::text[], $6::text[],
				$7::timestamptz[], $8::text[], $9::timestamptz[])
				AS o(id, attempt, state, result, error, traceback, eta, worker, started_at)
		), finished AS (
			UPDATE tasks t SET state = o.state, result = o.result, error = nullif(o.error, ''),
				traceback = nullif(o.traceback, ''), eta = o.eta, updated_at = now(),
				attempts = greatest(t.attempts, o.attempt), worker = coalesce(nullif(o.worker, ''), t.worker),
				started_at = coalesce(t.started_at, o.started_at),
				finished_at = CASE WHEN o.state = 'RETRY' THEN NULL ELSE now() END
			FROM input o
			WHERE t.id = ANY($1) AND t.id = o.id AND t.state IN ('PENDING', 'STARTED', 'RETRY')
				AND o.state <> 'REVOKED' AND (o.state = 'SUCCESS' OR t.attempts <= o.attempt)
			RETURNING t.id
		), recorded AS (
			INSERT INTO task_attempts AS a (task_id, attempt, worker, state, error, started_at, finished_at)
			SELECT o.id, o.attempt, o.worker, o.state, nullif(o.error, ''), o.started_at, now()
			FROM input o
			WHERE o.attempt > 0
			ON CONFLICT (task_id, attempt) DO UPDATE
				SET state = excluded.state, error = excluded.error, finished_at = excluded.finished_at
		)
		SELECT id FROM finished`, ids, attempts, states, resultJSON, errs, tracebacks, etas, workers, startedAt)
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
