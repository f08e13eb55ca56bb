package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/taskflow-dev/taskflow/app/internal/store"
)

// maxActionBody bounds the JSON body of an action.
const maxActionBody = 4 << 10

// taskAction is the response of the retry and revoke actions.
type taskAction struct {
	Action string   `json:"action"`
	Task   taskJSON `json:"task"`
}

// retryTask handles POST api/tasks/{id}/retry: a FAILURE or REVOKED task goes back to PENDING with
// a fresh retry budget, and the api's outbox relay publishes it again.
func (m *Monitor) retryTask(w http.ResponseWriter, r *http.Request) error {
	id, err := pathTaskID(r)
	if err != nil {
		return err
	}
	t, err := m.store.Requeue(r.Context(), id)
	if err != nil {
		return err
	}
	m.log.InfoContext(r.Context(), "operator retried task", "task_id", id, "task", t.Name)
	m.writeJSON(w, r, http.StatusOK, taskAction{Action: "retry", Task: newTaskJSON(t)})
	return nil
}

// revokeTask handles POST api/tasks/{id}/revoke: the task becomes REVOKED, and a revoke command
// makes a worker that runs it cancel it. Revoking a REVOKED task again succeeds.
func (m *Monitor) revokeTask(w http.ResponseWriter, r *http.Request) error {
	id, err := pathTaskID(r)
	if err != nil {
		return err
	}
	t, err := m.store.Revoke(r.Context(), id)
	if errors.Is(err, store.ErrFinished) {
		return &requestError{status: http.StatusConflict, msg: fmt.Sprintf("the task is %s and cannot be revoked", t.State)}
	}
	if err != nil {
		return err
	}
	if err := m.commands.Revoked(r.Context(), id); err != nil {
		m.log.WarnContext(r.Context(), "cannot tell workers about a revoked task; a running attempt finishes and its result is discarded",
			"task_id", id, "err", err)
	}
	m.log.InfoContext(r.Context(), "operator revoked task", "task_id", id, "task", t.Name)
	m.writeJSON(w, r, http.StatusOK, taskAction{Action: "revoke", Task: newTaskJSON(t)})
	return nil
}

// queueAction is the response of the purge, pause and resume actions.
type queueAction struct {
	Action string `json:"action"`
	Queue  string `json:"queue"`
	// Purged is the number of messages a purge removed.
	Purged int  `json:"purged"`
	Paused bool `json:"paused"`
}

// purgeQueue handles POST api/queues/{name}/purge for any queue of the topology. Purging the work
// queue leaves its tasks PENDING in PostgreSQL with no message; revoke them, or submit them again.
func (m *Monitor) purgeQueue(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if !m.isTopologyQueue(name) {
		return m.unknownQueue(name)
	}
	ch, err := m.broker.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	n, err := ch.QueuePurge(name, false)
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
		return m.unknownQueue(name)
	}
	if err != nil {
		return fmt.Errorf("purge queue %q: %w", name, err)
	}
	m.log.InfoContext(r.Context(), "operator purged queue", "queue", name, "messages", n)
	m.refresh(context.WithoutCancel(r.Context()), true)
	m.writeJSON(w, r, http.StatusOK, queueAction{Action: "purge", Queue: name, Purged: n, Paused: m.isPaused(name)})
	return nil
}

// pauseQueue handles POST api/queues/{name}/pause.
func (m *Monitor) pauseQueue(w http.ResponseWriter, r *http.Request) error {
	return m.setPaused(w, r, true)
}

// resumeQueue handles POST api/queues/{name}/resume.
func (m *Monitor) resumeQueue(w http.ResponseWriter, r *http.Request) error {
	return m.setPaused(w, r, false)
}

