package task

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults that Register applies to a Definition that leaves them unset.
const (
	// DefaultTimeout is the per-attempt deadline of a task whose Definition.Timeout is 0.
	DefaultTimeout = 5 * time.Minute
	// DefaultMaxRetries is the retry count of a task whose Definition.MaxRetries is negative.
	DefaultMaxRetries = 3
)

// PartialValidator is implemented by an argument type that can check its arguments without one
// of them. A workflow step whose argument is piped from earlier results is checked this way when
// the workflow is submitted, before that argument is known.
type PartialValidator interface {
	// ValidateWithout returns what Validate returns, but ignores the argument named by field.
	ValidateWithout(field string) error
}

// Args is implemented by the argument type of a task. Registry decodes the JSON args object into
// it and then calls Validate.
type Args interface {
	// Validate returns nil or a *FieldError whose Field is relative to the args object, such as
	// "n", or "" for the object as a whole. Any other error is reported on the field "args".
	Validate() error
}

// Definition describes a task for Register.
type Definition[A Args] struct {
	// Name identifies the task in requests and messages. It must be unique and not empty.
	Name string
	// Description is one line shown to users, for example when a request names an unknown task.
	Description string
	// Run executes one attempt. The result is marshalled to JSON. Run must return when ctx is
	// done, and an error marked by Permanent is not retried.
	Run func(ctx context.Context, args A) (any, error)
	// Timeout is the default deadline of one attempt. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxRetries is the default number of retries after the first attempt. Zero means no retry,
	// and a negative value means DefaultMaxRetries.
	MaxRetries int
}

// Info describes a registered task, with the defaults of Register applied.
type Info struct {
	// Name identifies the task.
	Name string
	// Description is one line shown to users.
	Description string
	// Timeout is the default deadline of one attempt.
	Timeout time.Duration
	// MaxRetries is the default number of retries after the first attempt.
	MaxRetries int
	// DefaultRetries is true when the definition left MaxRetries to DefaultMaxRetries, so a
	// deployment-wide default may replace it.
	DefaultRetries bool
}

// Registry maps task names to typed handlers. Its methods are safe for concurrent use, including
// Register while other goroutines call Validate or Run.
type Registry struct {
	mu      sync.RWMutex
	entries map[string]*entry
}

// entry holds one registered task with its argument type erased.
type entry struct {
	info   Info
	schema argSchema
	// decode decodes raw strictly and then calls Validate unless partial is set.
	decode func(raw json.RawMessage, partial bool) (Args, error)
	run    func(ctx context.Context, args Args) (any, error)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{entries: make(map[string]*entry)}
}

// Register adds the task d to r. It panics if d.Name is empty or already registered, if d.Run is
// nil or if d.Timeout is negative, because each of these is a programming error.
func Register[A Args](r *Registry, d Definition[A]) {
	switch {
	case d.Name == "":
		panic("task: Register called with an empty task name")
	case d.Run == nil:
		panic(fmt.Sprintf("task: Register called with a nil Run for task %q", d.Name))
	case d.Timeout < 0:
		panic(fmt.Sprintf("task: Register called with a negative Timeout %v for task %q", d.Timeout, d.Name))
	}

	info := Info{Name: d.Name, Description: d.Description, Timeout: d.Timeout, MaxRetries: d.MaxRetries}
	if info.Timeout == 0 {
		info.Timeout = DefaultTimeout
	}
	if info.MaxRetries < 0 {
		info.MaxRetries, info.DefaultRetries = DefaultMaxRetries, true
	}

	schema := schemaOf(reflect.TypeFor[A]())
	e := &entry{
		info:   info,
		schema: schema,
		decode: func(raw json.RawMessage, partial bool) (Args, error) {
			var args A
			if err := decodeArgs(raw, &args, schema); err != nil {
				return nil, err
			}
			if partial {
				return args, nil
			}
			if err := validateArgs(args); err != nil {
				return nil, err
			}
			return args, nil
		},
		run: func(ctx context.Context, args Args) (any, error) {
			return d.Run(ctx, args.(A))
		},
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if _, exists := r.entries[d.Name]; exists {
		panic(fmt.Sprintf("task: Register called twice for task %q", d.Name))
	}
	r.entries[d.Name] = e
}

// Names returns the registered task names in sorted order. The caller owns the returned slice.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.namesLocked()
}

