package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// iterativeFibonacci is the reference: F(n) by n big-integer additions.
func iterativeFibonacci(n int) *big.Int {
	current, next := big.NewInt(0), big.NewInt(1)
	for range n {
		current, next = next, current.Add(current, next)
	}
	return current
}

func TestFibonacciMatchesIteration(t *testing.T) {
	t.Parallel()

	// Every n up to 1500 covers all bit patterns of small n, and the large ones cover long
	// multiplications, up to the maximum n.
	ns := []int{4095, 4096, 4097, 12345, 65535, 65536, 99999, maxFibN}
	for n := range 1501 {
		ns = append(ns, n)
	}
	for _, n := range ns {
		got, err := fibonacci(t.Context(), n)
		if err != nil {
			t.Fatalf("fibonacci(%d) error = %v", n, err)
		}
		if want := iterativeFibonacci(n); got.Cmp(want) != 0 {
			t.Fatalf("fibonacci(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestFibonacciKnownValues(t *testing.T) {
	t.Parallel()

	tests := []struct {
		n    int
		want string
	}{
		{n: 0, want: "0"},
		{n: 1, want: "1"},
		{n: 2, want: "1"},
		{n: 10, want: "55"},
		{n: 93, want: "12200160415121876738"}, // the largest F(n) below 2^64
		{n: 100, want: "354224848179261915075"},
	}
	for _, tt := range tests {
		got, err := fibonacci(t.Context(), tt.n)
		if err != nil {
			t.Fatalf("fibonacci(%d) error = %v", tt.n, err)
		}
		if got.String() != tt.want {
			t.Errorf("fibonacci(%d) = %s, want %s", tt.n, got, tt.want)
		}
	}
}

func TestFibTaskResult(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	tests := []struct {
		name string
		raw  string
		want string
	}{
		{name: "zero", raw: `{"n":0}`, want: `{"n":0,"value":"0"}`},
		{name: "one", raw: `{"n":1}`, want: `{"n":1,"value":"1"}`},
		{name: "hundred", raw: `{"n":100}`, want: `{"n":100,"value":"354224848179261915075"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.Run(t.Context(), "fib", json.RawMessage(tt.raw))
			if err != nil {
				t.Fatalf("Run(fib, %s) error = %v", tt.raw, err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("Run(fib, %s) mismatch (-want +got):\n%s", tt.raw, diff)
			}
		})
	}
}

func TestFibTaskMaximum(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	got, err := runTask[FibResult](t.Context(), t, r, "fib", map[string]int{"n": maxFibN})
	if err != nil {
		t.Fatalf("Run(fib, n=%d) error = %v", maxFibN, err)
	}
	want := FibResult{N: maxFibN, Value: iterativeFibonacci(maxFibN).String()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Run(fib, n=%d) mismatch (-want +got):\n%s", maxFibN, diff)
	}
	if len(got.Value) != 20899 {
		t.Errorf("F(%d) has %d digits, want 20899", maxFibN, len(got.Value))
	}
}

func TestFibTaskInvalidArgs(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	tests := []struct {
		name string
		raw  string
		want task.FieldError
	}{
		{name: "missing n", raw: `{}`, want: task.FieldError{Field: "args.n", Message: "is required: give an integer between 0 and 100000"}},
		{name: "null args", raw: `null`, want: task.FieldError{Field: "args.n", Message: "is required: give an integer between 0 and 100000"}},
		{name: "negative", raw: `{"n":-1}`, want: task.FieldError{Field: "args.n", Message: "must be between 0 and 100000, got -1"}},
		{name: "too large", raw: `{"n":100001}`, want: task.FieldError{Field: "args.n", Message: "must be between 0 and 100000, got 100001"}},
		{name: "fraction", raw: `{"n":3.5}`, want: task.FieldError{Field: "args.n", Message: "must be an integer, got 3.5"}},
		{name: "string", raw: `{"n":"3"}`, want: task.FieldError{Field: "args.n", Message: "must be an integer, got a string"}},
		{name: "unknown field", raw: `{"n":3,"m":4}`, want: task.FieldError{Field: "args.m", Message: "is not an argument of this task: use n (names are case-sensitive)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := r.Validate("fib", json.RawMessage(tt.raw))
			var fieldErr *task.FieldError
			if !errors.As(err, &fieldErr) {
				t.Fatalf("Validate(fib, %s) error = %v, want *task.FieldError", tt.raw, err)
			}
			if diff := cmp.Diff(tt.want, *fieldErr); diff != "" {
				t.Errorf("Validate(fib, %s) mismatch (-want +got):\n%s", tt.raw, diff)
			}

			_, err = r.Run(t.Context(), "fib", json.RawMessage(tt.raw))
			wantFieldError(t, err, tt.want)
		})
	}
}

func TestFibTaskCancelled(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := r.Run(ctx, "fib", json.RawMessage(`{"n":100000}`))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run(fib) with a cancelled context error = %v, want context.Canceled", err)
	}
	if task.IsPermanent(err) {
		t.Errorf("IsPermanent(%v) = true, want false", err)
	}
}
