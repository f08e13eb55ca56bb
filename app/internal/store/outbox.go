package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskflow-dev/taskflow/app/internal/broker"
)

// OutboxRow holds committed task announcements that the broker has not confirmed yet: the
// messages of the tasks created by one statement, or of one task with a countdown.
type OutboxRow struct {
	ID       int64
	Queue    string
	Messages []broker.TaskMessage
}

// PublishFunc publishes the messages of rows and returns the ids of the rows whose messages the
// broker all confirmed. Rows it does not return stay in the outbox and are offered again later,
// with all their messages.
type PublishFunc func(ctx context.Context, rows []OutboxRow) (published []int64, err error)

// RelayOutbox locks up to limit due outbox rows, calls publish with them and deletes those it
// confirms, all in one transaction. Rows locked by another relay are skipped, so several relays can
// run at once. It returns the number of messages deleted.
//
// A crash after publishing and before the commit leaves the rows in place, so those messages are
// published again: delivery is at least once, and workers ignore a task that already finished.
func (s *Store) RelayOutbox(ctx context.Context, limit int, publish PublishFunc) (int, error) {
	var deleted int
	var publishErr error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Losing this commit in a database crash only republishes the batch.
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit TO off`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			SELECT id, queue, payload FROM outbox
			WHERE not_before <= now()
			ORDER BY id
			LIMIT $1
			FOR UPDATE SKIP LOCKED`, limit)
		if err != nil {
			return err
		}
		msgs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (OutboxRow, error) {
			var r OutboxRow
			err := row.Scan(&r.ID, &r.Queue, &r.Messages)
			return r, err
		})
		if err != nil || len(msgs) == 0 {
			return err
		}
		// The confirmed part of a partly failed batch is still deleted, so it is not sent twice.
		var published []int64
		published, publishErr = publish(ctx, msgs)
		if len(published) == 0 {
			return nil
		}
		tag, err := tx.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, published)
		deleted = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("relay outbox: %w", err)
	}
	if publishErr != nil {
		return deleted, fmt.Errorf("relay outbox: %w", publishErr)
	}
	return deleted, nil
}

// NextOutboxDue returns when the earliest outbox message becomes due, and false when the outbox
// is empty.
func (s *Store) NextOutboxDue(ctx context.Context) (time.Time, bool, error) {
	var due *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT min(not_before) FROM outbox`).Scan(&due); err != nil {
		return time.Time{}, false, fmt.Errorf("read next outbox due time: %w", err)
	}
	if due == nil {
		return time.Time{}, false, nil
	}
	return *due, true, nil
}

// OutboxSize returns the number of task announcements waiting in the outbox, due or not.
func (s *Store) OutboxSize(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(jsonb_array_length(payload)), 0) FROM outbox`).Scan(&n)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("count outbox: %w", err)
	}
	return n, nil
}

// outboxChannel is the notification channel on which the workflow trigger announces the outbox
// rows it wrote (migrations/020_workflows.sql).
const outboxChannel = "taskflow_outbox"

// ListenOutbox calls notify after each commit that wrote outbox rows through the workflow
// trigger, until ctx ends or the connection fails. It holds one connection of its own.
func (s *Store) ListenOutbox(ctx context.Context, notify func()) error {
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("listen for outbox rows: %w", err)
	}
	// The connection leaves the pool, so that no other query runs on a connection that listens.
	conn := pooled.Hijack()
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+outboxChannel); err != nil {
		return fmt.Errorf("listen for outbox rows: %w", err)
	}
	notify() // rows committed before LISTEN took effect
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return fmt.Errorf("wait for outbox rows: %w", err)
		}
		notify()
	}
}
