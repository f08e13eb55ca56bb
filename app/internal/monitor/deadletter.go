package monitor

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/taskflow-dev/taskflow/app/internal/broker"
	"github.com/taskflow-dev/taskflow/app/internal/store"
	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// DeadLetter is one message in a dead-letter or poison queue.
type DeadLetter struct {
	// TaskID and Task come from the message body; both are empty for an unreadable body.
	TaskID string `json:"task_id"`
	Task   string `json:"task"`
	// Reason is why the message was dead-lettered: retries_exhausted or delivery_limit from the
	// worker, or else RabbitMQ's own x-death reason, such as delivery_limit or rejected.
	Reason string `json:"reason"`
	// Error is the error of the task's last attempt, when the worker recorded it.
	Error string `json:"error,omitempty"`
	// Attempts is the number of attempts the worker counted, 0 when unknown.
	Attempts int `json:"attempts"`
	// From is the queue the message was dead-lettered from, when RabbitMQ recorded it.
	From string `json:"from,omitempty"`
	// PublishedAt is when the message entered the dead-letter queue, to the second.
	PublishedAt *time.Time `json:"published_at"`
	// Deliveries counts how often the message was delivered from this queue, browsing included.
	Deliveries int64 `json:"deliveries"`
	// State is the task's current state in PostgreSQL: a dead letter whose task is PENDING or
	// SUCCESS was already retried. Empty when the task is unknown.
	State task.State `json:"state,omitempty"`
	// Body is the start of an unreadable message body, for inspection.
	Body string `json:"body,omitempty"`
}

// browse returns up to limit messages from the head of queue without removing any: it gets them
// unacknowledged and then returns them all with one nack. It also returns the queue's message
// count. A failure in between closes the channel, which returns the messages too.
//
// NOTE: every browse counts as a delivery of each message it shows. A quorum queue with a
// delivery limit (RabbitMQ 4 sets 20 by default) drops or dead-letters a message browsed that
// often, so the dead-letter and poison queues must have no delivery limit.
func browse(ch *amqp.Channel, queue string, limit int) ([]DeadLetter, int, error) {
	var letters []DeadLetter
	var lastTag uint64
	total := 0
	for len(letters) < limit {
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			return nil, 0, fmt.Errorf("get message from %q: %w", queue, err)
		}
		if !ok {
			break
		}
		if len(letters) == 0 {
			// MessageCount is the number left after this one.
			total = int(d.MessageCount) + 1
		}
		letters = append(letters, readDeadLetter(d))
		lastTag = d.DeliveryTag
	}
	if lastTag > 0 {
		if err := ch.Nack(lastTag, true, true); err != nil {
			return nil, 0, fmt.Errorf("return browsed messages to %q: %w", queue, err)
		}
	}
	return letters, total, nil
}

// maxBodyPreview is the number of bytes of an unreadable body that DeadLetter.Body shows.
const maxBodyPreview = 200

// readDeadLetter decodes the body and the dead-letter headers of d.
func readDeadLetter(d amqp.Delivery) DeadLetter {
	dl := DeadLetter{
		Reason:     headerString(d.Headers, broker.HeaderReason),
		Error:      headerString(d.Headers, broker.HeaderError),
		Attempts:   int(headerInt(d.Headers, broker.HeaderAttempts)),
		Deliveries: headerInt(d.Headers, "x-delivery-count") + 1,
	}
	if msg, err := broker.ParseTaskMessage(d.Body); err == nil {
		dl.TaskID, dl.Task = msg.ID.String(), msg.Task
	} else {
		preview := d.Body
		if len(preview) > maxBodyPreview {
			preview = preview[:maxBodyPreview]
		}
		if utf8.Valid(preview) {
			dl.Body = string(preview)
		} else {
			dl.Body = fmt.Sprintf("%d bytes of binary data", len(d.Body))
		}
	}
	if !d.Timestamp.IsZero() {
		at := d.Timestamp.UTC()
		dl.PublishedAt = &at
	}

	// RabbitMQ records its own dead-lettering in x-death: the newest entry comes first.
	if deaths, ok := d.Headers["x-death"].([]any); ok && len(deaths) > 0 {
		if death, ok := deaths[0].(amqp.Table); ok {
			dl.From = headerString(death, "queue")
			if dl.Reason == "" {
				dl.Reason = headerString(death, "reason")
			}
			if at, ok := death["time"].(time.Time); ok && dl.PublishedAt == nil {
				at = at.UTC()
				dl.PublishedAt = &at
			}
		}
	}
	if dl.Reason == "" {
		dl.Reason = "unknown"
	}
	return dl
}

