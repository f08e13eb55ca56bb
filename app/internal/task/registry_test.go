package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testArgs covers every JSON type that the decoder describes in its messages.
type testArgs struct {
	N     *int     `json:"n"`
	Name  string   `json:"name,omitempty"`
	Tags  []string `json:"tags,omitempty"`
	Ratio float64  `json:"ratio,omitempty"`
	Flag  bool     `json:"flag,omitempty"`
	Small int8     `json:"small,omitempty"`
	Count uint     `json:"count,omitempty"`
	Inner *struct {
		X int `json:"x"`
	} `json:"inner,omitempty"`
}

func (a testArgs) Validate() error {
	switch {
	case a.N == nil:
		return &FieldError{Field: "n", Message: "is required"}
	case *a.N < 0 || *a.N > 10:
		return &FieldError{Field: "n", Message: fmt.Sprintf("must be between 0 and 10, got %d", *a.N)}
	case a.Name == "plain error":
		return errors.New("name must not be plain error")
	case a.Name == "whole object":
		return &FieldError{Message: "is not acceptable as a whole"}
	case a.Name == "panic":
		panic("validate panicked")
	}
	return nil
}

// emptyArgs is the args type of a task that takes no arguments.
type emptyArgs struct{}

func (emptyArgs) Validate() error { return nil }

// pointerArgs checks that a pointer type works as the args type.
type pointerArgs struct {
	Word string `json:"word"`
}

func (a *pointerArgs) Validate() error {
	if a.Word == "" {
		return &FieldError{Field: "word", Message: "is required"}
	}
	return nil
}

func newTestRegistry(t *testing.T) *Registry {
	t.Helper()

	r := NewRegistry()
	Register(r, Definition[testArgs]{
		Name:        "echo",
		Description: "Return n.",
		Run: func(ctx context.Context, args testArgs) (any, error) {
			return map[string]any{"n": *args.N, "name": args.Name}, nil
		},
	})
	Register(r, Definition[emptyArgs]{
		Name:        "noop",
		Description: "Do nothing.",
		Run:         func(ctx context.Context, args emptyArgs) (any, error) { return nil, nil },
	})
	Register(r, Definition[*pointerArgs]{
		Name:        "upper",
		Description: "Upper-case a word.",
		Run: func(ctx context.Context, args *pointerArgs) (any, error) {
			return strings.ToUpper(args.Word), nil
		},
	})
	return r
}

