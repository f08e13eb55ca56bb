package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ErrWorkflowNotFound means no workflow has the requested id.
var ErrWorkflowNotFound = errors.New("workflow not found")

// NewWorkflow is a workflow to create: its tasks and which task waits for which.
type NewWorkflow struct {
	ID uuid.UUID
	// Spec is the workflow as the request described it, kept for display.
	Spec  json.RawMessage
	Tasks []WorkflowTask
	// Edges list which tasks wait for which. A task waits for every parent of its edges.
	Edges []Edge
	// Outputs are the tasks whose results form the workflow's result: the array of their
	// results when Many, else the result of the only one.
	Outputs []uuid.UUID
	Many    bool
	// IdempotencyKey and RequestHash work as for NewTask.
	IdempotencyKey string
	RequestHash    []byte
}

// WorkflowTask is one task of a new workflow. Its NewTask's IdempotencyKey is ignored, and its
// ETA applies only to a task that waits for nothing.
type WorkflowTask struct {
	NewTask
	// Pipe names the argument that receives the results of the tasks it waits for: the result of
	// the first parent, or the array of all of them in edge position order when PipeMany.
	Pipe     string
	PipeMany bool
	// ReleaseDelay is the countdown of a task that waits, counted from its release.
	ReleaseDelay time.Duration
}

// Edge is a dependency: Child waits for Parent. Position orders the results piped into Child.
type Edge struct {
	Parent   uuid.UUID
	Child    uuid.UUID
	Position int
}

// Workflow is a stored workflow with its tasks in creation order.
type Workflow struct {
	ID        uuid.UUID
	Spec      json.RawMessage
	Outputs   []uuid.UUID
	Many      bool
	CreatedAt time.Time
	Tasks     []Task
	Edges     []Edge
}

// CreateWorkflow stores the workflow and its tasks, and announces the tasks that wait for nothing,
// in one transaction. It returns the stored workflow and whether it was created: a workflow with
// the same idempotency key and request hash is returned unchanged, and a different request
// hash gives ErrIdempotencyConflict.
func (s *Store) CreateWorkflow(ctx context.Context, w NewWorkflow) (Workflow, bool, error) {
	created := true
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var key *string
		if w.IdempotencyKey != "" {
			key = &w.IdempotencyKey
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO workflows (id, spec, outputs, many, idempotency_key, request_hash)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING`,
			w.ID, string(w.Spec), w.Outputs, w.Many, key, w.RequestHash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			created = false
			var id uuid.UUID
			var hash []byte
			err := tx.QueryRow(ctx, `SELECT id, request_hash FROM workflows WHERE idempotency_key = $1`,
				w.IdempotencyKey).Scan(&id, &hash)
			if err != nil {
				return err
			}
			if !bytes.Equal(hash, w.RequestHash) {
				return ErrIdempotencyConflict
			}
			w.ID = id
			return nil
		}
		return insertWorkflowTasks(ctx, tx, w)
	})
	switch {
	case errors.Is(err, ErrIdempotencyConflict):
		return Workflow{}, false, err
	case err != nil:
		return Workflow{}, false, fmt.Errorf("create workflow: %w", err)
	}
	stored, err := s.Workflow(ctx, w.ID)
	return stored, created, err
}

// insertWorkflowTasks inserts the tasks and edges of w, and outbox messages for the tasks that
// wait for nothing.
func insertWorkflowTasks(ctx context.Context, tx pgx.Tx, w NewWorkflow) error {
	waiting := map[uuid.UUID]int32{}
	for _, e := range w.Edges {
		waiting[e.Child]++
	}
	n := len(w.Tasks)
	ids, names, queues, args, pipes := make([]uuid.UUID, n), make([]string, n), make([]string, n), make([]string, n), make([]*string, n)
	maxRetries, waits, delays := make([]int32, n), make([]int32, n), make([]int64, n)
	timeouts, many, etas := make([]int64, n), make([]bool, n), make([]*time.Time, n)
	for i, t := range w.Tasks {
		ids[i], names[i], queues[i], args[i] = t.ID, t.Name, t.Queue, string(t.Args)
		maxRetries[i], timeouts[i], waits[i] = int32(t.MaxRetries), t.Timeout.Milliseconds(), waiting[t.ID]
		many[i], delays[i] = t.PipeMany, t.ReleaseDelay.Milliseconds()
		if t.Pipe != "" {
			pipes[i] = &w.Tasks[i].Pipe
		}
		if !t.ETA.IsZero() && waits[i] == 0 {
			etas[i] = &w.Tasks[i].ETA
		}
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO tasks (id, task, args, state, attempts, max_retries, timeout_ms, queue, eta,
			workflow_id, waiting, pipe, pipe_many, release_delay_ms)
		SELECT id, task, args, 'PENDING', 0, max_retries, timeout_ms, queue, eta,
			$12, waiting, pipe, pipe_many, release_delay_ms
		FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::int[], $5::int[], $6::text[],
			$7::timestamptz[], $8::int[], $9::text[], $10::bool[], $11::bigint[])
			AS i(id, task, args, max_retries, timeout_ms, queue, eta, waiting, pipe, pipe_many, release_delay_ms)`,
		ids, names, args, maxRetries, timeouts, queues, etas, waits, pipes, many, delays, w.ID)
	if err != nil {
		return fmt.Errorf("insert tasks: %w", err)
	}
	_, err = tx.Exec(ctx, `SELECT taskflow_announce(array_agg(id)) FROM tasks WHERE workflow_id = $1 AND waiting = 0`, w.ID)
	if err != nil {
		return fmt.Errorf("announce tasks: %w", err)
	}

	parents, children, positions := make([]uuid.UUID, len(w.Edges)), make([]uuid.UUID, len(w.Edges)), make([]int32, len(w.Edges))
	for i, e := range w.Edges {
		parents[i], children[i], positions[i] = e.Parent, e.Child, int32(e.Position)
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO task_edges (parent, child, position)
		SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[])`, parents, children, positions)
	if err != nil {
		return fmt.Errorf("insert task edges: %w", err)
	}
	return nil
}

// Workflow returns the workflow with the given id and its tasks, or ErrWorkflowNotFound.
func (s *Store) Workflow(ctx context.Context, id uuid.UUID) (Workflow, error) {
	w := Workflow{ID: id}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT spec, outputs, many, created_at FROM workflows WHERE id = $1`, id).
			Scan(&w.Spec, &w.Outputs, &w.Many, &w.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrWorkflowNotFound
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+taskColumns+` FROM tasks WHERE workflow_id = $1 ORDER BY id`, id)
		if err != nil {
			return err
		}
		w.Tasks, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Task, error) { return scanTask(row) })
		if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `
			SELECT e.parent, e.child, e.position FROM task_edges e
			JOIN tasks t ON t.id = e.child
			WHERE t.workflow_id = $1 ORDER BY e.child, e.position`, id)
		if err != nil {
			return err
		}
		w.Edges, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Edge, error) {
			var e Edge
			err := row.Scan(&e.Parent, &e.Child, &e.Position)
			return e, err
		})
		return err
	})
	switch {
	case errors.Is(err, ErrWorkflowNotFound):
		return Workflow{}, err
	case err != nil:
		return Workflow{}, fmt.Errorf("read workflow %s: %w", id, err)
	}
	return w, nil
}

