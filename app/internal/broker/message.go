package broker

import (
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
)

// TaskMessage is the body of a message that asks a worker to run a task. It carries only the id
// and name: the arguments and options are read from PostgreSQL when the attempt starts, so a
// message can never disagree with the stored task.
type TaskMessage struct {
	ID   uuid.UUID `json:"id"`
	Task string    `json:"task"`
}

// Headers set on messages in the dead-letter and poison queues, next to RabbitMQ's own x-death.
const (
	// HeaderReason says why the message left the work queue: retries_exhausted or delivery_limit.
	HeaderReason = "x-taskflow-reason"
	// HeaderError is the error of the last attempt.
	HeaderError = "x-taskflow-error"
	// HeaderAttempts is the number of attempts started.
	HeaderAttempts = "x-taskflow-attempts"
)

// Reasons stored in HeaderReason.
const (
	ReasonRetriesExhausted = "retries_exhausted"
	ReasonDeliveryLimit    = "delivery_limit"
)

// Message returns the broker message that carries m to queue.
func (m TaskMessage) Message(queue string) Message {
	body, err := json.Marshal(m)
	if err != nil {
		// A struct of a UUID and a string always marshals.
		panic(fmt.Sprintf("marshal task message: %v", err))
	}
	return Message{
		Queue:     queue,
		MessageID: m.ID.String(),
		Type:      m.Task,
		Headers:   amqp.Table{"task": m.Task},
		Body:      body,
	}
}

// ParseTaskMessage decodes a delivery body. It fails for anything but a JSON object with a valid
// id and a non-empty task name.
func ParseTaskMessage(body []byte) (TaskMessage, error) {
	var m TaskMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return TaskMessage{}, fmt.Errorf("decode task message: %w", err)
	}
	if m.ID == uuid.Nil || m.Task == "" {
		return TaskMessage{}, fmt.Errorf("decode task message: id and task are required")
	}
	return m, nil
}