func TestValidateCanonical(t *testing.T) {
	t.Parallel()
	r := newTestRegistry(t)

	tests := []struct {
		name string
		task string
		raw  string
		want string
	}{
		{name: "minimal", task: "echo", raw: `{"n":3}`, want: `{"n":3}`},
		{name: "spacing removed", task: "echo", raw: " {\n \"n\" : 3 \t}\n", want: `{"n":3}`},
		{name: "struct order", task: "echo", raw: `{"flag":true,"name":"a","n":1}`, want: `{"n":1,"name":"a","flag":true}`},
		{name: "html kept", task: "echo", raw: `{"n":1,"name":"<b>&</b>"}`, want: `{"n":1,"name":"<b>&</b>"}`},
		{name: "escape decoded", task: "echo", raw: `{"n":1,"name":"\u00e9"}`, want: `{"n":1,"name":"é"}`},
		{name: "surrogate pair", task: "echo", raw: `{"n":1,"name":"\ud83d\ude00"}`, want: `{"n":1,"name":"😀"}`},
		{name: "null optional", task: "echo", raw: `{"n":1,"tags":null}`, want: `{"n":1}`},
		{name: "empty args", task: "noop", raw: `{}`, want: `{}`},
		{name: "null args", task: "noop", raw: `null`, want: `{}`},
		{name: "missing args", task: "noop", raw: ``, want: `{}`},
		{name: "whitespace args", task: "noop", raw: " \n", want: `{}`},
		{name: "pointer args", task: "upper", raw: `{"word":"go"}`, want: `{"word":"go"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.Validate(tt.task, json.RawMessage(tt.raw))
			if err != nil {
				t.Fatalf("Validate(%q, %s) error = %v", tt.task, tt.raw, err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("Validate(%q, %s) mismatch (-want +got):\n%s", tt.task, tt.raw, diff)
			}
		})
	}
}

func TestValidateReorderedKeysSameBytes(t *testing.T) {
	t.Parallel()
	r := newTestRegistry(t)

	first, err := r.Validate("echo", json.RawMessage(`{"n":2,"name":"x","tags":["a","b"],"ratio":0.5}`))
	if err != nil {
		t.Fatalf("Validate(first) error = %v", err)
	}
	second, err := r.Validate("echo", json.RawMessage(`{"ratio":0.50,"tags":["a","b"],"name":"x","n":2}`))
	if err != nil {
		t.Fatalf("Validate(second) error = %v", err)
	}
	if diff := cmp.Diff(string(first), string(second)); diff != "" {
		t.Errorf("canonical args differ for reordered keys (-first +second):\n%s", diff)
	}
}

func TestValidateFieldErrors(t *testing.T) {
	t.Parallel()
	r := newTestRegistry(t)

	tests := []struct {
		name string
		task string
		raw  string
		want FieldError
	}{
		{
			name: "null args missing required",
			task: "echo", raw: `null`,
			want: FieldError{Field: "args.n", Message: "is required"},
		},
		{
			name: "missing args missing required",
			task: "echo", raw: ``,
			want: FieldError{Field: "args.n", Message: "is required"},
		},
		{
			name: "null required field",
			task: "echo", raw: `{"n":null}`,
			want: FieldError{Field: "args.n", Message: "is required"},
		},
		{
			name: "out of range",
			task: "echo", raw: `{"n":11}`,
			want: FieldError{Field: "args.n", Message: "must be between 0 and 10, got 11"},
		},
		{
			name: "fraction for integer",
			task: "echo", raw: `{"n":3.5}`,
			want: FieldError{Field: "args.n", Message: "must be an integer, got 3.5"},
		},
		{
			name: "exponent for integer",
			task: "echo", raw: `{"n":1e1}`,
			want: FieldError{Field: "args.n", Message: "must be an integer, got 1e1"},
		},
		{
			name: "string for integer",
			task: "echo", raw: `{"n":"3"}`,
			want: FieldError{Field: "args.n", Message: "must be an integer, got a string"},
		},
		{
			name: "boolean for integer",
			task: "echo", raw: `{"n":true}`,
			want: FieldError{Field: "args.n", Message: "must be an integer, got a boolean"},
		},
		{
			name: "object for integer",
			task: "echo", raw: `{"n":{}}`,
			want: FieldError{Field: "args.n", Message: "must be an integer, got an object"},
		},
		{
			name: "integer overflow",
			task: "echo", raw: `{"n":99999999999999999999}`,
			want: FieldError{Field: "args.n", Message: "must be an integer between -9223372036854775808 and 9223372036854775807, got 99999999999999999999"},
		},
		{
			name: "small integer overflow",
			task: "echo", raw: `{"n":1,"small":200}`,
			want: FieldError{Field: "args.small", Message: "must be an integer between -128 and 127, got 200"},
		},
		{
			name: "negative unsigned",
			task: "echo", raw: `{"n":1,"count":-1}`,
			want: FieldError{Field: "args.count", Message: "must be a non-negative integer, got -1"},
		},
		{
			name: "number for string",
			task: "echo", raw: `{"n":1,"name":5}`,
			want: FieldError{Field: "args.name", Message: "must be a string, got a number"},
		},
		{
			name: "string for number",
			task: "echo", raw: `{"n":1,"ratio":"0.5"}`,
			want: FieldError{Field: "args.ratio", Message: "must be a number, got a string"},
		},
		{
			name: "string for boolean",
			task: "echo", raw: `{"n":1,"flag":"yes"}`,
			want: FieldError{Field: "args.flag", Message: "must be true or false, got a string"},
		},
		{
			name: "string for array",
			task: "echo", raw: `{"n":1,"tags":"a"}`,
			want: FieldError{Field: "args.tags", Message: "must be an array of strings, got a string"},
		},
		{
			name: "bad array element",
			task: "echo", raw: `{"n":1,"tags":["a","b",3]}`,
			want: FieldError{Field: "args.tags", Message: "must be an array of strings, but element 2 is a number"},
		},
		{
			name: "nested type",
			task: "echo", raw: `{"n":1,"inner":{"x":"1"}}`,
			want: FieldError{Field: "args.inner.x", Message: "must be an integer, got a string"},
		},
		{
			name: "nested unknown field",
			task: "echo", raw: `{"n":1,"inner":{"y":1}}`,
			want: FieldError{Field: "args", Message: `contains the unknown field "y" in a nested object`},
		},
		{
			name: "unknown field",
			task: "echo", raw: `{"n":1,"colour":"red"}`,
			want: FieldError{Field: "args.colour", Message: "is not an argument of this task: use count, flag, inner, n, name, ratio, small, tags (names are case-sensitive)"},
		},
		{
			name: "field in wrong case",
			task: "echo", raw: `{"N":1}`,
			want: FieldError{Field: "args.N", Message: "is not an argument of this task: use count, flag, inner, n, name, ratio, small, tags (names are case-sensitive)"},
		},
		{
			name: "argument for task without arguments",
			task: "noop", raw: `{"n":1}`,
			want: FieldError{Field: "args.n", Message: "is not an argument of this task, which takes no arguments"},
		},
		{
			name: "duplicate key",
			task: "echo", raw: `{"n":1,"n":2}`,
			want: FieldError{Field: "args.n", Message: "is given more than once: give each argument once"},
		},
		{
			name: "array args",
			task: "echo", raw: `[1]`,
			want: FieldError{Field: "args", Message: "must be a JSON object, got an array"},
		},
		{
			name: "string args",
			task: "echo", raw: `"n"`,
			want: FieldError{Field: "args", Message: "must be a JSON object, got a string"},
		},
		{
			name: "number args",
			task: "echo", raw: `7`,
			want: FieldError{Field: "args", Message: "must be a JSON object, got a number"},
		},
		{
			name: "trailing value",
			task: "echo", raw: `{"n":1} {"n":2}`,
			want: FieldError{Field: "args", Message: "must be a single JSON object, but more data follows it"},
		},
		{
			name: "truncated",
			task: "echo", raw: `{"n":1`,
			want: FieldError{Field: "args", Message: "is not valid JSON: unexpected end of JSON input (at byte 6 of the args)"},
		},
		{
			name: "trailing garbage",
			task: "echo", raw: `{"n":1}x`,
			want: FieldError{Field: "args", Message: "must be a single JSON object, but more data follows it"},
		},
		{
			name: "control character in string",
			task: "echo", raw: "{\"n\":1,\"name\":\"a\x00\"}",
			want: FieldError{Field: "args", Message: "is not valid JSON: invalid character '\\x00' in string literal (at byte 17 of the args)"},
		},
		{
			name: "syntax error",
			task: "echo", raw: `{"n":x}`,
			want: FieldError{Field: "args", Message: "is not valid JSON: invalid character 'x' looking for beginning of value (at byte 6 of the args)"},
		},
		{
			name: "invalid UTF-8 in value",
			task: "echo", raw: "{\"n\":1,\"name\":\"a\xffb\"}",
			want: FieldError{Field: "args.name", Message: "contains invalid UTF-8: send text encoded as UTF-8"},
		},
		{
			name: "invalid UTF-8 in key",
			task: "noop", raw: "{\"\xff\":1}",
			want: FieldError{Field: "args.\ufffd", Message: "is not an argument of this task, which takes no arguments"},
		},
		{
			name: "lone high surrogate",
			task: "echo", raw: `{"n":1,"name":"a\ud800b"}`,
			want: FieldError{Field: "args.name", Message: `contains the lone UTF-16 surrogate escape \ud800, which is not a Unicode character: send valid Unicode text`},
		},
		{
			name: "lone low surrogate",
			task: "echo", raw: `{"n":1,"name":"\uDC00"}`,
			want: FieldError{Field: "args.name", Message: `contains the lone UTF-16 surrogate escape \uDC00, which is not a Unicode character: send valid Unicode text`},
		},
		{
			name: "plain validate error",
			task: "echo", raw: `{"n":1,"name":"plain error"}`,
			want: FieldError{Field: "args", Message: "is invalid: name must not be plain error"},
		},
		{
			name: "validate error on whole object",
			task: "echo", raw: `{"n":1,"name":"whole object"}`,
			want: FieldError{Field: "args", Message: "is not acceptable as a whole"},
		},
		{
			name: "pointer args validate",
			task: "upper", raw: `{}`,
			want: FieldError{Field: "args.word", Message: "is required"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.Validate(tt.task, json.RawMessage(tt.raw))
			if got != nil {
				t.Errorf("Validate(%q, %s) args = %s, want nil", tt.task, tt.raw, got)
			}
			var fieldErr *FieldError
			if !errors.As(err, &fieldErr) {
				t.Fatalf("Validate(%q, %s) error = %v (%T), want *FieldError", tt.task, tt.raw, err, err)
			}
			if diff := cmp.Diff(tt.want, *fieldErr); diff != "" {
				t.Errorf("Validate(%q, %s) error mismatch (-want +got):\n%s", tt.task, tt.raw, diff)
			}
		})
	}
}

func TestValidateUnknownTask(t *testing.T) {
	t.Parallel()
	r := newTestRegistry(t)

	_, err := r.Validate("fib", json.RawMessage(`{"n":1}`))
	var unknown *UnknownTaskError
	if !errors.As(err, &unknown) {
		t.Fatalf("Validate(fib) error = %v (%T), want *UnknownTaskError", err, err)
	}
	want := UnknownTaskError{Name: "fib", Known: []string{"echo", "noop", "upper"}}
	if diff := cmp.Diff(want, *unknown); diff != "" {
		t.Errorf("Validate(fib) error mismatch (-want +got):\n%s", diff)
	}
	if got, want := err.Error(), `unknown task "fib": use one of echo, noop, upper`; got != want {
		t.Errorf("Validate(fib) message = %q, want %q", got, want)
	}
}

func TestValidatePanicInArgs(t *testing.T) {
	t.Parallel()
	r := newTestRegistry(t)

	_, err := r.Validate("echo", json.RawMessage(`{"n":1,"name":"panic"}`))
	var panicErr *PanicError
	if !errors.As(err, &panicErr) {
		t.Fatalf("Validate error = %v (%T), want *PanicError", err, err)
	}
	if panicErr.Value != "validate panicked" {
		t.Errorf("PanicError.Value = %v, want %q", panicErr.Value, "validate panicked")
	}
}

func TestRunResult(t *testing.T) {
	t.Parallel()
	r := newTestRegistry(t)

	tests := []struct {
		name string
		task string
		raw  string
		want string
	}{
		{name: "object result", task: "echo", raw: `{"name":"a","n":4}`, want: `{"n":4,"name":"a"}`},
		{name: "nil result", task: "noop", raw: `null`, want: `null`},
		{name: "string result", task: "upper", raw: `{"word":"go"}`, want: `"GO"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.Run(t.Context(), tt.task, json.RawMessage(tt.raw))
			if err != nil {
				t.Fatalf("Run(%q, %s) error = %v", tt.task, tt.raw, err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("Run(%q, %s) mismatch (-want +got):\n%s", tt.task, tt.raw, diff)
			}
		})
	}
}

// failingHandler returns the error stored in the args name, so one registration covers each kind.
func failingHandler(ctx context.Context, args testArgs) (any, error) {
	switch args.Name {
	case "transient":
		return nil, fmt.Errorf("connect upstream: %w", errSentinel)
	case "permanent":
		return nil, Permanent(fmt.Errorf("parse input: %w", errSentinel))
	case "channel":
		return make(chan int), nil
	}
	return panickingHandler(args)
}

func panickingHandler(args testArgs) (any, error) {
	var values []int
	return values[*args.N], nil // index out of range for any n
}

func TestRunErrors(t *testing.T) {
	t.Parallel()

	r := NewRegistry()
	Register(r, Definition[testArgs]{Name: "fail", Run: failingHandler})

	tests := []struct {
		name          string
		task          string
		raw           string
		wantPermanent bool
		wantSentinel  bool
		wantAs        func(error) bool
		wantMessage   string
	}{
		{
			name: "transient", task: "fail", raw: `{"n":0,"name":"transient"}`,
			wantPermanent: false, wantSentinel: true,
			wantMessage: "connect upstream: sentinel",
		},
		{
			name: "permanent", task: "fail", raw: `{"n":0,"name":"permanent"}`,
			wantPermanent: true, wantSentinel: true,
			wantMessage: "parse input: sentinel",
		},
		{
			name: "invalid args", task: "fail", raw: `{"n":"zero"}`,
			wantPermanent: true,
			wantAs:        func(err error) bool { var e *FieldError; return errors.As(err, &e) },
			wantMessage:   "args.n must be an integer, got a string",
		},
		{
			name: "unknown task", task: "nope", raw: `{}`,
			wantPermanent: true,
			wantAs:        func(err error) bool { var e *UnknownTaskError; return errors.As(err, &e) },
			wantMessage:   `unknown task "nope": use one of fail`,
		},
		{
			name: "result not marshallable", task: "fail", raw: `{"n":0,"name":"channel"}`,
			wantPermanent: true,
			wantMessage:   "marshal result: json: unsupported type: chan int",
		},
		{
			name: "panic", task: "fail", raw: `{"n":0}`,
			wantPermanent: false,
			wantAs:        func(err error) bool { var e *PanicError; return errors.As(err, &e) },
			wantMessage:   "task handler panicked: runtime error: index out of range [0] with length 0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.Run(t.Context(), tt.task, json.RawMessage(tt.raw))
			if err == nil {
				t.Fatalf("Run(%q, %s) = %s, want an error", tt.task, tt.raw, got)
			}
			if got != nil {
				t.Errorf("Run(%q, %s) result = %s, want nil", tt.task, tt.raw, got)
			}
			if IsPermanent(err) != tt.wantPermanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, IsPermanent(err), tt.wantPermanent)
			}
			if errors.Is(err, errSentinel) != tt.wantSentinel {
				t.Errorf("errors.Is(%v, errSentinel) = %v, want %v", err, errors.Is(err, errSentinel), tt.wantSentinel)
			}
			if tt.wantAs != nil && !tt.wantAs(err) {
				t.Errorf("Run(%q, %s) error = %v (%T), want the error type of case %q", tt.task, tt.raw, err, err, tt.name)
			}
			if err.Error() != tt.wantMessage {
				t.Errorf("Run(%q, %s) message = %q, want %q", tt.task, tt.raw, err.Error(), tt.wantMessage)
			}
		})
	}
}