// Info returns the registered task called name and whether it exists.
func (r *Registry) Info(name string) (Info, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.entries[name]
	if !ok {
		return Info{}, false
	}
	return e.info, true
}

// Validate checks the args of a request for task name and returns them as canonical JSON.
//
// It decodes raw strictly. Raw must be one JSON object, and every key must name a field of the
// args type with the exact spelling, once. Each value must have the field's JSON type, so an
// integer field rejects 3.5 and "3". Strings must be valid Unicode. Missing or null raw args
// count as {}. Then Validate calls the Validate method of the args type.
//
// The canonical JSON is the decoded args marshalled again, so the same logical args give the
// same bytes whatever the key order or spacing. HTML characters are not escaped.
//
// Errors: *UnknownTaskError if name is not registered, *FieldError with Field "args" or
// "args.<name>" for invalid args, and *PanicError if the Validate method of the args panics.
func (r *Registry) Validate(name string, raw json.RawMessage) (json.RawMessage, error) {
	e, err := r.lookup(name)
	if err != nil {
		return nil, err
	}

	args, err := e.decodeProtected(raw, false)
	if err != nil {
		return nil, err
	}

	canonical, err := marshalJSON(args)
	if err != nil {
		return nil, fmt.Errorf("marshal args of task %q: %w", name, err)
	}
	return canonical, nil
}

// ValidatePiped checks the args of a workflow step whose argument pipe will receive the results
// of the steps before it. It decodes raw strictly, as Validate does, but raw must not give pipe.
// Then it calls ValidateWithout if the args type is a PartialValidator. Otherwise it calls
// Validate and ignores an error about pipe, which is missing until then. The worker validates the
// complete args before the step runs. The canonical JSON it returns leaves pipe out.
//
// NOTE: without ValidateWithout, a check that Validate makes after its check of pipe is left to
// the worker, because Validate reports one error.
//
// Errors are those of Validate, plus a *FieldError on "pipe" when pipe is not an argument of the
// task and on "args.<pipe>" when raw gives it.
func (r *Registry) ValidatePiped(name string, raw json.RawMessage, pipe string) (json.RawMessage, error) {
	e, err := r.lookup(name)
	if err != nil {
		return nil, err
	}
	if e.schema.fields != nil {
		if _, ok := e.schema.fields[pipe]; !ok {
			msg := fmt.Sprintf("names %q, but task %q takes no arguments", pipe, name)
			if len(e.schema.names) > 0 {
				msg = fmt.Sprintf("names %q, which is not an argument of task %q: use one of %s",
					pipe, name, strings.Join(e.schema.names, ", "))
			}
			return nil, &FieldError{Field: "pipe", Message: msg}
		}
	}

	args, err := e.decodeProtected(raw, true)
	if err != nil {
		return nil, err
	}
	var supplied map[string]json.RawMessage
	if err := json.Unmarshal(raw, &supplied); err == nil {
		if _, ok := supplied[pipe]; ok {
			return nil, &FieldError{Field: joinField(pipe), Message: "is filled with the results of the previous step (pipe); leave it out"}
		}
	}
	if err := validatePartial(args, pipe); err != nil {
		return nil, err
	}

	canonical, err := marshalJSON(args)
	if err != nil {
		return nil, fmt.Errorf("marshal args of task %q: %w", name, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(canonical, &fields); err != nil {
		return nil, fmt.Errorf("read canonical args of task %q: %w", name, err)
	}
	delete(fields, pipe)
	return marshalJSON(fields)
}

// Run decodes and validates raw as Validate does, runs one attempt of task name and returns its
// result as JSON. A nil result gives null.
//
// If ctx has no deadline, Run applies the task's Info.Timeout. A caller that wants a different
// deadline, such as a per-request timeout_ms, sets it on ctx.
//
// Errors:
//   - *UnknownTaskError, *FieldError or a result that cannot be marshalled: marked by Permanent,
//     because running the same message again gives the same error.
//   - a panic in the handler or in the args Validate method: *PanicError, not permanent, with the
//     stack of the panicking goroutine.
//   - the handler's error, unchanged. If ctx passed its deadline, errors.Is(err,
//     context.DeadlineExceeded) holds for the returned error even when the handler's own error
//     does not wrap ctx.Err().
func (r *Registry) Run(ctx context.Context, name string, raw json.RawMessage) (json.RawMessage, error) {
	e, err := r.lookup(name)
	if err != nil {
		return nil, Permanent(err)
	}

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.info.Timeout)
		defer cancel()
	}

	return e.execute(ctx, raw)
}

