package task

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError reports an invalid task argument.
//
// Args.Validate returns it with Field relative to the args object ("n", or "" for the object
// itself). Registry.Validate and Registry.Run return it with Field as a path from the request
// body: "args" for the object itself and "args.<name>" for one argument.
type FieldError struct {
	// Field is the JSON path of the invalid value, such as "args.n".
	Field string
	// Message states what is wrong and what is expected, without the field name, such as
	// "must be an integer between 0 and 100000, got 100001".
	Message string
}

// Error returns the field followed by the message, such as
// "args.n must be an integer between 0 and 100000, got 100001".
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + " " + e.Message
}

// UnknownTaskError reports a task name that is not registered.
type UnknownTaskError struct {
	// Name is the requested task name.
	Name string
	// Known lists the registered names in sorted order.
	Known []string
}

// Error names the unknown task and lists the registered ones.
func (e *UnknownTaskError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("unknown task %q: no tasks are registered", e.Name)
	}
	return fmt.Sprintf("unknown task %q: use one of %s", e.Name, strings.Join(e.Known, ", "))
}

// PanicError reports a panic in a task handler that Registry.Run recovered. It is not permanent,
// so a worker retries the task like any other failure.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the goroutine stack at the panic, as printed by runtime/debug.Stack.
	Stack string
}

// Error returns the panic value. The stack is left out so that the message fits one line.
func (e *PanicError) Error() string {
	return fmt.Sprintf("task handler panicked: %v", e.Value)
}

// permanentError marks an error as not retryable. Its message is the wrapped message unchanged.
type permanentError struct {
	err error
}

func (e *permanentError) Error() string { return e.err.Error() }

func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not retryable: a worker fails the task at once instead of retrying it.
// The returned error has the same message, and errors.Is and errors.As see through it.
// Permanent(nil) returns nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err or any error it wraps was marked by Permanent.
func IsPermanent(err error) bool {
	var permanent *permanentError
	return errors.As(err, &permanent)
}