func TestRunPanicStack(t *testing.T) {
	t.Parallel()

	r := NewRegistry()
	Register(r, Definition[testArgs]{Name: "fail", Run: failingHandler})

	_, err := r.Run(t.Context(), "fail", json.RawMessage(`{"n":3}`))
	var panicErr *PanicError
	if !errors.As(err, &panicErr) {
		t.Fatalf("Run error = %v (%T), want *PanicError", err, err)
	}
	if _, ok := panicErr.Value.(error); !ok {
		t.Errorf("PanicError.Value = %#v, want the runtime error", panicErr.Value)
	}
	// The stack must reach the frame that panicked, not stop at the recover.
	for _, frame := range []string{"task.panickingHandler", "task.failingHandler"} {
		if !strings.Contains(panicErr.Stack, frame) {
			t.Errorf("PanicError.Stack does not contain %q:\n%s", frame, panicErr.Stack)
		}
	}
}

func TestRunDeadline(t *testing.T) {
	t.Parallel()

	r := NewRegistry()
	Register(r, Definition[testArgs]{
		Name: "wait",
		Run: func(ctx context.Context, args testArgs) (any, error) {
			<-ctx.Done()
			if args.Name == "unwrapped" {
				return nil, fmt.Errorf("wait interrupted: %v", ctx.Err())
			}
			return nil, ctx.Err()
		},
	})

	tests := []struct {
		name        string
		raw         string
		wantMessage string
	}{
		{name: "returns ctx error", raw: `{"n":1}`, wantMessage: "context deadline exceeded"},
		{name: "hides ctx error", raw: `{"n":1,"name":"unwrapped"}`, wantMessage: "wait interrupted: context deadline exceeded: context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
			defer cancel()

			_, err := r.Run(ctx, "wait", json.RawMessage(tt.raw))
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Run error = %v, want errors.Is(err, context.DeadlineExceeded)", err)
			}
			if IsPermanent(err) {
				t.Errorf("IsPermanent(%v) = true, want false for a timeout", err)
			}
			if err.Error() != tt.wantMessage {
				t.Errorf("Run message = %q, want %q", err.Error(), tt.wantMessage)
			}
		})
	}
}

