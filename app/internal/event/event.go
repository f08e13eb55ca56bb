// Package event defines the messages workers and the monitor exchange outside the task path:
// worker and task events that feed the live dashboard, and control commands that an operator
// sends to every worker.
//
// Events go to the durable topic exchange EventsExchange with the routing keys below. They are
// transient and best effort: PostgreSQL holds the history, so an event lost in a broker restart
// only delays a dashboard update until the next heartbeat. Commands go to the durable fanout
// exchange ControlExchange; each worker binds its own exclusive queue to it. A command must be
// idempotent, and the state it changes (such as a paused queue) is also stored in PostgreSQL so a
// worker that starts later, or misses the command, still applies it.
package event

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Exchange names.
const (
	EventsExchange  = "taskflow.events"
	ControlExchange = "taskflow.control"
)

// Worker event types, also their routing keys.
const (
	WorkerOnline    = "worker.online"
	WorkerHeartbeat = "worker.heartbeat"
	WorkerOffline   = "worker.offline"
)

// Task event types, also their routing keys. A worker sends task.started only for an attempt
// that runs longer than its StartedAfter setting (50ms by default) or follows a redelivery,
// together with the STARTED state in PostgreSQL; a shorter attempt sends only its outcome.
const (
	TaskStarted   = "task.started"
	TaskSucceeded = "task.succeeded"
	TaskFailed    = "task.failed"
	TaskRetried   = "task.retried"
	TaskDead      = "task.dead" // moved to the dead-letter or poison queue
)

// Worker is the state of one worker, sent on WorkerOnline, every heartbeat and WorkerOffline.
type Worker struct {
	Type     string `json:"type"`
	Worker   string `json:"worker"`
	Hostname string `json:"hostname"`
	PID      int    `json:"pid"`
	Queue    string `json:"queue"`
	// Concurrency is the number of task slots; Active the slots in use.
	Concurrency int `json:"concurrency"`
	Active      int `json:"active"`
	// Processed and Failed count outcomes since the worker started: Processed counts every
	// finished attempt, Failed those that ended in RETRY or FAILURE.
	Processed int64 `json:"processed"`
	Failed    int64 `json:"failed"`
	// Paused lists the queues this worker does not consume from because an operator paused them.
	Paused []string `json:"paused"`
	// Interval is the heartbeat period; a worker silent for a few intervals is offline.
	IntervalMS int64     `json:"interval_ms"`
	Time       time.Time `json:"time"`
}

// Task is one step in the life of a task attempt.
type Task struct {
	Type    string    `json:"type"`
	TaskID  uuid.UUID `json:"task_id"`
	Task    string    `json:"task"`
	Worker  string    `json:"worker"`
	Attempt int       `json:"attempt"`
	// RuntimeMS is the handler's run time, set on succeeded, failed and retried.
	RuntimeMS float64 `json:"runtime_ms,omitempty"`
	Error     string  `json:"error,omitempty"`
	// Queue is the queue the message went to, set on retried and dead.
	Queue string    `json:"queue,omitempty"`
	Time  time.Time `json:"time"`
}

// Command types.
const (
	// CommandPause stops consumption of Queue; running tasks finish.
	CommandPause = "pause"
	// CommandResume starts consumption of Queue again.
	CommandResume = "resume"
	// CommandRevoke cancels TaskID if it is running; its state is already REVOKED in PostgreSQL.
	CommandRevoke = "revoke"
)

// Command is an operator's instruction to every worker.
type Command struct {
	Command string    `json:"command"`
	Queue   string    `json:"queue,omitempty"`
	TaskID  uuid.UUID `json:"task_id,omitempty"`
	Time    time.Time `json:"time"`
}

// Decode reads the JSON body of an event or command into v.
func Decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}