// TaskEdges returns the tasks that the task id waits for and the tasks that wait for it, each in
// id order. A task outside workflows has neither.
func (s *Store) TaskEdges(ctx context.Context, id uuid.UUID) (parents, children []uuid.UUID, err error) {
	rows, err := s.pool.Query(ctx, `
		SELECT parent, true FROM task_edges WHERE child = $1
		UNION ALL
		SELECT child, false FROM task_edges WHERE parent = $1
		ORDER BY 1`, id)
	if err != nil {
		return nil, nil, fmt.Errorf("read edges of task %s: %w", id, err)
	}
	var other uuid.UUID
	var isParent bool
	_, err = pgx.ForEachRow(rows, []any{&other, &isParent}, func() error {
		if isParent {
			parents = append(parents, other)
		} else {
			children = append(children, other)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read edges of task %s: %w", id, err)
	}
	return parents, children, nil
}

// RevokeWorkflow marks every unfinished task of the workflow REVOKED and drops their unpublished
// outbox messages. It returns the ids of the revoked tasks that had started, so the caller can
// notify their workers, and ErrWorkflowNotFound for an unknown workflow. Finished tasks keep
// their state.
func (s *Store) RevokeWorkflow(ctx context.Context, id uuid.UUID) ([]uuid.UUID, error) {
	var running []uuid.UUID
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM workflows WHERE id = $1)`, id).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return ErrWorkflowNotFound
		}
		// Every unfinished task is revoked here, so the trigger need not walk the graph for each.
		if _, err := tx.Exec(ctx, `SELECT set_config('taskflow.cascading', 'on', true)`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			WITH unfinished AS (
				SELECT id, state FROM tasks
				WHERE workflow_id = $1 AND state IN ('PENDING', 'STARTED', 'RETRY')
				ORDER BY id
				FOR UPDATE
			), revoked AS (
				UPDATE tasks t SET state = 'REVOKED', finished_at = now(), updated_at = now()
				FROM unfinished u WHERE t.id = u.id
				RETURNING t.id, u.state
			), dropped AS (
				DELETE FROM outbox WHERE task_id IN (SELECT id FROM revoked)
			)
			SELECT id FROM revoked WHERE state <> 'PENDING'`, id)
		if err != nil {
			return err
		}
		if running, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID]); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT set_config('taskflow.cascading', 'off', true)`)
		return err
	})
	switch {
	case errors.Is(err, ErrWorkflowNotFound):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("revoke workflow %s: %w", id, err)
	}
	return running, nil
}