func TestRunCancelNotDeadline(t *testing.T) {
	t.Parallel()

	r := NewRegistry()
	Register(r, Definition[emptyArgs]{
		Name: "wait",
		Run: func(ctx context.Context, args emptyArgs) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
	})

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := r.Run(ctx, "wait", nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run error = %v, want context.Canceled", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run error = %v, want no context.DeadlineExceeded after a cancel", err)
	}
}

func TestRunDeadlineSource(t *testing.T) {
	t.Parallel()

	r := NewRegistry()
	Register(r, Definition[emptyArgs]{
		Name:    "deadline",
		Timeout: 30 * time.Second,
		Run: func(ctx context.Context, args emptyArgs) (any, error) {
			deadline, ok := ctx.Deadline()
			if !ok {
				return nil, errors.New("no deadline")
			}
			return time.Until(deadline), nil
		},
	})

	tests := []struct {
		name        string
		ctxTimeout  time.Duration // 0 means a context without deadline
		wantAtLeast time.Duration
		wantAtMost  time.Duration
	}{
		{name: "task default", ctxTimeout: 0, wantAtLeast: 20 * time.Second, wantAtMost: 30 * time.Second},
		{name: "caller longer", ctxTimeout: time.Hour, wantAtLeast: 50 * time.Minute, wantAtMost: time.Hour},
		{name: "caller shorter", ctxTimeout: 10 * time.Second, wantAtLeast: time.Second, wantAtMost: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			if tt.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
				defer cancel()
			}

			raw, err := r.Run(ctx, "deadline", nil)
			if err != nil {
				t.Fatalf("Run error = %v", err)
			}
			var remaining time.Duration
			if err := json.Unmarshal(raw, &remaining); err != nil {
				t.Fatalf("decode result %s: %v", raw, err)
			}
			if remaining < tt.wantAtLeast || remaining > tt.wantAtMost {
				t.Errorf("handler deadline in %v, want between %v and %v", remaining, tt.wantAtLeast, tt.wantAtMost)
			}
		})
	}
}

