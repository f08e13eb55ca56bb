package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskflow-dev/taskflow/app/internal/task"
)

func TestSleepTaskWaits(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	for _, ms := range []int{0, 1, 50} {
		start := time.Now()
		got, err := runTask[SleepResult](t.Context(), t, r, "sleep", map[string]int{"ms": ms})
		elapsed := time.Since(start)
		if err != nil {
			t.Fatalf("Run(sleep, ms=%d) error = %v", ms, err)
		}
		if diff := cmp.Diff(SleepResult{SleptMS: ms}, got); diff != "" {
			t.Errorf("Run(sleep, ms=%d) mismatch (-want +got):\n%s", ms, diff)
		}
		if want := time.Duration(ms) * time.Millisecond; elapsed < want {
			t.Errorf("Run(sleep, ms=%d) returned after %v, want at least %v", ms, elapsed, want)
		}
	}
}

func TestSleepTaskStopsAtDeadline(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Run(ctx, "sleep", json.RawMessage(`{"ms":3600000}`))
	elapsed := time.Since(start)

	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run(sleep) error = %v, want context.DeadlineExceeded", err)
	}
	if task.IsPermanent(err) {
		t.Errorf("IsPermanent(%v) = true, want false", err)
	}
	// Generous, so that a loaded machine does not fail the test, yet far below the hour requested.
	if elapsed > 10*time.Second {
		t.Errorf("Run(sleep) returned after %v, want soon after the 30ms deadline", elapsed)
	}
}

func TestSleepTaskCancelledBefore(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := r.Run(ctx, "sleep", json.RawMessage(`{"ms":0}`))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run(sleep, ms=0) with a cancelled context error = %v, want context.Canceled", err)
	}
}

func TestSleepTaskInvalidArgs(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)

	tests := []struct {
		name string
		raw  string
		want task.FieldError
	}{
		{name: "missing ms", raw: `{}`, want: task.FieldError{Field: "args.ms", Message: "is required: give the sleep in milliseconds, 0 to 3600000"}},
		{name: "negative", raw: `{"ms":-1}`, want: task.FieldError{Field: "args.ms", Message: "must be between 0 and 3600000 milliseconds, got -1"}},
		{name: "too long", raw: `{"ms":3600001}`, want: task.FieldError{Field: "args.ms", Message: "must be between 0 and 3600000 milliseconds, got 3600001"}},
		{name: "string", raw: `{"ms":"10"}`, want: task.FieldError{Field: "args.ms", Message: "must be an integer, got a string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := r.Run(t.Context(), "sleep", json.RawMessage(tt.raw))
			wantFieldError(t, err, tt.want)
		})
	}
}
