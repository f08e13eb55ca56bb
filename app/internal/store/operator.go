package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskflow-dev/taskflow/app/internal/broker"
	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// ErrNotFinished means the task is still PENDING, STARTED or RETRY, so it cannot be requeued.
var ErrNotFinished = errors.New("task has not finished")

// ErrUpstreamFailed means the task waits for a task of its workflow that failed or was revoked.
// Requeued alone, it would wait forever, so that task must be requeued instead.
var ErrUpstreamFailed = errors.New("a task it waits for failed or was revoked")

// Requeue puts a task in FAILURE or REVOKED back to PENDING with a fresh retry budget and a new
// outbox message, so a worker runs it again. Earlier attempts stay recorded and numbering
// continues. A task in another state gives ErrNotFinished (or, for SUCCESS, ErrFinished: a result
// is never replaced), and an unknown id gives ErrNotFound.
//
// In a workflow, the tasks downstream that its end revoked come back to PENDING and wait again,
// unless another task they wait for also failed. A task that waits for a task that failed or was
// revoked gives ErrUpstreamFailed, and one that waits for a task still running gets its message
// when that task succeeds.
func (s *Store) Requeue(ctx context.Context, id uuid.UUID) (Task, error) {
	var t Task
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// In a workflow, the tasks that the requeued ones wait for are locked before the task
		// itself, the order in which a worker's result locks them.
		var inWorkflow bool
		err := tx.QueryRow(ctx, `SELECT workflow_id IS NOT NULL FROM tasks WHERE id = $1`, id).Scan(&inWorkflow)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		var downstream []uuid.UUID
		if inWorkflow {
			if downstream, err = lockUpstream(ctx, tx, id); err != nil {
				return err
			}
		}

		var name, queue string
		var state task.State
		err = tx.QueryRow(ctx, `SELECT task, queue, state FROM tasks WHERE id = $1 FOR UPDATE`, id).Scan(&name, &queue, &state)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		case state == task.Success:
			return ErrFinished
		case state != task.Failure && state != task.Revoked:
			return ErrNotFinished
		}
		row := tx.QueryRow(ctx, `
			UPDATE tasks SET state = 'PENDING', result = NULL, error = NULL, traceback = NULL,
				eta = NULL, finished_at = NULL, retry_base = attempts, updated_at = now()
			WHERE id = $1
			RETURNING `+taskColumns, id)
		if t, err = scanTask(row); err != nil {
			return err
		}
		if inWorkflow {
			if t.Waiting, err = requeueInWorkflow(ctx, tx, id, downstream); err != nil || t.Waiting > 0 {
				return err
			}
		}
		payload := []broker.TaskMessage{{ID: id, Task: name}}
		_, err = tx.Exec(ctx, `INSERT INTO outbox (task_id, queue, payload) VALUES ($1, $2, $3)`, id, queue, payload)
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrFinished), errors.Is(err, ErrNotFinished), errors.Is(err, ErrUpstreamFailed):
		return Task{}, err
	case err != nil:
		return Task{}, fmt.Errorf("requeue task %s: %w", id, err)
	}
	return t, nil
}

// lockUpstream returns the tasks downstream of the workflow task id, and locks the tasks that id
// and they wait for. A result that is being committed for one of those has already passed over
// the revoked tasks, so the lock waits for that commit and the counts that follow include it.
func lockUpstream(ctx context.Context, tx pgx.Tx, id uuid.UUID) ([]uuid.UUID, error) {
	var downstream []uuid.UUID
	if err := tx.QueryRow(ctx, `SELECT taskflow_downstream(ARRAY[$1::uuid])`, id).Scan(&downstream); err != nil {
		return nil, err
	}
	_, err := tx.Exec(ctx, `
		SELECT 1 FROM tasks p
		WHERE p.id IN (SELECT parent FROM task_edges WHERE child = ANY($1))
		ORDER BY p.id
		FOR SHARE`, append(downstream, id))
	return downstream, err
}

// requeueInWorkflow counts what the requeued workflow task id waits for and brings back the tasks
// in downstream that its end revoked. It returns the number of tasks id waits for.
func requeueInWorkflow(ctx context.Context, tx pgx.Tx, id uuid.UUID, downstream []uuid.UUID) (int, error) {
	var waiting, blocked int
	err := tx.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE p.state <> 'SUCCESS'),
		       count(*) FILTER (WHERE p.state IN ('FAILURE', 'REVOKED'))
		FROM task_edges e JOIN tasks p ON p.id = e.parent
		WHERE e.child = $1`, id).Scan(&waiting, &blocked)
	if err != nil {
		return 0, err
	}
	if blocked > 0 {
		return 0, ErrUpstreamFailed
	}
	_, err = tx.Exec(ctx, `UPDATE tasks SET waiting = $2, revoked_by = NULL WHERE id = $1`, id, waiting)
	if err != nil {
		return 0, err
	}

	// Revive what the cascade revoked and count again what each revived task waits for. A revived
	// task that also waits for another task that failed is revoked again, which cascades as before.
	rows, err := tx.Query(ctx, `
		UPDATE tasks SET state = 'PENDING', error = NULL, finished_at = NULL, revoked_by = NULL, updated_at = now()
		WHERE id = ANY($1) AND state = 'REVOKED' AND revoked_by IS NOT NULL
		RETURNING id`, downstream)
	if err != nil {
		return 0, err
	}
	revived, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil || len(revived) == 0 {
		return waiting, err
	}
	_, err = tx.Exec(ctx, `
		UPDATE tasks c SET waiting = (
			SELECT count(*) FROM task_edges e JOIN tasks p ON p.id = e.parent
			WHERE e.child = c.id AND p.state <> 'SUCCESS')
		WHERE c.id = ANY($1)`, revived)
	if err != nil {
		return 0, err
	}
	_, err = tx.Exec(ctx, `
		UPDATE tasks c SET state = 'REVOKED', finished_at = now(), updated_at = now(), revoked_by = p.id,
			error = format('not run: task %s, which it waits for, ended in %s', p.id, p.state)
		FROM task_edges e JOIN tasks p ON p.id = e.parent
		WHERE c.id = ANY($1) AND e.child = c.id AND p.state IN ('FAILURE', 'REVOKED') AND c.state = 'PENDING'`, revived)
	return waiting, err
}

// SetQueuePaused records whether workers should consume from queue. It is idempotent.
func (s *Store) SetQueuePaused(ctx context.Context, queue string, paused bool) error {
	var err error
	if paused {
		_, err = s.pool.Exec(ctx, `INSERT INTO paused_queues (queue) VALUES ($1) ON CONFLICT DO NOTHING`, queue)
	} else {
		_, err = s.pool.Exec(ctx, `DELETE FROM paused_queues WHERE queue = $1`, queue)
	}
	if err != nil {
		return fmt.Errorf("set queue %q paused=%v: %w", queue, paused, err)
	}
	return nil
}

// PausedQueues returns the names of the paused queues in sorted order.
func (s *Store) PausedQueues(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT queue FROM paused_queues ORDER BY queue`)
	if err != nil {
		return nil, fmt.Errorf("list paused queues: %w", err)
	}
	queues, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list paused queues: %w", err)
	}
	return queues, nil
}