func TestRegisterDefaults(t *testing.T) {
	t.Parallel()

	r := NewRegistry()
	run := func(ctx context.Context, args emptyArgs) (any, error) { return nil, nil }
	Register(r, Definition[emptyArgs]{Name: "defaults", Description: "d", Run: run, MaxRetries: -1})
	Register(r, Definition[emptyArgs]{Name: "zero", Run: run})
	Register(r, Definition[emptyArgs]{Name: "explicit", Run: run, Timeout: time.Second, MaxRetries: 7})

	tests := []struct {
		name string
		want Info
	}{
		{name: "defaults", want: Info{Name: "defaults", Description: "d", Timeout: DefaultTimeout, MaxRetries: DefaultMaxRetries, DefaultRetries: true}},
		{name: "zero", want: Info{Name: "zero", Timeout: DefaultTimeout, MaxRetries: 0}},
		{name: "explicit", want: Info{Name: "explicit", Timeout: time.Second, MaxRetries: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := r.Info(tt.name)
			if !ok {
				t.Fatalf("Info(%q) found = false, want true", tt.name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Info(%q) mismatch (-want +got):\n%s", tt.name, diff)
			}
		})
	}

	if DefaultTimeout != 5*time.Minute || DefaultMaxRetries != 3 {
		t.Errorf("defaults = %v and %d, want 5m and 3", DefaultTimeout, DefaultMaxRetries)
	}
	if _, ok := r.Info("missing"); ok {
		t.Errorf("Info(missing) found = true, want false")
	}
}

func TestRegisterPanics(t *testing.T) {
	t.Parallel()

	run := func(ctx context.Context, args emptyArgs) (any, error) { return nil, nil }
	tests := []struct {
		name string
		def  Definition[emptyArgs]
		want string
	}{
		{name: "empty name", def: Definition[emptyArgs]{Run: run}, want: "task: Register called with an empty task name"},
		{name: "nil run", def: Definition[emptyArgs]{Name: "x"}, want: `task: Register called with a nil Run for task "x"`},
		{name: "negative timeout", def: Definition[emptyArgs]{Name: "x", Run: run, Timeout: -time.Second}, want: `task: Register called with a negative Timeout -1s for task "x"`},
		{name: "duplicate", def: Definition[emptyArgs]{Name: "taken", Run: run}, want: `task: Register called twice for task "taken"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewRegistry()
			Register(r, Definition[emptyArgs]{Name: "taken", Run: run})

			got := func() (value any) {
				defer func() { value = recover() }()
				Register(r, tt.def)
				return nil
			}()
			if got != tt.want {
				t.Errorf("Register panic = %v, want %q", got, tt.want)
			}
			if diff := cmp.Diff([]string{"taken"}, r.Names()); diff != "" {
				t.Errorf("Names() after a rejected Register (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNamesSorted(t *testing.T) {
	t.Parallel()

	r := NewRegistry()
	if got := r.Names(); len(got) != 0 {
		t.Errorf("Names() of an empty registry = %v, want empty", got)
	}
	run := func(ctx context.Context, args emptyArgs) (any, error) { return nil, nil }
	for _, name := range []string{"wordstats", "fib", "sleep", "csvstats"} {
		Register(r, Definition[emptyArgs]{Name: name, Run: run})
	}

	want := []string{"csvstats", "fib", "sleep", "wordstats"}
	names := r.Names()
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("Names() mismatch (-want +got):\n%s", diff)
	}
	names[0] = "changed"
	if diff := cmp.Diff(want, r.Names()); diff != "" {
		t.Errorf("Names() changed through a returned slice (-want +got):\n%s", diff)
	}
}

func TestRegistryConcurrentUse(t *testing.T) {
	t.Parallel()
	r := newTestRegistry(t)

	const goroutines = 16
	const iterations = 200
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			Register(r, Definition[emptyArgs]{
				Name: fmt.Sprintf("extra-%d", g),
				Run:  func(ctx context.Context, args emptyArgs) (any, error) { return g, nil },
			})
			for i := range iterations {
				raw := json.RawMessage(fmt.Sprintf(`{"n":%d}`, i%11))
				if _, err := r.Validate("echo", raw); err != nil {
					errs <- fmt.Errorf("validate %s: %w", raw, err)
					return
				}
				got, err := r.Run(t.Context(), "echo", raw)
				if err != nil {
					errs <- fmt.Errorf("run %s: %w", raw, err)
					return
				}
				if want := fmt.Sprintf(`{"n":%d,"name":""}`, i%11); string(got) != want {
					errs <- fmt.Errorf("run %s = %s, want %s", raw, got, want)
					return
				}
				r.Names()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, want := len(r.Names()), 3+goroutines; got != want {
		t.Errorf("len(Names()) = %d, want %d", got, want)
	}
}

func TestValidatePiped(t *testing.T) {
	t.Parallel()
	r := newTestRegistry(t)

	// n is required by Validate, but the piped value arrives later, so it is not checked yet.
	got, err := r.ValidatePiped("echo", json.RawMessage(`{"name": "x", "tags": ["a"]}`), "n")
	if err != nil {
		t.Fatalf("ValidatePiped error = %v", err)
	}
	if diff := cmp.Diff(`{"name":"x","tags":["a"]}`, string(got)); diff != "" {
		t.Errorf("canonical args (-want +got):\n%s", diff)
	}

	cases := []struct {
		name string
		args string
		pipe string
		want FieldError
	}{
		{"unknown pipe", `{}`, "m", FieldError{Field: "pipe", Message: `names "m", which is not an argument of task "echo": use one of count, flag, inner, n, name, ratio, small, tags`}},
		{"piped argument given", `{"n": 1}`, "n", FieldError{Field: "args.n", Message: "is filled with the results of the previous step (pipe); leave it out"}},
		{"other argument wrong", `{"name": 5}`, "n", FieldError{Field: "args.name", Message: "must be a string, got a number"}},
		{"other argument invalid", `{"n": 3, "name": "whole object"}`, "tags", FieldError{Field: "args", Message: "is not acceptable as a whole"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.ValidatePiped("echo", json.RawMessage(c.args), c.pipe)
			var fieldErr *FieldError
			if !errors.As(err, &fieldErr) {
				t.Fatalf("error = %v, want a *FieldError", err)
			}
			if diff := cmp.Diff(c.want, *fieldErr); diff != "" {
				t.Errorf("field error (-want +got):\n%s", diff)
			}
		})
	}
}