// setPaused stores the paused flag of the work queue, then sends the pause or resume command to
// the workers. Workers finish the tasks they are running, and a worker that misses the command
// reads the flag when it reconnects.
func (m *Monitor) setPaused(w http.ResponseWriter, r *http.Request, paused bool) error {
	name := r.PathValue("name")
	if name != m.cfg.Queue {
		return &requestError{status: http.StatusBadRequest, field: "name",
			msg: fmt.Sprintf("only the work queue %q can be paused; queue %q has no workers", m.cfg.Queue, name)}
	}
	if err := m.store.SetQueuePaused(r.Context(), name, paused); err != nil {
		return err
	}
	action := "resume"
	if paused {
		action = "pause"
	}
	if err := m.commands.Paused(r.Context(), name, paused); err != nil {
		m.log.WarnContext(r.Context(), "cannot send the "+action+" command; workers apply it when they reconnect",
			"queue", name, "err", err)
	}
	m.log.InfoContext(r.Context(), "operator changed queue consumption", "queue", name, "action", action)
	m.refresh(context.WithoutCancel(r.Context()), true)
	m.writeJSON(w, r, http.StatusOK, queueAction{Action: action, Queue: name, Paused: paused})
	return nil
}

// requeueRequest is the body of POST api/queues/{name}/requeue: exactly one of TaskID and All.
type requeueRequest struct {
	TaskID string `json:"task_id"`
	All    bool   `json:"all"`
}

// requeueResponse is the response body of a requeue.
type requeueResponse struct {
	Queue   string          `json:"queue"`
	Results []RequeueResult `json:"results"`
	// Counts has the number of messages per outcome.
	Counts map[string]int `json:"counts"`
}

// requeueQueue handles POST api/queues/{name}/requeue for the dead-letter and poison queues.
func (m *Monitor) requeueQueue(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if !m.isDeadLetterQueue(name) {
		return &requestError{status: http.StatusBadRequest, field: "name",
			msg: "only " + m.topology.DeadLetterQueue() + " and " + m.topology.PoisonQueue() + " can be requeued"}
	}
	var req requeueRequest
	if err := decodeAction(w, r, &req); err != nil {
		return err
	}
	only := uuid.Nil
	switch {
	case req.All && req.TaskID != "":
		return badRequest("all", "send either task_id or all, not both")
	case req.TaskID != "":
		id, err := uuid.Parse(req.TaskID)
		if err != nil {
			return badRequest("task_id", "task_id %q is not a UUID", req.TaskID)
		}
		only = id
	case !req.All:
		return badRequest("all", `send {"task_id": "<id>"} to requeue one message or {"all": true} to requeue them all`)
	}

	ch, err := m.broker.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	results, err := requeueDeadLetters(r.Context(), ch, m.store, name, only, maxRequeuePerAction)
	counts := map[string]int{}
	for _, res := range results {
		counts[res.Outcome]++
	}
	if len(results) > 0 {
		m.log.InfoContext(r.Context(), "operator requeued dead letters", "queue", name, "outcomes", counts)
	}
	if err != nil {
		return err
	}
	m.refresh(context.WithoutCancel(r.Context()), true)
	m.writeJSON(w, r, http.StatusOK, requeueResponse{Queue: name, Results: results, Counts: counts})
	return nil
}

// decodeAction reads an optional JSON object body into v. Unknown fields are rejected, so a typo
// cannot turn into a different action.
func decodeAction(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxActionBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return badRequest("", "the body must be a JSON object with the fields of this action: %v", err)
	}
	return nil
}

func (m *Monitor) unknownQueue(name string) error {
	return &requestError{status: http.StatusNotFound, field: "name",
		msg: fmt.Sprintf("no queue %q: the monitor manages %q and the queues named after it", name, m.cfg.Queue)}
}

// isPaused reports whether the latest snapshot shows queue paused.
func (m *Monitor) isPaused(queue string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.snapshot == nil {
		return false
	}
	for _, q := range m.snapshot.Queues {
		if q.Name == queue {
			return q.Paused
		}
	}
	return false
}

// pathTaskID parses the {id} path segment.
func pathTaskID(r *http.Request) (uuid.UUID, error) {
	raw := r.PathValue("id")
	id, err := uuid.Parse(raw)
	if err != nil {
		return uuid.Nil, badRequest("id", "task id %q is not a UUID", raw)
	}
	return id, nil
}
