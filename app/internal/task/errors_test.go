package task

import (
	"errors"
	"fmt"
	"testing"
)

var errSentinel = errors.New("sentinel")

func TestPermanent(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name          string
		err           error
		wantPermanent bool
	}{
		{name: "plain", err: errSentinel, wantPermanent: false},
		{name: "marked", err: Permanent(errSentinel), wantPermanent: true},
		{name: "wrapped after marking", err: fmt.Errorf("run: %w", Permanent(errSentinel)), wantPermanent: true},
		{name: "marked after wrapping", err: Permanent(fmt.Errorf("run: %w", errSentinel)), wantPermanent: true},
		{name: "joined", err: errors.Join(errors.New("other"), Permanent(errSentinel)), wantPermanent: true},
		{name: "nil", err: nil, wantPermanent: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := IsPermanent(tt.err); got != tt.wantPermanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.wantPermanent)
			}
			if tt.err != nil && !errors.Is(tt.err, errSentinel) {
				t.Errorf("errors.Is(%v, errSentinel) = false, want true", tt.err)
			}
		})
	}
}

func TestPermanentKeepsMessageAndType(t *testing.T) {
	t.Parallel()

	original := &FieldError{Field: "args.n", Message: "is required"}
	err := Permanent(original)
	if got, want := err.Error(), "args.n is required"; got != want {
		t.Errorf("Permanent(err).Error() = %q, want %q", got, want)
	}
	var fieldErr *FieldError
	if !errors.As(err, &fieldErr) || fieldErr != original {
		t.Errorf("errors.As(Permanent(err), *FieldError) = %v, want the original error", fieldErr)
	}
}

func TestPermanentNil(t *testing.T) {
	t.Parallel()

	if err := Permanent(nil); err != nil {
		t.Errorf("Permanent(nil) = %v, want nil", err)
	}
}

func TestErrorMessages(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		err  error
		want string
	}{
		{
			name: "field error",
			err:  &FieldError{Field: "args.n", Message: "must be an integer, got 3.5"},
			want: "args.n must be an integer, got 3.5",
		},
		{
			name: "field error without field",
			err:  &FieldError{Message: "is required"},
			want: "is required",
		},
		{
			name: "unknown task",
			err:  &UnknownTaskError{Name: "fob", Known: []string{"fib", "sleep"}},
			want: `unknown task "fob": use one of fib, sleep`,
		},
		{
			name: "unknown task with empty registry",
			err:  &UnknownTaskError{Name: "fib"},
			want: `unknown task "fib": no tasks are registered`,
		},
		{
			name: "panic",
			err:  &PanicError{Value: "boom", Stack: "goroutine 1 [running]:"},
			want: "task handler panicked: boom",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