func (r *Registry) lookup(name string) (*entry, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.entries[name]
	if !ok {
		return nil, &UnknownTaskError{Name: name, Known: r.namesLocked()}
	}
	return e, nil
}

func (r *Registry) namesLocked() []string {
	names := make([]string, 0, len(r.entries))
	for name := range r.entries {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// decodeProtected decodes and validates raw, turning a panic in the args Validate method into
// a *PanicError.
func (e *entry) decodeProtected(raw json.RawMessage, partial bool) (args Args, err error) {
	defer recoverPanic(&err)
	return e.decode(raw, partial)
}

// execute runs one attempt and marshals its result, turning a panic into a *PanicError.
func (e *entry) execute(ctx context.Context, raw json.RawMessage) (out json.RawMessage, err error) {
	defer recoverPanic(&err)

	args, err := e.decode(raw, false)
	if err != nil {
		return nil, Permanent(err)
	}

	result, err := e.run(ctx, args)
	if err != nil {
		// A handler may wrap the context error in its own error without %w, but the worker
		// needs errors.Is to tell a timeout from other failures.
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %w", err, context.DeadlineExceeded)
		}
		return nil, err
	}

	out, err = marshalJSON(result)
	if err != nil {
		return nil, Permanent(fmt.Errorf("marshal result: %w", err))
	}
	return out, nil
}

// recoverPanic must be deferred directly. It sets *err to a *PanicError when the function
// panics. debug.Stack runs before the stack unwinds, so it includes the panicking frame.
func recoverPanic(err *error) {
	if value := recover(); value != nil {
		*err = &PanicError{Value: value, Stack: string(debug.Stack())}
	}
}

// marshalJSON marshals v without escaping <, > and &, which encoding/json does by default for
// embedding in HTML and which would make stored text hard to read.
func marshalJSON(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	encoder := json.NewEncoder(&buf)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// validatePartial checks args without the argument pipe: with ValidateWithout when args has it,
// else with Validate, ignoring an error about pipe. A panic gives a *PanicError.
func validatePartial(args Args, pipe string) (err error) {
	defer recoverPanic(&err)
	if partial, ok := args.(PartialValidator); ok {
		return fieldPath(partial.ValidateWithout(pipe))
	}
	err = validateArgs(args)
	var fieldErr *FieldError
	if errors.As(err, &fieldErr) && fieldErr.Field == joinField(pipe) {
		return nil
	}
	return err
}

// validateArgs calls args.Validate and rewrites its error as a *FieldError on a path from the
// request body.
func validateArgs(args Args) error {
	return fieldPath(args.Validate())
}

// fieldPath rewrites an error of a Validate method as a *FieldError on a path from the request
// body.
func fieldPath(err error) error {
	if err == nil {
		return nil
	}
	var fieldErr *FieldError
	if errors.As(err, &fieldErr) {
		return &FieldError{Field: joinField(fieldErr.Field), Message: fieldErr.Message}
	}
	return &FieldError{Field: "args", Message: "is invalid: " + err.Error()}
}
