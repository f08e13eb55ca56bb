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

// Requeue puts a task in FAILURE or REVOKED back to PENDING with a fresh retry budget and a new
// outbox message, so a worker runs it again. Earlier attempts stay recorded and numbering
// continues. A task in another state gives ErrNotFinished (or, for SUCCESS, ErrFinished: a result
// is never replaced), and an unknown id gives ErrNotFound.
func (s *Store) Requeue(ctx context.Context, id uuid.UUID) (Task, error) {
	var t Task
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var name, queue string
		var state task.State
		err := tx.QueryRow(ctx, `SELECT task, queue, state FROM tasks WHERE id = $1 FOR UPDATE`, id).Scan(&name, &queue, &state)
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
		payload := []broker.TaskMessage{{ID: id, Task: name}}
		_, err = tx.Exec(ctx, `INSERT INTO outbox (task_id, queue, payload) VALUES ($1, $2, $3)`, id, queue, payload)
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrFinished), errors.Is(err, ErrNotFinished):
		return Task{}, err
	case err != nil:
		return Task{}, fmt.Errorf("requeue task %s: %w", id, err)
	}
	return t, nil
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
