package task

import (
	"errors"
	"fmt"
	"strings"
)

// State is the lifecycle state of a task, named as in Celery. The string values are part of the
// HTTP API contract and are stored in PostgreSQL, so they must not change.
type State string

// The task states, in lifecycle order.
const (
	// Pending means the task is accepted but no worker has started it.
	Pending State = "PENDING"
	// Started means a worker is running an attempt.
	Started State = "STARTED"
	// Retry means an attempt failed with a retryable error and another attempt is scheduled.
	Retry State = "RETRY"
	// Success means an attempt finished and its result is stored.
	Success State = "SUCCESS"
	// Failure means the task failed permanently or exhausted its retries.
	Failure State = "FAILURE"
	// Revoked means the task was cancelled before it finished.
	Revoked State = "REVOKED"
)

// ErrUnknownState is wrapped by the error that ParseState returns for a string that names no state.
var ErrUnknownState = errors.New("unknown task state")

// States returns all states in lifecycle order: PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED.
// The caller owns the returned slice.
func States() []State {
	return []State{Pending, Started, Retry, Success, Failure, Revoked}
}

// Terminal reports whether s is final: SUCCESS, FAILURE or REVOKED. A task in a terminal state
// never runs again.
func (s State) Terminal() bool {
	switch s {
	case Success, Failure, Revoked:
		return true
	default:
		return false
	}
}

// ParseState returns the state named by s. Matching ignores case, so "success" gives Success.
// For any other string the error wraps ErrUnknownState and lists the valid names.
func ParseState(s string) (State, error) {
	for _, state := range States() {
		if strings.EqualFold(s, string(state)) {
			return state, nil
		}
	}

	names := make([]string, 0, len(States()))
	for _, state := range States() {
		names = append(names, string(state))
	}
	return "", fmt.Errorf("%w %q: use one of %s", ErrUnknownState, s, strings.Join(names, ", "))
}