func headerString(h amqp.Table, key string) string {
	s, _ := h[key].(string)
	return s
}

func headerInt(h amqp.Table, key string) int64 {
	switch n := h[key].(type) {
	case int64:
		return n
	case int32:
		return int64(n)
	case int16:
		return int64(n)
	case int8:
		return int64(n)
	case int:
		return int64(n)
	case uint8:
		return int64(n)
	case uint16:
		return int64(n)
	case uint32:
		return int64(n)
	}
	return 0
}

// Requeue outcomes of one dead letter.
const (
	// RequeueDone means the task went back to PENDING and the dead letter was removed.
	RequeueDone = "requeued"
	// RequeueAlreadyQueued means the task was already PENDING, STARTED or RETRY, for example
	// retried from its page, so the leftover dead letter was removed.
	RequeueAlreadyQueued = "already_queued"
	// RequeueAlreadySucceeded means the task already succeeded, so the leftover dead letter was
	// removed and the task does not run again.
	RequeueAlreadySucceeded = "already_succeeded"
	// RequeueKept means the message names no known task or is unreadable; it stays in the queue.
	RequeueKept = "kept"
)

// RequeueResult is the outcome of requeueing one dead letter.
type RequeueResult struct {
	TaskID  string `json:"task_id"`
	Task    string `json:"task"`
	Outcome string `json:"outcome"`
}

// Requeuer is the part of the store that requeues a task.
type Requeuer interface {
	Requeue(ctx context.Context, id uuid.UUID) (store.Task, error)
}

// errDeadLetterNotFound is returned when the requested task has no message in the queue.
var errDeadLetterNotFound = errors.New("no dead letter for the task")

// requeueDeadLetters moves the dead letters of queue back to work. For each message it requeues
// the task in PostgreSQL and only then acknowledges the message. The requeue writes an outbox
// row, which the api's relay publishes to the work queue with publisher confirms. A crash in
// between leaves a leftover dead letter, which a later requeue removes as already_queued, so no
// task is lost and none is queued twice.
//
// With only set, it handles just that task's message and returns errDeadLetterNotFound when the
// queue has none. Otherwise it handles at most limit messages. Messages it keeps are returned to
// the queue at the end, so they are not fetched twice.
func requeueDeadLetters(ctx context.Context, ch *amqp.Channel, st Requeuer, queue string, only uuid.UUID, limit int) ([]RequeueResult, error) {
	results := []RequeueResult{}
	var kept []uint64
	defer func() {
		for _, tag := range kept {
			_ = ch.Nack(tag, false, true)
		}
	}()

	for seen := 0; seen < limit; seen++ {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			return results, fmt.Errorf("get message from %q: %w", queue, err)
		}
		if !ok {
			break
		}
		msg, parseErr := broker.ParseTaskMessage(d.Body)
		if only != uuid.Nil && (parseErr != nil || msg.ID != only) {
			kept = append(kept, d.DeliveryTag)
			continue
		}
		result := RequeueResult{TaskID: msg.ID.String(), Task: msg.Task, Outcome: RequeueKept}
		if parseErr != nil {
			result.TaskID = ""
			kept = append(kept, d.DeliveryTag)
			results = append(results, result)
			continue
		}

		_, err = st.Requeue(ctx, msg.ID)
		switch {
		case err == nil:
			result.Outcome = RequeueDone
		case errors.Is(err, store.ErrNotFinished):
			result.Outcome = RequeueAlreadyQueued
		case errors.Is(err, store.ErrFinished):
			result.Outcome = RequeueAlreadySucceeded
		case errors.Is(err, store.ErrNotFound):
			kept = append(kept, d.DeliveryTag)
			results = append(results, result)
			if only != uuid.Nil {
				return results, nil
			}
			continue
		default:
			kept = append(kept, d.DeliveryTag)
			return results, fmt.Errorf("requeue task %s: %w", msg.ID, err)
		}
		if err := d.Ack(false); err != nil {
			// The channel closed, so RabbitMQ returned the message; the task is requeued anyway
			// and a later requeue removes the leftover.
			return results, fmt.Errorf("acknowledge dead letter of task %s: %w", msg.ID, err)
		}
		results = append(results, result)
		if only != uuid.Nil {
			return results, nil
		}
	}
	if only != uuid.Nil {
		return results, errDeadLetterNotFound
	}
	return results, nil
}
